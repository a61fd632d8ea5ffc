#!/usr/bin/env bash
# Install the whole toolchain inside the repo, from the lock files only:
#   .venv/         Python 3.11 + requirements.lock + this project (editable) + Silverback's extra lock
#   node_modules/  exactly package-lock.json (solc-js, anvil, cast, OpenZeppelin, Chainlink)
#   .tools/bin/    links to the native anvil/cast binaries and the solc shim
#   .solcx/        solc-v0.8.28 -> tools/solc/solc, where py-solc-x and ape-solidity look
# Idempotent: a step whose inputs hash to the value in .stamps/<step> is skipped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SOLC_VERSION=0.8.28  # must match ape-config.yaml's solidity.version
PYTHON=python3.11
STAMPS=.stamps

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$1" >&2; exit "${2:-1}"; }

command -v "$PYTHON" >/dev/null 2>&1 \
  || die "$PYTHON not found on PATH; install Python 3.11 (e.g. 'pyenv install 3.11')." 2
command -v npm >/dev/null 2>&1 || die "npm not found on PATH; install Node.js 20 and npm." 2

mkdir -p "$STAMPS"
exec 9>"$STAMPS/.lock"
flock 9  # two setups at once (e.g. test.sh and main.sh) take turns

# A step's fingerprint: the sha256 of its input files plus any extra words.
fingerprint() { { cat "$@" 2>/dev/null; echo "${EXTRA:-}"; } | sha256sum | cut -d' ' -f1; }
is_fresh() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }

# 1. Python: .venv from requirements.lock, then the project itself without dependencies.
#    Then Silverback (examples/silverback), pinned apart in requirements-silverback.lock: it installs
#    beside eth-ape with no change to the core lock's packages (`pip check` passes), --no-deps.
py_hash=$(EXTRA="$("$PYTHON" --version 2>&1)" fingerprint requirements.lock pyproject.toml \
  requirements-silverback.lock)
if is_fresh venv "$py_hash" && [[ -x .venv/bin/python ]]; then
  say "python env up to date"
else
  say "installing .venv from requirements.lock"
  rm -f "$STAMPS/venv"
  [[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
  .venv/bin/pip install --quiet -r requirements.lock
  .venv/bin/pip install --quiet --no-deps -e .
  .venv/bin/pip install --quiet --no-deps -r requirements-silverback.lock
  echo "$py_hash" > "$STAMPS/venv"
fi

# 2. Node: exactly package-lock.json, with `npm ci`, which never writes the lock. The lock lists
#    every platform package of anvil and cast (darwin, linux, win32: optional dependencies, each
#    with its os/cpu), so npm fetches only this machine's and never needs to add one, whichever
#    platforms the registry serves. --ignore-scripts: the foundry postinstall would download a
#    binary if its platform package were missing; nothing here may download a binary.
npm_hash=$(EXTRA="$(node --version)" fingerprint package.json package-lock.json)
if is_fresh npm "$npm_hash" && [[ -d node_modules ]]; then
  say "node_modules up to date"
else
  say "installing node_modules from package-lock.json"
  rm -f "$STAMPS/npm" "$STAMPS/check"
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
    || die "npm ci failed: package-lock.json must match package.json (regenerate it with \
'npm install --package-lock-only --ignore-scripts' and commit it)."
  echo "$npm_hash" > "$STAMPS/npm"
fi

# 3. Native anvil/cast from the platform package npm picked, and the solc shim, in .tools/bin.
case "$(uname -s)" in Linux) os=linux ;; Darwin) os=darwin ;; *) die "unsupported OS $(uname -s)" ;; esac
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "unsupported CPU $(uname -m)" ;;
esac
mkdir -p .tools/bin
for tool in anvil cast; do
  native="node_modules/@foundry-rs/$tool-$os-$arch/bin/$tool"
  [[ -x "$native" ]] || die "$native is missing: npm did not install @foundry-rs/$tool-$os-$arch."
  ln -sfn "../../$native" ".tools/bin/$tool"  # relative, so the checkout can move
done
ln -sfn ../../tools/solc/solc .tools/bin/solc

# 4. Register solc where py-solc-x looks (SOLCX_BINARY_PATH=.solcx, set by scripts/env.sh).
mkdir -p .solcx
ln -sfn ../tools/solc/solc ".solcx/solc-v$SOLC_VERSION"

# 5. Check the tools answer, once per change of node_modules.
if ! is_fresh check "$npm_hash"; then
  .tools/bin/anvil --version | head -1 | grep -q '^anvil Version: 1\.' || die "anvil is not 1.x"
  ".solcx/solc-v$SOLC_VERSION" --version | grep -q "^Version: $SOLC_VERSION+" \
    || die "solc shim does not report $SOLC_VERSION"
  echo "$npm_hash" > "$STAMPS/check"
fi
# 6. A headless browser for the report test (tests/test_report_browser.py): Debian's Chromium, from
#    the distribution's package registry (Playwright's own browser download reaches outside the
#    registries, so Playwright drives this one). Skipped when a chromium is on PATH already.
if ! command -v chromium >/dev/null 2>&1; then
  say "installing Debian's chromium (headless browser for the report test)"
  if [[ "$(id -u)" == 0 ]]; then as_root=(); else as_root=(sudo); fi
  [[ "$(id -u)" == 0 ]] || command -v sudo >/dev/null 2>&1 \
    || die "chromium is missing and this user cannot install it: run 'apt-get install chromium' as root." 2
  export DEBIAN_FRONTEND=noninteractive
  install_chromium() { "${as_root[@]}" apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; }
  install_chromium || { "${as_root[@]}" apt-get update >/dev/null 2>&1; install_chromium; } \
    || die "apt-get could not install chromium."
fi
say "ready"
