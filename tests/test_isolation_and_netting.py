"""Isolated positions do not touch each other; a cross account nets the legs of a hedged book."""

import ape
from conftest import BTC, ETH, USDC_UNIT, WAD

from simulation import margin_math as mm


def test_liquidating_one_isolated_position_leaves_others_untouched(
    lens, vault, usdc, alice, keeper, fund, eth_feed, set_price
):
    fund(usdc, alice, 10_000)
    btc_long = vault.openIsolated(BTC, WAD // 20, 500 * USDC_UNIT, sender=alice).return_value
    eth_short = vault.openIsolated(ETH, -WAD, 700 * USDC_UNIT, sender=alice).return_value
    # opened last, so removing it from the open list moves no other position's openIndex
    eth_long = vault.openIsolated(ETH, WAD, 300 * USDC_UNIT, sender=alice).return_value
    before = {i: tuple(vault.position(i)) for i in (btc_long, eth_short)}
    set_price(eth_feed, 2700)
    h = lens.isolatedHealth(eth_long)
    assert h.equityUsd < h.maintenanceUsd
    for i in (btc_long, eth_short):
        hi = lens.isolatedHealth(i)
        assert hi.equityUsd >= hi.maintenanceUsd
    tx = vault.liquidateIsolated(eth_long, sender=keeper)
    assert vault.IsolatedLiquidated.from_receipt(tx)[0].positionId == eth_long
    assert vault.position(eth_long).owner == ape.utils.ZERO_ADDRESS
    after = {i: tuple(vault.position(i)) for i in (btc_long, eth_short)}
    assert after == before
    assert vault.openPositionCount() == 2


def test_cross_nets_hedged_legs_isolated_does_not(
    vault, lens, usdc, alice, bob, keeper, fund, eth_feed, btc_feed, set_price
):
    # the same book twice: ETH long + BTC short, $300 margin per leg isolated, $600 in one cross account
    fund(usdc, alice, 600)
    eth_leg = vault.openIsolated(ETH, WAD, 300 * USDC_UNIT, sender=alice).return_value
    btc_leg = vault.openIsolated(BTC, -WAD // 20, 300 * USDC_UNIT, sender=alice).return_value
    fund(usdc, bob, 600)
    vault.depositCollateral(usdc, 600 * USDC_UNIT, sender=bob)
    vault.tradeCross(ETH, WAD, sender=bob)
    vault.tradeCross(BTC, -WAD // 20, sender=bob)
    # both fall 10 %: the ETH long loses what the BTC short gains
    set_price(eth_feed, 2700)
    set_price(btc_feed, 54_000)
    h_eth = lens.isolatedHealth(eth_leg)
    assert h_eth.equityUsd < h_eth.maintenanceUsd
    h_btc = lens.isolatedHealth(btc_leg)
    assert h_btc.equityUsd > h_btc.maintenanceUsd
    h_cross = lens.accountHealth(bob)
    assert h_cross.equityUsd >= h_cross.maintenanceUsd
    # the account's equity is the two legs' equity together: margin 600 plus the netted PnL
    pnl = sum(
        mm.pnl_usd_floor(
            vault.crossPosition(bob, m).size, vault.crossPosition(bob, m).entryPriceWad, px
        )
        for m, px in ((ETH, 2700 * WAD), (BTC, 54_000 * WAD))
    )
    assert h_cross.equityUsd == 600 * WAD + pnl
    # the legs net out but for the two entries' fees (the 0.3 % floor on $3,000 each, $18); each
    # alone moves ~$300
    assert -20 * WAD < pnl < -17 * WAD
    assert list(lens.scanIsolated(0, 10)[0]) == [eth_leg]
    assert list(lens.scanCross(0, 10)[0]) == []
    with ape.reverts(vault.NotLiquidatable):
        vault.liquidateCross(bob, sender=keeper)
    with ape.reverts(vault.NotLiquidatable):
        vault.liquidateIsolated(btc_leg, sender=keeper)
    vault.liquidateIsolated(eth_leg, sender=keeper)
    assert vault.position(eth_leg).owner == ape.utils.ZERO_ADDRESS
