"""The agent API's parts: what an agent sees (an Observation of frozen snapshots), what it knows of the
deployment (AgentContext), what every agent is (Agent), and the transaction the engine makes of each of
its actions (Tx). The public face of all of it is `simulation.api`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from simulation.scenario import AgentConfig
from simulation.state import Snapshot
from simulation.units import GWEI

if TYPE_CHECKING:
    from simulation.actions import Action


@dataclass(frozen=True)
class Tx:
    """One transaction an agent wants sent in the next block (the engine encodes it from an action)."""

    agent: str
    kind: str
    """open_isolated, close, add_margin, deposit, trade_cross, liquidate_isolated, ... (or its label)"""
    sender: str
    to: str
    data: str
    gas: int
    priority_fee_wei: int = 1 * GWEI
    target: str = ""
    """What a keeper's liquidation aims at: iso:<id> or cross:<address>; used to count lost races."""


@dataclass(frozen=True)
class MarketTerms:
    """A market's fee and liquidation parameters, as the vault stores them."""

    spread_wad: int
    min_fee_wad: int
    impact_wad: int
    penalty_wad: int
    """Liquidation penalty, a fraction of the closed notional."""
    keeper_share_wad: int
    """The keeper's share of the penalty."""
    min_notional_usd: int
    """USD wad: a partial liquidation that would leave less closes the whole position."""
    liquidation_cap_usd: int = 0
    """Most notional (USD wad) liquidations may close in the market in one block; 0: no cap."""

    @property
    def close_fee_wad(self) -> int:
        """What a close pays as a fraction of price, impact left out: max(spread, fee floor)."""
        return max(self.spread_wad, self.min_fee_wad)


@dataclass(frozen=True)
class AgentContext:
    """What an agent knows of the deployment, read once at set-up."""

    markets: Mapping[str, int]
    """Market name (ETH-USD, BTC-USD) -> market id."""
    terms: Mapping[int, MarketTerms]
    """Market id -> its fee and liquidation terms."""
    contracts: Mapping[str, str]
    """Contract name (MarginVault, LPPool, USDC, WETH, WBTC, ...) -> address."""
    block_time_s: int
    seed: int = 0
    """The agent's own seed, derived from the scenario's seed and its name."""
    collateral_discount_wad: int = 0
    """The smallest liquidation discount of the cross collateral tokens: a cross liquidation whose quote
    balance cannot pay sells collateral to the keeper at the oracle price less it."""
    liquidation_at_fill_price: bool = False
    """The vault's self-liquidation defence: liquidations settle at the close's fill price."""
    quote_at_feed: bool = False
    """The vault values the quote token at its feed (else at par)."""

    @property
    def eth_market_id(self) -> int:
        """The ETH market: gas is paid in ETH, so its price turns gas into USD."""
        return self.markets["ETH-USD"]


@dataclass(frozen=True)
class Observation:
    """What an agent sees when it decides for block `block`."""

    block: int
    """The block being built: the actions land in it."""
    timestamp_s: int
    """Its timestamp."""
    snapshot: Snapshot
    """The chain after the last mined block (block - 1)."""
    seen: Snapshot
    """The chain as the agent saw it `latency_blocks` (its config's) ago; `snapshot` for no latency."""
    prices_usd: Sequence[Mapping[str, float]]
    """The market price of each asset (ETH, BTC, ...) at every block so far, up to this one: the price
    the oracle feeds follow, under their deviation and heartbeat rules."""

    @property
    def base_fee_wei(self) -> int:
        return self.snapshot.base_fee_wei


class Agent:
    """An agent: a policy from an Observation to actions. The engine builds it once, with its validated
    config, its address and the deployment's context, then calls `decide` every block and sends what it
    returns. A plugin subclasses it, and may give its own `Config` (a subclass of AgentConfig)."""

    Config: ClassVar[type[AgentConfig]] = AgentConfig
    latency_blocks: int = 0
    """How old `Observation.seen` is (its config's `latency_blocks`)."""

    def __init__(self, config: AgentConfig, address: str, ctx: AgentContext):
        self.config, self.address, self.ctx = config, address, ctx
        self.name, self.latency_blocks = config.name, config.latency_blocks

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every address it sends from (its first is `address`)."""
        return (self.address,)

    def decide(self, obs: Observation) -> Sequence[Action]:
        raise NotImplementedError
