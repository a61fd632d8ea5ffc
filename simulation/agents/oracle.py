"""The oracle agent: pushes the market price to the Chainlink-style feeds by Chainlink's rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from simulation.actions import Action, CacheVolatility, OracleRound
from simulation.agents.base import Agent, Observation
from simulation.scenario import OracleConfig
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


class OracleAgent(Agent):
    """A new round when the price deviates past the threshold or the heartbeat elapses; optional delay
    behind the market and outage windows. After each round it refreshes the adapter's volatility cache."""

    name = "oracle"

    def __init__(
        self,
        cfg: OracleConfig,
        sender: str,
        feeds: Sequence[str],
        assets: Sequence[str],
        decimals: dict[str, int],
        driven: Mapping[str, DrivenFeed] | None = None,
        rules: Mapping[str, tuple[float, int]] | None = None,
    ):
        """`feeds`: the symbols of the feeds it drives; `driven`: on a fork, the real feeds, written with
        state cheats instead of `updateAnswer` transactions; `rules`: (deviation, heartbeat) per feed,
        defaults from `cfg`. The volatility cache is refreshed only for the symbols in `assets` (the
        quote's feed has no market)."""
        self.cfg, self.address = cfg, sender
        self.feeds, self.assets, self.decimals = tuple(feeds), frozenset(assets), decimals
        self.driven = dict(driven or {})
        self.rules = {s: (rules or {}).get(s, (cfg.deviation, cfg.heartbeat_s)) for s in feeds}
        self.rounds = 0
        self.cheats: list[tuple[str, list[Any]]] = []
        """State cheats of the coming block (fork feeds' rounds); the engine sends them with the txs."""
        self.cheat_rounds = 0

    def decide(self, obs: Observation) -> list[Action]:
        block, timestamp, snap, history = obs.block, obs.timestamp_s, obs.snapshot, obs.prices_usd
        seen = history[max(0, len(history) - 1 - self.cfg.delay_blocks)]
        txs: list[Action] = []
        for symbol in self.feeds:
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
                txs.append(OracleRound(symbol, new, priority_fee_wei=fee))
            if symbol in self.assets:
                txs.append(CacheVolatility(symbol, priority_fee_wei=fee))
        return txs

    def take_cheats(self) -> tuple[list[tuple[str, list[Any]]], int]:
        """The coming block's state cheats and how many rounds they write; clears them."""
        out, n = self.cheats, self.cheat_rounds
        self.cheats, self.cheat_rounds = [], 0
        return out, n
