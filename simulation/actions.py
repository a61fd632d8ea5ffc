"""What an agent returns: typed actions, one per transaction it wants in the next block. The engine encodes
and sends them (`Encoder`): an agent decides, it never builds calldata or sends.

Units are in the field names: `_wad` a signed or unsigned amount times 1e18 (sizes in units of the base
asset, prices in USD per unit), `_quote` the quote token's own units (USDC: 6 decimals), `_units` the named
token's own units, `_shares` LP shares (18 decimals), `_wei` wei."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from simulation.abi import ContractAbi
from simulation.agents.base import Tx
from simulation.units import GWEI


@dataclass(frozen=True, kw_only=True)
class Send:
    """How an action is sent: its fee bid, gas limit, sender and the label it is counted under."""

    priority_fee_wei: int = GWEI
    """The tip per gas: the block orders transactions by it, highest first."""
    gas: int = 0
    """Gas limit; 0: the action's default (`DEFAULT_GAS`)."""
    sender: str = ""
    """One of the agent's addresses; "": its first."""
    label: str = ""
    """What it is counted as in the outputs (reverts by kind, events' `kind`); "": the action's kind."""


# --------------------------------------------------------------------------- isolated margin


@dataclass(frozen=True)
class OpenIsolated(Send):
    """Open an isolated position: `size_wad` > 0 long, < 0 short, with `margin_quote` of margin."""

    market_id: int
    size_wad: int
    margin_quote: int


@dataclass(frozen=True)
class ModifyIsolated(Send):
    """Change an isolated position's size by `size_delta_wad` (its margin stays)."""

    position_id: int
    size_delta_wad: int


@dataclass(frozen=True)
class CloseIsolated(Send):
    position_id: int


@dataclass(frozen=True)
class AddMargin(Send):
    """Top up an isolated position's margin."""

    position_id: int
    amount_quote: int


@dataclass(frozen=True)
class RemoveMargin(Send):
    position_id: int
    amount_quote: int


# --------------------------------------------------------------------------- cross margin


@dataclass(frozen=True)
class Deposit(Send):
    """Deposit collateral into the sender's cross account: `token` is a symbol (USDC, WETH, WBTC)."""

    token: str
    amount_units: int


@dataclass(frozen=True)
class Withdraw(Send):
    token: str
    amount_units: int


@dataclass(frozen=True)
class TradeCross(Send):
    """Change the cross account's position in a market by `size_delta_wad` (opens, adds, reduces, closes)."""

    market_id: int
    size_delta_wad: int


# --------------------------------------------------------------------------- keepers


@dataclass(frozen=True)
class LiquidateIsolated(Send):
    position_id: int


@dataclass(frozen=True)
class LiquidateCross(Send):
    account: str


@dataclass(frozen=True)
class DeleverageIsolated(Send):
    """Auto-deleverage a profitable isolated position against a market's deficit (the protocol's bot)."""

    position_id: int


@dataclass(frozen=True)
class DeleverageCross(Send):
    account: str
    market_id: int


# --------------------------------------------------------------------------- the LP pool


@dataclass(frozen=True)
class LpDeposit(Send):
    """Deposit quote tokens into the LP pool for shares (to the sender)."""

    amount_quote: int


@dataclass(frozen=True)
class LpWithdraw(Send):
    """Withdraw `amount_quote` of the sender's pool assets at once (ERC-4626 `withdraw`)."""

    amount_quote: int


@dataclass(frozen=True)
class LpRequestRedeem(Send):
    """Ask to exit `shares` (the pool's two-step exit: escrowed now, claimed once its delay passed)."""

    shares: int


@dataclass(frozen=True)
class LpClaimRedeem(Send):
    """Claim the sender's pending exit once it is ready."""


# --------------------------------------------------------------------------- the oracle


@dataclass(frozen=True)
class OracleRound(Send):
    """A new round on the feed of `symbol` (ETH, BTC, USDC), in the feed's decimals."""

    symbol: str
    answer: int


@dataclass(frozen=True)
class CacheVolatility(Send):
    """Refresh the oracle adapter's volatility cache of the asset `symbol` prices."""

    symbol: str


Action = (
    OpenIsolated
    | ModifyIsolated
    | CloseIsolated
    | AddMargin
    | RemoveMargin
    | Deposit
    | Withdraw
    | TradeCross
    | LiquidateIsolated
    | LiquidateCross
    | DeleverageIsolated
    | DeleverageCross
    | LpDeposit
    | LpWithdraw
    | LpRequestRedeem
    | LpClaimRedeem
    | OracleRound
    | CacheVolatility
)

DEFAULT_GAS: dict[type, int] = {
    OpenIsolated: 700_000,
    ModifyIsolated: 700_000,
    CloseIsolated: 700_000,
    AddMargin: 200_000,
    RemoveMargin: 300_000,
    Deposit: 200_000,
    Withdraw: 300_000,
    TradeCross: 700_000,
    LiquidateIsolated: 600_000,
    LiquidateCross: 960_000,
    DeleverageIsolated: 600_000,
    DeleverageCross: 600_000,
    LpDeposit: 400_000,
    LpWithdraw: 400_000,
    LpRequestRedeem: 400_000,
    LpClaimRedeem: 400_000,
    OracleRound: 120_000,
    CacheVolatility: 400_000,
}
"""Gas limits when an action gives none: above what `benchmarks/gas.py` measures for each call."""

KIND: dict[type, str] = {
    OpenIsolated: "open_isolated",
    ModifyIsolated: "modify_isolated",
    CloseIsolated: "close",
    AddMargin: "add_margin",
    RemoveMargin: "remove_margin",
    Deposit: "deposit",
    Withdraw: "withdraw",
    TradeCross: "trade_cross",
    LiquidateIsolated: "liquidate_isolated",
    LiquidateCross: "liquidate_cross",
    DeleverageIsolated: "deleverage",
    DeleverageCross: "deleverage",
    LpDeposit: "lp_deposit",
    LpWithdraw: "lp_withdraw",
    LpRequestRedeem: "lp_withdraw",
    LpClaimRedeem: "lp_claim",
    OracleRound: "oracle_round",
    CacheVolatility: "cache_volatility",
}


def target(action: Action) -> str:
    """What a liquidation (or deleveraging) aims at, `iso:<id>` or `cross:<address>`: two keepers
    aiming at one target race, and the loser's revert counts as a lost race."""
    if isinstance(action, LiquidateIsolated | DeleverageIsolated):
        return f"iso:{action.position_id}"
    if isinstance(action, LiquidateCross | DeleverageCross):
        return f"cross:{action.account}"
    return ""


@dataclass(frozen=True)
class Encoder:
    """Encodes actions as transactions: the protocol's addresses and ABIs, read at set-up."""

    vault: str
    pool: str
    oracle: str
    vault_abi: ContractAbi
    pool_abi: ContractAbi
    oracle_abi: ContractAbi
    feed_abi: ContractAbi
    tokens: Mapping[str, str]
    """Token symbol -> address."""
    feeds: Mapping[str, str]
    """Feed symbol -> address."""
    assets: Mapping[str, str] = field(default_factory=dict)
    """Feed symbol -> the token it prices (the assets with a market)."""

    def call(self, action: Action) -> tuple[str, str]:
        """(to, calldata) of an action."""
        v = self.vault_abi
        match action:
            case OpenIsolated(market_id=m, size_wad=s, margin_quote=q):
                return self.vault, v["openIsolated"].calldata(m, s, q)
            case ModifyIsolated(position_id=i, size_delta_wad=s):
                return self.vault, v["modifyIsolated"].calldata(i, s)
            case CloseIsolated(position_id=i):
                return self.vault, v["closeIsolated"].calldata(i)
            case AddMargin(position_id=i, amount_quote=q):
                return self.vault, v["addIsolatedMargin"].calldata(i, q)
            case RemoveMargin(position_id=i, amount_quote=q):
                return self.vault, v["removeIsolatedMargin"].calldata(i, q)
            case Deposit(token=t, amount_units=a):
                return self.vault, v["depositCollateral"].calldata(self._token(t), a)
            case Withdraw(token=t, amount_units=a):
                return self.vault, v["withdrawCollateral"].calldata(self._token(t), a)
            case TradeCross(market_id=m, size_delta_wad=s):
                return self.vault, v["tradeCross"].calldata(m, s)
            case LiquidateIsolated(position_id=i):
                return self.vault, v["liquidateIsolated"].calldata(i)
            case LiquidateCross(account=a):
                return self.vault, v["liquidateCross"].calldata(a)
            case DeleverageIsolated(position_id=i):
                return self.vault, v["deleverageIsolated"].calldata(i)
            case DeleverageCross(account=a, market_id=m):
                return self.vault, v["deleverageCross"].calldata(a, m)
            case OracleRound(symbol=s, answer=a):
                update = self.feed_abi.functions.get("updateAnswer")
                if update is None or s not in self.feeds:
                    raise ValueError(f"no feed of {s!r} takes rounds here")
                return self.feeds[s], update.calldata(a)
            case CacheVolatility(symbol=s):
                return self.oracle, self.oracle_abi["cacheVolatility"].calldata(self.assets[s])
        raise TypeError(f"not an action: {action!r}")

    def _token(self, symbol: str) -> str:
        if symbol not in self.tokens:
            raise ValueError(f"unknown token {symbol!r} (one of {sorted(self.tokens)})")
        return self.tokens[symbol]

    def pool_call(self, action: Action, sender: str) -> tuple[str, str] | None:
        """The LP pool's actions, which name their sender as receiver and owner."""
        p = self.pool_abi
        match action:
            case LpDeposit(amount_quote=q):
                return self.pool, p["deposit"].calldata(q, sender)
            case LpWithdraw(amount_quote=q):
                return self.pool, p["withdraw"].calldata(q, sender, sender)
            case LpRequestRedeem(shares=s):
                return self.pool, p["requestRedeem"].calldata(s)
            case LpClaimRedeem():
                return self.pool, p["claimRedeem"].calldata(sender)
        return None

    def tx(self, agent: str, address: str, action: Action) -> Tx:
        """The transaction `agent` (first address `address`) sends for `action`."""
        sender = action.sender or address
        to, data = self.pool_call(action, sender) or self.call(action)
        return Tx(
            agent,
            action.label or KIND[type(action)],
            sender,
            to,
            data,
            action.gas or DEFAULT_GAS[type(action)],
            action.priority_fee_wei,
            target(action),
        )


ACTIONS: tuple[type, ...] = tuple(DEFAULT_GAS)


def describe(action: Action) -> dict[str, object]:
    """An action as a plain dict (its kind and fields), for logs and tests."""
    return {"kind": KIND[type(action)], **{f.name: getattr(action, f.name) for f in fields(action)}}
