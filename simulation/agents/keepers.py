"""Keepers: competing liquidation bots with a reaction latency, a priority-fee bid and a profit rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from simulation import margin_math as mm
from simulation.abi import ContractAbi
from simulation.agents.base import Tx
from simulation.scenario import KeeperConfig
from simulation.state import CrossView, Snapshot
from simulation.units import GWEI, WAD

GAS_ISOLATED = 200_000
"""Gas a keeper budgets for an isolated liquidation (measured: 146k-164k, benchmarks/gas.py)."""
GAS_CROSS = 320_000
"""Gas a keeper budgets for a cross liquidation (measured: 223k with two markets and a sale)."""


@dataclass(frozen=True)
class KeeperContext:
    vault: str
    vault_abi: ContractAbi
    penalty_wad: dict[int, int]
    """Liquidation penalty per market id."""
    keeper_share_wad: dict[int, int]
    eth_market: int
    close_fee_wad: dict[int, int]
    """Per market, what a close pays as a fraction of price, impact left out: max(spread, fee floor). A
    liquidation closes at that fill, so the vault leaves room for it when it sizes a partial liquidation."""
    collateral_discount_wad: int = 0
    """The smallest liquidation discount of the cross collateral tokens: a cross liquidation whose quote
    balance cannot pay sells collateral to the keeper at the oracle price less it, a gain on top of the
    reward (which may exceed the penalty); the model counts it (sale_gain_usd)."""
    liquidation_cap_usd: Mapping[int, int] = field(default_factory=dict)
    """Per market with a per-block cap on liquidated notional (USD wad): the keeper sends no more than
    fits in a block; what does not fit waits (the queue) for the next."""


class Keeper:
    """Scans once per block (the lens's paged scan, read in the engine's batch), waits `latency_blocks`,
    then liquidates what it saw if the expected reward beats gas at the block's base fee."""

    def __init__(self, cfg: KeeperConfig, address: str, ctx: KeeperContext):
        self.cfg, self.address, self.ctx = cfg, address, ctx
        self.name = cfg.name
        self.skipped_unprofitable = 0
        self.queued = 0
        """Targets left for a later block because the market's liquidation cap was used up."""
        self._last_try: dict[str, int] = {}

    def decide(self, block: int, seen: Snapshot, now: Snapshot) -> list[Tx]:
        """`seen` is the snapshot `latency_blocks` old; `now` the latest (for the base fee)."""
        if any(w.contains(block) for w in self.cfg.outages):
            return []
        eth = (
            now.market(self.ctx.eth_market).price_wad
            or seen.market(self.ctx.eth_market).price_wad
            or 0
        )
        fee = int(self.cfg.priority_fee_gwei * GWEI)
        gas_price = now.base_fee_wei + fee
        txs = []
        targets = [
            (f"iso:{pid}", GAS_ISOLATED, *self._reward_isolated(seen, pid))
            for pid in seen.liquidatable_isolated
        ]
        targets += [
            (f"cross:{a}", GAS_CROSS, *self._reward_cross(seen, a)) for a in seen.liquidatable_cross
        ]
        room = dict(self.ctx.liquidation_cap_usd)  # a fresh block: every capped market's whole cap
        for target, gas, reward_usd, closes in targets:
            if block - self._last_try.get(target, -(10**9)) <= self.cfg.latency_blocks:
                continue  # already sent; its outcome is not visible yet
            cost_usd = gas * gas_price * eth / WAD / WAD
            if reward_usd - cost_usd < self.cfg.min_profit_usd:
                self.skipped_unprofitable += 1
                continue
            capped = [m for m in closes if m in room]
            if any(room[m] <= 0 for m in capped):
                self.queued += 1  # the cap is used up in one of its markets: next block
                continue
            for m in capped:  # one that does not fit whole still goes: the vault closes what fits
                room[m] -= closes[m]
            self._last_try[target] = block
            kind, arg = target.split(":")
            fn = "liquidateIsolated" if kind == "iso" else "liquidateCross"
            data = self.ctx.vault_abi[fn].calldata(int(arg) if kind == "iso" else arg)
            txs.append(
                Tx(
                    self.name,
                    f"liquidate_{'isolated' if kind == 'iso' else 'cross'}",
                    self.address,
                    self.ctx.vault,
                    data,
                    3 * gas,
                    fee,
                    target,
                )
            )
        return txs

    def _reward_isolated(self, snap: Snapshot, pid: int) -> tuple[float, dict[int, int]]:
        """Expected reward (USD) and the notional (USD wad) the liquidation would close per market."""
        p = snap.positions.get(pid)
        view = snap.market(p.market_id) if p else None
        h = view.health(p.margin_and_funding_usd, p.size, p.entry_price_wad) if p and view else None
        if p is None or view is None or h is None or view.price_wad is None:
            return 0.0, {}
        notional = mm.notional_usd_up(p.size, view.price_wad)
        reward, fraction = self._reward(p.market_id, notional, h.equity_usd, h.maintenance_usd)
        return reward, {p.market_id: mm.mul_wad_up(notional, fraction)}

    def _reward_cross(self, snap: Snapshot, account: str) -> tuple[float, dict[int, int]]:
        """As the vault does: one fraction for the whole account, from the penalty of closing it all."""
        acct = snap.cross.get(account)
        if acct is None:
            return 0.0, {}
        penalties, notionals, costs = {}, {}, 0
        for mid, (size, _) in acct.positions.items():
            notional = notionals[mid] = mm.notional_usd_up(size, snap.market(mid).price_wad or 0)
            penalties[mid] = mm.mul_wad_up(notional, self.ctx.penalty_wad[mid])
            costs += penalties[mid] + mm.mul_wad_up(notional, self.ctx.close_fee_wad[mid])
        fraction = mm.liquidation_fraction_up(acct.equity_usd, acct.maintenance_usd, costs)
        reward = sum(
            mm.mul_wad_down(mm.mul_wad_down(p, fraction), self.ctx.keeper_share_wad[m])
            for m, p in penalties.items()
        )
        gain = self.sale_gain_usd(snap, acct, fraction, sum(penalties.values()))
        return (reward + gain) / WAD, {m: mm.mul_wad_up(n, fraction) for m, n in notionals.items()}

    def sale_gain_usd(
        self, snap: Snapshot, acct: CrossView, fraction: int, penalty_usd: int
    ) -> int:
        """What buying the account's collateral at the sale discount is worth to the keeper, USD wad: the
        quote the liquidation lacks (the closed part's loss and penalty beyond the quote balance), bought
        at `discount` under the oracle price, capped by the collateral's weighted value (equity less quote
        and PnL: a lower bound of its value)."""
        if not self.ctx.collateral_discount_wad:
            return 0
        pnl = sum(
            mm.pnl_usd_floor(size, entry, snap.market(m).price_wad or 0)
            for m, (size, entry) in acct.positions.items()
        ) + sum(acct.funding_usd.values())
        quote_usd = mm.quote_to_usd_down(acct.quote_balance, 6, snap.quote_price_wad)
        owed = mm.mul_wad_up(max(0, -pnl) + penalty_usd, fraction)
        weighted = acct.equity_usd - quote_usd - pnl
        needed = min(max(0, owed - quote_usd), max(0, weighted))
        d = self.ctx.collateral_discount_wad
        return mm.mul_div_down(needed, d, WAD - d)

    def _reward(
        self, mid: int, notional_usd: int, equity_usd: int, maintenance_usd: int
    ) -> tuple[float, int]:
        """Expected reward (USD) and the fraction of the position the vault would close (wad)."""
        penalty = mm.mul_wad_up(notional_usd, self.ctx.penalty_wad[mid])
        cost = penalty + mm.mul_wad_up(notional_usd, self.ctx.close_fee_wad[mid])
        fraction = mm.liquidation_fraction_up(equity_usd, maintenance_usd, cost)
        reward = mm.mul_wad_down(mm.mul_wad_down(penalty, fraction), self.ctx.keeper_share_wad[mid])
        return reward / WAD, fraction
