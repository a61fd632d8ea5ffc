"""Size-tiered margin: a market's requirements carry `tierMarginWad` more on the notional above
`tierNotionalUsd`. A third market on WETH is created with the ETH market's terms, no buffer, and a tier."""

from __future__ import annotations

import ape
import pytest
from conftest import ETH, USDC_UNIT, WAD

from simulation import margin_math as mm

pytestmark = pytest.mark.usefixtures("no_buffer")

TIER_USD = 5_000 * WAD
TIER_RATIO = WAD // 10  # 10 % more on the notional above $5,000


def _tiered_market(vault, owner, weth, tier_usd=TIER_USD, tier_ratio=TIER_RATIO) -> int:
    params = list(vault.market(ETH).params)
    params[11] = 0  # maxBufferWad: static ratios
    params[14], params[15] = tier_usd, tier_ratio
    tx = vault.createMarket(weth, params, sender=owner)
    return vault.MarketCreated.from_receipt(tx)[0].marketId


def test_the_tier_charges_only_the_notional_above_it():
    # $8,000 at 5 %, plus 10 % on the $3,000 above $5,000: 400 + 300
    assert mm.tiered_requirement_usd_up(8_000 * WAD, WAD // 20, TIER_USD, TIER_RATIO) == 700 * WAD
    assert mm.tiered_requirement_usd_up(4_000 * WAD, WAD // 20, TIER_USD, TIER_RATIO) == 200 * WAD
    assert mm.tiered_requirement_usd_up(8_000 * WAD, WAD // 20, TIER_USD, 0) == 400 * WAD
    # continuous at the tier: one wei of notional above it adds one wei of requirement at most
    at = mm.tiered_requirement_usd_up(TIER_USD, WAD // 20, TIER_USD, TIER_RATIO)
    assert mm.tiered_requirement_usd_up(TIER_USD + 1, WAD // 20, TIER_USD, TIER_RATIO) - at <= 2


def test_market_state_and_health_carry_the_tier(vault, lens, usdc, weth, owner, alice, fund):
    market = _tiered_market(vault, owner, weth)
    s = vault.marketState(market)
    assert (s.tierNotionalUsd, s.tierRatioWad) == (TIER_USD, TIER_RATIO)
    fund(usdc, alice, 2_000)
    pid = vault.openIsolated(
        market, 3 * WAD, 2_000 * USDC_UNIT, sender=alice
    ).return_value  # ~$9,000
    p = vault.position(pid)
    h = lens.isolatedHealth(pid)
    notional = mm.notional_usd_up(p.size, s.priceWad)
    assert notional > TIER_USD
    want_maint = mm.mul_wad_up(notional, s.maintenanceRatioWad) + mm.mul_wad_up(
        notional - TIER_USD, TIER_RATIO
    )
    assert h.maintenanceUsd == want_maint
    assert h.initialUsd == mm.mul_wad_up(notional, s.initialRatioWad) + mm.mul_wad_up(
        notional - TIER_USD, TIER_RATIO
    )


def test_a_big_position_needs_more_margin_than_a_small_one_per_dollar(
    vault, usdc, weth, owner, alice, bob, fund
):
    market = _tiered_market(vault, owner, weth)
    untiered = _tiered_market(vault, owner, weth, 0, 0)
    fund(usdc, alice, 10_000)
    fund(usdc, bob, 10_000)
    # $30,000 on $3,500 of margin: within the initial ratio untiered, short of it with the tier
    size = 10 * WAD
    vault.openIsolated(untiered, size, 3_500 * USDC_UNIT, sender=bob)
    with ape.reverts(vault.BelowInitialMargin):
        vault.openIsolated(market, size, 3_500 * USDC_UNIT, sender=alice)
    # a small one pays the same ratio in both
    vault.openIsolated(market, WAD, 350 * USDC_UNIT, sender=alice)


@pytest.mark.parametrize("long", [True, False])
def test_the_exact_liquidation_price_accounts_for_the_tier(
    vault, lens, usdc, weth, owner, alice, fund, eth_feed, long
):
    market = _tiered_market(vault, owner, weth)
    plain = _tiered_market(vault, owner, weth, 0, 0)
    fund(usdc, alice, 10_000)
    size = (4 if long else -4) * WAD
    tiered = vault.openIsolated(market, size, 2_500 * USDC_UNIT, sender=alice).return_value
    untiered = vault.openIsolated(plain, size, 2_500 * USDC_UNIT, sender=alice).return_value
    x = lens.isolatedLiquidationPrice(tiered)
    y = lens.isolatedLiquidationPrice(untiered)
    # the tier brings liquidation closer to the entry
    assert (x > y) if long else (x < y)
    # and the answer is exact: the position flips there, as the model computes it
    p, s = vault.position(tiered), vault.marketState(market)

    def liquidatable(price: int) -> bool:
        return mm.position_health(
            mm.quote_to_usd_down(p.margin, 6),
            p.size,
            p.entryPriceWad,
            price,
            s.initialRatioWad,
            s.maintenanceRatioWad,
            s.tierNotionalUsd,
            s.tierRatioWad,
        ).liquidatable

    if long:
        assert liquidatable(x) and not liquidatable(x + 1)
    else:
        assert liquidatable(x) and not liquidatable(x - 1)
    # on chain too: at that oracle price the vault liquidates it
    answer = x // 10**10 if long else -(-x // 10**10)  # 8 decimals, rounded toward liquidation
    eth_feed.updateAnswer(answer, sender=owner)
    assert lens.isolatedHealth(tiered).equityUsd < lens.isolatedHealth(tiered).maintenanceUsd
