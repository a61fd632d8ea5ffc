"""A gas-aware keeper: it bids, per liquidation, a priority fee that spends a set share of the expected
reward on gas, and skips what the base fee alone makes unprofitable. Written only against
simulation.api."""

from __future__ import annotations

from dataclasses import replace

from pydantic import Field

from simulation.api import (
    GWEI,
    WAD,
    Action,
    Agent,
    AgentConfig,
    AgentContext,
    Observation,
    liquidations,
)


class GasAwareConfig(AgentConfig):
    bid_share: float = Field(0.5, gt=0, lt=1)
    """Share of the expected reward it will pay in gas (base fee and tip) to win the liquidation."""
    max_priority_fee_gwei: float = Field(1_000, ge=0, le=10_000)
    """The highest tip it bids, whatever the reward."""
    min_profit_usd: float = Field(0.0, ge=0)
    """Skips a liquidation whose reward less its gas at the bid is below this."""


class GasAwareKeeper(Agent):
    Config = GasAwareConfig

    def __init__(self, config: GasAwareConfig, address: str, ctx: AgentContext) -> None:
        super().__init__(config, address, ctx)
        self.sent: dict[str, int] = {}
        """Target -> block it was last sent in: not sent again before its outcome can be seen."""

    def decide(self, obs: Observation) -> list[Action]:
        cfg = self.config
        assert isinstance(cfg, GasAwareConfig)
        snap = obs.snapshot
        eth_wad = snap.market(self.ctx.eth_market_id).price_wad
        if not eth_wad:
            return []  # no ETH price: gas cannot be valued
        out: list[Action] = []
        for liq in liquidations(obs.seen, self.ctx):
            if obs.block - self.sent.get(liq.target, -(10**9)) <= cfg.latency_blocks:
                continue
            # the gas price at which the budgeted gas costs bid_share of the reward, in wei per gas
            price_wei = int(cfg.bid_share * liq.reward_usd * WAD * WAD / (liq.gas * eth_wad))
            tip = min(price_wei - snap.base_fee_wei, int(cfg.max_priority_fee_gwei * GWEI))
            if tip <= 0:
                continue  # the base fee alone costs more than the share it would spend
            if liq.reward_usd - liq.gas_cost_usd(snap, self.ctx, tip) < cfg.min_profit_usd:
                continue
            self.sent[liq.target] = obs.block
            out.append(replace(liq.action, priority_fee_wei=tip, gas=3 * liq.gas))
        return out
