"""What agents return: transactions for the next block. What they see, the Snapshot of the chain after a
block, lives beside the reader that builds it (simulation.state)."""

from __future__ import annotations

from dataclasses import dataclass

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
