"""Throughput, keeper-scan latency and memory of the simulation, measured in one run; prints JSON.

    python benchmarks/throughput.py            # raw vs engine tx/s, scan of 10,000 positions
    python benchmarks/throughput.py --memory   # also a 20,000-block run, sampling RSS of engine and anvil

raw_tx_per_s is anvil's ceiling for the engine's own kind of work: one JSON-RPC batch of 1,000 vault
`openIsolated` transactions (explicit gas and nonces, no estimation), then one `evm_mine`. The engine's
figure is tx sent / loop wall time on benchmarks/scenarios/heavy.yaml (150 traders).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from web3 import Web3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulation.abi import ContractAbi
from simulation.build import compile_contracts
from simulation.chain import AnvilNode
from simulation.deploy import SystemSpec, deploy_system
from simulation.rpc import Rpc, RpcError
from simulation.runner import run_scenario
from simulation.scenario import load_scenario
from simulation.units import USDC, WAD

HERE = Path(__file__).resolve().parent


def _rss_mb(pid: int | str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Bench:
    """A deployed system on a no-automine anvil with `n` funded senders."""

    def __init__(self, node: AnvilNode, senders: int):
        self.w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        self.d = deploy_system(self.w3, compile_contracts(), spec=SystemSpec(lp_liquidity_usd=1e11))
        self.rpc = Rpc(node.rpc_url)
        self.vault, self.token = (
            ContractAbi(self.d.abis["MarginVault"]),
            ContractAbi(self.d.abis["MockERC20"]),
        )
        self.senders = [a for a in self.w3.eth.accounts[1 : 1 + senders]]
        usdc, v = self.d.contract("USDC"), self.d.addresses["MarginVault"]
        for s in self.senders:
            usdc.functions.mint(s, 10**9 * USDC).transact({"from": self.d.deployer})
            usdc.functions.approve(v, 2**256 - 1).transact({"from": s})
        self.rpc.call("evm_setAutomine", [False])
        self.nonces: dict[str, int] = {
            s: int(self.w3.eth.get_transaction_count(s)) for s in self.senders
        }

    def opens(self, n: int, size: int = WAD // 10) -> list[tuple[str, list[Any]]]:
        calls = []
        for i in range(n):
            s = self.senders[i % len(self.senders)]
            data = self.vault["openIsolated"].calldata(
                i % 2, size if i % 2 == 0 else size // 20, 100 * USDC
            )
            tx = {
                "from": s,
                "to": self.d.addresses["MarginVault"],
                "data": data,
                "gas": hex(400_000),
                "nonce": hex(self.nonces[s]),
                "maxFeePerGas": hex(10**11),
                "maxPriorityFeePerGas": hex(10**9),
            }
            self.nonces[s] += 1
            calls.append(("eth_sendTransaction", [tx]))
        return calls

    def send_and_mine(self, calls: list[tuple[str, list[Any]]]) -> float:
        t = time.perf_counter()
        answers = self.rpc.batch(calls)
        self.rpc.call("evm_mine", [])
        elapsed = time.perf_counter() - t
        refused = [a for a in answers if isinstance(a, RpcError)]
        assert not refused, refused[0]
        return elapsed


def raw_and_scan(rounds: int = 3) -> dict[str, Any]:
    with AnvilNode(accounts=101, automine=True) as node:
        b = Bench(node, 100)
        times = [b.send_and_mine(b.opens(1000)) for _ in range(rounds)]
        raw = 1000 / min(times)
        while (
            int(
                b.rpc.call(
                    "eth_call",
                    [
                        {
                            "to": b.d.addresses["MarginVault"],
                            "data": b.vault["openPositionCount"].calldata(),
                        },
                        "latest",
                    ],
                ),
                16,
            )
            < 10_000
        ):
            b.send_and_mine(b.opens(1000))
        lens, scan = (
            b.d.addresses["MarginLens"],
            ContractAbi(b.d.abis["MarginLens"])["scanIsolated"],
        )
        call = {"to": lens, "data": scan.calldata(0, 10_000), "gas": hex(2_000_000_000)}
        samples, found = [], 0
        for _ in range(7):
            t = time.perf_counter()
            out = scan.decode_output(b.rpc.call("eth_call", [call, "latest"]))
            samples.append((time.perf_counter() - t) * 1000)
            found = int(out[1])
        return {
            "raw_tx_per_s": round(raw, 1),
            "raw_batch_s": round(min(times), 3),
            "scan_ms_10k": round(statistics.median(samples), 1),
            "scan_positions": found,
        }


def engine() -> dict[str, Any]:
    sc = load_scenario(HERE / "scenarios" / "heavy.yaml")
    with tempfile.TemporaryDirectory() as out:
        code, s = run_scenario(sc, Path(out), progress=False)
    assert code == 0, s
    return {
        "engine_tx_per_s": s["tx_per_s"],
        "engine_blocks": s["blocks"],
        "engine_tx_sent": s["tx_sent"],
        "engine_wall_s": s["wall_s"],
        "engine_round_trips_per_block": s["rpc_round_trips_per_block"],
    }


def memory() -> dict[str, Any]:
    sc = load_scenario(HERE / "scenarios" / "long.yaml")
    samples: list[tuple[int, float, float]] = []

    def sample(block: int, anvil: int | None) -> None:
        if block % 1000 == 0 and anvil:
            samples.append((block, _rss_mb("self"), _rss_mb(anvil)))

    with tempfile.TemporaryDirectory() as out:
        code, s = run_scenario(sc, Path(out), progress=False, monitor=sample)
    assert code == 0, s
    first, last = samples[0], samples[-1]
    return {
        "memory_blocks": s["blocks"],
        "memory_wall_s": s["wall_s"],
        "engine_rss_mb": {
            "at_1000": round(first[1], 1),
            "at_end": round(last[1], 1),
            "peak": round(max(x[1] for x in samples), 1),
        },
        "anvil_rss_mb": {
            "at_1000": round(first[2], 1),
            "at_end": round(last[2], 1),
            "peak": round(max(x[2] for x in samples), 1),
        },
        "rss_samples": [
            {"block": b, "engine_mb": round(e, 1), "anvil_mb": round(a, 1)} for b, e, a in samples
        ],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--memory", action="store_true", help="add the 20,000-block memory run")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "throughput.json")
    args = ap.parse_args()
    result: dict[str, Any] = {"cpus": os.cpu_count()}
    result.update(raw_and_scan())
    result.update(engine())
    result["ratio"] = round(result["engine_tx_per_s"] / result["raw_tx_per_s"], 3)
    if args.memory:
        result.update(memory())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rss_samples"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
