"""`marginsim upstream`: a local stand-in for Ethereum mainnet to fork without the internet.

An anvil with chain id 1 that holds, at the real mainnet addresses of `chains/mainnet.yaml`, an
ERC-20 with each token's decimals (USDC, WETH, WBTC) and, at each Chainlink proxy address, a proxy
with the real one's phase-encoded round ids in front of an aggregator with a few hours of rounds.
They are put there the way the issue asks: deployed at a fresh address, then their code copied to the
real address with `anvil_setCode` and their plain storage with `anvil_setStorageAt`; mappings
(balances, the proxy's phase table) are then filled by transactions at the real address.

The fork tests and the README's fork example point `marginsim run --fork-url` at it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from web3 import Web3

from simulation.build import Artifact, compile_contracts
from simulation.chain import AnvilNode, ChainError
from simulation.chains import CHAINS_DIR, ChainFileError, ChainInfo, load_chain_file
from simulation.deploy import DEFAULT_TOKENS, deploy_contract, send_and_wait
from simulation.rpc import Rpc, RpcError

UPSTREAM_PRICES = {"ETH": 3456.78, "BTC": 98765.43, "USDC": 0.99991}
"""Latest answers of the upstream's feeds: not the scenarios' start prices, so a test can tell them apart."""

HOLDER_BALANCES = {"USDC": 50_000_000, "WETH": 20_000, "WBTC": 1_000}
"""What each listed holder owns on the upstream, in token units."""

GENESIS_TIME = 1_729_000_000
"""The stand-in starts at a mainnet-like time (October 2024). Its block numbers start at 0 (clients
such as ape read block 0 of a fork's upstream), so forks of it choose their EVM rules explicitly."""

HISTORY_ROUNDS = 12
ROUND_SPACING_S = 1200
PLAIN_SLOTS = 32
"""Storage slots copied when a contract is placed: every non-mapping variable of the mocks lives there
(their strings are under 32 bytes, so they are stored inline)."""

TOKEN_NAMES = {t.symbol: t.name for t in DEFAULT_TOKENS}


@dataclass(frozen=True)
class StandIn:
    """The stand-in as built: where it is and what its feeds and tokens say."""

    rpc_url: str
    chain: ChainInfo
    block: int
    """The head after set-up: the block a fork pins by default."""
    answers: dict[str, int]
    """Latest answer of each feed, in the feed's decimals."""
    round_ids: dict[str, int]
    """Latest (phase-encoded) round id of each feed."""
    total_supply: dict[str, int]


def place(w3: Web3, source: str, target: str) -> None:
    """Copy the runtime code and the plain storage of the contract at `source` to `target`: one
    batch to read, one to write the code, one to write the slots."""
    rpc = Rpc(str(getattr(w3.provider, "endpoint_uri", "")))
    slots = range(PLAIN_SLOTS)  # zeros too: whatever was at `target` before must not show through
    got = rpc.batch(
        [("eth_getCode", [source, "latest"])]
        + [("eth_getStorageAt", [source, hex(s), "latest"]) for s in slots]
    )
    if any(isinstance(x, RpcError) for x in got):
        raise ChainError(f"cannot read the contract at {source} to place it at {target}")
    rpc.call("anvil_setCode", [target, got[0]])
    rpc.batch(
        [
            ("anvil_setStorageAt", [target, hex(s), "0x" + v[2:].zfill(64)])
            for s, v in zip(slots, got[1:], strict=True)
        ]
    )


def _history(final: float, n: int, symbol: str) -> list[float]:
    """n prices ending at `final`: a small deterministic zig-zag (about 0.3 % a round)."""
    step = 0.003 if symbol != "USDC" else 0.0002
    return [final * (1 + step * math.sin(1.7 * (i - n + 1))) for i in range(n)]


def build_upstream(
    w3: Web3,
    chain: ChainInfo,
    artifacts: Mapping[str, Artifact],
    prices: Mapping[str, float] = UPSTREAM_PRICES,
) -> StandIn:
    """Put the chain's tokens and feeds at their real addresses on the (chain id 1) node behind `w3`."""
    missing = sorted(set(chain.feeds) - set(prices))
    if missing:
        raise ChainFileError(
            f"{chain.name}: the stand-in has no price for feed(s) {', '.join(missing)} "
            f"(it knows {', '.join(prices)})"
        )
    if w3.eth.chain_id != chain.chain_id:
        raise ChainError(
            f"the upstream node has chain id {w3.eth.chain_id}, {chain.name} is {chain.chain_id}"
        )
    owner = w3.eth.accounts[0]
    rpc = w3.provider.make_request
    # Block times a fixed step apart, not the wall clock's: the same stand-in has the same block
    # hashes on every start, so a fork of it can reuse its cache.
    rpc("anvil_setBlockTimestampInterval", [1])  # type: ignore[arg-type]
    t = w3.eth.get_block("latest")["timestamp"] + 3600
    supply: dict[str, int] = {}
    for symbol, info in chain.tokens.items():
        name = TOKEN_NAMES.get(symbol, symbol)
        fresh = deploy_contract(
            w3, artifacts["MockERC20"], owner, name, symbol, info.decimals, owner
        )
        place(w3, fresh, info.address)
        token = w3.eth.contract(
            address=Web3.to_checksum_address(info.address), abi=artifacts["MockERC20"].abi
        )
        for holder in info.holders:
            amount = HOLDER_BALANCES.get(symbol, 1_000_000) * 10**info.decimals
            send_and_wait(w3, token.functions.mint(Web3.to_checksum_address(holder), amount), owner)
        supply[symbol] = int(token.functions.totalSupply().call())
    answers, rounds = {}, {}
    for symbol, feed in chain.feeds.items():
        path = [
            round(p * 10**feed.decimals) for p in _history(prices[symbol], HISTORY_ROUNDS, symbol)
        ]
        description = f"{symbol} / USD"
        agg_address = deploy_contract(
            w3, artifacts["MockAggregator"], owner, feed.decimals, description, path[0], owner
        )
        agg = w3.eth.contract(
            address=Web3.to_checksum_address(agg_address), abi=artifacts["MockAggregator"].abi
        )
        for answer in path[1:]:
            t += ROUND_SPACING_S // len(chain.feeds)
            rpc("evm_setNextBlockTimestamp", [t])  # type: ignore[arg-type]
            send_and_wait(w3, agg.functions.updateAnswer(answer), owner)
        fresh = deploy_contract(w3, artifacts["MockFeedProxy"], owner, agg_address, owner)
        place(w3, fresh, feed.proxy)
        proxy = w3.eth.contract(
            address=Web3.to_checksum_address(feed.proxy), abi=artifacts["MockFeedProxy"].abi
        )
        # The placed copy says phase 1 but its phase table (a mapping) did not travel: confirming the
        # aggregator at the real address starts phase 2, as a real feed that has migrated once.
        send_and_wait(w3, proxy.functions.proposeAggregator(agg_address), owner)
        send_and_wait(w3, proxy.functions.confirmAggregator(agg_address), owner)
        latest = proxy.functions.latestRoundData().call()
        answers[symbol], rounds[symbol] = int(latest[1]), int(latest[0])
        if answers[symbol] != path[-1]:
            raise ChainError(
                f"upstream feed {symbol}: the proxy answers {latest[1]}, expected {path[-1]}"
            )
    rpc("evm_mine", [])  # type: ignore[arg-type]
    url = str(getattr(w3.provider, "endpoint_uri", ""))
    return StandIn(url, chain, w3.eth.block_number, answers, rounds, supply)


def start_upstream(
    port: int | None = None, chain_file: Path = CHAINS_DIR / "mainnet.yaml"
) -> tuple[AnvilNode, StandIn]:
    """Start an automining anvil with the chain's id and build the stand-in on it. Stops it on failure."""
    chain = load_chain_file(chain_file)
    artifacts = compile_contracts()
    node = AnvilNode(
        port=port,
        chain_id=chain.chain_id,
        accounts=2,
        timestamp=GENESIS_TIME,
    )
    node.start()
    try:
        up = build_upstream(Web3(Web3.HTTPProvider(node.rpc_url)), chain, artifacts)
    except BaseException:
        node.stop()
        raise
    return node, up


def run_upstream(port: int, chain_file: Path) -> int:
    """The CLI: build, print where it is, stay up until SIGINT/SIGTERM."""
    import signal

    from simulation.node import _port_problem, _until_signal

    if problem := _port_problem(port):
        print(
            f"marginsim upstream: cannot use port {port} on 127.0.0.1: {problem}", file=sys.stderr
        )
        return 2
    node = None
    try:
        with _until_signal():
            try:
                node, up = start_upstream(port, chain_file)
                prices = ", ".join(
                    f"{s} {a / 10 ** up.chain.feeds[s].decimals:g}" for s, a in up.answers.items()
                )
                print(
                    f"marginsim upstream: {up.chain.name} stand-in (chain id {up.chain.chain_id}) at "
                    f"{up.rpc_url}, block {up.block}; feeds: {prices}",
                    flush=True,
                )
                while True:
                    signal.pause()
            finally:
                if node is not None:
                    node.stop()
    except ChainFileError as e:
        print(f"marginsim upstream: {e}", file=sys.stderr)
        return 2
    except ChainError as e:
        print(f"marginsim upstream: {e}", file=sys.stderr)
        return 1
    print("marginsim upstream: stopped", flush=True)
    return 0
