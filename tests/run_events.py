"""Reading a run's events.jsonl back, independently of the code that wrote it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple


class Closed(NamedTuple):
    """One position's close by a liquidation: its block, market, signed size closed (base wad, + a long)
    and the oracle price it used (wad)."""

    block: int
    market_id: int
    size: int
    price_wad: int

    @property
    def notional_usd(self) -> float:
        return abs(self.size) * self.price_wad / 1e36


def liquidation_closes(out: Path) -> list[Closed]:
    """Every position a liquidation closed (partly or fully) in the run written to `out`; an isolated
    position's market from its IsolatedOpened event."""
    market_of: dict[int, int] = {}
    closes = []
    for line in (out / "events.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["event"] == "IsolatedOpened":
            market_of[int(e["positionId"])] = int(e["marketId"])
        elif e["event"] in ("IsolatedLiquidated", "CrossPositionLiquidated"):
            mid = market_of[int(e["positionId"])] if "positionId" in e else int(e["marketId"])
            closes.append(Closed(int(e["block"]), mid, int(e["closedSize"]), int(e["priceWad"])))
    return closes


def notional_per_block_and_market(out: Path) -> dict[tuple[int, int], float]:
    """USD notional liquidations closed, per (block, market id)."""
    totals: dict[tuple[int, int], float] = {}
    for c in liquidation_closes(out):
        totals[c.block, c.market_id] = totals.get((c.block, c.market_id), 0.0) + c.notional_usd
    return totals
