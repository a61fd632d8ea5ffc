"""Portfolio margin, a cross account's third mode: its requirements on its net risk, the legs' signed
requirements aggregated with the markets' correlation (`MarginMath.portfolioRequirementUsdUp`), so that a
hedge (long one market, short the other) needs less than the same legs margined one by one, and same-side
legs never more."""

from __future__ import annotations

import math

import ape
import pytest
from conftest import BTC, ETH, USDC_UNIT, WAD

from simulation import margin_math as mm

pytestmark = pytest.mark.usefixtures("no_buffer")

CORRELATION = 7 * WAD // 10  # ConstantsLib.PORTFOLIO_CORRELATION


def _legs(vault, account) -> list[tuple[int, int]]:
    """(signed initial, signed maintenance) requirement of each of the account's legs, USD wad."""
    out = []
    for m in (ETH, BTC):
        cp, s = vault.crossPosition(account, m), vault.marketState(m)
        if cp.size == 0:
            continue
        h = mm.position_health(
            0,
            cp.size,
            cp.entryPriceWad,
            s.priceWad,
            s.initialRatioWad,
            s.maintenanceRatioWad,
            s.tierNotionalUsd,
            s.tierRatioWad,
        )
        sign = 1 if cp.size > 0 else -1
        out.append((sign * h.initial_usd, sign * h.maintenance_usd))
    return out


@pytest.fixture
def hedged(vault, usdc, alice, fund):
    """Alice, cross: long 10 ETH ($30,000) and short 0.5 BTC ($30,000), $10,000 of USDC."""
    fund(usdc, alice, 10_000)
    vault.depositCollateral(usdc, 10_000 * USDC_UNIT, sender=alice)
    vault.tradeCross(ETH, 10 * WAD, sender=alice)
    vault.tradeCross(BTC, -WAD // 2, sender=alice)
    return alice


def test_a_hedge_needs_less_under_portfolio_margin(vault, lens, hedged):
    legs = _legs(vault, hedged)
    cross = lens.accountHealth(hedged)
    assert cross.initialUsd == sum(abs(i) for i, _ in legs)  # leg by leg: the sum
    tx = vault.setPortfolioMargin(True, sender=hedged)
    assert vault.PortfolioMarginSet.from_receipt(tx)[0].on and vault.portfolioMargin(hedged)
    pm = lens.accountHealth(hedged)
    assert pm.equityUsd == cross.equityUsd  # the mode changes requirements only
    want_initial = mm.portfolio_requirement_usd_up([i for i, _ in legs], CORRELATION)
    want_maint = mm.portfolio_requirement_usd_up([m for _, m in legs], CORRELATION)
    assert (pm.initialUsd, pm.maintenanceUsd) == (want_initial, want_maint)
    # two legs of about equal requirement on opposite sides: about sqrt(2 - 1.4) = 0.77 of one, by hand
    a, b = (abs(i) for i, _ in legs)
    assert pm.initialUsd == pytest.approx(math.sqrt(a * a + b * b - 1.4 * a * b), rel=1e-9)
    assert pm.initialUsd < 0.45 * cross.initialUsd


def test_same_side_legs_never_need_more_than_leg_by_leg(vault, lens, usdc, bob, fund):
    fund(usdc, bob, 10_000)
    vault.depositCollateral(usdc, 10_000 * USDC_UNIT, sender=bob)
    vault.tradeCross(ETH, 10 * WAD, sender=bob)
    vault.tradeCross(BTC, WAD // 2, sender=bob)
    cross = lens.accountHealth(bob)
    vault.setPortfolioMargin(True, sender=bob)
    pm = lens.accountHealth(bob)
    assert cross.initialUsd * 0.9 < pm.initialUsd <= cross.initialUsd  # sqrt(2 + 1.4) / 2 = 0.92


def test_portfolio_margin_lets_a_hedge_grow_where_cross_refuses(vault, usdc, hedged, carol, fund):
    """The same growth of the hedge ($150,000 more of each leg on $10,000) is refused leg by leg (5 % of
    $210,000 after the first leg grows) and accepted on net risk."""
    with ape.reverts(vault.BelowInitialMargin):
        vault.tradeCross(ETH, 50 * WAD, sender=hedged)
    vault.setPortfolioMargin(True, sender=hedged)
    vault.tradeCross(ETH, 50 * WAD, sender=hedged)
    vault.tradeCross(BTC, -5 * WAD // 2, sender=hedged)
    # switching back to leg-by-leg margin is refused: the account would fall below its initial requirement
    with ape.reverts(vault.BelowInitialMargin):
        vault.setPortfolioMargin(False, sender=hedged)
    assert vault.portfolioMargin(hedged)


def test_a_portfolio_account_is_liquidated_on_its_net_maintenance(
    vault, lens, hedged, keeper, eth_feed, btc_feed, set_price
):
    vault.setPortfolioMargin(True, sender=hedged)
    vault.tradeCross(ETH, 50 * WAD, sender=hedged)
    vault.tradeCross(BTC, -5 * WAD // 2, sender=hedged)
    # the hedge fails: ETH down 10 %, BTC up 10 %
    set_price(eth_feed, 2700)
    set_price(btc_feed, 66000)
    h = lens.accountHealth(hedged)
    assert h.equityUsd < h.maintenanceUsd
    assert hedged.address in lens.scanCross(0, 100)[0]
    vault.liquidateCross(hedged, sender=keeper)
    after = lens.accountHealth(hedged)
    assert after.maintenanceUsd < h.maintenanceUsd


def test_the_estimated_liquidation_price_of_a_portfolio_account(vault, lens, hedged):
    """Newton's step from the health's slope: within 1 % of the price where the health flips, found here
    by bisection over the lens's own health at a given price (every other price held)."""
    vault.setPortfolioMargin(True, sender=hedged)
    vault.tradeCross(ETH, 50 * WAD, sender=hedged)
    vault.tradeCross(BTC, -5 * WAD // 2, sender=hedged)
    estimate = lens.crossLiquidationPrice(hedged, ETH)
    states = [tuple(vault.marketState(m)) for m in (ETH, BTC)]
    prices = [0] * len(vault.collateralTokens())  # the account holds USDC only

    def liquidatable(price: int) -> bool:
        at = list(states)
        at[ETH] = (price, *states[ETH][1:])
        h, _ = lens.accountHealthAt(hedged, at, prices)
        return h[0] < h[2]  # (equity, initial, maintenance)

    lo, hi = 1, states[ETH][0]  # liquidatable at 1, not at today's price (a long)
    assert liquidatable(lo) and not liquidatable(hi)
    while hi - lo > 10**12:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if liquidatable(mid) else (lo, mid)
    assert estimate == pytest.approx(lo, rel=0.01)
    assert states[ETH][0] * 0.9 < estimate < states[ETH][0]  # a levered hedge: some 5 % away
