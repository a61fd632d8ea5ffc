"""The in-process backend (revm) against anvil: the same scenario and seed write the same outputs on both
(summary with its wall-clock fields aside, time series, events), and the chain semantics the engine
relies on (block order, gas, base fees, revert data, snapshots) agree transaction by transaction."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from simulation.backends import http_transport, revm_transport
from simulation.build import compile_contracts
from simulation.chain import AnvilNode
from simulation.deploy import SystemSpec, deploy_system
from simulation.parity import first_divergence
from simulation.parity import main as parity_main
from simulation.runner import run_scenario
from simulation.scenario import load_scenario
from simulation.units import GWEI

ROOT = Path(__file__).resolve().parents[1]


def run_both(name: str, tmp: Path) -> tuple[Path, Path]:
    sc = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    outs = tmp / "anvil", tmp / "revm"
    for out, backend in zip(outs, ("anvil", "revm"), strict=True):
        code, summary = run_scenario(sc, out, progress=False, backend=backend)
        assert code == 0 and summary["status"] == "completed"
    return outs


@pytest.mark.parametrize("name", ["calm", "thin_market", "adversaries", "crowded_long"])
def test_both_backends_write_the_same_outputs(name, tmp_path):
    """calm: everyday trading; thin_market: the crash (100+ liquidations of both kinds, keepers' lost
    races, reverts) with liquidations moving the price (market depth);
    adversaries: reverts with custom errors, bad debt, a stale feed; crowded_long: funding accrued by
    the second over three days of five-minute blocks."""
    anvil, revm = run_both(name, tmp_path)
    assert first_divergence(anvil, revm) is None
    summary = json.loads((revm / "summary.json").read_text())
    if name == "thin_market":  # the run exercises what the parity is for
        assert summary["liquidations"]["isolated"] > 0 and summary["liquidations"]["cross"] > 0
        assert summary["tx_reverted"] > 0
    if name == "crowded_long":
        assert summary["funding"]["to_pool_usd"] > 0 and summary["funding"]["open_usd"] != 0


@pytest.fixture(scope="module")
def calm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("calm")
    sc = load_scenario(ROOT / "scenarios" / "calm.yaml").model_copy(update={"blocks": 40})
    code, _ = run_scenario(sc, out, progress=False, backend="revm")
    assert code == 0
    return out


def test_a_divergence_names_its_first_block_and_field(calm_run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(calm_run, other)
    assert first_divergence(calm_run, other) is None
    rows = (other / "timeseries.csv").read_text().splitlines()
    header = rows[0].split(",")
    col = header.index("lp_share_price")
    cells = rows[30].split(",")
    block = int(cells[header.index("block")])
    cells[col] = cells[col] + "1"
    rows[30] = ",".join(cells)
    (other / "timeseries.csv").write_text("\n".join(rows) + "\n")
    found = first_divergence(calm_run, other)
    assert found is not None and f"block {block}" in found and "lp_share_price" in found
    shutil.copy(calm_run / "timeseries.csv", other / "timeseries.csv")
    summary = json.loads((other / "summary.json").read_text())
    summary["wall_s"] += 1  # wall clock: allowed to differ
    (other / "summary.json").write_text(json.dumps(summary))
    assert first_divergence(calm_run, other) is None
    summary["tx_sent"] += 1
    (other / "summary.json").write_text(json.dumps(summary))
    assert "tx_sent" in (first_divergence(calm_run, other) or "")
    assert parity_main([str(calm_run), str(other)]) == 1
    assert parity_main([str(calm_run), str(calm_run)]) == 0
    assert parity_main([str(calm_run), str(tmp_path / "nothing")]) == 2


# ------------------------------------------------------------------ transaction by transaction


@pytest.fixture(scope="module")
def chains() -> Iterator[dict[str, Any]]:
    """The local system deployed on a fresh anvil and on a fresh revm chain."""
    artifacts = compile_contracts()
    with AnvilNode() as node:
        out = {}
        for name, t in (("anvil", http_transport(node.rpc_url)), ("revm", revm_transport(10))):
            t.w3.provider.make_request("anvil_setBlockTimestampInterval", [1])  # type: ignore[arg-type]
            d = deploy_system(t.w3, artifacts, t.w3.eth.accounts[0], SystemSpec())
            out[name] = (t, d)
        yield out


def block_of(t: Any, txs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Send `txs` without mining, mine one block, return its receipts in block order (base fee, index
    in `txs`, status, gas, logs); a transaction the block left out is not there."""
    rpc = t.rpc
    rpc.call("evm_setAutomine", [False])
    try:
        hashes = rpc.batch([("eth_sendTransaction", [tx]) for tx in txs])
        rpc.call("evm_mine", [])
    finally:
        rpc.call("evm_setAutomine", [True])
    receipts = rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
    block = rpc.call("eth_getBlockByNumber", ["latest", False])
    mined = [i for i, r in enumerate(receipts) if r is not None]
    order = sorted(mined, key=lambda i: int(receipts[i]["transactionIndex"], 16))
    return [
        (
            int(block["baseFeePerGas"], 16),
            i,
            receipts[i]["status"],
            receipts[i]["gasUsed"],
            [(log["address"].lower(), log["topics"], log["data"]) for log in receipts[i]["logs"]],
        )
        for i in order
    ]


def test_a_block_is_ordered_and_metered_alike(chains):
    """Fees decide the order, arrival breaks ties, a sender's nonces stay in order; gas, logs and a
    revert's status agree to the unit."""
    results = {}
    for name, (t, d) in chains.items():
        w3: Web3 = t.w3
        a = w3.eth.accounts
        usdc = d.contract("USDC")
        vault = d.contract("MarginVault")

        def tx(sender: str, fn: Any, tip_gwei: int, nonce: int) -> dict[str, Any]:
            return {
                "from": sender,
                "to": fn.address,
                "data": fn._encode_transaction_data(),
                "gas": hex(500_000),
                "maxPriorityFeePerGas": hex(tip_gwei * GWEI),
                "maxFeePerGas": hex(50 * GWEI + tip_gwei * GWEI),  # as the engine: 2 x base + tip
                "nonce": hex(nonce),
            }

        n = {s: w3.eth.get_transaction_count(s) for s in a[:4]}
        txs = [
            tx(a[0], usdc.functions.mint(a[1], 10**12), 1, n[a[0]]),
            tx(a[1], usdc.functions.approve(vault.address, 2**256 - 1), 9, n[a[1]]),
            tx(a[2], usdc.functions.approve(vault.address, 7), 3, n[a[2]]),
            tx(a[3], usdc.functions.transfer(a[2], 1), 3, n[a[3]]),  # reverts: a[3] holds none
            tx(a[0], usdc.functions.mint(a[2], 5 * 10**11), 2, n[a[0]] + 1),
            # reverts: it comes before the mint to a[1] (a higher tip, its nonce is next)
            tx(a[1], vault.functions.depositCollateral(usdc.address, 10**11), 5, n[a[1]] + 1),
        ]
        results[name] = block_of(t, txs)
    assert results["anvil"] == results["revm"]
    order = [i for _, i, *_ in results["revm"]]
    # tips 9, 5 (its nonce next), 3, 3 (arrived later), 1; the mint priced above the sender's
    # transaction before it is dropped (anvil's pool does that; revm does the same)
    assert order == [1, 5, 2, 3, 0]
    assert [s for _, _, s, *_ in results["revm"]] == ["0x1", "0x0", "0x1", "0x0", "0x1"]


def test_calls_reverts_and_snapshots_agree(chains):
    out = {}
    for name, (t, d) in chains.items():
        rpc, vault = t.rpc, d.contract("MarginVault")
        a = t.w3.eth.accounts
        snap = rpc.call("evm_snapshot", [])
        before = rpc.batch(
            [
                ("eth_getTransactionCount", [a[5], "latest"]),
                ("eth_blockNumber", []),
                ("eth_getBalance", [a[5], "latest"]),
            ]
        )
        bad = {
            "from": a[5],
            "to": vault.address,
            "data": vault.encode_abi("liquidateCross", [a[6]]),
        }
        reverted = rpc.batch([("eth_call", [bad, "latest"])])[0]
        rpc.call("evm_setAutomine", [False])  # mined explicitly: anvil's automine is asynchronous
        try:
            h = rpc.call("eth_sendTransaction", [{**bad, "gas": hex(400_000)}])
            rpc.call("evm_mine", [])
        finally:
            rpc.call("evm_setAutomine", [True])
        receipt = rpc.call("eth_getTransactionReceipt", [h])
        trace = rpc.call("debug_traceTransaction", [h, {"tracer": "callTracer"}])
        rpc.call("evm_revert", [snap])
        after = rpc.batch(
            [
                ("eth_getTransactionCount", [a[5], "latest"]),
                ("eth_blockNumber", []),
                ("eth_getBalance", [a[5], "latest"]),
            ]
        )
        out[name] = (reverted.data, receipt["status"], receipt["gasUsed"], trace["output"])
        assert after == before  # the snapshot took back the block, the nonce and the gas paid
    assert out["anvil"] == out["revm"]
    assert out["revm"][1] == "0x0" and out["revm"][0] == out["revm"][3] != "0x"


def test_the_dev_account_table_is_anvils(chains):
    """The in-process chain reads anvil's dev accounts from a table derived once: it must be anvil's."""
    from eth_account import Account

    from simulation.chain import ANVIL_MNEMONIC
    from simulation.revm_chain import dev_addresses

    table = dev_addresses(1000)
    anvil = chains["anvil"][0].w3.eth.accounts
    assert [a.lower() for a in table[: len(anvil)]] == [a.lower() for a in anvil]
    Account.enable_unaudited_hdwallet_features()
    for i in (0, 517, 999):
        path = f"m/44'/60'/0'/0/{i}"
        assert table[i] == Account.from_mnemonic(ANVIL_MNEMONIC, account_path=path).address
    assert len(dev_addresses(1001)) == 1001  # past the table: derived
