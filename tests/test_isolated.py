"""Isolated positions: open, margin changes, grow, reduce, close, every revert path."""

import ape
import pytest
from conftest import BTC, ETH, USDC_UNIT, WAD, market_fee, set_params_now

from simulation import margin_math as mm

SIZE = WAD  # 1 ETH at $3000


def expected_fill(vault, pool, market_id, size):
    price = vault.marketState(market_id).priceWad
    return mm.fill_price_against_trader(
        price,
        size,
        market_fee(
            vault.market(market_id).params,
            mm.notional_usd_up(size, price),
            mm.quote_to_usd_down(pool.tradingLiquidity(), 6),
        ),
    )


@pytest.fixture
def opened(vault, usdc, alice, fund):
    fund(usdc, alice, 100_000)
    tx = vault.openIsolated(ETH, SIZE, 600 * USDC_UNIT, sender=alice)
    return tx.return_value


def test_open_fill_price_event_and_margin_pulled(vault, usdc, pool, alice, fund):
    fund(usdc, alice, 1_000)
    fill = expected_fill(vault, pool, ETH, SIZE)
    # independent check of the formula: spread + impact = 0.0005 + 0.1 * 3000 / 10M = 0.053 %, under
    # the 0.3 % fee floor, so 3000 * 1.003
    assert fill == mm.mul_wad_up(3000 * WAD, WAD + 3 * 10**15)
    before = usdc.balanceOf(alice)
    tx = vault.openIsolated(ETH, SIZE, 300 * USDC_UNIT, sender=alice)
    pid = tx.return_value
    assert usdc.balanceOf(alice) == before - 300 * USDC_UNIT
    ev = vault.IsolatedOpened.from_receipt(tx)[0]
    assert (ev.positionId, ev.owner, ev.marketId, ev.size, ev.fillPriceWad, ev.margin) == (
        pid,
        alice.address,
        ETH,
        SIZE,
        fill,
        300 * USDC_UNIT,
    )
    p = vault.position(pid)
    assert (p.owner, p.size, p.margin, p.entryPriceWad) == (
        alice.address,
        SIZE,
        300 * USDC_UNIT,
        fill,
    )


def test_open_short_fill_below_oracle(vault, usdc, pool, alice, fund):
    fund(usdc, alice, 1_000)
    fill = expected_fill(vault, pool, ETH, -SIZE)
    pid = vault.openIsolated(ETH, -SIZE, 300 * USDC_UNIT, sender=alice).return_value
    assert vault.position(pid).entryPriceWad == fill < 3000 * WAD


def test_open_reverts(vault, usdc, alice, owner, fund):
    fund(usdc, alice, 1_000_000)
    with ape.reverts(vault.ZeroSize):
        vault.openIsolated(ETH, 0, 100 * USDC_UNIT, sender=alice)
    with ape.reverts(vault.ZeroAmount):
        vault.openIsolated(ETH, SIZE, 0, sender=alice)
    with ape.reverts(vault.UnknownMarket, marketId=7):
        vault.openIsolated(7, SIZE, 100 * USDC_UNIT, sender=alice)
    # 1 ETH ~ $3001.6 notional on $100 margin: > 20x
    with ape.reverts(vault.LeverageTooHigh):
        vault.openIsolated(ETH, SIZE, 100 * USDC_UNIT, sender=alice)
    # $0.003 notional is under the $10 minimum
    with ape.reverts(vault.PositionTooSmall):
        vault.openIsolated(ETH, 10**12, 1 * USDC_UNIT, sender=alice)


def test_below_initial_margin_on_open(vault, usdc, alice, owner, fund):
    # leverage cap 100x lets the initial-margin check be the binding one
    p = list(vault.market(ETH).params)
    p[2] = 100 * WAD
    set_params_now(vault, owner, ETH, p)
    fund(usdc, alice, 1_000)
    with ape.reverts(vault.BelowInitialMargin):
        vault.openIsolated(ETH, SIZE, 100 * USDC_UNIT, sender=alice)  # 3.3 % < 5 %


def test_open_interest_cap(vault, usdc, alice, owner, fund):
    p = list(vault.market(ETH).params)
    p[7] = 10**12  # cap = 1e-6 of $10M = $10
    set_params_now(vault, owner, ETH, p)
    fund(usdc, alice, 1_000)
    with ape.reverts(vault.OpenInterestCapExceeded):
        vault.openIsolated(ETH, SIZE // 100, 100 * USDC_UNIT, sender=alice)


def test_flip_owner_unknown(vault, usdc, alice, bob, opened):
    with ape.reverts(vault.SizeFlipNotAllowed):
        vault.modifyIsolated(opened, -2 * SIZE, sender=alice)
    with ape.reverts(vault.NotPositionOwner):
        vault.closeIsolated(opened, sender=bob)
    with ape.reverts(vault.NotPositionOwner):
        vault.removeIsolatedMargin(opened, 1, sender=bob)
    with ape.reverts(vault.UnknownPosition, positionId=999):
        vault.addIsolatedMargin(999, 1, sender=alice)
    with ape.reverts(vault.ZeroSize):
        vault.modifyIsolated(opened, 0, sender=alice)


def test_add_margin_by_anyone(vault, usdc, bob, fund, opened):
    fund(usdc, bob, 50)
    tx = vault.addIsolatedMargin(opened, 50 * USDC_UNIT, sender=bob)
    assert vault.position(opened).margin == 650 * USDC_UNIT
    ev = vault.IsolatedMarginChanged.from_receipt(tx)[0]
    assert (ev.by, ev.delta, ev.margin) == (bob.address, 50 * USDC_UNIT, 650 * USDC_UNIT)
    assert usdc.balanceOf(bob) == 0


def test_remove_margin(vault, usdc, alice, opened):
    before = usdc.balanceOf(alice)
    vault.removeIsolatedMargin(opened, 100 * USDC_UNIT, sender=alice)
    assert usdc.balanceOf(alice) == before + 100 * USDC_UNIT
    assert vault.position(opened).margin == 500 * USDC_UNIT
    with ape.reverts(vault.InsufficientCollateral):
        vault.removeIsolatedMargin(opened, 501 * USDC_UNIT, sender=alice)
    # initial requirement ~ 5 % of $3000 + the loss from fees: 350 left is below it
    with ape.reverts(vault.BelowInitialMargin):
        vault.removeIsolatedMargin(opened, 400 * USDC_UNIT, sender=alice)


def test_increase_average_entry(vault, usdc, pool, alice, opened):
    p0 = vault.position(opened)
    fill = expected_fill(vault, pool, ETH, SIZE)
    vault.modifyIsolated(opened, SIZE, sender=alice)
    p1 = vault.position(opened)
    assert p1.size == 2 * SIZE
    assert p1.entryPriceWad == mm.average_entry_against_trader(
        p0.size, p0.entryPriceWad, SIZE, fill
    )


def test_reduce_realises_pnl_into_margin(vault, usdc, pool, alice, eth_feed, set_price, opened):
    set_price(eth_feed, 3300)
    p0 = vault.position(opened)
    fill = expected_fill(vault, pool, ETH, -SIZE // 2)
    pnl = mm.signed_usd_to_quote_floor(mm.pnl_usd_floor(SIZE // 2, p0.entryPriceWad, fill), 6)
    pool_before = usdc.balanceOf(pool)
    vault.modifyIsolated(opened, -SIZE // 2, sender=alice)
    p1 = vault.position(opened)
    assert pnl > 0
    assert (p1.size, p1.margin, p1.entryPriceWad) == (SIZE // 2, p0.margin + pnl, p0.entryPriceWad)
    assert usdc.balanceOf(pool) == pool_before - pnl


@pytest.mark.parametrize("new_price", [2900, 3200])
def test_close_payout_and_pool_cash(
    vault, usdc, pool, alice, eth_feed, set_price, opened, new_price
):
    set_price(eth_feed, new_price)
    p0 = vault.position(opened)
    fill = expected_fill(vault, pool, ETH, -SIZE)
    pnl = mm.signed_usd_to_quote_floor(mm.pnl_usd_floor(SIZE, p0.entryPriceWad, fill), 6)
    wallet, pool_cash = usdc.balanceOf(alice), usdc.balanceOf(pool)
    tx = vault.closeIsolated(opened, sender=alice)
    assert usdc.balanceOf(alice) == wallet + p0.margin + pnl
    assert usdc.balanceOf(pool) == pool_cash - pnl
    ev = vault.IsolatedClosed.from_receipt(tx)[0]
    assert (ev.realizedPnl, ev.payout) == (pnl, p0.margin + pnl)
    assert vault.position(opened).owner == ape.utils.ZERO_ADDRESS
    assert vault.openPositionCount() == 0


def test_underwater_close_reverts(vault, alice, eth_feed, set_price, opened):
    set_price(eth_feed, 2300)  # loss ~ $700 > $600 margin
    with ape.reverts(vault.Underwater):
        vault.closeIsolated(opened, sender=alice)


def test_loss_capped_at_margin(vault, usdc, alice, keeper, eth_feed, set_price, fund):
    fund(usdc, alice, 600)
    start = usdc.balanceOf(alice)
    pid = vault.openIsolated(ETH, SIZE, 600 * USDC_UNIT, sender=alice).return_value
    set_price(eth_feed, 1500)  # loss of $1500 on $600 margin
    vault.liquidateIsolated(pid, sender=keeper)
    assert vault.position(pid).owner == ape.utils.ZERO_ADDRESS
    assert start - usdc.balanceOf(alice) <= 600 * USDC_UNIT
    assert (
        usdc.balanceOf(alice) == start - 600 * USDC_UNIT
    )  # bad debt: nothing back, nothing more taken


def test_btc_market_opens(vault, usdc, pool, alice, fund):
    fund(usdc, alice, 1_000)
    fill = expected_fill(vault, pool, BTC, -WAD // 100)
    pid = vault.openIsolated(BTC, -WAD // 100, 100 * USDC_UNIT, sender=alice).return_value
    assert vault.position(pid).entryPriceWad == fill
