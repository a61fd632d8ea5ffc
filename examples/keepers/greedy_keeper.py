"""A greedy keeper: every block, it liquidates everything the scan lists, the largest notional first,
with no profit rule and no memory of what it already sent. Written only against simulation.api."""

from __future__ import annotations

from dataclasses import replace

from pydantic import Field

from simulation.api import GWEI, Action, Agent, AgentConfig, Observation, liquidations


class GreedyConfig(AgentConfig):
    priority_fee_gwei: float = Field(2.0, ge=0, le=10_000)
    """One bid for every liquidation."""
    max_per_block: int = Field(10, ge=1, le=1_000)
    """Liquidations it sends in a block at most (the largest ones)."""


class GreedyKeeper(Agent):
    Config = GreedyConfig

    def decide(self, obs: Observation) -> list[Action]:
        cfg = self.config
        assert isinstance(cfg, GreedyConfig)
        found = sorted(liquidations(obs.seen, self.ctx), key=lambda liq: -liq.notional_usd)
        fee = int(cfg.priority_fee_gwei * GWEI)
        # the block orders equal bids as the list is: largest first
        return [
            replace(liq.action, priority_fee_wei=fee, gas=3 * liq.gas)
            for liq in found[: cfg.max_per_block]
        ]
