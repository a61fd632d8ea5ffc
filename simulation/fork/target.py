"""Where a fork run forks from: the URL (a secret: never printed), the block, the cache; the probe of
the upstream before anvil starts; the fork's anvil."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests

from simulation.chain import AnvilNode
from simulation.chains import ChainFileError, ChainInfo, chain_for
from simulation.redact import register

FORK_URL_ENV = "MARGINSIM_FORK_URL"
"""Where the fork URL is read from when the scenario asks for a fork and no --fork-url is given."""
FORK_CACHE_ENV = "MARGINSIM_FORK_CACHE"
DEFAULT_CACHE = Path.home() / ".cache" / "marginsim" / "fork"
PROBE_TIMEOUT_S = 15.0


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
