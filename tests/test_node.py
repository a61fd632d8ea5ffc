"""`marginsim node` as a user meets it: a subprocess, driven with the `cast` binary, then Ctrl-C.

ape's own session anvil is not used here: the node under test starts its own on a free port.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from simulation.chain import free_port
from simulation.paths import PROJECT_ROOT, TOOLS_BIN

WAD = 10**18
USDC_UNIT = 10**6
MANIFEST_TIMEOUT_S = 60
STOP_TIMEOUT_S = 15
HEALTH_SIG = "isolatedHealth(uint256)((int256,uint256,uint256))"


def _binary(name: str, fallback_dir: Path) -> str:
    local = fallback_dir / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found (./scripts/setup.sh installs it)")
    return found


def marginsim() -> str:
    return _binary("marginsim", Path(sys.executable).parent)


def cast(*args: str) -> str:
    r = subprocess.run(
        [_binary("cast", TOOLS_BIN), *args], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, f"cast {' '.join(args)} failed:\n{r.stderr}"
    return r.stdout


def cast_call(m: dict[str, Any], to: str, sig: str, *args: str) -> Any:
    """`cast call --json`: one list entry per return value, big integers as strings."""
    return json.loads(cast("call", to, sig, *args, "--rpc-url", m["rpc_url"], "--json"))


def cast_send(m: dict[str, Any], key: str, to: str, sig: str, *args: str) -> dict[str, Any]:
    # An explicit gas limit: cast's estimate is exact for the block it estimates on, and under load
    # the transaction can land a second later, where a time-dependent path costs a little more.
    out = cast(
        "send", to, sig, *args, "--rpc-url", m["rpc_url"], "--private-key", key, "--json",
        "--gas-limit", "2000000",
    )  # fmt: skip
    receipt: dict[str, Any] = json.loads(out)
    if receipt["status"] != "0x1":  # say why: replay the call on the block before, with its revert
        block = str(int(receipt["blockNumber"], 16) - 1)
        data = cast("calldata", sig, *args).strip()
        replay = ["call", to, data, "--from", receipt["from"], "--block", block]
        why = subprocess.run(
            [_binary("cast", TOOLS_BIN), *replay, "--rpc-url", m["rpc_url"]],
            capture_output=True,
            text=True,
            timeout=60,
        )
        raise AssertionError(f"{sig} reverted: {why.stderr.strip() or why.stdout.strip()}")
    return receipt


def cast_in_project(*args: str) -> str:
    """cast run from the project's root, where foundry.toml is: stdout and stderr together (a
    reverted call exits non-zero). The first use compiles contracts/ with the project's solc."""
    r = subprocess.run(
        [_binary("cast", TOOLS_BIN), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=PROJECT_ROOT,
    )
    return r.stdout + r.stderr


@contextmanager
def node_process(port: int, manifest: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`marginsim node` in its own session; killed (anvil with it) however the test ends."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [marginsim(), "node", "--port", str(port), "--manifest", str(manifest)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()  # SIGTERM: the node stops its anvil
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()  # anvil gets SIGTERM from its parent-death signal
                proc.wait(timeout=5)


def wait_for_manifest(proc: subprocess.Popen[bytes], manifest: Path, log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + MANIFEST_TIMEOUT_S
    while time.monotonic() < deadline:
        if manifest.exists():
            data: dict[str, Any] = json.loads(manifest.read_text())
            return data
        if proc.poll() is not None:
            pytest.fail(
                f"node exited with {proc.returncode} before the manifest:\n{log.read_text()}"
            )
        time.sleep(0.2)
    pytest.fail(f"no manifest after {MANIFEST_TIMEOUT_S}s:\n{log.read_text()}")


def answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_node_serves_cast_and_stops_on_sigint(tmp_path):
    port, manifest, log = free_port(), tmp_path / "out" / "node.json", tmp_path / "node.log"
    with node_process(port, manifest, log) as proc:
        m = wait_for_manifest(proc, manifest, log)
        assert m["rpc_url"] == f"http://127.0.0.1:{port}"
        assert m["market_ids"] == {"ETH-USD": 0, "BTC-USD": 1}
        w3 = Web3(Web3.HTTPProvider(m["rpc_url"]))
        assert w3.eth.chain_id == m["chain_id"] == 31337
        vault_addr, usdc_addr = m["addresses"]["MarginVault"], m["addresses"]["USDC"]
        vault = w3.eth.contract(address=vault_addr, abi=m["abis"]["MarginVault"])
        usdc = w3.eth.contract(address=usdc_addr, abi=m["abis"]["MockERC20"])
        keys = {a["address"]: a["private_key"] for a in m["dev_accounts"]}
        assert list(keys) == w3.eth.accounts  # the manifest's keys are anvil's accounts

        # reads: cast and web3 through the manifest's ABI agree
        assert cast_call(m, vault_addr, "marketCount()(uint256)") == [2]
        assert vault.functions.marketCount().call() == 2
        lens_addr = m["addresses"]["MarginLens"]
        lens = w3.eth.contract(address=lens_addr, abi=m["abis"]["MarginLens"])
        [health] = cast_call(m, lens_addr, HEALTH_SIG, "1")
        equity, initial, maintenance = lens.functions.isolatedHealth(1).call()
        assert [int(x) for x in health] == [equity, initial, maintenance]
        assert equity > initial > maintenance > 0  # seeded position 1 is healthy

        # writes: a fresh dev account, funded and approved by the node, opens an isolated long and
        # posts WETH to its cross account with cast, nothing minted or approved first
        trader = m["dev_accounts"][5]["address"]
        assert all(p[0] != trader for p in vault.functions.openPositions(0, 1000).call()[1])
        trader_key = keys[trader]
        for symbol, amount in m["funded"]["tokens"].items():
            token = w3.eth.contract(address=m["addresses"][symbol], abi=m["abis"]["MockERC20"])
            assert token.functions.balanceOf(trader).call() == amount, symbol
            for spender in ("MarginVault", "LPPool"):
                allowance = token.functions.allowance(trader, m["addresses"][spender]).call()
                assert allowance == 2**256 - 1, (symbol, spender)
        assert m["funded"]["tokens"]["USDC"] == 1_000_000 * USDC_UNIT
        count_before = vault.functions.openPositionCount().call()
        next_id = vault.functions.nextPositionId().call()
        cast_send(
            m,
            trader_key,
            vault_addr,
            "openIsolated(uint256,int256,uint256)",
            "0",
            str(WAD),
            str(500 * USDC_UNIT),
        )
        assert vault.functions.openPositionCount().call() == count_before + 1
        owner, market_id, _, size, margin, *_ = vault.functions.position(next_id).call()
        assert (owner, market_id, size) == (trader, 0, WAD)
        assert 0 < margin <= 500 * USDC_UNIT
        assert usdc.functions.balanceOf(trader).call() == (1_000_000 - 500) * USDC_UNIT
        weth = m["addresses"]["WETH"]
        cast_send(m, trader_key, vault_addr, "depositCollateral(address,uint256)", weth, str(WAD))
        assert vault.functions.collateralBalance(trader, weth).call() == WAD

        # Foundry-format artifacts beside foundry.toml, with the manifest's ABIs
        out = Path(m["foundry_artifacts"])
        artifact = json.loads((out / "MarginVault.sol" / "MarginVault.json").read_text())
        assert artifact["abi"] == m["abis"]["MarginVault"]
        assert artifact["methodIdentifiers"]["openIsolated(uint256,int256,uint256)"] == (
            cast("sig", "openIsolated(uint256,int256,uint256)").strip().removeprefix("0x")
        )

        # cast decodes the protocol's custom errors: a call (traced) and a mined transaction (run)
        too_levered = ["openIsolated(uint256,int256,uint256)", "0", str(WAD), "1"]
        rpc = ["--rpc-url", m["rpc_url"]]
        traced = cast_in_project(
            "call", vault_addr, *too_levered, "--from", trader, "--trace",
            "--with-local-artifacts", *rpc,
        )  # fmt: skip
        assert "LeverageTooHigh(" in traced, traced[-2000:]
        sent = json.loads(
            cast(
                "send",
                vault_addr,
                *too_levered,
                "--private-key",
                trader_key,
                "--gas-limit",
                "1000000",
                "--json",
                *rpc,
            )
        )
        assert sent["status"] == "0x0"  # mined, reverted
        ran = cast_in_project("run", sent["transactionHash"], "--with-local-artifacts", *rpc)
        assert "LeverageTooHigh(" in ran, ran[-2000:]

        # Ctrl-C: exit 0, anvil gone
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=STOP_TIMEOUT_S) == 0, log.read_text()
        assert not answers(port), f"something still answers on port {port} after the node stopped"


def test_node_refuses_a_port_in_use(tmp_path):
    manifest, log = tmp_path / "node.json", tmp_path / "node.log"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with node_process(port, manifest, log) as proc:
            assert proc.wait(timeout=STOP_TIMEOUT_S * 2) == 2, log.read_text()
        message = log.read_text()
        assert str(port) in message and "in use" in message, message
        assert not manifest.exists()
