"""Driving real Chainlink feeds on a fork: the aggregator behind each proxy gets SimAggregator's code,
seeded with the feed's recent rounds; each simulated round is written into its storage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import eth_abi
from eth_utils import keccak
from web3 import Web3

from simulation.build import Artifact
from simulation.chains import ChainInfo, FeedInfo
from simulation.deploy import deploy_contract
from simulation.fork.assets import call_at, selector, word
from simulation.fork.target import ForkInputError
from simulation.rpc import Rpc, RpcError

HISTORY_ROUNDS = 24
"""Rounds copied from the real aggregator: more than the oracle adapter's volatility window."""
LATEST_ROUND_SLOT = keccak(text="marginsim.SimAggregator.latestRound")
ROUNDS_SLOT = keccak(text="marginsim.SimAggregator.rounds")
UINT64 = (1 << 64) - 1


# ----------------------------------------------------------------------------------------- feeds


@dataclass
class ForkFeed:
    """One real proxy whose aggregator the simulation drives."""

    symbol: str
    info: FeedInfo
    aggregator: str
    phase: int
    round: int
    """The aggregator's latest round id (without the phase)."""
    answer: int
    history: list[tuple[int, int, int]] = field(default_factory=list)
    """(aggregator round id, answer, updatedAt) copied from the real feed, oldest first."""

    @property
    def proxy(self) -> str:
        return self.info.proxy

    def round_writes(self, answer: int, timestamp: int) -> list[tuple[str, list[Any]]]:
        """The storage writes that make `answer` the next round, stamped `timestamp`."""
        self.round += 1
        self.answer = answer
        return self._writes([(self.round, answer, timestamp)])

    def _writes(self, rounds: Sequence[tuple[int, int, int]]) -> list[tuple[str, list[Any]]]:
        out = []
        for rid, answer, ts in rounds:
            slot = keccak(rid.to_bytes(32, "big") + ROUNDS_SLOT)
            word = ((ts & UINT64) << 192) | (answer & ((1 << 192) - 1))
            out.append(
                (
                    "anvil_setStorageAt",
                    [self.aggregator, "0x" + slot.hex(), "0x" + format(word, "064x")],
                )
            )
        out.append(
            (
                "anvil_setStorageAt",
                [
                    self.aggregator,
                    "0x" + LATEST_ROUND_SLOT.hex(),
                    "0x" + format(rounds[-1][0], "064x"),
                ],
            )
        )
        return out


def _decode_round(answer: Any) -> tuple[int, int, int]:
    """latestRoundData/getRoundData output -> (roundId, answer, updatedAt)."""
    raw = bytes.fromhex(answer.removeprefix("0x"))
    words = [int.from_bytes(raw[i : i + 32], "big") for i in range(0, 160, 32)]
    signed = words[1] - (1 << 256) if words[1] >= 1 << 255 else words[1]
    return words[0], signed, words[3]


def install_feeds(
    w3: Web3, rpc: Rpc, chain: ChainInfo, artifacts: Mapping[str, Artifact], deployer: str
) -> dict[str, ForkFeed]:
    """Put SimAggregator behind every proxy of the chain, seeded with the feed's recent rounds."""
    feeds: dict[str, ForkFeed] = {}
    for symbol, info in chain.feeds.items():
        p = info.proxy
        agg, latest, desc, version = rpc.batch(
            [
                call_at(p, selector("aggregator()")),
                call_at(p, selector("latestRoundData()")),
                call_at(p, selector("description()")),
                call_at(p, selector("version()")),
            ]
        )
        if (
            isinstance(agg, RpcError)
            or isinstance(latest, RpcError)
            or len(agg) < 42
            or len(latest) < 2 + 5 * 64
        ):
            raise ForkInputError(
                f"feed {symbol} at {p}: not a Chainlink proxy (aggregator() or latestRoundData() failed)"
            )
        aggregator = Web3.to_checksum_address("0x" + agg[-40:])
        round_id, answer, updated = _decode_round(latest)
        phase, agg_round = round_id >> 64, round_id & UINT64
        if answer <= 0 or agg_round == 0:
            raise ForkInputError(
                f"feed {symbol} at {p}: no positive answer at the fork block ({answer})"
            )
        back = rpc.batch(
            [
                call_at(p, selector("getRoundData(uint80)") + format(round_id - k, "064x"))
                for k in range(1, min(HISTORY_ROUNDS, agg_round))
            ]
        )
        history = [(agg_round, answer, updated)]
        for k, r in enumerate(back, start=1):
            if isinstance(r, RpcError):
                break
            rid, a, ts = _decode_round(r)
            if rid != round_id - k or ts == 0:
                break
            history.append((agg_round - k, a, ts))
        history.reverse()
        try:
            description = str(eth_abi.decode(["string"], bytes.fromhex(desc[2:]))[0])
        except Exception:  # no description(), or not a string: the data file's name will do
            description = f"{symbol} / USD"
        ver = word(version) if isinstance(version, str) else 4
        template = deploy_contract(
            w3, artifacts["SimAggregator"], deployer, info.decimals, description[:32], ver
        )
        code = rpc.call("eth_getCode", [template, "latest"])
        rpc.call("anvil_setCode", [aggregator, code])
        feed = ForkFeed(symbol, info, aggregator, phase, agg_round, answer, history)
        rpc.batch(feed._writes(history))
        again = rpc.call(*call_at(p, selector("latestRoundData()")))
        if _decode_round(again) != (round_id, answer, updated):
            raise ForkInputError(
                f"feed {symbol} at {p}: the proxy does not read the aggregator it names "
                f"({aggregator}); this proxy cannot be driven"
            )
        feeds[symbol] = feed
    return feeds


def refresh_stale_rounds(rpc: Rpc, feeds: Mapping[str, ForkFeed]) -> list[str]:
    """A heartbeat round (the same answer, stamped with the fork's clock) on every feed whose latest
    round is older than its heartbeat at the fork's head: the round Chainlink itself writes when the
    heartbeat elapses, without which the oracle adapter refuses the feed. The symbols refreshed."""
    now = int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    writes: list[tuple[str, list[Any]]] = []
    refreshed = []
    for symbol, f in feeds.items():
        if now - f.history[-1][2] > f.info.heartbeat_s:
            writes += f.round_writes(f.answer, now)
            refreshed.append(symbol)
    if writes:
        rpc.batch(writes)
    return refreshed
