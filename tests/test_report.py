"""The HTML report: self-contained, escaped, robust to missing data and long runs. No chain use."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from simulation.report import HEALTH_COLUMNS, downsample, keeper_names, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
SCENARIO = 'crash <b>& "burn"'
BASE_PLOTS = 6  # open interest, liquidations, health, insurance, LP share, keepers


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


def pngs(page: str) -> list[bytes]:
    return [base64.b64decode(b64, validate=True) for b64 in IMG.findall(page)]


def assert_valid_images(page: str, expected: int) -> None:
    images = pngs(page)
    assert len(images) == expected
    assert page.count("<img") == expected
    for image in images:
        assert image[:8] == PNG_SIGNATURE
        assert len(image) > 1_000  # a real plot, not an empty placeholder


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("report")
    path = write_report(out, make_summary(), make_timeseries())
    return path, path.read_text(encoding="utf-8")


def test_writes_report_html_in_out_dir(report):
    path, _ = report
    assert path.name == "report.html"
    assert path.is_file()


def test_one_valid_png_per_plot_and_per_asset(report):
    _, page = report
    assert_valid_images(page, BASE_PLOTS + 2)  # ETH and BTC price panels


def test_self_contained(report):
    _, page = report
    lowered = page.lower()
    assert "http://" not in lowered
    assert "https://" not in lowered
    assert "<script" not in lowered
    assert "<link" not in lowered
    assert "<style>" in lowered


def test_every_plot_has_a_caption(report):
    _, page = report
    assert page.count("<figcaption>") == page.count("<img")


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
    assert_valid_images(page, BASE_PLOTS + 2)
    assert "No keepers in this run." in page


def test_all_nan_health_and_empty_columns(tmp_path):
    ts = make_timeseries()
    for column in (*HEALTH_COLUMNS, "oi_long_usd", "oi_short_usd", "lp_share_price"):
        ts[column] = np.nan
    ts["liquidations_isolated"] = np.nan
    ts["liquidations_cross"] = np.nan
    ts["liquidations"] = np.nan
    page = write_report(tmp_path, make_summary(), ts).read_text()
    assert_valid_images(page, BASE_PLOTS + 2)


def test_empty_timeseries(tmp_path):
    ts = make_timeseries().iloc[0:0]
    page = write_report(tmp_path, make_summary(), ts).read_text()
    assert_valid_images(page, BASE_PLOTS + 2)


def test_minimal_summary_and_no_price_columns(tmp_path):
    ts = pd.DataFrame({"block": [1, 2, 3]})
    page = write_report(tmp_path, {"scenario": "bare"}, ts).read_text()
    assert_valid_images(page, BASE_PLOTS + 1)  # one "no data" price panel
    assert "No keepers in this run." in page


def test_extra_asset_gets_its_own_panel(tmp_path):
    ts = make_timeseries(rows=60, assets=("ETH", "BTC", "SOL"))
    page = write_report(tmp_path, make_summary(), ts).read_text()
    assert_valid_images(page, BASE_PLOTS + 3)
    assert "SOL: market vs oracle price" in page


def test_figures_are_closed(tmp_path):
    plt.close("all")
    write_report(tmp_path, make_summary(), make_timeseries(rows=100))
    assert plt.get_fignums() == []


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
    assert path.stat().st_size < 2_500_000
    assert_valid_images(page, BASE_PLOTS + 2)
    assert "plots aggregate 20 blocks per point" in page
