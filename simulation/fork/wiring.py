"""Wiring the simulation to a fork: its assets checked, the simulated aggregators behind its real
proxies, the markets started at the fork block's prices, the deployment spec on its real tokens and
feeds, and how agents get funded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from web3 import Web3

from simulation.agents.build import SYMBOL_TOKEN, ForkContext
from simulation.build import Artifact
from simulation.deploy import DEFAULT_TOKENS, FeedSpec, SystemSpec, TokenSpec
from simulation.fork.assets import check_assets
from simulation.fork.feeds import install_feeds, refresh_stale_rounds
from simulation.fork.funding import clear_account_code, fund_token
from simulation.fork.target import Upstream
from simulation.rpc import Rpc
from simulation.scenario import Scenario


def wire_fork(
    w3: Web3,
    url: str,
    up: Upstream,
    artifacts: Mapping[str, Artifact],
    agents: Sequence[str],
    sc: Scenario,
    info: dict[str, Any],
    protocol: dict[str, Any],
) -> tuple[Scenario, SystemSpec, ForkContext]:
    """Check the chain's assets, put the simulated aggregators behind its proxies and start the
    markets at the fork block's real prices. Fills `info` (the summary's `fork` section). `protocol`:
    the SystemSpec fields the scenario's `protocol:` section sets."""
    chain, rpc = up.chain, Rpc(url)
    supply = check_assets(rpc, chain, up.block)
    clear_account_code(rpc, agents)
    feeds = install_feeds(w3, rpc, chain, artifacts, agents[0])
    info["heartbeat_rounds"] = refresh_stale_rounds(rpc, feeds)
    start = dict(sc.market.start)
    for symbol in ("ETH", "BTC"):
        start[symbol] = feeds[symbol].answer / 10 ** feeds[symbol].info.decimals
    sc = sc.model_copy(update={"market": sc.market.model_copy(update={"start": start})})
    funding: dict[str, list[str]] = {}

    def fund(symbol: str, grants: list[tuple[str, int]]) -> object:
        """Every call's method is recorded: the pool and insurance fund's, then the agents'."""
        method = fund_token(rpc, chain, symbol, grants)
        funding.setdefault(symbol, []).append(method)
        return method

    protocol = dict(protocol)
    base = {t.symbol: t for t in protocol.pop("tokens", DEFAULT_TOKENS)}
    tokens = tuple(
        TokenSpec(
            s,
            base[s].name,
            chain.tokens[s].decimals,
            start.get(next((f for f, t in SYMBOL_TOKEN.items() if t == s), "")),
            base[s].collateral_weight,
            base[s].liquidation_discount,
        )
        for s in ("USDC", "WETH", "WBTC")
    )
    spec = SystemSpec(
        tokens=tokens,
        **protocol,
        existing_tokens={s: chain.tokens[s].address for s in ("USDC", "WETH", "WBTC")},
        existing_feeds={
            f.asset: FeedSpec(f.proxy, f.heartbeat_s, f.min_usd, f.max_usd)
            for f in chain.feeds.values()
        },
    )
    ctx = ForkContext(
        feeds=dict(feeds),
        fund=fund,
        quote_symbol=chain.quote,
    )
    info["tokens"] = {
        s: {
            "address": chain.tokens[s].address,
            "decimals": chain.tokens[s].decimals,
            "total_supply_at_fork": supply[s],
        }
        for s in ("USDC", "WETH", "WBTC")
    }
    info["funding"] = funding
    info["feeds"] = {
        s: {
            "proxy": f.proxy,
            "aggregator": f.aggregator,
            "decimals": f.info.decimals,
            "phase": f.phase,
            "first_answer": f.history[-1][1],
            "first_round_id": (f.phase << 64) | f.history[-1][0],
            "rounds_copied": len(f.history),
        }
        for s, f in feeds.items()
    }
    return sc, spec, ctx
