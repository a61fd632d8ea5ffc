"""What agents see (a frozen snapshot of the chain after a block) and what they return (transactions)."""

from __future__ import annotations

from dataclasses import dataclass, field

from simulation.units import GWEI


@dataclass(frozen=True)
class Tx:
    """One transaction an agent wants sent in the next block."""

    agent: str
    kind: str
    """open_isolated, close_isolated, add_margin, deposit, trade_cross, liquidate_isolated, ..."""
    sender: str
    to: str
    data: str
    gas: int
    priority_fee_wei: int = 1 * GWEI
    target: str = ""
    """What a keeper's liquidation aims at: iso:<id> or cross:<address>; used to count lost races."""


@dataclass(frozen=True)
class MarketView:
    """A market after the block: oracle price and effective ratios (None while the oracle is stale)."""

    market_id: int
    name: str
    symbol: str
    price_wad: int | None
    initial_ratio_wad: int | None
    maintenance_ratio_wad: int | None
    oi_long: int
    oi_short: int


@dataclass(frozen=True)
class IsolatedView:
    position_id: int
    owner: str
    market_id: int
    size: int
    margin: int
    entry_price_wad: int


@dataclass(frozen=True)
class CrossView:
    """A cross account of an agent: its health (USD wad) and per-market positions (size, entry)."""

    equity_usd: int
    initial_usd: int
    maintenance_usd: int
    positions: dict[int, tuple[int, int]]
    quote_balance: int


@dataclass(frozen=True)
class LpView:
    """An address's LP shares after the block (LPPool's two-step exit)."""

    held: int
    """Shares in its wallet."""
    requestable: int
    """Shares it may put in an exit request now (`maxRequestRedeem`: 0 while locked or pending)."""
    pending: int = 0
    """Shares escrowed by its pending exit."""
    pending_assets: int = 0
    """Their value at the request, quote tokens: the most the claim pays."""
    ready_at: int = 0
    """When the pending exit can be claimed (unix seconds)."""

    def claimable(self, timestamp: int) -> bool:
        return self.pending > 0 and timestamp >= self.ready_at


NO_LP = LpView(0, 0)


@dataclass(frozen=True)
class WalletView:
    """What an adversary's address holds after the block (read only for adversaries)."""

    tokens: dict[str, int]
    """Wallet balance per token symbol (USDC, WETH, WBTC), in the token's decimals."""
    collateral: dict[str, int]
    """Cross-account collateral in the vault per token symbol (USDC included)."""
    lp: LpView
    claimable_quote: int
    """Quote tokens full liquidations left it (`vault.claimableQuote`)."""


@dataclass(frozen=True)
class Snapshot:
    """Chain state after block `block`, read in one batched request."""

    block: int
    timestamp: int
    base_fee_wei: int
    markets: tuple[MarketView, ...]
    oracle_rounds: dict[str, tuple[int, int]]
    """Per asset symbol: (answer, updatedAt) of the feed's latest round."""
    positions: dict[int, IsolatedView]
    cross: dict[str, CrossView]
    liquidatable_isolated: tuple[int, ...]
    liquidatable_cross: tuple[str, ...]
    pool_total_assets: int
    pool_total_supply: int
    pool_cash: int
    insurance_balance: int
    lp_shares: dict[str, LpView] = field(default_factory=dict)
    """Per LP agent's address: its shares."""
    wallets: dict[str, WalletView] = field(default_factory=dict)
    """Per adversary address: what it holds (empty without adversaries)."""
    trading_liquidity: int = 0
    """`LPPool.tradingLiquidity()`, quote tokens (read only with adversaries)."""

    def market(self, market_id: int) -> MarketView:
        return self.markets[market_id]
