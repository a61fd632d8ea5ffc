"""Compile `contracts/` with py-solc-x, the same way `ape compile` does, with a content-hash cache.

The compiler settings (version, optimizer, EVM version, import remappings) are read from the
`solidity:` section of ape-config.yaml, and sources are named relative to the project root
(`contracts/Vault.sol`), so the bytecode, metadata hash included, matches ape's.

    python -m simulation.build    # compile and list deployed sizes
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import posixpath
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from solcx import compile_standard
from solcx.install import get_executable

from simulation.paths import (
    BUILD_CACHE_DIR,
    CONTRACTS_DIR,
    NODE_MODULES,
    PROJECT_ROOT,
    SOLCX_DIR,
)

APE_CONFIG = PROJECT_ROOT / "ape-config.yaml"
NPM_LOCK = PROJECT_ROOT / "package-lock.json"  # pins the imported library sources
MAX_DEPLOYED_SIZE_BYTES = 24_576  # EIP-170
OUTPUT_SELECTION = ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]
# ape-solidity reads import lines the same way: lines starting with `import`.
IMPORT_PATH_RE = re.compile(r"^import\b[^;]*?[\"']([^\"']+)[\"']", re.MULTILINE)


@dataclass(frozen=True)
class Artifact:
    """One compiled contract; bytecodes are 0x-prefixed hex."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    source_path: Path

    @property
    def deployed_size_bytes(self) -> int:
        return (len(self.deployed_bytecode) - 2) // 2


@dataclass(frozen=True)
class CompilerSettings:
    """The part of ape-config.yaml's `solidity:` section that changes the bytecode."""

    version: str
    optimize: bool
    optimization_runs: int
    evm_version: str
    via_ir: bool | None  # None: not passed to solc, as ape does
    remappings: dict[str, str]  # prefix -> path relative to the project root


def load_settings(config_path: Path = APE_CONFIG) -> CompilerSettings:
    """Read the solidity settings ape uses, so both builds agree."""
    section = yaml.safe_load(config_path.read_text(encoding="utf8"))["solidity"]
    remappings = dict(entry.split("=", 1) for entry in section.get("import_remapping", []))
    return CompilerSettings(
        version=str(section["version"]),
        optimize=bool(section.get("optimize", True)),
        optimization_runs=int(section.get("optimization_runs", 200)),
        evm_version=str(section["evm_version"]),
        via_ir=section.get("via_ir"),
        remappings=remappings,
    )


def _source_unit_names(sources_dir: Path) -> dict[str, Path]:
    """Every .sol file under sources_dir, named as ape names it (relative to the project root;
    a directory outside the project is named relative to its parent)."""
    sources_dir = sources_dir.resolve()
    root = PROJECT_ROOT if sources_dir.is_relative_to(PROJECT_ROOT) else sources_dir.parent
    return {
        path.relative_to(root).as_posix(): path
        for path in sorted(sources_dir.rglob("*.sol"))
        if ".cache" not in path.relative_to(sources_dir).parts  # ape's dependency cache
    }


def _remappings_used(sources: Mapping[str, str], remappings: Mapping[str, str]) -> list[str]:
    """The remappings the import closure of `sources` uses, as ape-solidity lists them: ape
    passes only those, and they are part of the metadata hash at the end of the bytecode."""
    used: set[str] = set()
    pending = list(sources)
    seen = set(pending)
    while pending:
        unit = pending.pop()
        text = sources.get(unit)
        if text is None:
            file = PROJECT_ROOT / unit
            text = file.read_text(encoding="utf8") if file.is_file() else ""
        for imported in IMPORT_PATH_RE.findall(text):
            if imported.startswith("."):
                target = posixpath.normpath(posixpath.join(posixpath.dirname(unit), imported))
            else:
                keys = [key for key in remappings if imported.startswith(key)]
                key = max(keys, key=len, default=None)
                target = imported if key is None else remappings[key] + imported[len(key) :]
                if key is not None:
                    used.add(key)
            if target not in seen:
                seen.add(target)
                pending.append(target)
    return sorted(f"{key}={remappings[key]}" for key in used)


def standard_input(sources: Mapping[str, str], settings: CompilerSettings) -> dict[str, Any]:
    """The solc standard-JSON input for `sources` (unit name -> content)."""
    solc_settings: dict[str, Any] = {
        "optimizer": {"enabled": settings.optimize, "runs": settings.optimization_runs},
        "evmVersion": settings.evm_version,
        "outputSelection": {unit: {"*": OUTPUT_SELECTION} for unit in sources},
    }
    if remappings := _remappings_used(sources, settings.remappings):
        solc_settings["remappings"] = remappings
    if settings.via_ir is not None:
        solc_settings["viaIR"] = settings.via_ir
    return {
        "language": "Solidity",
        "sources": {unit: {"content": text} for unit, text in sorted(sources.items())},
        "settings": solc_settings,
    }


def _cache_key(sources: Mapping[str, str], settings: CompilerSettings) -> str:
    digest = hashlib.sha256()
    for unit, text in sorted(sources.items()):
        digest.update(f"{unit}\0{text}\0".encode())
    digest.update(json.dumps(dataclasses.asdict(settings), sort_keys=True).encode())
    if NPM_LOCK.is_file():
        digest.update(NPM_LOCK.read_bytes())
    return digest.hexdigest()


def run_solc(input_json: dict[str, Any], version: str) -> dict[str, Any]:
    """Run the registered solc on a standard-JSON input: $SOLCX_BINARY_PATH/solc-v<version>,
    else the project's .solcx/ (scripts/setup.sh registers it there)."""
    solc_binary = get_executable(version, solcx_binary_path=SOLCX_DIR)
    output: dict[str, Any] = compile_standard(
        input_json,
        base_path=PROJECT_ROOT,
        allow_paths=[NODE_MODULES],
        solc_binary=solc_binary,
    )
    return output


def compile_contracts(
    sources_dir: Path = CONTRACTS_DIR,
    cache_dir: Path = BUILD_CACHE_DIR,
    config_path: Path = APE_CONFIG,
) -> dict[str, Artifact]:
    """Compile every contract under sources_dir (recursively), keyed by contract name.

    The whole compiler output is cached in cache_dir under the sha256 of the sources, the
    settings (compiler version included) and package-lock.json; an unchanged tree is read back
    without running the compiler.
    """
    settings = load_settings(config_path)
    paths = _source_unit_names(sources_dir)
    sources = {unit: path.read_text(encoding="utf8") for unit, path in paths.items()}
    if not sources:
        return {}
    cache_file = cache_dir / f"{_cache_key(sources, settings)}.json"
    if cache_file.is_file():
        output = json.loads(cache_file.read_text(encoding="utf8"))
    else:
        output = run_solc(standard_input(sources, settings), settings.version)
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(output), encoding="utf8")
        tmp.replace(cache_file)  # atomic: a concurrent reader never sees half a file
    return _artifacts(output, paths)


def _artifacts(output: Mapping[str, Any], paths: Mapping[str, Path]) -> dict[str, Artifact]:
    artifacts: dict[str, Artifact] = {}
    for unit, contracts in output.get("contracts", {}).items():
        if unit not in paths:
            continue  # an imported library file, not one of ours
        for name, data in contracts.items():
            if name in artifacts:
                other = artifacts[name].source_path
                raise ValueError(f"contract {name} is defined twice: {other} and {paths[unit]}")
            artifacts[name] = Artifact(
                name=name,
                abi=data["abi"],
                bytecode="0x" + data["evm"]["bytecode"]["object"],
                deployed_bytecode="0x" + data["evm"]["deployedBytecode"]["object"],
                source_path=paths[unit],
            )
    return artifacts


def main() -> int:
    artifacts = compile_contracts()
    if not artifacts:
        print(f"no contracts under {CONTRACTS_DIR}")
        return 0
    width = max(len(name) for name in artifacts)
    for name, artifact in sorted(artifacts.items()):
        size = artifact.deployed_size_bytes
        over = size > MAX_DEPLOYED_SIZE_BYTES
        flag = f"  OVER THE {MAX_DEPLOYED_SIZE_BYTES}-BYTE LIMIT (EIP-170)" if over else ""
        print(f"{name:<{width}}  {size:>6} bytes{flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
