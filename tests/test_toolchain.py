"""The offline toolchain: solc 0.8.28 through the solc-js wrapper, the build cache, native anvil."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version
from solcx import compile_source, compile_standard
from solcx.install import get_executable
from solcx.wrapper import get_solc_version

from simulation import build
from simulation.paths import NODE_MODULES, SOLC_WRAPPER

SOLC_VERSION = "0.8.28"
OZ_ERC20 = "@openzeppelin/contracts/token/ERC20/ERC20.sol"
CHAINLINK_FEED = "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol"
TOKEN_SOL = f"""// SPDX-License-Identifier: MIT
pragma solidity {SOLC_VERSION};

import {{ERC20}} from "{OZ_ERC20}";

contract Token is ERC20 {{
    constructor() ERC20("Token", "TOK") {{
        _mint(msg.sender, 1e18);
    }}
}}
"""


def test_wrapper_answers_version_like_native_solc() -> None:
    out = subprocess.run(
        ["node", str(SOLC_WRAPPER.with_name("solc.js")), "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == (
        "solc, the solidity compiler commandline interface\n"
        "Version: 0.8.28+commit.7893614a.Emscripten.clang\n"
    )


def test_shim_prefers_a_native_solc_0_8_28_on_path(tmp_path: Path) -> None:
    fake = tmp_path / "solc"  # stands in for a native solc: reports 0.8.28, echoes its args
    fake.write_text(
        "#!/usr/bin/env bash\n"
        'if [[ "$1" == --version ]]; then echo "Version: 0.8.28+commit.7893614a.Linux.g++";'
        ' else echo "native $*"; fi\n'
    )
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    out = subprocess.run(
        [str(SOLC_WRAPPER), "--standard-json", "--base-path", "/x"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    root = SOLC_WRAPPER.resolve().parents[2]
    assert out == (
        f"native --standard-json --base-path /x --include-path {root}"
        f" --include-path {root}/node_modules\n"
    )


def test_registered_solc_is_0_8_28() -> None:
    solc = get_executable(SOLC_VERSION)  # $SOLCX_BINARY_PATH/solc-v0.8.28
    assert get_solc_version(solc, with_commit_hash=True) == Version("0.8.28+commit.7893614a")


def test_compile_standard_with_openzeppelin_import(tmp_path: Path) -> None:
    (tmp_path / "Token.sol").write_text(TOKEN_SOL)
    oz = NODE_MODULES / "@openzeppelin" / "contracts"
    output = compile_standard(
        {
            "language": "Solidity",
            "sources": {"Token.sol": {"urls": ["Token.sol"]}},
            "settings": {
                "remappings": [f"@openzeppelin/contracts/={oz}/"],
                "outputSelection": {"Token.sol": {"*": ["abi", "evm.deployedBytecode.object"]}},
            },
        },
        base_path=tmp_path,
        allow_paths=[NODE_MODULES],
        solc_version=SOLC_VERSION,
    )
    token = output["contracts"]["Token.sol"]["Token"]
    assert {entry.get("name") for entry in token["abi"]} >= {"transfer", "balanceOf"}
    assert len(token["evm"]["deployedBytecode"]["object"]) > 1000


def test_compile_source_combined_json_as_ape_solidity_calls_it() -> None:
    """ape-solidity's compile_code path: `--combined-json` (outputs listed by `--help`)."""
    source = f"pragma solidity {SOLC_VERSION};\ncontract C {{ uint256 public x; }}\n"
    output = compile_source(source, solc_version=SOLC_VERSION, optimize=True, optimize_runs=200)
    contract = output["<stdin>:C"]
    assert [entry["name"] for entry in contract["abi"]] == ["x"]
    assert contract["bin"] and contract["bin-runtime"] and contract["srcmap"]
    assert contract["ast"]["nodeType"] == "SourceUnit"


def _run_wrapper(sources: dict[str, str], *flags: str) -> dict[str, Any]:
    """Compile through tools/solc/solc.js itself (not a native solc) in standard-JSON mode."""
    request = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": {"outputSelection": {"*": {"*": ["evm.bytecode.object"]}}},
    }
    result = subprocess.run(
        ["node", str(SOLC_WRAPPER.with_name("solc.js")), "--standard-json", *flags],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=True,
    )
    output: dict[str, Any] = json.loads(result.stdout)  # stdout holds only the JSON
    return output


def _errors(output: dict[str, Any]) -> list[str]:
    return [e["message"] for e in output.get("errors", []) if e["severity"] == "error"]


def test_wrapper_resolves_imports_from_include_path_and_node_modules(tmp_path: Path) -> None:
    lib = tmp_path / "lib" / "mylib"
    lib.mkdir(parents=True)
    (lib / "Half.sol").write_text(
        f"// SPDX-License-Identifier: MIT\npragma solidity {SOLC_VERSION};\n"
        "library Half { function half(uint256 x) internal pure returns (uint256) "
        "{ return x / 2; } }\n"
    )
    main = TOKEN_SOL.replace(
        "import {ERC20}", 'import {Half} from "mylib/Half.sol";\nimport {ERC20}'
    )
    flags = ("--base-path", str(tmp_path / "src"), "--include-path", str(tmp_path / "lib"))

    output = _run_wrapper({"Token.sol": main}, *flags)
    assert not _errors(output)
    assert {"mylib/Half.sol", OZ_ERC20} <= set(output["sources"])
    assert output["contracts"]["Token.sol"]["Token"]["evm"]["bytecode"]["object"]

    without_include = _run_wrapper({"Token.sol": main}, "--base-path", str(tmp_path / "src"))
    assert any("mylib/Half.sol" in message for message in _errors(without_include))


def test_wrapper_honours_allow_paths(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Const.sol").write_text(
        f"// SPDX-License-Identifier: MIT\npragma solidity {SOLC_VERSION};\n"
        "uint256 constant ANSWER = 42;\n"
    )
    main = (
        f"// SPDX-License-Identifier: MIT\npragma solidity {SOLC_VERSION};\n"
        f'import {{ANSWER}} from "{outside / "Const.sol"}";\n'
        "contract C { function f() external pure returns (uint256) { return ANSWER; } }\n"
    )
    base = ("--base-path", str(tmp_path / "src"))
    denied = _run_wrapper({"C.sol": main}, *base)
    assert any("outside of allowed directories" in message for message in _errors(denied))
    allowed = _run_wrapper({"C.sol": main}, *base, "--allow-paths", f"{tmp_path / 'x'},{outside}")
    assert not _errors(allowed)


def _write_sources(sources_dir: Path) -> None:
    (sources_dir / "mocks").mkdir(parents=True)
    (sources_dir / "Token.sol").write_text(TOKEN_SOL)
    (sources_dir / "mocks" / "Feed.sol").write_text(
        f"""// SPDX-License-Identifier: MIT
pragma solidity {SOLC_VERSION};

import {{AggregatorV3Interface}} from "{CHAINLINK_FEED}";
import {{Token}} from "../Token.sol";

contract FeedUser {{
    AggregatorV3Interface public immutable feed;
    Token public immutable token;

    constructor(AggregatorV3Interface feed_, Token token_) {{
        feed = feed_;
        token = token_;
    }}
}}
"""
    )


def test_compile_contracts_returns_artifacts_then_hits_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources_dir, cache_dir = tmp_path / "contracts", tmp_path / "cache"
    _write_sources(sources_dir)
    calls: list[dict[str, Any]] = []
    real_run_solc = build.run_solc

    def counting_run_solc(input_json: dict[str, Any], version: str) -> dict[str, Any]:
        calls.append(input_json)
        return real_run_solc(input_json, version)

    monkeypatch.setattr(build, "run_solc", counting_run_solc)

    first = build.compile_contracts(sources_dir, cache_dir=cache_dir)
    assert set(first) == {"Token", "FeedUser"}  # only our contracts, not OpenZeppelin's
    assert first["FeedUser"].source_path == sources_dir / "mocks" / "Feed.sol"
    assert first["Token"].deployed_bytecode.startswith("0x6080")
    assert 0 < first["Token"].deployed_size_bytes < build.MAX_DEPLOYED_SIZE_BYTES
    assert len(calls) == 1
    assert calls[0]["settings"]["evmVersion"] == "cancun"
    assert calls[0]["settings"]["optimizer"] == {"enabled": True, "runs": 200}
    assert calls[0]["settings"]["remappings"] == [  # as ape-config.yaml's import_remapping
        "@chainlink/contracts=node_modules/@chainlink/contracts",
        "@openzeppelin/contracts=node_modules/@openzeppelin/contracts",
    ]
    assert len(list(cache_dir.glob("*.json"))) == 1

    second = build.compile_contracts(sources_dir, cache_dir=cache_dir)
    assert second == first
    assert len(calls) == 1  # served from .build cache, compiler not run

    (sources_dir / "Token.sol").write_text(TOKEN_SOL + "// changed\n")
    build.compile_contracts(sources_dir, cache_dir=cache_dir)
    assert len(calls) == 2  # a changed source is recompiled


def test_anvil_on_path_is_the_native_1x_binary() -> None:
    found = shutil.which("anvil")
    assert found, "anvil is not on PATH: source scripts/env.sh"
    real = Path(found).resolve()
    with real.open("rb") as binary:
        magic = binary.read(4)
    assert magic in (b"\x7fELF", b"\xcf\xfa\xed\xfe"), f"{real} is not native"
    first_line = subprocess.run(
        [found, "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    assert re.match(r"anvil Version: 1\.\d+\.\d+", first_line), first_line
