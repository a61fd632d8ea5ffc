"""The oracle agent: pushes the market price to the Chainlink-style feeds by Chainlink's rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from simulation.abi import ContractAbi
from simulation.agents.base import Tx
from simulation.scenario import OracleConfig
from simulation.state import Snapshot
from simulation.units import GWEI


class DrivenFeed(Protocol):
    """A real feed on a fork, driven by storage writes (simulation.fork.ForkFeed)."""

    def round_writes(self, answer: int, timestamp: int) -> list[tuple[str, list[Any]]]: ...


def deviation_move(new: int, answer: int, deviation: float) -> int:
    """Chainlink's deviation rule: +1 / -1 when `new` moved at least `deviation` (a fraction) up / down
    from the on-chain `answer`, else 0; no answer yet (<= 0) counts as a move up."""
    if answer <= 0:
        return 1
    if abs(new - answer) / answer < deviation:
        return 0
    return 1 if new > answer else -1


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
        driven: Mapping[str, DrivenFeed] | None = None,
        rules: Mapping[str, tuple[float, int]] | None = None,
    ):
        """`driven`: on a fork, the real feeds, written with state cheats instead of `updateAnswer`
        transactions; `rules`: (deviation, heartbeat) per feed, defaults from `cfg`. The volatility
        cache is refreshed only for the assets in `assets` (the quote's feed has no market)."""
        self.cfg, self.sender = cfg, sender
        self.feeds, self.assets, self.decimals = feeds, assets, decimals
        self._update = feed_abi.functions.get("updateAnswer")
        self._cache = oracle_abi["cacheVolatility"]
        self.oracle_address = oracle_address
        self.driven = dict(driven or {})
        self.rules = {s: (rules or {}).get(s, (cfg.deviation, cfg.heartbeat_s)) for s in feeds}
        self.rounds = 0
        self.cheats: list[tuple[str, list[Any]]] = []
        """State cheats of the coming block (fork feeds' rounds); the engine sends them with the txs."""
        self.cheat_rounds = 0

    def decide(
        self, block: int, timestamp: int, history: Sequence[dict[str, float]], snap: Snapshot
    ) -> list[Tx]:
        """`history[i]` is the market price at block i; `timestamp` is the coming block's."""
        seen = history[max(0, len(history) - 1 - self.cfg.delay_blocks)]
        txs: list[Tx] = []
        for symbol, feed in self.feeds.items():
            if any(w.stops(block, symbol) for w in self.cfg.outages):
                continue
            answer, updated_at = snap.oracle_rounds[symbol]
            deviation, heartbeat = self.rules[symbol]
            new = round(seen[symbol] * 10 ** self.decimals[symbol])
            moved = deviation_move(new, answer, deviation) != 0
            stale = timestamp - updated_at >= heartbeat
            if not (new > 0 and (moved or stale)):
                continue
            self.rounds += 1
            fee = 50 * GWEI  # oracle rounds go first in the block, as priority transactions do
            if symbol in self.driven:
                self.cheats += self.driven[symbol].round_writes(new, timestamp)
                self.cheat_rounds += 1
            else:
                assert self._update is not None, "a mock feed needs updateAnswer"
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
            if symbol in self.assets:
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
        return txs

    def take_cheats(self) -> tuple[list[tuple[str, list[Any]]], int]:
        """The coming block's state cheats and how many rounds they write; clears them."""
        out, n = self.cheats, self.cheat_rounds
        self.cheats, self.cheat_rounds = [], 0
        return out, n
