"""Regression tests of the outside review's findings: each attacks the flaw it names, with the figures
the review measured on the contracts before the fixes (where the attack paid)."""

import ape
import pytest
from conftest import (
    BTC,
    ETH,
    PARAMS_TIMELOCK_S,
    USDC_UNIT,
    WAD,
    by_closing,
    dust_cross_account,
    fill_of,
    market_fee,
)

from simulation import margin_math as mm

P = 10**16  # 1 %


# ---------------------------------------------------------------------------- 1. JIT liquidity


def test_liquidity_deposited_just_before_a_trade_does_not_lower_its_fee(
    vault, pool, usdc, alice, bob, fund
):
    """Review: a $1M open paid 1.05 % normally and 0.10 % after a $190M deposit in the same block."""
    size = 1_000_000 * WAD // 3000
    fund(usdc, alice, 200_000)
    snap = ape.chain.snapshot()
    normal = fill_of(vault, vault.openIsolated(ETH, size, 100_000 * USDC_UNIT, sender=alice))
    ape.chain.restore(snap)
    fund(usdc, bob, 190_000_000, spender=pool)
    pool.deposit(190_000_000 * USDC_UNIT, bob, sender=bob)
    after = fill_of(vault, vault.openIsolated(ETH, size, 100_000 * USDC_UNIT, sender=alice))
    assert after == normal
    assert normal > mm.mul_wad_up(3000 * WAD, WAD + P)  # the impact of $1M on $10M: over 1 %


def test_a_deposit_cannot_leave_before_the_cooldown(vault, pool, usdc, alice, bob, carol, fund):
    """deposit -> trade -> redeem in one block was profitable and repeatable: the LP took back its
    share of the fee the trade had just paid."""
    fund(usdc, bob, 190_000_000, spender=pool)
    shares = pool.deposit(190_000_000 * USDC_UNIT, bob, sender=bob).return_value
    fund(usdc, alice, 200_000)
    vault.openIsolated(ETH, 1_000_000 * WAD // 3000, 100_000 * USDC_UNIT, sender=alice)
    assert pool.maxRedeem(bob) == 0
    with ape.reverts():
        pool.redeem(shares, bob, bob, sender=bob)
    with ape.reverts(pool.SharesLocked, owner=bob.address):
        pool.transfer(carol, shares, sender=bob)  # nor through another address
    with ape.reverts(pool.DepositForOther):
        pool.deposit(USDC_UNIT, carol, sender=bob)  # nor by locking someone else's shares
    ape.chain.pending_timestamp = pool.lockedUntil(bob)
    ape.chain.mine()
    assert pool.maxRequestRedeem(bob) == shares


def test_trading_liquidity_leaves_young_deposits_out(pool, usdc, bob, fund):
    cash = usdc.balanceOf(pool)
    assert pool.tradingLiquidity() == cash  # the deployer's seed deposit has settled
    fund(usdc, bob, 1_000_000, spender=pool)
    pool.deposit(1_000_000 * USDC_UNIT, bob, sender=bob)
    assert usdc.balanceOf(pool) == cash + 1_000_000 * USDC_UNIT
    assert pool.tradingLiquidity() == cash
    ape.chain.pending_timestamp += 2 * pool.depositCooldown()
    ape.chain.mine()
    assert pool.tradingLiquidity() == cash + 1_000_000 * USDC_UNIT


# ---------------------------------------------------------------------------- 2. oracle front-running


@pytest.mark.parametrize("side", [1, -1])
def test_trading_ahead_of_a_deviation_round_does_not_pay(
    vault, usdc, alice, fund, eth_feed, set_price, side
):
    """Review: spread + impact at $50k (0.10 %) was under the feed's 0.5 % deviation threshold; a trader
    who saw the market move before the round landed earned $149.62 per round at $50k."""
    fund(usdc, alice, 10_000)
    pid = vault.openIsolated(
        ETH, side * 50_000 * WAD // 3000, 10_000 * USDC_UNIT, sender=alice
    ).return_value
    set_price(eth_feed, 3000 * (1 + side * 0.005))  # the round the trader saw coming
    before = usdc.balanceOf(alice)
    vault.closeIsolated(pid, sender=alice)
    profit = usdc.balanceOf(alice) - before - 10_000 * USDC_UNIT
    assert profit < 0


# ---------------------------------------------------------------------------- 3. self-liquidation


def lp_with_unlocked_shares(pool, usdc, who, fund, usd=1_000_000):
    """`who` deposits `usd` in the pool and waits out the deposit cooldown; returns its shares."""
    fund(usdc, who, usd, spender=pool)
    shares = pool.deposit(usd * USDC_UNIT, who, sender=who).return_value
    ape.chain.pending_timestamp = pool.lockedUntil(who)
    ape.chain.mine()
    return shares


def claim_when_ready(pool, usdc, owner, ready, sender):
    """Claim `owner`'s exit at `ready` (from `sender`); return what the owner was paid."""
    ape.chain.pending_timestamp = ready
    cash = usdc.balanceOf(owner)
    pool.claimRedeem(owner, sender=sender)
    return usdc.balanceOf(owner) - cash


def big_long(vault, usdc, alice, fund):
    """$2M of ETH on $150k (impact 2 % and spread: $41k to open)."""
    fund(usdc, alice, 150_000)
    size = 2_000_000 * WAD // 3000
    return vault.openIsolated(ETH, size, 150_000 * USDC_UNIT, sender=alice).return_value


def test_liquidating_ones_own_position_from_a_second_address_never_beats_closing(
    vault, lens, usdc, alice, bob, fund, eth_feed, set_price, no_buffer
):
    """Review: an owner liquidating its own $2M position from another address recovered $48,392, against
    $19,415 by closing it (the liquidation filled at the oracle price, with no spread or impact)."""
    pid = big_long(vault, usdc, alice, fund)
    set_price(eth_feed, 2900)
    h = lens.isolatedHealth(pid)
    assert h.equityUsd < h.maintenanceUsd
    snap = ape.chain.snapshot()
    size0, margin0 = vault.position(pid).size, vault.position(pid).margin
    tx = vault.liquidateIsolated(pid, sender=bob)  # bob: alice's second address
    ev = vault.IsolatedLiquidated.from_receipt(tx)[0]
    owner_side = ev.remaining + ev.keeperReward
    ape.chain.restore(snap)
    closing = by_closing(
        vault, usdc, alice, pid, ev
    )  # the owner's alternative: close that part itself
    assert 0 < ev.closedSize <= size0 and margin0 > 0
    assert owner_side <= closing


def test_a_liquidation_fills_as_a_close_of_the_same_size(
    vault, pool, usdc, alice, keeper, fund, eth_feed, set_price, no_buffer
):
    pid = big_long(vault, usdc, alice, fund)
    entry = vault.position(pid).entryPriceWad
    set_price(eth_feed, 2900)
    liquidity = mm.quote_to_usd_down(pool.tradingLiquidity(), 6)
    tx = vault.liquidateIsolated(pid, sender=keeper)
    ev = vault.IsolatedLiquidated.from_receipt(tx)[0]
    mp = vault.market(ETH).params
    notional = mm.notional_usd_up(ev.closedSize, 2900 * WAD)
    fill = mm.fill_price_against_trader(
        2900 * WAD, -ev.closedSize, market_fee(mp, notional, liquidity)
    )
    assert fill < mm.mul_wad_down(2900 * WAD, WAD - mp.minFeeWad + 1)  # not the oracle price
    assert ev.realizedPnl == mm.signed_usd_to_quote_floor(
        mm.pnl_usd_floor(ev.closedSize, entry, fill), 6
    )


# ---------------------------------------------------------------------------- 4. stale collateral feed


def stale_btc(eth_feed, set_price, eth_usd):
    """Let the BTC feed go stale (past its one-hour heartbeat); ETH gets a fresh round at `eth_usd`."""
    ape.chain.pending_timestamp += 3601
    set_price(eth_feed, eth_usd)


def test_a_stale_collateral_feed_does_not_block_cross_liquidation(
    vault, lens, oracle, usdc, wbtc, alice, keeper, owner, fund, eth_feed, set_price, no_buffer
):
    """Review: 1e-8 WBTC in an account while the BTC feed was stale made liquidateCross revert with
    StalePrice and MarginLens.scanCross revert for every account, while the owner could still close."""
    dust_cross_account(vault, usdc, wbtc, alice, fund)
    stale_btc(eth_feed, set_price, 2880)
    with ape.reverts(oracle.StalePrice):
        oracle.priceWad(wbtc)
    assert list(lens.scanCross(0, 10)[0]) == [alice.address]
    fund(usdc, keeper, 1_000)
    tx = vault.liquidateCross(alice, sender=keeper)
    assert vault.CrossLiquidated.from_receipt(tx)[0].account == alice.address


def test_stale_collateral_counts_for_nothing_in_a_withdrawal(
    vault, usdc, wbtc, alice, owner, fund, eth_feed, set_price, no_buffer
):
    fund(wbtc, alice, 1)
    vault.depositCollateral(wbtc, 10**8, sender=alice)  # $45,000 of weighted equity while priced
    fund(usdc, alice, 1_000)
    vault.depositCollateral(usdc, 1_000 * USDC_UNIT, sender=alice)
    vault.tradeCross(ETH, 5 * WAD, sender=alice)  # initial requirement $750
    snap = ape.chain.snapshot()
    vault.withdrawCollateral(usdc, 900 * USDC_UNIT, sender=alice)  # the WBTC backs it while priced
    ape.chain.restore(snap)
    stale_btc(eth_feed, set_price, 3000)
    with ape.reverts(vault.BelowInitialMargin):
        vault.withdrawCollateral(usdc, 900 * USDC_UNIT, sender=alice)


# ---------------------------------------------------------------------------- 5. owner powers


def test_the_owner_cannot_raise_liquidation_terms_at_once(
    vault, lens, usdc, alice, owner, fund, no_buffer
):
    """Review: in one transaction the owner set maintenance to 50 %, the penalty to 20 % and the keeper
    share to 100 %, then liquidated a position at health 6.62 and took $20,000 on $100k notional."""
    fund(usdc, alice, 20_000)
    pid = vault.openIsolated(
        ETH, 100_000 * WAD // 3000, 20_000 * USDC_UNIT, sender=alice
    ).return_value
    p = list(vault.market(ETH).params)
    attack = list(p)
    attack[1], attack[3], attack[4] = 50 * P, 20 * P, WAD
    attack[0] = 51 * P
    with ape.reverts(vault.ParamStepTooLarge):
        vault.setMarketParams(ETH, attack, sender=owner)
    # one bounded step is accepted, but only queued: the position stays safe until it applies
    step = list(p)
    step[1], step[0] = p[1] + p[1] // 2, p[0] + p[0] // 2
    vault.setMarketParams(ETH, step, sender=owner)
    assert list(vault.market(ETH).params) == p
    with ape.reverts(vault.TimelockNotReady):
        vault.applyMarketParams(ETH, sender=owner)
    h = lens.isolatedHealth(pid)
    assert h.equityUsd > h.maintenanceUsd


@pytest.mark.parametrize("name", ["vault", "oracle", "pool", "insurance"])
def test_ownership_moves_in_two_steps(request, owner, alice, bob, name):
    contract = request.getfixturevalue(name)
    contract.transferOwnership(alice, sender=owner)
    assert contract.owner() == owner.address and contract.pendingOwner() == alice.address
    with ape.reverts(contract.OwnableUnauthorizedAccount, account=bob.address):
        contract.acceptOwnership(sender=bob)
    contract.acceptOwnership(sender=alice)
    assert contract.owner() == alice.address


@pytest.fixture
def asset(owner):
    return ape.project.MockERC20.deploy("New", "NEW", 18, owner, sender=owner)


BOUNDS = (10**16, 10_000_000 * WAD)


@pytest.mark.parametrize(
    "feed_decimals,answer,told,reason",
    [
        (18, 3000 * WAD, 8, b"decimals"),
        (8, 0, 8, b"sign"),
        (8, -1, 8, b"sign"),
        (8, 10**7, 8, b"bounds"),  # $0.1 under a $1 floor
    ],
)
def test_set_feed_checks_the_feed(oracle, owner, asset, feed_decimals, answer, told, reason):
    feed = ape.project.MockAggregator.deploy(feed_decimals, "X", answer, owner, sender=owner)
    with ape.reverts(oracle.FeedCheckFailed, reason=reason.ljust(32, b"\0")):
        oracle.setFeed(asset, feed, told, 3600, 8, WAD, 10_000_000 * WAD, sender=owner)


def test_set_feed_refuses_a_stale_feed_and_an_account_without_code(oracle, owner, alice, asset):
    feed = ape.project.MockAggregator.deploy(8, "X", 3000 * 10**8, owner, sender=owner)
    ape.chain.pending_timestamp += 3601
    with ape.reverts(oracle.FeedCheckFailed, reason=b"stale".ljust(32, b"\0")):
        oracle.setFeed(asset, feed, 8, 3600, 8, *BOUNDS, sender=owner)
    with ape.reverts(oracle.FeedCheckFailed, reason=b"no code".ljust(32, b"\0")):
        oracle.setFeed(asset, alice, 8, 3600, 8, *BOUNDS, sender=owner)


def test_replacing_a_feed_waits_the_timelock(oracle, owner, weth, eth_feed):
    feed = ape.project.MockAggregator.deploy(8, "X", 1 * 10**8, owner, sender=owner)  # $1 ETH
    tx = oracle.setFeed(weth, feed, 8, 3600, 8, *BOUNDS, sender=owner)
    ready = oracle.FeedProposed.from_receipt(tx)[0].readyAt
    assert ready == tx.timestamp + PARAMS_TIMELOCK_S
    assert oracle.feedConfig(weth).feed == eth_feed.address
    with ape.reverts(oracle.TimelockNotReady):
        oracle.applyFeed(weth, sender=owner)
    ape.chain.pending_timestamp = ready
    feed.updateAnswer(10**8, sender=owner)
    oracle.applyFeed(weth, sender=owner)
    assert oracle.feedConfig(weth).feed == feed.address


# ---------------------------------------------------------------------------- lower severity


def test_an_lp_cannot_exit_ahead_of_bad_debt(
    vault, pool, usdc, alice, bob, keeper, fund, eth_feed, set_price
):
    """Review: the pool's value counts a position's loss beyond its margin as collectable, so an LP who
    leaves between the round that sinks the position and its liquidation is paid for bad debt the LPs who
    stay then absorb. Here an exit requested in that window is paid the shares' value after the
    liquidation (the keeper has the exit delay to act)."""
    shares = lp_with_unlocked_shares(pool, usdc, bob, fund)
    pid = big_long(vault, usdc, alice, fund)
    set_price(eth_feed, 2550)  # -15 %: $300k lost on $150k of margin
    on_paper = pool.convertToAssets(shares)  # counts the $150k+ beyond the margin as collectable
    ready = pool.requestRedeem(shares, sender=bob).timestamp + pool.exitDelay()
    assert pool.maxRedeem(bob) == 0  # no one-step way out either
    tx = vault.liquidateIsolated(pid, sender=keeper)
    (debt,) = vault.BadDebtCovered.from_receipt(tx)
    assert debt.fromPool > 10_000 * USDC_UNIT  # past the insurance fund: the LPs absorb the rest
    worth = pool.convertToAssets(shares)
    assert worth < on_paper
    assert claim_when_ready(pool, usdc, bob, ready, keeper) == worth


def test_an_exit_requested_ahead_of_a_round_is_paid_at_its_price(
    vault, pool, usdc, alice, bob, fund, eth_feed, set_price
):
    """An LP who sees a round coming that will sink the pool's value cannot leave at the price before it:
    the claim pays the lower of both."""
    shares = lp_with_unlocked_shares(pool, usdc, bob, fund)
    fund(usdc, alice, 500_000)  # a long gains when ETH rises: the pool's value falls
    vault.openIsolated(ETH, 3_000_000 * WAD // 3000, 500_000 * USDC_UNIT, sender=alice)
    before = pool.convertToAssets(shares)
    ready = pool.requestRedeem(shares, sender=bob).timestamp + pool.exitDelay()
    set_price(eth_feed, 3300)
    after = pool.convertToAssets(shares)
    assert after < before
    assert claim_when_ready(pool, usdc, bob, ready, bob) == after


def test_liquidation_price_of_an_unknown_position(lens, vault):
    """Review: MarginLens.isolatedLiquidationPrice panicked with a division by zero on an unknown id."""
    with ape.reverts(lens.UnknownPosition, positionId=12345):
        lens.isolatedLiquidationPrice(12345)
    with ape.reverts(lens.UnknownPosition, positionId=12345):
        lens.isolatedHealth(12345)


def test_a_full_liquidation_credits_the_remainder_for_the_owner_to_claim(
    vault, usdc, alice, keeper, fund, eth_feed, set_price, no_buffer
):
    """Review: a full liquidation pushed the remainder to the owner, so an owner that cannot receive the
    token (a blacklisted USDC holder on a fork) blocked its own liquidation."""
    fund(usdc, alice, 2)
    # $18 of ETH: a partial liquidation would leave less than the $10 minimum, so it is full
    pid = vault.openIsolated(ETH, 6 * WAD // 1000, 3 * USDC_UNIT // 2, sender=alice).return_value
    set_price(eth_feed, 2820)
    before = usdc.balanceOf(alice)
    tx = vault.liquidateIsolated(pid, sender=keeper)
    ev = vault.IsolatedLiquidated.from_receipt(tx)[0]
    assert ev.full and ev.remaining > 0
    assert usdc.balanceOf(alice) == before  # nothing pushed
    assert vault.claimableQuote(alice) == ev.remaining == vault.totalClaimableQuote()
    vault.claimRemainder(sender=alice)
    assert usdc.balanceOf(alice) == before + ev.remaining
    assert vault.claimableQuote(alice) == 0 == vault.totalClaimableQuote()
    with ape.reverts(vault.NothingToClaim):
        vault.claimRemainder(sender=alice)


@pytest.mark.parametrize("market", [ETH, BTC])
def test_min_fee_floor_applies_to_small_trades(vault, pool, usdc, alice, fund, market):
    fund(usdc, alice, 1_000)
    price = vault.marketState(market).priceWad
    size = 1_000 * WAD * WAD // price  # $1,000
    fill = fill_of(vault, vault.openIsolated(market, size, 500 * USDC_UNIT, sender=alice))
    assert fill == mm.mul_wad_up(price, WAD + vault.market(market).params.minFeeWad)
