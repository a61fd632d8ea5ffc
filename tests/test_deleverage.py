"""Auto-deleveraging, the waterfall's last step: bad debt past the insurance fund and the LP pool's daily loss
cap in a market is owed by the profitable positions on the other side, which `deleverageIsolated` and
`deleverageCross` reduce at the oracle price, their closed part's profit paying the deficit. A market on
WETH is created with the ETH market's terms, no buffer, and a pool loss cap of a millionth of the pool's
trading liquidity (about $10 a day on the test pool's $10M)."""

from __future__ import annotations

import ape
import pytest
from conftest import ETH, USDC_UNIT, WAD

from simulation import margin_math as mm

pytestmark = pytest.mark.usefixtures("no_buffer")

LOSS_CAP_FIELD = 17  # MarketParams.poolLossCapWad
TINY_CAP = 10**12  # 1e-6 of the pool's trading liquidity


def _capped_market(vault, owner, weth, cap=TINY_CAP) -> int:
    params = list(vault.market(ETH).params)
    params[11] = 0  # maxBufferWad: static ratios
    params[6] = (
        0  # impactCoefficientWad: fills at the oracle price +- the fee floor, whatever the size
    )
    params[LOSS_CAP_FIELD] = cap
    tx = vault.createMarket(weth, params, sender=owner)
    return vault.MarketCreated.from_receipt(tx)[0].marketId


def _marked_trader_pnl(vault) -> int:
    """The traders' side of every market at the oracle price, funding included (the pool's view, rounded
    against the pool), from the vault's aggregates and the reference model."""
    total = 0
    for i in range(vault.marketCount()):
        m, s = vault.market(i), vault.marketState(i)
        net = m.netSize
        mark = mm.mul_wad_up(net, s.priceWad) if net >= 0 else -mm.mul_wad_down(-net, s.priceWad)
        funding = mm.traders_funding_usd_ceil(net, s.fundingIndexWad, m.netFundingEntryUsd)
        total += mark - m.netEntryNotionalUsd + funding
    return total


def _books(vault, usdc, holders) -> int:
    """What the vault owes in USDC: isolated margins, cross balances, claimable remainders."""
    _, positions = vault.openPositions(0, 1000)
    margins = sum(p[4] for p in positions)  # (owner, market, index, size, margin, ...)
    cross = sum(vault.collateralBalance(h, usdc) for h in holders)
    return margins + cross + vault.totalClaimableQuote()


@pytest.fixture
def bankrupt_long(vault, usdc, weth, owner, alice, bob, carol, keeper, fund, eth_feed, set_price):
    """A $2M long at 19x goes 15 % under: its bad debt drains the insurance fund ($100,000), the pool takes
    its cap, the rest is owed by the shorts: bob's isolated $600,000 and carol's cross $600,000."""
    market = _capped_market(vault, owner, weth)
    fund(usdc, bob, 200_000)
    short_id = vault.openIsolated(market, -200 * WAD, 200_000 * USDC_UNIT, sender=bob).return_value
    fund(usdc, carol, 200_000)
    vault.depositCollateral(usdc, 200_000 * USDC_UNIT, sender=carol)
    vault.tradeCross(market, -200 * WAD, sender=carol)
    fund(usdc, alice, 110_000)
    long_id = vault.openIsolated(market, 666 * WAD, 110_000 * USDC_UNIT, sender=alice).return_value
    set_price(eth_feed, 2550)
    room = vault.poolLossRoom(market)
    insurance = usdc.balanceOf(vault.insuranceFund())
    tx = vault.liquidateIsolated(long_id, sender=keeper)
    (debt,) = vault.BadDebtCovered.from_receipt(tx)
    return market, short_id, debt, room, insurance


def test_bad_debt_past_the_insurance_and_the_pool_cap_is_owed_by_the_other_side(
    bankrupt_long, vault, usdc, bob, carol
):
    market, _, debt, room, insurance = bankrupt_long
    assert 0 < room < 11 * USDC_UNIT  # a millionth of some $10M
    assert debt.fromInsurance == insurance and debt.fromPool == room
    assert debt.toDeleverage == debt.badDebt - insurance - room > 90_000 * USDC_UNIT
    assert debt.marketId == market
    # a long went bankrupt: the shorts owe it
    assert vault.deleverageDeficit(market, False) == debt.toDeleverage
    assert vault.deleverageDeficit(market, True) == 0
    assert vault.totalDeleverageDeficit() == debt.toDeleverage
    # the pool's room is spent for today (what is left is the cap on what the long's loss paid into the
    # pool: its trading liquidity grew by it)
    assert vault.poolLossRoom(market) < USDC_UNIT
    # the pool was not paid the deficit: the vault holds its books exactly, and the pool counts the deficit
    # as what the profitable side owes it (the traders' PnL it owes is that much smaller)
    assert usdc.balanceOf(vault) == _books(vault, usdc, [bob, carol])
    marked = _marked_trader_pnl(vault)
    assert vault.unrealizedTraderPnlUsd() == marked - debt.toDeleverage * 10**12


def test_deleveraging_takes_the_profit_of_the_part_it_closes(
    bankrupt_long, vault, usdc, alice, bob, carol, keeper
):
    market, short_id, debt, _, _ = bankrupt_long
    with ape.reverts(vault.NothingToDeleverage):  # the longs owe nothing
        vault.deleverageCross(alice, market, sender=keeper)
    before = vault.position(short_id)
    price = vault.marketState(market).priceWad
    profit = mm.pnl_usd_floor(before.size, before.entryPriceWad, price)
    assert profit // 10**12 < debt.toDeleverage  # bob's $90,000 cannot pay it all: closed in full
    pool_cash = usdc.balanceOf(vault.pool())
    tx = vault.deleverageIsolated(short_id, sender=keeper)
    ev = vault.Deleveraged.from_receipt(tx)[0]
    assert (ev.positionId, ev.owner, ev.closedSize) == (short_id, bob, before.size)
    assert ev.haircut == mm.usd_to_quote_down(profit, 6) == ev.realizedPnl
    assert (
        vault.claimableQuote(bob) == before.margin
    )  # the margin back, the profit gone to the deficit
    left = debt.toDeleverage - ev.haircut
    assert vault.deleverageDeficit(market, False) == left == vault.totalDeleverageDeficit()
    # the pool paid the profit less the haircut, which it keeps: all of it here
    assert usdc.balanceOf(vault.pool()) == pool_cash - (ev.realizedPnl - ev.haircut) == pool_cash
    assert usdc.balanceOf(vault) == _books(vault, usdc, [bob, carol])
    # carol's cross short pays the rest: the smallest part whose profit covers it, rounded up
    leg = vault.crossPosition(carol, market)
    profit = mm.pnl_usd_floor(leg.size, leg.entryPriceWad, price)
    fraction = mm.mul_div_up(left * 10**12, WAD, profit)
    tx = vault.deleverageCross(carol, market, sender=keeper)
    ev = vault.Deleveraged.from_receipt(tx)[0]
    assert (ev.positionId, ev.owner) == (0, carol)
    assert ev.closedSize == mm.scale_size_up(leg.size, fraction)
    assert ev.haircut == left and vault.deleverageDeficit(market, False) == 0
    assert vault.crossPosition(carol, market).size == leg.size - ev.closedSize
    assert vault.totalDeleverageDeficit() == 0
    assert usdc.balanceOf(vault) == _books(vault, usdc, [bob, carol])
    assert vault.unrealizedTraderPnlUsd() == _marked_trader_pnl(vault)  # nothing owed any more
    with ape.reverts(vault.NothingToDeleverage):
        vault.deleverageCross(carol, market, sender=keeper)


def test_only_a_profitable_position_is_deleveraged(bankrupt_long, vault, usdc, owner, fund, keeper):
    market, *_ = bankrupt_long
    fund(usdc, owner, 50_000)
    late = vault.openIsolated(market, -10 * WAD, 50_000 * USDC_UNIT, sender=owner).return_value
    # opened at today's price, less the spread: a loss at the oracle price
    with ape.reverts(vault.NotProfitable):
        vault.deleverageIsolated(late, sender=keeper)


def test_without_a_cap_the_pool_takes_it_all(
    vault, usdc, weth, owner, alice, keeper, fund, eth_feed, set_price
):
    market = _capped_market(vault, owner, weth, cap=0)
    assert vault.poolLossRoom(market) == 2**256 - 1
    fund(usdc, alice, 110_000)
    pid = vault.openIsolated(market, 666 * WAD, 110_000 * USDC_UNIT, sender=alice).return_value
    set_price(eth_feed, 2550)
    (debt,) = vault.BadDebtCovered.from_receipt(vault.liquidateIsolated(pid, sender=keeper))
    assert debt.toDeleverage == 0 and debt.fromPool == debt.badDebt - debt.fromInsurance > 0
    assert vault.totalDeleverageDeficit() == 0
