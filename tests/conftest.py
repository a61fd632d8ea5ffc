"""Shared fixtures: the whole system deployed once per session with the project's own deployer, then
every test runs on a snapshot that ape reverts afterwards."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import ape
import pytest

from simulation import margin_math as mm
from simulation.build import compile_contracts
from simulation.deploy import DEFENCES_OFF, Deployment, SystemSpec, deploy_system

USDC_UNIT = 10**6
WAD = 10**18


def _network(config: pytest.Config) -> str:
    """ape test's --network choice ("" when not given)."""
    return str(config.getoption("network", default="") or "")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "contract: a contract test (uses the deployed system); ./scripts/test.sh runs these a second "
        "time on ethereum:mainnet-fork:foundry",
    )
    config.addinivalue_line(
        "markers",
        "fork_network: checks the upstream of ethereum:mainnet-fork (collected only there)",
    )
    config.addinivalue_line(
        "markers",
        "local_only: a long run over the contracts that stage one already does (not collected on a fork)",
    )
    network = _network(config)
    if "fork" in network and not os.environ.get("MARGINSIM_FORK_URL", "").strip():
        # ape would otherwise fall back to a public RPC (empty variable) or fail on the literal
        # ${MARGINSIM_FORK_URL} (unset one): say what is missing instead.
        pytest.exit(
            f"--network {network} forks the node at $MARGINSIM_FORK_URL, which is not set "
            "(./scripts/with_upstream.sh sets it to a local mainnet stand-in)",
            returncode=2,
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test on the deployed system is a contract test. Tests marked `fork_network` check a
    fork's upstream: they are only collected on a fork network (./scripts/test.sh runs them there);
    tests marked `local_only` are collected everywhere else."""
    on_fork = "fork" in _network(config)
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        if "system" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.contract)
        misplaced = (item.get_closest_marker("fork_network") and not on_fork) or (
            item.get_closest_marker("local_only") and on_fork
        )
        (dropped if misplaced else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def artifacts():
    return compile_contracts()


@pytest.fixture(scope="session")
def owner():
    return ape.accounts.test_accounts[0]


@pytest.fixture(scope="session")
def alice():
    return ape.accounts.test_accounts[1]


@pytest.fixture(scope="session")
def bob():
    return ape.accounts.test_accounts[2]


@pytest.fixture(scope="session")
def carol():
    return ape.accounts.test_accounts[3]


@pytest.fixture(scope="session")
def keeper():
    return ape.accounts.test_accounts[4]


@pytest.fixture(scope="session")
def system(artifacts, owner) -> Deployment:
    return deploy_system(ape.chain.provider.web3, artifacts, owner.address, SystemSpec())


def project_at(kind: str, address: str) -> Any:
    """The project's contract `kind` at `address`, with this checkout's ABI. (`ContainerContract.at`
    prefers ape's disk cache of contract types by address, kept per ecosystem in ~/.ape/ethereum/mainnet
    and shared by fork networks: a deterministic address deployed by an older checkout would be decoded
    with that checkout's ABI.)"""
    container = getattr(ape.project, kind)
    return ape.chain.contracts.instance_at(
        address, contract_type=container.contract_type, fetch_from_explorer=False, replace=True
    )


def _at(system: Deployment, name: str) -> Any:
    return project_at(system.kinds[name], system.addresses[name])


@pytest.fixture(scope="module")
def unsafe_system(artifacts: Any, owner: Any, system: Deployment) -> Deployment:
    """The same system with every defence off (DEFENCES_OFF), one per module that asks (after the
    session's hardened `system`, so ape's snapshots nest in fixture order)."""
    return deploy_system(ape.chain.provider.web3, artifacts, owner.address, DEFENCES_OFF)


def market_fee(params: Any, notional_usd: int, liquidity_usd: int) -> int:
    """The fee fraction a trade (or a liquidation's close) of `notional_usd` pays in a market with these
    MarketParams, against `liquidity_usd` of trading liquidity (the reference model's formula)."""
    return mm.trade_fee_fraction_up(
        params.spreadWad, params.minFeeWad, params.impactCoefficientWad, notional_usd, liquidity_usd
    )


def fill_of(vault: Any, tx: Any) -> int:
    """The fill price of the IsolatedOpened event in `tx`."""
    return int(vault.IsolatedOpened.from_receipt(tx)[0].fillPriceWad)


def by_closing(vault: Any, usdc: Any, owner: Any, pid: int, ev: Any) -> int:
    """What the owner gets by closing itself the part a liquidation (its event `ev`) closed: the payout of
    a full close, or the margin left after reducing by that size. Run on a snapshot from before `ev`."""
    if ev.full:
        before = usdc.balanceOf(owner)
        vault.closeIsolated(pid, sender=owner)
        return int(usdc.balanceOf(owner) - before)
    vault.modifyIsolated(pid, -ev.closedSize, sender=owner)
    return int(vault.position(pid).margin)


def dust_cross_account(vault: Any, usdc: Any, wbtc: Any, who: Any, fund: Any) -> None:
    """One satoshi of WBTC and $1,000 in a cross account, long 5 ETH (the review's stale-dust account)."""
    fund(wbtc, who, 1e-8, spender=vault)
    vault.depositCollateral(wbtc, 1, sender=who)
    fund(usdc, who, 1_000, spender=vault)
    vault.depositCollateral(usdc, 1_000 * USDC_UNIT, sender=who)
    vault.tradeCross(ETH, 5 * WAD, sender=who)


@pytest.fixture(scope="session")
def vault(system):
    return _at(system, "MarginVault")


@pytest.fixture(scope="session")
def lens(system):
    return _at(system, "MarginLens")


@pytest.fixture(scope="session")
def pool(system):
    return _at(system, "LPPool")


@pytest.fixture(scope="session")
def insurance(system):
    return _at(system, "InsuranceFund")


@pytest.fixture(scope="session")
def oracle(system):
    return _at(system, "OracleAdapter")


@pytest.fixture(scope="session")
def usdc(system):
    return _at(system, "USDC")


@pytest.fixture(scope="session")
def weth(system):
    return _at(system, "WETH")


@pytest.fixture(scope="session")
def wbtc(system):
    return _at(system, "WBTC")


@pytest.fixture(scope="session")
def eth_feed(system):
    return _at(system, "FEED_WETH")


@pytest.fixture(scope="session")
def btc_feed(system):
    return _at(system, "FEED_WBTC")


ETH, BTC = 0, 1  # market ids of the default system
MAX_BUFFER_FIELD = 11  # index of maxBufferWad in MarketParams


PARAMS_TIMELOCK_S = 86_400  # ConstantsLib.PARAMS_TIMELOCK
MIN_PARAM_STEP = 10**16  # ConstantsLib.MIN_PARAM_STEP


def _step_toward(current: int, target: int) -> int:
    """One step the vault accepts: at most max(current / 2, MIN_PARAM_STEP) in either direction."""
    step = max(current // 2, MIN_PARAM_STEP)
    return (
        target if abs(target - current) <= step else current + (step if target > current else -step)
    )


def set_params_now(vault: Any, owner: Any, market: int, target: list[int]) -> None:
    """Bring a market's parameters to `target` the only way the owner can: queued changes, each one
    bounded step, each applied after the timelock (the chain's clock jumps). Then every feed gets a fresh
    round at its last answer, so nothing is stale after the jumps."""
    current = list(vault.market(market).params)
    while current != list(target):
        current = [_step_toward(c, t) for c, t in zip(current, target, strict=True)]
        vault.setMarketParams(market, current, sender=owner)
        ape.chain.pending_timestamp += PARAMS_TIMELOCK_S
        vault.applyMarketParams(market, sender=owner)
    refresh_feeds(vault, owner)


def refresh_feeds(vault: Any, owner: Any, at: int | None = None) -> None:
    """A new round at the last answer on every feed of the vault's oracle (after a jump of the clock);
    with `at`, each in a block pinned to that timestamp (anvil otherwise moves on with the wall clock)."""
    oracle = project_at("OracleAdapter", vault.oracle())
    assets = [vault.market(i).asset for i in range(vault.marketCount())]
    for asset in dict.fromkeys(assets + list(vault.collateralTokens())):
        feed = project_at("MockAggregator", oracle.feedConfig(asset).feed)
        if at is not None:
            ape.chain.pending_timestamp = at
        feed.updateAnswer(feed.latestAnswer(), sender=owner)


def replace_feed(
    oracle: Any, owner: Any, asset: Any, feed: Any, decimals: int, lo: int, hi: int
) -> None:
    """Replace an asset's feed the only way the owner can: proposed, then applied after the timelock;
    the replaced feeds' rounds go stale on the way, so the new feed gets a fresh round at its answer."""
    oracle.setFeed(asset, feed, decimals, 3600, 8, lo, hi, sender=owner)
    ape.chain.pending_timestamp += PARAMS_TIMELOCK_S
    feed.updateAnswer(feed.latestAnswer(), sender=owner)
    oracle.applyFeed(asset, sender=owner)


def disable_buffer(vault: Any, owner: Any, market: int = ETH) -> None:
    """Set a market's volatility buffer to 0, so a price push does not move its ratios."""
    p = list(vault.market(market).params)
    p[MAX_BUFFER_FIELD] = 0
    set_params_now(vault, owner, market, p)


@pytest.fixture
def no_buffer(vault, owner) -> None:
    """Static ratios in both markets (opt in with `pytestmark = pytest.mark.usefixtures(...)`)."""
    for m in (ETH, BTC):
        disable_buffer(vault, owner, m)


@pytest.fixture(scope="session")
def fund(owner, vault) -> Callable[..., int]:
    """Mint `amount` whole units of `token` to `account`, approve the vault; return raw units."""

    def _fund(token: Any, account: Any, amount: float, spender: Any = None) -> int:
        raw = int(amount * 10 ** token.decimals())
        token.mint(account, raw, sender=owner)
        token.approve(spender or vault, 2**256 - 1, sender=account)
        return raw

    return _fund


@pytest.fixture(scope="session")
def set_price(owner) -> Callable[[Any, float], None]:
    """Push a new round with `usd` to a mock feed (8 decimals)."""

    def _set(feed: Any, usd: float) -> None:
        feed.updateAnswer(round(usd * 10 ** feed.decimals()), sender=owner)

    return _set
