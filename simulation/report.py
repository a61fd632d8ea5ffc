"""Self-contained interactive HTML report of one simulation run.

``write_report`` turns the run summary and the per-block time series into ``report.html``: the headline
numbers as tables, and interactive plotly figures (zoom, hover values, series toggled from the
legend) drawn by plotly.js, inlined once: the file needs no network (simulation.plots). Time runs in
minutes from the first block; the scenario's windows (crashes, outages, gas spikes) are shaded. Long
runs are aggregated into bins before plotting so the file stays small.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from simulation.outputs import write_text_atomic
from simulation.plots import Plot, esc, no_data, page, shade, styled

REPORT_NAME = "report.html"
MAX_PLOT_POINTS = 1500  # rows per plot after aggregation; keeps the page light
HEALTH_FLOOR = 0.01  # health is clipped to [floor, ceiling] for the log-scaled plot
HEALTH_CEILING = 1000.0
LIQUIDATION_HEALTH = 1.0
X_TITLE = "minutes since the first block"

# Per-block counts: a bin holds their sum. Other columns keep the bin's last value, except these.
SUM_COLUMNS = frozenset(
    {
        "liquidations",
        "liquidations_isolated",
        "liquidations_cross",
        "liquidated_notional_usd",
        "induced_liquidations",
        "tx_sent",
        "tx_reverted",
    }
)
MIN_COLUMNS = frozenset({"health_min", "health_p10"})
MAX_COLUMNS = frozenset(
    {
        "health_p90",
        "latent_bad_debt_usd",
        "latent_liquidatable",
        "liquidation_queue_usd",
        "base_fee_gwei",
    }
)
FIRST_COLUMNS = frozenset({"block", "timestamp"})
HEALTH_COLUMNS = ("health_p10", "health_p50", "health_p90", "health_min")

_KEEPER_REWARDS = re.compile(r"^keeper_(?P<name>.+)_rewards_usd$")

Window = tuple[str, str, float, float]
"""(kind, label, x0, x1) in the plots' x units."""


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def write_report(out_dir: Path, summary: dict[str, Any], timeseries: pd.DataFrame) -> Path:
    """Write out_dir/report.html and return its path. Reverts by kind and the gas they wasted are
    read from out_dir/events.jsonl when it is there."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data, bin_size = downsample(timeseries, MAX_PLOT_POINTS)
    windows = windows_x(summary.get("windows") or [], data)
    reverts = revert_costs(out_dir / "events.jsonl")
    plots = build_plots(data, bin_size, windows, reverts)
    document = render_html(summary, plots, rows=len(timeseries), bin_size=bin_size)
    path = out_dir / REPORT_NAME
    write_text_atomic(path, document)  # a temporary file renamed: never a half-written report
    return path


def revert_costs(events: Path) -> dict[str, tuple[int, int]]:
    """ "kind:reason" -> (reverted transactions, gas they used), from a run's Reverted events."""
    out: dict[str, tuple[int, int]] = {}
    if not events.is_file():
        return out
    with events.open() as f:
        for line in f:
            if '"Reverted"' not in line:
                continue
            e = json.loads(line)
            if e.get("event") != "Reverted":
                continue
            reason = str(e.get("reason", "unknown")).split("(")[0]
            key = f"{e.get('kind')}:{reason}"
            n, gas = out.get(key, (0, 0))
            out[key] = (n + 1, gas + int(e.get("gas", 0)))
    return out


# ---------------------------------------------------------------------------------------------
# Data preparation
# ---------------------------------------------------------------------------------------------


def downsample(timeseries: pd.DataFrame, max_points: int) -> tuple[pd.DataFrame, int]:
    """Aggregate consecutive rows into bins so at most ``max_points`` remain.

    Returns the (possibly unchanged) frame and the number of rows per bin. Per-block counts are
    summed, the low health quantiles keep the bin minimum, p90 the maximum, block and timestamp the
    first value and everything else (levels, cumulative totals) the last value.
    """
    numeric = timeseries.apply(pd.to_numeric, errors="coerce").replace([np.inf, -np.inf], np.nan)
    rows = len(numeric)
    if rows <= max_points:
        return numeric.reset_index(drop=True), 1
    bin_size = math.ceil(rows / max_points)
    groups = numeric.groupby(np.arange(rows) // bin_size)
    columns = {column: _aggregate(groups[column], column) for column in numeric.columns}
    return pd.DataFrame(columns).reset_index(drop=True), bin_size


def _aggregate(group: Any, column: str) -> pd.Series:
    if column in SUM_COLUMNS:
        return group.sum(min_count=1)
    if column in MIN_COLUMNS:
        return group.min()
    if column in MAX_COLUMNS:
        return group.max()
    if column in FIRST_COLUMNS:
        return group.first()
    return group.last()


def assets(timeseries: pd.DataFrame) -> list[str]:
    """Asset symbols found by the ``price_`` column prefix, in column order."""
    return [str(c)[len("price_") :] for c in timeseries.columns if str(c).startswith("price_")]


def keeper_names(timeseries: pd.DataFrame) -> list[str]:
    """Keeper names found by the ``keeper_<name>_rewards_usd`` / ``keeper_<name>_gas`` columns."""
    names: list[str] = []
    for column in map(str, timeseries.columns):
        match = _KEEPER_REWARDS.match(column)
        if match:
            names.append(match["name"])
        elif column.startswith("keeper_") and column.endswith("_gas") and column != "keeper_gas":
            names.append(column[len("keeper_") : -len("_gas")])
    return list(dict.fromkeys(names))


def _series(data: pd.DataFrame, column: str) -> pd.Series | None:
    """The column as floats, or None when it is missing or has no finite value."""
    if column not in data.columns:
        return None
    values = pd.to_numeric(data[column], errors="coerce").astype(float)
    return values if values.notna().any() else None


def _x(data: pd.DataFrame) -> pd.Series:
    """Minutes since the first row's timestamp; blocks when there is no timestamp."""
    ts = _series(data, "timestamp")
    if ts is not None:
        return (ts - ts.iloc[0]) / 60.0
    block = _series(data, "block")
    return block if block is not None else pd.Series(np.arange(len(data)), dtype=float)


def windows_x(windows: Iterable[Mapping[str, Any]], data: pd.DataFrame) -> list[Window]:
    """The scenario's block windows in the plots' x units (minutes), clipped to the run."""
    block = _series(data, "block")
    if block is None or len(block) == 0:
        return []
    x = _x(data).to_numpy()
    b = block.to_numpy()
    out = []
    for w in windows:
        start, end = float(w["start_block"]), float(w["end_block"])
        if start > b[-1]:
            continue
        x0, x1 = np.interp([start, min(end, b[-1])], b, x)
        out.append((str(w.get("kind", "")), str(w.get("label", "")), float(x0), float(x1)))
    return out


def _hover_blocks(data: pd.DataFrame) -> Any:
    block = _series(data, "block")
    return None if block is None else block.to_numpy()


def _scatter(data: pd.DataFrame, y: pd.Series, name: str, value: str, **kw: Any) -> go.Scatter:
    """A line over the run's minutes whose hover shows `value` (a d3 format of y) and the block."""
    return go.Scatter(
        x=_x(data),
        y=y,
        name=esc(name),
        mode="lines",
        customdata=_hover_blocks(data),
        hovertemplate=f"{value} (block %{{customdata}})",
        **kw,
    )


def _line(fig: go.Figure, data: pd.DataFrame, column: str, name: str, **kw: Any) -> bool:
    values = _series(data, column)
    if values is None:
        return False
    fig.add_trace(_scatter(data, values, name, "%{y:,.6g}", **kw))
    return True


def _time_plot(
    data: pd.DataFrame,
    title: str,
    spec: Sequence[tuple[str, str]],
    yaxis: str,
    caption: str,
    windows: Sequence[Window],
    log: bool = False,
) -> Plot:
    fig = styled(go.Figure(), title, X_TITLE, yaxis)
    drawn = [_line(fig, data, column, name) for column, name in spec]
    if not any(drawn):
        no_data(fig)
    else:
        shade(fig, windows, label=False)
        if log:
            fig.update_yaxes(type="log")
    return Plot(title, caption, fig)


# ---------------------------------------------------------------------------------------------
# The plots
# ---------------------------------------------------------------------------------------------


def build_plots(
    data: pd.DataFrame,
    bin_size: int = 1,
    windows: Sequence[Window] = (),
    reverts: Mapping[str, tuple[int, int]] | None = None,
) -> list[Plot]:
    """Every plot of the report, in display order (one price plot per asset)."""
    plots = [*price_plots(data, windows), oracle_lag_plot(data, windows)]
    if "base_fee_gwei" in data.columns:
        plots.append(base_fee_plot(data, windows))
    plots += [
        open_interest_plot(data, windows),
        liquidations_plot(data, bin_size, windows),
        *cascade_plot(data, windows),
        queue_plot(data, windows),
        *funding_plot(data, windows),
        health_plot(data, windows),
        insurance_plot(data, windows),
        lp_share_plot(data, windows),
        keepers_plot(data, windows),
        reverts_plot(reverts or {}),
        *adversaries_plot(data, windows),
    ]
    return plots


def adversary_names(timeseries: pd.DataFrame) -> list[str]:
    """Adversary names found by the ``adv_<name>_pnl_usd`` columns."""
    cols = [str(c) for c in timeseries.columns]
    return [
        c[len("adv_") : -len("_pnl_usd")]
        for c in cols
        if c.startswith("adv_") and c.endswith("_pnl_usd")
    ]


def adversaries_plot(data: pd.DataFrame, windows: Sequence[Window] = ()) -> list[Plot]:
    """PnL of each adversary over the run (none without adversaries)."""
    names = adversary_names(data)
    if not names:
        return []
    spec = [(f"adv_{n}_pnl_usd", n) for n in names]
    caption = "Each adversary's PnL after gas, marked to market at the oracle price, every block."
    return [_time_plot(data, "Adversaries: PnL", spec, "USD", caption, windows)]


def price_plots(data: pd.DataFrame, windows: Sequence[Window] = ()) -> list[Plot]:
    symbols = assets(data) or ["(none)"]
    return [_price_plot(data, symbol, windows, first=i == 0) for i, symbol in enumerate(symbols)]


def _price_plot(data: pd.DataFrame, symbol: str, windows: Sequence[Window], first: bool) -> Plot:
    title = f"{symbol}: market vs oracle price"
    fig = styled(go.Figure(), title, X_TITLE, "price (USD)")
    market = _line(fig, data, f"price_{symbol}", "market")
    oracle = _line(fig, data, f"oracle_{symbol}", "oracle (on-chain)", line_shape="hv")
    base = _line(fig, data, f"base_price_{symbol}", "without liquidation impact", line_dash="dot")
    if not (market or oracle):
        no_data(fig)
    else:
        shade(fig, windows, label=first)
    caption = (
        f"Market price of {symbol} and the on-chain oracle answer; gaps between them are "
        "oracle lag or deviation. Shaded: the scenario's windows (crash, outages, gas spikes)."
    )
    if base:
        caption += (
            " Dotted: the scenario's own path, the price had liquidations not sold into the "
            "market's depth (the market line is that path times the liquidations' impact)."
        )
    return Plot(title, caption, fig)


def _per_asset_twin(
    data: pd.DataFrame, title: str, prefix: str, yaxis: str, value: str
) -> go.Figure:
    """A figure with a right axis, one line per `prefix<asset>` column on the left one."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    styled(fig, title, X_TITLE, yaxis)
    for column in (str(c) for c in data.columns if str(c).startswith(prefix)):
        values = _series(data, column)
        if values is not None:
            name = column[len(prefix) :]
            fig.add_trace(_scatter(data, values, name, value), secondary_y=False)
    return fig


def cascade_plot(data: pd.DataFrame, windows: Sequence[Window] = ()) -> list[Plot]:
    """Liquidation impact in the price per asset, and the induced liquidations (with market depth)."""
    if not any(str(c).startswith("liq_impact_pct_") for c in data.columns):
        return []
    title = "Cascades: liquidation impact and induced liquidations"
    fig = _per_asset_twin(
        data, title, "liq_impact_pct_", "liquidation impact (% of price)", "%{y:.3f} %"
    )
    induced = _series(data, "induced_liquidations")
    if induced is not None:
        bars = go.Bar(x=_x(data), y=induced, name="induced liquidations", opacity=0.5)
        fig.add_trace(bars, secondary_y=True)
        fig.update_yaxes(title_text="induced liquidations (count)", secondary_y=True)
    shade(fig, windows, label=False)
    caption = (
        "How far the liquidations' selling (and buying) holds each market price from the "
        "scenario's path, in percent, as the market's depth absorbs it and recovers; bars: "
        "liquidations whose target was healthy at the price without that impact (a cascade "
        "round is a block with one or more)."
    )
    return [Plot(title, caption, fig)]


def funding_plot(data: pd.DataFrame, windows: Sequence[Window] = ()) -> list[Plot]:
    """Funding rate per market, and what the traders paid the pool (only where a market has funding)."""
    rates = [str(c) for c in data.columns if str(c).startswith("funding_rate_pct_day_")]
    if not any((data[c].fillna(0) != 0).any() for c in rates):
        return []
    title = "Funding: rate and payments"
    fig = _per_asset_twin(
        data, title, "funding_rate_pct_day_", "rate (% of price a day)", "%{y:.4f} %"
    )
    paid = _series(data, "funding_to_pool_usd")
    if paid is not None:
        trace = _scatter(data, paid, "paid to the pool", "$%{y:,.2f}", line_dash="dot")
        fig.add_trace(trace, secondary_y=True)
        fig.update_yaxes(title_text="USD (cumulative)", secondary_y=True)
    shade(fig, windows, label=False)
    caption = (
        "Each market's funding rate, driven by its skew (net size over open interest): + the longs "
        "pay, - the shorts; dotted, what the traders paid over the run, net, which the pool (the "
        "holder of the net) earned (protocol.markets.*.funding_rate)."
    )
    return [Plot(title, caption, fig)]


def oracle_lag_plot(data: pd.DataFrame, windows: Sequence[Window] = ()) -> Plot:
    """The on-chain answer's distance from the market, per asset, in percent of the market price."""
    title = "Oracle lag behind the market"
    fig = styled(go.Figure(), title, X_TITLE, "oracle / market - 1 (%)")
    drawn = False
    for symbol in assets(data):
        market, oracle = _series(data, f"price_{symbol}"), _series(data, f"oracle_{symbol}")
        if market is None or oracle is None:
            continue
        lag = (oracle / market.where(market != 0) - 1.0) * 100.0
        fig.add_trace(_scatter(data, lag, symbol, "%{y:.3f} %"))
        drawn = True
    if not drawn:
        no_data(fig)
    else:
        shade(fig, windows, label=False)
    caption = (
        "How far the on-chain answer is from the market, in percent of the market price: above 0 "
        "the oracle is higher (a long looks healthier on chain than it is), below 0 lower."
    )
    return Plot(title, caption, fig)


def base_fee_plot(data: pd.DataFrame, windows: Sequence[Window] = ()) -> Plot:
    caption = (
        "Base fee of each block (gwei, log scale): EIP-1559 from the blocks' gas, or the "
        "scenario's base-fee path in its windows; keepers weigh rewards against it."
    )
    spec = [("base_fee_gwei", "base fee")]
    return _time_plot(data, "Base fee", spec, "gwei", caption, windows, log=True)


def open_interest_plot(data: pd.DataFrame, windows: Sequence[Window] = ()) -> Plot:
    spec = [("oi_long_usd", "long"), ("oi_short_usd", "short")]
    caption = "Open interest notional, long and short, summed over all markets."
    return _time_plot(data, "Open interest", spec, "notional (USD)", caption, windows)


def liquidations_plot(data: pd.DataFrame, bin_size: int, windows: Sequence[Window] = ()) -> Plot:
    title = "Liquidations per block" if bin_size == 1 else f"Liquidations per {bin_size} blocks"
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    styled(fig, title, X_TITLE, "liquidations (count)")
    x = _x(data)
    isolated = _series(data, "liquidations_isolated")
    cross = _series(data, "liquidations_cross")
    total = _series(data, "liquidations")
    if isolated is None and cross is None and total is None:
        no_data(fig)
    else:
        first_label = "isolated"
        if isolated is None and cross is None:
            isolated, first_label = total, "all"  # no split: the total
        for values, name, colour in (
            (isolated, first_label, "#1f77b4"),
            (cross, "cross", "#ff7f0e"),
        ):
            if values is not None:
                fig.add_trace(
                    go.Bar(x=x, y=values.fillna(0), name=name, marker_color=colour),
                    secondary_y=False,
                )
        fig.update_layout(barmode="stack", bargap=0)
        notional = _series(data, "liquidated_notional_usd")
        if notional is not None and (notional > 0).any():
            hit = notional > 0
            fig.add_trace(
                go.Scatter(
                    x=x[hit],
                    y=notional[hit],
                    mode="markers",
                    name="notional (USD, right)",
                    marker={"color": "#c62828", "size": 5},
                ),
                secondary_y=True,
            )
            fig.update_yaxes(title_text="liquidated notional (USD)", secondary_y=True)
        counted = sum(float(v.fillna(0).sum()) for v in (isolated, cross) if v is not None)
        if counted == 0:
            no_data(fig, "no liquidations")
        shade(fig, windows, label=False)
    unit = "block" if bin_size == 1 else f"bin of {bin_size} blocks"
    caption = (
        f"Liquidations per {unit}, isolated and cross stacked; red dots: liquidated "
        "notional (right axis)."
    )
    return Plot(title, caption, fig)


def health_plot(data: pd.DataFrame, windows: Sequence[Window] = ()) -> Plot:
    title = "Health distribution (equity / maintenance)"
    fig = styled(go.Figure(), title, X_TITLE, "health (ratio, log scale)")
    x = _x(data)
    series = {c: _series(data, c) for c in HEALTH_COLUMNS}
    if all(values is None for values in series.values()):
        no_data(fig)
    else:

        def clip(values: pd.Series) -> pd.Series:
            return values.clip(lower=HEALTH_FLOOR, upper=HEALTH_CEILING)

        low, high = series["health_p10"], series["health_p90"]
        if low is not None and high is not None:
            fig.add_trace(
                go.Scatter(x=x, y=clip(high), mode="lines", line={"width": 0}, name="p90")
            )
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=clip(low),
                    mode="lines",
                    line={"width": 0},
                    fill="tonexty",
                    fillcolor="rgba(31,119,180,0.25)",
                    name="p10 (band p10-p90)",
                )
            )
        median, minimum = series["health_p50"], series["health_min"]
        if median is not None:
            fig.add_trace(
                go.Scatter(
                    x=x, y=clip(median), mode="lines", name="median", line={"color": "#1f77b4"}
                )
            )
        if minimum is not None:
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=clip(minimum),
                    mode="lines",
                    name="min",
                    line={"color": "#c62828", "width": 1},
                )
            )
        fig.add_hline(
            y=LIQUIDATION_HEALTH,
            line_dash="dash",
            line_color="black",
            annotation_text="liquidation (1.0)",
        )
        fig.update_yaxes(type="log")
        shade(fig, windows, label=False)
    caption = (
        f"Health across open positions and cross accounts: p10-p90 band, median and "
        f"minimum; below 1.0 is liquidatable (clipped to [{HEALTH_FLOOR:g}, "
        f"{HEALTH_CEILING:g}])."
    )
    return Plot(title, caption, fig)


def queue_plot(data: pd.DataFrame, windows: Sequence[Window] = ()) -> Plot:
    """The liquidation queue: what is liquidatable after each block yet still open."""
    title = "Liquidation queue"
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    styled(fig, title, X_TITLE, "notional (USD)")
    notional, count = _series(data, "liquidation_queue_usd"), _series(data, "latent_liquidatable")
    if notional is None and count is None:
        no_data(fig)
    else:
        if notional is not None:
            fig.add_trace(_scatter(data, notional, "notional", "$%{y:,.0f}"), secondary_y=False)
        if count is not None:
            fig.add_trace(_scatter(data, count, "positions and accounts", "%{y}"), secondary_y=True)
            fig.update_yaxes(title_text="count", secondary_y=True)
        shade(fig, windows, label=False)
    caption = (
        "Positions and cross accounts liquidatable after the block yet still open, and their "
        "notional at the oracle price: what keepers were too slow for, found unprofitable, or held "
        "back because a market's per-block liquidation cap was used up (protocol.markets.*."
        "liquidation_cap_usd)."
    )
    return Plot(title, caption, fig)


def insurance_plot(data: pd.DataFrame, windows: Sequence[Window] = ()) -> Plot:
    spec = [
        ("insurance_fund_usd", "insurance fund"),
        ("bad_debt_usd", "bad debt (cumulative)"),
        ("latent_bad_debt_usd", "latent bad debt"),
    ]
    caption = (
        "Insurance fund balance, cumulative bad debt that it could not absorb, and latent bad debt: "
        "the negative equity of liquidatable positions and accounts no keeper has taken yet."
    )
    return _time_plot(data, "Insurance fund and bad debt", spec, "USD", caption, windows)


def lp_share_plot(data: pd.DataFrame, windows: Sequence[Window] = ()) -> Plot:
    caption = "Value of one liquidity-pool share; it falls when traders win or bad debt hits LPs."
    spec = [("lp_share_price", "share price")]
    return _time_plot(data, "LP share price", spec, "USD per share", caption, windows)


def keepers_plot(data: pd.DataFrame, windows: Sequence[Window] = ()) -> Plot:
    title = "Keepers: cumulative rewards and gas"
    names = keeper_names(data)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("rewards (USD)", "gas used"))
    styled(fig, title, X_TITLE, "")
    x = _x(data)
    drawn = False
    for col, kind in ((1, "rewards_usd"), (2, "gas")):
        for i, name in enumerate(names):
            values = _series(data, f"keeper_{name}_{kind}")
            if values is not None:
                fig.add_trace(
                    go.Scatter(
                        x=x,
                        y=values,
                        mode="lines",
                        name=esc(name),
                        legendgroup=esc(name),
                        showlegend=col == 1,
                        line={"color": _colour(i)},
                    ),
                    row=1,
                    col=col,
                )
                drawn = True
        total = _series(data, f"keeper_{kind}")
        if total is not None:
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=total,
                    mode="lines",
                    name="all keepers",
                    legendgroup="all",
                    showlegend=col == 1,
                    line={"color": "gray", "dash": "dash"},
                ),
                row=1,
                col=col,
            )
            drawn = True
    if not drawn:
        no_data(fig)
    caption = (
        f"Cumulative rewards and gas per keeper ({len(names)} found); dashed: all keepers."
        if names
        else "Cumulative keeper rewards and gas; no per-keeper columns found."
    )
    return Plot(title, caption, fig)


def reverts_plot(reverts: Mapping[str, tuple[int, int]]) -> Plot:
    """Reverted transactions by kind and custom error, and the gas they wasted."""
    title = "Reverts by kind, and the gas they wasted"
    fig = make_subplots(rows=1, cols=2, subplot_titles=("reverted transactions", "gas used"))
    styled(fig, title, "", "", height=max(300, 120 + 28 * len(reverts)))
    fig.update_layout(hovermode="closest", showlegend=False)
    if not reverts:
        no_data(fig, "nothing reverted")
    else:
        keys = sorted(reverts, key=lambda k: reverts[k][1])
        labels = [esc(k) for k in keys]
        fig.add_trace(
            go.Bar(y=labels, x=[reverts[k][0] for k in keys], orientation="h"), row=1, col=1
        )
        fig.add_trace(
            go.Bar(
                y=labels, x=[reverts[k][1] for k in keys], orientation="h", marker_color="#c62828"
            ),
            row=1,
            col=2,
        )
        fig.update_yaxes(showticklabels=False, row=1, col=2)
    caption = (
        "Every reverted transaction by what its agent meant to do and the custom error it hit "
        "(from events.jsonl), and the gas each kind burned: keepers' lost races show here."
    )
    return Plot(title, caption, fig)


_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _colour(i: int) -> str:
    return _PALETTE[i % len(_PALETTE)]


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------


def _esc(value: object) -> str:
    return esc(value)


def fmt(value: object, digits: int = 2) -> str:
    """Human-readable number (thousands separators); other values as text. Not escaped."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        number = float(value)
        return "—" if not math.isfinite(number) else f"{number:,.{digits}f}"
    return str(value)


def _get(mapping: object, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, Mapping) else None


def _row(label: str, value: object, digits: int = 2, css: str = "num") -> str:
    return f'<tr><th>{_esc(label)}</th><td class="{css}">{_esc(fmt(value, digits))}</td></tr>'


def _start_end(mapping: object, digits: int) -> str:
    start, end = _get(mapping, "start"), _get(mapping, "end")
    return f"{fmt(start, digits)} → {fmt(end, digits)}"


def violation_count(violations: object) -> int:
    """Number of invariant violations, whether reported as a count or as a list of them."""
    if isinstance(violations, int | float | np.integer | np.floating):
        return int(violations) if math.isfinite(float(violations)) else 0
    if isinstance(violations, Sequence | Mapping) and not isinstance(violations, str):
        return len(violations)
    return 0


def summary_table(summary: Mapping[str, Any]) -> str:
    liq = summary.get("liquidations")
    sent, reverted = summary.get("tx_sent"), summary.get("tx_reverted")
    reverted_text = fmt(reverted)
    if isinstance(sent, int | float) and isinstance(reverted, int | float) and sent > 0:
        reverted_text += f" ({100.0 * reverted / sent:.1f}%)"
    rows = [
        _row("blocks", summary.get("blocks")),
        _row("wall time (s)", summary.get("wall_s")),
        _row("transactions sent", sent),
        f'<tr><th>transactions reverted</th><td class="num">{_esc(reverted_text)}</td></tr>',
        _row("transactions per second", summary.get("tx_per_s")),
        _row("liquidations", _get(liq, "count")),
        _row(
            "liquidations isolated / cross",
            f"{fmt(_get(liq, 'isolated'))} / {fmt(_get(liq, 'cross'))}",
        ),
        _row("liquidated notional (USD)", _get(liq, "notional_usd")),
        _row("bad debt (USD)", summary.get("bad_debt_usd")),
        _row("insurance fund (USD), start → end", _start_end(summary.get("insurance_fund_usd"), 2)),
        _row("LP share price (USD), start → end", _start_end(summary.get("lp_share_price"), 6)),
    ]
    cascade = summary.get("cascade")
    if isinstance(cascade, Mapping) and cascade.get("depth"):
        rows.append(
            _row(
                "induced liquidations / cascade rounds",
                f"{fmt(cascade.get('induced_liquidations'))} / {fmt(cascade.get('rounds'))}",
            )
        )
        for symbol, share in (cascade.get("share_of_move") or {}).items():
            peak = _get(cascade.get("peak_impact_pct"), symbol)
            rows.append(
                _row(
                    f"{symbol}: share of the largest fall from liquidations, deepest impact",
                    f"{100 * share:.2f} %, {fmt(peak)} %" if isinstance(share, float) else "-",
                )
            )
    adl = summary.get("deleveraging")
    if isinstance(adl, Mapping) and adl.get("positions"):
        rows.append(
            _row(
                "auto-deleveraged positions / haircuts (USD) / deficit at the end (USD)",
                f"{fmt(adl.get('positions'))} / {fmt(adl.get('haircut_usd'))} / "
                f"{fmt(adl.get('deficit_end_usd'))}",
            )
        )
    funding = summary.get("funding")
    if isinstance(funding, Mapping) and any((funding.get("peak_rate_pct_day") or {}).values()):
        rows.append(
            _row(
                "funding paid to the pool / accrued, open (USD)",
                f"{fmt(funding.get('to_pool_usd'))} / {fmt(funding.get('open_usd'))}",
            )
        )
    return '<table class="summary">' + "".join(rows) + "</table>"


KEEPER_COLUMNS = (
    ("liquidations", "taken"),
    ("missed", "missed episodes"),
    ("latency_blocks_p50", "latency p50 (blocks)"),
    ("latency_blocks_max", "latency max (blocks)"),
    ("rewards_usd", "rewards (USD)"),
    ("gas_usd", "gas (USD)"),
    ("wasted_gas_usd", "wasted gas (USD)"),
    ("gas_used", "gas used"),
    ("lost_races", "lost races"),
    ("latent_left_share", "latent bad debt left"),
)
"""A keeper's report card: summary field, column heading (simulation.metrics.KeeperCards)."""


def keeper_cell(key: str, value: object) -> str:
    """One report-card value as shown (not escaped): the latent share in %, the rest as numbers."""
    if key == "latent_left_share" and isinstance(value, int | float):
        return f"{100 * value:.1f} %"
    return fmt(value)


def keeper_columns(keepers: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The report card's columns for these keepers: `missed blocks` too when an outside bot was late."""
    columns = list(KEEPER_COLUMNS)
    if any(_get(k, "missed_blocks") for k in keepers.values()):
        columns.append(("missed_blocks", "missed blocks"))
    return columns


def keeper_table(keepers: object) -> str:
    if not isinstance(keepers, Mapping) or not keepers:
        return "<p>No keepers in this run.</p>"
    columns = keeper_columns(keepers)
    head = "<tr><th>keeper</th>" + "".join(f"<th>{_esc(h)}</th>" for _, h in columns) + "</tr>"

    body = "".join(
        f"<tr><th>{_esc(name)}</th>"
        + "".join(
            f'<td class="num">{_esc(keeper_cell(key, _get(stats, key)))}</td>' for key, _ in columns
        )
        + "</tr>"
        for name, stats in keepers.items()
    )
    note = (
        '<p class="note">An episode: a position or cross account liquidatable from one block until it '
        "is not. Missed: episodes the keeper sent nothing at. Latency: blocks from the first "
        "liquidatable block to its liquidation. Latent bad debt left: of the underwater targets left "
        "open (USD x blocks), the part it sent nothing at in the next block.</p>"
    )
    return f'<table class="keepers">{head}{body}</table>{note}'


def adversaries_table(adversaries: object) -> str:
    if not isinstance(adversaries, Mapping) or not adversaries:
        return ""
    head = "<tr><th>adversary</th><th>kind</th><th>PnL after gas (USD)</th><th>gas (USD)</th></tr>"
    body = "".join(
        f"<tr><th>{_esc(name)}</th><td>{_esc(_get(a, 'kind'))}</td>"
        f'<td class="num">{_esc(fmt(_get(a, "pnl_usd")))}</td>'
        f'<td class="num">{_esc(fmt(_get(a, "gas_usd")))}</td></tr>'
        for name, a in adversaries.items()
    )
    return f'<h2>Adversaries</h2><table class="adversaries">{head}{body}</table>'


def invariants_table(invariants: object) -> str:
    violations = _get(invariants, "violations")
    count = violation_count(violations)
    css = "num bad" if count > 0 else "num ok"
    rows = [
        _row("blocks checked", _get(invariants, "blocks_checked")),
        f'<tr><th>violations</th><td class="{css}" id="violations">{count:,}</td></tr>',
    ]
    details = ""
    if isinstance(violations, Sequence) and not isinstance(violations, str) and violations:
        items = "".join(f"<li>{_esc(v)}</li>" for v in list(violations)[:20])
        more = f"<li>… {len(violations) - 20} more</li>" if len(violations) > 20 else ""
        details = f'<ul class="bad">{items}{more}</ul>'
    return '<table class="invariants">' + "".join(rows) + "</table>" + details


def fork_html(fork: object) -> str:
    """Where a fork run forked and what it wired (empty for a run on a fresh chain)."""
    if not isinstance(fork, Mapping):
        return ""
    rows = [
        _row("chain", f"{fork.get('chain')} (chain id {fork.get('chain_id')})"),
        _row("fork block", fork.get("block")),
        _row("fork start", f"{fork.get('start_s')} s, cache {fork.get('cache')}"),
        _row("URL from", fork.get("url_from")),
    ]
    tokens = fork.get("tokens") or {}
    feeds = fork.get("feeds") or {}
    token_rows = "".join(
        f"<tr><th>{_esc(sym)}</th><td>{_esc(t.get('address'))}</td>"
        f'<td class="num">{_esc(t.get("decimals"))}</td>'
        f'<td class="num">{_esc(fmt(t.get("total_supply_at_fork")))}</td></tr>'
        for sym, t in tokens.items()
    )
    feed_rows = "".join(
        f"<tr><th>{_esc(sym)}</th><td>{_esc(f.get('proxy'))}</td>"
        f'<td class="num">{_esc(f.get("phase"))}</td>'
        f'<td class="num">{_esc(f.get("first_round_id"))}</td>'
        f'<td class="num">{_esc(f.get("rounds_written"))}</td></tr>'
        for sym, f in feeds.items()
    )
    return (
        "<h2>Fork</h2>"
        + '<table class="fork">'
        + "".join(rows)
        + "</table>"
        + "<table><tr><th>token</th><th>address</th><th>decimals</th><th>supply at fork</th></tr>"
        + token_rows
        + "</table>"
        + "<table><tr><th>feed</th><th>proxy</th><th>phase</th><th>first round id</th>"
        + "<th>rounds written</th></tr>"
        + feed_rows
        + "</table>"
    )


def render_html(
    summary: Mapping[str, Any], plots: Sequence[Plot], rows: int, bin_size: int = 1
) -> str:
    """The whole document. Every string from the summary is HTML-escaped."""
    scenario = str(summary.get("scenario", "(unnamed)"))
    meta = (
        f"scenario <b>{_esc(scenario)}</b> · seed {_esc(fmt(summary.get('seed')))} · "
        f"blocks {_esc(fmt(summary.get('blocks')))} · {rows:,} rows of time series"
    )
    if bin_size > 1:
        meta += f" · plots aggregate {bin_size} blocks per point"
    meta += " · drag to zoom, double-click to reset, click a legend entry to hide it"
    return page(
        f"Simulation report: {scenario}",
        meta,
        [
            "<h2>Summary</h2>",
            summary_table(summary),
            "<h2>Keepers</h2>",
            keeper_table(summary.get("keepers")),
            adversaries_table(summary.get("adversaries")),
            "<h2>Invariants</h2>",
            invariants_table(summary.get("invariants")),
            fork_html(summary.get("fork")),
            "<h2>Plots</h2>",
            *plots,
        ],
    )
