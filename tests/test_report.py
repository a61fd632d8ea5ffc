"""The HTML report: self-contained (plotly.js inline, nothing fetched), escaped, robust to missing data
and long runs, on a time axis in minutes with the scenario's windows shaded. No chain use; the same
pages opened in a real browser: tests/test_report_browser.py."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from simulation.report import HEALTH_COLUMNS, downsample, keeper_names, write_report

FIGURE = re.compile(r'<script>\(function\(\)\{var f=(\{.*?\});Plotly\.newPlot\("plot-(\d+)"')
SCENARIO = 'crash <b>& "burn"'
BASE_PLOTS = 9
"""Oracle lag, open interest, liquidations, liquidation queue, health, insurance, LP share, keepers,
reverts."""


def make_timeseries(
    rows: int = 400,
    keepers: tuple[str, ...] = ("alpha", "beta"),
    assets: tuple[str, ...] = ("ETH", "BTC"),
    seed: int = 7,
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    block = np.arange(1, rows + 1)
    data: dict[str, Any] = {"block": block, "timestamp": 1_700_000_000 + 12 * block}
    for i, symbol in enumerate(assets):
        start = 3_000.0 * (10**i)
        price = start * np.exp(np.cumsum(rng.normal(0, 0.004, rows)))
        data[f"price_{symbol}"] = price
        data[f"oracle_{symbol}"] = pd.Series(price).iloc[::10].reindex(range(rows)).ffill()
    iso = rng.poisson(0.05, rows)
    cross = rng.poisson(0.03, rows)
    notional = (iso + cross) * rng.uniform(1e3, 5e4, rows)
    data |= {
        "oi_long_usd": 5e6 + np.cumsum(rng.normal(0, 1e4, rows)),
        "oi_short_usd": 4e6 + np.cumsum(rng.normal(0, 1e4, rows)),
        "open_positions": rng.integers(50, 80, rows),
        "cross_accounts": rng.integers(5, 10, rows),
        "liquidations": iso + cross,
        "liquidations_isolated": iso,
        "liquidations_cross": cross,
        "liquidated_notional_usd": notional,
        "bad_debt_usd": np.cumsum(notional * 0.01),
        "insurance_fund_usd": 1e5 + np.cumsum(notional * 0.005),
        "lp_share_price": 1.0 + np.cumsum(rng.normal(0, 1e-5, rows)),
        "pool_cash_usd": 2e6 + np.cumsum(rng.normal(0, 1e3, rows)),
        "health_p50": np.exp(rng.normal(1.0, 0.2, rows)),
        "tx_sent": rng.integers(5, 20, rows),
        "tx_reverted": rng.integers(0, 3, rows),
    }
    data["health_p10"] = data["health_p50"] * 0.5
    data["health_p90"] = data["health_p50"] * 3.0
    health_min = data["health_p10"] * rng.uniform(0.4, 0.95, rows)
    health_min[::97] = -0.2  # an underwater account now and then: log scale must cope
    data["health_min"] = health_min
    total_rewards = np.zeros(rows)
    total_gas = np.zeros(rows)
    for name in keepers:
        rewards = np.cumsum(rng.uniform(0, 10, rows))
        gas = np.cumsum(rng.integers(0, 300_000, rows))
        data[f"keeper_{name}_rewards_usd"] = rewards
        data[f"keeper_{name}_gas"] = gas
        total_rewards += rewards
        total_gas += gas
    data["keeper_rewards_usd"] = total_rewards
    data["keeper_gas"] = total_gas
    return pd.DataFrame(data)


def make_summary(
    scenario: str = SCENARIO, violations: Any = 0, keepers: tuple[str, ...] = ("alpha", "beta")
) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "seed": 42,
        "blocks": 400,
        "wall_s": 12.5,
        "tx_sent": 5_000,
        "tx_reverted": 120,
        "tx_per_s": 400.0,
        "liquidations": {"count": 30, "isolated": 18, "cross": 12, "notional_usd": 750_000.0},
        "bad_debt_usd": 1_234.5,
        "insurance_fund_usd": {"start": 100_000.0, "end": 98_765.4},
        "lp_share_price": {"start": 1.0, "end": 1.000123},
        "keepers": {
            name: {"liquidations": 15, "rewards_usd": 321.0, "gas_used": 4_000_000, "lost_races": 3}
            for name in keepers
        },
        "invariants": {"blocks_checked": 400, "violations": violations},
    }


def figures(page: str) -> list[dict[str, Any]]:
    """Each plot's figure, from the inline script that draws it (in order)."""
    found = FIGURE.findall(page)
    assert [int(i) for _, i in found] == list(range(len(found)))
    return [json.loads(doc) for doc, _ in found]


def values(v: Any) -> list[float]:
    """A trace's x or y: a list, or plotly's typed array ({"bdata": base64, "dtype": ...})."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v or [])


def _texts(fig: dict[str, Any]) -> list[str]:
    return [a.get("text", "") for a in fig["layout"].get("annotations", [])]


def assert_valid_figures(page: str, expected: int) -> list[dict[str, Any]]:
    """`expected` plots, each with a div, a caption, and either data or a 'no data' notice."""
    figs = figures(page)
    assert len(figs) == expected
    assert page.count('<div class="plot"') == expected
    for fig in figs:
        has_data = any(
            any(v is not None and v == v for v in (t.get("y") or t.get("x") or []))
            for t in fig["data"]
        )
        assert has_data or any("no data" in t or "nothing" in t for t in _texts(fig)), fig["layout"]
    return figs


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("report")
    path = write_report(out, make_summary(), make_timeseries())
    return path, path.read_text(encoding="utf-8")


def test_writes_report_html_in_out_dir(report):
    path, _ = report
    assert path.name == "report.html"
    assert path.is_file()


def test_one_figure_per_plot_and_per_asset(report):
    _, page = report
    assert_valid_figures(page, BASE_PLOTS + 2)  # ETH and BTC price panels


def test_self_contained(report):
    """plotly.js is inline (once); nothing is loaded from anywhere: no script or link with a source."""
    _, page = report
    lowered = page.lower()
    markup = re.sub(r"<script>.*?</script>", "", lowered, flags=re.S)  # the HTML around the code
    assert "<script src" not in lowered and "<link" not in markup
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', markup)
    assert "<style>" in lowered
    assert page.count("Plotly.newPlot(") == BASE_PLOTS + 2
    assert lowered.count("plotly.js v") >= 1  # the library's own banner: it is in the page


def test_every_plot_has_a_caption(report):
    _, page = report
    assert page.count("<figcaption>") == page.count('<div class="plot"')


def test_time_runs_in_minutes_and_windows_are_shaded(tmp_path):
    """12-second blocks: block b is (b - 1) / 5 minutes after the first; a window's shading spans
    its blocks in those minutes, on every time plot, labelled once."""
    summary = make_summary()
    summary["windows"] = [
        {"kind": "crash", "label": "crash <ETH>", "start_block": 51, "end_block": 101},
    ]
    figs = figures(write_report(tmp_path, summary, make_timeseries(rows=400)).read_text())
    price = figs[0]
    x = values(price["data"][0]["x"])
    assert x[0] == 0 and x[-1] == pytest.approx(399 / 5)
    rects = [s for s in price["layout"]["shapes"] if s["type"] == "rect"]
    assert [(r["x0"], r["x1"]) for r in rects] == [(10.0, 20.0)]
    assert "crash &lt;ETH&gt;" in _texts(price)
    shaded = [f for f in figs if any(s["type"] == "rect" for s in f["layout"].get("shapes", []))]
    assert len(shaded) >= 7
    assert sum("crash &lt;ETH&gt;" in _texts(f) for f in figs) == 1


def test_oracle_lag_is_the_oracle_over_the_market(tmp_path):
    ts = make_timeseries(rows=50)
    figs = figures(write_report(tmp_path, make_summary(), ts).read_text())
    lag = next(f for f in figs if "Oracle lag" in f["layout"]["title"]["text"])
    eth = next(t for t in lag["data"] if t["name"] == "ETH")
    want = (ts["oracle_ETH"] / ts["price_ETH"] - 1) * 100
    assert values(eth["y"]) == pytest.approx(list(want))


def test_market_depth_adds_the_cascade_panel_and_the_path_under_the_price(tmp_path):
    """With depth columns (a scenario with `market.depth`): the scenario's own path dotted on each price
    panel, a cascade panel with each asset's liquidation impact and the induced liquidations, and the
    summary's cascade rows; without them, none of it."""
    ts = make_timeseries(rows=50)
    rng = np.random.default_rng(3)
    for symbol in ("ETH", "BTC"):
        ts[f"liq_impact_pct_{symbol}"] = -np.abs(rng.normal(0, 1, 50))
        ts[f"base_price_{symbol}"] = ts[f"price_{symbol}"] / (
            1 + ts[f"liq_impact_pct_{symbol}"] / 100
        )
    ts["induced_liquidations"] = rng.poisson(0.3, 50)
    summary = make_summary()
    summary["cascade"] = {
        "depth": True,
        "induced_liquidations": int(ts["induced_liquidations"].sum()),
        "rounds": int((ts["induced_liquidations"] > 0).sum()),
        "share_of_move": {"ETH": 0.25, "BTC": 0.125},
        "peak_impact_pct": {"ETH": -3.5, "BTC": -2.0},
    }
    page = write_report(tmp_path, summary, ts).read_text()
    assert_valid_figures(page, BASE_PLOTS + 3)
    figs = figures(page)
    cascade = next(f for f in figs if "Cascades" in f["layout"]["title"]["text"])
    eth = next(t for t in cascade["data"] if t["name"] == "ETH")
    assert values(eth["y"]) == pytest.approx(list(ts["liq_impact_pct_ETH"]))
    bars = next(t for t in cascade["data"] if t["name"] == "induced liquidations")
    assert values(bars["y"]) == list(ts["induced_liquidations"])
    price = figs[0]
    dotted = next(t for t in price["data"] if t["name"] == "without liquidation impact")
    assert values(dotted["y"]) == pytest.approx(list(ts["base_price_ETH"]))
    rounds = f"{summary['cascade']['induced_liquidations']} / {summary['cascade']['rounds']}"
    assert f'induced liquidations / cascade rounds</th><td class="num">{rounds}<' in page
    assert "25.00 %, -3.50 %" in page
    plain = write_report(tmp_path, make_summary(), make_timeseries(rows=50)).read_text()
    assert "Cascades" not in plain and "without liquidation impact" not in plain


def test_funding_adds_its_panel_and_summary_row_only_where_a_market_charges_it(tmp_path):
    ts = make_timeseries(rows=50)
    rng = np.random.default_rng(5)
    ts["funding_rate_pct_day_ETH"] = rng.normal(1, 1, 50)
    ts["funding_rate_pct_day_BTC"] = 0.0
    ts["funding_to_pool_usd"] = np.cumsum(rng.uniform(0, 10, 50))
    summary = make_summary()
    summary["funding"] = {
        "to_pool_usd": float(ts["funding_to_pool_usd"].iloc[-1]),
        "open_usd": -12.5,
        "peak_rate_pct_day": {"ETH": 3.25, "BTC": 0.0},
    }
    page = write_report(tmp_path, summary, ts).read_text()
    figs = assert_valid_figures(page, BASE_PLOTS + 3)  # two price panels and the funding panel
    funding = next(f for f in figs if "Funding" in f["layout"]["title"]["text"])
    eth = next(t for t in funding["data"] if t["name"] == "ETH")
    assert values(eth["y"]) == pytest.approx(list(ts["funding_rate_pct_day_ETH"]))
    paid = next(t for t in funding["data"] if t["name"] == "paid to the pool")
    assert values(paid["y"]) == pytest.approx(list(ts["funding_to_pool_usd"]))
    assert "funding paid to the pool / accrued, open (USD)" in page
    ts_off = make_timeseries(rows=50)
    ts_off["funding_rate_pct_day_ETH"] = 0.0  # the columns are there, no market charges funding
    off = make_summary()
    off["funding"] = {"to_pool_usd": 0, "open_usd": 0, "peak_rate_pct_day": {"ETH": 0.0}}
    plain = write_report(tmp_path, off, ts_off).read_text()
    assert "Funding" not in plain and "funding paid" not in plain


def test_deleveraging_adds_its_summary_row_only_when_it_happened(tmp_path):
    summary = make_summary()
    summary["deleveraging"] = {
        "positions": 4,
        "haircut_usd": 53885.64,
        "deficit_peak_usd": 13151.14,
        "deficit_end_usd": 0.0,
    }
    page = write_report(tmp_path, summary, make_timeseries(rows=20)).read_text()
    assert "auto-deleveraged positions / haircuts (USD) / deficit at the end (USD)" in page
    assert "4 / 53,885.64 / 0.00<" in page
    summary["deleveraging"]["positions"] = 0
    plain = write_report(tmp_path, summary, make_timeseries(rows=20)).read_text()
    assert "auto-deleveraged" not in plain


def test_reverts_by_kind_and_their_gas(tmp_path):
    events = [
        {
            "block": 3,
            "event": "Reverted",
            "kind": "liquidate_isolated",
            "gas": 30_000,
            "reason": "NotLiquidatable(7)",
        },
        {
            "block": 4,
            "event": "Reverted",
            "kind": "liquidate_isolated",
            "gas": 31_000,
            "reason": "NotLiquidatable(8)",
        },
        {
            "block": 4,
            "event": "Reverted",
            "kind": "open_isolated",
            "gas": 50_000,
            "reason": "BelowInitialMargin(1, 2)",
        },
        {"block": 5, "event": "IsolatedLiquidated", "positionId": 9},
    ]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    figs = figures(write_report(tmp_path, make_summary(), make_timeseries(rows=20)).read_text())
    reverts = next(f for f in figs if "Reverts" in f["layout"]["title"]["text"])
    counts, gas = reverts["data"]
    pairs = zip(values(counts["x"]), values(gas["x"]), strict=True)
    got = dict(zip(counts["y"], pairs, strict=True))
    assert got == {
        "liquidate_isolated:NotLiquidatable": (2, 61_000),
        "open_isolated:BelowInitialMargin": (1, 50_000),
    }


def test_scenario_name_is_escaped(report):
    _, page = report
    assert "<b>&" not in page
    assert "crash &lt;b&gt;&amp; &quot;burn&quot;" in page


def test_headline_numbers_and_keepers_shown(report):
    _, page = report
    for text in ("5,000", "120 (2.4%)", "750,000.00", "1,234.50", "1.000123", "alpha", "beta"):
        assert text in page


def test_no_violations_not_red(report):
    _, page = report
    assert 'class="num ok" id="violations">0<' in page
    assert "num bad" not in page


def test_violations_shown_red(tmp_path):
    page = write_report(tmp_path, make_summary(violations=3), make_timeseries(rows=50)).read_text()
    assert 'class="num bad" id="violations">3<' in page
    assert re.search(r"\.bad\s*\{[^}]*color:\s*#c62828", page)


def test_violation_list_is_counted_and_escaped(tmp_path):
    summary = make_summary(violations=["block 7: <solvency> broken", "block 9: x"])
    page = write_report(tmp_path, summary, make_timeseries(rows=50)).read_text()
    assert 'class="num bad" id="violations">2<' in page
    assert "&lt;solvency&gt;" in page
    assert "<solvency>" not in page


def test_keeper_names_discovered_by_prefix():
    ts = make_timeseries(rows=10, keepers=("a_b", "z"))
    assert keeper_names(ts) == ["a_b", "z"]
    assert keeper_names(make_timeseries(rows=10, keepers=())) == []


def test_zero_keepers(tmp_path):
    ts = make_timeseries(keepers=()).drop(columns=["keeper_rewards_usd", "keeper_gas"])
    page = write_report(tmp_path, make_summary(keepers=()), ts).read_text()
    assert_valid_figures(page, BASE_PLOTS + 2)
    assert "No keepers in this run." in page


def test_all_nan_health_and_empty_columns(tmp_path):
    ts = make_timeseries()
    for column in (*HEALTH_COLUMNS, "oi_long_usd", "oi_short_usd", "lp_share_price"):
        ts[column] = np.nan
    ts["liquidations_isolated"] = np.nan
    ts["liquidations_cross"] = np.nan
    ts["liquidations"] = np.nan
    page = write_report(tmp_path, make_summary(), ts).read_text()
    assert_valid_figures(page, BASE_PLOTS + 2)


def test_empty_timeseries(tmp_path):
    ts = make_timeseries().iloc[0:0]
    page = write_report(tmp_path, make_summary(), ts).read_text()
    assert_valid_figures(page, BASE_PLOTS + 2)


def test_minimal_summary_and_no_price_columns(tmp_path):
    ts = pd.DataFrame({"block": [1, 2, 3]})
    page = write_report(tmp_path, {"scenario": "bare"}, ts).read_text()
    assert_valid_figures(page, BASE_PLOTS + 1)  # one "no data" price panel
    assert "No keepers in this run." in page


def test_extra_asset_gets_its_own_panel(tmp_path):
    ts = make_timeseries(rows=60, assets=("ETH", "BTC", "SOL"))
    page = write_report(tmp_path, make_summary(), ts).read_text()
    assert_valid_figures(page, BASE_PLOTS + 3)
    assert "SOL: market vs oracle price" in page


def test_downsample_keeps_totals_and_extremes():
    ts = make_timeseries(rows=30_000)
    small, bin_size = downsample(ts, 1_500)
    assert bin_size == 20
    assert len(small) <= 1_500
    assert small["liquidations"].sum() == ts["liquidations"].sum()
    assert small["liquidated_notional_usd"].sum() == pytest.approx(
        ts["liquidated_notional_usd"].sum()
    )
    assert small["health_min"].min() == ts["health_min"].min()
    assert small["keeper_gas"].iloc[-1] == ts["keeper_gas"].iloc[-1]  # cumulative: last value
    assert small["block"].iloc[0] == 1


def test_long_run_stays_small(tmp_path):
    ts = make_timeseries(rows=30_000)
    path = write_report(tmp_path, make_summary(), ts)
    page = path.read_text()
    assert path.stat().st_size < 8_000_000  # plotly.js itself is 4.6 MB of it
    assert_valid_figures(page, BASE_PLOTS + 2)
    assert "plots aggregate 20 blocks per point" in page
