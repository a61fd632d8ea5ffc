"""A scenario's `protocol:` section sets every market and collateral parameter the owner can set, and
the oracle's heartbeat; each is checked against the bounds the contracts enforce before anything starts
(simulation.params), and each reaches the chain."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simulation import params
from simulation.backends import revm_transport
from simulation.build import compile_contracts
from simulation.deploy import deploy_system
from simulation.params import param_problems, system_spec
from simulation.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
CONSTANTS = ROOT / "contracts" / "libraries" / "ConstantsLib.sol"
CALM = ROOT / "scenarios" / "calm.yaml"
WAD = 10**18


def _solidity_constants() -> dict[str, int]:
    """name -> value of every uint256 constant in ConstantsLib.sol (`0.5e18`, `1_000_000e18`, `1e18`)."""
    out = {}
    for name, literal in re.findall(
        r"uint256 internal constant (\w+) = ([0-9_.e]+);", CONSTANTS.read_text()
    ):
        mantissa, _, exponent = literal.replace("_", "").partition("e")
        whole, _, frac = mantissa.partition(".")
        digits = int(whole + frac) * 10 ** (int(exponent or 0) - len(frac))
        out[name] = digits
    return out


def test_the_bounds_are_the_contracts():
    """Every bound simulation.params mirrors equals ConstantsLib.sol's constant of the same name."""
    sol = _solidity_constants()
    mirrored = [n for n in dir(params) if n.startswith(("MIN_", "MAX_")) and n in sol]
    assert len(mirrored) >= 15, mirrored
    for name in mirrored:
        assert getattr(params, name) == sol[name], name


def _with(protocol: dict) -> object:
    sc = load_scenario(CALM)
    return sc.model_validate({**sc.model_dump(), "blocks": 3, "protocol": protocol})


@pytest.mark.parametrize(
    "protocol,field",
    [
        ({"markets": {"ETH-USD": {"maintenance": 0.004}}}, "ETH-USD.maintenance"),
        ({"markets": {"ETH-USD": {"maintenance": 0.05}}}, "ETH-USD.initial"),  # initial 0.05 = it
        ({"markets": {"BTC-USD": {"liquidation_penalty": 0.03}}}, "BTC-USD.liquidation_penalty"),
        ({"markets": {"BTC-USD": {"keeper_share": 1.01}}}, "BTC-USD.keeper_share"),
        ({"markets": {"ETH-USD": {"spread": 0.011}}}, "ETH-USD.spread"),
        ({"markets": {"ETH-USD": {"impact": 1.5}}}, "ETH-USD.impact"),
        ({"markets": {"ETH-USD": {"oi_cap": 0}}}, "ETH-USD.oi_cap"),
        ({"markets": {"ETH-USD": {"oi_cap": 2.01}}}, "ETH-USD.oi_cap"),
        ({"markets": {"ETH-USD": {"max_leverage": 101}}}, "ETH-USD.max_leverage"),
        ({"markets": {"ETH-USD": {"min_notional_usd": 2e6}}}, "ETH-USD.min_notional_usd"),
        ({"markets": {"ETH-USD": {"buffer_floor": 1.5}}}, "ETH-USD.buffer_floor"),
        ({"markets": {"ETH-USD": {"buffer_slope": 11}}}, "ETH-USD.buffer_slope"),
        ({"markets": {"ETH-USD": {"buffer_cap": 0.3}}}, "ETH-USD.buffer_cap"),
        ({"markets": {"BTC-USD": {"liquidation_cap_usd": 1.1e12}}}, "BTC-USD.liquidation_cap_usd"),
        ({"markets": {"BTC-USD": {"tier_notional_usd": 2e12}}}, "BTC-USD.tier_notional_usd"),
        ({"markets": {"ETH-USD": {"tier_margin": 0.21}}}, "ETH-USD.tier_margin"),
        ({"markets": {"ETH-USD": {"funding_rate": 1.01}}}, "ETH-USD.funding_rate"),
        ({"markets": {"BTC-USD": {"pool_loss_cap": 1.5}}}, "BTC-USD.pool_loss_cap"),
        ({"collateral": {"WETH": {"weight": 0.96}}}, "WETH.weight"),
        ({"collateral": {"WBTC": {"weight": 0.9, "discount": 0.11}}}, "WBTC.discount"),
    ],
)
def test_a_value_the_owner_could_not_set_is_named(protocol, field):
    problems = list(param_problems(_with(protocol)))
    assert problems and field in problems[0], problems  # the first one (what a run is refused with)


def test_the_edges_the_contracts_accept_pass():
    edge = {
        "maintenance": 0.5,
        "initial": 1.0,
        "max_leverage": 1,
        "liquidation_penalty": 0.2,
        "keeper_share": 1.0,
        "spread": 0.01,
        "impact": 1.0,
        "oi_cap": 2.0,
        "min_notional_usd": 1e6,
        "buffer_floor": 1.0,
        "buffer_slope": 10,
        "buffer_cap": 0.25,
        "liquidation_cap_usd": 1e12,
        "tier_notional_usd": 1e12,
        "tier_margin": 0.2,
        "funding_rate": 1.0,
        "pool_loss_cap": 1.0,
    }
    sc = _with(
        {"markets": {"ETH-USD": edge}, "collateral": {"WETH": {"weight": 0.95, "discount": 0.05}}}
    )
    assert list(param_problems(sc)) == []


def test_every_parameter_reaches_the_chain():
    """Deployed (in process) from a scenario that sets every field: the vault's MarketParams, its
    collateral terms and the oracle's heartbeat read back as given."""
    eth = {
        "initial": 0.08,
        "maintenance": 0.04,
        "max_leverage": 12,
        "liquidation_penalty": 0.015,
        "keeper_share": 0.4,
        "spread": 0.0007,
        "impact": 0.2,
        "oi_cap": 0.6,
        "min_notional_usd": 25,
        "buffer_floor": 0.02,
        "buffer_slope": 1.5,
        "buffer_cap": 0.04,
        "liquidation_cap_usd": 250_000,
        "tier_notional_usd": 100_000,
        "tier_margin": 0.02,
        "funding_rate": 0.05,
        "pool_loss_cap": 0.02,
    }
    sc = _with(
        {
            "markets": {"ETH-USD": eth},
            "collateral": {"WBTC": {"weight": 0.7, "discount": 0.08}},
            "heartbeat_s": 1800,
            "min_fee": 0.002,
        }
    )
    t = revm_transport(3)
    d = deploy_system(t.w3, compile_contracts(), t.w3.eth.accounts[0], system_spec(sc))
    vault, oracle = d.contract("MarginVault"), d.contract("OracleAdapter")
    order = [  # MarketParams' fields, in the struct's order
        "initial",
        "maintenance",
        "max_leverage",
        "liquidation_penalty",
        "keeper_share",
        "spread",
        "impact",
        "oi_cap",
        "min_notional_usd",
        "buffer_floor",
        "buffer_slope",
        "buffer_cap",
    ]
    got = vault.functions.market(d.markets["ETH-USD"]).call()[5]
    want = [round(eth[k] * WAD) for k in order] + [round(0.002 * WAD), 250_000 * WAD]
    want += [100_000 * WAD, round(0.02 * WAD), round(0.05 * WAD), round(0.02 * WAD)]
    assert list(got) == want
    btc = vault.functions.market(d.markets["BTC-USD"]).call()[5]
    assert btc[1] == round(0.03 * WAD)  # not given: the default maintenance ratio
    weight, discount = vault.functions.collateralConfig(d.addresses["WBTC"]).call()[2:4]
    assert (weight, discount) == (round(0.7 * WAD), round(0.08 * WAD))
    assert oracle.functions.feedConfig(d.addresses["WETH"]).call()[1] == 1800
