"""Liquidity providers: fund the pool before the run, may withdraw when its share price draws down.

A withdrawal takes LPPool's two steps: `requestRedeem` escrows the shares, `claimRedeem` pays them once the
pool's exit delay has passed (at the lower of their value at both times); with no delay the claim goes
in the next block."""

from __future__ import annotations

from simulation.actions import Action, LpClaimRedeem, LpRequestRedeem
from simulation.agents.base import Agent, Observation
from simulation.scenario import LpGroup
from simulation.state import NO_LP


class LiquidityProvider(Agent):
    def __init__(self, name: str, address: str, cfg: LpGroup):
        self.name, self.address, self.cfg = name, address, cfg
        self.peak_share_price = 0.0
        self.withdrawn = False

    def decide(self, obs: Observation) -> list[Action]:
        snap = obs.snapshot
        if snap.pool_supply_shares == 0:
            return []
        lp = snap.lp_shares.get(self.address, NO_LP)
        if lp.claimable(snap.timestamp_s):
            return [LpClaimRedeem()]
        price = snap.pool_assets_quote / snap.pool_supply_shares
        self.peak_share_price = max(self.peak_share_price, price)
        limit = self.cfg.withdraw_on_drawdown
        if limit is None or self.withdrawn or price > self.peak_share_price * (1 - limit):
            return []
        amount = min(int(lp.held_shares * self.cfg.withdraw_fraction), lp.requestable_shares)
        if amount <= 0:
            return []
        self.withdrawn = True
        return [LpRequestRedeem(amount)]
