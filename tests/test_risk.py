"""Risk measures over paths (simulation.risk), without a chain: every expected figure worked out by
hand from the definitions in the module's docstring."""

from __future__ import annotations

import math

import pytest

from simulation.risk import (
    drawdown,
    drawdown_fraction,
    insolvent,
    keeper_league,
    tail_measures,
)


def test_drawdown_is_the_largest_fall_from_a_running_peak():
    assert drawdown([100, 120, 90, 130, 125, 60, 200]) == 70  # 130 -> 60
    assert drawdown([1, 2, 3]) == 0
    assert drawdown([]) == 0
    assert drawdown_fraction([1.0, 1.2, 0.9, 1.3, 1.04]) == pytest.approx(0.25)  # 1.2 -> 0.9
    assert drawdown_fraction([1.0, math.nan, 0.5]) == pytest.approx(0.5)  # NaN skipped


def test_tail_measures_of_a_hundred_paths():
    values = list(range(100))  # 0 .. 99
    t = tail_measures(values)
    assert t["mean"] == pytest.approx(49.5)
    assert t["p50"] == pytest.approx(49.5)
    assert t["p95"] == pytest.approx(94.05)  # 0.95 * 99
    assert t["p99"] == pytest.approx(98.01)
    assert t["cvar95"] == pytest.approx((95 + 96 + 97 + 98 + 99) / 5)  # the worst 5 paths


def test_cvar_of_few_paths_is_the_worst_one():
    t = tail_measures([0.0, 0.0, 10.0])
    assert t["cvar95"] == 10.0
    assert math.isnan(tail_measures([])["cvar95"])


def _record(bad: float, insurance: float, keepers: dict) -> dict:
    return {
        "summary": {
            "bad_debt_usd": bad,
            "bad_debt_covered": {"insurance_usd": insurance, "lp_pool_usd": bad - insurance},
            "keepers": keepers,
        }
    }


def _k(
    liqs: int,
    rewards: float,
    lost: int = 0,
    latency: float | None = None,
    left: float | None = None,
) -> dict:
    return {
        "liquidations": liqs,
        "rewards_usd": rewards,
        "gas_used": 1000 * liqs,
        "gas_usd": 0.5 * liqs,
        "lost_races": lost,
        "wasted_gas": 10 * lost,
        "wasted_gas_usd": 0.25 * lost,
        "missed": lost + 1,
        "latency_blocks_p50": latency,
        "latency_blocks_max": None if latency is None else int(2 * latency),
        "latent_left_share": left,
    }


def test_a_path_is_insolvent_when_bad_debt_goes_beyond_the_insurance_fund():
    assert not insolvent(_record(500.0, 500.0, {}))  # the fund covered it all
    assert insolvent(_record(500.0, 400.0, {}))  # the pool took $100
    assert not insolvent(_record(0.0, 0.0, {}))


def test_the_keepers_league_over_paths():
    records = [
        _record(0, 0, {"a": _k(3, 30.0, latency=1, left=0.5), "b": _k(1, 50.0, lost=2)}),
        _record(0, 0, {"a": _k(5, 70.0, latency=3, left=0.0), "b": _k(0, 0.0, lost=4)}),
    ]
    league = keeper_league(records)
    assert [k["keeper"] for k in league] == ["a", "b"]  # $100 against $50
    a, b = league
    assert (a["liquidations"], a["rewards_usd"], a["paths_won"], a["paths"]) == (8, 100.0, 1, 2)
    assert (b["lost_races"], b["wasted_gas"], b["paths_won"]) == (6, 60, 1)
    assert a["liquidations_per_path"] == 4.0 and b["rewards_usd_per_path"] == 25.0
    # the report card across paths: sums, the median of the paths' medians, the worst, the mean share
    assert (a["missed"], a["gas_usd"], b["wasted_gas_usd"]) == (2, 4.0, 1.5)
    assert (a["latency_blocks_p50"], a["latency_blocks_max"], a["latent_left_share"]) == (
        2.0,
        6,
        0.25,
    )
    assert (b["latency_blocks_p50"], b["latency_blocks_max"], b["latent_left_share"]) == (
        None,
        None,
        None,
    )
