"""Funding: a market's rate scales with its skew (net size / open interest), accrues every second into
a funding index, is owed by the heavier side and paid to the lighter side and the pool, settles at every
trade and liquidation, and counts in health, the liquidation-price view and the pool's value. A market on
WETH is created with the ETH market's terms, no buffer, and a funding rate."""

from __future__ import annotations

import ape
import pytest
from conftest import ETH, PARAMS_TIMELOCK_S, USDC_UNIT, WAD, refresh_feeds

from simulation import margin_math as mm

pytestmark = pytest.mark.usefixtures("no_buffer")

DAY = 86_400
RATE = WAD // 2  # 50 % of price a day with the whole open interest on one side
FUNDING_FIELD = 16  # MarketParams.fundingRateWad


def _funded_market(vault, owner, weth, rate=RATE) -> int:
    params = list(vault.market(ETH).params)
    params[11] = 0  # maxBufferWad: static ratios
    params[FUNDING_FIELD] = rate
    tx = vault.createMarket(weth, params, sender=owner)
    return vault.MarketCreated.from_receipt(tx)[0].marketId


def _head_time() -> int:
    return ape.chain.blocks.head.timestamp


def _jump_to(vault, owner, timestamp: int) -> None:
    """The chain's clock at `timestamp`: every feed gets a fresh round there (nothing is stale)."""
    refresh_feeds(vault, owner, at=timestamp)


def _index_now(vault, market: int) -> int:
    """The model's funding index at the latest block, from the vault's stored market."""
    m = vault.market(market)
    price = vault.marketState(market).priceWad
    elapsed = _head_time() - m.fundingUpdatedAt
    oi = m.longOpenInterest + m.shortOpenInterest
    delta = mm.funding_index_delta_away_from_zero(
        price, m.params[FUNDING_FIELD], m.netSize, oi, elapsed
    )
    return m.fundingIndexWad + delta


def test_a_lone_long_pays_the_full_rate_and_its_close_pays_the_pool(
    vault, lens, pool, usdc, weth, owner, alice, fund
):
    market = _funded_market(vault, owner, weth)
    fund(usdc, alice, 3_000)
    pid = vault.openIsolated(market, WAD, 3_000 * USDC_UNIT, sender=alice).return_value
    opened = _head_time()
    assert vault.position(pid).fundingEntryWad == vault.market(market).fundingIndexWad == 0
    _jump_to(vault, owner, opened + DAY)
    assert _head_time() == opened + DAY  # the view below is at the day's end
    # all the open interest is long: $3,000 * 50 % a day = $1,500 for one ETH
    assert vault.marketState(market).fundingIndexWad == 1_500 * WAD == _index_now(vault, market)
    p, s = vault.position(pid), vault.marketState(market)
    h = lens.isolatedHealth(pid)
    pnl = mm.pnl_usd_floor(p.size, p.entryPriceWad, s.priceWad)
    assert h.equityUsd == 3_000 * WAD + pnl - 1_500 * WAD

    cash = usdc.balanceOf(pool)
    tx = vault.closeIsolated(pid, sender=alice)
    ev = vault.IsolatedClosed.from_receipt(tx)[0]
    # the close settles the funding up to its block, at the same rate
    funding = mm.funding_pnl_usd_floor(WAD, 0, _index_now(vault, market))
    assert funding == -mm.mul_div_up(3_000 * WAD // 2, _head_time() - opened, DAY)
    trade_pnl = mm.pnl_usd_floor(WAD, p.entryPriceWad, ev.fillPriceWad)
    realized = mm.signed_usd_to_quote_floor(trade_pnl + funding, 6)
    assert ev.realizedPnl == realized
    assert ev.payout == 3_000 * USDC_UNIT + realized
    assert usdc.balanceOf(pool) - cash == -realized  # the pool took the loss and the funding
    assert vault.market(market).netFundingEntryUsd == 0  # nothing open, nothing left behind


def test_the_heavier_side_pays_the_lighter_and_the_pool_the_rest(
    vault, lens, usdc, weth, owner, alice, bob, fund
):
    market = _funded_market(vault, owner, weth)
    fund(usdc, alice, 6_000)
    fund(usdc, bob, 3_000)
    # both open in the same second: the lone long's full rate never accrues (a slow machine's wall
    # clock put a second between them once, and the long owed that second's $0.0347 too)
    opened = _head_time() + 1
    ape.chain.pending_timestamp = opened
    long_id = vault.openIsolated(market, 2 * WAD, 6_000 * USDC_UNIT, sender=alice).return_value
    ape.chain.pending_timestamp = opened
    short_id = vault.openIsolated(market, -WAD, 3_000 * USDC_UNIT, sender=bob).return_value
    assert _head_time() == opened
    pnl_before = vault.unrealizedTraderPnlUsd()
    _jump_to(vault, owner, opened + DAY)
    # skew 1/3: the rate is a third of the full one, $500 a day per ETH
    index = vault.marketState(market).fundingIndexWad
    assert (
        index == vault.position(short_id).fundingEntryWad + 500 * WAD == _index_now(vault, market)
    )
    owed = mm.funding_pnl_usd_floor(2 * WAD, vault.position(long_id).fundingEntryWad, index)
    paid = mm.funding_pnl_usd_floor(-WAD, vault.position(short_id).fundingEntryWad, index)
    assert (owed, paid) == (-1_000 * WAD, 500 * WAD)
    # the pool's side: the traders' marked PnL is unchanged (same price), their funding is -$500
    assert vault.unrealizedTraderPnlUsd() - pnl_before == -500 * WAD
    for pid, f in ((long_id, owed), (short_id, paid)):
        p, s = vault.position(pid), vault.marketState(market)
        pnl = mm.pnl_usd_floor(p.size, p.entryPriceWad, s.priceWad)
        assert lens.isolatedHealth(pid).equityUsd == p.margin * 10**12 + pnl + f


def test_funding_alone_makes_a_position_liquidatable_and_moves_its_liquidation_price(
    vault, lens, usdc, weth, owner, alice, keeper, fund
):
    market = _funded_market(vault, owner, weth)
    fund(usdc, alice, 400)
    pid = vault.openIsolated(market, 2 * WAD, 400 * USDC_UNIT, sender=alice).return_value  # 15x
    opened = _head_time()
    before = lens.isolatedLiquidationPrice(pid)
    assert not lens.isolatedHealth(pid).equityUsd < lens.isolatedHealth(pid).maintenanceUsd
    _jump_to(vault, owner, opened + 3_600 * 2)  # two hours: $125 an ETH at the full rate
    after = lens.isolatedLiquidationPrice(pid)
    assert after > before  # the long owes funding: it is liquidated sooner
    h = lens.isolatedHealth(pid)
    assert h.equityUsd < h.maintenanceUsd and pid in lens.scanIsolated(0, 100)[0]
    # the price is where it was: only funding took the equity below maintenance
    assert vault.marketState(market).priceWad == 3_000 * WAD
    # the keeper's liquidation and the owner's close of the same size, from the same state at the same
    # second, realise the same: the trade's PnL and the whole position's funding
    at = _head_time() + 1
    snap = ape.chain.snapshot()
    ape.chain.pending_timestamp = at
    ev = vault.IsolatedLiquidated.from_receipt(vault.liquidateIsolated(pid, sender=keeper))[0]
    funding = mm.funding_pnl_usd_floor(2 * WAD, 0, _index_now(vault, market))
    ape.chain.restore(snap)
    ape.chain.pending_timestamp = at
    if ev.full:
        close = vault.IsolatedClosed.from_receipt(vault.closeIsolated(pid, sender=alice))[0]
    else:
        tx = vault.modifyIsolated(pid, -ev.closedSize, sender=alice)
        close = vault.IsolatedModified.from_receipt(tx)[0]
    assert ev.realizedPnl == close.realizedPnl
    assert funding <= -250 * WAD  # two hours (and a second) at $1,500 a day per ETH, on 2 ETH
    # the price did not move: the trade alone loses only its fees, the rest is the funding
    assert mm.signed_usd_to_quote_floor(funding, 6) - 30 * USDC_UNIT < ev.realizedPnl
    assert ev.realizedPnl < mm.signed_usd_to_quote_floor(funding, 6)


def test_a_rate_change_accrues_the_old_rate_up_to_it(vault, usdc, weth, owner, alice, fund):
    market = _funded_market(vault, owner, weth)
    fund(usdc, alice, 3_000)
    vault.openIsolated(market, WAD, 3_000 * USDC_UNIT, sender=alice)
    opened = _head_time()
    params = list(vault.market(market).params)
    params[FUNDING_FIELD] = 3 * WAD // 4  # one step up: half the current rate
    vault.setMarketParams(market, params, sender=owner)
    _jump_to(vault, owner, _head_time() + PARAMS_TIMELOCK_S)  # applying reads the price: fresh
    vault.applyMarketParams(market, sender=owner)
    applied = _head_time()
    old = mm.funding_index_delta_away_from_zero(3_000 * WAD, RATE, WAD, WAD, applied - opened)
    assert vault.market(market).fundingIndexWad == old  # stored at the apply, at the old rate
    assert vault.market(market).fundingUpdatedAt == applied
    _jump_to(vault, owner, applied + DAY)
    new = mm.funding_index_delta_away_from_zero(
        3_000 * WAD, 3 * WAD // 4, WAD, WAD, _head_time() - applied
    )
    assert vault.marketState(market).fundingIndexWad == old + new
    assert new == 2_250 * WAD  # a day at 75 %


def test_a_cross_account_counts_its_funding_in_equity(
    vault, lens, usdc, weth, owner, alice, bob, fund
):
    market = _funded_market(vault, owner, weth)
    fund(usdc, alice, 6_000)
    vault.openIsolated(market, 2 * WAD, 6_000 * USDC_UNIT, sender=alice)  # the heavy side
    fund(usdc, bob, 3_000)
    vault.depositCollateral(usdc, 3_000 * USDC_UNIT, sender=bob)
    vault.tradeCross(market, -WAD, sender=bob)
    opened = _head_time()
    equity_before = lens.accountHealth(bob).equityUsd
    _jump_to(vault, owner, opened + DAY)
    *_, funding_entries = lens.accountBooks([bob])
    n = vault.marketCount()
    index = vault.marketState(market).fundingIndexWad
    paid = mm.funding_pnl_usd_floor(-WAD, funding_entries[market], index)
    assert paid == 500 * WAD  # skew 1/3 for a day, paid to the lighter side
    assert lens.accountHealth(bob).equityUsd - equity_before == paid
    assert vault.crossPosition(bob, market).fundingEntryWad == funding_entries[market]
    assert len(funding_entries) == n
    # a trade settles it into the quote balance: the entry moves to the index now
    quote = vault.collateralBalance(bob, usdc)
    vault.tradeCross(market, -WAD // 10, sender=bob)
    assert vault.crossPosition(bob, market).fundingEntryWad == _index_now(vault, market)
    settled = mm.funding_pnl_usd_floor(-WAD, funding_entries[market], _index_now(vault, market))
    assert vault.collateralBalance(bob, usdc) - quote == mm.signed_usd_to_quote_floor(settled, 6)
