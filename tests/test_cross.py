"""Cross accounts: collateral in and out, trading several markets, netting of PnL, realised losses."""

import ape
import pytest
from conftest import BTC, ETH, USDC_UNIT, WAD

from simulation import margin_math as mm

# Static ratios: price pushes must not widen the maintenance buffer in these tests.
pytestmark = pytest.mark.usefixtures("no_buffer")


@pytest.mark.parametrize("symbol,amount", [("usdc", 1_000), ("weth", 2), ("wbtc", 0.5)])
def test_deposit_withdraw(vault, alice, fund, request, symbol, amount):
    token = request.getfixturevalue(symbol)
    raw = fund(token, alice, amount)
    tx = vault.depositCollateral(token, raw, sender=alice)
    ev = vault.CollateralDeposited.from_receipt(tx)[0]
    assert (ev.account, ev.token, ev.amount) == (alice.address, token.address, raw)
    assert vault.collateralBalance(alice, token) == raw and token.balanceOf(alice) == 0
    with ape.reverts(vault.InsufficientCollateral, requested=raw + 1, available=raw):
        vault.withdrawCollateral(token, raw + 1, sender=alice)
    tx = vault.withdrawCollateral(token, raw // 4, sender=alice)
    assert vault.CollateralWithdrawn.from_receipt(tx)[0].amount == raw // 4
    assert vault.collateralBalance(alice, token) == raw - raw // 4
    assert token.balanceOf(alice) == raw // 4


def test_unsupported_and_zero(vault, owner, alice):
    token = ape.project.MockERC20.deploy("T", "T", 18, owner, sender=owner)
    with ape.reverts(vault.UnsupportedCollateral, token=token.address):
        vault.depositCollateral(token, 1, sender=alice)
    with ape.reverts(vault.ZeroAmount):
        vault.depositCollateral(token, 0, sender=alice)


def test_withdraw_blocked_below_initial(vault, usdc, alice, fund):
    fund(usdc, alice, 1_000)
    vault.depositCollateral(usdc, 1_000 * USDC_UNIT, sender=alice)
    vault.tradeCross(ETH, 5 * WAD, sender=alice)  # ~$15k notional, $750 initial
    with ape.reverts(vault.BelowInitialMargin):
        vault.withdrawCollateral(usdc, 300 * USDC_UNIT, sender=alice)
    vault.withdrawCollateral(usdc, 100 * USDC_UNIT, sender=alice)
    assert usdc.balanceOf(alice) == 100 * USDC_UNIT


def expected_health(vault, oracle, account, tokens):
    equity = mm.quote_to_usd_down(vault.collateralBalance(account, vault.quoteToken()), 6)
    for t in tokens:
        c = vault.collateralConfig(t)
        equity += mm.mul_wad_down(
            mm.value_usd_down(vault.collateralBalance(account, t), c.decimals, oracle.priceWad(t)),
            c.weightWad,
        )
    init = maint = 0
    for m in range(vault.marketCount()):
        cp = vault.crossPosition(account, m)
        if cp.size == 0:
            continue
        mk = vault.market(m)
        price = oracle.priceWad(mk.asset)
        h = mm.position_health(
            0,
            cp.size,
            cp.entryPriceWad,
            price,
            mk.params.initialMarginWad,
            mk.params.maintenanceMarginWad,
        )
        equity, init, maint = equity + h.equity_usd, init + h.initial_usd, maint + h.maintenance_usd
    return mm.Health(equity, init, maint)


def test_two_markets_pnl_offsets(
    lens, vault, oracle, usdc, weth, wbtc, alice, fund, eth_feed, btc_feed, set_price
):
    fund(usdc, alice, 500)
    fund(weth, alice, 1)
    vault.depositCollateral(usdc, 500 * USDC_UNIT, sender=alice)
    vault.depositCollateral(weth, WAD, sender=alice)
    vault.tradeCross(ETH, 2 * WAD, sender=alice)
    vault.tradeCross(BTC, -WAD // 10, sender=alice)
    assert vault.crossAccountCount() == 1 and vault.crossAccounts(0, 5) == [alice.address]
    tokens = [weth, wbtc]
    h0 = lens.accountHealth(alice)
    assert tuple(h0) == tuple(vars(expected_health(vault, oracle, alice, tokens)).values())
    set_price(eth_feed, 3300)
    set_price(btc_feed, 66_000)  # both +10 %: ETH long gains ~$600, BTC short loses ~$600
    h1 = lens.accountHealth(alice)
    exp = expected_health(vault, oracle, alice, tokens)
    assert (h1.equityUsd, h1.initialUsd, h1.maintenanceUsd) == (
        exp.equity_usd,
        exp.initial_usd,
        exp.maintenance_usd,
    )
    eth_pnl = mm.pnl_usd_floor(2 * WAD, vault.crossPosition(alice, ETH).entryPriceWad, 3300 * WAD)
    btc_pnl = mm.pnl_usd_floor(
        -WAD // 10, vault.crossPosition(alice, BTC).entryPriceWad, 66_000 * WAD
    )
    assert eth_pnl > 500 * WAD and btc_pnl < -500 * WAD
    assert abs(eth_pnl + btc_pnl) < 50 * WAD


def test_reduce_realises_into_quote(vault, usdc, pool, alice, fund, eth_feed, set_price):
    fund(usdc, alice, 1_000)
    vault.depositCollateral(usdc, 1_000 * USDC_UNIT, sender=alice)
    vault.tradeCross(ETH, 2 * WAD, sender=alice)
    set_price(eth_feed, 3200)
    entry = vault.crossPosition(alice, ETH).entryPriceWad
    pool0 = usdc.balanceOf(pool)
    tx = vault.tradeCross(ETH, -WAD, sender=alice)
    ev = vault.CrossTraded.from_receipt(tx)[0]
    pnl = mm.signed_usd_to_quote_floor(mm.pnl_usd_floor(WAD, entry, ev.fillPriceWad), 6)
    assert ev.fillPriceWad < 3200 * WAD and ev.realizedPnl == pnl > 0
    assert vault.collateralBalance(alice, usdc) == 1_000 * USDC_UNIT + pnl
    assert usdc.balanceOf(pool) == pool0 - pnl
    vault.tradeCross(ETH, -WAD, sender=alice)
    assert vault.crossAccountCount() == 0 and vault.crossPosition(alice, ETH).size == 0


def test_insufficient_quote(vault, usdc, weth, alice, fund, btc_feed, set_price):
    fund(weth, alice, 1)
    vault.depositCollateral(weth, WAD, sender=alice)
    vault.tradeCross(BTC, WAD // 50, sender=alice)  # $1200 on $2400 weighted WETH
    set_price(btc_feed, 50_000)
    with ape.reverts(vault.InsufficientQuote, availableTokens=0):
        vault.tradeCross(BTC, -WAD // 100, sender=alice)
    fund(usdc, alice, 200)
    vault.depositCollateral(usdc, 200 * USDC_UNIT, sender=alice)
    vault.tradeCross(BTC, -WAD // 100, sender=alice)
    assert vault.collateralBalance(alice, usdc) < 200 * USDC_UNIT


def test_cross_trade_reverts(vault, usdc, alice, fund):
    fund(usdc, alice, 100)
    vault.depositCollateral(usdc, 100 * USDC_UNIT, sender=alice)
    with ape.reverts(vault.BelowInitialMargin):
        vault.tradeCross(ETH, WAD, sender=alice)
    with ape.reverts(vault.ZeroSize):
        vault.tradeCross(ETH, 0, sender=alice)
    with ape.reverts(vault.UnknownMarket):
        vault.tradeCross(9, WAD, sender=alice)
    vault.tradeCross(ETH, WAD // 100, sender=alice)
    with ape.reverts(vault.SizeFlipNotAllowed):
        vault.tradeCross(ETH, -WAD // 50, sender=alice)
