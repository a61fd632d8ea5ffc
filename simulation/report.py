"""Self-contained HTML report of one simulation run.

``write_report`` turns the run summary and the per-block time series into ``report.html``: a header,
tables of the headline numbers, and plots inlined as base64 PNG. The file needs no network and no
JavaScript; CSS is inline. Long runs are aggregated into bins before plotting so the file stays
small.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")  # no display: render to memory only

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from simulation.outputs import write_text_atomic

REPORT_NAME = "report.html"
MAX_PLOT_POINTS = 1500  # rows per plot after aggregation; keeps every PNG small
DPI = 90
WIDE = (11.0, 3.6)  # figure size in inches
HEALTH_FLOOR = 0.01  # health is clipped to [floor, ceiling] for the log-scaled plot
HEALTH_CEILING = 1000.0
LIQUIDATION_HEALTH = 1.0

# Per-block counts: a bin holds their sum. Other columns keep the bin's last value, except these.
SUM_COLUMNS = frozenset(
    {
        "liquidations",
        "liquidations_isolated",
        "liquidations_cross",
        "liquidated_notional_usd",
        "tx_sent",
        "tx_reverted",
    }
)
MIN_COLUMNS = frozenset({"health_min", "health_p10"})
MAX_COLUMNS = frozenset({"health_p90"})
FIRST_COLUMNS = frozenset({"block", "timestamp"})
HEALTH_COLUMNS = ("health_p10", "health_p50", "health_p90", "health_min")

_KEEPER_REWARDS = re.compile(r"^keeper_(?P<name>.+)_rewards_usd$")

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       max-width: 1100px; margin: 24px auto; padding: 0 16px; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 4px; word-break: break-word; }
h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }
.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 0.95em; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: left; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bad { color: #c62828; font-weight: bold; background: #fdecea; }
.ok { color: #2e7d32; }
figure { margin: 20px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; margin-top: 4px; }
"""


@dataclass(frozen=True)
class Plot:
    """One rendered plot: its title, a one-line caption and the PNG as base64 text."""

    title: str
    caption: str
    png_base64: str


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def write_report(out_dir: Path, summary: dict[str, Any], timeseries: pd.DataFrame) -> Path:
    """Write out_dir/report.html (self-contained: every plot an inline base64 PNG, CSS inline, no
    external URL, no JavaScript needed) and return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data, bin_size = downsample(timeseries, MAX_PLOT_POINTS)
    plots = build_plots(data, bin_size)
    document = render_html(summary, plots, rows=len(timeseries), bin_size=bin_size)
    path = out_dir / REPORT_NAME
    write_text_atomic(path, document)  # a temporary file renamed: never a half-written report
    return path


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
    block = _series(data, "block")
    return block if block is not None else pd.Series(np.arange(len(data)), dtype=float)


# ---------------------------------------------------------------------------------------------
# Plot helpers
# ---------------------------------------------------------------------------------------------


def _render(draw: Callable[[Figure], None], size: tuple[float, float] = WIDE) -> str:
    """Draw on a new figure, return it as base64 PNG and always close the figure."""
    fig = plt.figure(figsize=size)
    try:
        draw(fig)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _no_data(ax: Axes, message: str = "no data") -> None:
    ax.text(
        0.5,
        0.5,
        message,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=14,
        color="#888",
    )
    ax.set_xticks([])
    ax.set_yticks([])


def _compact(value: float, _pos: object = None) -> str:
    """Tick label like 1.5M, 20k, 0.25."""
    magnitude = abs(value)
    for threshold, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if magnitude >= threshold:
            return f"{value / threshold:g}{suffix}"
    return f"{value:g}"


def _style(ax: Axes, title: str, ylabel: str, compact: bool = False) -> None:
    ax.set_title(title)
    ax.set_xlabel("block")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if compact:
        ax.yaxis.set_major_formatter(FuncFormatter(_compact))


def _legend(ax: Axes, twin: Axes | None = None) -> None:
    """One legend for the axes and its twin, drawn on the topmost of them."""
    handles, labels = ax.get_legend_handles_labels()
    if twin is not None:
        more_handles, more_labels = twin.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    if handles:
        loc = "best" if twin is None else "upper left"  # "best" would ignore the other axes
        (twin or ax).legend(handles, labels, loc=loc, fontsize=8, framealpha=0.9)


def _lines(ax: Axes, x: pd.Series, data: pd.DataFrame, spec: Sequence[tuple[str, str]]) -> bool:
    """Plot each (column, label) that has data; False when none had any."""
    drawn = False
    for column, label in spec:
        values = _series(data, column)
        if values is not None:
            ax.plot(x, values, label=label, linewidth=1.2)
            drawn = True
    return drawn


# ---------------------------------------------------------------------------------------------
# The plots
# ---------------------------------------------------------------------------------------------


def build_plots(data: pd.DataFrame, bin_size: int = 1) -> list[Plot]:
    """Every plot of the report, in display order (one price plot per asset)."""
    return [
        *price_plots(data),
        open_interest_plot(data),
        liquidations_plot(data, bin_size),
        health_plot(data),
        insurance_plot(data),
        lp_share_plot(data),
        keepers_plot(data),
        *adversaries_plot(data),
    ]


def adversary_names(timeseries: pd.DataFrame) -> list[str]:
    """Adversary names found by the ``adv_<name>_pnl_usd`` columns."""
    cols = [str(c) for c in timeseries.columns]
    return [
        c[len("adv_") : -len("_pnl_usd")]
        for c in cols
        if c.startswith("adv_") and c.endswith("_pnl_usd")
    ]


def adversaries_plot(data: pd.DataFrame) -> list[Plot]:
    """PnL of each adversary over the run (none without adversaries)."""
    names = adversary_names(data)
    if not names:
        return []
    spec = [(f"adv_{n}_pnl_usd", n) for n in names]
    caption = "Each adversary's PnL after gas, marked to market at the oracle price, every block."
    return [_line_plot(data, "Adversaries: PnL", spec, "USD", caption)]


def price_plots(data: pd.DataFrame) -> list[Plot]:
    symbols = assets(data) or ["(none)"]
    return [_price_plot(data, symbol) for symbol in symbols]


def _price_plot(data: pd.DataFrame, symbol: str) -> Plot:
    title = f"{symbol}: market vs oracle price"

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        x = _x(data)
        market = _series(data, f"price_{symbol}")
        oracle = _series(data, f"oracle_{symbol}")
        if market is not None:
            ax.plot(x, market, label="market", linewidth=1.2)
        if oracle is not None:
            ax.plot(x, oracle, label="oracle (on-chain)", linewidth=1.2, drawstyle="steps-post")
        if market is None and oracle is None:
            _no_data(ax)
        _style(ax, title, "price (USD)", compact=True)
        _legend(ax)

    caption = (
        f"Market price of {symbol} and the on-chain oracle answer; gaps between them are "
        "oracle lag or deviation."
    )
    return Plot(title, caption, _render(draw))


def _line_plot(
    data: pd.DataFrame, title: str, spec: list[tuple[str, str]], ylabel: str, caption: str
) -> Plot:
    """Columns of `data` as lines on one axis, or a 'no data' panel when none has data."""

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        if not _lines(ax, _x(data), data, spec):
            _no_data(ax)
        _style(ax, title, ylabel, compact=True)
        _legend(ax)

    return Plot(title, caption, _render(draw))


def open_interest_plot(data: pd.DataFrame) -> Plot:
    spec = [("oi_long_usd", "long"), ("oi_short_usd", "short")]
    caption = "Open interest notional, long and short, summed over all markets."
    return _line_plot(data, "Open interest", spec, "notional (USD)", caption)


def liquidations_plot(data: pd.DataFrame, bin_size: int) -> Plot:
    title = "Liquidations per block" if bin_size == 1 else f"Liquidations per {bin_size} blocks"

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        x = _x(data)
        isolated = _series(data, "liquidations_isolated")
        cross = _series(data, "liquidations_cross")
        total = _series(data, "liquidations")
        if isolated is None and cross is None and total is None:
            _no_data(ax)
        else:
            _liquidation_bars(ax, x, isolated, cross, total, bin_size)
        _style(ax, title, "liquidations (count)")
        twin = _notional_axis(ax, x, _series(data, "liquidated_notional_usd"))
        _legend(ax, twin)

    unit = "block" if bin_size == 1 else f"bin of {bin_size} blocks"
    caption = (
        f"Liquidations per {unit}, isolated and cross stacked; red dots: liquidated "
        "notional (right axis)."
    )
    return Plot(title, caption, _render(draw))


def _notional_axis(ax: Axes, x: pd.Series, notional: pd.Series | None) -> Axes | None:
    """Liquidated notional as dots on a right-hand axis; None when nothing was liquidated."""
    if notional is None or not (notional > 0).any():
        return None
    twin = ax.twinx()
    hit = notional > 0
    twin.plot(x[hit], notional[hit], "o", markersize=3, color="#c62828", label="notional")
    twin.set_ylabel("liquidated notional (USD)")
    twin.yaxis.set_major_formatter(FuncFormatter(_compact))
    twin.set_ylim(bottom=0)
    return twin


def _liquidation_bars(
    ax: Axes,
    x: pd.Series,
    isolated: pd.Series | None,
    cross: pd.Series | None,
    total: pd.Series | None,
    bin_size: int,
) -> None:
    zeros = pd.Series(np.zeros(len(x)), index=x.index)
    first_label = "isolated"
    if isolated is None and cross is None and total is not None:
        isolated, first_label = total, "all"  # no split available: show the total
    iso = (isolated if isolated is not None else zeros).fillna(0)
    crs = (cross if cross is not None else zeros).fillna(0)
    width = float(bin_size)
    ax.bar(x, iso, width=width, align="edge", label=first_label, color="#1f77b4")
    ax.bar(x, crs, width=width, align="edge", bottom=iso, label="cross", color="#ff7f0e")
    if float((iso + crs).sum()) == 0.0:
        ax.text(
            0.5,
            0.5,
            "no liquidations",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="#888",
        )
    ax.set_ylim(bottom=0)


def health_plot(data: pd.DataFrame) -> Plot:
    title = "Health distribution (equity / maintenance)"

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        x = _x(data)
        series = {c: _series(data, c) for c in HEALTH_COLUMNS}
        if all(values is None for values in series.values()):
            _no_data(ax)
        else:
            _health_lines(ax, x, series)
        _style(ax, title, "health (ratio, log scale)")
        _legend(ax)

    caption = (
        f"Health across open positions and cross accounts: p10-p90 band, median and "
        f"minimum; below 1.0 is liquidatable (clipped to [{HEALTH_FLOOR:g}, "
        f"{HEALTH_CEILING:g}])."
    )
    return Plot(title, caption, _render(draw))


def _health_lines(ax: Axes, x: pd.Series, series: Mapping[str, pd.Series | None]) -> None:
    def clip(values: pd.Series) -> pd.Series:
        return values.clip(lower=HEALTH_FLOOR, upper=HEALTH_CEILING)

    low, high = series["health_p10"], series["health_p90"]
    if low is not None and high is not None:
        ax.fill_between(
            x, clip(low), clip(high), alpha=0.25, color="#1f77b4", label="p10-p90", linewidth=0
        )
    median, minimum = series["health_p50"], series["health_min"]
    if median is not None:
        ax.plot(x, clip(median), color="#1f77b4", linewidth=1.4, label="median")
    if minimum is not None:
        ax.plot(x, clip(minimum), color="#c62828", linewidth=0.8, alpha=0.8, label="min")
    ax.axhline(
        LIQUIDATION_HEALTH,
        color="black",
        linestyle="--",
        linewidth=1.0,
        label="liquidation threshold (1.0)",
    )
    ax.set_yscale("log")


def insurance_plot(data: pd.DataFrame) -> Plot:
    spec = [
        ("insurance_fund_usd", "insurance fund"),
        ("bad_debt_usd", "bad debt (cumulative)"),
        ("latent_bad_debt_usd", "latent bad debt"),
    ]
    caption = (
        "Insurance fund balance, cumulative bad debt that it could not absorb, and latent bad debt: "
        "the negative equity of liquidatable positions and accounts no keeper has taken yet."
    )
    return _line_plot(data, "Insurance fund and bad debt", spec, "USD", caption)


def lp_share_plot(data: pd.DataFrame) -> Plot:
    title = "LP share price"

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        if not _lines(ax, _x(data), data, [("lp_share_price", "share price")]):
            _no_data(ax)
        else:
            ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        _style(ax, title, "USD per share")

    caption = "Value of one liquidity-pool share; it falls when traders win or bad debt hits LPs."
    return Plot(title, caption, _render(draw))


def keepers_plot(data: pd.DataFrame) -> Plot:
    title = "Keepers: cumulative rewards and gas"
    names = keeper_names(data)

    def draw(fig: Figure) -> None:
        rewards_ax, gas_ax = fig.subplots(1, 2)
        _keeper_panel(rewards_ax, data, names, "rewards_usd", "rewards (USD)")
        _keeper_panel(gas_ax, data, names, "gas", "gas used (gas units)")

    caption = (
        f"Cumulative rewards and gas per keeper ({len(names)} found); dashed: all keepers."
        if names
        else "Cumulative keeper rewards and gas; no per-keeper columns found."
    )
    return Plot(title, caption, _render(draw, (WIDE[0], WIDE[1] + 0.4)))


def _keeper_panel(
    ax: Axes, data: pd.DataFrame, names: Iterable[str], kind: str, ylabel: str
) -> None:
    x = _x(data)
    spec = [(f"keeper_{name}_{kind}", name) for name in names]
    drawn = _lines(ax, x, data, spec)
    total = _series(data, f"keeper_{kind}")
    if total is not None:
        ax.plot(x, total, color="gray", linestyle="--", linewidth=1.0, label="all keepers")
        drawn = True
    if not drawn:
        _no_data(ax)
    _style(ax, f"Keeper {ylabel.split(' (')[0]} (cumulative)", ylabel, compact=True)
    _legend(ax)


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


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
    return '<table class="summary">' + "".join(rows) + "</table>"


def keeper_table(keepers: object) -> str:
    if not isinstance(keepers, Mapping) or not keepers:
        return "<p>No keepers in this run.</p>"
    head = (
        "<tr><th>keeper</th><th>liquidations</th><th>rewards (USD)</th><th>gas used</th>"
        "<th>lost races</th></tr>"
    )
    body = "".join(
        f"<tr><th>{_esc(name)}</th>"
        + "".join(
            f'<td class="num">{_esc(fmt(_get(stats, key)))}</td>'
            for key in ("liquidations", "rewards_usd", "gas_used", "lost_races")
        )
        + "</tr>"
        for name, stats in keepers.items()
    )
    return f'<table class="keepers">{head}{body}</table>'


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


def _figure_html(plot: Plot) -> str:
    return (
        f'<figure><img src="data:image/png;base64,{plot.png_base64}" alt="{_esc(plot.title)}">'
        f"<figcaption>{_esc(plot.caption)}</figcaption></figure>"
    )


def render_html(
    summary: Mapping[str, Any], plots: Sequence[Plot], rows: int, bin_size: int = 1
) -> str:
    """The whole document. Every string from the summary is HTML-escaped."""
    scenario = _esc(summary.get("scenario", "(unnamed)"))
    meta = (
        f"scenario <b>{scenario}</b> · seed {_esc(fmt(summary.get('seed')))} · "
        f"blocks {_esc(fmt(summary.get('blocks')))} · {rows:,} rows of time series"
    )
    if bin_size > 1:
        meta += f" · plots aggregate {bin_size} blocks per point"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Simulation report: {scenario}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Simulation report: {scenario}</h1>",
        f'<p class="meta">{meta}</p>',
        "<h2>Summary</h2>",
        summary_table(summary),
        "<h2>Keepers</h2>",
        keeper_table(summary.get("keepers")),
        adversaries_table(summary.get("adversaries")),
        "<h2>Invariants</h2>",
        invariants_table(summary.get("invariants")),
        fork_html(summary.get("fork")),
        "<h2>Plots</h2>",
        *(_figure_html(plot) for plot in plots),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
