"""The Silverback example runs from its README command (scripts/silverback_race.sh): a Silverback bot,
in its own process on ape's foundry provider, races the built-in keepers through a crash in lockstep;
its liquidations are in the keeper table, counted from the events of its own transactions; nothing is
left running."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from marginsim_cli import ROOT

LIQUIDATED = {"IsolatedLiquidated", "CrossLiquidated"}
BLOCKS = 200


def test_the_silverback_bot_is_scored_beside_the_built_in_keepers(tmp_path):
    out = tmp_path / "race"
    done = subprocess.run(
        ["scripts/silverback_race.sh", str(out), str(BLOCKS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = (out / "silverback.log").read_text() if (out / "silverback.log").exists() else ""
    assert done.returncode == 0, done.stderr[-3000:] + log[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    row = summary["keepers"]["silverback"]
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    mine = [e for e in events if e["agent"] == "silverback" and e["event"] in LIQUIDATED]
    # it bids 6 gwei against the fast keeper's 5: it wins liquidations, each counted once
    assert row["liquidations"] == len(mine) > 0
    assert row["rewards_usd"] > 0 and row["gas_used"] > 0
    ext = summary["external"]["silverback"]
    assert ext["registered"] and ext["blocks_acted"] + ext["blocks_missed"] == BLOCKS
    assert ext["blocks_acted"] >= BLOCKS - 5  # it acts on new heads: block 1 comes before any
    assert "| silverback |" in done.stdout  # the keeper table the command prints
    assert not [p for p in _bots() if str(out).encode() in _environ(p)], "the bot was left running"


def _bots() -> list[int]:
    found = subprocess.run(
        ["pgrep", "-f", "examples.silverback.bot:bot"], capture_output=True, text=True
    )
    return [int(p) for p in found.stdout.split()]


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone meanwhile
        return b""
