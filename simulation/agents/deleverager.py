"""The protocol's auto-deleveraging bot. When a liquidation's bad debt goes past the insurance fund and the
LP pool's loss cap, the rest is owed by the profitable positions on the other side of the market
(`MarginVault.deleverageDeficit`); this bot, run by the protocol as GMX's ADL keepers are, reduces them in
the order Hyperliquid and Binance use: by profit times leverage, highest first."""

from __future__ import annotations

from dataclasses import dataclass

from simulation import margin_math as mm
from simulation.actions import Action, DeleverageCross, DeleverageIsolated
from simulation.agents.base import Agent, Observation
from simulation.state import MarketView, Snapshot

USDC_TO_USD = 10**12


@dataclass(frozen=True)
class Candidate:
    """A position the bot may deleverage: its ranking score, the action, and its profit (quote)."""

    score: float
    action: DeleverageIsolated | DeleverageCross
    target: str
    profit_quote: int


def candidates(snap: Snapshot, view: MarketView, long: bool) -> list[Candidate]:
    """Profitable positions on one side of a market, ranked as ADL queues rank: profit over equity times
    notional over equity (the most profitable and most levered first); ties in a fixed order."""
    assert view.price_wad is not None
    out = []
    for p in snap.positions.values():
        if p.market_id != view.market_id or (p.size_wad > 0) != long:
            continue
        pnl = mm.pnl_usd_floor(p.size_wad, p.entry_price_wad, view.price_wad)
        equity = p.margin_and_funding_usd + pnl
        if pnl <= 0 or equity <= 0:
            continue
        score = _score(pnl, mm.notional_usd_up(p.size_wad, view.price_wad), equity)
        profit = pnl // USDC_TO_USD
        action = DeleverageIsolated(p.position_id)
        out.append(Candidate(score, action, f"iso:{p.position_id}", profit))
    for owner, acct in snap.cross.items():
        size, entry = acct.positions.get(view.market_id, (0, 0))
        if size == 0 or (size > 0) != long:
            continue
        pnl = mm.pnl_usd_floor(size, entry, view.price_wad)
        if pnl <= 0 or acct.equity_usd <= 0:
            continue
        score = _score(pnl, mm.notional_usd_up(size, view.price_wad), acct.equity_usd)
        cross = DeleverageCross(owner, view.market_id)
        out.append(Candidate(score, cross, f"cross:{owner}", pnl // USDC_TO_USD))
    return sorted(out, key=lambda c: (-c.score, c.target))


def _score(pnl: int, notional: int, equity: int) -> float:
    return (pnl / equity) * (notional / equity) if equity else 0.0


class Deleverager(Agent):
    """Each block, for every side of a market that owes a deficit, deleverages the ranked candidates until
    their profits cover it (the vault closes only the part each needs, and reverts `NothingToDeleverage`
    once the deficit is paid)."""

    name = "deleverager"

    def __init__(self, address: str):
        self.address = address

    def decide(self, obs: Observation) -> list[Action]:
        snap, txs = obs.snapshot, list[Action]()
        for view in snap.markets:
            if view.price_wad is None:
                continue
            for long, owed in ((True, view.deficit_long_quote), (False, view.deficit_short_quote)):
                left = owed
                for c in candidates(snap, view, long) if owed else ():
                    if left <= 0:
                        break
                    txs.append(c.action)
                    left -= c.profit_quote
        return txs
