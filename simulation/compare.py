"""`marginsim compare`: one scenario run twice, every trader isolated and then every trader cross, on the
same price path with the same intended trades; what cross margin buys in capital and costs in contagion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from simulation.fork import ForkTarget
from simulation.outputs import write_json_atomic
from simulation.runner import run_scenario
from simulation.scenario import Scenario

ROWS = (
    ("traders_liquidated", "traders hit by a liquidation"),
    ("liquidation_events", "liquidation calls that succeeded"),
    ("positions_liquidated", "positions closed (partly or fully) by liquidation"),
    ("profitable_positions_liquidated", "of which with their own PnL >= 0 (contagion)"),
    ("collateral_lost_usd", "collateral lost by liquidated traders, $"),
    ("bad_debt_usd", "bad debt, $"),
    ("collateral_needed_isolated_usd", "collateral to carry the book, margined isolated, $"),
    ("collateral_needed_cross_usd", "collateral to carry the same book, margined cross, $"),
    ("liquidated_notional_usd", "liquidated notional, $"),
)


def with_mode(sc: Scenario, mode: str) -> Scenario:
    groups = [
        g.model_copy(
            update={"margin_mode": mode, "rebalance": g.rebalance if mode == "isolated" else None}
        )
        for g in sc.traders
    ]
    return sc.model_copy(update={"traders": tuple(groups), "name": f"{sc.name} ({mode})"})


def measure(out: Path, summary: dict[str, Any]) -> dict[str, float]:
    """Liquidation exposure from the run's events; capital from its summary."""
    traders: set[str] = set()
    positions = 0
    for line in (out / "events.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["event"] == "IsolatedLiquidated":
            traders.add(e["owner"])
            positions += 1
        elif e["event"] == "CrossLiquidated":
            traders.add(e["account"])
        elif e["event"] == "CrossPositionLiquidated":
            positions += 1
    return {
        "traders_liquidated": len(traders),
        "liquidation_events": summary["liquidations"]["count"],
        "positions_liquidated": positions,
        "profitable_positions_liquidated": summary["profitable_positions_liquidated"],
        "collateral_lost_usd": summary["collateral_lost_usd"],
        "bad_debt_usd": summary["bad_debt_usd"],
        "collateral_needed_isolated_usd": summary["collateral_needed_usd"]["isolated_margining"],
        "collateral_needed_cross_usd": summary["collateral_needed_usd"]["cross_margining"],
        "liquidated_notional_usd": summary["liquidations"]["notional_usd"],
    }


def format_table(result: dict[str, dict[str, float]]) -> str:
    lines = [f"{'':<52}{'isolated':>14}{'cross':>14}", "-" * 80]
    for key, label in ROWS:
        iso, cross = result["isolated"][key], result["cross"][key]
        lines.append(
            f"{label:<52}{iso:>14,.2f}{cross:>14,.2f}"
            if isinstance(iso, float)
            else f"{label:<52}{iso:>14,}{cross:>14,}"
        )
    return "\n".join(lines)


def run_compare(
    sc: Scenario,
    out: Path,
    progress: bool = True,
    fork: ForkTarget | None = None,
    backend: str = "anvil",
) -> int:
    """Both runs on fresh chains, or both on a fork of the same block (the second from the cache)."""
    result: dict[str, Any] = {}
    for mode in ("isolated", "cross"):
        code, summary = run_scenario(
            with_mode(sc, mode), out / mode, progress=progress, fork=fork, backend=backend
        )
        if code != 0:
            return code
        result[mode] = measure(out / mode, summary)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"scenario": sc.name, "seed": sc.seed, "blocks": sc.blocks, **result}
    write_json_atomic(out / "compare.json", doc)
    print(format_table(result))
    print(f"compare: {out / 'compare.json'}")
    return 0
