"""Adversaries' PnL: pure functions over snapshots and receipts, apart from the agents' behaviour.

Value of a set of addresses (marked to market at the latest oracle round of each asset): wallet
tokens, LP shares at `convertToAssets`, isolated positions at equity (margin + PnL), cross accounts
(quote, collateral, PnL), and the vault's claimable remainders. PnL = value now - value at the start -
gas paid (gas used x the effective gas price, in USD at the ETH round of the block it was paid in)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from simulation import margin_math as mm
from simulation.state import Snapshot, WalletView
from simulation.units import WAD

DECIMALS = {"USDC": 6, "WETH": 18, "WBTC": 8}
TOKEN_SYMBOL = {"WETH": "ETH", "WBTC": "BTC"}
SHARE_OFFSET = 10**6
"""LPPool's virtual shares (decimals offset 6)."""


def oracle_price_wad(snap: Snapshot, symbol: str) -> int:
    """The feed's latest answer (8 decimals) as wad; the last known price even while stale."""
    return snap.oracle_rounds[symbol][0] * 10**10


def quote_usd(snap: Snapshot, amount: int) -> float:
    """Quote tokens in USD at the quote's price (the vault's: its feed's, or par)."""
    return (
        amount * snap.quote_price_wad / (10**6 * WAD)
    )  # one rounding: at par, amount / 1e6 exactly


def token_value_usd(snap: Snapshot, token: str, amount: int) -> float:
    if token == "USDC":
        return quote_usd(snap, amount)
    price = oracle_price_wad(snap, TOKEN_SYMBOL[token])
    return amount * price / 10 ** DECIMALS[token] / WAD


def lp_value_usd(snap: Snapshot, shares: int) -> float:
    """ERC-4626 `convertToAssets` (rounded down) in USD."""
    assets = shares * (snap.pool_assets_quote + 1) // (snap.pool_supply_shares + SHARE_OFFSET)
    return quote_usd(snap, assets)


def wallet_value_usd(snap: Snapshot, w: WalletView) -> float:
    """Tokens, collateral, LP shares held, a pending exit at what its claim would pay now (the lower of
    its value at the request and now), and claimable remainders."""
    tokens = sum(token_value_usd(snap, t, a) for t, a in w.tokens_units.items())
    collateral = sum(token_value_usd(snap, t, a) for t, a in w.collateral_units.items())
    exit_usd = min(quote_usd(snap, w.lp.pending_quote), lp_value_usd(snap, w.lp.pending_shares))
    return (
        tokens
        + collateral
        + lp_value_usd(snap, w.lp.held_shares)
        + exit_usd
        + quote_usd(snap, w.claimable_quote)
    )


def positions_value_usd(snap: Snapshot, addresses: Iterable[str]) -> float:
    """Isolated positions at margin + PnL and cross positions at PnL (their quote is collateral)."""
    owners = set(addresses)
    total = 0
    for p in snap.positions.values():
        if p.owner in owners:
            price = oracle_price_wad(snap, snap.market(p.market_id).symbol)
            total += p.margin_and_funding_usd + mm.pnl_usd_floor(
                p.size_wad, p.entry_price_wad, price
            )
    for owner in owners & set(snap.cross):
        acct = snap.cross[owner]
        for mid, (size, entry) in acct.positions.items():
            price = oracle_price_wad(snap, snap.market(mid).symbol)
            total += mm.pnl_usd_floor(size, entry, price) + acct.funding_usd.get(mid, 0)
    return total / WAD


def holdings_usd(snap: Snapshot, addresses: Iterable[str]) -> float:
    """What the addresses hold together, USD (wallets must be in the snapshot)."""
    addresses = tuple(addresses)
    wallets = sum(wallet_value_usd(snap, snap.wallets[a]) for a in addresses if a in snap.wallets)
    return wallets + positions_value_usd(snap, addresses)


def gas_usd(receipt: Mapping[str, Any], eth_price_wad: int) -> float:
    """What a transaction paid for gas (reverted or not), USD."""
    wei = int(receipt["gasUsed"], 16) * int(receipt.get("effectiveGasPrice", "0x0"), 16)
    return wei * eth_price_wad / WAD / WAD


def pnl_usd(
    start_usd: float, now: Snapshot, addresses: Iterable[str], gas_paid_usd: float
) -> float:
    """PnL after gas against what the addresses held at the start (`holdings_usd` of the start)."""
    return holdings_usd(now, addresses) - start_usd - gas_paid_usd
