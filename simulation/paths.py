"""Where the project keeps its sources, tools and caches (all relative to the repo root)."""

from pathlib import Path

PROJECT_ROOT: Path = Path(__file__).resolve().parent.parent
"""The repository root: the directory holding pyproject.toml and package.json."""

CONTRACTS_DIR: Path = PROJECT_ROOT / "contracts"
"""Solidity sources of the protocol (and its local mocks)."""

NODE_MODULES: Path = PROJECT_ROOT / "node_modules"
"""npm packages: solc-js, anvil/cast, OpenZeppelin and Chainlink sources."""

TOOLS_BIN: Path = PROJECT_ROOT / ".tools" / "bin"
"""Native anvil/cast (and the solc shim), put first on PATH by scripts/env.sh."""

SOLC_WRAPPER: Path = PROJECT_ROOT / "tools" / "solc" / "solc"
"""solc-compatible entry point: native solc 0.8.28 if on PATH, else solc-js."""

SOLCX_DIR: Path = PROJECT_ROOT / ".solcx"
"""py-solc-x's install folder for this project (SOLCX_BINARY_PATH points here)."""

BUILD_CACHE_DIR: Path = PROJECT_ROOT / ".build" / "marginsim"
"""Compiled-output cache of simulation.build, one JSON file per input hash."""
