"""OracleAdapter: normalisation, staleness, sign and bounds checks, feed config bounds, volatility."""

import ape
import pytest
from conftest import WAD

from simulation import margin_math as mm

BOUNDS = (10**16, 10_000_000 * WAD)


def test_price_normalised_from_8_decimals(oracle, weth, wbtc, eth_feed, set_price):
    assert oracle.priceWad(weth) == 3000 * WAD
    assert oracle.priceWad(wbtc) == 60000 * WAD
    eth_feed.updateAnswer(123_456_789_01, sender=eth_feed.owner())  # $123.45678901
    assert oracle.priceWad(weth) == 12345678901 * 10**10


@pytest.fixture
def asset(owner):
    """A token with no feed yet: its first feed applies at once (a replacement waits a timelock)."""
    return ape.project.MockERC20.deploy("New", "NEW", 18, owner, sender=owner)


def test_price_from_18_decimal_feed(oracle, owner, asset):
    feed = ape.project.MockAggregator.deploy(18, "X", 2500 * WAD + 7, owner, sender=owner)
    oracle.setFeed(asset, feed, 18, 3600, 8, *BOUNDS, sender=owner)
    assert oracle.priceWad(asset) == 2500 * WAD + 7
    cfg = oracle.feedConfig(asset)
    assert (cfg.feed, cfg.decimals, cfg.heartbeat, cfg.volWindowRounds) == (
        feed.address,
        18,
        3600,
        8,
    )


def test_stale_price_after_heartbeat(oracle, weth, eth_feed, owner):
    eth_feed.updateAnswer(3000 * 10**8, sender=owner)
    updated = eth_feed.latestRoundData()[3]
    ape.chain.pending_timestamp = updated + 3600
    ape.chain.mine()
    assert oracle.priceWad(weth) == 3000 * WAD  # exactly the heartbeat is still fresh
    ape.chain.pending_timestamp = updated + 3601
    ape.chain.mine()
    with ape.reverts(oracle.StalePrice):
        oracle.priceWad(weth)


@pytest.mark.parametrize("answer", [0, -1, -3000 * 10**8])
def test_non_positive_price(oracle, weth, eth_feed, owner, answer):
    eth_feed.updateAnswer(answer, sender=owner)
    with ape.reverts(oracle.NonPositivePrice, asset=weth.address, answer=answer):
        oracle.priceWad(weth)


@pytest.mark.parametrize("usd", [0.009, 10_000_001])
def test_price_out_of_bounds(oracle, weth, eth_feed, set_price, usd):
    set_price(eth_feed, usd)
    with ape.reverts(oracle.PriceOutOfBounds):
        oracle.priceWad(weth)


def test_bounds_are_inclusive(oracle, weth, eth_feed, set_price):
    set_price(eth_feed, 0.01)
    assert oracle.priceWad(weth) == 10**16
    set_price(eth_feed, 10_000_000)
    assert oracle.priceWad(weth) == 10_000_000 * WAD


def test_feed_not_set(oracle, usdc):
    with ape.reverts(oracle.FeedNotSet, asset=usdc.address):
        oracle.priceWad(usdc)
    with ape.reverts(oracle.FeedNotSet):
        oracle.hourlyVolatilityWad(usdc)


@pytest.mark.parametrize(
    "decimals,heartbeat,window,lo,hi",
    [
        (19, 3600, 8, *BOUNDS),
        (8, 0, 8, *BOUNDS),
        (8, 3600, 1, *BOUNDS),
        (8, 3600, 33, *BOUNDS),
        (8, 3600, 8, 0, WAD),
        (8, 3600, 8, WAD, WAD),
        (8, 3600, 8, WAD, WAD - 1),
    ],
)
def test_set_feed_param_bounds(oracle, owner, asset, decimals, heartbeat, window, lo, hi):
    feed = ape.project.MockAggregator.deploy(decimals, "X", 10**decimals, owner, sender=owner)
    with ape.reverts(oracle.ParamOutOfBounds):
        oracle.setFeed(asset, feed, decimals, heartbeat, window, lo, hi, sender=owner)


@pytest.mark.parametrize("window", [2, 32])
def test_set_feed_edges_accepted(oracle, owner, asset, window):
    # the feed answers $1 = 1e18 wad: bounds [1, 1e18] hold it at the upper edge
    feed = ape.project.MockAggregator.deploy(8, "X", 10**8, owner, sender=owner)
    oracle.setFeed(asset, feed, 8, 3600, window, 1, WAD, sender=owner)
    assert oracle.feedConfig(asset).volWindowRounds == window and oracle.priceWad(asset) == WAD


def test_set_feed_only_owner(oracle, alice, weth, eth_feed):
    with ape.reverts(oracle.OwnableUnauthorizedAccount, account=alice.address):
        oracle.setFeed(weth, eth_feed, 8, 3600, 8, *BOUNDS, sender=alice)


def push_rounds(feed, owner, answers, gap_s):
    for a in answers:
        ape.chain.pending_timestamp += gap_s
        feed.updateAnswer(a, sender=owner)


def read_rounds(feed):
    return [
        tuple(feed.getRoundData(r)[i] for i in (1, 3)) for r in range(1, feed.latestRound() + 1)
    ]


@pytest.mark.parametrize("gap_s", [60, 600])
def test_volatility_matches_model(oracle, owner, weth, eth_feed, gap_s):
    answers = [
        int(3000e8 * (1 + d))
        for d in (0.01, -0.02, 0.005, 0.03, -0.01, 0.0, 0.02, -0.04, 0.01, 0.015)
    ]
    push_rounds(eth_feed, owner, answers, gap_s)
    rounds = read_rounds(eth_feed)
    assert len(rounds) == 11
    expected = mm.hourly_volatility_wad(rounds, 8)
    assert expected > 0
    assert oracle.hourlyVolatilityWad(weth) == expected
    assert oracle.priceAndVolatility(weth) == (answers[-1] * 10**10, expected)
    tx = oracle.cacheVolatility(weth, sender=owner)
    assert tx.return_value == expected
    ev = oracle.VolatilityCached.from_receipt(tx)[0]
    assert (ev.roundId, ev.hourlyVolWad) == (11, expected)
    assert oracle.hourlyVolatilityWad(weth) == expected


def test_volatility_single_round_is_zero(oracle, owner, asset):
    feed = ape.project.MockAggregator.deploy(8, "X", 10**8, owner, sender=owner)
    oracle.setFeed(asset, feed, 8, 3600, 8, *BOUNDS, sender=owner)
    assert oracle.hourlyVolatilityWad(asset) == 0


def test_cache_is_per_round(oracle, owner, weth, eth_feed):
    push_rounds(eth_feed, owner, [int(3000e8 * 1.01), int(3000e8 * 0.99)], 120)
    oracle.cacheVolatility(weth, sender=owner)
    push_rounds(eth_feed, owner, [int(3000e8 * 1.05)], 120)  # new round invalidates the cache
    assert oracle.hourlyVolatilityWad(weth) == mm.hourly_volatility_wad(read_rounds(eth_feed), 8)
