"""LPPool: ERC-4626 round trip, PnL-marked share price, withdraw limits, vault-only hooks."""

import ape
from conftest import ETH, USDC_UNIT, WAD

from simulation import margin_math as mm

OFFSET = 10**6  # virtual shares, decimals offset 6


def shares_for(assets, supply, total):
    return assets * (supply + OFFSET) // (total + 1)


def assets_for(shares, supply, total):
    return shares * (total + 1) // (supply + OFFSET)


def test_deposit_redeem_round_trip(pool, usdc, bob, fund):
    amount = fund(usdc, bob, 1_000, spender=pool)
    supply, total = pool.totalSupply(), pool.totalAssets()
    assert total == 10_000_000 * USDC_UNIT
    expected = shares_for(amount, supply, total)
    pool.deposit(amount, bob, sender=bob)
    assert pool.balanceOf(bob) == expected
    back = assets_for(expected, supply + expected, total + amount)
    ape.chain.pending_timestamp += pool.depositCooldown()  # the shares are locked until then
    exit_shares(pool, bob, expected)
    assert usdc.balanceOf(bob) == back
    assert amount - 1 <= back <= amount
    assert pool.balanceOf(bob) == 0


def exit_shares(pool, who, shares):
    """Request an exit of `shares`, wait the exit delay, claim it; return the claim's receipt."""
    ready = pool.requestRedeem(shares, sender=who).timestamp + pool.exitDelay()
    ape.chain.pending_timestamp = ready
    return pool.claimRedeem(who, sender=who)


def expected_total_assets(vault, pool, usdc, pid, price):
    p = vault.position(pid)
    pnl = (
        mm.mul_wad_up(p.size, price) - mm.entry_notional_signed(p.size, p.entryPriceWad)
        if p.size > 0
        else (-mm.mul_wad_down(-p.size, price) - mm.entry_notional_signed(p.size, p.entryPriceWad))
    )
    cash = usdc.balanceOf(pool)
    return cash - mm.usd_to_quote_up(pnl, 6) if pnl > 0 else cash + mm.usd_to_quote_down(-pnl, 6)


def open_position(vault, usdc, alice, fund, size):
    fund(usdc, alice, 10_000)
    return vault.openIsolated(ETH, size, 10_000 * USDC_UNIT, sender=alice).return_value


def test_share_price_falls_with_trader_profit(vault, pool, usdc, alice, fund, eth_feed, set_price):
    pid = open_position(vault, usdc, alice, fund, 10 * WAD)
    before = pool.convertToAssets(10**12)
    set_price(eth_feed, 3300)
    expected = expected_total_assets(vault, pool, usdc, pid, 3300 * WAD)
    assert expected < usdc.balanceOf(pool)
    assert pool.totalAssets() == expected
    assert pool.convertToAssets(10**12) < before


def test_share_price_rises_with_trader_loss(vault, pool, usdc, alice, fund, eth_feed, set_price):
    pid = open_position(vault, usdc, alice, fund, 10 * WAD)
    before = pool.convertToAssets(10**12)
    set_price(eth_feed, 2800)
    expected = expected_total_assets(vault, pool, usdc, pid, 2800 * WAD)
    assert expected > usdc.balanceOf(pool)
    assert pool.totalAssets() == expected
    assert pool.convertToAssets(10**12) > before


def test_short_profit_marks_pool_down(vault, pool, usdc, alice, fund, eth_feed, set_price):
    pid = open_position(vault, usdc, alice, fund, -10 * WAD)
    set_price(eth_feed, 2700)
    assert (
        pool.totalAssets()
        == expected_total_assets(vault, pool, usdc, pid, 2700 * WAD)
        < usdc.balanceOf(pool)
    )


def test_exit_limited_by_free_liquidity(vault, pool, usdc, owner, alice, fund):
    fund(usdc, alice, 100_000)
    vault.openIsolated(ETH, 500 * WAD, 100_000 * USDC_UNIT, sender=alice)
    oi = vault.market(ETH).longOpenInterest
    required = mm.usd_to_quote_up(mm.mul_div_up(mm.mul_wad_up(oi, 3000 * WAD), WAD, 80 * 10**16), 6)
    free = usdc.balanceOf(pool) - required
    assert pool.freeLiquidity() == free
    shares = pool.balanceOf(owner)
    assert pool.maxRequestRedeem(owner) == shares and pool.maxWithdraw(owner) == 0  # two steps only
    ready = pool.requestRedeem(shares, sender=owner).timestamp + pool.exitDelay()
    assert pool.maxRequestRedeem(owner) == 0  # one exit at a time
    with ape.reverts(pool.ExitPending):
        pool.requestRedeem(1, sender=owner)
    ape.chain.pending_timestamp = ready
    worth = pool.convertToAssets(shares)
    with ape.reverts(pool.InsufficientFreeLiquidity, requestedTokens=worth, freeTokens=free):
        pool.claimRedeem(owner, sender=owner)
    pool.cancelRedeem(sender=owner)  # the shares come back, to ask for what is free
    assert pool.balanceOf(owner) == shares
    exit_shares(pool, owner, pool.convertToShares(free))
    assert pool.freeLiquidity() <= 1


def test_exit_waits_its_delay_and_anyone_may_claim_it(pool, usdc, owner, bob):
    shares = pool.balanceOf(owner) // 10
    worth = pool.convertToAssets(shares)
    tx = pool.requestRedeem(shares, sender=owner)
    assert pool.balanceOf(pool) == shares  # escrowed, still in the supply
    ready = tx.timestamp + pool.exitDelay()
    assert tuple(pool.pendingExit(owner)) == (shares, ready, worth)
    ape.chain.pending_timestamp = ready - 1
    with ape.reverts(pool.ExitNotReady, owner=owner.address, readyAt=ready):
        pool.claimRedeem(owner, sender=bob)
    ape.chain.pending_timestamp = (
        ready  # whether or not the reverted call was mined (a fork's is not)
    )
    cash = usdc.balanceOf(owner)
    pool.claimRedeem(owner, sender=bob)  # a keeper, say: pays the owner
    assert usdc.balanceOf(owner) - cash == worth
    assert pool.balanceOf(pool) == 0 and pool.pendingExit(owner).shares == 0
    with ape.reverts(pool.NoExitPending):
        pool.claimRedeem(owner, sender=bob)


def test_free_liquidity_unconstrained_without_positions(pool, owner):
    assert pool.maxRequestRedeem(owner) == pool.balanceOf(owner)
    assert pool.freeLiquidity() == 10_000_000 * USDC_UNIT


def test_pay_vault_only_vault(pool, alice, owner):
    with ape.reverts(pool.NotVault, caller=alice.address):
        pool.payVault(1, sender=alice)
    with ape.reverts(pool.NotVault):
        pool.payVault(1, sender=owner)


def test_set_vault_once(pool, insurance, owner, alice):
    with ape.reverts(pool.AlreadySet):
        pool.setVault(alice, sender=owner)
    with ape.reverts(insurance.AlreadySet):
        insurance.setVault(alice, sender=owner)
    with ape.reverts(pool.OwnableUnauthorizedAccount):
        pool.setVault(alice, sender=alice)
