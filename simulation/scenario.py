"""Scenario files: what a run simulates. Validated before anything starts; a bad file gets one message
naming the file, the field and the reason."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SerializeAsAny,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from simulation.market import MarketConfig
from simulation.units import QUOTE_FEED_BOUNDS_USD


class _Model(BaseModel):
    # allow_inf_nan=False: inf and NaN (`.inf`, `.nan`, `1e999`, "nan") are refused in every float
    # field with the field's path; magnitudes are bounded per field (and against the deployment in
    # simulation.checks).
    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False
    )


class Window(_Model):
    """A block range, start inclusive, end exclusive."""

    start_block: int = Field(ge=0)
    """First block of the window."""
    end_block: int = Field(gt=0)
    """First block after the window."""

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end_block <= self.start_block:
            raise ValueError(
                f"end_block {self.end_block} must be after start_block {self.start_block}"
            )
        return self

    def contains(self, block: int) -> bool:
        return self.start_block <= block < self.end_block


class BaseFeeWindow(Window):
    """Blocks whose base fee is set, whatever EIP-1559 would give (a gas spike); after the window the
    base fee follows EIP-1559 again from there."""

    gwei: float = Field(gt=0, le=1_000_000)


class Outage(Window):
    """An oracle outage: no rounds in the window, of every feed or only of `assets`."""

    assets: tuple[str, ...] = ()
    """Feed symbols (ETH, BTC) that stop; empty: every feed."""

    def stops(self, block: int, symbol: str) -> bool:
        """Whether the feed of `symbol` gets no round in `block`."""
        return self.contains(block) and (not self.assets or symbol in self.assets)


class OracleConfig(_Model):
    """The oracle agent: Chainlink's update rule over the market price."""

    deviation: float = Field(0.005, gt=0, lt=1)
    """A new round when the price moved at least this fraction from the last round (0.005 = 0.5 %)."""
    heartbeat_s: int = Field(3600, gt=0)
    """A new round when this many seconds passed since the last one."""
    delay_blocks: int = Field(0, ge=0)
    """The oracle reports the market price of this many blocks ago."""
    outages: tuple[Outage, ...] = ()
    """Windows with no rounds (the on-chain price goes stale after the adapter's heartbeat): of every
    feed, or of the feeds an outage names in its `assets`."""


class Range(_Model):
    """A uniform draw between min and max."""

    min: float = Field(gt=0)
    max: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.max < self.min:
            raise ValueError(f"max {self.max} is below min {self.min}")
        return self


class RebalanceConfig(_Model):
    """Automated margin top-ups of isolated positions (what traders use to avoid liquidation)."""

    below_health: float = Field(1.5, gt=1, le=1000)
    """Top up when equity / maintenance falls under this."""
    top_up_fraction: float = Field(0.25, gt=0, le=2)
    """Each top-up adds this fraction of the position's current margin."""
    budget_usd: float = Field(gt=0)
    """Wallet set aside for top-ups; none once spent."""


class TraderGroup(_Model):
    """A group of traders sharing a strategy; each has its own seeded random generator."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    """Group name, used in outputs."""
    count: int = Field(gt=0, le=200)
    strategy: Literal["random", "momentum", "mean_reversion", "pairs", "hedged_pair"] = "random"
    """random: coin flip; momentum: follow the move over `lookback_blocks`; mean_reversion: fade it;
    pairs: long the asset that outperformed the other over `lookback_blocks`, short the other (hedged);
    hedged_pair: long its first market and short the second, or the reverse (drawn once per trader),
    held until a stop, a take-profit or a liquidation (never flipped)."""
    margin_mode: Literal["isolated", "cross", "portfolio"] = "isolated"
    """isolated: each position its own margin; cross: one account, requirements summed leg by leg;
    portfolio: one account margined on its net risk (hedged legs offset each other by the markets'
    correlation, `MarginVault.setPortfolioMargin`)."""
    markets: tuple[str, ...] = ("ETH-USD", "BTC-USD")
    leverage: Range = Range(min=2, max=10)
    """Leverage of each new position, drawn uniformly."""
    margin_usd: Range = Range(min=500, max=5000)
    """Margin committed to each new position, drawn uniformly."""
    trade_probability: float = Field(0.02, gt=0, le=1)
    """Chance per block and market that the trader considers a trade."""
    lookback_blocks: int = Field(20, gt=0)
    stop_loss: float | None = Field(0.6, gt=0, le=100)
    """Close when the loss reaches this fraction of the margin; null disables."""
    take_profit: float | None = Field(1.0, gt=0, le=1000)
    """Close when the profit reaches this fraction of the margin; null disables."""
    wallet_usd: float = Field(100_000, gt=0)
    """USDC minted to each trader at the start."""
    rebalance: RebalanceConfig | None = None


class LpGroup(_Model):
    """Liquidity providers of the pool."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    count: int = Field(1, gt=0, le=50)
    deposit_usd: float = Field(gt=0)
    """Deposited by each LP before block 1."""
    withdraw_on_drawdown: float | None = Field(None, gt=0, lt=1)
    """Withdraw when the share price is this fraction under its peak; null never withdraws."""
    withdraw_fraction: float = Field(0.5, gt=0, le=1)


MAX_PRIORITY_FEE_GWEI = 10_000


class AgentConfig(_Model):
    """What every agent's config has. A plugin's own config extends it (simulation.api)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    latency_blocks: int = Field(0, ge=0, le=100)
    """Acts on what it saw this many blocks ago (`Observation.seen`)."""


class KeeperConfig(AgentConfig):
    """A liquidation bot competing with the others."""

    priority_fee_gwei: float = Field(1.0, ge=0, le=MAX_PRIORITY_FEE_GWEI)
    """Priority fee bid: higher goes first in the block (at most 10,000 gwei: a keeper's dev account
    holds 10,000 ETH, which pays for a few liquidations at that price)."""
    min_profit_usd: float = Field(0.0, ge=-1e9, le=1e9)
    """Liquidates only when the expected reward minus gas cost exceeds this."""
    outages: tuple[Window, ...] = ()


class PluginSpec(_Model):
    """An agent of a class named in the scenario: `class: package.module:Class` (imported from the
    Python path, the working directory or the scenario's directory), or a name registered in the
    `marginsim.agents` entry-point group. Its other fields are its config, validated by the class's
    own `Config` model (simulation.api.AgentConfig or a subclass)."""

    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "type": "object",
            "required": ["name", "class"],
            "properties": {
                "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"},
                "class": {"type": "string", "minLength": 1},
            },
            "additionalProperties": True,
        },
    )

    class_path: str = Field(alias="class", min_length=1)
    config: SerializeAsAny[AgentConfig]

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def latency_blocks(self) -> int:
        return self.config.latency_blocks

    @model_serializer
    def _flat(self) -> dict[str, Any]:
        """As written in the scenario: its class beside its config's fields."""
        return {"class": self.class_path, **self.config.model_dump(mode="json")}


def _plugins(field: str, entries: object, info: ValidationInfo) -> object:
    """Each entry naming a `class` becomes a PluginSpec, its config validated by the class's Config."""
    if not isinstance(entries, list | tuple):
        return entries
    # the loader imports the agent API, which imports this module
    from simulation.plugins import plugin_spec

    where = (info.context or {}).get("dir")
    return tuple(
        plugin_spec(f"{field}.{i}", e, where) if isinstance(e, dict) and "class" in e else e
        for i, e in enumerate(entries)
    )


def _keeper_kind(entry: object) -> str:
    """A keepers: entry is a plugin when it names a class, else the built-in keeper's config (one
    member validated, so an error names the entry's own field and nothing from the other)."""
    if isinstance(entry, PluginSpec) or (isinstance(entry, dict) and "class" in entry):
        return "plugin"
    return "builtin"


KeeperEntry = Annotated[
    Annotated[KeeperConfig, Tag("builtin")] | Annotated[PluginSpec, Tag("plugin")],
    Discriminator(_keeper_kind),
]
UNION_TAGS = frozenset({"builtin", "plugin"})
"""The tags of the scenario's tagged unions, left out of an error's field path."""


MARKET_PARAM_FIELDS = {
    "initial": "initial_margin",
    "maintenance": "maintenance_margin",
    "max_leverage": "max_leverage",
    "liquidation_penalty": "liquidation_penalty",
    "keeper_share": "keeper_share",
    "spread": "spread",
    "impact": "impact_coefficient",
    "oi_cap": "open_interest_cap",
    "min_notional_usd": "min_notional_usd",
    "buffer_floor": "vol_floor",
    "buffer_slope": "vol_slope",
    "buffer_cap": "max_buffer",
    "liquidation_cap_usd": "liquidation_cap_usd",
    "tier_notional_usd": "tier_notional_usd",
    "tier_margin": "tier_margin",
    "funding_rate": "funding_rate",
    "pool_loss_cap": "pool_loss_cap",
}
"""A market's scenario field -> simulation.deploy.MarketSpec's field."""


class MarketParams(_Model):
    """One market's parameters, plain units (0.03 = 3 %); one left out keeps the deployment's default
    (simulation.deploy.DEFAULT_MARKETS). Checked against the contracts' own bounds before anything
    starts (simulation.params)."""

    initial: float | None = Field(None, ge=0)
    """Initial margin ratio: equity / notional an open needs."""
    maintenance: float | None = Field(None, ge=0)
    """Maintenance margin ratio, before the volatility buffer: under it a position is liquidatable."""
    max_leverage: float | None = Field(None, ge=0)
    liquidation_penalty: float | None = Field(None, ge=0)
    """Fraction of the liquidated notional taken from the position."""
    keeper_share: float | None = Field(None, ge=0)
    """The keeper's part of the penalty (the rest goes to the insurance fund)."""
    spread: float | None = Field(None, ge=0)
    impact: float | None = Field(None, ge=0)
    """Price impact coefficient: impact = impact * notional / pool liquidity (capped at 5 %)."""
    oi_cap: float | None = Field(None, ge=0)
    """Open interest cap, as a multiple of the pool's value."""
    min_notional_usd: float | None = Field(None, ge=0)
    buffer_floor: float | None = Field(None, ge=0)
    """Hourly volatility under which the maintenance buffer is 0."""
    buffer_slope: float | None = Field(None, ge=0)
    """Buffer added per unit of hourly volatility above the floor."""
    buffer_cap: float | None = Field(None, ge=0)
    """The largest buffer."""
    liquidation_cap_usd: float | None = Field(None, ge=0)
    """Most notional liquidations may close in the market in one block, USD (0: no cap), as dYdX and
    Synthetix limit them; a liquidation beyond it closes what room is left, the rest waits (the queue)."""
    tier_notional_usd: float | None = Field(None, ge=0)
    """Size-tiered margin: notional (USD) above which a position's requirements carry `tier_margin`
    more, on the part above it (bigger positions need a higher ratio, as on Hyperliquid and dYdX)."""
    tier_margin: float | None = Field(None, ge=0)
    """Ratio added to the initial and maintenance requirements on the notional above
    `tier_notional_usd` (0: no tier; at most 0.2)."""
    funding_rate: float | None = Field(None, ge=0)
    """Funding per day, as a fraction of price, when the whole open interest is on one side; the rate
    scales with the skew (net size / open interest), accrues every second and is paid by the heavier
    side to the lighter side and the pool (0: no funding, the default; at most 1)."""
    pool_loss_cap: float | None = Field(None, ge=0)
    """The most bad debt the LP pool absorbs from this market's liquidations in a day (UTC), as a fraction
    of its trading liquidity; beyond it the rest is auto-deleveraged: profitable positions on the other
    side are reduced, ranked by profit and leverage, and their profit pays it (0: no cap, the default)."""


class CollateralParams(_Model):
    """A cross-collateral token's terms; one left out keeps the deployment's default."""

    weight: float | None = Field(None, ge=0)
    """Share of its value that counts toward a cross account's equity."""
    discount: float | None = Field(None, ge=0)
    """Discount to the oracle price at which a liquidation sells it to the keeper."""


class ProtocolConfig(_Model):
    """Deployment knobs of the local system."""

    lp_liquidity_usd: float = Field(0, ge=0)
    """Seed liquidity the deployer puts in the pool (besides the LP agents)."""
    insurance_usd: float = Field(100_000, ge=0)
    lp_cooldown_s: int = Field(600, ge=0, le=1800)
    """Defence against just-in-time liquidity: an LP deposit's shares are locked, and the deposit is left
    out of the liquidity trades are priced against, for this many seconds. 0 turns it off. At most half
    the feeds' one-hour heartbeat (the run lets the initial deposits settle for two cooldowns)."""
    lp_exit_delay_s: int = Field(300, ge=0, le=86_400)
    """Defence against LPs exiting ahead of bad debt: an exit is requested, then claimed this many seconds
    later at the lower of its value at both times, so keepers realise the bad debt first. 0 turns it off
    (claimable at once)."""
    liquidation_at_fill_price: bool = True
    """Defence against self-liquidation through a second address: a liquidation closes at the fill price
    an owner's close would get and the keeper's reward is capped at the equity the close leaves. false
    turns it off (fills at the oracle price)."""
    stale_collateral_at_zero: bool = True
    """Defence against a stale collateral feed blocking liquidations: such collateral counts as 0. false
    turns it off (the account's health reverts while the feed is stale)."""
    quote_at_par: bool = False
    """With a market path for USDC (`market.start.USDC`; on a fork, the chain's USDC/USD feed), the quote
    has a feed the oracle agent pushes and the vault values margin, balances and pool cash at it. true: the
    vault values USDC at $1 whatever its feed says (the summary's `quote` measures what that hides)."""
    min_fee: float = Field(0.003, ge=0, le=0.02)
    """Defence against trading ahead of oracle rounds: the per-side floor of spread + impact, as a fraction
    of price, in every market. Above half the oracle's deviation threshold, a round trip costs more than a
    round moves the price. 0 turns it off."""
    markets: dict[Literal["ETH-USD", "BTC-USD"], MarketParams] = {}
    """Per market, the parameters the owner can set (e.g. `ETH-USD: {maintenance: 0.05}`)."""
    collateral: dict[Literal["WETH", "WBTC"], CollateralParams] = {}
    """Per cross-collateral token, its weight and liquidation discount."""
    heartbeat_s: int = Field(3600, gt=0, le=2**32 - 1)
    """The oracle adapter's staleness limit: a feed older than this is stale (local chain; on a fork the
    real feeds' own heartbeats hold)."""


AdversaryKind = Literal["jit_lp", "oracle_frontrunner", "self_liquidator", "griefer", "manipulator"]


class AdversaryConfig(_Model):
    """An agent that tries every block to extract value from the protocol (simulation.agents.adversaries).
    Its PnL (mark-to-market, after gas, in USD) is in the summary's `adversaries` and the time series."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    """Name in the outputs (`adversaries.<name>`, column `adv_<name>_pnl_usd`)."""
    kind: AdversaryKind
    """jit_lp: ahead of an oracle round, deposits a large amount in the pool, trades and withdraws the
    deposit in one block, and closes the same way after the round; oracle_frontrunner: trades ahead of
    each deviation round it sees coming and closes after it; self_liquidator: a levered isolated position
    it liquidates from a second address when that beats closing; griefer: a levered cross position with
    dust collateral whose feed may go stale; manipulator: a long and a thinly margined short of the same
    size, then buys the market's outside venue (its oracle's source) to pump it, closes the long at the
    pumped oracle price and sells what it bought (Mango Markets 2022, JELLY on Hyperliquid 2025)."""
    market: str = "ETH-USD"
    """The market it trades."""
    notional_usd: float = Field(100_000, gt=0, le=1e9)
    """Notional of each position it opens."""
    leverage: float = Field(10, gt=1, le=100)
    """Notional / margin of each position it opens."""
    deposit_usd: float = Field(0, ge=0, le=1e12)
    """jit_lp: quote tokens deposited into the pool around each trade."""
    dust_collateral: float = Field(1e-8, ge=0, le=1)
    """griefer: units of the other market's token deposited as collateral (1e-8 WBTC: one satoshi)."""
    priority_fee_gwei: float = Field(100, ge=0, le=MAX_PRIORITY_FEE_GWEI)
    """Priority fee of the transactions that must land first (above the oracle's 50 gwei)."""
    wallet_usd: float = Field(1_000_000, gt=0, le=1e12)
    """USDC minted to it at the start (plus `deposit_usd` for a jit_lp)."""
    start_block: int = Field(5, ge=1)
    """manipulator: the block it opens its two legs in."""
    long_leverage: float = Field(2, gt=1, le=100)
    """manipulator: notional / margin of its long (the leg that gains); `leverage` is the short's."""
    pump_usd: float = Field(0, ge=0, le=1e12)
    """manipulator: USD it buys on the outside venue each block of the pump (needs `market.depth`)."""
    pump_blocks: int = Field(10, ge=1, le=100_000)
    """manipulator: blocks of buying, from the block after its legs open."""
    hold_blocks: int = Field(3, ge=0, le=100_000)
    """manipulator: blocks it waits after the pump (for the oracle to follow) before closing the long."""
    dump_blocks: int = Field(10, ge=1, le=100_000)
    """manipulator: blocks over which it sells the outside inventory, once the long is closed."""


class ForkConfig(_Model):
    """Run on a fork of a real chain (see `chains/`): real tokens and Chainlink proxies."""

    url: str | None = Field(None, min_length=1, repr=False)
    """The upstream RPC URL. Better left out: it usually carries an API key; see `url_env`."""
    url_env: str = Field("MARGINSIM_FORK_URL", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Environment variable holding the URL when `url` is not given (and --fork-url is not)."""
    block: int | None = Field(None, ge=0)
    """Block to fork at; the upstream's head when left out (the block used is in the summary)."""


class Scenario(_Model):
    name: str = Field(min_length=1)
    description: str = ""
    seed: int = Field(0, ge=0)
    blocks: int = Field(gt=0, le=1_000_000)
    block_time_s: int = Field(12, gt=0, le=3600)
    market: MarketConfig
    oracle: OracleConfig = OracleConfig()
    traders: tuple[TraderGroup, ...] = Field(min_length=1)
    lps: tuple[LpGroup, ...] = ()
    keepers: tuple[KeeperEntry, ...] = Field(min_length=1)
    """Liquidation bots: the built-in keeper's config, or a plugin keeper's (`class: ...`)."""
    protocol: ProtocolConfig = ProtocolConfig()
    adversaries: tuple[AdversaryConfig, ...] = ()
    """Agents that try to extract value (none by default)."""
    agents: tuple[PluginSpec, ...] = ()
    """Plugin agents of any other kind (`class: package.module:Class`), after every built-in one."""
    base_fee: tuple[BaseFeeWindow, ...] = ()
    """Gas spikes: windows of blocks mined at a given base fee (keepers weigh rewards against it)."""
    invariants_every: int = Field(10, gt=0)
    """Check the protocol's invariants against the chain every this many blocks."""
    fork: ForkConfig | None = None
    """Fork a real chain instead of starting an empty one (--fork-url and --fork-block override)."""

    @field_validator("keepers", "agents", mode="before")
    @classmethod
    def _plugin_agents(cls, entries: object, info: ValidationInfo) -> object:
        return _plugins(info.field_name or "agents", entries, info)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        assets = set(self.market.start)
        for g in self.traders:
            for m in g.markets:
                if m not in ("ETH-USD", "BTC-USD"):
                    raise ValueError(
                        f"traders.{g.name}.markets: unknown market {m!r} (ETH-USD, BTC-USD)"
                    )
        if not {"ETH", "BTC"} <= assets:
            raise ValueError(f"market.start must price ETH and BTC, got {sorted(assets)}")
        if extra := sorted(assets - {"ETH", "BTC", "USDC"}):
            raise ValueError(f"market.start prices ETH, BTC and (for a depeg) USDC, not {extra}")
        quote = self.market.start.get("USDC")
        if quote is not None and not QUOTE_FEED_BOUNDS_USD[0] < quote < QUOTE_FEED_BOUNDS_USD[1]:
            raise ValueError(
                f"market.start.USDC: {quote} is outside the quote feed's bounds {QUOTE_FEED_BOUNDS_USD}"
            )
        for a in self.adversaries:
            if a.market not in ("ETH-USD", "BTC-USD"):
                raise ValueError(f"adversaries.{a.name}.market: unknown market {a.market!r}")
            asset = a.market.split("-")[0]
            depth = self.market.depth
            if a.kind == "manipulator" and (depth is None or asset not in depth.depth_usd):
                raise ValueError(
                    f"adversaries.{a.name}: a manipulator buys {asset}'s outside market, which needs "
                    f"a depth: set market.depth.depth_usd.{asset}"
                )
        keepers, adversaries = [k.name for k in self.keepers], [a.name for a in self.adversaries]
        others = [a.name for a in self.agents]
        for field, names in (
            ("keepers", keepers),
            ("adversaries", adversaries),
            ("agents", others),
        ):
            if len(set(names)) != len(names):
                raise ValueError(f"{field}: names must be unique, got {names}")
        # gas and outcomes are counted by agent name
        if shared := sorted(set(keepers) & set(adversaries)):
            raise ValueError(f"adversaries: {shared} also named among the keepers")
        if shared := sorted(set(others) & set(keepers + adversaries)):
            raise ValueError(f"agents: {shared} also named among the keepers or adversaries")
        if not self.lps and self.protocol.lp_liquidity_usd == 0:
            raise ValueError("the pool has no liquidity: add lps or set protocol.lp_liquidity_usd")
        return self


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file, the field and the reason."""


MAX_SCENARIO_BYTES = 1_000_000
"""A scenario is a few kilobytes; a bigger file is not one (and is not read whole into memory)."""


def _problem_with_file(path: Path) -> str | None:
    """Why `path` cannot be a scenario file before reading it: missing, a directory, not a file."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "no such scenario file"
    except OSError as e:
        return f"cannot be read: {e.strerror or e}"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory, not a scenario file"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file (a scenario is a YAML file)"
    if st.st_size > MAX_SCENARIO_BYTES:
        return f"is {st.st_size:,} bytes, too big for a scenario (at most {MAX_SCENARIO_BYTES:,})"
    return None


def _decode(data: bytes) -> tuple[str | None, str | None]:
    """(text, None) for UTF-8 text, else (None, the reason)."""
    boms = {b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16", b"\x00\x00\xfe\xff": "UTF-32"}
    for bom, name in sorted(boms.items(), key=lambda kv: -len(kv[0])):
        if data.startswith(bom):
            return None, f"is {name} text; save it as UTF-8"
    nul = data.find(b"\x00")
    if nul >= 0:
        return None, f"is a binary file (a NUL byte at offset {nul}), not YAML text"
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as e:
        return None, f"is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})"


def read_scenario_text(path: Path) -> str:
    """The file's text, or a ScenarioError naming the file and why it cannot be read."""
    problem = _problem_with_file(path)
    if problem is None:
        try:
            data = path.read_bytes()
        except OSError as e:  # unreadable (permissions), or it vanished or changed kind meanwhile
            problem = f"cannot be read: {e.strerror or e}"
        else:
            text, problem = _decode(data)
            if text is not None:
                return text
    raise ScenarioError(f"{path}: {problem}")


def one_line(message: str) -> str:
    """A message on one line (YAML and pydantic messages span several)."""
    return " ".join(message.split())


def load_scenario(path: Path) -> Scenario:
    text = read_scenario_text(path)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ScenarioError(one_line(f"{path}: not valid YAML: {e}")) from None
    except RecursionError:
        raise ScenarioError(f"{path}: not valid YAML: nested too deeply") from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: must be a mapping of fields, got {type(raw).__name__}")
    market = raw.get("market")
    if isinstance(market, dict) and isinstance(market.get("csv"), str):
        market["csv"] = str(
            (path.parent / market["csv"]).resolve()
        )  # relative to the scenario file
    try:
        return Scenario.model_validate(raw, context={"dir": path.parent})
    except ValidationError as e:
        raise ScenarioError(f"{path}: {first_error(e)}") from None


def first_error(e: ValidationError) -> str:
    """`field.path: reason (and N more)`, on one line."""
    first = e.errors()[0]
    where = ".".join(str(p) for p in first["loc"] if p not in UNION_TAGS) or "(top level)"
    more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
    msg = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "value_error" and msg.startswith(f"{where}."):
        return one_line(f"{msg}{more}")  # a plugin's own error already names its entry
    return one_line(f"{where}: {msg}{more}")


def field_problem(field: str, value: object) -> str | None:
    """Why `value` cannot be the scenario's top-level `field` (its own constraints, read from the
    model: --seed and --blocks are checked against them), or None."""
    info = Scenario.model_fields[field]
    constrained: Any = Annotated[tuple([info.annotation, *info.metadata])]
    adapter: TypeAdapter[object] = TypeAdapter(constrained)
    try:
        adapter.validate_python(value, strict=True)
    except ValidationError as e:
        return one_line(str(e.errors()[0]["msg"]))
    return None
