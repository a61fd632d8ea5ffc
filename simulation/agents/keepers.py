"""Keepers: competing liquidation bots with a reaction latency, a priority-fee bid and a profit rule.

What a liquidation would pay its keeper (`isolated_liquidation`, `cross_liquidation`) is computed as the
vault computes it, and is part of the public agent API (simulation.api): a plugin keeper ranks and bids
on the same figures."""

from __future__ import annotations

from dataclasses import dataclass, replace

from simulation import margin_math as mm
from simulation.actions import Action, LiquidateCross, LiquidateIsolated
from simulation.agents.base import Agent, AgentContext, Observation
from simulation.scenario import KeeperConfig
from simulation.state import CrossView, Snapshot
from simulation.units import GWEI, WAD

GAS_ISOLATED = 200_000
"""Gas a keeper budgets for an isolated liquidation (measured: 146k-164k, benchmarks/gas.py)."""
GAS_CROSS = 320_000
"""Gas a keeper budgets for a cross liquidation (measured: 223k with two markets and a sale)."""


@dataclass(frozen=True)
class Liquidation:
    """A liquidation a keeper could send, as the vault would carry it out at the snapshot's prices."""

    action: LiquidateIsolated | LiquidateCross
    reward_usd: float
    """What the keeper would be paid: its share of the penalty, plus (cross) the collateral sale's gain."""
    closes_usd: dict[int, int]
    """Market id -> the notional (USD wad) the liquidation would close there."""
    gas: int
    """Gas budgeted for it (`GAS_ISOLATED`, `GAS_CROSS`)."""

    @property
    def target(self) -> str:
        a = self.action
        return f"iso:{a.position_id}" if isinstance(a, LiquidateIsolated) else f"cross:{a.account}"

    @property
    def notional_usd(self) -> float:
        return sum(self.closes_usd.values()) / WAD

    def gas_cost_usd(self, snap: Snapshot, ctx: AgentContext, priority_fee_wei: int) -> float:
        """Its budgeted gas at the snapshot's base fee plus `priority_fee_wei`, in USD at the ETH price."""
        eth = snap.market(ctx.eth_market_id).price_wad or 0
        return self.gas * (snap.base_fee_wei + priority_fee_wei) * eth / WAD / WAD


def liquidations(snap: Snapshot, ctx: AgentContext) -> list[Liquidation]:
    """Every liquidation the snapshot's scan found (isolated positions, then cross accounts), each with
    its expected reward."""
    out = [isolated_liquidation(snap, ctx, pid) for pid in snap.liquidatable_isolated]
    return out + [cross_liquidation(snap, ctx, a) for a in snap.liquidatable_cross]


def isolated_liquidation(snap: Snapshot, ctx: AgentContext, position_id: int) -> Liquidation:
    """Expected reward and closed notional of liquidating an isolated position."""
    action = LiquidateIsolated(position_id)
    p = snap.positions.get(position_id)
    view = snap.market(p.market_id) if p else None
    h = view.health(p.margin_and_funding_usd, p.size_wad, p.entry_price_wad) if p and view else None
    if p is None or view is None or h is None or view.price_wad is None:
        return Liquidation(action, 0.0, {}, GAS_ISOLATED)
    notional = mm.notional_usd_up(p.size_wad, view.price_wad)
    terms = ctx.terms[p.market_id]
    penalty = mm.mul_wad_up(notional, terms.penalty_wad)
    cost = penalty + mm.mul_wad_up(notional, terms.close_fee_wad)
    fraction = mm.liquidation_fraction_up(h.equity_usd, h.maintenance_usd, cost)
    reward = mm.mul_wad_down(mm.mul_wad_down(penalty, fraction), terms.keeper_share_wad)
    return Liquidation(
        action, reward / WAD, {p.market_id: mm.mul_wad_up(notional, fraction)}, GAS_ISOLATED
    )


def cross_liquidation(snap: Snapshot, ctx: AgentContext, account: str) -> Liquidation:
    """As the vault does: one fraction for the whole account, from the penalty of closing it all."""
    action = LiquidateCross(account)
    acct = snap.cross.get(account)
    if acct is None:
        return Liquidation(action, 0.0, {}, GAS_CROSS)
    penalties, notionals, costs = {}, {}, 0
    for mid, (size, _) in acct.positions.items():
        terms = ctx.terms[mid]
        notional = notionals[mid] = mm.notional_usd_up(size, snap.market(mid).price_wad or 0)
        penalties[mid] = mm.mul_wad_up(notional, terms.penalty_wad)
        costs += penalties[mid] + mm.mul_wad_up(notional, terms.close_fee_wad)
    fraction = mm.liquidation_fraction_up(acct.equity_usd, acct.maintenance_usd, costs)
    reward = sum(
        mm.mul_wad_down(mm.mul_wad_down(p, fraction), ctx.terms[m].keeper_share_wad)
        for m, p in penalties.items()
    )
    gain = sale_gain_usd(snap, ctx, acct, fraction, sum(penalties.values()))
    closes = {m: mm.mul_wad_up(n, fraction) for m, n in notionals.items()}
    return Liquidation(action, (reward + gain) / WAD, closes, GAS_CROSS)


def sale_gain_usd(
    snap: Snapshot, ctx: AgentContext, acct: CrossView, fraction: int, penalty_usd: int
) -> int:
    """What buying the account's collateral at the sale discount is worth to the keeper, USD wad: the
    quote the liquidation lacks (the closed part's loss and penalty beyond the quote balance), bought
    at `discount` under the oracle price, capped by the collateral's weighted value (equity less quote
    and PnL: a lower bound of its value)."""
    d = ctx.collateral_discount_wad
    if not d:
        return 0
    pnl = sum(
        mm.pnl_usd_floor(size, entry, snap.market(m).price_wad or 0)
        for m, (size, entry) in acct.positions.items()
    ) + sum(acct.funding_usd.values())
    quote_usd = mm.quote_to_usd_down(acct.balance_quote, 6, snap.quote_price_wad)
    owed = mm.mul_wad_up(max(0, -pnl) + penalty_usd, fraction)
    weighted = acct.equity_usd - quote_usd - pnl
    needed = min(max(0, owed - quote_usd), max(0, weighted))
    return mm.mul_div_down(needed, d, WAD - d)


class Keeper(Agent):
    """Scans once per block (the lens's paged scan, read in the engine's batch), waits `latency_blocks`,
    then liquidates what it saw if the expected reward beats gas at the block's base fee, in the scan's
    order (isolated, then cross), no more per block than a market's liquidation cap lets through."""

    Config = KeeperConfig

    def __init__(self, config: KeeperConfig, address: str, ctx: AgentContext):
        super().__init__(config, address, ctx)
        self.cfg = config
        self.skipped_unprofitable = 0
        self.queued = 0
        """Targets left for a later block because the market's liquidation cap was used up."""
        self._last_try: dict[str, int] = {}

    def decide(self, obs: Observation) -> list[Action]:
        block, seen, now = obs.block, obs.seen, obs.snapshot
        if any(w.contains(block) for w in self.cfg.outages):
            return []
        eth = (
            now.market(self.ctx.eth_market_id).price_wad
            or seen.market(self.ctx.eth_market_id).price_wad
        )
        fee = int(self.cfg.priority_fee_gwei * GWEI)
        gas_price = now.base_fee_wei + fee
        out: list[Action] = []
        room = {
            m: t.liquidation_cap_usd for m, t in self.ctx.terms.items() if t.liquidation_cap_usd
        }
        for liq in liquidations(seen, self.ctx):
            if block - self._last_try.get(liq.target, -(10**9)) <= self.cfg.latency_blocks:
                continue  # already sent; its outcome is not visible yet
            cost_usd = liq.gas * gas_price * (eth or 0) / WAD / WAD
            if liq.reward_usd - cost_usd < self.cfg.min_profit_usd:
                self.skipped_unprofitable += 1
                continue
            capped = [m for m in liq.closes_usd if m in room]
            if any(room[m] <= 0 for m in capped):
                self.queued += 1  # the cap is used up in one of its markets: next block
                continue
            for m in capped:  # one that does not fit whole still goes: the vault closes what fits
                room[m] -= liq.closes_usd[m]
            self._last_try[liq.target] = block
            out.append(replace(liq.action, gas=3 * liq.gas, priority_fee_wei=fee))
        return out
