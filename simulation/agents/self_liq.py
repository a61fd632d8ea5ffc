"""What closing an isolated position and liquidating it would leave its owner (with the liquidator's
reward), computed as MarginVault / MarginLiquidator do, with the reference margin math: the self-liquidator
compares the two. USD wad throughout; the liquidity is the pool's trading liquidity in USD wad."""

from __future__ import annotations

from typing import TYPE_CHECKING

from simulation import margin_math as mm
from simulation.state import IsolatedView, MarketView
from simulation.units import WAD

if TYPE_CHECKING:
    from simulation.agents.base import MarketTerms

QUOTE_DECIMALS = 6
USDC_TO_USD = 10**12


def fee_fraction(terms: MarketTerms, price_wad: int, size: int, liquidity_usd: int) -> int:
    notional = mm.notional_usd_up(size, price_wad)
    return mm.trade_fee_fraction_up(
        terms.spread_wad, terms.min_fee_wad, terms.impact_wad, notional, liquidity_usd
    )


def close_value_usd(
    p: IsolatedView, view: MarketView, terms: MarketTerms, liquidity_usd: int
) -> int:
    """Margin plus PnL at the fill price of closing the position at once, plus the funding accrued (a
    close realises it): what a close pays."""
    assert view.price_wad is not None
    fill = mm.fill_price_against_trader(
        view.price_wad, -p.size_wad, fee_fraction(terms, view.price_wad, p.size_wad, liquidity_usd)
    )
    return p.margin_and_funding_usd + mm.pnl_usd_floor(p.size_wad, p.entry_price_wad, fill)


def _plan(
    p: IsolatedView,
    view: MarketView,
    terms: MarketTerms,
    liquidity_usd: int,
    at_fill: bool,
    fraction: int,
) -> tuple[int, int, int]:
    """(close size, realised PnL USD, penalty USD) of closing `fraction` as `_planIsolated` does: the
    whole position's accrued funding is realised with it."""
    assert view.price_wad is not None
    price = view.price_wad
    close = p.size_wad if fraction >= WAD else mm.scale_size_up(p.size_wad, fraction)
    if (
        close != p.size_wad
        and mm.notional_usd_down(p.size_wad - close, price) < terms.min_notional_usd
    ):
        close = p.size_wad
    fill = (
        mm.fill_price_against_trader(
            price, -close, fee_fraction(terms, price, close, liquidity_usd)
        )
        if at_fill
        else price
    )
    penalty = mm.mul_wad_up(mm.notional_usd_up(close, price), terms.penalty_wad)
    return close, p.funding_usd + mm.pnl_usd_floor(close, p.entry_price_wad, fill), penalty


def _settle(
    margin: int, pnl_usd: int, penalty_usd: int, share: int, at_fill: bool
) -> tuple[int, int, bool]:
    """(keeper reward, owner's remaining, shortfall?) in quote tokens, as `_settlementTerms`."""
    pnl = mm.signed_usd_to_quote_floor(pnl_usd, QUOTE_DECIMALS)
    penalty = mm.usd_to_quote_up(penalty_usd, QUOTE_DECIMALS)
    reward = min(penalty, mm.usd_to_quote_down(mm.mul_wad_down(penalty_usd, share), QUOTE_DECIMALS))
    fee = penalty - reward
    equity = margin + pnl
    if at_fill and 0 <= equity < reward:
        reward = equity
    if equity >= reward + fee:
        return reward, equity - reward - fee, False
    return reward, 0, True


def liquidation_value_usd(
    p: IsolatedView, view: MarketView, terms: MarketTerms, liquidity_usd: int, at_fill: bool
) -> int:
    """The keeper's reward plus what the owner keeps, USD wad. A partial liquidation's rest stays open with
    the remaining margin: it is valued at its close right after."""
    h = view.health(p.margin_and_funding_usd, p.size_wad, p.entry_price_wad)
    assert h is not None and view.price_wad is not None
    notional = mm.notional_usd_up(p.size_wad, view.price_wad)
    fee = fee_fraction(terms, view.price_wad, p.size_wad, liquidity_usd) if at_fill else 0
    full_cost = mm.mul_wad_up(notional, terms.penalty_wad + fee)
    fraction = mm.liquidation_fraction_up(h.equity_usd, h.maintenance_usd, full_cost)
    close, pnl, penalty = _plan(p, view, terms, liquidity_usd, at_fill, fraction)
    reward, remaining, short = _settle(
        p.margin_quote, pnl, penalty, terms.keeper_share_wad, at_fill
    )
    if close != p.size_wad and short:
        close, pnl, penalty = _plan(p, view, terms, liquidity_usd, at_fill, WAD)
        reward, remaining, short = _settle(
            p.margin_quote, pnl, penalty, terms.keeper_share_wad, at_fill
        )
    if close == p.size_wad:
        return (reward + remaining) * USDC_TO_USD
    rest = IsolatedView(
        p.position_id, p.owner, p.market_id, p.size_wad - close, remaining, p.entry_price_wad
    )
    return reward * USDC_TO_USD + close_value_usd(rest, view, terms, liquidity_usd)
