#!/usr/bin/env node
// A solc-compatible command line over solc-js (the official compiler built to WebAssembly).
//
// It answers what py-solc-x and ape-solidity ask of a native `solc`:
//   --version, --help (py-solc-x reads the --combined-json line from it),
//   --standard-json (JSON on stdin),
//   --combined-json LIST with source files or `-` (stdin) and `prefix=path` remappings,
//   --base-path, --include-path (repeatable), --allow-paths a,b, --output-dir/-o, --overwrite,
//   --evm-version, --optimize, --optimize-runs, --via-ir, --revert-strings, --metadata-hash,
//   --metadata-literal, --optimize-yul, --no-optimize-yul, --yul-optimizations.
// Only the compiler's JSON goes to stdout; everything else goes to stderr.
'use strict';

// solc-js (Emscripten) binds console.log when it loads: route it to stderr first.
console.log = console.error;
console.info = console.error;
console.warn = console.error;

const fs = require('fs');
const path = require('path');

const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
const NODE_MODULES = path.join(PROJECT_ROOT, 'node_modules');
const solc = require(require.resolve('solc', { paths: [PROJECT_ROOT] }));

// The --combined-json outputs, and where each lives in standard-JSON output.
const COMBINED_OUTPUTS = {
  abi: ['abi'],
  asm: ['evm.legacyAssembly'],
  ast: [],
  bin: ['evm.bytecode.object'],
  'bin-runtime': ['evm.deployedBytecode.object'],
  devdoc: ['devdoc'],
  'function-debug': ['evm.bytecode.functionDebugData'],
  'function-debug-runtime': ['evm.deployedBytecode.functionDebugData'],
  'generated-sources': ['evm.bytecode.generatedSources'],
  'generated-sources-runtime': ['evm.deployedBytecode.generatedSources'],
  hashes: ['evm.methodIdentifiers'],
  metadata: ['metadata'],
  opcodes: ['evm.bytecode.opcodes'],
  srcmap: ['evm.bytecode.sourceMap'],
  'srcmap-runtime': ['evm.deployedBytecode.sourceMap'],
  'storage-layout': ['storageLayout'],
  userdoc: ['userdoc'],
};

const VALUE_FLAGS = new Set([
  '--base-path', '--include-path', '--allow-paths', '--output-dir', '-o', '--combined-json',
  '--evm-version', '--optimize-runs', '--revert-strings', '--metadata-hash',
  '--yul-optimizations',
]);
const BOOL_FLAGS = new Set([
  '--version', '--help', '--standard-json', '--overwrite', '--optimize', '--via-ir',
  '--metadata-literal', '--optimize-yul', '--no-optimize-yul', '--pretty-json',
]);

class UsageError extends Error {}

function parseArgs(argv) {
  const opts = { includePaths: [], allowPaths: [], files: [], remappings: [], flags: {} };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    if (arg.startsWith('--') && arg.includes('=')) {
      [arg, value] = [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)];
    }
    if (VALUE_FLAGS.has(arg)) {
      if (value === undefined) {
        if (i + 1 >= argv.length) throw new UsageError(`option '${arg}' requires an argument`);
        value = argv[++i];
      }
      if (arg === '--include-path') opts.includePaths.push(path.resolve(value));
      else if (arg === '--allow-paths') {
        opts.allowPaths.push(...value.split(',').filter(Boolean).map((p) => path.resolve(p)));
      } else opts.flags[arg === '-o' ? '--output-dir' : arg] = value;
    } else if (BOOL_FLAGS.has(arg)) {
      opts.flags[arg] = true;
    } else if (arg === '-' || !arg.startsWith('-')) {
      if (arg !== '-' && arg.includes('=')) opts.remappings.push(arg);
      else opts.files.push(arg);
    } else {
      throw new UsageError(`unrecognised option '${arg}'`);
    }
  }
  const basePath = opts.flags['--base-path'];
  opts.basePath = basePath ? path.resolve(basePath) : process.cwd();
  return opts;
}

function isInside(file, dir) {
  const rel = path.relative(dir, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

// Resolve an import as native solc would (base path, then each include path), then fall back
// to the project root and its node_modules: ape-solidity compiles a copy of contracts/ in a
// temporary directory (its --base-path) where `node_modules/...` source units do not exist.
// Only files under an allowed directory may be read.
function makeImportCallback(opts, extraAllowed) {
  const roots = [opts.basePath, ...opts.includePaths, PROJECT_ROOT, NODE_MODULES];
  const allowed = [...roots, ...opts.allowPaths, ...extraAllowed].map((d) => realOrSelf(d));
  return (sourceUnitName) => {
    const candidates = path.isAbsolute(sourceUnitName)
      ? [sourceUnitName]
      : roots.map((root) => path.join(root, sourceUnitName));
    for (const candidate of candidates) {
      if (!fs.existsSync(candidate) || !fs.statSync(candidate).isFile()) continue;
      const real = realOrSelf(candidate);
      if (!allowed.some((dir) => isInside(real, dir))) {
        return { error: `File outside of allowed directories: ${candidate}` };
      }
      return { contents: fs.readFileSync(candidate, 'utf8') };
    }
    return { error: `File not found. Searched: ${roots.join(', ')}` };
  };
}

function realOrSelf(p) {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

function compile(input, opts, extraAllowed = []) {
  const output = solc.compile(JSON.stringify(input), {
    import: makeImportCallback(opts, extraAllowed),
  });
  return JSON.parse(output);
}

function standardJson(opts) {
  const file = opts.files.find((f) => f !== '-');  // `solc --standard-json in.json` also works
  const raw = fs.readFileSync(file === undefined ? 0 : file, 'utf8');
  let input;
  try {
    input = JSON.parse(raw);
  } catch (err) {
    const error = { severity: 'error', type: 'JSONError', component: 'general',
      message: `Input is not valid JSON: ${err.message}`,
      formattedMessage: `JSONError: Input is not valid JSON: ${err.message}` };
    return JSON.stringify({ errors: [error] });
  }
  return JSON.stringify(compile(input, opts));
}

// Turn `--combined-json` command line options into standard-JSON settings.
function settingsFromFlags(opts, selection) {
  const f = opts.flags;
  const settings = {
    optimizer: { enabled: Boolean(f['--optimize']) },
    outputSelection: { '*': { '*': selection, '': ['ast'] } },
    remappings: opts.remappings,
  };
  if (f['--optimize-runs'] !== undefined) settings.optimizer.runs = Number(f['--optimize-runs']);
  if (f['--optimize-yul'] || f['--no-optimize-yul'] || f['--yul-optimizations']) {
    settings.optimizer.details = { yul: !f['--no-optimize-yul'] };
    if (f['--yul-optimizations']) {
      settings.optimizer.details.yulDetails = { optimizerSteps: f['--yul-optimizations'] };
    }
  }
  if (f['--evm-version']) settings.evmVersion = f['--evm-version'];
  if (f['--via-ir']) settings.viaIR = true;
  if (f['--revert-strings']) settings.debug = { revertStrings: f['--revert-strings'] };
  const metadata = {};
  if (f['--metadata-hash']) metadata.bytecodeHash = f['--metadata-hash'];
  if (f['--metadata-literal']) metadata.useLiteralContent = true;
  if (Object.keys(metadata).length) settings.metadata = metadata;
  return settings;
}

function pick(obj, dotted) {
  return dotted.split('.').reduce((o, key) => (o === undefined ? undefined : o[key]), obj);
}

function sourceUnitName(file, opts) {
  const abs = path.resolve(file);
  return isInside(abs, opts.basePath) ? path.relative(opts.basePath, abs) : abs;
}

function combinedJson(opts) {
  const requested = opts.flags['--combined-json'].split(',').filter(Boolean);
  for (const name of requested) {
    if (!(name in COMBINED_OUTPUTS)) throw new UsageError(`Invalid option to --combined-json: ${name}`);
  }
  if (!opts.files.length) throw new UsageError('No input files given.');
  const sources = {};
  const fileDirs = [];
  for (const file of opts.files) {
    if (file === '-') {
      sources['<stdin>'] = { content: fs.readFileSync(0, 'utf8') };
    } else {
      sources[sourceUnitName(file, opts)] = { content: fs.readFileSync(file, 'utf8') };
      fileDirs.push(path.dirname(path.resolve(file)));
    }
  }
  const selection = requested.flatMap((name) => COMBINED_OUTPUTS[name]);
  const input = { language: 'Solidity', sources, settings: settingsFromFlags(opts, selection) };
  const out = compile(input, opts, fileDirs);

  const errors = out.errors || [];
  for (const e of errors) process.stderr.write(`${e.formattedMessage || e.message}\n`);
  if (errors.some((e) => e.severity === 'error')) return { failed: true };

  const result = { contracts: {}, version: solc.version() };
  for (const [source, contracts] of Object.entries(out.contracts || {})) {
    for (const [name, data] of Object.entries(contracts)) {
      const entry = {};
      for (const key of requested) {
        if (key !== 'ast') entry[key] = pick(data, COMBINED_OUTPUTS[key][0]);
      }
      result.contracts[`${source}:${name}`] = entry;
    }
  }
  const sourceList = Object.keys(out.sources || {}).sort(
    (a, b) => out.sources[a].id - out.sources[b].id);
  if (requested.some((k) => ['ast', 'srcmap', 'srcmap-runtime'].includes(k))) {
    result.sourceList = sourceList;
  }
  result.sources = {};
  for (const source of sourceList) {
    result.sources[source] = { id: out.sources[source].id };
    if (requested.includes('ast')) result.sources[source].AST = out.sources[source].ast;
  }
  return { json: JSON.stringify(result) };
}

function writeCombined(opts, json) {
  const dir = opts.flags['--output-dir'];
  if (!dir) return json;
  const target = path.join(dir, 'combined.json');
  if (fs.existsSync(target) && !opts.flags['--overwrite']) {
    throw new UsageError(`Refusing to overwrite existing file "${target}" (use --overwrite).`);
  }
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(target, json);
  return '';
}

function help() {
  const outputs = Object.keys(COMBINED_OUTPUTS).join(',');
  return [
    'solc, the solidity compiler commandline interface (solc-js wrapper)',
    '',
    'Usage: solc [options] [input_file...]',
    '',
    'Options:',
    '  --help               Show help message and exit.',
    '  --version            Show version and exit.',
    '  --standard-json      Read Standard JSON from stdin, write it to stdout.',
    '  --base-path path     Root of the source tree for imports.',
    '  --include-path path  Extra source root (repeatable).',
    '  --allow-paths a,b    Extra directories imports may be read from.',
    '  -o [ --output-dir ] path',
    '  --overwrite',
    '  --evm-version version',
    '  --optimize',
    '  --optimize-runs n',
    '  --via-ir',
    '  --revert-strings value',
    '  --metadata-hash value',
    '  --metadata-literal',
    '  --optimize-yul',
    '  --no-optimize-yul',
    '  --yul-optimizations steps',
    '',
    'Output Components:',
    `  --combined-json ${outputs}`,
    '                       Output a single json document containing the specified information.',
    '',
  ].join('\n');
}

function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
    if (opts.flags['--version']) {
      process.stdout.write(
        `solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
    } else if (opts.flags['--help']) {
      process.stdout.write(`${help()}\n`);
    } else if (opts.flags['--standard-json']) {
      process.stdout.write(`${standardJson(opts)}\n`);
    } else if (opts.flags['--combined-json']) {
      const { json, failed } = combinedJson(opts);
      if (failed) process.exitCode = 1;
      else process.stdout.write(writeCombined(opts, json) + (opts.flags['--output-dir'] ? '' : '\n'));
    } else {
      throw new UsageError('Only --version, --help, --standard-json and --combined-json are supported.');
    }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exitCode = 1;
  }
}

main();
