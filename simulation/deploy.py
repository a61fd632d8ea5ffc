"""Deploy the whole protocol with web3.py and describe it in a manifest other tools can read.

One deployer for everything: the CLI, the ape script and the contract tests all call
`deploy_system`, so there is a single place that knows how the parts are wired.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.contract import Contract
from web3.types import RPCEndpoint

from simulation.build import Artifact
from simulation.units import QUOTE_FEED_BOUNDS_USD, WAD


def wad(x: float | int | str) -> int:
    """A decimal number as an 18-decimal fixed-point integer (exact for str and int input)."""
    from decimal import Decimal

    return int(Decimal(str(x)) * WAD)


@dataclass(frozen=True)
class MarketSpec:
    """One perpetual market, parameters in plain units (0.05 = 5 %)."""

    name: str
    asset: str
    """Symbol of the base asset's token (its oracle key): WETH or WBTC."""
    initial_margin: float = 0.05
    maintenance_margin: float = 0.03
    max_leverage: float = 20
    liquidation_penalty: float = 0.01
    keeper_share: float = 0.5
    spread: float = 0.0005
    impact_coefficient: float = 0.1
    open_interest_cap: float = 0.8
    min_notional_usd: float = 10
    vol_floor: float = 0.01
    """Hourly volatility under which there is no maintenance buffer."""
    vol_slope: float = 1.0
    max_buffer: float = 0.05
    min_fee: float = 0.003
    """Per-side floor of spread + impact: above half the oracle's deviation threshold (0.5 % by default),
    so that trading ahead of a round costs more than the round moves the price (0 turns it off)."""
    liquidation_cap_usd: float = 0
    """Most notional liquidations may close in the market in one block, USD (0: no cap)."""
    tier_notional_usd: float = 0
    """Notional above which a position's requirements carry `tier_margin` more, USD."""
    tier_margin: float = 0
    """Ratio added to both requirements on the notional above `tier_notional_usd` (0: no tier)."""
    funding_rate: float = 0
    """Funding per day, as a fraction of price, with the whole open interest on one side (scaled by the
    skew; 0: no funding)."""
    pool_loss_cap: float = 0
    """The most bad debt the LP pool absorbs from the market's liquidations in a day, a fraction of its
    trading liquidity; beyond it, auto-deleveraging (0: no cap)."""

    def params(self) -> tuple[int, ...]:
        """The on-chain MarketParams tuple, in field order."""
        fields = (
            "initial_margin",
            "maintenance_margin",
            "max_leverage",
            "liquidation_penalty",
            "keeper_share",
            "spread",
            "impact_coefficient",
            "open_interest_cap",
            "min_notional_usd",
            "vol_floor",
            "vol_slope",
            "max_buffer",
            "min_fee",
            "liquidation_cap_usd",
            "tier_notional_usd",
            "tier_margin",
            "funding_rate",
            "pool_loss_cap",
        )
        return tuple(wad(getattr(self, f)) for f in fields)


@dataclass(frozen=True)
class TokenSpec:
    symbol: str
    name: str
    decimals: int
    price_usd: float | None = None
    """Initial oracle price; None for the quote token (worth $1 by definition)."""
    collateral_weight: float | None = None
    liquidation_discount: float | None = None


DEFAULT_TOKENS = (
    TokenSpec("USDC", "USD Coin", 6),
    TokenSpec("WETH", "Wrapped Ether", 18, 3000.0, 0.80, 0.05),
    TokenSpec("WBTC", "Wrapped BTC", 8, 60000.0, 0.75, 0.06),
)
DEFAULT_MARKETS = (MarketSpec("ETH-USD", "WETH"), MarketSpec("BTC-USD", "WBTC", vol_floor=0.008))


MOCK_FEED_BOUNDS_USD = (0.01, 10_000_000)

MODULES = ("MarginLiquidator", "MarginAdmin", "MarginCross")
"""The vault's modules, deployed before it, in the order its constructor takes them."""
"""(min, max) price the oracle adapter accepts from each mock feed of the local system; a scenario's
prices are checked against these before anything starts (simulation.checks)."""


@dataclass(frozen=True)
class FeedSpec:
    """A price feed already on the chain (a real Chainlink proxy on a fork)."""

    address: str
    heartbeat_s: int
    min_usd: float
    max_usd: float


ERC20_FUNCTIONS = frozenset(
    {
        "name",
        "symbol",
        "decimals",
        "totalSupply",
        "balanceOf",
        "transfer",
        "allowance",
        "approve",
        "transferFrom",
        "Transfer",
        "Approval",
    }
)
"""The standard ERC-20 part of MockERC20's ABI: the ABI a real token on a fork is described with."""

Funder = Callable[[str, list[tuple[str, int]]], object]
"""fund(token symbol, [(recipient, amount in token units)]): how tokens reach accounts on a fork."""


@dataclass(frozen=True)
class SystemSpec:
    """What to deploy. Defaults are the local system every command and test starts from."""

    tokens: tuple[TokenSpec, ...] = DEFAULT_TOKENS
    markets: tuple[MarketSpec, ...] = DEFAULT_MARKETS
    feed_decimals: int = 8
    heartbeat_s: int = 3600
    vol_window_rounds: int = 8
    lp_liquidity_usd: float = 10_000_000
    insurance_usd: float = 100_000
    liquidation_at_fill_price: bool = True
    """Self-liquidation defence (see Defences in IMarginVault.sol): off, liquidations fill at the oracle
    price and the keeper reward is not capped at the equity a close leaves."""
    stale_collateral_at_zero: bool = True
    """Stale-collateral defence: off, collateral whose feed is stale makes the account's health revert."""
    lp_cooldown_s: int = 600
    """LP deposit cooldown: shares locked, and the deposit out of the liquidity trades are priced against,
    for this long (0 turns the just-in-time liquidity defence off)."""
    lp_exit_delay_s: int = 300
    """Exit-ahead-of-bad-debt defence: an LP exit is requested, then claimed this much later at the lower
    of its value at both times (0: claimable at once, and the one-step ERC-4626 redeem is open)."""
    existing_tokens: Mapping[str, str] | None = None
    """Symbol -> address of tokens already on the chain (a fork): used instead of deploying mocks."""
    existing_feeds: Mapping[str, FeedSpec] | None = None
    """Token symbol -> feed already on the chain: wired into the oracle instead of mock aggregators.
    May price the quote token too: the vault then values it at that feed, not at par."""
    quote_feed_usd: float | None = None
    """A mock feed for the quote token starting at this price (a local chain; on a fork the quote's feed
    is among `existing_feeds`). None: no feed for the quote."""
    quote_at_feed: bool = False
    """The vault values the quote at its feed (`Defences.quoteAtFeed`, fixed for the vault's life: a
    depeg shows in every margin and balance); False: at $1 whatever the feed says."""


DEFENCES_OFF = SystemSpec(
    markets=tuple(replace(m, min_fee=0) for m in DEFAULT_MARKETS),
    lp_cooldown_s=0,
    lp_exit_delay_s=0,
    liquidation_at_fill_price=False,
    stale_collateral_at_zero=False,
)
"""The local system with every defence of issue 7 off (what the review attacked, and what
scenarios/adversaries_unsafe.yaml runs): no LP cooldown, no fee floor, liquidations at the oracle price,
stale collateral reverting."""


@dataclass
class Deployment:
    """Addresses and ABIs of a deployed system, and web3 handles on them."""

    w3: Web3
    chain_id: int
    rpc_url: str
    deployer: str
    addresses: dict[str, str]
    abis: dict[str, list[dict[str, Any]]]
    """ABI by contract *type* (MockERC20, MarginVault, ...)."""
    kinds: dict[str, str]
    """Contract type of each named address (USDC -> MockERC20)."""
    markets: dict[str, int] = field(default_factory=dict)
    """Market id by name."""

    def contract(self, name: str) -> Contract:
        address = Web3.to_checksum_address(self.addresses[name])
        return self.w3.eth.contract(address=address, abi=self.abis[self.kinds[name]])

    def manifest(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "rpc_url": self.rpc_url,
            "deployer": self.deployer,
            "addresses": self.addresses,
            "contract_types": self.kinds,
            "markets": self.markets,
            "abis": self.abis,
        }

    def write_manifest(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.manifest(), indent=2))


def send_and_wait(w3: Web3, fn: Any, sender: str) -> Any:
    """Send one web3 transaction on an automining node and return its receipt; raise if it reverted."""
    receipt = w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}))
    if receipt["status"] != 1:
        raise RuntimeError(f"transaction reverted: {getattr(fn, 'fn_name', fn)}")
    return receipt


def deploy_contract(w3: Web3, art: Artifact, sender: str, *args: Any) -> str:
    """Deploy one contract from `sender` on an automining node; its address."""
    factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    return str(send_and_wait(w3, factory.constructor(*args), sender)["contractAddress"])


def deploy_system(
    w3: Web3,
    artifacts: Mapping[str, Artifact],
    deployer: str | None = None,
    spec: SystemSpec = SystemSpec(),
    rpc_url: str = "",
    fund: Funder | None = None,
) -> Deployment:
    """Deploy tokens, feeds, oracle, LP pool, insurance fund, vault and lens; wire and fund them.

    With `spec.existing_tokens` / `existing_feeds` (a fork) the real ones are wired instead of mocks
    and `fund` provides the pool's and the insurance fund's tokens instead of minting.
    Needs a node that mines each transaction (automine), as anvil does by default.
    """
    deployer = Web3.to_checksum_address(deployer or w3.eth.accounts[0])
    d = Deployment(w3, w3.eth.chain_id, rpc_url, deployer, {}, {}, {})

    def deploy(name: str, kind: str, *args: Any) -> Contract:
        d.addresses[name] = deploy_contract(w3, artifacts[kind], deployer, *args)
        d.abis[kind] = artifacts[kind].abi
        d.kinds[name] = kind
        return d.contract(name)

    if spec.existing_tokens is not None:
        erc20 = [e for e in artifacts["MockERC20"].abi if e.get("name") in ERC20_FUNCTIONS]
        for symbol, address in spec.existing_tokens.items():
            d.addresses[symbol], d.kinds[symbol] = Web3.to_checksum_address(address), "ERC20"
        d.abis["ERC20"] = erc20
        tokens = {t.symbol: d.contract(t.symbol) for t in spec.tokens}
    else:
        tokens = {
            t.symbol: deploy(t.symbol, "MockERC20", t.name, t.symbol, t.decimals, deployer)
            for t in spec.tokens
        }
    quote = spec.tokens[0]
    oracle = deploy("OracleAdapter", "OracleAdapter", deployer)
    feeds: dict[str, tuple[str, int, float, float]] = {}
    feed_abi = artifacts["MockAggregator"].abi
    if spec.existing_feeds is not None:
        d.abis["EACAggregatorProxy"] = artifacts["MockFeedProxy"].abi
        for symbol, f in spec.existing_feeds.items():
            name = f"FEED_{symbol}"
            d.addresses[name], d.kinds[name] = (
                Web3.to_checksum_address(f.address),
                "EACAggregatorProxy",
            )
            feeds[symbol] = (d.addresses[name], f.heartbeat_s, f.min_usd, f.max_usd)
    else:
        for t in spec.tokens[1:]:
            assert t.price_usd is not None
            answer = round(t.price_usd * 10**spec.feed_decimals)
            feed = deploy(
                f"FEED_{t.symbol}",
                "MockAggregator",
                spec.feed_decimals,
                f"{t.symbol} / USD",
                answer,
                deployer,
            )
            feeds[t.symbol] = (feed.address, spec.heartbeat_s, *MOCK_FEED_BOUNDS_USD)
        if spec.quote_feed_usd is not None:
            feed = deploy(
                f"FEED_{quote.symbol}",
                "MockAggregator",
                spec.feed_decimals,
                f"{quote.symbol} / USD",
                round(spec.quote_feed_usd * 10**spec.feed_decimals),
                deployer,
            )
            feeds[quote.symbol] = (feed.address, spec.heartbeat_s, *QUOTE_FEED_BOUNDS_USD)
    for symbol, (address, heartbeat, lo, hi) in feeds.items():
        # The adapter checks the feed answers with the decimals it is told: the feed's own, read here.
        feed_reader = w3.eth.contract(address=Web3.to_checksum_address(address), abi=feed_abi)
        decimals = feed_reader.functions.decimals().call()
        send_and_wait(
            w3,
            oracle.functions.setFeed(
                tokens[symbol].address,
                address,
                decimals,
                heartbeat,
                spec.vol_window_rounds,
                wad(lo),
                wad(hi),
            ),
            deployer,
        )
    pool = deploy(
        "LPPool",
        "LPPool",
        tokens[quote.symbol].address,
        deployer,
        spec.lp_cooldown_s,
        spec.lp_exit_delay_s,
    )
    insurance = deploy("InsuranceFund", "InsuranceFund", tokens[quote.symbol].address, deployer)
    parts = (
        tokens[quote.symbol].address,
        oracle.address,
        pool.address,
        insurance.address,
    )
    if spec.quote_at_feed and quote.symbol not in feeds:
        raise ValueError(f"quote_at_feed: the quote {quote.symbol} has no feed to be valued at")
    defences = (spec.liquidation_at_fill_price, spec.stale_collateral_at_zero, spec.quote_at_feed)
    # the vault's modules, run by delegatecall on its storage (see MarginVault's constructor)
    modules = [deploy(name, name, *parts, defences).address for name in MODULES]
    vault = deploy("MarginVault", "MarginVault", *parts, deployer, defences, modules)
    deploy("MarginLens", "MarginLens", vault.address)
    send_and_wait(w3, pool.functions.setVault(vault.address), deployer)
    send_and_wait(w3, insurance.functions.setVault(vault.address), deployer)
    for i, m in enumerate(spec.markets):
        send_and_wait(
            w3, vault.functions.createMarket(tokens[m.asset].address, m.params()), deployer
        )
        d.markets[m.name] = i
    for t in spec.tokens[1:]:
        if t.collateral_weight is not None and t.liquidation_discount is not None:
            send_and_wait(
                w3,
                vault.functions.setCollateral(
                    tokens[t.symbol].address, wad(t.collateral_weight), wad(t.liquidation_discount)
                ),
                deployer,
            )
    usdc = tokens[quote.symbol]
    unit = 10**quote.decimals
    lp = int(spec.lp_liquidity_usd * unit)
    ins = int(spec.insurance_usd * unit)
    if fund is not None:
        fund(quote.symbol, [(who, n) for who, n in ((deployer, lp), (insurance.address, ins)) if n])
    if lp:
        if fund is None:
            send_and_wait(w3, usdc.functions.mint(deployer, lp), deployer)
        send_and_wait(w3, usdc.functions.approve(pool.address, lp), deployer)
        send_and_wait(w3, pool.functions.deposit(lp, deployer), deployer)
    if ins and fund is None:
        send_and_wait(w3, usdc.functions.mint(insurance.address, ins), deployer)
    settle_lp_deposits(
        lambda method, params: w3.provider.make_request(RPCEndpoint(method), params)["result"],
        spec.lp_cooldown_s,
    )
    return d


def settle_lp_deposits(call: Callable[[str, list[Any]], Any], cooldown_s: int) -> None:
    """Mine an empty block two deposit cooldowns later, so every deposit made so far counts in the pool's
    trading liquidity (a deposit younger than the cooldown does not; see LPPool.tradingLiquidity). Two
    cooldowns stay within the feeds' one-hour heartbeat for the default 600 s. `call(method, params)`
    is one JSON-RPC request (web3's or the engine's)."""
    if cooldown_s == 0:
        return
    latest = int(call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    call("evm_mine", [latest + 2 * cooldown_s])
