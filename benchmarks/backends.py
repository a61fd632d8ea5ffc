"""Both backends in one run, on the same scenarios and seeds; prints JSON.

    python benchmarks/backends.py            # heavy (engine tx/s) and crash (seconds per simulated day)
    python benchmarks/backends.py --memory   # also 20,000 blocks on revm, sampling this process's RSS
    python benchmarks/backends.py --evm-split   # also heavy on revm with pyrevm's own time apart:
                                                # speedup_ceiling = anvil's run / the EVM's time alone

`*_engine_tx_per_s`: tx sent / loop wall time on benchmarks/scenarios/heavy.yaml (150 traders);
`backend_speedup` = revm / anvil. `sim_day_s`: loop wall time of scenarios/crash.yaml scaled to one
simulated day (900 blocks of 12 s are 3 hours). Both runs of a scenario write the same outputs (the
parity tests check it); this measures only their speed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # its sibling benchmarks (a `benchmarks`
# package in site-packages shadows the directory)

from throughput import _rss_mb

from simulation.runner import run_scenario
from simulation.scenario import load_scenario

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _run(path: Path, backend: str, monitor: Any = None) -> dict[str, Any]:
    sc = load_scenario(path)
    with tempfile.TemporaryDirectory() as out:
        code, s = run_scenario(sc, Path(out), progress=False, backend=backend, monitor=monitor)
    assert code == 0, s
    s["block_time_s"] = sc.block_time_s
    return s


def memory() -> dict[str, Any]:
    samples: list[tuple[int, float]] = []

    def sample(block: int, _pid: int | None) -> None:
        if block % 1000 == 0:
            samples.append((block, _rss_mb("self")))

    s = _run(HERE / "scenarios" / "long.yaml", "revm", sample)
    return {
        "revm_memory_blocks": s["blocks"],
        "revm_memory_wall_s": s["wall_s"],
        "revm_rss_mb": {"at_1000": samples[0][1], "at_end": samples[-1][1]},
        "revm_rss_samples": [{"block": b, "mb": round(m, 1)} for b, m in samples],
    }


def evm_split(scenario: Path = HERE / "scenarios" / "heavy.yaml") -> dict[str, Any]:
    """`scenario` on revm with every pyrevm `message_call` timed, by target contract and selector: how
    much of the run is the EVM itself (a floor no Python-side cut can go under)."""
    import collections
    import time

    import simulation.revm_chain as rc

    spent: dict[tuple[str, str], float] = collections.defaultdict(float)
    calls: collections.Counter[tuple[str, str]] = collections.Counter()
    plain = rc.EVM

    class Timed:
        def __init__(self, *a: Any, **k: Any) -> None:
            self.__dict__["_evm"] = plain(*a, **k)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._evm, name)

        def __setattr__(self, name: str, value: Any) -> None:
            setattr(self._evm, name, value)

        def message_call(self, caller: str, to: str, data: Any = None, *rest: Any) -> Any:
            t = time.perf_counter()
            try:
                return self._evm.message_call(caller, to, data, *rest)
            finally:
                key = (to, bytes(data[:4]).hex() if data else "")
                spent[key] += time.perf_counter() - t
                calls[key] += 1

    rc.EVM = Timed  # type: ignore[misc, assignment]
    try:
        s = _run(scenario, "revm")
    finally:
        rc.EVM = plain  # type: ignore[misc]
    top = sorted(spent, key=lambda k: -spent[k])[:8]
    return {
        "revm_heavy_wall_s": s["wall_s"],
        "revm_evm_s": round(sum(spent.values()), 3),
        "revm_evm_calls": sum(calls.values()),
        "revm_evm_top": [
            {
                "to": to,
                "selector": sel,
                "calls": calls[(to, sel)],
                "s": round(spent[(to, sel)], 3),
                "us_each": round(1e6 * spent[(to, sel)] / calls[(to, sel)], 1),
            }
            for to, sel in top
        ],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--memory", action="store_true", help="add the 20,000-block run on revm")
    ap.add_argument(
        "--evm-split", action="store_true", help="add heavy on revm with the EVM's own time apart"
    )
    ap.add_argument("--out", type=Path, default=HERE / "results" / "backends.json")
    args = ap.parse_args()
    result: dict[str, Any] = {"cpus": os.cpu_count()}
    for backend in ("anvil", "revm"):
        heavy = _run(HERE / "scenarios" / "heavy.yaml", backend)
        result[f"{backend}_engine_tx_per_s"] = heavy["tx_per_s"]
        result[f"{backend}_engine_wall_s"] = heavy["wall_s"]
        crash = _run(ROOT / "scenarios" / "crash.yaml", backend)
        day = crash["blocks"] * crash["block_time_s"] / 86_400
        result[f"{backend}_sim_day_s"] = round(crash["wall_s"] / day, 1)
    result["heavy_tx_sent"] = heavy["tx_sent"]
    result["backend_speedup"] = round(
        result["revm_engine_tx_per_s"] / result["anvil_engine_tx_per_s"], 2
    )
    if args.memory:
        result.update(memory())
    if args.evm_split:
        result.update(evm_split())
        result["speedup_ceiling"] = round(result["anvil_engine_wall_s"] / result["revm_evm_s"], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "revm_rss_samples"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
