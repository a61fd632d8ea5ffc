"""The agent API: everything a plugin agent is written against, and nothing else.

An agent is a class deriving from `Agent`. The engine builds it once as `Class(config, address, ctx)`:
its config validated by its `Config` model (an `AgentConfig` subclass), its dev account's address, and
the deployment's `AgentContext`. Every block it calls `decide(obs)` with an `Observation` (frozen
snapshots of the chain and the market's price history) and sends the actions it returns, encoded, from
the agent's address, in the next block. A scenario names the class (`class: package.module:Class`, or a
name registered in the `marginsim.agents` entry-point group) under `keepers:` (a keeper, counted in the
keeper table) or `agents:` (any other agent). docs/agents.md walks through an example.

Units are in the names: `_wad` times 1e18 (sizes in units of the base asset, prices in USD, ratios),
`_usd` USD times 1e18 in integers (USD as such in floats), `_quote` the quote token's units (USDC: 6
decimals), `_units` a named token's own units, `_wei` wei, `_s` seconds."""

from simulation.actions import (
    Action,
    AddMargin,
    CacheVolatility,
    CloseIsolated,
    Deposit,
    LiquidateCross,
    LiquidateIsolated,
    LpClaimRedeem,
    LpDeposit,
    LpRequestRedeem,
    LpWithdraw,
    ModifyIsolated,
    OpenIsolated,
    OracleRound,
    RemoveMargin,
    TradeCross,
    Withdraw,
)
from simulation.agents.base import Agent, AgentContext, MarketTerms, Observation
from simulation.agents.keepers import (
    Liquidation,
    cross_liquidation,
    isolated_liquidation,
    liquidations,
)
from simulation.scenario import AgentConfig
from simulation.state import CrossView, IsolatedView, LpView, MarketView, Snapshot, WalletView
from simulation.units import GWEI, USDC, WAD

__all__ = [
    "GWEI",
    "USDC",
    "WAD",
    "Action",
    "AddMargin",
    "Agent",
    "AgentConfig",
    "AgentContext",
    "CacheVolatility",
    "CloseIsolated",
    "CrossView",
    "Deposit",
    "IsolatedView",
    "LiquidateCross",
    "LiquidateIsolated",
    "Liquidation",
    "LpClaimRedeem",
    "LpDeposit",
    "LpRequestRedeem",
    "LpView",
    "LpWithdraw",
    "MarketTerms",
    "MarketView",
    "ModifyIsolated",
    "Observation",
    "OpenIsolated",
    "OracleRound",
    "RemoveMargin",
    "Snapshot",
    "TradeCross",
    "WalletView",
    "Withdraw",
    "cross_liquidation",
    "isolated_liquidation",
    "liquidations",
]
