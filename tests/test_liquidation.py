"""Liquidation: guards, partial isolated, bad-debt waterfall, cross collateral sale and conservation."""

import ape
import pytest
from conftest import BTC, ETH, USDC_UNIT, WAD, market_fee

from simulation import margin_math as mm

# Static ratios: price pushes must not widen the maintenance buffer in these tests.
pytestmark = pytest.mark.usefixtures("no_buffer")


def open_long(vault, usdc, who, fund, size, margin_usd, market=ETH):
    fund(usdc, who, margin_usd)
    return vault.openIsolated(market, size, margin_usd * USDC_UNIT, sender=who).return_value


def expected_isolated(vault, pool, pid, price):
    """The reference model of MarginLiquidator's isolated plan: the fraction leaves room for the penalty
    and the fill of a full close; the closed part fills as an owner's reduce of that size would."""
    p, mp = vault.position(pid), vault.market(vault.position(pid).marketId).params
    h = mm.position_health(
        mm.quote_to_usd_down(p.margin, 6),
        p.size,
        p.entryPriceWad,
        price,
        mp.initialMarginWad,
        mp.maintenanceMarginWad,
    )
    liquidity = mm.quote_to_usd_down(pool.tradingLiquidity(), 6)

    def fee(size):
        return market_fee(mp, mm.notional_usd_up(size, price), liquidity)

    full_cost = mm.mul_wad_up(
        mm.notional_usd_up(p.size, price), mp.liquidationPenaltyWad + fee(p.size)
    )
    frac = mm.liquidation_fraction_up(h.equity_usd, h.maintenance_usd, full_cost)
    close = mm.scale_size_up(p.size, frac)
    fill = mm.fill_price_against_trader(price, -close, fee(close))
    pen_usd = mm.mul_wad_up(mm.notional_usd_up(close, price), mp.liquidationPenaltyWad)
    penalty = mm.usd_to_quote_up(pen_usd, 6)
    keeper = min(penalty, mm.usd_to_quote_down(mm.mul_wad_down(pen_usd, mp.keeperShareWad), 6))
    pnl = mm.signed_usd_to_quote_floor(mm.pnl_usd_floor(close, p.entryPriceWad, fill), 6)
    return h, close, keeper, penalty - keeper, pnl


def test_not_liquidatable_and_self(vault, usdc, alice, keeper, fund, eth_feed, set_price):
    pid = open_long(vault, usdc, alice, fund, WAD, 600)
    with ape.reverts(vault.NotLiquidatable):
        vault.liquidateIsolated(pid, sender=keeper)
    set_price(eth_feed, 2400)
    with ape.reverts(vault.SelfLiquidation, owner=alice.address):
        vault.liquidateIsolated(pid, sender=alice)
    with ape.reverts(vault.UnknownPosition):
        vault.liquidateIsolated(pid + 1, sender=keeper)


def test_cross_not_liquidatable_and_self(vault, usdc, alice, keeper, fund):
    fund(usdc, alice, 1_000)
    vault.depositCollateral(usdc, 1_000 * USDC_UNIT, sender=alice)
    vault.tradeCross(ETH, WAD, sender=alice)
    with ape.reverts(vault.NotLiquidatable):
        vault.liquidateCross(alice, sender=keeper)
    with ape.reverts(vault.SelfLiquidation):
        vault.liquidateCross(alice, sender=alice)


def test_partial_isolated(
    lens, vault, pool, usdc, alice, keeper, insurance, fund, eth_feed, set_price
):
    pid = open_long(vault, usdc, alice, fund, WAD, 600)
    set_price(eth_feed, 2470)
    price = 2470 * WAD
    h, close, keeper_q, fee, pnl = expected_isolated(vault, pool, pid, price)
    assert h.liquidatable and 0 < close < WAD
    # keeper = floor(1% * closed notional * 50%) in quote units
    assert keeper_q == mm.usd_to_quote_down(
        mm.mul_wad_up(mm.notional_usd_up(close, price), 10**16) // 2, 6
    )
    margin0, ins0 = vault.position(pid).margin, usdc.balanceOf(insurance)
    tx = vault.liquidateIsolated(pid, sender=keeper)
    ev = vault.IsolatedLiquidated.from_receipt(tx)[0]
    assert (
        ev.closedSize,
        ev.priceWad,
        ev.realizedPnl,
        ev.keeperReward,
        ev.insuranceFee,
        ev.full,
    ) == (close, price, pnl, keeper_q, fee, False)
    p = vault.position(pid)
    assert p.size == WAD - close
    assert p.margin == margin0 + pnl - keeper_q - fee == ev.remaining
    assert usdc.balanceOf(keeper) == keeper_q
    assert usdc.balanceOf(insurance) == ins0 + fee
    after = lens.isolatedHealth(pid)
    assert after.equityUsd >= after.maintenanceUsd


def test_full_liquidation_bad_debt_from_insurance(
    vault, usdc, alice, keeper, insurance, pool, fund, eth_feed, set_price
):
    pid = open_long(vault, usdc, alice, fund, WAD, 600)
    set_price(eth_feed, 2000)
    _, close, keeper_q, _, pnl = expected_isolated(vault, pool, pid, 2000 * WAD)
    assert close == WAD
    bad = keeper_q - (600 * USDC_UNIT + pnl)
    ins0, pool0 = usdc.balanceOf(insurance), usdc.balanceOf(pool)
    tx = vault.liquidateIsolated(pid, sender=keeper)
    ev = vault.BadDebtCovered.from_receipt(tx)[0]
    assert (ev.subject, ev.isolated, ev.badDebt, ev.fromInsurance, ev.fromPool) == (
        pid,
        True,
        bad,
        bad,
        0,
    )
    assert usdc.balanceOf(insurance) == ins0 - bad
    assert usdc.balanceOf(pool) == pool0 - pnl
    assert usdc.balanceOf(keeper) == keeper_q
    assert vault.position(pid).owner == ape.utils.ZERO_ADDRESS


def test_bad_debt_beyond_insurance_hits_pool(
    vault, usdc, alice, keeper, insurance, pool, fund, eth_feed, set_price
):
    pid = open_long(vault, usdc, alice, fund, 500 * WAD, 100_000)
    set_price(eth_feed, 1500)
    _, _close, keeper_q, _, pnl = expected_isolated(vault, pool, pid, 1500 * WAD)
    bad = keeper_q - (100_000 * USDC_UNIT + pnl)
    ins0, pool0 = usdc.balanceOf(insurance), usdc.balanceOf(pool)
    assert bad > ins0
    tx = vault.liquidateIsolated(pid, sender=keeper)
    ev = vault.BadDebtCovered.from_receipt(tx)[0]
    assert (ev.badDebt, ev.fromInsurance, ev.fromPool) == (bad, ins0, bad - ins0)
    assert ev.badDebt == ev.fromInsurance + ev.fromPool
    assert usdc.balanceOf(insurance) == 0
    assert usdc.balanceOf(pool) == pool0 - pnl - (bad - ins0)


def balances(token, accounts):
    return [token.balanceOf(a) for a in accounts]


def test_cross_liquidation_sells_weth(
    lens, vault, usdc, weth, alice, keeper, insurance, pool, fund, btc_feed, set_price
):
    fund(weth, alice, 1)
    fund(usdc, alice, 100)
    vault.depositCollateral(weth, WAD, sender=alice)
    vault.depositCollateral(usdc, 100 * USDC_UNIT, sender=alice)
    vault.tradeCross(BTC, WAD // 2, sender=alice)
    fund(usdc, keeper, 10_000)
    set_price(btc_feed, 56_000)
    h = lens.accountHealth(alice)
    assert h.equityUsd < h.maintenanceUsd
    parties = [alice, keeper, vault, pool, insurance]
    usdc0, weth0 = sum(balances(usdc, parties)), sum(balances(weth, parties))
    keeper_weth0 = weth.balanceOf(keeper)
    tx = vault.liquidateCross(alice, sender=keeper)
    seized = vault.CollateralSeized.from_receipt(tx)
    assert len(seized) == 1
    ev = seized[0]
    assert (ev.account, ev.token, ev.buyer) == (alice.address, weth.address, keeper.address)
    unit = mm.mul_wad_down(3000 * WAD, WAD - 5 * 10**16)
    assert ev.proceeds == mm.usd_to_quote_down(mm.value_usd_down(ev.amount, 18, unit), 6)
    assert abs(ev.proceeds * 10**12 - ev.amount * 2850) <= 10**12
    assert weth.balanceOf(keeper) == keeper_weth0 + ev.amount
    assert vault.collateralBalance(alice, weth) == WAD - ev.amount
    assert sum(balances(usdc, parties)) == usdc0
    assert sum(balances(weth, parties)) == weth0
    assert len(vault.CrossLiquidated.from_receipt(tx)) == 1
