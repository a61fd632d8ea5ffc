"""Replay an invariant-suite reproducer on a fresh deployment, on either backend:

    python tests/invariants/replay.py REPRO.json [--backend revm|anvil]

Exit 0 when the steps break no property any more, 1 with the violations when they still do, 2 for a file
that is not a reproducer."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from invariants.run import replay_file  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reproducer", type=Path)
    ap.add_argument("--backend", choices=("revm", "anvil"), help="default: the one it failed on")
    args = ap.parse_args()
    try:
        doc = json.loads(args.reproducer.read_text(encoding="utf8"))
        steps, spec = doc["steps"], doc["spec"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"{args.reproducer}: not a reproducer ({e.__class__.__name__}: {e})", file=sys.stderr)
        return 2
    backend = args.backend or doc.get("backend", "revm")
    errors = replay_file(spec, steps, backend)
    for e in errors:
        print(e)
    print(f"replayed {len(steps)} steps on {backend}: {len(errors)} violation(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
