"""Liquidity providers: fund the pool before the run, may withdraw when its share price draws down."""

from __future__ import annotations

from simulation.abi import ContractAbi
from simulation.agents.base import Snapshot, Tx
from simulation.scenario import LpGroup


class LiquidityProvider:
    def __init__(self, name: str, address: str, cfg: LpGroup, pool: str, pool_abi: ContractAbi):
        self.name, self.address, self.cfg = name, address, cfg
        self.pool, self._redeem = pool, pool_abi["redeem"]
        self.peak_share_price = 0.0
        self.withdrawn = False

    def decide(self, snap: Snapshot) -> list[Tx]:
        if snap.pool_total_supply == 0:
            return []
        price = snap.pool_total_assets / snap.pool_total_supply
        self.peak_share_price = max(self.peak_share_price, price)
        limit = self.cfg.withdraw_on_drawdown
        if limit is None or self.withdrawn or price > self.peak_share_price * (1 - limit):
            return []
        shares, redeemable = snap.lp_shares.get(self.address, (0, 0))
        amount = min(int(shares * self.cfg.withdraw_fraction), redeemable)
        if amount <= 0:
            return []
        self.withdrawn = True
        data = self._redeem.calldata(amount, self.address, self.address)
        return [Tx(self.name, "lp_withdraw", self.address, self.pool, data, 400_000)]
