"""The quote token valued at its feed (a stablecoin depeg): a vault deployed with `quoteAtFeed` values
isolated margin, cross quote balances and the LP pool's cash at the quote's feed price instead of at par,
and converts every USD amount it pays or takes (realised PnL, penalties, rewards) into quote tokens at it.
A vault deployed without it values the quote at $1 for its whole life, whatever feed the owner sets for
the quote later. Hand values: USDC at $0.88, ETH at $3,000. The tests here run on a deployment of their
own (the session's `system` values the quote at par)."""

from __future__ import annotations

import dataclasses
from typing import Any

import ape
import pytest
from conftest import ETH, USDC_UNIT, WAD, project_at

from simulation import margin_math as mm
from simulation.deploy import DEFAULT_MARKETS, Deployment, SystemSpec, deploy_system

DEPEG = 88 * WAD // 100


@pytest.fixture(scope="module")
def at_feed(artifacts: Any, owner: Any, system: Deployment) -> Deployment:
    """The default system with a USDC / USD feed at $1, deployed to value the quote at it, and static
    ratios (no volatility buffer: a price push does not move them). After the session's `system`, so
    that ape's snapshots nest in fixture order."""
    static = tuple(dataclasses.replace(m, max_buffer=0.0) for m in DEFAULT_MARKETS)  # no buffer
    # no LP deposit cooldown: deploy_system would mine a block 20 minutes on to let the seed deposit
    # mature, and anvil keeps that clock offset when the module's snapshot is reverted (later modules'
    # feeds would then be stale)
    spec = SystemSpec(markets=static, quote_feed_usd=1.0, quote_at_feed=True, lp_cooldown_s=0)
    return deploy_system(ape.chain.provider.web3, artifacts, owner.address, spec)


def _of(d: Deployment, name: str) -> Any:
    return project_at(d.kinds[name], d.addresses[name])


@pytest.fixture(scope="module")
def vault(at_feed):
    return _of(at_feed, "MarginVault")


@pytest.fixture(scope="module")
def lens(at_feed):
    return _of(at_feed, "MarginLens")


@pytest.fixture(scope="module")
def pool(at_feed):
    return _of(at_feed, "LPPool")


@pytest.fixture(scope="module")
def oracle(at_feed):
    return _of(at_feed, "OracleAdapter")


@pytest.fixture(scope="module")
def usdc(at_feed):
    return _of(at_feed, "USDC")


@pytest.fixture(scope="module")
def eth_feed(at_feed):
    return _of(at_feed, "FEED_WETH")


@pytest.fixture(scope="module")
def usdc_feed(at_feed):
    return _of(at_feed, "FEED_USDC")


@pytest.fixture
def fund(owner, vault):
    def _fund(token: Any, account: Any, amount: float) -> int:
        raw = int(amount * 10 ** token.decimals())
        token.mint(account, raw, sender=owner)
        token.approve(vault, 2**256 - 1, sender=account)
        return raw

    return _fund


def _depeg(feed, owner, price_wad: int = DEPEG) -> None:
    feed.updateAnswer(price_wad // 10**10, sender=owner)


def test_a_vault_at_par_ignores_any_feed_the_owner_gives_the_quote(system, owner):
    """The session's deployment values the quote at par: a feed set for the quote afterwards (the first
    feed of an asset applies at once) at $0.50 moves nothing, so no owner can revalue every account in
    one transaction."""
    par_vault, par_oracle = (_of(system, n) for n in ("MarginVault", "OracleAdapter"))
    par_usdc = _of(system, "USDC")
    assert not par_vault.quoteAtFeed() and par_vault.quotePriceWad() == WAD
    feed = owner.deploy(ape.project.MockAggregator, 8, "USDC / USD", 50_000_000, owner)
    par_oracle.setFeed(par_usdc, feed, 8, 3600, 8, WAD // 4, 2 * WAD, sender=owner)
    assert par_oracle.priceWad(par_usdc) == WAD // 2
    assert par_vault.quotePriceWad() == WAD


def test_a_vault_at_feed_refuses_modules_deployed_at_par(artifacts, owner, at_feed):
    """The vault checks its modules were deployed with its defences: a liquidator valuing the quote at
    par under a vault valuing it at its feed is refused at construction."""
    a = at_feed.addresses
    parts = (a["USDC"], a["OracleAdapter"], a["LPPool"], a["InsuranceFund"])
    same = [at_feed.addresses[n] for n in ("MarginLiquidator", "MarginAdmin", "MarginCross")]
    owner.deploy(ape.project.MarginVault, *parts, owner, (True, True, True), same)  # matching: fine
    at_par = owner.deploy(ape.project.MarginLiquidator, *parts, (True, True, False))
    with ape.reverts(_of(at_feed, "MarginVault").ModuleMismatch):
        owner.deploy(
            ape.project.MarginVault, *parts, owner, (True, True, True), [at_par, *same[1:]]
        )


def test_isolated_margin_is_worth_the_feed_price(vault, lens, usdc, alice, fund, usdc_feed, owner):
    fund(usdc, alice, 1_000)
    pid = vault.openIsolated(ETH, WAD // 10, 1_000 * USDC_UNIT, sender=alice).return_value
    at_par = lens.isolatedHealth(pid)
    _depeg(usdc_feed, owner)
    assert vault.quotePriceWad() == DEPEG
    h = lens.isolatedHealth(pid)
    # 1,000 USDC at $0.88 is $880: the equity falls by $120, the requirements do not move
    assert at_par.equityUsd - h.equityUsd == 120 * WAD
    assert (h.initialUsd, h.maintenanceUsd) == (at_par.initialUsd, at_par.maintenanceUsd)


def test_a_depeg_alone_makes_a_levered_position_liquidatable(
    vault, lens, usdc, alice, keeper, fund, usdc_feed, eth_feed, set_price, owner
):
    """A 1 ETH long on $200 of margin, ETH down to $2,905: some $96 of equity against $87 of maintenance
    at par; the same margin at $0.88 ($176) leaves some $72, under it. The liquidation price moves toward
    the entry by the margin's lost $24 over (1 - maintenance ratio)."""
    fund(usdc, alice, 200)
    pid = vault.openIsolated(ETH, WAD, 200 * USDC_UNIT, sender=alice).return_value
    set_price(eth_feed, 2_905)
    usdc_feed.updateAnswer(10**8, sender=owner)  # a fresh round at par
    h = lens.isolatedHealth(pid)
    assert h.equityUsd >= h.maintenanceUsd and pid not in lens.scanIsolated(0, 100)[0]
    before = lens.isolatedLiquidationPrice(pid)
    _depeg(usdc_feed, owner)
    h = lens.isolatedHealth(pid)
    assert h.equityUsd < h.maintenanceUsd and pid in lens.scanIsolated(0, 100)[0]
    after = lens.isolatedLiquidationPrice(pid)
    # maintenance is proportional to the price (m * size * P), so the price moves by $24 / (1 - m)
    m = vault.marketState(ETH).maintenanceRatioWad
    assert after - before == pytest.approx(24 * WAD * WAD / (WAD - m), abs=2)
    ev = vault.IsolatedLiquidated.from_receipt(vault.liquidateIsolated(pid, sender=keeper))[0]
    assert ev.positionId == pid


def test_realised_pnl_and_payout_convert_at_the_feed(
    vault, usdc, alice, fund, usdc_feed, eth_feed, set_price, owner
):
    """A profit of $X is paid as X / 0.88 USDC (rounded down); a loss of $X is taken as X / 0.88 USDC
    (rounded up)."""
    fund(usdc, alice, 2_000)
    long_id = vault.openIsolated(ETH, WAD, 1_000 * USDC_UNIT, sender=alice).return_value
    short_id = vault.openIsolated(ETH, -WAD, 1_000 * USDC_UNIT, sender=alice).return_value
    entries = vault.position(long_id).entryPriceWad, vault.position(short_id).entryPriceWad
    _depeg(usdc_feed, owner)
    set_price(eth_feed, 3_300)
    for pid, size, entry in ((long_id, WAD, entries[0]), (short_id, -WAD, entries[1])):
        ev = vault.IsolatedClosed.from_receipt(vault.closeIsolated(pid, sender=alice))[0]
        pnl_usd = mm.pnl_usd_floor(size, entry, ev.fillPriceWad)
        assert ev.realizedPnl == mm.signed_usd_to_quote_floor(pnl_usd, 6, DEPEG)
        assert ev.payout == 1_000 * USDC_UNIT + ev.realizedPnl
    # the long's ~$297 of profit is ~338 USDC at $0.88: more quote tokens than dollars
    assert ev.realizedPnl < -300 * USDC_UNIT * 100 // 88


def test_a_cross_quote_balance_is_worth_the_feed_price(
    vault, lens, usdc, bob, fund, usdc_feed, owner
):
    fund(usdc, bob, 3_000)
    vault.depositCollateral(usdc, 3_000 * USDC_UNIT, sender=bob)
    vault.tradeCross(ETH, WAD, sender=bob)
    at_par = lens.accountHealth(bob).equityUsd
    _depeg(usdc_feed, owner)
    assert at_par - lens.accountHealth(bob).equityUsd == 360 * WAD  # 3,000 * $0.12
    # a withdrawal that meets the initial requirement at par does not at $0.88
    h = lens.accountHealth(bob)
    spare_quote = mm.usd_to_quote_down(h.equityUsd - h.initialUsd, 6, DEPEG)
    with ape.reverts(vault.BelowInitialMargin):
        vault.withdrawCollateral(usdc, spare_quote + 1 * USDC_UNIT, sender=bob)
    vault.withdrawCollateral(usdc, spare_quote, sender=bob)


def test_the_pool_owes_traders_profit_in_quote_at_the_feed(
    vault, pool, usdc, alice, fund, usdc_feed, eth_feed, set_price, owner
):
    fund(usdc, alice, 1_000)
    vault.openIsolated(ETH, WAD, 1_000 * USDC_UNIT, sender=alice)
    set_price(eth_feed, 3_300)
    _depeg(usdc_feed, owner)
    cash = usdc.balanceOf(pool)
    owed_usd = vault.unrealizedTraderPnlUsd()
    assert owed_usd > 0
    assert pool.totalAssets() == cash - mm.usd_to_quote_up(owed_usd, 6, DEPEG)


def test_a_stale_quote_feed_stops_what_values_the_quote(
    vault, oracle, usdc, alice, fund, usdc_feed, owner
):
    """A quote feed past its heartbeat reverts like any feed: nothing is valued at a price nobody vouches
    for (the oracle agent keeps it fresh, as it does the markets')."""
    fund(usdc, alice, 1_000)
    pid = vault.openIsolated(ETH, WAD // 10, 1_000 * USDC_UNIT, sender=alice).return_value
    ape.chain.pending_timestamp += 3_601
    eth = project_at("MockAggregator", oracle.feedConfig(vault.market(ETH).asset).feed)
    eth.updateAnswer(eth.latestAnswer(), sender=owner)  # the market's feed fresh, the quote's stale
    with ape.reverts(oracle.StalePrice):
        vault.quotePriceWad()
    with ape.reverts(oracle.StalePrice):
        vault.removeIsolatedMargin(pid, USDC_UNIT, sender=alice)
    usdc_feed.updateAnswer(10**8, sender=owner)
    vault.removeIsolatedMargin(pid, USDC_UNIT, sender=alice)
