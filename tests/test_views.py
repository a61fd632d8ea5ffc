"""Lens views: exact isolated liquidation price, paged scans, cross liquidation price estimate."""

import ape
import pytest
from conftest import BTC, ETH, USDC_UNIT, WAD, disable_buffer, replace_feed

BOUNDS = (10**16, 10_000_000 * WAD)


@pytest.fixture
def feed18(oracle, owner, weth, vault):
    feed = ape.project.MockAggregator.deploy(18, "ETH18", 3000 * WAD, owner, sender=owner)
    replace_feed(oracle, owner, weth, feed, 18, *BOUNDS)
    disable_buffer(vault, owner)
    return feed


def liquidatable(lens, pid):
    h = lens.isolatedHealth(pid)
    return h.equityUsd < h.maintenanceUsd


def open_at_leverage(vault, usdc, alice, fund, size, lev):
    margin = 3000 * USDC_UNIT // lev + USDC_UNIT
    fund(usdc, alice, margin / USDC_UNIT)
    return vault.openIsolated(ETH, size, margin, sender=alice).return_value


def check_flip(vault, lens, keeper, owner, feed, pid, at, safe):
    feed.updateAnswer(safe, sender=owner)
    assert not liquidatable(lens, pid)
    with ape.reverts(vault.NotLiquidatable):
        vault.liquidateIsolated(pid, sender=keeper)
    feed.updateAnswer(at, sender=owner)
    assert liquidatable(lens, pid)
    snap = ape.chain.snapshot()
    vault.liquidateIsolated(pid, sender=keeper)
    ape.chain.restore(snap)


@pytest.mark.parametrize("lev", [2, 5, 10, 18])
@pytest.mark.parametrize("side", [1, -1])
def test_isolated_liquidation_price_exact_wad(
    vault, lens, usdc, alice, keeper, owner, fund, feed18, side, lev
):
    pid = open_at_leverage(vault, usdc, alice, fund, side * WAD, lev)
    L = lens.isolatedLiquidationPrice(pid)
    assert L > 0
    check_flip(vault, lens, keeper, owner, feed18, pid, L, L + 1 if side > 0 else L - 1)


@pytest.mark.parametrize("lev", [2, 10, 18])
@pytest.mark.parametrize("side", [1, -1])
def test_isolated_liquidation_price_feed_units(
    vault, lens, usdc, alice, keeper, owner, fund, eth_feed, side, lev
):
    disable_buffer(vault, owner)
    pid = open_at_leverage(vault, usdc, alice, fund, side * WAD, lev)
    L = lens.isolatedLiquidationPrice(pid)
    unit = 10**10
    at = L // unit if side > 0 else -(-L // unit)  # floor (long) / ceil (short) to a feed unit
    check_flip(vault, lens, keeper, owner, eth_feed, pid, at, at + 1 if side > 0 else at - 1)


def test_scan_isolated_paged(vault, lens, usdc, alice, bob, fund, eth_feed, set_price, owner):
    disable_buffer(vault, owner)
    ids = []
    for who, size, margin in [
        (alice, WAD, 200),
        (bob, WAD, 1000),
        (alice, -WAD, 200),
        (bob, WAD, 300),
        (alice, -WAD, 1500),
        (bob, WAD, 160),
        (alice, WAD, 3000),
    ]:
        fund(usdc, who, margin)
        ids.append(vault.openIsolated(ETH, size, margin * USDC_UNIT, sender=who).return_value)
    set_price(eth_feed, 2850)
    truth = {i for i in ids if liquidatable(lens, i)}
    assert 0 < len(truth) < len(ids)
    found, scanned = lens.scanIsolated(0, 100)
    assert set(found) == truth and scanned == len(ids)
    paged, start = [], 0
    while True:
        part, n = lens.scanIsolated(start, 3)
        if n == 0:
            break
        paged += list(part)
        start += n
    assert sorted(paged) == sorted(truth) and start == len(ids)


def test_scan_cross_paged(vault, lens, usdc, alice, bob, carol, fund, eth_feed, set_price, owner):
    disable_buffer(vault, owner)
    for who, margin in [(alice, 200), (bob, 2000), (carol, 250)]:
        fund(usdc, who, margin)
        vault.depositCollateral(usdc, margin * USDC_UNIT, sender=who)
        vault.tradeCross(ETH, WAD, sender=who)
    set_price(eth_feed, 2800)
    truth = set()
    for who in (alice, bob, carol):
        h = lens.accountHealth(who)
        if h.equityUsd < h.maintenanceUsd:
            truth.add(who.address)
    assert truth == {alice.address, carol.address}
    assert set(lens.scanCross(0, 10)[0]) == truth
    first, n1 = lens.scanCross(0, 2)
    second, n2 = lens.scanCross(2, 2)
    assert (n1, n2) == (2, 1) and set(first) | set(second) == truth
    assert lens.scanCross(3, 2) == ([], 0)


@pytest.mark.parametrize("size", [WAD, -WAD])
def test_cross_liquidation_price_estimate(
    vault, lens, usdc, bob, fund, eth_feed, set_price, owner, size
):
    disable_buffer(vault, owner)
    disable_buffer(vault, owner, BTC)
    fund(usdc, bob, 400)
    vault.depositCollateral(usdc, 400 * USDC_UNIT, sender=bob)
    vault.tradeCross(ETH, size, sender=bob)
    est = lens.crossLiquidationPrice(bob, ETH) / WAD
    assert 2000 < est < 4000
    beyond, before = (0.995, 1.005) if size > 0 else (1.005, 0.995)
    set_price(eth_feed, est * before)
    h = lens.accountHealth(bob)
    assert h.equityUsd >= h.maintenanceUsd
    set_price(eth_feed, est * beyond)
    h = lens.accountHealth(bob)
    assert h.equityUsd < h.maintenanceUsd


def test_a_stale_market_does_not_hide_the_other_markets_liquidations(
    vault, lens, usdc, alice, eth_feed, set_price, fund
):
    fund(usdc, alice, 2_000)
    eth_id = vault.openIsolated(
        ETH, 5 * WAD, 1_000 * USDC_UNIT, sender=alice
    ).return_value  # ~15x long
    btc_id = vault.openIsolated(BTC, WAD // 100, 100 * USDC_UNIT, sender=alice).return_value
    ape.chain.pending_timestamp += 3601  # past the heartbeat: BTC's feed goes stale...
    set_price(eth_feed, 2700)  # ...while ETH gets a fresh round, 10 % down
    with ape.reverts():  # the adapter's StalePrice, bubbling up through the vault
        vault.marketState(BTC)
    ids, scanned = lens.scanIsolated(0, 100)
    assert list(ids) == [eth_id] and scanned == 2
    book_ids, positions, flags = lens.isolatedBook(0, 100)
    assert dict(zip(book_ids, flags, strict=True)) == {eth_id: True, btc_id: False}
    assert [p[1] for p in positions] == [ETH, BTC]  # (owner, marketId, ...)
