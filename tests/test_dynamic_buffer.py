"""The maintenance buffer follows the oracle's realised volatility, exactly as the model computes it."""

import ape
import pytest
from conftest import ETH, USDC_UNIT, WAD

from simulation import margin_math as mm

BASE_IM, BASE_MM, FLOOR, SLOPE, MAX = 5 * 10**16, 3 * 10**16, 10**16, WAD, 5 * 10**16


def push(feed, owner, usd_prices, gap_s):
    for usd in usd_prices:
        ape.chain.pending_timestamp += gap_s
        feed.updateAnswer(int(usd * 10**8), sender=owner)


def rounds(feed):
    return [
        tuple(feed.getRoundData(r)[i] for i in (1, 3)) for r in range(1, feed.latestRound() + 1)
    ]


def expected_buffer(feed):
    return mm.volatility_buffer_up(mm.hourly_volatility_wad(rounds(feed), 8), FLOOR, SLOPE, MAX)


CALM = [3000.3, 3000] * 4
MODERATE = [3015, 3000] * 4  # 0.5 % moves 5 minutes apart: vol ~ 1.7 %/h, buffer between 0 and max
VOLATILE = [3150, 3000] * 4  # 5 % moves 3 minutes apart: capped


def test_calm_window_has_no_buffer(vault, owner, eth_feed):
    push(eth_feed, owner, CALM, 300)
    assert 0 < mm.hourly_volatility_wad(rounds(eth_feed), 8) < FLOOR
    s = vault.marketState(ETH)
    assert (s.priceWad, s.initialRatioWad, s.maintenanceRatioWad) == (3000 * WAD, BASE_IM, BASE_MM)


def test_moderate_window_buffer_exact(vault, owner, eth_feed):
    push(eth_feed, owner, CALM, 300)
    push(eth_feed, owner, MODERATE, 300)
    buf = expected_buffer(eth_feed)
    assert 0 < buf < MAX
    s = vault.marketState(ETH)
    assert (s.initialRatioWad, s.maintenanceRatioWad) == (BASE_IM + buf, BASE_MM + buf)


@pytest.mark.parametrize("gap_s", [180, 30])
def test_volatile_window_buffer_capped(vault, owner, eth_feed, gap_s):
    push(eth_feed, owner, CALM, 300)
    push(eth_feed, owner, VOLATILE, gap_s)
    vol = mm.hourly_volatility_wad(rounds(eth_feed), 8)
    assert vol - FLOOR > MAX  # uncapped it would exceed the max
    s = vault.marketState(ETH)
    assert s.maintenanceRatioWad == BASE_MM + expected_buffer(eth_feed) == BASE_MM + MAX


def test_buffer_tracks_every_round(vault, owner, eth_feed):
    push(eth_feed, owner, CALM, 300)
    for usd in VOLATILE + CALM * 3:
        push(eth_feed, owner, [usd], 200)
        m = vault.marketState(ETH).maintenanceRatioWad
        assert m == BASE_MM + expected_buffer(eth_feed)
        assert BASE_MM <= m <= BASE_MM + MAX
    assert vault.marketState(ETH).maintenanceRatioWad == BASE_MM  # calm again: buffer gone


def test_buffer_alone_makes_position_liquidatable(
    lens, vault, usdc, alice, keeper, owner, fund, eth_feed
):
    push(eth_feed, owner, CALM, 300)
    fund(usdc, alice, 200)
    pid = vault.openIsolated(ETH, WAD, 200 * USDC_UNIT, sender=alice).return_value  # 15x
    h = lens.isolatedHealth(pid)
    assert h.maintenanceUsd <= h.equityUsd
    with ape.reverts(vault.NotLiquidatable):
        vault.liquidateIsolated(pid, sender=keeper)
    push(eth_feed, owner, VOLATILE, 180)
    assert vault.marketState(ETH).priceWad == 3000 * WAD  # same price as before
    h2 = lens.isolatedHealth(pid)
    assert h2.equityUsd == h.equityUsd
    notional = mm.notional_usd_up(WAD, 3000 * WAD)
    assert h2.maintenanceUsd == mm.requirement_usd_up(notional, BASE_MM + MAX) > h2.equityUsd
    vault.liquidateIsolated(pid, sender=keeper)


def test_cached_volatility_gives_same_buffer(vault, oracle, owner, weth, eth_feed):
    push(eth_feed, owner, CALM, 300)
    push(eth_feed, owner, MODERATE, 300)
    uncached = vault.marketState(ETH).maintenanceRatioWad
    oracle.cacheVolatility(weth, sender=owner)
    assert (
        vault.marketState(ETH).maintenanceRatioWad
        == uncached
        == BASE_MM + expected_buffer(eth_feed)
    )
