"""Market depth: the protocol's liquidation flow (and, if asked, its traders' flow) moves the market the
oracle reads, and the market recovers.

The model is transient price impact with exponential decay (a propagator model, as Obizhaeva and Wang's
limit-order-book resilience): in each block the signed USD notional that liquidations closed in a market
is taken to the asset's outside market, where selling q USD moves the log price by
`-0.01 * (q / depth_usd) ** exponent` (`depth_usd` is the notional that moves the price by 1 %; exponent 1
is linear impact, 0.5 the square-root law). The accumulated impact decays by half every `half_life_s`
(the book refilling). The market price every agent and the oracle see at block t is the exogenous path
times `exp(impact)`. So a liquidation's selling lowers the next blocks' price, the oracle passes it on at
its deviation threshold, and the lower price can make more positions liquidatable: a cascade.

Why a depth model and not an on-chain AMM the keepers sell into: this protocol's counterparty is its LP
pool, at the oracle price, and the oracle reads an outside market (Chainlink aggregates exchanges). The
price that cascades is that outside market's, and its depth and resilience are what risk teams measure
there (1 %-depth and recovery time); a pool on the local chain would model a venue the oracle does not
read, and would put keepers' inventory management into every keeper. The model is pure Python over the
mined blocks' decoded events, so both backends give the same prices (the parity tests run it).

Cascade measures (`Cascade`): a liquidation is *induced* when its target would not have been
liquidatable at the price without the impact that earlier liquidations caused (the oracle price it was
liquidated at, divided by that impact as of the oracle's round). A *cascade round* is a block with at least
one induced liquidation. Per asset, the *share of the move* is the part of the largest peak-to-trough fall
of the market price (in log terms) that the liquidation impact accounts for."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from simulation import margin_math as mm
from simulation.state import IsolatedView, Snapshot

WAD = 10**18
ONE_PERCENT = 0.01


class DepthConfig(BaseModel):
    """How deep the outside markets are and how fast they recover (`market.depth` in a scenario)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False)

    depth_usd: dict[str, float] = Field(min_length=1)
    """Per asset: the USD notional that moves its price by 1 % (assets not listed do not move)."""
    half_life_s: float = Field(gt=0, le=30 * 24 * 3600)
    """Seconds for half of the accumulated impact to wear off (the book refilling)."""
    exponent: float = Field(default=1.0, gt=0, le=1)
    """Impact grows as (notional / depth) ** exponent: 1 linear, 0.5 the square-root law."""
    traders: bool = False
    """Traders' opens, grows, reduces and closes move the market too (liquidations always do)."""

    @field_validator("depth_usd")
    @classmethod
    def _positive(cls, depth_usd: dict[str, float]) -> dict[str, float]:
        bad = [f"{a}={d}" for a, d in depth_usd.items() if not (math.isfinite(d) and 0 < d <= 1e15)]
        if bad:
            raise ValueError(f"depths must be finite, > 0 and at most 1e15 USD: {', '.join(bad)}")
        return depth_usd


def impact_log(flow_usd: float, depth_usd: float, exponent: float) -> float:
    """Log-price move of buying (`flow_usd` > 0) or selling (< 0) that notional against `depth_usd`."""
    if flow_usd == 0:
        return 0.0
    return math.copysign(ONE_PERCENT * (abs(flow_usd) / depth_usd) ** exponent, flow_usd)


@dataclass
class Depth:
    """The impact state of every asset with a depth. `price` gives a block's market prices; `absorb` takes
    a mined block's flows (signed USD per asset, + bought / - sold)."""

    cfg: DepthConfig
    block_time_s: int
    liq: dict[str, float] = field(default_factory=dict)
    """Log impact that liquidations caused, still in the price, per asset."""
    trade: dict[str, float] = field(default_factory=dict)
    """Log impact that traders caused (with `traders: true`)."""
    outside: dict[str, float] = field(default_factory=dict)
    """Log impact of what adversaries bought or sold on the outside venue itself (a manipulator's pump)."""
    liq_by_block: list[dict[str, float]] = field(default_factory=list)
    """The liquidation impact in each block's price, block 0 first."""

    def __post_init__(self) -> None:
        self.decay = 0.5 ** (self.block_time_s / self.cfg.half_life_s)
        self.liq = {a: 0.0 for a in self.cfg.depth_usd}
        self.trade = {a: 0.0 for a in self.cfg.depth_usd}
        self.outside = {a: 0.0 for a in self.cfg.depth_usd}

    def price(self, base: Mapping[str, float]) -> dict[str, float]:
        """This block's market prices from the exogenous ones; records the impact they carry."""
        self.liq_by_block.append(dict(self.liq))
        return {
            s: p
            * math.exp(self.liq.get(s, 0.0) + self.trade.get(s, 0.0) + self.outside.get(s, 0.0))
            for s, p in base.items()
        }

    def absorb(
        self,
        liquidations: Mapping[str, float],
        trades: Mapping[str, float],
        outside: Mapping[str, float] | None = None,
    ) -> None:
        """One block passes: the impact decays, and the block's flows add theirs (`outside`: what was
        bought or sold on the outside venue directly, signed USD per asset)."""
        for asset, depth in self.cfg.depth_usd.items():
            self.outside[asset] = self.outside[asset] * self.decay + impact_log(
                (outside or {}).get(asset, 0.0), depth, self.cfg.exponent
            )
            self.liq[asset] = self.liq[asset] * self.decay + impact_log(
                liquidations.get(asset, 0.0), depth, self.cfg.exponent
            )
            trade_flow = trades.get(asset, 0.0) if self.cfg.traders else 0.0
            self.trade[asset] = self.trade[asset] * self.decay + impact_log(
                trade_flow, depth, self.cfg.exponent
            )

    def fill_price(self, price: float, asset: str, flow_usd: float) -> float:
        """The price an outside order of `flow_usd` (+ buy / - sell) fills at in a block whose market price
        is `price`: the price after its own impact (the last unit's, the worst of the order)."""
        return price * math.exp(impact_log(flow_usd, self.cfg.depth_usd[asset], self.cfg.exponent))

    def liq_at(self, block: int, asset: str) -> float:
        if 0 <= block < len(self.liq_by_block):
            return self.liq_by_block[block].get(asset, 0.0)
        return 0.0


# ---------------------------------------------------------------------- flows from a block's events


def block_flows(
    events: Iterable[tuple[str, str, dict[str, Any]]],
    before: Snapshot,
    market_symbol: Mapping[int, str],
) -> tuple[dict[str, float], dict[str, float]]:
    """Signed USD flows of a mined block, per asset: (liquidations', traders'). Closing a long sells
    (negative), closing a short buys. Sizes are base wad, prices wad; an isolated position's market comes
    from the snapshot before the block, or from its opening in the same block."""
    liq: dict[str, float] = {}
    trade: dict[str, float] = {}
    opened: dict[int, int] = {}

    def add(into: dict[str, float], market_id: int | None, size: int, price_wad: int) -> None:
        if market_id is None or market_id not in market_symbol:
            return
        symbol = market_symbol[market_id]
        into[symbol] = into.get(symbol, 0.0) + size * price_wad / WAD / WAD

    def iso_market(position_id: int) -> int | None:
        p = before.positions.get(position_id)
        return p.market_id if p is not None else opened.get(position_id)

    for _, name, a in events:
        if name == "IsolatedLiquidated":
            add(liq, iso_market(a["positionId"]), -a["closedSize"], a["priceWad"])
        elif name == "CrossPositionLiquidated":
            add(liq, a["marketId"], -a["closedSize"], a["priceWad"])
        elif name == "IsolatedOpened":
            opened[a["positionId"]] = a["marketId"]
            add(trade, a["marketId"], a["size"], a["fillPriceWad"])
        elif name == "IsolatedModified":
            add(trade, iso_market(a["positionId"]), a["sizeDelta"], a["fillPriceWad"])
        elif name == "IsolatedClosed":
            p = before.positions.get(a["positionId"])
            if p is not None:
                add(trade, p.market_id, -p.size_wad, a["fillPriceWad"])
        elif name == "CrossTraded":
            add(trade, a["marketId"], a["sizeDelta"], a["fillPriceWad"])
    return liq, trade


# ---------------------------------------------------------------------- cascade measures


@dataclass
class Cascade:
    """Induced liquidations and cascade rounds over a run (see the module's docstring)."""

    induced: int = 0
    rounds: int = 0
    liquidations_seen: int = 0

    def fold(
        self,
        events: Iterable[tuple[str, str, dict[str, Any]]],
        before: Snapshot,
        counterfactual: Callable[[int, int], float],
    ) -> int:
        """Classify a mined block's liquidations; `counterfactual(market_id, price_wad)` is the factor that
        takes the oracle price a liquidation used to the price without liquidation impact. Returns how many
        of them were induced."""
        events = list(events)
        cross_prices: dict[str, dict[int, int]] = {}
        for _, name, a in events:
            if name == "CrossPositionLiquidated":
                cross_prices.setdefault(a["account"].lower(), {})[a["marketId"]] = a["priceWad"]
        induced = 0
        for _, name, a in events:
            if name == "IsolatedLiquidated":
                self.liquidations_seen += 1
                p = before.positions.get(a["positionId"])
                if p is not None and _isolated_induced(
                    before, p, a["priceWad"], counterfactual(p.market_id, a["priceWad"])
                ):
                    induced += 1
            elif name == "CrossLiquidated":
                self.liquidations_seen += 1
                account = a["account"]
                acct = before.cross_account(account)
                prices = cross_prices.get(account.lower(), {})
                if acct is not None and _cross_induced(
                    before, acct.positions, acct.equity_usd, prices, counterfactual
                ):
                    induced += 1
        self.induced += induced
        self.rounds += induced > 0
        return induced


def _scaled(price_wad: int, factor: float) -> int:
    return max(1, int(price_wad * factor))


def _isolated_induced(before: Snapshot, p: IsolatedView, price_wad: int, factor: float) -> bool:
    h = before.market(p.market_id).health(
        p.margin_and_funding_usd, p.size_wad, p.entry_price_wad, _scaled(price_wad, factor)
    )
    return h is not None and not h.liquidatable


def _cross_induced(
    before: Snapshot,
    legs: Mapping[int, tuple[int, int]],
    equity_usd: int,
    liquidated_at: Mapping[int, int],
    counterfactual: Callable[[int, int], float],
) -> bool:
    """Whether a cross account liquidated in the block had been healthy without liquidation impact: its
    equity before the block, with each leg's PnL moved from the snapshot's price to the counterfactual one
    (collateral other than the quote token held at its value; the built-in traders post only USDC)."""
    equity, maintenance = equity_usd, 0
    for mid, (size, entry) in legs.items():
        view = before.market(mid)
        if view.price_wad is None or view.maintenance_ratio_wad is None:
            return False
        at = liquidated_at.get(mid, view.price_wad)
        cf = _scaled(at, counterfactual(mid, at))
        equity += mm.pnl_usd_floor(size, entry, cf) - mm.pnl_usd_floor(size, entry, view.price_wad)
        maintenance += mm.tiered_requirement_usd_up(
            mm.notional_usd_up(size, cf),
            view.maintenance_ratio_wad,
            view.tier_notional_usd,
            view.tier_ratio_wad,
        )
    return equity >= maintenance


def largest_fall(prices: list[float]) -> tuple[int, int]:
    """(peak, trough) indices of the largest peak-to-trough fall of `prices` in log terms."""
    best, peak_i, out = 0.0, 0, (0, 0)
    for i, p in enumerate(prices):
        if p > prices[peak_i]:
            peak_i = i
        fall = math.log(prices[peak_i] / p) if p > 0 else 0.0
        if fall > best:
            best, out = fall, (peak_i, i)
    return out


def share_of_move(prices: list[float], liq_impact: list[float]) -> float:
    """The part of the largest peak-to-trough log fall of `prices` that the liquidation impact (log, per
    block, same length) accounts for: (impact at the peak - impact at the trough) / the fall. 0 when the
    price never fell."""
    peak, trough = largest_fall(prices)
    fall = math.log(prices[peak] / prices[trough]) if trough != peak else 0.0
    if fall <= 0:
        return 0.0
    return (liq_impact[peak] - liq_impact[trough]) / fall
