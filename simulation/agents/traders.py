"""Traders: random, momentum or mean-reversion; isolated or cross; stop-loss, take-profit, and the
automated margin rebalancer for isolated positions."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from simulation import margin_math as mm
from simulation.actions import (
    Action,
    AddMargin,
    CloseIsolated,
    Deposit,
    OpenIsolated,
    TradeCross,
)
from simulation.agents.base import Agent, Observation
from simulation.scenario import TraderGroup
from simulation.state import Snapshot
from simulation.units import WAD

USDC_TO_USD = 10**12  # 6-decimal quote token to USD wad


@dataclass
class TraderContext:
    """The markets a trader may trade; shared by all traders."""

    market_ids: dict[str, int]
    symbols: dict[int, str]


@dataclass(frozen=True)
class Draws:
    """The random numbers of one block and market, drawn whatever the trader then does, so that two runs
    of the same scenario (isolated and cross) make the same intended decisions."""

    consider: float
    side: float
    leverage: float
    margin: float


class Trader(Agent):
    def __init__(self, name: str, address: str, cfg: TraderGroup, seed: int, ctx: TraderContext):
        self.name, self.address, self.cfg, self.markets = name, address, cfg, ctx
        self.rng = random.Random(seed)
        self.committed: dict[int, int] = {}
        """Cross mode: quote tokens committed to each market's position."""
        self.rebalance_left_usd = cfg.rebalance.budget_usd if cfg.rebalance else 0.0
        self.margin_posted_usd = 0.0
        self.pair_side = 0
        """hedged_pair: +1 long the first market and short the second, -1 the reverse (drawn only for
        that strategy, so the other strategies' random streams are unchanged)."""
        if cfg.strategy == "hedged_pair":
            self.pair_side = 1 if self.rng.random() < 0.5 else -1

    def _draws(self) -> Draws:
        r = self.rng.random
        return Draws(r(), r(), r(), r())

    def _signal(self, history: Sequence[Mapping[str, float]], symbol: str, u: float) -> int:
        if self.cfg.strategy == "random":
            return 1 if u < 0.5 else -1
        if self.cfg.strategy == "hedged_pair":
            first = self.markets.symbols[self.markets.market_ids[self.cfg.markets[0]]]
            return self.pair_side if symbol == first else -self.pair_side
        n = self.cfg.lookback_blocks
        if len(history) <= n:
            return 0
        now, then = history[-1][symbol], history[-1 - n][symbol]
        if self.cfg.strategy == "pairs":  # long the outperformer, short the other: a hedged book
            other = next(s for s in history[-1] if s != symbol)
            spread = now / then - history[-1][other] / history[-1 - n][other]
            return (spread > 0) - (spread < 0)
        if self.cfg.strategy == "momentum":
            return (now > then) - (now < then)
        mean = sum(h[symbol] for h in history[-n:]) / n
        return (now < mean) - (now > mean)

    def _position(self, snap: Snapshot, market_id: int) -> tuple[int, int, int, int] | None:
        """(position id or 0, size, entry price, margin in quote tokens) of this trader in a market."""
        if self.cfg.margin_mode == "isolated":
            for p in snap.positions.values():
                if p.owner == self.address and p.market_id == market_id:
                    return p.position_id, p.size_wad, p.entry_price_wad, p.margin_quote
            return None
        account = snap.cross.get(self.address)
        if account is None or market_id not in account.positions:
            self.committed.pop(
                market_id, None
            )  # closed (or liquidated): forget its margin only now
            return None
        size, entry = account.positions[market_id]
        return 0, size, entry, self.committed.get(market_id, 0)

    def decide(self, obs: Observation) -> list[Action]:
        snap, history = obs.snapshot, obs.prices_usd
        txs: list[Action] = []
        for market in self.cfg.markets:
            mid = self.markets.market_ids[market]
            draws = self._draws()
            view = snap.market(mid)
            if view.price_wad is None or view.maintenance_ratio_wad is None:
                continue  # stale oracle: the vault refuses trades
            pos = self._position(snap, mid)
            signal = self._signal(history, self.markets.symbols[mid], draws.side)
            if pos is None:
                if draws.consider < self.cfg.trade_probability and signal != 0:
                    txs += self._open(mid, signal, view.price_wad, draws)
                continue
            txs += self._manage(snap, mid, pos, signal, draws)
        return txs

    def _open(self, mid: int, side: int, price_wad: int, d: Draws) -> list[Action]:
        lev = self.cfg.leverage.min + d.leverage * (self.cfg.leverage.max - self.cfg.leverage.min)
        margin_usd = self.cfg.margin_usd.min + d.margin * (
            self.cfg.margin_usd.max - self.cfg.margin_usd.min
        )
        margin = int(margin_usd * 10**6)
        size = side * int(margin_usd * lev * WAD) * WAD // price_wad
        self.margin_posted_usd += margin_usd
        if self.cfg.margin_mode == "isolated":
            return [OpenIsolated(mid, size, margin)]
        self.committed[mid] = margin
        return [Deposit("USDC", margin), TradeCross(mid, size)]

    def _manage(
        self, snap: Snapshot, mid: int, pos: tuple[int, int, int, int], signal: int, d: Draws
    ) -> list[Action]:
        pid, size, entry, margin = pos
        view = snap.market(mid)
        assert view.price_wad is not None and view.maintenance_ratio_wad is not None
        pnl_usd = mm.pnl_usd_floor(size, entry, view.price_wad)
        margin_usd = margin * USDC_TO_USD
        cfg = self.cfg
        known = margin_usd > 0  # a cross position this trader did not open has no margin of its own
        stop = known and cfg.stop_loss is not None and pnl_usd <= -cfg.stop_loss * margin_usd
        take = known and cfg.take_profit is not None and pnl_usd >= cfg.take_profit * margin_usd
        flip = (
            cfg.strategy != "hedged_pair"
            and d.consider < cfg.trade_probability
            and signal != 0
            and (signal > 0) != (size > 0)
        )
        if stop or take or flip:
            kind = "stop_loss" if stop else "take_profit" if take else "close"
            if cfg.margin_mode == "isolated":
                return [CloseIsolated(pid, label=kind)]
            return [TradeCross(mid, -size, label=kind)]
        if cfg.rebalance and cfg.margin_mode == "isolated" and self.rebalance_left_usd > 0:
            health = view.health(margin_usd, size, entry)
            if (
                health is not None
                and health.maintenance_usd
                and health.equity_usd < cfg.rebalance.below_health * health.maintenance_usd
            ):
                top_up_usd = min(
                    self.rebalance_left_usd, margin_usd / WAD * cfg.rebalance.top_up_fraction
                )
                if top_up_usd >= 1:
                    self.rebalance_left_usd -= top_up_usd
                    self.margin_posted_usd += top_up_usd
                    return [AddMargin(pid, int(top_up_usd * 10**6), label="rebalance")]
        return []
