"""Owner parameters: hard bounds on every market and collateral field, access control, events."""

import ape
import pytest
from conftest import ETH, PARAMS_TIMELOCK_S, WAD

P = 10**16  # 1 %
DEFAULT = [
    5 * P,
    3 * P,
    20 * WAD,
    P,
    50 * P,
    5 * 10**14,
    10 * P,
    80 * P,
    10 * WAD,
    P,
    WAD,
    5 * P,
    3 * 10**15,
    0,  # liquidationCapUsd: no cap
    0,  # tierNotionalUsd
    0,  # tierMarginWad: no tier
    0,  # fundingRateWad: no funding
    0,  # poolLossCapWad: no cap
]
BAD = [  # (field index, value, bound name)
    (0, 3 * P, b"initialMargin"),  # must exceed maintenance
    (0, WAD + 1, b"initialMargin"),
    (1, P // 2 - 1, b"maintenanceMargin"),
    (1, 50 * P + 1, b"maintenanceMargin"),
    (2, WAD - 1, b"maxLeverage"),
    (2, 100 * WAD + 1, b"maxLeverage"),
    (3, 3 * P, b"liquidationPenalty"),  # must be below maintenance
    (4, WAD + 1, b"keeperShare"),
    (5, P + 1, b"spread"),
    (6, WAD + 1, b"impactCoefficient"),
    (7, 0, b"openInterestCap"),
    (7, 2 * WAD + 1, b"openInterestCap"),
    (8, 1_000_000 * WAD + 1, b"minNotional"),
    (9, WAD + 1, b"volFloor"),
    (10, 10 * WAD + 1, b"volSlope"),
    (11, 25 * P + 1, b"maxBuffer"),
    (12, 2 * P + 1, b"minFee"),
    (13, 10**30 + 1, b"liquidationCap"),
    (14, 10**30 + 1, b"tierNotional"),
    (15, 20 * P + 1, b"tierMargin"),
    (16, WAD + 1, b"fundingRate"),
    (17, WAD + 1, b"poolLossCap"),
]


def bad_params(i, v):
    p = list(DEFAULT)
    p[i] = v
    return p


def test_default_params_match_deploy(vault):
    assert list(vault.market(ETH).params) == DEFAULT


@pytest.mark.parametrize("i,value,name", BAD)
def test_create_market_rejects(vault, owner, weth, i, value, name):
    with ape.reverts(vault.ParamOutOfBounds, name=name.ljust(32, b"\0"), value=value):
        vault.createMarket(weth, bad_params(i, value), sender=owner)


@pytest.mark.parametrize("i,value,name", BAD)
def test_set_market_params_rejects(vault, owner, i, value, name):
    with ape.reverts(vault.ParamOutOfBounds, name=name.ljust(32, b"\0"), value=value):
        vault.setMarketParams(ETH, bad_params(i, value), sender=owner)


def test_edges_accepted(vault, owner, weth):
    edge = [
        WAD,
        50 * P,
        100 * WAD,
        20 * P,
        WAD,
        P,
        WAD,
        2 * WAD,
        1_000_000 * WAD,
        WAD,
        10 * WAD,
        25 * P,
        2 * P,
        10**30,
        10**30,
        20 * P,
        WAD,
        WAD,
    ]
    n = vault.createMarket(weth, edge, sender=owner).return_value
    assert list(vault.market(n).params) == edge
    low = [P // 2 + 1, P // 2, WAD, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    m = vault.createMarket(weth, low, sender=owner).return_value
    assert list(vault.market(m).params) == low


def test_the_liquidation_cap_moves_in_one_step_the_tier_by_steps(vault, owner):
    """From 0 (no cap) any step would be one to $0.01: the cap is exempt from the step rule (the timelock
    still applies); the tier's fields step like every other."""
    capped = bad_params(13, 250_000 * WAD)
    vault.setMarketParams(ETH, capped, sender=owner)  # queued: no ParamStepTooLarge
    with ape.reverts(vault.ParamStepTooLarge, index=15):
        vault.setMarketParams(ETH, bad_params(15, 5 * P), sender=owner)
    vault.setMarketParams(ETH, bad_params(15, P), sender=owner)  # one point: within a step


def test_unknown_market(vault, owner):
    with ape.reverts(vault.UnknownMarket, marketId=5):
        vault.setMarketParams(5, DEFAULT, sender=owner)


def test_only_owner(vault, alice, weth, wbtc):
    with ape.reverts(vault.OwnableUnauthorizedAccount, account=alice.address):
        vault.createMarket(weth, DEFAULT, sender=alice)
    with ape.reverts(vault.OwnableUnauthorizedAccount, account=alice.address):
        vault.setMarketParams(ETH, DEFAULT, sender=alice)
    with ape.reverts(vault.OwnableUnauthorizedAccount, account=alice.address):
        vault.setCollateral(wbtc, 50 * P, 5 * P, sender=alice)


def test_create_market_events(vault, owner, wbtc):
    params = bad_params(0, 10 * P)
    n = vault.marketCount()
    tx = vault.createMarket(wbtc, params, sender=owner)
    assert tx.return_value == n == vault.marketCount() - 1
    created = vault.MarketCreated.from_receipt(tx)[0]
    assert (created.marketId, created.asset) == (n, wbtc.address)
    ev = vault.MarketParamsSet.from_receipt(tx)[0]
    assert ev.marketId == n and list(ev.params) == params
    assert vault.market(n).asset == wbtc.address and list(vault.market(n).params) == params


def test_set_market_params_queued_then_applied(vault, owner, alice):
    params = bad_params(1, 4 * P)
    tx = vault.setMarketParams(ETH, params, sender=owner)
    queued = vault.MarketParamsQueued.from_receipt(tx)[0]
    assert queued.marketId == ETH and list(queued.params) == params
    assert queued.readyAt == tx.timestamp + PARAMS_TIMELOCK_S
    assert list(vault.market(ETH).params) == DEFAULT  # nothing changes yet
    with ape.reverts(vault.TimelockNotReady):
        vault.applyMarketParams(ETH, sender=alice)
    ape.chain.pending_timestamp = queued.readyAt
    tx = vault.applyMarketParams(ETH, sender=alice)  # anyone applies it once ready
    ev = vault.MarketParamsSet.from_receipt(tx)[0]
    assert ev.marketId == ETH and list(ev.params) == params
    assert list(vault.market(ETH).params) == params
    with ape.reverts(vault.TimelockNotReady, readyAt=0):
        vault.applyMarketParams(ETH, sender=alice)  # applied once


@pytest.mark.parametrize(
    "weight,discount,name",
    [
        (0, P, b"collateralWeight"),
        (95 * P + 1, P, b"collateralWeight"),
        (80 * P, 0, b"liquidationDiscount"),
        (80 * P, 20 * P + 1, b"liquidationDiscount"),
    ],
)
def test_set_collateral_rejects(vault, owner, weth, weight, discount, name):
    with ape.reverts(vault.ParamOutOfBounds, name=name.ljust(32, b"\0")):
        vault.setCollateral(weth, weight, discount, sender=owner)


def test_set_collateral_decimals_and_quote(vault, owner, usdc):
    token = ape.project.MockERC20.deploy("T", "T", 19, owner, sender=owner)
    with ape.reverts(vault.ParamOutOfBounds, name=b"collateralDecimals".ljust(32, b"\0"), value=19):
        vault.setCollateral(token, 50 * P, 5 * P, sender=owner)
    with ape.reverts(vault.UnsupportedCollateral, token=usdc.address):
        vault.setCollateral(usdc, 50 * P, 5 * P, sender=owner)


def test_set_collateral_event_and_reweight(vault, owner, weth):
    n = len(vault.collateralTokens())
    tx = vault.setCollateral(weth, 95 * P, 5 * P, sender=owner)
    queued = vault.CollateralQueued.from_receipt(tx)[0]
    assert (queued.token, queued.weightWad, queued.liquidationDiscountWad) == (
        weth.address,
        95 * P,
        5 * P,
    )
    assert vault.collateralConfig(weth).weightWad == 80 * P  # a re-weighting waits
    ape.chain.pending_timestamp = queued.readyAt
    tx = vault.applyCollateral(weth, sender=owner)
    ev = vault.CollateralConfigured.from_receipt(tx)[0]
    assert (ev.token, ev.weightWad, ev.liquidationDiscountWad) == (weth.address, 95 * P, 5 * P)
    c = vault.collateralConfig(weth)
    assert (c.enabled, c.decimals, c.weightWad, c.liquidationDiscountWad) == (
        True,
        18,
        95 * P,
        5 * P,
    )
    assert len(vault.collateralTokens()) == n  # re-weighting does not list it twice


def test_new_collateral_listed(vault, owner):
    token = ape.project.MockERC20.deploy("T", "T", 6, owner, sender=owner)
    vault.setCollateral(token, 50 * P, 10 * P, sender=owner)
    assert vault.collateralTokens()[-1] == token.address
    assert vault.collateralConfig(token).decimals == 6
