"""`marginsim compare`: one scenario run twice, every trader isolated and then every trader cross, on the
same price path with the same intended trades; what cross margin buys in capital and costs in contagion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from simulation.fork import ForkTarget
from simulation.outputs import write_json_atomic, write_text_atomic
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
    ("collateral_needed_portfolio_usd", "the same book margined on net risk (portfolio), $"),
    ("carry_isolated_usd", "collateral to carry the book with no liquidation, isolated, $"),
    ("carry_cross_usd", "the same book with no liquidation, margined cross, $"),
    ("carry_portfolio_usd", "the same book with no liquidation, on net risk (portfolio), $"),
    ("liquidated_notional_usd", "liquidated notional, $"),
)
MODES = ("isolated", "cross", "portfolio")


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
        "collateral_needed_portfolio_usd": summary["collateral_needed_usd"]["portfolio_margining"],
        "carry_isolated_usd": summary["collateral_to_carry_usd"]["isolated_margining"],
        "carry_cross_usd": summary["collateral_to_carry_usd"]["cross_margining"],
        "carry_portfolio_usd": summary["collateral_to_carry_usd"]["portfolio_margining"],
        "liquidated_notional_usd": summary["liquidations"]["notional_usd"],
    }


def format_table(result: dict[str, dict[str, float]]) -> str:
    lines = [f"{'':<60}" + "".join(f"{m:>14}" for m in MODES), "-" * (60 + 14 * len(MODES))]
    for key, label in ROWS:
        cells = [result[m][key] for m in MODES]
        fmt = ",.2f" if isinstance(cells[0], float) else ","
        lines.append(f"{label:<60}" + "".join(f"{c:>14{fmt}}" for c in cells))
    return "\n".join(lines)


def run_compare(
    sc: Scenario,
    out: Path,
    progress: bool = True,
    fork: ForkTarget | None = None,
    backend: str = "anvil",
) -> int:
    """A run per mode on fresh chains, or each on a fork of the same block (the later ones from the
    cache)."""
    result: dict[str, Any] = {}
    for mode in MODES:
        code, summary = run_scenario(
            with_mode(sc, mode), out / mode, progress=progress, fork=fork, backend=backend
        )
        if code != 0:
            return code
        result[mode] = measure(out / mode, summary)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"scenario": sc.name, "seed": sc.seed, "blocks": sc.blocks, **result}
    write_json_atomic(out / "compare.json", doc)
    write_text_atomic(out / "report.html", compare_html(sc, out, result))
    print(format_table(result))
    print(f"compare: {out / 'compare.json'}, {out / 'report.html'}")
    return 0


OVERLAYS = (
    ("health_p50", "Median health (equity / maintenance)", "ratio", True),
    ("health_min", "Lowest health", "ratio", True),
    ("liquidations", "Liquidations, cumulative", "count", False),
    ("liquidated_notional_usd", "Liquidated notional, cumulative", "USD", False),
    ("latent_bad_debt_usd", "Latent bad debt", "USD", False),
    ("bad_debt_usd", "Bad debt, cumulative", "USD", False),
    ("insurance_fund_usd", "Insurance fund", "USD", False),
    ("lp_share_price", "LP share price", "USD per share", False),
    ("capital_isolated_usd", "Collateral the book needs now, margined isolated", "USD", False),
    ("capital_netted_usd", "Collateral the book needs now, margined cross", "USD", False),
    (
        "capital_portfolio_usd",
        "Collateral the book needs now, on net risk (portfolio)",
        "USD",
        False,
    ),
)
CUMULATIVE = frozenset({"liquidations", "liquidated_notional_usd"})
MODE_COLOURS = {"isolated": "#1f77b4", "cross": "#ff7f0e", "portfolio": "#2ca02c"}


def compare_html(sc: Scenario, out: Path, result: dict[str, dict[str, float]]) -> str:
    """The comparison's report: the table, and each mode's time series overlaid on one figure per
    measure (the same path: the x axes line up)."""
    import pandas as pd
    import plotly.graph_objects as go

    from simulation.plots import Plot, esc, page, styled, table

    series = {m: pd.read_csv(out / m / "timeseries.csv") for m in MODES}
    plots = []
    for column, title, unit, log in OVERLAYS:
        fig = styled(go.Figure(), title, "minutes since the first block", unit)
        for mode, ts in series.items():
            if column not in ts.columns or ts.empty:
                continue
            y = ts[column].cumsum() if column in CUMULATIVE else ts[column]
            minutes = (ts["timestamp"] - ts["timestamp"].iloc[0]) / 60.0
            fig.add_trace(
                go.Scatter(
                    x=minutes,
                    y=y,
                    name=mode,
                    mode="lines",
                    line={"color": MODE_COLOURS[mode]},
                    customdata=ts["block"],
                    hovertemplate="%{y:,.6g} (block %{customdata})",
                )
            )
        if log:
            fig.update_yaxes(type="log")
        plots.append(Plot(title, f"{title}: each mode's run, the same path.", fig))
    rows = [[label, *(_cell(result[m][key]) for m in MODES)] for key, label in ROWS]
    meta = (
        f"scenario <b>{esc(sc.name)}</b> · seed {sc.seed} · {sc.blocks:,} blocks · "
        "the same price path and intended trades in every run"
    )
    return page(
        f"Isolated, cross and portfolio margin: {sc.name}",
        meta,
        [
            "<h2>Side by side</h2>",
            table(["", *MODES], rows, [False, *(True for _ in MODES)]),
            "<p>Each run's own report: "
            + ", ".join(f'<a href="{m}/report.html">{m}</a>' for m in MODES)
            + ".</p>",
            "<h2>Overlaid</h2>",
            *plots,
        ],
    )


def _cell(value: float) -> str:
    return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"


# ---------------------------------------------------------------------- across seeds


def seeds_table(per_path: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per mode, over its paths (each a `measure` dict): the contagion rate, by paths and by positions;
    the probability that a path liquidates anybody; and the capital measure, the least collateral
    that carries the mode's own book through the path without a liquidation (margined the mode's
    way: simulation.metrics.CarryTracker), with its mean, p50 and p95."""
    from simulation.risk import tail_measures

    out: dict[str, dict[str, float]] = {}
    for mode, paths in per_path.items():
        n = len(paths)
        positions = sum(p["positions_liquidated"] for p in paths)
        profitable = sum(p["profitable_positions_liquidated"] for p in paths)
        carry = tail_measures(p[f"carry_{mode}_usd"] for p in paths)
        out[mode] = {
            "paths": n,
            "contagion_path_rate": sum(p["profitable_positions_liquidated"] > 0 for p in paths) / n,
            "contagion_position_rate": profitable / positions if positions else 0.0,
            "liquidation_probability": sum(p["liquidation_events"] > 0 for p in paths) / n,
            "traders_liquidated_mean": sum(p["traders_liquidated"] for p in paths) / n,
            "bad_debt_usd_mean": sum(p["bad_debt_usd"] for p in paths) / n,
            "carry_usd_mean": carry["mean"],
            "carry_usd_p50": carry["p50"],
            "carry_usd_p95": carry["p95"],
            # the same book both ways (each run's own): what netting saves, the ratio's mean
            "same_book_cross_over_isolated": sum(
                p["carry_cross_usd"] / p["carry_isolated_usd"] if p["carry_isolated_usd"] else 1.0
                for p in paths
            )
            / n,
        }
    return out


SEEDS_ROWS = (
    ("paths", "paths"),
    ("contagion_path_rate", "paths where a leg with PnL >= 0 was liquidated"),
    ("contagion_position_rate", "liquidated positions with PnL >= 0"),
    ("liquidation_probability", "paths with at least one liquidation"),
    ("traders_liquidated_mean", "traders hit by a liquidation, mean"),
    ("bad_debt_usd_mean", "bad debt, mean $"),
    ("carry_usd_mean", "collateral to carry the book with no liquidation, mean $"),
    ("carry_usd_p95", "the same, p95 $"),
    ("same_book_cross_over_isolated", "the same book margined cross / isolated, mean"),
)


def run_compare_seeds(
    sc: Scenario,
    out: Path,
    seeds: int,
    workers: int,
    address: str | None,
    backend: str,
    progress: bool = True,
) -> int:
    """Every mode over `seeds` seeds (the scenario's, then the next ones), as one sweep on Ray
    (simulation.sweep: resumable, `DIR/runs.parquet` and `risk.json` by mode), then compare.json
    with each mode's rates and capital across the paths."""
    from simulation.sweep import Plan, RunSpec, run_key, run_sweep

    runs = []
    for point, mode in enumerate(MODES):
        doc = with_mode(sc, mode).model_dump(mode="json")
        for seed in range(sc.seed, sc.seed + seeds):
            params = {"margin_mode": mode}
            runs.append(
                RunSpec(
                    run_key({**params, "scenario": sc.name}, seed),
                    point,
                    seed,
                    params,
                    {**doc, "seed": seed},
                )
            )
    plan = Plan(out / "compare.yaml", sc, [{"margin_mode": m} for m in MODES], runs, 1)
    code = run_sweep(plan, out, workers, address, backend, progress=progress)
    per_path: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    for r in runs:
        result = out / "runs" / r.key / "result.json"
        if not result.exists():
            continue
        record = json.loads(result.read_text())
        if record["status"] == "completed":
            per_path[MODES[r.point]].append(measure(out / "runs" / r.key, record["summary"]))
    if not all(per_path.values()):
        return code or 1
    table = seeds_table(per_path)
    doc = {"scenario": sc.name, "seeds": list(range(sc.seed, sc.seed + seeds)), "blocks": sc.blocks}
    write_json_atomic(out / "compare.json", {**doc, **table})
    lines = [f"{'':<58}" + "".join(f"{m:>14}" for m in MODES), "-" * (58 + 14 * len(MODES))]
    for key, label in SEEDS_ROWS:
        lines.append(f"{label:<58}" + "".join(f"{table[m][key]:>14,.3f}" for m in MODES))
    print("\n".join(lines))
    print(f"compare: {out / 'compare.json'}")
    return code
