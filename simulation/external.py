"""Outside bots in lockstep with a run: `marginsim run SCENARIO --external NAME[=ADDRESS] ... --out DIR`.

A bot runs in its own process (a web3.py script, a Silverback app, a Rust binary) and talks to the run
over two channels: the chain itself (the run's anvil, its JSON-RPC URL) and a small HTTP endpoint on
127.0.0.1 that keeps it in step with the blocks. Before the first block the run writes
`DIR/manifest.json` (RPC URL, chain id, addresses, ABIs, market ids, units, the sync URL, and each bot's
address with its dev key when the run gave it one) and waits until every named bot has registered.
Then, for each block:

1. the run opens the block: `GET /next?after=B` answers every bot waiting for a block after B with
   `{"block": b, "timestamp_s": t, "base_fee_wei": f}` (the chain holds block b - 1's state; `f` is
   the base fee the block is mined at when the scenario forces one, a gas spike, else null);
2. each bot reads the chain, sends its transactions to the node (they wait in its pool), and says it
   is done: `POST /acted {"name": ..., "block": b}`;
3. the run waits for every registered bot's `acted`, at most `block_timeout_s` (a bot that is late
   has missed the block: counted, and its transactions land in whatever block is mined after they
   arrive; an `acted` after the wait is over gets 409), sends its own agents' transactions and mines
   the block with all of them, ordered by fee. A bot that missed DROP_AFTER blocks in a row is no
   longer waited for until it acts again (its blocks still count as missed).

After the last block `GET /next` answers `{"finished": true}`. Every transaction of every mined block
is attributed by its sender: a bot's liquidations, rewards, gas and lost races are counted as a
built-in keeper's are, in the keeper table."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from eth_abi import decode

from simulation.agents.base import Tx

NAME = re.compile(r"^[A-Za-z0-9_-]+$")
ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
POLL_S = 20.0
"""How long one `GET /next` waits for a block before answering `{"block": null}` (the bot asks again)."""


class ExternalError(ValueError):
    """A bad --external flag, or bots that never registered."""


@dataclass(frozen=True)
class ExternalBot:
    name: str
    address: str | None
    """None: the run gives it one of its dev accounts (its key goes in the manifest)."""


def parse_external(specs: list[str], taken: set[str]) -> list[ExternalBot]:
    """`NAME` or `NAME=ADDRESS` flags; names unique, not among the scenario's agents (`taken`)."""
    bots: list[ExternalBot] = []
    for spec in specs:
        name, _, address = spec.partition("=")
        if not NAME.match(name):
            raise ExternalError(f"--external {spec}: the name must match [A-Za-z0-9_-]+")
        if address and not ADDRESS.match(address):
            raise ExternalError(
                f"--external {spec}: {address!r} is not a 0x-prefixed 20-byte address"
            )
        if name in taken or any(b.name == name for b in bots):
            raise ExternalError(f"--external {spec}: the name {name!r} is taken")
        if address and any(b.address == address.lower() for b in bots):
            raise ExternalError(f"--external {spec}: another bot has that address")
        bots.append(ExternalBot(name, address.lower() or None))
    return bots


def own_account_clash(bots: list[ExternalBot], own: list[str]) -> str | None:
    """Why a bot's given address cannot be used: it is one of the run's `own` accounts (whose nonces
    the run counts, and whose transactions it folds as its own agents'), or None."""
    ours = {a.lower(): i for i, a in enumerate(own)}
    for b in bots:
        if b.address is not None and b.address in ours:
            return (
                f"--external {b.name}={b.address}: the run's own account {ours[b.address]}; "
                "give the bot another address"
            )
    return None


@dataclass(frozen=True)
class Outside:
    """What a run is asked for: its outside bots and the lockstep's timeouts."""

    bots: list[ExternalBot]
    block_timeout_s: float = 10.0
    register_timeout_s: float = 120.0

    @property
    def dev_accounts_needed(self) -> int:
        return sum(b.address is None for b in self.bots)

    def addresses(self, spare: list[str]) -> dict[str, str]:
        """Each bot's address: its own, or the next of the run's `spare` dev accounts."""
        given = iter(spare)
        return {b.name: b.address or next(given) for b in self.bots}

    def lockstep(self, spare: list[str]) -> Lockstep:
        return Lockstep(self.addresses(spare), self.block_timeout_s, self.register_timeout_s)


def manifest(
    deployment: Any, lockstep: Lockstep, keys: Mapping[str, str], blocks: int, block_time_s: int
) -> dict[str, Any]:
    """DIR/manifest.json of a run with outside bots: the chain, the protocol, the units, the sync URL,
    each bot's address (with its private key when it is one of the run's dev accounts) and funding."""
    from simulation.node import UNITS

    data = deployment.manifest()
    data["market_ids"] = dict(deployment.markets)
    data["units"] = dict(UNITS)
    data["sync_url"] = lockstep.url
    data["sync"] = {
        "register": "POST /register {name}",
        "next": "GET /next?after=BLOCK -> {block, timestamp_s, base_fee_wei} | {block: null} | "
        "{finished: true}",
        "acted": "POST /acted {name, block}",
        "block_timeout_s": lockstep.block_timeout_s,
        "drop_after_missed": DROP_AFTER,
    }
    data["external"] = {
        name: {"address": address, **({"private_key": keys[name]} if name in keys else {})}
        for name, address in lockstep.bots.items()
    }
    data["funded"] = {"tokens": dict(EXTERNAL_FUNDING), "approved": ["MarginVault", "LPPool"]}
    data["blocks"], data["block_time_s"] = blocks, block_time_s
    return data


EXTERNAL_FUNDING = {"USDC": 5_000_000 * 10**6, "WETH": 1_000 * 10**18, "WBTC": 100 * 10**8}
"""What each outside bot holds before the first block, in each token's own units."""


DROP_AFTER = 3
"""A bot that missed this many blocks in a row is no longer waited for (each block still counts as
missed) until it acts again: one dead bot does not slow every later block by the timeout."""


@dataclass
class _State:
    names: frozenset[str]
    registered: set[str] = field(default_factory=set)
    block: int = 0
    timestamp_s: int = 0
    base_fee_wei: int | None = None
    acted: set[str] = field(default_factory=set)
    closed: bool = False
    """The open block's wait is over (it is being mined): not handed out, not acted on."""
    dropped: set[str] = field(default_factory=set)
    finished: bool = False
    cond: threading.Condition = field(default_factory=threading.Condition)


class Lockstep:
    """The run's side: the sync endpoint, and the waits of each block."""

    def __init__(
        self,
        bots: Mapping[str, str],
        block_timeout_s: float = 10.0,
        register_timeout_s: float = 120.0,
    ):
        """`bots`: name -> address."""
        self.bots = dict(bots)
        self.block_timeout_s, self.register_timeout_s = block_timeout_s, register_timeout_s
        self.state = _State(frozenset(bots))
        self.missed: dict[str, int] = {n: 0 for n in bots}
        self.acted_blocks: dict[str, int] = {n: 0 for n in bots}
        self.streak: dict[str, int] = {n: 0 for n in bots}
        """Blocks missed in a row."""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state, self.bots))
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Lockstep:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self.state.cond:
            self.state.finished = True
            self.state.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()

    def wait_registered(self) -> None:
        """Until every bot has registered; ExternalError naming the missing ones after the timeout."""
        s = self.state
        deadline = time.monotonic() + self.register_timeout_s
        with s.cond:
            while s.registered != s.names:
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = ", ".join(sorted(s.names - s.registered))
                    raise ExternalError(
                        f"external bot(s) {missing} did not register within "
                        f"{self.register_timeout_s:g} s"
                    )
                s.cond.wait(left)

    def open_block(self, block: int, timestamp_s: int, base_fee_wei: int | None = None) -> None:
        """Block `block` may be acted on: answer the bots waiting for it. `base_fee_wei`: the base
        fee the block will be mined at when the run sets it (a gas spike), else None."""
        s = self.state
        with s.cond:
            s.block, s.timestamp_s, s.base_fee_wei = block, timestamp_s, base_fee_wei
            s.acted, s.closed = set(), False
            s.cond.notify_all()

    def wait_acted(self, block: int) -> list[str]:
        """Until every registered bot acted on `block`, at most the block timeout; the ones that did
        not (their miss is counted)."""
        s = self.state
        deadline = time.monotonic() + self.block_timeout_s
        with s.cond:
            while not (s.registered - s.dropped) <= s.acted:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                s.cond.wait(left)
            s.closed = True  # a later /acted for it is refused: it is being mined
            late = sorted(s.registered - s.acted)
            for name in s.acted:
                self.acted_blocks[name] += 1
                self.streak[name] = 0
                s.dropped.discard(name)
            for name in late:
                self.missed[name] += 1
                self.streak[name] += 1
                if self.streak[name] >= DROP_AFTER:
                    s.dropped.add(name)
        return late

    def summary(self) -> dict[str, Any]:
        return {
            name: {
                "address": self.bots[name],
                "registered": name in self.state.registered,
                "blocks_acted": self.acted_blocks[name],
                "blocks_missed": self.missed[name],
            }
            for name in self.bots
        }


def _handler(state: _State, bots: Mapping[str, str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # no request log on the run's terminal

        def _answer(self, code: int, body: Mapping[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any]:
            try:
                n = int(self.headers.get("Content-Length") or 0)
                doc = json.loads(self.rfile.read(n) or b"{}")
            except ValueError:
                return {}
            return doc if isinstance(doc, dict) else {}

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path != "/next":
                return self._answer(404, {"error": f"no {url.path}: GET /next?after=BLOCK"})
            try:
                after = int(parse_qs(url.query).get("after", ["0"])[0])
            except ValueError:
                return self._answer(400, {"error": "after: a block number"})
            deadline = time.monotonic() + POLL_S
            with state.cond:
                while not state.finished and (state.block <= after or state.closed):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return self._answer(200, {"block": None})
                    state.cond.wait(left)
                if state.finished:
                    return self._answer(200, {"finished": True})
                body = {
                    "block": state.block,
                    "timestamp_s": state.timestamp_s,
                    "base_fee_wei": state.base_fee_wei,
                }
            return self._answer(200, body)

        def do_POST(self) -> None:
            doc, path = self._body(), urlparse(self.path).path
            if doc.get("name") not in bots:
                return self._answer(
                    404, {"error": f"unknown bot {doc.get('name')!r}: {sorted(bots)}"}
                )
            name = str(doc["name"])
            with state.cond:
                if path == "/register":
                    state.registered.add(name)
                    body: dict[str, Any] = {"address": bots[name], "block": state.block}
                elif path == "/acted":
                    if doc.get("block") != state.block or state.closed:
                        return self._answer(
                            409, {"error": f"block {doc.get('block')} is not the open one"}
                        )
                    state.acted.add(name)
                    body = {"ok": True}
                else:
                    return self._answer(404, {"error": f"no {path}: /register or /acted"})
                state.cond.notify_all()
            return self._answer(200, body)

    return Handler


class OutsideTxs:
    """Transactions of a mined block the engine did not send, as the engine's own are folded: agent
    by sender (a bot's name, else `outside:<address>`), kind by the called function, and a
    liquidation's target (so races with the built-in keepers are counted)."""

    def __init__(self, bots: Mapping[str, str], abis: Mapping[str, Any]):
        self.by_address = {a.lower(): n for n, a in bots.items()}
        self.functions: dict[str, Any] = {}
        for abi in abis.values():
            for f in abi.functions.values():
                self.functions.setdefault("0x" + f.selector.hex(), f)

    def tx(self, raw: Mapping[str, Any]) -> Tx:
        sender = str(raw["from"]).lower()
        data = str(raw.get("input") or raw.get("data") or "0x")
        f = self.functions.get(data[:10])
        kind = re.sub(r"(?<!^)([A-Z])", r"_\1", f.name).lower() if f else "call"
        target = ""
        if f is not None and f.name in ("liquidateIsolated", "liquidateCross"):
            try:
                (arg,) = decode(list(f.inputs), bytes.fromhex(data[10:]))
            except Exception:  # malformed calldata: it reverts, and races nothing
                arg = None
            if arg is not None:
                target = f"iso:{arg}" if f.name == "liquidateIsolated" else f"cross:{arg.lower()}"
        tip = int(raw.get("maxPriorityFeePerGas") or raw.get("gasPrice") or "0x0", 16)
        return Tx(
            self.by_address.get(sender, f"outside:{sender}"),
            kind,
            sender,
            str(raw.get("to") or ""),
            data,
            int(raw["gas"], 16),
            tip,
            target,
        )
