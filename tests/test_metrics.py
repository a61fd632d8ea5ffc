"""The measurement functions without a chain: decoded events folded into the run's counters, a block's
row and a keeper's statistics (simulation.metrics.count_event). Expected figures are worked out by hand
from the events' fields (USDC has 6 decimals, prices and sizes are wads)."""

from __future__ import annotations

import pytest

from simulation.metrics import Counters, KeeperStats, count_event

WAD = 10**18


def stats() -> dict[str, float]:
    return {"liquidations": 0, "isolated": 0, "cross": 0, "notional_usd": 0.0}


def test_an_isolated_liquidation_counts_for_the_run_the_block_and_its_keeper():
    c, s, k = Counters(), stats(), KeeperStats()
    event = {
        "closedSize": -2 * WAD,  # a short of 2 ETH
        "priceWad": 3_000 * WAD,
        "realizedPnl": -150_000_000,  # -$150
        "keeperReward": 30_000_000,  # $30
        "insuranceFee": 30_000_000,
    }
    count_event(c, "IsolatedLiquidated", event, k, s)
    assert (c.liquidations, c.liquidations_isolated, c.liquidations_cross) == (1, 1, 0)
    assert c.liquidated_notional_usd == pytest.approx(6_000.0) == s["notional_usd"]
    assert c.profitable_positions_liquidated == 0
    assert c.collateral_lost_usd == pytest.approx(210.0)  # $150 lost + $30 + $30 paid
    assert (s["liquidations"], s["isolated"], s["cross"]) == (1, 1, 0)
    assert (k.liquidations, k.rewards_usd) == (1, pytest.approx(30.0))


def test_a_cross_liquidation_its_positions_and_its_bad_debt():
    c, s = Counters(), stats()
    count_event(
        c,
        "CrossPositionLiquidated",
        {"closedSize": WAD // 2, "priceWad": 60_000 * WAD, "realizedPnlUsd": 5 * WAD},
        None,
        s,
    )
    count_event(
        c,
        "CrossLiquidated",
        {"realizedPnl": -1_000_000_000, "keeperReward": 10_000_000, "insuranceFee": 0},
        None,
        s,
    )
    count_event(
        c,
        "BadDebtCovered",
        {"badDebt": 400_000_000, "fromInsurance": 300_000_000, "fromPool": 100_000_000},
        None,
        s,
    )
    count_event(c, "CollateralSeized", {}, None, s)
    count_event(c, "IsolatedOpened", {"positionId": 1}, None, s)  # not a measured event
    assert (c.liquidations, c.liquidations_cross, s["cross"]) == (1, 1, 1)
    assert c.liquidated_notional_usd == pytest.approx(30_000.0)  # half a BTC at $60,000
    assert c.profitable_positions_liquidated == 1  # the BTC leg closed at a profit
    assert (c.bad_debt_usd, c.bad_debt_from_insurance_usd, c.bad_debt_from_pool_usd) == (
        pytest.approx(400.0),
        pytest.approx(300.0),
        pytest.approx(100.0),
    )
    # $1,000 lost + $10 to the keeper, less the $400 of it the account could not pay
    assert c.collateral_lost_usd == pytest.approx(610.0)
    assert c.collateral_seized == 1
