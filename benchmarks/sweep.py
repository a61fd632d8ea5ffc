"""Sweep throughput: N paths (seeds) of scenarios/crash.yaml on a local Ray with W workers, per backend;
prints JSON.

    python benchmarks/sweep.py                       # 200 paths, 2 workers, revm then anvil
    python benchmarks/sweep.py --paths 20 --backends revm

`<backend>_paths_per_min`: paths completed / the sweep's wall time (Ray's start included), in minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulation.sweep import plan, run_sweep

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def measure(paths: int, workers: int, backend: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        sweep = Path(tmp) / "sweep.yaml"
        sweep.write_text(
            yaml.safe_dump({"base": str(ROOT / "scenarios" / "crash.yaml"), "seeds": paths})
        )
        t0 = time.monotonic()
        code = run_sweep(plan(sweep), Path(tmp) / "out", workers, None, backend, progress=False)
        wall = time.monotonic() - t0
    assert code == 0, f"the {backend} sweep failed (exit {code})"
    return {
        f"{backend}_paths_per_min": round(paths / wall * 60, 2),
        f"{backend}_wall_s": round(wall, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--backends", nargs="+", default=["revm", "anvil"])
    ap.add_argument("--out", type=Path, default=HERE / "results" / "sweep.json")
    args = ap.parse_args()
    result: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "scenario": "crash",
        "paths": args.paths,
        "workers": args.workers,
    }
    for backend in args.backends:
        result |= measure(args.paths, args.workers, backend)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
