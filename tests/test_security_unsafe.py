"""The review's attacks against a deployment with every defence turned off (what
scenarios/adversaries_unsafe.yaml runs): each pays there, with figures of the size the review measured,
so the regression tests in test_security.py demonstrably test what each defence stops."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import ape
import pytest
from conftest import ETH, USDC_UNIT, WAD

from simulation.deploy import DEFAULT_MARKETS, SystemSpec, deploy_system

UNSAFE = SystemSpec(
    markets=tuple(replace(m, min_fee=0) for m in DEFAULT_MARKETS),
    lp_cooldown_s=0,
    liquidation_at_fill_price=False,
    stale_collateral_at_zero=False,
)


@pytest.fixture(scope="module")
def unsafe(artifacts: Any, owner: Any) -> SimpleNamespace:
    d = deploy_system(ape.chain.provider.web3, artifacts, owner.address, UNSAFE)

    def at(name: str) -> Any:
        return getattr(ape.project, d.kinds[name]).at(d.addresses[name])

    names = ("MarginVault", "LPPool", "OracleAdapter", "USDC", "WBTC", "FEED_WETH")
    return SimpleNamespace(**{n.lower(): at(n) for n in names})


def mint(s: SimpleNamespace, owner: Any, token: Any, who: Any, raw: int, spender: Any) -> None:
    token.mint(who, raw, sender=owner)
    token.approve(spender, 2**256 - 1, sender=who)


def push(s: SimpleNamespace, owner: Any, usd: float) -> None:
    s.feed_weth.updateAnswer(round(usd * 10**8), sender=owner)


def test_jit_liquidity_cuts_the_fee_without_the_cooldown(unsafe, owner, alice, bob):
    s = unsafe
    size = 1_000_000 * WAD // 3000
    mint(s, owner, s.usdc, alice, 200_000 * USDC_UNIT, s.marginvault)
    snap = ape.chain.snapshot()
    tx = s.marginvault.openIsolated(ETH, size, 100_000 * USDC_UNIT, sender=alice)
    normal = s.marginvault.IsolatedOpened.from_receipt(tx)[0].fillPriceWad
    ape.chain.restore(snap)
    mint(s, owner, s.usdc, bob, 190_000_000 * USDC_UNIT, s.lppool)
    shares = s.lppool.deposit(190_000_000 * USDC_UNIT, bob, sender=bob).return_value
    tx = s.marginvault.openIsolated(ETH, size, 100_000 * USDC_UNIT, sender=alice)
    after = s.marginvault.IsolatedOpened.from_receipt(tx)[0].fillPriceWad
    s.lppool.redeem(shares, bob, bob, sender=bob)  # and leaves at once
    # the review: 1.05 % against 0.10 %
    assert (normal - 3000 * WAD) * 10_000 // (3000 * WAD) == 105
    assert (after - 3000 * WAD) * 10_000 // (3000 * WAD) == 10


def test_trading_ahead_of_a_round_pays_without_the_fee_floor(unsafe, owner, alice):
    s = unsafe
    mint(s, owner, s.usdc, alice, 10_000 * USDC_UNIT, s.marginvault)
    pid = s.marginvault.openIsolated(
        ETH, 50_000 * WAD // 3000, 10_000 * USDC_UNIT, sender=alice
    ).return_value
    push(s, owner, 3000 * 1.005)
    before = s.usdc.balanceOf(alice)
    s.marginvault.closeIsolated(pid, sender=alice)
    profit = (s.usdc.balanceOf(alice) - before - 10_000 * USDC_UNIT) / USDC_UNIT
    assert 140 < profit < 160  # the review: +$149.62 per round at $50k


def test_self_liquidation_beats_closing_without_the_fill(unsafe, owner, alice, bob):
    s = unsafe
    mint(s, owner, s.usdc, alice, 150_000 * USDC_UNIT, s.marginvault)
    pid = s.marginvault.openIsolated(
        ETH, 2_000_000 * WAD // 3000, 150_000 * USDC_UNIT, sender=alice
    ).return_value
    push(s, owner, 2930)
    snap = ape.chain.snapshot()
    tx = s.marginvault.liquidateIsolated(pid, sender=bob)
    ev = s.marginvault.IsolatedLiquidated.from_receipt(tx)[0]
    ape.chain.restore(snap)
    if ev.full:
        before = s.usdc.balanceOf(alice)
        s.marginvault.closeIsolated(pid, sender=alice)
        by_closing = s.usdc.balanceOf(alice) - before
    else:
        s.marginvault.modifyIsolated(pid, -ev.closedSize, sender=alice)
        by_closing = s.marginvault.position(pid).margin
    assert ev.remaining + ev.keeperReward > by_closing + 10_000 * USDC_UNIT


def test_a_stale_dust_collateral_blocks_liquidation_without_the_defence(
    unsafe, owner, alice, keeper
):
    s = unsafe
    mint(s, owner, s.wbtc, alice, 1, s.marginvault)
    s.marginvault.depositCollateral(s.wbtc, 1, sender=alice)
    mint(s, owner, s.usdc, alice, 1_000 * USDC_UNIT, s.marginvault)
    s.marginvault.depositCollateral(s.usdc, 1_000 * USDC_UNIT, sender=alice)
    s.marginvault.tradeCross(ETH, 5 * WAD, sender=alice)
    ape.chain.pending_timestamp += 3601
    push(s, owner, 2700)
    with ape.reverts(s.oracleadapter.StalePrice):
        s.marginvault.liquidateCross(alice, sender=keeper)
