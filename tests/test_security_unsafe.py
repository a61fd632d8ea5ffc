"""The review's attacks against a deployment with every defence turned off (DEFENCES_OFF, what
scenarios/adversaries_unsafe.yaml runs): each pays there, with figures of the size the review measured,
so the regression tests in test_security.py demonstrably test what each defence stops."""

from __future__ import annotations

from types import SimpleNamespace

import ape
import pytest
from conftest import ETH, USDC_UNIT, WAD, _at, by_closing, dust_cross_account, fill_of

from simulation.deploy import Deployment


@pytest.fixture(scope="module")
def unsafe(unsafe_system: Deployment) -> SimpleNamespace:
    names = ("MarginVault", "LPPool", "OracleAdapter", "USDC", "WBTC", "FEED_WETH")
    return SimpleNamespace(**{n.lower(): _at(unsafe_system, n) for n in names})


def test_jit_liquidity_cuts_the_fee_without_the_cooldown(unsafe, alice, bob, fund):
    s = unsafe
    size = 1_000_000 * WAD // 3000
    fund(s.usdc, alice, 200_000, spender=s.marginvault)
    snap = ape.chain.snapshot()
    normal = fill_of(
        s.marginvault, s.marginvault.openIsolated(ETH, size, 100_000 * USDC_UNIT, sender=alice)
    )
    ape.chain.restore(snap)
    fund(s.usdc, bob, 190_000_000, spender=s.lppool)
    shares = s.lppool.deposit(190_000_000 * USDC_UNIT, bob, sender=bob).return_value
    after = fill_of(
        s.marginvault, s.marginvault.openIsolated(ETH, size, 100_000 * USDC_UNIT, sender=alice)
    )
    s.lppool.redeem(shares, bob, bob, sender=bob)  # and leaves at once
    # the review: 1.05 % against 0.10 %
    assert (normal - 3000 * WAD) * 10_000 // (3000 * WAD) == 105
    assert (after - 3000 * WAD) * 10_000 // (3000 * WAD) == 10


def test_trading_ahead_of_a_round_pays_without_the_fee_floor(unsafe, alice, fund, set_price):
    s = unsafe
    fund(s.usdc, alice, 10_000, spender=s.marginvault)
    pid = s.marginvault.openIsolated(
        ETH, 50_000 * WAD // 3000, 10_000 * USDC_UNIT, sender=alice
    ).return_value
    set_price(s.feed_weth, 3000 * 1.005)
    before = s.usdc.balanceOf(alice)
    s.marginvault.closeIsolated(pid, sender=alice)
    profit = (s.usdc.balanceOf(alice) - before - 10_000 * USDC_UNIT) / USDC_UNIT
    assert 140 < profit < 160  # the review: +$149.62 per round at $50k


def test_self_liquidation_beats_closing_without_the_fill(unsafe, alice, bob, fund, set_price):
    s = unsafe
    fund(s.usdc, alice, 150_000, spender=s.marginvault)
    pid = s.marginvault.openIsolated(
        ETH, 2_000_000 * WAD // 3000, 150_000 * USDC_UNIT, sender=alice
    ).return_value
    set_price(s.feed_weth, 2930)
    snap = ape.chain.snapshot()
    tx = s.marginvault.liquidateIsolated(pid, sender=bob)
    ev = s.marginvault.IsolatedLiquidated.from_receipt(tx)[0]
    ape.chain.restore(snap)
    closing = by_closing(s.marginvault, s.usdc, alice, pid, ev)
    assert ev.remaining + ev.keeperReward > closing + 10_000 * USDC_UNIT


def test_a_stale_dust_collateral_blocks_liquidation_without_the_defence(
    unsafe, alice, keeper, fund, set_price
):
    s = unsafe
    dust_cross_account(s.marginvault, s.usdc, s.wbtc, alice, fund)
    ape.chain.pending_timestamp += 3601
    set_price(s.feed_weth, 2700)
    with ape.reverts(s.oracleadapter.StalePrice):
        s.marginvault.liquidateCross(alice, sender=keeper)


def test_an_lp_exits_ahead_of_bad_debt_without_the_exit_delay(
    unsafe, alice, bob, keeper, fund, set_price
):
    """The review's lower-severity finding: between the round that sinks a position and its liquidation
    the pool counts the loss beyond the margin as collectable; an LP who leaves then is paid for it."""
    s = unsafe
    fund(s.usdc, bob, 1_000_000, spender=s.lppool)
    shares = s.lppool.deposit(1_000_000 * USDC_UNIT, bob, sender=bob).return_value
    fund(s.usdc, alice, 150_000, spender=s.marginvault)
    pid = s.marginvault.openIsolated(
        ETH, 2_000_000 * WAD // 3000, 150_000 * USDC_UNIT, sender=alice
    ).return_value
    set_price(s.feed_weth, 2550)
    cash = s.usdc.balanceOf(bob)
    s.lppool.requestRedeem(shares, sender=bob)
    s.lppool.claimRedeem(bob, sender=bob)  # at once: no delay
    paid = s.usdc.balanceOf(bob) - cash
    s.marginvault.liquidateIsolated(pid, sender=keeper)
    # the same shares are worth less once the bad debt is realised: the LPs who stayed paid for it
    assert paid > s.lppool.previewRedeem(shares) + 10 * USDC_UNIT
