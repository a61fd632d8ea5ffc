"""Fork start time, fork cache and a crash on a fork, measured against the local mainnet stand-in;
prints JSON (and writes it to benchmarks/results/fork.json).

    python benchmarks/fork.py [--blocks 900]

fork_start_s is the time from starting anvil with --fork-url until it answers; it is measured twice
at the same block, with an empty cache (miss) and with the cache the first start left (hit), with a
counting relay between anvil and the stand-in to show what each start fetched. Then the crash scenario
runs on a fork of the stand-in (cache warm), as ./scripts/fork_crash.sh does.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulation.fork import ForkTarget, fork_node
from simulation.relay import CountingRelay
from simulation.runner import run_scenario
from simulation.scenario import load_scenario
from simulation.upstream import start_upstream

ROOT = Path(__file__).resolve().parent.parent


def fork_start(upstream_url: str, cache_root: Path) -> dict[str, Any]:
    relay = CountingRelay(upstream_url)
    try:
        target = ForkTarget(relay.url, "benchmark", None, cache_root)
        node, _, hit = fork_node(target, accounts=47)  # the crash scenario's agents
        t = time.monotonic()
        node.start(timeout_s=300)
        start_s = time.monotonic() - t
        node.stop()
        return {
            "cache": "hit" if hit else "miss",
            "start_s": round(start_s, 3),
            "fetched": relay.fetched(),
        }
    finally:
        relay.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=900)
    args = ap.parse_args()
    node, _ = start_upstream()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cache = Path(tmp) / "cache"
            starts = [fork_start(node.rpc_url, cache) for _ in range(2)]
            sc = load_scenario(ROOT / "scenarios" / "crash.yaml")
            sc = sc.model_copy(update={"blocks": args.blocks})
            target = ForkTarget(node.rpc_url, "benchmark", None, cache)
            t = time.monotonic()
            code, s = run_scenario(sc, Path(tmp) / "out", progress=False, fork=target)
            total_s = time.monotonic() - t
    finally:
        node.stop()
    result = {
        "fork_start_miss_s": starts[0]["start_s"],
        "fork_start_hit_s": starts[1]["start_s"],
        "fetched_miss": starts[0]["fetched"],
        "fetched_hit": starts[1]["fetched"],
        "crash_exit_code": code,
        "crash_blocks": s.get("blocks"),
        "crash_total_s": round(total_s, 3),
        "crash_setup_s": s.get("setup_s"),
        "crash_wall_s": s.get("wall_s"),
        "crash_tx_sent": s.get("tx_sent"),
        "crash_liquidations": s.get("liquidations"),
        "crash_bad_debt_usd": s.get("bad_debt_usd"),
        "crash_fork": {
            k: v for k, v in (s.get("fork") or {}).items() if k in ("block", "start_s", "cache")
        },
    }
    out = ROOT / "benchmarks" / "results" / "fork.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
