"""Building the agents of a run from its scenario and deployment (traders, LPs, keepers, the oracle,
adversaries), and what they need of the deployed protocol, read once at set-up."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from simulation.abi import ContractAbi
from simulation.agents.adversaries import (
    Adversary,
    AdversaryContext,
    MarketTerms,
    addresses_needed,
    make_adversary,
)
from simulation.agents.deleverager import Deleverager
from simulation.agents.keepers import Keeper, KeeperContext
from simulation.agents.lps import LiquidityProvider
from simulation.agents.oracle import OracleAgent
from simulation.agents.traders import Trader, TraderContext
from simulation.deploy import Deployment
from simulation.scenario import Scenario
from simulation.state import Addresses, ChainReader

"""`MarketParams.poolLossCapWad`'s place in the struct."""
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
    keepers: list[Keeper]
    lps: list[LiquidityProvider]
    adversaries: list[Adversary] = field(default_factory=list)
    deleverager: Deleverager | None = None
    """The protocol's auto-deleveraging bot, where a market caps the pool's losses."""


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
    then adversaries, so that adding adversaries changes no other agent's address). Tells the reader
    which addresses its snapshots read."""
    sc, a, deployer = b.sc, b.d.addresses, b.d.deployer
    it = iter(x.lower() for x in accounts[1:])  # lowercase, as eth_abi decodes addresses
    tctx = TraderContext(
        a["MarginVault"],
        a["USDC"],
        b.abis["MarginVault"],
        b.market_ids,
        {i: n.split("-")[0] for n, i in b.market_ids.items()},
    )
    traders = []
    for g in sc.traders:
        for k in range(g.count):
            seed = agent_seed(sc.seed, g.name, k)
            traders.append(Trader(f"{g.name}-{k}", next(it), g, seed, tctx))
    lps = [
        LiquidityProvider(f"{g.name}-{k}", next(it), g, a["LPPool"], b.abis["LPPool"])
        for g in sc.lps
        for k in range(g.count)
    ]
    vault = b.abis["MarginVault"]
    terms = market_terms(b.protocol)
    kctx = KeeperContext(
        a["MarginVault"],
        vault,
        {i: t.penalty for i, t in terms.items()},
        {i: t.keeper_share for i, t in terms.items()},
        b.market_ids["ETH-USD"],
        {i: max(t.spread, t.min_fee) for i, t in terms.items()},
        b.protocol.min_collateral_discount,
        {i: t.liquidation_cap for i, t in terms.items() if t.liquidation_cap},
    )
    keepers = [Keeper(cfg, next(it), kctx) for cfg in sc.keepers]
    fork = b.fork
    oracle = OracleAgent(
        sc.oracle,
        deployer,
        b.addr.feeds,
        {s: a[t] for s, t in SYMBOL_TOKEN.items()},
        fork.decimals if fork else {s: 8 for s in b.addr.feeds},
        b.abis[b.d.kinds["FEED_WETH"]],
        a["OracleAdapter"],
        b.abis["OracleAdapter"],
        driven=fork.feeds if fork else None,
        rules=fork.rules if fork else None,
    )
    b.reader.cross_accounts = [t.address for t in traders if t.cfg.margin_mode != "isolated"]
    b.reader.lps = [lp.address for lp in lps]
    adversaries = _build_adversaries(b, it, terms)
    capped = any(p["poolLossCapWad"] for p in b.protocol.market_params.values())
    deleverager = Deleverager(deployer, a["MarginVault"], vault) if capped else None
    b.reader.read_deficits = capped
    return Agents(oracle, traders, keepers, lps, adversaries, deleverager)


def _build_adversaries(
    b: Build, it: Iterator[str], terms: dict[int, MarketTerms]
) -> list[Adversary]:
    """After every other agent, so that adding adversaries changes no other agent's address."""
    if not b.sc.adversaries:
        return []
    a = b.d.addresses
    ctx = AdversaryContext(
        a["MarginVault"],
        a["LPPool"],
        {t: a[t] for t in ("USDC", "WETH", "WBTC")},
        b.abis["MarginVault"],
        b.abis["LPPool"],
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
    b.reader.tokens = dict(ctx.tokens)
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
            spread=p["spreadWad"],
            min_fee=p["minFeeWad"],
            impact=p["impactCoefficientWad"],
            penalty=p["liquidationPenaltyWad"],
            keeper_share=p["keeperShareWad"],
            min_notional=p["minNotionalUsd"],
            liquidation_cap=p["liquidationCapUsd"],
        )
        for i, p in protocol.market_params.items()
    }


def agent_seed(seed: int, group: str, index: int) -> int:
    """A per-agent seed derived from the scenario seed, stable across Python runs (no hash())."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{group}/{index}".encode()).digest()[:8], "big")
