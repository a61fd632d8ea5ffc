"""A scenario's `protocol:` section as what `deploy_system` deploys, and its parameters checked against
the bounds the contracts enforce (MarginVault._checkParams, setCollateral; OracleAdapter), before
anything starts: a value the owner could not set is one line naming its field, and exit code 2.

The bounds are ConstantsLib.sol's, mirrored here under the same names; tests/test_params_scenario.py
reads them back from the Solidity source and compares."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from simulation.deploy import (
    DEFAULT_MARKETS,
    DEFAULT_TOKENS,
    MarketSpec,
    SystemSpec,
    TokenSpec,
    wad,
)
from simulation.scenario import MARKET_PARAM_FIELDS, Scenario
from simulation.units import WAD

# ConstantsLib.sol, as on chain: wads
MIN_MAINTENANCE_MARGIN = wad("0.005")
MAX_MAINTENANCE_MARGIN = wad("0.5")
MAX_INITIAL_MARGIN = wad(1)
MIN_MAX_LEVERAGE = wad(1)
MAX_MAX_LEVERAGE = wad(100)
MAX_LIQUIDATION_PENALTY = wad("0.2")
MAX_KEEPER_SHARE = wad(1)
MAX_SPREAD = wad("0.01")
MAX_IMPACT_COEFFICIENT = wad(1)
MAX_OI_CAP = wad(2)
MAX_MIN_NOTIONAL_USD = wad(1_000_000)
MAX_VOL_FLOOR = wad(1)
MAX_VOL_SLOPE = wad(10)
MAX_MAINTENANCE_BUFFER = wad("0.25")
MAX_MIN_FEE = wad("0.02")
MAX_LIQUIDATION_CAP_USD = wad(10**12)
MAX_TIER_NOTIONAL_USD = wad(10**12)
MAX_TIER_MARGIN = wad("0.2")
MAX_FUNDING_RATE = wad(1)
MAX_POOL_LOSS_CAP = wad(1)
MAX_COLLATERAL_WEIGHT = wad("0.95")


def market_specs(sc: Scenario) -> tuple[MarketSpec, ...]:
    """The deployment's markets with the scenario's overrides (`protocol.markets.<name>.<field>`) and
    its fee floor (`protocol.min_fee`)."""
    out = []
    for m in DEFAULT_MARKETS:
        given = next((v for k, v in sc.protocol.markets.items() if k == m.name), None)
        changes: dict[str, Any] = {"min_fee": sc.protocol.min_fee}
        if given is not None:
            changes.update(
                {
                    spec_field: getattr(given, field)
                    for field, spec_field in MARKET_PARAM_FIELDS.items()
                    if getattr(given, field) is not None
                }
            )
        out.append(replace(m, **changes))
    return tuple(out)


def token_specs(
    sc: Scenario, base: tuple[TokenSpec, ...] = DEFAULT_TOKENS
) -> tuple[TokenSpec, ...]:
    """The tokens with the scenario's collateral weights and liquidation discounts."""
    out = []
    for t in base:
        given = next((v for k, v in sc.protocol.collateral.items() if k == t.symbol), None)
        if given is not None:
            t = replace(
                t,
                collateral_weight=given.weight if given.weight is not None else t.collateral_weight,
                liquidation_discount=(
                    given.discount if given.discount is not None else t.liquidation_discount
                ),
            )
        out.append(t)
    return tuple(out)


def protocol_spec(sc: Scenario) -> dict[str, Any]:
    """The SystemSpec fields a scenario's `protocol:` section sets: liquidity, insurance, defences,
    markets, the oracle's heartbeat, and `tokens` (the default tokens with its collateral terms)."""
    p = sc.protocol
    return {
        "lp_liquidity_usd": p.lp_liquidity_usd,
        "insurance_usd": p.insurance_usd,
        "lp_cooldown_s": p.lp_cooldown_s,
        "lp_exit_delay_s": p.lp_exit_delay_s,
        "liquidation_at_fill_price": p.liquidation_at_fill_price,
        "stale_collateral_at_zero": p.stale_collateral_at_zero,
        # a fork has the quote's real feed: valued at it unless held at par (a local run: see system_spec)
        "quote_at_feed": not p.quote_at_par,
        "markets": market_specs(sc),
        "heartbeat_s": p.heartbeat_s,
        "tokens": token_specs(sc),
    }


def system_spec(sc: Scenario) -> SystemSpec:
    """What a local run deploys: the protocol section, tokens priced at the scenario's start."""
    kw = protocol_spec(sc)
    start = {"WETH": sc.market.start["ETH"], "WBTC": sc.market.start["BTC"]}
    kw["tokens"] = tuple(
        replace(t, price_usd=start[t.symbol]) if t.symbol in start else t for t in kw["tokens"]
    )
    # a path for USDC: the quote gets a feed, and the vault values it there instead of at par
    kw["quote_feed_usd"] = sc.market.start.get("USDC")
    kw["quote_at_feed"] = kw["quote_feed_usd"] is not None and not sc.protocol.quote_at_par
    return SystemSpec(**kw)


def _bound(where: str, value: float, lo: int, hi: int, why: str = "") -> Iterator[str]:
    """`value` (plain units) as the wad the deployment sends, against the contract's [lo, hi] (wads)."""
    if not lo <= wad(value) <= hi:
        yield f"{where}: {value:g} is outside [{lo / WAD:g}, {hi / WAD:g}]{why}"


def param_problems(sc: Scenario) -> Iterator[str]:
    """Every market and collateral parameter the scenario sets, checked as the contracts check it
    (MarginVault._checkParams and setCollateral, in their order): one line per problem."""
    for m in market_specs(sc):
        at = f"protocol.markets.{m.name}"
        yield from _bound(
            f"{at}.maintenance",
            m.maintenance_margin,
            MIN_MAINTENANCE_MARGIN,
            MAX_MAINTENANCE_MARGIN,
        )
        if not wad(m.maintenance_margin) < wad(m.initial_margin) <= MAX_INITIAL_MARGIN:
            yield (
                f"{at}.initial: {m.initial_margin:g} must be above the maintenance ratio "
                f"{m.maintenance_margin:g} and at most 1"
            )
        yield from _bound(f"{at}.max_leverage", m.max_leverage, MIN_MAX_LEVERAGE, MAX_MAX_LEVERAGE)
        if (
            not 0
            <= wad(m.liquidation_penalty)
            < min(MAX_LIQUIDATION_PENALTY + 1, wad(m.maintenance_margin))
        ):
            yield (
                f"{at}.liquidation_penalty: {m.liquidation_penalty:g} must be below the maintenance "
                f"ratio {m.maintenance_margin:g} and at most 0.2"
            )
        yield from _bound(f"{at}.keeper_share", m.keeper_share, 0, MAX_KEEPER_SHARE)
        yield from _bound(f"{at}.spread", m.spread, 0, MAX_SPREAD)
        yield from _bound(f"{at}.impact", m.impact_coefficient, 0, MAX_IMPACT_COEFFICIENT)
        yield from _bound(f"{at}.oi_cap", m.open_interest_cap, 1, MAX_OI_CAP)
        yield from _bound(f"{at}.min_notional_usd", m.min_notional_usd, 0, MAX_MIN_NOTIONAL_USD)
        yield from _bound(f"{at}.buffer_floor", m.vol_floor, 0, MAX_VOL_FLOOR)
        yield from _bound(f"{at}.buffer_slope", m.vol_slope, 0, MAX_VOL_SLOPE)
        yield from _bound(f"{at}.buffer_cap", m.max_buffer, 0, MAX_MAINTENANCE_BUFFER)
        yield from _bound("protocol.min_fee", m.min_fee, 0, MAX_MIN_FEE)
        yield from _bound(
            f"{at}.liquidation_cap_usd", m.liquidation_cap_usd, 0, MAX_LIQUIDATION_CAP_USD
        )
        yield from _bound(f"{at}.tier_notional_usd", m.tier_notional_usd, 0, MAX_TIER_NOTIONAL_USD)
        yield from _bound(f"{at}.tier_margin", m.tier_margin, 0, MAX_TIER_MARGIN)
        yield from _bound(f"{at}.funding_rate", m.funding_rate, 0, MAX_FUNDING_RATE)
        yield from _bound(f"{at}.pool_loss_cap", m.pool_loss_cap, 0, MAX_POOL_LOSS_CAP)
    for t in token_specs(sc):
        if t.collateral_weight is None or t.liquidation_discount is None:
            continue
        at = f"protocol.collateral.{t.symbol}"
        yield from _bound(f"{at}.weight", t.collateral_weight, 1, MAX_COLLATERAL_WEIGHT)
        yield from _bound(
            f"{at}.discount",
            t.liquidation_discount,
            1,
            WAD - wad(t.collateral_weight),
            " (at most 1 - the weight)",
        )
