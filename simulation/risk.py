"""Risk measures over a sweep's paths, per parameter point, and what a sweep writes at its end:
`runs.parquet`, `risk.json`, `report.html`. Pure functions of the runs' records (tested without a chain
in tests/test_risk.py).

Definitions (also in the README):
- a *path* is one completed run: one seed at one parameter point;
- `p50`, `p95`, `p99`: percentiles over the point's paths, linear interpolation between order statistics
  (numpy's default);
- `cvar95`: the mean of the worst 5 % of paths (the ceil(5 % of n) largest values), the expected
  shortfall; with fewer than 20 paths it is the worst path;
- `bad_debt_usd`: bad debt booked over the path (covered by the insurance fund, then by the pool);
- `latent_bad_debt_usd`: the path's peak of latent bad debt (the negative equity of liquidatable
  positions and accounts no keeper took, simulation.metrics.latent_bad_debt);
- `liquidated_notional_usd`: notional closed by liquidations over the path;
- `lp_drawdown`: the largest fall of the LP share price from its running peak, as a fraction of it;
- `insurance_drawdown_usd`: the largest fall of the insurance fund from its running peak, USD;
- `p_insolvency`: the share of paths whose bad debt went beyond the insurance fund (part of it was
  covered by the LP pool, or by nobody);
- the keepers' league table: per keeper, over all the point's paths, liquidations, rewards, gas, lost
  races and wasted gas (totals, and per path), and on how many paths it earned the most.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from simulation.sweep import Plan

MEASURES = (
    "bad_debt_usd",
    "latent_bad_debt_usd",
    "liquidated_notional_usd",
    "lp_drawdown",
    "insurance_drawdown_usd",
)
INSOLVENCY_EPS_USD = 1e-6
"""Bad debt the insurance fund did not cover, above this, makes a path insolvent (rounding aside)."""


def drawdown(values: Sequence[float] | np.ndarray) -> float:
    """The largest fall from a running peak, in the values' units (0 for a series that never falls)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return 0.0
    return float(np.max(np.maximum.accumulate(x) - x))


def drawdown_fraction(values: Sequence[float] | np.ndarray) -> float:
    """The largest fall from a running peak as a fraction of that peak (peaks <= 0 are skipped)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return 0.0
    peak = np.maximum.accumulate(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        fall = np.where(peak > 0, (peak - x) / peak, 0.0)
    return float(np.max(fall))


def tail_measures(values: Iterable[float]) -> dict[str, float]:
    """mean, p50, p95, p99 and cvar95 (see the module's definitions); NaN for no values."""
    x = np.sort(np.asarray(list(values), dtype=float))
    if x.size == 0:
        return {k: math.nan for k in ("mean", "p50", "p95", "p99", "cvar95")}
    k = math.ceil(0.05 * x.size)
    p50, p95, p99 = np.percentile(x, [50, 95, 99])
    return {
        "mean": float(x.mean()),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "cvar95": float(x[-k:].mean()),
    }


def path_values(record: Mapping[str, Any]) -> dict[str, float]:
    """A completed run's value of each measure."""
    s, paths = record["summary"], record["paths"]
    return {
        "bad_debt_usd": float(s["bad_debt_usd"]),
        "latent_bad_debt_usd": float(paths["latent_bad_debt_peak_usd"]),
        "liquidated_notional_usd": float(s["liquidations"]["notional_usd"]),
        "lp_drawdown": float(paths["lp_drawdown"]),
        "insurance_drawdown_usd": float(paths["insurance_drawdown_usd"]),
    }


def insolvent(record: Mapping[str, Any]) -> bool:
    """Bad debt beyond the insurance fund on this path."""
    s = record["summary"]
    return s["bad_debt_usd"] - s["bad_debt_covered"]["insurance_usd"] > INSOLVENCY_EPS_USD


KEEPER_SUMS = (
    "liquidations",
    "missed",
    "rewards_usd",
    "gas_used",
    "gas_usd",
    "lost_races",
    "wasted_gas",
    "wasted_gas_usd",
)
"""A keeper's fields that add up over paths; its latency and latent share are taken per path."""


def keeper_league(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The keepers over these paths, ranked by total rewards (see the module's definitions), each with
    its report card across them: the median over paths of its median latency, its worst latency, and
    the mean over paths (those with latent bad debt) of the share of it the keeper left."""
    table: dict[str, dict[str, Any]] = {}
    per_path: dict[str, dict[str, list[float]]] = {}
    for r in records:
        keepers = r["summary"].get("keepers", {})
        best = max(keepers, key=lambda n: keepers[n]["rewards_usd"], default=None)
        for name, k in keepers.items():
            row = table.setdefault(
                name, {"keeper": name, "paths": 0, "paths_won": 0, **dict.fromkeys(KEEPER_SUMS, 0)}
            )
            row["paths"] += 1
            for f in KEEPER_SUMS:
                row[f] += k.get(f) or 0
            row["paths_won"] += name == best and k["rewards_usd"] > 0
            lists = per_path.setdefault(name, {"p50": [], "max": [], "left": []})
            for key, field in (
                ("p50", "latency_blocks_p50"),
                ("max", "latency_blocks_max"),
                ("left", "latent_left_share"),
            ):
                if k.get(field) is not None:
                    lists[key].append(k[field])
    out = sorted(table.values(), key=lambda row: -row["rewards_usd"])
    for row in out:
        n = max(1, row["paths"])
        lists = per_path[row["keeper"]]
        row["liquidations_per_path"] = row["liquidations"] / n
        row["rewards_usd_per_path"] = row["rewards_usd"] / n
        for f in ("rewards_usd", "gas_usd", "wasted_gas_usd"):
            row[f] = round(row[f], 6)
        row["latency_blocks_p50"] = float(np.median(lists["p50"])) if lists["p50"] else None
        row["latency_blocks_max"] = max(lists["max"]) if lists["max"] else None
        row["latent_left_share"] = (
            round(float(np.mean(lists["left"])), 6) if lists["left"] else None
        )
    return out


def risk_by_point(plan: Plan, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """risk.json's entries: one per parameter point."""
    out = []
    for i, params in enumerate(plan.points):
        mine = [r for r in records if r["point"] == i]
        ok = [r for r in mine if r["status"] == "completed"]
        values = [path_values(r) for r in ok]
        out.append(
            {
                "point": i,
                "params": params,
                "paths": len(ok),
                "failed": len(mine) - len(ok),
                "measures": {m: tail_measures(v[m] for v in values) for m in MEASURES},
                "p_insolvency": (sum(insolvent(r) for r in ok) / len(ok)) if ok else math.nan,
                "keepers": keeper_league(ok),
            }
        )
    return out


def _flat(prefix: str, value: Any, row: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, row)
    elif isinstance(value, list | tuple):
        row[prefix] = ",".join(map(str, value))
    else:
        row[prefix] = value


def runs_table(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """runs.parquet's rows: the run, its point, seed, parameters (`param.<path>`), status, error, every
    summary figure (nested fields joined by dots) and the path measures."""
    rows = []
    for r in records:
        row: dict[str, Any] = {
            "run": r["run"],
            "point": r["point"],
            "seed": r["seed"],
            "status": r["status"],
            "error": r.get("error", ""),
            "wall_s": r.get("wall_s", math.nan),
        }
        for k, v in r["params"].items():
            row[f"param.{k}"] = v
        summary = {k: v for k, v in r.get("summary", {}).items() if k not in row}
        _flat("", summary, row)
        _flat("path", r.get("paths", {}), row)
        rows.append(row)
    return rows


def worst_runs(records: Sequence[Mapping[str, Any]], point: int, n: int) -> list[Mapping[str, Any]]:
    """The point's `n` worst completed paths: most bad debt, then most latent bad debt."""
    ok = [r for r in records if r["point"] == point and r["status"] == "completed"]
    values = [path_values(r) for r in ok]  # once per path
    order = sorted(
        range(len(ok)),
        key=lambda i: (-values[i]["bad_debt_usd"], -values[i]["latent_bad_debt_usd"]),
    )
    return [ok[i] for i in order[:n]]


def write_results(out: Path, plan: Plan, records: Sequence[Mapping[str, Any]]) -> None:
    """runs.parquet, risk.json and report.html (the worst paths' own reports rendered first)."""
    import pandas as pd

    from simulation.outputs import render_report, write_json_atomic, write_text_atomic

    frame = pd.DataFrame(runs_table(records))
    tmp = out / "runs.parquet.tmp"
    frame.to_parquet(tmp, index=False)
    tmp.replace(out / "runs.parquet")
    risk = risk_by_point(plan, records)
    worst: dict[int, list[str]] = {}
    for entry in risk:
        worst[entry["point"]] = []
        for r in worst_runs(records, entry["point"], plan.worst_reports):
            run_dir = out / "runs" / r["run"]
            if not (run_dir / "report.html").exists():
                summary = dict(r["summary"])
                summary["report"], _ = render_report(run_dir, summary)
                write_json_atomic(run_dir / "summary.json", summary)
            if (run_dir / "report.html").exists():
                worst[entry["point"]].append(r["run"])
        entry["worst_runs"] = worst[entry["point"]]
    write_json_atomic(
        out / "risk.json",
        {"base": plan.base.name, "runs": len(records), "points": risk},
    )
    write_text_atomic(out / "report.html", sweep_html(plan, risk, records))


# ---------------------------------------------------------------------- the sweep report

MEASURE_TITLES = {
    "bad_debt_usd": "bad debt (USD)",
    "latent_bad_debt_usd": "latent bad debt, peak (USD)",
    "liquidated_notional_usd": "liquidated notional (USD)",
    "lp_drawdown": "LP share price drawdown (fraction)",
    "insurance_drawdown_usd": "insurance fund drawdown (USD)",
}


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return "—" if not math.isfinite(x) else f"{x:,.4g}" if abs(x) < 1 else f"{x:,.2f}"
    return str(x)


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f} %"


def _point_label(e: Mapping[str, Any]) -> str:
    return f"{e['point']}: " + (
        ", ".join(f"{k.split('.')[-1]}={v}" for k, v in e["params"].items()) or "base"
    )


def sweep_plots(
    risk: Sequence[Mapping[str, Any]], records: Sequence[Mapping[str, Any]]
) -> list[Any]:
    """The sweep report's figures: each measure's distribution over the paths, point by point; VaR
    (p95, p99, CVaR95) by point; and heatmaps of p95 bad debt and latent bad debt over the first two
    axes when the points span two or more."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from simulation.plots import Plot, styled

    done = [r for r in records if r["status"] == "completed"]
    plots = []
    for m, title in MEASURE_TITLES.items():
        fig = styled(go.Figure(), f"Distribution over paths: {title}", "parameter point", title)
        fig.update_layout(hovermode="closest", showlegend=False)
        for e in risk:
            values = [path_values(r)[m] for r in done if r["point"] == e["point"]]
            fig.add_trace(
                go.Box(
                    y=values,
                    name=html.escape(_point_label(e)),
                    boxpoints="all",
                    jitter=0.4,
                    pointpos=0,
                    boxmean=True,
                    text=[r["run"] for r in done if r["point"] == e["point"]],
                    hovertemplate="%{y:,.6g} (run %{text})",
                )
            )
        caption = f"{title} on each path (dots; hover for the run), box p25-p75, dashed the mean."
        plots.append(Plot(f"Distribution: {m}", caption, fig))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("bad debt (USD)", "latent bad debt (USD)"))
    styled(fig, "VaR by parameter point", "parameter point", "USD")
    fig.update_layout(hovermode="closest", barmode="group")
    for i, stat in enumerate(("p95", "p99", "cvar95")):
        colour = ("#1f77b4", "#ff7f0e", "#c62828")[i]
        for col, m in ((1, "bad_debt_usd"), (2, "latent_bad_debt_usd")):
            fig.add_trace(
                go.Bar(
                    x=[html.escape(_point_label(e)) for e in risk],
                    y=[e["measures"][m][stat] for e in risk],
                    name=stat,
                    legendgroup=stat,
                    showlegend=col == 1,
                    marker_color=colour,
                ),
                row=1,
                col=col,
            )
    plots.append(
        Plot(
            "VaR by parameter point",
            "p95 and p99 (value at risk) and CVaR95 (the mean of the worst 5 % of paths) of bad "
            "debt and latent bad debt, by parameter point.",
            fig,
        )
    )
    axes = list(risk[0]["params"]) if risk else []
    if len(axes) >= 2:
        xs = sorted({e["params"][axes[0]] for e in risk}, key=str)
        ys = sorted({e["params"][axes[1]] for e in risk}, key=str)
        for m in ("bad_debt_usd", "latent_bad_debt_usd"):
            grid = np.full((len(ys), len(xs)), np.nan)
            for e in risk:
                i, j = ys.index(e["params"][axes[1]]), xs.index(e["params"][axes[0]])
                grid[i, j] = e["measures"][m]["p95"]
            fig = styled(
                go.Figure(
                    go.Heatmap(
                        z=grid,
                        x=[str(x) for x in xs],
                        y=[str(y) for y in ys],
                        colorscale="Reds",
                        colorbar={"title": "USD"},
                    )
                ),
                f"p95 {MEASURE_TITLES[m]}",
                html.escape(axes[0]),
                html.escape(axes[1]),
            )
            fig.update_layout(hovermode="closest")
            caption = f"p95 of {MEASURE_TITLES[m]} over the first two axes (other axes mixed in)."
            plots.append(Plot(f"Heatmap: {m}", caption, fig))
    return plots


def sweep_html(
    plan: Plan, risk: Sequence[Mapping[str, Any]], records: Sequence[Mapping[str, Any]]
) -> str:
    from simulation.plots import esc, link_list, page, table

    head = ["point", "parameters", "paths", "failed"]
    for m in MEASURES:
        head += [f"{m} p95", f"{m} CVaR95"]
    head += ["P(insolvency)"]
    rows = []
    for e in risk:
        params = ", ".join(f"{k} = {v}" for k, v in e["params"].items()) or "base scenario"
        row: list[Any] = [e["point"], params, e["paths"], e["failed"]]
        for m in MEASURES:
            row += [_fmt(e["measures"][m]["p95"]), _fmt(e["measures"][m]["cvar95"])]
        rows.append([*row, _fmt(e["p_insolvency"])])
    numeric = [True, False, True, True] + [True] * (2 * len(MEASURES)) + [True]
    worst = "".join(
        f"<li>{esc(_point_label(e))}: "
        + link_list({k: f"runs/{k}/report.html" for k in e.get("worst_runs", [])})
        + "</li>"
        for e in risk
    )
    league = table(
        [
            "point",
            "keeper",
            "taken",
            "missed episodes",
            "latency p50 / max (blocks)",
            "rewards (USD)",
            "gas (USD)",
            "wasted gas (USD)",
            "lost races",
            "latent bad debt left",
            "paths won",
        ],
        [
            [
                e["point"],
                k["keeper"],
                f"{k['liquidations']:,}",
                f"{k['missed']:,}",
                f"{_fmt(k['latency_blocks_p50'])} / {_fmt(k['latency_blocks_max'])}",
                _fmt(k["rewards_usd"]),
                _fmt(k["gas_usd"]),
                _fmt(k["wasted_gas_usd"]),
                f"{k['lost_races']:,}",
                _pct(k["latent_left_share"]),
                f"{k['paths_won']}/{k['paths']}",
            ]
            for e in risk
            for k in e["keepers"]
        ],
        [True, False, True, True, True, True, True, True, True, True, True],
    )
    meta = (
        f"{len(plan.points)} parameter points, {len(records)} runs recorded of {len(plan.runs)} · "
        "p95 / CVaR95 over each point's paths (CVaR95: the mean of the worst 5 %) · "
        "P(insolvency): the share of paths whose bad debt went beyond the insurance fund"
    )
    return page(
        f"Sweep of {plan.base.name}",
        esc(meta),
        [
            "<h2>Risk by parameter point</h2>",
            table(head, rows, numeric),
            "<h2>The worst paths' own reports</h2>",
            f"<ul>{worst}</ul>",
            "<h2>Plots</h2>",
            *sweep_plots(risk, records),
            "<h2>Keepers across paths</h2>",
            league,
        ],
    )
