"""`python -m simulation.keeper_table DIR/summary.json`: a run's keeper report cards as a Markdown
table (the columns of report.html's keeper table)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from simulation.report import keeper_cell, keeper_columns


def markdown(keepers: Mapping[str, Mapping[str, Any]]) -> str:
    columns = keeper_columns(keepers)
    lines = [
        "| keeper | " + " | ".join(h for _, h in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    lines += [
        f"| {name} | " + " | ".join(keeper_cell(key, k.get(key)) for key, _ in columns) + " |"
        for name, k in keepers.items()
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m simulation.keeper_table DIR/summary.json", file=sys.stderr)
        return 2
    try:
        summary = json.loads(Path(argv[0]).read_text())
        keepers = summary["keepers"]
    except (OSError, ValueError, KeyError) as e:
        print(f"keeper_table: {argv[0]}: not a run's summary ({e})", file=sys.stderr)
        return 2
    print(markdown(keepers))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
