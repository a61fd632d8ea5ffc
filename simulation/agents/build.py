"""Building the agents of a run from its scenario and deployment (traders, LPs, keepers, the oracle,
adversaries), and what they need of the deployed protocol, read once at set-up."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from simulation import plugins
from simulation.abi import ContractAbi
from simulation.actions import Encoder
from simulation.agents.adversaries import (
    Adversary,
    AdversaryContext,
    addresses_needed,
    make_adversary,
)
from simulation.agents.base import Agent, AgentContext, MarketTerms
from simulation.agents.deleverager import Deleverager
from simulation.agents.keepers import Keeper
from simulation.agents.lps import LiquidityProvider
from simulation.agents.oracle import OracleAgent
from simulation.agents.traders import Trader, TraderContext
from simulation.deploy import Deployment
from simulation.scenario import KeeperConfig, PluginSpec, Scenario
from simulation.state import Addresses, ChainReader

SYMBOL_TOKEN = {"ETH": "WETH", "BTC": "WBTC"}
"""Feed symbol -> token it prices, for the feeds that have a market."""


@dataclass
class ForkContext:
    """What a fork run adds: the real feeds the oracle drives and how agents get real tokens."""

    feeds: dict[str, Any]
    """Feed symbol -> simulation.fork.ForkFeed (ETH, BTC and the quote's)."""
    fund: Callable[[str, list[tuple[str, int]]], object]
    quote_symbol: str = "USDC"

    @property
    def decimals(self) -> dict[str, int]:
        return {s: f.info.decimals for s, f in self.feeds.items()}

    @property
    def rules(self) -> dict[str, tuple[float, int]]:
        """Feed symbol -> (deviation, heartbeat) from the chain data file."""
        return {s: (f.info.deviation, f.info.heartbeat_s) for s, f in self.feeds.items()}


@dataclass(frozen=True)
class ProtocolReads:
    """What the agents need of the deployed protocol, read once at set-up."""

    market_params: dict[int, dict[str, int]]
    """Market id -> its MarketParams by field name (the struct's own names: `poolLossCapWad`, ...)."""
    min_collateral_discount: int
    """The smallest liquidation discount of the cross collateral tokens (wad)."""
    liquidation_at_fill_price: bool
    """The vault's self-liquidation defence flag."""
    deposit_cooldown_s: int
    """The LP pool's deposit cooldown."""
    quote_at_feed: bool = False
    """The vault values the quote at its feed (`quoteAtFeed`), not at par."""


@dataclass
class Agents:
    oracle: OracleAgent
    traders: list[Trader]
    keepers: list[Agent]
    """The built-in keepers and plugin keepers, in the scenario's order."""
    lps: list[LiquidityProvider]
    adversaries: list[Adversary] = field(default_factory=list)
    deleverager: Deleverager | None = None
    """The protocol's auto-deleveraging bot, where a market caps the pool's losses."""
    plugins: list[Agent] = field(default_factory=list)
    """The scenario's `agents:` (plugin agents that are not keepers)."""

    def in_order(self) -> list[Agent]:
        """Every agent in the order they decide in a block (the order breaks equal fee bids)."""
        out: list[Agent] = [self.oracle, *self.traders, *self.lps, *self.keepers]
        out += self.adversaries
        if self.deleverager is not None:
            out.append(self.deleverager)
        return out + self.plugins


@dataclass
class Build:
    """What building the agents needs: the scenario, the deployment, its ABIs and addresses, the reader
    (told which addresses its snapshots read), the protocol's parameters, and the fork if any."""

    sc: Scenario
    d: Deployment
    abis: dict[str, ContractAbi]
    addr: Addresses
    market_ids: dict[str, int]
    reader: ChainReader
    protocol: ProtocolReads
    fork: ForkContext | None = None


def build_agents(b: Build, accounts: Sequence[str]) -> Agents:
    """Every agent of the scenario, each with its address (in a fixed order: traders, LPs, keepers,
    adversaries, then plugin agents, so that adding adversaries or plugins changes no other agent's
    address). Tells the reader which addresses its snapshots read."""
    sc, deployer = b.sc, b.d.deployer
    it = iter(x.lower() for x in accounts[1:])  # lowercase, as eth_abi decodes addresses
    tctx = TraderContext(b.market_ids, {i: n.split("-")[0] for n, i in b.market_ids.items()})
    traders = []
    for g in sc.traders:
        for k in range(g.count):
            seed = agent_seed(sc.seed, g.name, k)
            traders.append(Trader(f"{g.name}-{k}", next(it), g, seed, tctx))
    lps = [LiquidityProvider(f"{g.name}-{k}", next(it), g) for g in sc.lps for k in range(g.count)]
    terms = market_terms(b.protocol)
    keepers = [_agent(b, cfg, next(it), terms) for cfg in sc.keepers]
    fork = b.fork
    oracle = OracleAgent(
        sc.oracle,
        deployer,
        list(b.addr.feeds),
        list(SYMBOL_TOKEN),
        fork.decimals if fork else {s: 8 for s in b.addr.feeds},
        driven=fork.feeds if fork else None,
        rules=fork.rules if fork else None,
    )
    b.reader.cross_accounts = [t.address for t in traders if t.cfg.margin_mode != "isolated"]
    b.reader.lps = [lp.address for lp in lps]
    adversaries = _build_adversaries(b, it, terms)
    capped = any(p["poolLossCapWad"] for p in b.protocol.market_params.values())
    deleverager = Deleverager(deployer) if capped else None
    b.reader.read_deficits = capped
    others = [_agent(b, spec, next(it), terms) for spec in sc.agents]
    return Agents(oracle, traders, keepers, lps, adversaries, deleverager, others)


def agent_context(b: Build, name: str, terms: dict[int, MarketTerms]) -> AgentContext:
    """What a keeper or plugin agent knows of the deployment."""
    return AgentContext(
        markets=dict(b.market_ids),
        terms=terms,
        contracts=dict(b.d.addresses),
        block_time_s=b.sc.block_time_s,
        seed=agent_seed(b.sc.seed, name, 0),
        collateral_discount_wad=b.protocol.min_collateral_discount,
        liquidation_at_fill_price=b.protocol.liquidation_at_fill_price,
        quote_at_feed=b.protocol.quote_at_feed,
    )


def _agent(
    b: Build, cfg: KeeperConfig | PluginSpec, address: str, terms: dict[int, MarketTerms]
) -> Agent:
    """A keeper or plugin agent, built the one way every agent class is: (config, address, context)."""
    ctx = agent_context(b, cfg.name, terms)
    if isinstance(cfg, PluginSpec):
        return plugins.build(cfg)(cfg.config, address, ctx)
    return Keeper(cfg, address, ctx)


def encoder(d: Deployment, abis: dict[str, ContractAbi], addr: Addresses) -> Encoder:
    """The engine's encoder of actions into transactions, for this deployment."""
    a = d.addresses
    return Encoder(
        vault=a["MarginVault"],
        pool=a["LPPool"],
        oracle=a["OracleAdapter"],
        vault_abi=abis["MarginVault"],
        pool_abi=abis["LPPool"],
        oracle_abi=abis["OracleAdapter"],
        feed_abi=abis[d.kinds["FEED_WETH"]],
        tokens={t: a[t] for t in ("USDC", "WETH", "WBTC")},
        feeds=dict(addr.feeds),
        assets={s: a[t] for s, t in SYMBOL_TOKEN.items()},
    )


def _build_adversaries(
    b: Build, it: Iterator[str], terms: dict[int, MarketTerms]
) -> list[Adversary]:
    """After every other agent, so that adding adversaries changes no other agent's address."""
    if not b.sc.adversaries:
        return []
    a = b.d.addresses
    ctx = AdversaryContext(
        b.market_ids,
        terms,
        b.sc.oracle,
        b.protocol.liquidation_at_fill_price,
    )
    out = []
    for cfg in b.sc.adversaries:
        addresses = tuple(next(it) for _ in range(addresses_needed(cfg)))
        out.append(make_adversary(cfg, addresses, ctx))
    b.reader.wallets = [w for adv in out for w in adv.addresses]
    b.reader.tokens = {t: a[t] for t in ("USDC", "WETH", "WBTC")}
    b.reader.cross_accounts += [adv.address for adv in out if adv.cfg.kind in ("jit_lp", "griefer")]
    return out


def read_protocol(
    reader: ChainReader, d: Deployment, abis: dict[str, ContractAbi], market_ids: dict[str, int]
) -> ProtocolReads:
    """What the agents need of the deployed protocol, read once: two batched requests."""
    a, vault, pool = d.addresses, abis["MarginVault"], abis["LPPool"]
    ids = sorted(market_ids.values())
    *markets, tokens, at_fill, cooldown, at_feed = reader.views(
        [(a["MarginVault"], vault["market"], (i,)) for i in ids]
        + [
            (a["MarginVault"], vault["collateralTokens"], ()),
            (a["MarginVault"], vault["liquidationAtFillPrice"], ()),
            (a["LPPool"], pool["depositCooldown"], ()),
            (a["MarginVault"], vault["quoteAtFeed"], ()),
        ]
    )
    configs = reader.views([(a["MarginVault"], vault["collateralConfig"], (t,)) for t in tokens[0]])
    at = vault.struct_fields("market").index("params")
    names = vault.struct_fields("market", "params")
    return ProtocolReads(
        {i: dict(zip(names, m[0][at], strict=True)) for i, m in zip(ids, markets, strict=True)},
        min((int(c[0][3]) for c in configs), default=0),
        bool(at_fill[0]),
        int(cooldown[0]),
        bool(at_feed[0]),
    )


def market_terms(protocol: ProtocolReads) -> dict[int, MarketTerms]:
    """Each market's fee and liquidation parameters, from its MarketParams tuple."""
    return {
        i: MarketTerms(
            spread_wad=p["spreadWad"],
            min_fee_wad=p["minFeeWad"],
            impact_wad=p["impactCoefficientWad"],
            penalty_wad=p["liquidationPenaltyWad"],
            keeper_share_wad=p["keeperShareWad"],
            min_notional_usd=p["minNotionalUsd"],
            liquidation_cap_usd=p["liquidationCapUsd"],
        )
        for i, p in protocol.market_params.items()
    }


def agent_seed(seed: int, group: str, index: int) -> int:
    """A per-agent seed derived from the scenario seed, stable across Python runs (no hash())."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{group}/{index}".encode()).digest()[:8], "big")
