"""Backend parity: one scenario and seed on anvil and on revm must write the same outputs (summary.json
with its wall-clock fields aside, timeseries.csv, events.jsonl with its transaction hashes aside: revm
numbers its transactions where anvil hashes the signed ones). `first_divergence` names the first block
and field where two runs differ; `marginsim parity` runs both and says which."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from simulation.summary import WALL_CLOCK_FIELDS


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf8") as f:
        return list(csv.DictReader(f))


def _first_field(a: dict[str, Any], b: dict[str, Any]) -> str:
    for key in list(a) + [k for k in b if k not in a]:
        if a.get(key) != b.get(key):
            return f"{key}: {a.get(key)!r} != {b.get(key)!r}"
    return "(same fields, different order)"


def _timeseries(a: Path, b: Path) -> tuple[int, str] | None:
    ra, rb = _rows(a / "timeseries.csv"), _rows(b / "timeseries.csv")
    for x, y in zip(ra, rb, strict=False):
        if x != y:
            return int(x.get("block") or 0), f"timeseries.csv {_first_field(x, y)}"
    if len(ra) != len(rb):
        return min(len(ra), len(rb)) + 1, f"timeseries.csv has {len(ra)} rows against {len(rb)}"
    return None


def _events(a: Path, b: Path) -> tuple[int, str] | None:
    la = (a / "events.jsonl").read_text(encoding="utf8").splitlines()
    lb = (b / "events.jsonl").read_text(encoding="utf8").splitlines()
    for i, (x, y) in enumerate(zip(la, lb, strict=False)):
        if x != y:
            ex, ey = json.loads(x), json.loads(y)
            for e in (ex, ey):  # revm numbers its transactions; anvil hashes the signed ones
                e.pop("txHash", None)
            if ex != ey:
                return int(ex.get("block", 0)), f"events.jsonl line {i + 1} {_first_field(ex, ey)}"
    if len(la) != len(lb):
        return 10**9, f"events.jsonl has {len(la)} lines against {len(lb)}"
    return None


def _summary(a: Path, b: Path) -> str | None:
    sa, sb = (json.loads((d / "summary.json").read_text(encoding="utf8")) for d in (a, b))
    for s in (sa, sb):
        for key in WALL_CLOCK_FIELDS:
            s.pop(key, None)
    return None if sa == sb else f"summary.json {_first_field(sa, sb)}"


def first_divergence(a: Path, b: Path) -> str | None:
    """None when the runs in `a` and `b` wrote the same outputs; otherwise the first block and field
    that differ (the earliest block of the time series and the events), or the summary's field."""
    found = [d for d in (_timeseries(a, b), _events(a, b)) if d is not None]
    if found:
        block, what = min(found)
        return f"first divergence at block {block}: {what}"
    return _summary(a, b)


def main(argv: list[str] | None = None) -> int:
    """`python -m simulation.parity RUN_A RUN_B`: exit 0 when the two runs wrote the same outputs, 1 with
    the first block and field that differ, 2 when a directory holds no run."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m simulation.parity RUN_A RUN_B", file=sys.stderr)
        return 2
    a, b = (Path(x) for x in args)
    for d in (a, b):
        if not (d / "summary.json").is_file():
            print(f"{d}: no run there (no summary.json)", file=sys.stderr)
            return 2
    found = first_divergence(a, b)
    print(found or f"{a} and {b}: the same outputs")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
