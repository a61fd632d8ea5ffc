"""A scenario checked against the system it will run on, before anything starts.

The scenario file validates on its own (simulation.scenario); these checks need the deployment: the
markets' maximum leverage, the quote token's decimals and the on-chain integer types amounts become,
and the price bounds the oracle adapter enforces. They read the deployment's own constants
(simulation.deploy), so the scenario is checked against exactly what `deploy_system` deploys.
Each problem is one line naming the field and the reason; the caller adds the file.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from simulation.deploy import DEFAULT_TOKENS, MOCK_FEED_BOUNDS_USD
from simulation.market import price_path
from simulation.params import market_specs, param_problems
from simulation.scenario import Scenario
from simulation.units import WAD

UINT128_MAX = 2**128 - 1
"""Margins, cash and open interest are uint128 on chain (MarginVault, MarginBooks)."""
INT128_MAX = 2**127 - 1
"""Position sizes are int128 on chain."""


def _quote_unit() -> int:
    """One quote token (USDC, the first token the deployment lists) in its smallest units."""
    return 10 ** DEFAULT_TOKENS[0].decimals


def _usd_amounts(sc: Scenario) -> Iterator[tuple[str, float]]:
    """Every USD amount of the scenario that becomes a quote-token amount on chain, with its path."""
    for i, g in enumerate(sc.traders):
        yield f"traders.{i}.wallet_usd", g.wallet_usd
        yield f"traders.{i}.margin_usd.max", g.margin_usd.max
        if g.rebalance is not None:
            yield f"traders.{i}.rebalance.budget_usd", g.rebalance.budget_usd
    for i, lp in enumerate(sc.lps):
        yield f"lps.{i}.deposit_usd", lp.deposit_usd
    yield "protocol.lp_liquidity_usd", sc.protocol.lp_liquidity_usd
    yield "protocol.insurance_usd", sc.protocol.insurance_usd


def amount_problems(sc: Scenario) -> Iterator[str]:
    """USD amounts the quote token cannot hold: beyond uint128 in its smallest units."""
    unit = _quote_unit()
    symbol = DEFAULT_TOKENS[0].symbol
    for where, usd in _usd_amounts(sc):
        if usd * unit > UINT128_MAX:
            yield (
                f"{where}: {usd:g} USD is more than {symbol} can hold on chain "
                f"({UINT128_MAX / unit:.3g} USD: uint128 in {symbol}'s {unit:g} units per dollar)"
            )


def leverage_problems(sc: Scenario) -> Iterator[str]:
    """Leverage above a traded market's maximum (every open would revert LeverageTooHigh), and
    positions whose size would not fit int128 at the oracle's lowest accepted price."""
    markets = {m.name: m for m in market_specs(sc)}
    low = MOCK_FEED_BOUNDS_USD[0]
    for i, g in enumerate(sc.traders):
        for name in g.markets:
            m = markets.get(name)
            if m is None:
                continue  # an unknown market is the scenario's own error
            if g.leverage.max > m.max_leverage:
                yield (
                    f"traders.{i}.leverage.max: {g.leverage.max:g} is above the {name} market's "
                    f"maximum leverage {m.max_leverage:g} (every such open would revert)"
                )
            elif g.margin_usd.max * g.leverage.max / low * WAD > INT128_MAX:
                yield (
                    f"traders.{i}.margin_usd.max: {g.margin_usd.max:g} USD at {g.leverage.max:g}x "
                    f"is a {name} position too big for int128 at the oracle's lowest price {low:g}"
                )


def price_problems(sc: Scenario, fork: bool) -> Iterator[str]:
    """Start prices and the whole price path inside the oracle's bounds (outside them every read
    reverts PriceOutOfBounds), and a price process that computes at all. On a fork the markets
    start at the chain's prices, so only the path's finiteness is checked there."""
    lo, hi = MOCK_FEED_BOUNDS_USD
    bounds = f"the oracle's bounds [{lo:g}, {hi:g}]"
    if not fork:
        for asset, price in sc.market.start.items():
            if not lo <= price <= hi:
                yield f"market.start.{asset}: {price:g} is outside {bounds}"
                return
    try:
        with np.errstate(all="ignore"):
            paths = price_path(sc.market, sc.seed, sc.blocks, sc.block_time_s)
    except (ValueError, OverflowError, ArithmeticError) as e:
        yield f"market: the price process cannot be computed: {e}"
        return
    for asset, path in paths.items():
        bad = ~np.isfinite(path) if fork else ~((path >= lo) & (path <= hi))
        if bad.any():
            block = int(np.argmax(bad))
            yield (
                f"market: with seed {sc.seed} the {asset} price leaves "
                f"{'finite numbers' if fork else bounds} at block {block} ({path[block]:.6g}); "
                "check vol_annual, drift_annual, jumps, regimes and events"
            )
            return


def deployment_problem(sc: Scenario, fork: bool = False) -> str | None:
    """The first reason `sc` cannot run on the deployed system, or None."""
    if fork and sc.adversaries:
        # they mint dust tokens and read the local feeds' decimals
        return "adversaries: run on a local chain only, not on a fork"
    checks = (
        param_problems(sc),
        amount_problems(sc),
        leverage_problems(sc),
        price_problems(sc, fork),
    )
    for check in checks:
        for problem in check:
            return problem
    return None
