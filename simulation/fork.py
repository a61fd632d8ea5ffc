"""Fork runs: start anvil on a fork of a real chain and wire the simulation to its real assets.

- The upstream is checked before anvil starts (it answers JSON-RPC, its chain id has a data file in
  `chains/`, the block exists); every failure there is bad input, one message, exit code 2.
- The fork URL is a secret (it usually carries an API key): it is given to anvil and to the probe
  below and never printed, logged or written to an output. Messages name where it came from instead.
- Agents are funded with the real tokens by writing the storage slot `balanceOf` reads (found with
  `eth_createAccessList`, then verified), else by impersonating the chain file's holders.
- Each Chainlink proxy keeps its code, its address and its phase; the aggregator behind it gets
  SimAggregator's code, seeded with the feed's recent rounds, and each simulated round is written
  with `anvil_setStorageAt` as the next aggregator round, so `latestRoundData` on the proxy returns
  the simulated answer in the feed's decimals and round ids, the first being the fork block's own.
- anvil's RPC cache (`storage.json`) is kept under a per-(chain, block, block hash) home directory,
  so a second run at the same block reads the state it fetched before from disk.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import eth_abi
import requests
from eth_utils import keccak
from web3 import Web3

from simulation.build import Artifact
from simulation.chain import AnvilNode
from simulation.chains import ChainFileError, ChainInfo, FeedInfo, chain_for
from simulation.deploy import deploy_contract
from simulation.redact import register
from simulation.rpc import Rpc, RpcError

FORK_URL_ENV = "MARGINSIM_FORK_URL"
"""Where the fork URL is read from when the scenario asks for a fork and no --fork-url is given."""
FORK_CACHE_ENV = "MARGINSIM_FORK_CACHE"
DEFAULT_CACHE = Path.home() / ".cache" / "marginsim" / "fork"
PROBE_TIMEOUT_S = 15.0
HISTORY_ROUNDS = 24
"""Rounds copied from the real aggregator: more than the oracle adapter's volatility window."""
LATEST_ROUND_SLOT = keccak(text="marginsim.SimAggregator.latestRound")
ROUNDS_SLOT = keccak(text="marginsim.SimAggregator.rounds")
UINT64 = (1 << 64) - 1


class ForkInputError(ValueError):
    """The fork's upstream or its chain data cannot be used: bad input, exit code 2."""


class FundingError(ForkInputError):
    """An agent could not be funded with a token by either method."""


@dataclass(frozen=True)
class ForkTarget:
    url: str = field(repr=False)
    source: str
    """Where the URL came from, for messages: "--fork-url", "$MARGINSIM_FORK_URL", ..."""
    block: int | None = None
    cache_root: Path = DEFAULT_CACHE


@dataclass(frozen=True)
class Upstream:
    chain: ChainInfo
    block: int
    block_hash: str
    timestamp: int
    head: int


def _post(target: ForkTarget, payload: Any) -> Any:
    """One JSON-RPC request to the upstream; every failure a ForkInputError that names no URL."""
    where = f"the fork URL ({target.source})"
    try:
        r = requests.post(target.url, json=payload, timeout=PROBE_TIMEOUT_S)
    except requests.exceptions.InvalidURL:
        raise ForkInputError(f"{where} is not a valid URL") from None
    except requests.ConnectionError as e:
        reason = "connection refused" if "refused" in str(e).lower() else "cannot connect"
        raise ForkInputError(f"{where}: nothing answers there ({reason})") from None
    except requests.Timeout:
        raise ForkInputError(f"{where}: no answer within {PROBE_TIMEOUT_S:.0f} s") from None
    except requests.RequestException as e:
        raise ForkInputError(f"{where}: request failed ({e.__class__.__name__})") from None
    if r.status_code != 200:
        raise ForkInputError(f"{where}: answered HTTP {r.status_code}, not JSON-RPC")
    try:
        return r.json()
    except ValueError:
        raise ForkInputError(f"{where}: the answer is not JSON, not a JSON-RPC endpoint") from None


def _ask(target: ForkTarget, method: str, params: list[Any]) -> Any:
    """One single (not batched: some providers refuse batches) JSON-RPC call to the upstream."""
    got = _post(target, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    if not isinstance(got, dict) or "result" not in got:
        raise ForkInputError(f"the fork URL ({target.source}) did not answer {method}")
    return got["result"]


def probe_upstream(target: ForkTarget, chains_dir: Path | None = None) -> Upstream:
    """Check the upstream before anything starts: reachable, a known chain, the block exists."""
    try:
        scheme = urlparse(target.url).scheme
    except ValueError:
        raise ForkInputError(f"the fork URL ({target.source}) is not a valid URL") from None
    if scheme not in ("http", "https"):
        shown = f"{scheme}://" if scheme else "no scheme"
        raise ForkInputError(
            f"the fork URL ({target.source}) must be http:// or https://, it has {shown}"
        )
    chain_hex, head_hex = _ask(target, "eth_chainId", []), _ask(target, "eth_blockNumber", [])
    try:
        chain_id, head = int(chain_hex, 16), int(head_hex, 16)
    except (TypeError, ValueError):
        raise ForkInputError(
            f"the fork URL ({target.source}) answered eth_chainId or eth_blockNumber with no number"
        ) from None
    try:
        chain = chain_for(chain_id, chains_dir) if chains_dir else chain_for(chain_id)
    except ChainFileError as e:
        raise ForkInputError(str(e)) from None
    block = head if target.block is None else target.block
    if block > head:
        raise ForkInputError(
            f"fork block {block} is beyond the upstream's head ({head}) on {chain.name}"
        )
    header = _ask(target, "eth_getBlockByNumber", [hex(block), False])
    try:
        return Upstream(chain, block, str(header["hash"]), int(header["timestamp"], 16), head)
    except (TypeError, KeyError, ValueError):
        raise ForkInputError(
            f"the upstream has no usable header for block {block} (pruned or not synced?)"
        ) from None


def cache_home(target: ForkTarget, up: Upstream) -> Path:
    """anvil keeps its fork cache under $HOME/.foundry/cache/rpc/<chain>/<block>/: one home per
    (chain id, block, block hash), so a different upstream at the same height never reads another's."""
    return target.cache_root / f"{up.chain.chain_id}-{up.block}-{up.block_hash[2:14]}"


def fork_node(target: ForkTarget, accounts: int) -> tuple[AnvilNode, Upstream, bool]:
    """The anvil of a fork run, not started: the probed upstream's block pinned (so the cache
    applies), its cache home, the hardfork the contracts are compiled for (AnvilNode's default, as
    ape-foundry's mainnet-fork does). Returns the node, the upstream and whether the cache is warm."""
    up = probe_upstream(target)
    home = cache_home(target, up)
    node = AnvilNode(
        accounts=accounts,
        chain_id=None,
        fork_url=target.url,
        fork_block=up.block,
        env={"HOME": str(home)},
    )
    return node, up, cache_file(home) is not None


def cache_file(home: Path) -> Path | None:
    found = sorted(home.glob(".foundry/cache/rpc/*/*/storage.json"))
    return found[0] if found else None


# ---------------------------------------------------------------------------------------- checks


def _call(to: str, data: str, block: str = "latest") -> tuple[str, list[Any]]:
    return "eth_call", [{"to": to, "data": data}, block]


def _selector(signature: str) -> str:
    return "0x" + keccak(text=signature)[:4].hex()


def _word(hex_answer: Any) -> int:
    return int(hex_answer, 16) if isinstance(hex_answer, str) and hex_answer != "0x" else -1


def check_assets(rpc: Rpc, chain: ChainInfo, block: int) -> dict[str, int]:
    """Every token and proxy of the chain file has code at the fork block, with the stated decimals.
    Returns each token's total supply at the fork block."""
    items: list[tuple[str, str, int]] = [
        (f"token {s}", t.address, t.decimals) for s, t in chain.tokens.items()
    ]
    items += [(f"feed {s}", f.proxy, f.decimals) for s, f in chain.feeds.items()]
    calls: list[tuple[str, list[Any]]] = []
    for _, address, _ in items:
        calls += [("eth_getCode", [address, "latest"]), _call(address, _selector("decimals()"))]
    res = rpc.batch(calls)
    for i, (what, address, decimals) in enumerate(items):
        code, dec = res[2 * i], res[2 * i + 1]
        if isinstance(code, RpcError):
            raise ForkInputError(
                f"{what}: the upstream cannot serve state at block {block} "
                f"(an archive node is needed for old blocks): {code.message}"
            )
        if code in ("0x", "0x0", None):
            raise ForkInputError(
                f"{what}: no contract at {address} on {chain.name} at block {block} "
                "(wrong chain data file or a block before it was deployed)"
            )
        if isinstance(dec, RpcError) or _word(dec) != decimals:
            got = dec.message if isinstance(dec, RpcError) else _word(dec)
            raise ForkInputError(
                f"{what} at {address}: decimals() is {got}, the chain data file says {decimals}"
            )
    supply = rpc.batch(
        [_call(t.address, _selector("totalSupply()")) for t in chain.tokens.values()]
    )
    return {s: _word(x) for s, x in zip(chain.tokens, supply, strict=True)}


# --------------------------------------------------------------------------------------- funding


def _balance_calls(token: str, holders: Sequence[str]) -> list[tuple[str, list[Any]]]:
    sel = _selector("balanceOf(address)")
    return [_call(token, sel + h.lower().removeprefix("0x").zfill(64)) for h in holders]


def fund_token(rpc: Rpc, chain: ChainInfo, symbol: str, grants: Sequence[tuple[str, int]]) -> str:
    """Add `amount` (token units) to each recipient's balance. Returns the method that worked."""
    token = chain.tokens[symbol].address
    merged: dict[str, int] = {}
    for who, amount in grants:  # one write per account, however many grants name it
        merged[who.lower()] = merged.get(who.lower(), 0) + amount
    wanted = [(w, a) for w, a in merged.items() if a > 0]
    if not wanted:
        return "none"
    why = _fund_by_storage(rpc, token, wanted)
    if why is None:
        return "storage"
    shortfall = _fund_by_impersonation(rpc, token, chain.tokens[symbol].holders, wanted)
    if shortfall is None:
        return "impersonation"
    raise FundingError(
        f"cannot fund agents with {symbol} ({token}): writing its balance storage {why}, and "
        f"impersonating holders failed: {shortfall}"
    )


def _balances(rpc: Rpc, token: str, accounts: Sequence[str]) -> list[int]:
    return [_word(x) for x in rpc.batch(_balance_calls(token, accounts))]


def _fund_by_storage(rpc: Rpc, token: str, grants: Sequence[tuple[str, int]]) -> str | None:
    """Add each amount to the raw slot balanceOf(recipient) reads (flags packed in its high bits, as
    USDC's blacklist bit, stay as they were); None when every balance came out exact, else why not
    (the writes are then undone)."""
    who = [w for w, _ in grants]
    sel = _selector("balanceOf(address)")
    # A reference account's reads tell the token's fixed slots (proxy implementation, pause flags) from
    # the one slot per account that holds its balance.
    reference = "0x" + "5a" * 20
    lists = rpc.batch(
        [
            ("eth_createAccessList", [{"to": token, "data": sel + a[2:].zfill(64)}, "latest"])
            for a in [reference, *who]
        ]
    )
    if any(isinstance(x, RpcError) for x in lists):
        return "is impossible here (eth_createAccessList failed)"

    def keys(answer: dict[str, Any]) -> set[tuple[str, str]]:
        return {
            (e["address"].lower(), k)
            for e in answer.get("accessList", [])
            for k in e.get("storageKeys", [])
        }

    fixed = keys(lists[0])
    slots: list[tuple[str, str]] = []
    for a, answer in zip(who, lists[1:], strict=True):
        own = keys(answer) - fixed
        if len(own) != 1:
            return f"is ambiguous: balanceOf({a}) reads {len(own)} account-specific slots"
        slots.append(own.pop())
    before = _balances(rpc, token, who)
    olds = rpc.batch([("eth_getStorageAt", [addr, key, "latest"]) for addr, key in slots])
    if any(isinstance(o, RpcError) for o in olds):
        return "is impossible here (eth_getStorageAt failed)"
    rpc.batch(
        [
            ("anvil_setStorageAt", [addr, key, "0x" + format(int(old, 16) + amount, "064x")])
            for (addr, key), old, (_, amount) in zip(slots, olds, grants, strict=True)
        ]
    )
    after = _balances(rpc, token, who)
    if all(a == b + g for a, b, (_, g) in zip(after, before, grants, strict=True)):
        return None
    rpc.batch(
        [
            ("anvil_setStorageAt", [addr, key, "0x" + old.removeprefix("0x").zfill(64)])
            for (addr, key), old in zip(slots, olds, strict=True)
        ]
    )
    return "does not give the exact balance (a rebasing or share-based token?)"


def _fund_by_impersonation(
    rpc: Rpc, token: str, holders: Sequence[str], grants: Sequence[tuple[str, int]]
) -> str | None:
    """Transfer from the listed holders, richest first, until every recipient has at least what it
    was granted (share-based tokens deliver a wei or two less: the shortfall is sent again).
    None on success, else what was missing."""
    if not holders:
        return "the chain data file lists no holders for it"
    holders = [h.lower() for h in holders]
    who = [w for w, _ in grants]
    holding, now = _balances(rpc, token, holders), _balances(rpc, token, who)
    need, have = sum(a for _, a in grants), sum(max(0, b) for b in holding)
    if have < need:
        return f"the {len(holders)} listed holder(s) own {have} units, the agents need {need}"
    target = [b + a for b, (_, a) in zip(now, grants, strict=True)]
    _impersonate(rpc, holders)
    try:
        for attempt in range(3):
            if attempt:  # what the last round of transfers really delivered
                now, holding = _balances(rpc, token, who), _balances(rpc, token, holders)
            # A retry sends twice the shortfall and 2 wei more: a share-based token rounds a
            # transfer of a wei or two down to nothing.
            short = [
                (w, t - b if attempt == 0 else 2 * (t - b) + 2)
                for w, t, b in zip(who, target, now, strict=True)
                if b < t
            ]
            if not short:
                return None
            failed = _transfer_from(rpc, token, list(zip(holders, holding, strict=True)), short)
            if failed:
                return failed
    finally:
        rpc.batch([("anvil_stopImpersonatingAccount", [h]) for h in holders])
    return "the recipients still received less than granted after three rounds of transfers"


def _impersonate(rpc: Rpc, holders: Sequence[str]) -> None:
    """Let the holders send: impersonated, enough ETH for gas (never less than they had), and an
    EIP-7702 delegation (code 0xef0100...) removed so a transfer is a plain one; a contract holder
    (a Safe, a bridge) keeps its code."""
    rpc.batch([("anvil_impersonateAccount", [h]) for h in holders])
    info = rpc.batch(
        [("eth_getBalance", [h, "latest"]) for h in holders]
        + [("eth_getCode", [h, "latest"]) for h in holders]
    )
    n = len(holders)
    gas_money = 10**20
    rpc.batch(
        [
            ("anvil_setBalance", [h, hex(gas_money)])
            for h, b in zip(holders, info[:n], strict=True)
            if _word(b) < gas_money
        ]
    )
    rpc.batch(
        [
            ("anvil_setCode", [h, "0x"])
            for h, c in zip(holders, info[n:], strict=True)
            if isinstance(c, str) and c.startswith("0xef0100")
        ]
    )


def _transfer_from(
    rpc: Rpc, token: str, holders: Sequence[tuple[str, int]], grants: Sequence[tuple[str, int]]
) -> str | None:
    """One block of transfers covering `grants` from the holders (with their current balances),
    richest first."""
    queue = sorted(holders, key=lambda hb: -hb[1])
    sel = _selector("transfer(address,uint256)")
    txs: list[tuple[str, str]] = []  # (holder, calldata)
    hi, left = 0, queue[0][1]
    for recipient, amount in grants:
        while amount > 0 and left > 0:
            take = min(amount, left)
            txs.append((queue[hi][0], sel + recipient[2:].zfill(64) + format(take, "064x")))
            amount, left = amount - take, left - take
            if left == 0 and hi + 1 < len(queue):
                hi += 1
                left = queue[hi][1]
        if amount > 0:
            return "the listed holders ran out before every agent was funded"
    used = sorted({h for h, _ in txs})
    counts = rpc.batch([("eth_getTransactionCount", [h, "pending"]) for h in used])
    nonces = {h: int(c, 16) for h, c in zip(used, counts, strict=True)}
    calls: list[tuple[str, list[Any]]] = []
    for h, data in txs:
        tx = {"from": h, "to": token, "data": data, "gas": hex(300_000), "nonce": hex(nonces[h])}
        calls.append(("eth_sendTransaction", [tx]))
        nonces[h] += 1
    hashes = rpc.batch(calls)
    rpc.call("evm_mine", [])
    receipts = rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes if isinstance(h, str)])
    failed = sum(1 for h in hashes if not isinstance(h, str)) + sum(
        1 for r in receipts if not isinstance(r, dict) or r.get("status") != "0x1"
    )
    return f"{failed} of {len(txs)} transfers from the holders failed" if failed else None


def clear_account_code(rpc: Rpc, accounts: Iterable[str]) -> None:
    """Agents send plain transactions; on a real chain the well-known dev accounts carry EIP-7702
    delegations (sweepers). Remove any code so they behave as the EOAs they are here."""
    rpc.batch([("anvil_setCode", [a, "0x"]) for a in accounts])


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
                _call(p, _selector("aggregator()")),
                _call(p, _selector("latestRoundData()")),
                _call(p, _selector("description()")),
                _call(p, _selector("version()")),
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
                _call(p, _selector("getRoundData(uint80)") + format(round_id - k, "064x"))
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
        ver = _word(version) if isinstance(version, str) else 4
        template = deploy_contract(
            w3, artifacts["SimAggregator"], deployer, info.decimals, description[:32], ver
        )
        code = rpc.call("eth_getCode", [template, "latest"])
        rpc.call("anvil_setCode", [aggregator, code])
        feed = ForkFeed(symbol, info, aggregator, phase, agg_round, answer, history)
        rpc.batch(feed._writes(history))
        again = rpc.call(*_call(p, _selector("latestRoundData()")))
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


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    t = time.monotonic()
    out = fn(*args, **kwargs)
    return out, time.monotonic() - t


def fork_target(
    url: str | None,
    block: int | None,
    scenario_fork: Any,
    cache: Path | None,
    from_env: bool = False,
) -> ForkTarget | None:
    """Resolve where to fork from: --fork-url; else the scenario's `fork:` section (its `url`, else
    the environment variable it names); else, with --fork, $MARGINSIM_FORK_URL. None when nothing
    asks for a fork."""
    sf = scenario_fork
    if url is None and sf is None and not from_env:
        if block is not None:
            raise ForkInputError(
                "--fork-block needs a fork: give --fork-url, --fork or a scenario `fork:` section"
            )
        return None
    if url is not None:
        source = "--fork-url"
    elif sf is not None and sf.url is not None:
        url, source = sf.url, "the scenario's fork.url"
    else:
        var = sf.url_env if sf is not None else FORK_URL_ENV
        url, source = os.environ.get(var), f"${var}"
        if not url:
            raise ForkInputError(
                f"a fork was asked for and the environment variable {var} is not set "
                "(set it to the upstream's RPC URL, or give --fork-url)"
            )
    if block is None and sf is not None:
        block = sf.block
    if block is not None and block < 0:
        raise ForkInputError(f"--fork-block {block}: must be a block number (>= 0)")
    register(url.strip())
    env_cache = os.environ.get(FORK_CACHE_ENV)
    root = cache or (Path(env_cache) if env_cache else DEFAULT_CACHE)
    return ForkTarget(url.strip(), source, block, root)
