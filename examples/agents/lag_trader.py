"""Buys when the market runs ahead of the oracle; sells once the oracle has caught up."""

from pydantic import Field

from simulation import api


class LagConfig(api.AgentConfig):
    market: str = "ETH-USD"
    edge: float = Field(0.003, gt=0, lt=0.5)
    """Opens when the market is this far above the oracle (a fraction)."""
    notional_usd: float = Field(50_000, gt=0)
    leverage: float = Field(5, ge=1, le=20)


class LagTrader(api.Agent):
    Config = LagConfig

    def decide(self, obs: api.Observation) -> list[api.Action]:
        cfg = self.config
        assert isinstance(cfg, LagConfig)
        view = obs.snapshot.market(self.ctx.markets[cfg.market])
        if view.price_wad is None:
            return []  # a stale oracle: the vault refuses trades
        oracle, market = view.price_wad / api.WAD, obs.prices_usd[-1][view.symbol]
        mine = [p for p in obs.snapshot.positions.values() if p.owner == self.address]
        if mine:  # the oracle has caught up: take the gain
            caught_up = market <= oracle * (1 + cfg.edge / 4)
            return [api.CloseIsolated(p.position_id) for p in mine] if caught_up else []
        if market > oracle * (1 + cfg.edge):
            size_wad = int(cfg.notional_usd / oracle * api.WAD)
            margin_quote = int(cfg.notional_usd / cfg.leverage * api.USDC)
            return [api.OpenIsolated(view.market_id, size_wad, margin_quote)]
        return []
