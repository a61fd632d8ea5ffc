"""Every shipped scenario shows what it exists to show (each run once per session, on its own anvil)."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from simulation.runner import run_scenario
from simulation.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
# A directory of this session's own: two test sessions at once (two checkouts) must not share outputs.
OUT = Path(tempfile.mkdtemp(prefix="marginsim-scenario-tests-"))


@cache
def result(name: str) -> tuple[dict[str, Any], pd.DataFrame]:
    out = OUT / name
    code, summary = run_scenario(
        load_scenario(ROOT / "scenarios" / f"{name}.yaml"), out, progress=False
    )
    assert code == 0, summary
    return summary, pd.read_csv(out / "timeseries.csv")


def window(ts: pd.DataFrame, start: int, end: int) -> pd.DataFrame:
    return ts[(ts.block >= start) & (ts.block < end)]


@pytest.mark.parametrize(
    "name", ["calm", "crash", "flash_crash", "oracle_outage", "keeper_outage", "vol_regime"]
)
def test_every_scenario_runs_clean(name):
    s, ts = result(name)
    assert s["status"] == "completed" and s["blocks"] == s["blocks_planned"] == len(ts)
    assert s["invariants"]["violations"] == 0
    assert (
        s["invariants"]["blocks_checked"]
        == s["blocks"] // load_scenario(ROOT / "scenarios" / f"{name}.yaml").invariants_every
    )
    assert s["tx_sent"] > s["blocks"]  # agents are busy
    assert (OUT / name / "report.html").stat().st_size > 10_000


def test_calm_market_has_no_bad_debt_and_a_steady_pool():
    s, _ = result("calm")
    assert s["bad_debt_usd"] == 0
    assert abs(s["lp_share_price"]["end"] - 1) < 0.01
    assert s["tx_reverted"] / s["tx_sent"] < 0.05


def test_crash_liquidates_in_both_modes_and_keepers_race():
    s, ts = result("crash")
    assert s["liquidations"]["isolated"] >= 20 and s["liquidations"]["cross"] >= 20
    assert ts.oracle_ETH.iloc[-1] < 0.75 * ts.oracle_ETH.iloc[0]
    keepers = s["keepers"]
    assert (
        keepers["fast"]["liquidations"] > keepers["slow"]["liquidations"]
    )  # latency and fee matter
    assert keepers["slow"]["lost_races"] > 0 and keepers["slow"]["wasted_gas"] > 0


def test_keeper_outage_ends_with_more_bad_debt_than_the_same_crash():
    crash, _ = result("crash")
    outage, ts = result("keeper_outage")
    assert outage["bad_debt_usd"] > crash["bad_debt_usd"] + 1_000
    assert (
        window(ts, 200, 500).liquidations.sum() == 0
    )  # nobody liquidates while the keepers are down
    assert window(ts, 500, 520).liquidations.sum() > 0  # and they rush back in


def test_oracle_outage_freezes_the_price_and_costs_bad_debt():
    crash, _ = result("crash")
    outage, ts = result("oracle_outage")
    frozen = window(ts, 201, 400)
    assert frozen.oracle_ETH.nunique() == 1 and frozen.oracle_BTC.nunique() == 1
    assert frozen.price_ETH.iloc[-1] < 0.9 * frozen.oracle_ETH.iloc[0]  # the market fell meanwhile
    assert window(ts, 205, 400).liquidations.sum() == 0
    assert outage["bad_debt_usd"] > crash["bad_debt_usd"] + 1_000


def test_flash_crash_liquidates_at_the_bottom_then_recovers():
    _s, ts = result("flash_crash")
    assert window(ts, 150, 175).liquidations.sum() > 0
    before, bottom = ts[ts.block == 149].oracle_ETH.iloc[0], window(ts, 150, 175).oracle_ETH.min()
    assert bottom < 0.8 * before
    assert ts.oracle_ETH.iloc[-1] > 0.95 * before  # back up, without the liquidated positions


def test_volatility_regime_widens_the_maintenance_buffer():
    _, ts = result("vol_regime")
    calm, wild = window(ts, 60, 300), window(ts, 360, 600)
    assert wild.maintenance_ratio_ETH.mean() > 1.1 * calm.maintenance_ratio_ETH.mean()
    assert (
        ts.maintenance_ratio_ETH.min() >= 0.03 and ts.maintenance_ratio_ETH.max() <= 0.08
    )  # base, base + max
