"""The oracle agent: pushes the market price to the Chainlink-style feeds by Chainlink's rule."""

from __future__ import annotations

from collections.abc import Sequence

from simulation.abi import ContractAbi
from simulation.agents.base import GWEI, Snapshot, Tx
from simulation.scenario import OracleConfig


class OracleAgent:
    """A new round when the price deviates past the threshold or the heartbeat elapses; optional delay
    behind the market and outage windows. After each round it refreshes the adapter's volatility cache."""

    name = "oracle"

    def __init__(
        self,
        cfg: OracleConfig,
        sender: str,
        feeds: dict[str, str],
        assets: dict[str, str],
        decimals: dict[str, int],
        feed_abi: ContractAbi,
        oracle_address: str,
        oracle_abi: ContractAbi,
    ):
        self.cfg, self.sender = cfg, sender
        self.feeds, self.assets, self.decimals = feeds, assets, decimals
        self._update = feed_abi["updateAnswer"]
        self._cache = oracle_abi["cacheVolatility"]
        self.oracle_address = oracle_address
        self.rounds = 0

    def decide(
        self, block: int, timestamp: int, history: Sequence[dict[str, float]], snap: Snapshot
    ) -> list[Tx]:
        """`history[i]` is the market price at block i; `timestamp` is the coming block's."""
        if any(w.contains(block) for w in self.cfg.outages):
            return []
        seen = history[max(0, len(history) - 1 - self.cfg.delay_blocks)]
        txs = []
        for symbol, feed in self.feeds.items():
            answer, updated_at = snap.oracle_rounds[symbol]
            new = round(seen[symbol] * 10 ** self.decimals[symbol])
            moved = abs(new - answer) / answer >= self.cfg.deviation if answer > 0 else True
            stale = timestamp - updated_at >= self.cfg.heartbeat_s
            if new > 0 and (moved or stale):
                fee = 50 * GWEI  # oracle rounds go first in the block, as priority transactions do
                txs.append(
                    Tx(
                        self.name,
                        "oracle_round",
                        self.sender,
                        feed,
                        self._update.calldata(new),
                        120_000,
                        fee,
                    )
                )
                data = self._cache.calldata(self.assets[symbol])
                txs.append(
                    Tx(
                        self.name,
                        "cache_volatility",
                        self.sender,
                        self.oracle_address,
                        data,
                        400_000,
                        fee,
                    )
                )
                self.rounds += 1
        return txs
