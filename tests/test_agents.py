"""Unit tests of the simulation agents' decision functions: pure Python on hand-built snapshots, no chain.

Every transaction's calldata is decoded back with the real ABIs (selector + eth_abi) to check the
arguments; expected values come from the reference model (simulation.margin_math)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from eth_abi import decode

from simulation import margin_math as mm
from simulation.abi import ContractAbi
from simulation.actions import Encoder
from simulation.agents.adversaries import Adversary
from simulation.agents.base import Agent, AgentContext, MarketTerms, Observation, Tx
from simulation.agents.keepers import GAS_CROSS, GAS_ISOLATED, Keeper, cross_liquidation
from simulation.agents.lps import LiquidityProvider
from simulation.agents.oracle import OracleAgent
from simulation.agents.traders import Trader, TraderContext
from simulation.scenario import (
    KeeperConfig,
    LpGroup,
    OracleConfig,
    Outage,
    Range,
    RebalanceConfig,
    TraderGroup,
    Window,
)
from simulation.state import CrossView, IsolatedView, LpView, MarketView, Snapshot
from simulation.units import GWEI, WAD

ETH, BTC = 0, 1
USDC_UNIT = 10**6

VAULT = "0x" + "a1" * 20
USDC = "0x" + "a2" * 20
POOL = "0x" + "a3" * 20
ADAPTER = "0x" + "a4" * 20
FEED_ETH = "0x" + "f1" * 20
FEED_BTC = "0x" + "f2" * 20
WETH = "0x" + "e1" * 20
WBTC = "0x" + "b1" * 20
DEPLOYER = "0x" + "d0" * 20
TRADER = "0x" + "11" * 20
OTHER = "0x" + "12" * 20
KEEPER = "0x" + "33" * 20
LP = "0x" + "44" * 20
CROSS_ACCT = "0x" + "55" * 20


# ---------------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def abis(artifacts) -> dict[str, ContractAbi]:
    return {
        n: ContractAbi(artifacts[n].abi)
        for n in ("MarginVault", "MockAggregator", "OracleAdapter", "LPPool")
    }


class Driven:
    """An agent with the engine's encoder: `decide` takes what the agent's kind looks at and returns the
    transactions the engine would send for its actions (so the calldata is checked against the ABIs)."""

    def __init__(self, agent: Agent, encoder: Encoder):
        self.agent, self.encoder = agent, encoder

    def __getattr__(self, name: str) -> Any:
        return getattr(self.agent, name)

    def decide(self, *a: Any) -> list[Tx]:
        """oracle (block, timestamp, history, snap); trader (snap, history); keeper (block, seen, now);
        adversary (block, snap, history); LP (snap)."""
        if isinstance(self.agent, Adversary):
            block, snap, history = a
            obs = Observation(block, snap.timestamp_s + 12, snap, snap, history)
        elif isinstance(self.agent, OracleAgent):
            block, ts, history, snap = a
            obs = Observation(block, ts, snap, snap, history)
        elif isinstance(self.agent, Trader):
            snap, history = a
            obs = Observation(snap.block + 1, snap.timestamp_s + 12, snap, snap, history)
        elif isinstance(self.agent, Keeper):
            block, seen, now = a
            obs = Observation(block, now.timestamp_s + 12, now, seen, FLAT)
        else:
            (snap,) = a
            obs = Observation(snap.block + 1, snap.timestamp_s + 12, snap, snap, FLAT)
        return [
            self.encoder.tx(self.agent.name, self.agent.address, x) for x in self.agent.decide(obs)
        ]


def make_encoder(abis: dict[str, ContractAbi]) -> Encoder:
    return Encoder(
        vault=VAULT,
        pool=POOL,
        oracle=ADAPTER,
        vault_abi=abis["MarginVault"],
        pool_abi=abis["LPPool"],
        oracle_abi=abis["OracleAdapter"],
        feed_abi=abis["MockAggregator"],
        tokens={"USDC": USDC, "WETH": WETH, "WBTC": WBTC},
        feeds={"ETH": FEED_ETH, "BTC": FEED_BTC},
        assets={"ETH": WETH, "BTC": WBTC},
    )


def wad(x: float | int | str) -> int:
    return int(Decimal(str(x)) * WAD)


def args(abi: ContractAbi, fn: str, tx: Tx) -> tuple[Any, ...]:
    """Decode a tx's calldata, checking it calls `fn` (by selector)."""
    f = abi[fn]
    data = bytes.fromhex(tx.data[2:])
    assert data[:4] == f.selector, f"{tx.kind}: not a call of {fn}"
    out = decode(list(f.inputs), data[4:])
    return tuple(x.lower() if isinstance(x, str) else x for x in out)


def make_snap(
    *,
    block: int = 10,
    timestamp: int | None = None,
    base_fee_gwei: float = 10,
    eth: float | None = 2000,
    btc: float | None = 60000,
    initial: float = 0.1,
    maintenance: float = 0.05,
    positions: Sequence[IsolatedView] = (),
    cross: dict[str, CrossView] | None = None,
    liq_iso: Sequence[int] = (),
    liq_cross: Sequence[str] = (),
    rounds: dict[str, tuple[int, int]] | None = None,
    pool_assets: int = 10**12,
    pool_supply: int = 10**12,
    lp_shares: dict[str, tuple[int, int]] | None = None,
) -> Snapshot:
    """A snapshot with ETH-USD (id 0) and BTC-USD (id 1); a price of None is a stale oracle."""

    def view(mid: int, name: str, sym: str, price: float | None) -> MarketView:
        if price is None:
            return MarketView(mid, name, sym, None, None, None, 0, 0)
        return MarketView(mid, name, sym, wad(price), wad(initial), wad(maintenance), 0, 0)

    ts = 1_000_000 + 12 * block if timestamp is None else timestamp
    return Snapshot(
        block=block,
        timestamp_s=ts,
        base_fee_wei=int(base_fee_gwei * GWEI),
        markets=(view(ETH, "ETH-USD", "ETH", eth), view(BTC, "BTC-USD", "BTC", btc)),
        oracle_rounds=rounds
        if rounds is not None
        else {"ETH": (2000 * 10**8, ts), "BTC": (60000 * 10**8, ts)},
        positions={p.position_id: p for p in positions},
        cross=cross or {},
        liquidatable_isolated=tuple(liq_iso),
        liquidatable_cross=tuple(liq_cross),
        pool_assets_quote=pool_assets,
        pool_supply_shares=pool_supply,
        pool_cash_quote=pool_assets,
        insurance_quote=0,
        lp_shares=lp_shares or {},
    )


def hist(*prices: tuple[float, float]) -> list[dict[str, float]]:
    """Market price history: one (ETH, BTC) pair per block."""
    return [{"ETH": e, "BTC": b} for e, b in prices]


FLAT = hist((2000.0, 60000.0))  # too short for any lookback: momentum/mean-reversion signal 0


# ----------------------------------------------------------------------------------------------- oracle


def make_oracle(abis: dict[str, ContractAbi], **cfg: Any) -> Any:
    oracle = OracleAgent(
        OracleConfig(**cfg), DEPLOYER, ["ETH", "BTC"], ["ETH", "BTC"], {"ETH": 8, "BTC": 8}
    )
    return Driven(oracle, make_encoder(abis))


def oracle_snap(
    eth_answer: int = 2000 * 10**8, btc_answer: int = 60000 * 10**8, updated_at: int = 1_000
) -> Snapshot:
    return make_snap(rounds={"ETH": (eth_answer, updated_at), "BTC": (btc_answer, updated_at)})


def test_oracle_quiet_within_deviation_and_heartbeat(abis):
    oracle = make_oracle(abis, deviation=0.01, heartbeat_s=3600)
    history = hist((2000.0, 60000.0), (2019.0, 59500.0))  # +0.95 %, -0.83 %
    assert oracle.decide(11, 1_000 + 3599, history, oracle_snap()) == []
    assert oracle.rounds == 0


def test_oracle_round_on_deviation(abis):
    oracle = make_oracle(abis, deviation=0.01, heartbeat_s=3600)
    history = hist((2000.0, 60000.0), (2030.123456789, 60000.0))  # ETH +1.5 %, BTC flat
    txs = oracle.decide(11, 1_012, history, oracle_snap())
    assert [t.kind for t in txs] == ["oracle_round", "cache_volatility"]
    rnd, cache = txs
    assert rnd.to == FEED_ETH and rnd.sender == DEPLOYER
    assert args(abis["MockAggregator"], "updateAnswer", rnd) == (
        203012345679,
    )  # 2030.123456789e8 rounded
    assert cache.to == ADAPTER
    assert args(abis["OracleAdapter"], "cacheVolatility", cache) == (WETH,)
    assert oracle.rounds == 1


def test_oracle_round_on_downward_deviation_rounds_to_nearest(abis):
    oracle = make_oracle(abis, deviation=0.01, heartbeat_s=3600)
    history = hist(
        (2000.0, 60000.0), (2000.0, 58000.000000004)
    )  # BTC -3.3 %: 5800000000000.0004 -> ...000
    txs = oracle.decide(11, 1_012, history, oracle_snap())
    assert [t.to for t in txs] == [FEED_BTC, ADAPTER]
    assert args(abis["MockAggregator"], "updateAnswer", txs[0]) == (5_800_000_000_000,)
    assert args(abis["OracleAdapter"], "cacheVolatility", txs[1]) == (WBTC,)


def test_oracle_round_on_heartbeat(abis):
    oracle = make_oracle(abis, deviation=0.01, heartbeat_s=3600)
    history = hist((2000.0, 60000.0), (2000.0, 60000.0))
    assert oracle.decide(11, 1_000 + 3599, history, oracle_snap()) == []
    txs = oracle.decide(12, 1_000 + 3600, history, oracle_snap())
    assert [t.kind for t in txs] == ["oracle_round", "cache_volatility"] * 2
    assert [t.to for t in txs] == [FEED_ETH, ADAPTER, FEED_BTC, ADAPTER]
    assert args(abis["MockAggregator"], "updateAnswer", txs[0]) == (2000 * 10**8,)
    assert args(abis["MockAggregator"], "updateAnswer", txs[2]) == (60000 * 10**8,)
    assert args(abis["OracleAdapter"], "cacheVolatility", txs[1]) == (WETH,)
    assert args(abis["OracleAdapter"], "cacheVolatility", txs[3]) == (WBTC,)


def test_oracle_every_round_followed_by_cache_volatility_of_its_asset(abis):
    oracle = make_oracle(abis, deviation=0.005)
    history = hist((2000.0, 60000.0), (2100.0, 50000.0))
    txs = oracle.decide(11, 1_012, history, oracle_snap())
    assert len(txs) == 4
    assets = {FEED_ETH: WETH, FEED_BTC: WBTC}
    for rnd, cache in zip(txs[::2], txs[1::2], strict=True):
        assert rnd.kind == "oracle_round" and cache.kind == "cache_volatility"
        assert args(abis["OracleAdapter"], "cacheVolatility", cache) == (assets[rnd.to],)


def test_oracle_delay_reports_price_of_three_blocks_back(abis):
    oracle = make_oracle(abis, deviation=0.005, delay_blocks=3)
    history = hist(*[(2000.0 + 100 * i, 60000.0) for i in range(10)])  # blocks 0..9
    txs = oracle.decide(10, 1_012, history, oracle_snap())
    assert [t.to for t in txs] == [FEED_ETH, ADAPTER]
    assert args(abis["MockAggregator"], "updateAnswer", txs[0]) == (
        int(history[6]["ETH"]) * 10**8,
    )  # 2600


def test_oracle_silent_during_outage(abis):
    oracle = make_oracle(
        abis, deviation=0.005, heartbeat_s=60, outages=(Outage(start_block=5, end_block=8),)
    )
    history = hist((2000.0, 60000.0), (3000.0, 90000.0))  # huge move and a stale heartbeat
    for block in (5, 6, 7):
        assert oracle.decide(block, 100_000, history, oracle_snap()) == []
    assert len(oracle.decide(8, 100_000, history, oracle_snap())) == 4
    assert (
        len(
            make_oracle(abis, outages=(Outage(start_block=5, end_block=8),)).decide(
                4, 100_000, history, oracle_snap()
            )
        )
        == 4
    )


def test_oracle_priority_fee_above_traders(abis):
    oracle = make_oracle(abis, deviation=0.005)
    otx = oracle.decide(11, 1_012, hist((2000.0, 60000.0), (2100.0, 60000.0)), oracle_snap())
    trader = make_trader(abis, markets=("ETH-USD",), strategy="random", trade_probability=1.0)
    ttx = trader.decide(make_snap(), FLAT)
    assert otx and ttx
    assert min(t.priority_fee_wei for t in otx) > max(t.priority_fee_wei for t in ttx)


# ---------------------------------------------------------------------------------------------- traders


def make_trader(
    abis: dict[str, ContractAbi], seed: int = 7, address: str = TRADER, **cfg: Any
) -> Any:
    ctx = TraderContext({"ETH-USD": ETH, "BTC-USD": BTC}, {ETH: "ETH", BTC: "BTC"})
    group = TraderGroup(**{"name": "t", "count": 1, **cfg})
    return Driven(Trader("t-0", address, group, seed, ctx), make_encoder(abis))


def iso(
    pid: int,
    size_eth: float,
    entry: float,
    margin_usdc: float,
    market: int = ETH,
    owner: str = TRADER,
):
    return IsolatedView(
        pid, owner, market, wad(size_eth), int(Decimal(str(margin_usdc)) * USDC_UNIT), wad(entry)
    )


# Stop-loss 0.5 and take-profit 1.0 of 1000 USDC margin are exact: -500 USD / +1000 USD.
EXIT_CFG = dict(
    markets=("ETH-USD",),
    strategy="momentum",
    lookback_blocks=5,
    trade_probability=1.0,
    stop_loss=0.5,
    take_profit=1.0,
)


def test_trader_stop_loss(abis):
    trader = make_trader(abis, **EXIT_CFG)
    pos = iso(42, 1, 2000, 1000)  # long 1 ETH, 1000 USDC margin
    txs = trader.decide(make_snap(eth=1500, positions=[pos]), FLAT)  # loss 500 = 0.5 * margin
    assert [t.kind for t in txs] == ["stop_loss"]
    assert txs[0].to == VAULT and txs[0].sender == TRADER
    assert args(abis["MarginVault"], "closeIsolated", txs[0]) == (42,)
    # one wei of price less loss: inside the bound
    assert (
        make_trader(abis, **EXIT_CFG).decide(
            make_snap(eth="1500.000000000000000001", positions=[pos]), FLAT
        )
        == []
    )


def test_trader_stop_loss_short(abis):
    trader = make_trader(abis, **EXIT_CFG)
    pos = iso(3, -2, 2000, 1000)  # short 2 ETH: loses 500 at 2250
    txs = trader.decide(make_snap(eth=2250, positions=[pos]), FLAT)
    assert [t.kind for t in txs] == ["stop_loss"]
    assert args(abis["MarginVault"], "closeIsolated", txs[0]) == (3,)


def test_trader_take_profit(abis):
    trader = make_trader(abis, **EXIT_CFG)
    pos = iso(9, 1, 2000, 1000)
    txs = trader.decide(make_snap(eth=3000, positions=[pos]), FLAT)  # profit 1000 = 1.0 * margin
    assert [t.kind for t in txs] == ["take_profit"]
    assert args(abis["MarginVault"], "closeIsolated", txs[0]) == (9,)
    assert (
        make_trader(abis, **EXIT_CFG).decide(
            make_snap(eth="2999.999999999999999999", positions=[pos]), FLAT
        )
        == []
    )


def test_trader_holds_inside_bounds_without_flip(abis):
    rising = hist(
        *[(2000.0 + 10 * i, 60000.0) for i in range(6)]
    )  # momentum says long: agrees with the position
    for price in (1600, 1999, 2000, 2500, 2900):
        trader = make_trader(abis, **EXIT_CFG)
        assert trader.decide(make_snap(eth=price, positions=[iso(1, 1, 2000, 1000)]), rising) == []


def test_trader_closes_on_signal_flip(abis):
    falling = hist(
        *[(2000.0 - 10 * i, 60000.0) for i in range(6)]
    )  # momentum says short against a long
    txs = make_trader(abis, **EXIT_CFG).decide(
        make_snap(eth=1950, positions=[iso(1, 1, 2000, 1000)]), falling
    )
    assert [t.kind for t in txs] == ["close"]
    assert args(abis["MarginVault"], "closeIsolated", txs[0]) == (1,)


RISE = hist(*[(2000.0 + 10 * i, 60000.0 + 100 * i) for i in range(6)])
FALL = hist(*[(2000.0 - 10 * i, 60000.0 - 100 * i) for i in range(6)])


def opened_size(abis, txs: list[Tx]) -> list[int]:
    assert all(t.kind == "open_isolated" for t in txs)
    return [args(abis["MarginVault"], "openIsolated", t)[1] for t in txs]


@pytest.mark.parametrize(
    ("strategy", "history", "side"),
    [
        ("momentum", RISE, 1),
        ("momentum", FALL, -1),
        ("mean_reversion", RISE, -1),
        ("mean_reversion", FALL, 1),
    ],
)
def test_trader_directional_strategies(abis, strategy, history, side):
    trader = make_trader(abis, strategy=strategy, lookback_blocks=5, trade_probability=1.0)
    sizes = opened_size(
        abis, trader.decide(make_snap(eth=history[-1]["ETH"], btc=history[-1]["BTC"]), history)
    )
    assert len(sizes) == 2 and all((s > 0) == (side > 0) and s != 0 for s in sizes)


def test_trader_no_signal_without_enough_history(abis):
    trader = make_trader(abis, strategy="momentum", lookback_blocks=5, trade_probability=1.0)
    assert trader.decide(make_snap(), RISE[:5]) == []  # 5 prices: no 5-block lookback yet


@pytest.mark.parametrize(
    ("eth_move", "btc_move", "eth_side"), [(0.10, 0.02, 1), (0.01, 0.05, -1), (-0.02, -0.08, 1)]
)
def test_trader_pairs_long_outperformer_short_other(abis, eth_move, btc_move, eth_side):
    history = hist(
        (2000.0, 60000.0),
        *[(2000.0, 60000.0)] * 4,
        (2000.0 * (1 + eth_move), 60000.0 * (1 + btc_move)),
    )
    trader = make_trader(abis, strategy="pairs", lookback_blocks=5, trade_probability=1.0)
    txs = trader.decide(make_snap(eth=history[-1]["ETH"], btc=history[-1]["BTC"]), history)
    markets = [args(abis["MarginVault"], "openIsolated", t)[0] for t in txs]
    assert markets == [ETH, BTC]
    eth_size, btc_size = opened_size(abis, txs)
    assert (eth_size > 0) == (eth_side > 0) and (btc_size > 0) == (eth_side < 0)


def test_trader_pairs_no_trade_on_equal_moves(abis):
    history = hist(*[(2000.0, 60000.0)] * 5, (2200.0, 66000.0))  # both +10 %
    trader = make_trader(abis, strategy="pairs", lookback_blocks=5, trade_probability=1.0)
    assert trader.decide(make_snap(eth=2200, btc=66000), history) == []


def test_trader_open_size_is_margin_times_leverage_over_price(abis):
    lev, margin = Range(min=3, max=7), Range(min=800, max=1200)
    opened = 0
    for seed in range(30):
        trader = make_trader(
            abis,
            seed=seed,
            strategy="random",
            trade_probability=1.0,
            leverage=lev,
            margin_usd=margin,
        )
        snap = make_snap(eth=1987.5, btc=61234.25)
        for tx in trader.decide(snap, FLAT):
            mid, size, margin_q = args(abis["MarginVault"], "openIsolated", tx)
            assert tx.sender == TRADER and tx.to == VAULT
            assert margin.min * USDC_UNIT <= margin_q <= margin.max * USDC_UNIT
            notional = Decimal(abs(size)) * snap.market(mid).price_wad / WAD / WAD  # USD
            leverage = notional / (Decimal(margin_q) / USDC_UNIT)
            assert (
                Decimal(lev.min) - Decimal("1e-6") <= leverage <= Decimal(lev.max) + Decimal("1e-6")
            )
            opened += 1
    assert opened == 60  # trade_probability 1: both markets every time


def test_trader_open_size_matches_draws(abis):
    """With a degenerate range the size is exactly margin * leverage / price."""
    trader = make_trader(
        abis,
        strategy="momentum",
        lookback_blocks=5,
        trade_probability=1.0,
        markets=("ETH-USD",),
        leverage=Range(min=4, max=4),
        margin_usd=Range(min=1000, max=1000),
    )
    txs = trader.decide(make_snap(eth=2500), RISE)
    assert args(abis["MarginVault"], "openIsolated", txs[0]) == (ETH, wad("1.6"), 1000 * USDC_UNIT)


def test_trader_no_trading_on_stale_oracle(abis):
    trader = make_trader(abis, strategy="random", trade_probability=1.0, stop_loss=0.5)
    assert trader.decide(make_snap(eth=None, btc=None), FLAT) == []
    # even a position far past its stop-loss is left alone: the vault would refuse
    pos = iso(5, 1, 2000, 100)
    assert trader.decide(make_snap(eth=None, btc=None, positions=[pos]), FLAT) == []
    # one stale market does not block the other
    txs = make_trader(abis, strategy="random", trade_probability=1.0).decide(
        make_snap(eth=None), FLAT
    )
    assert [args(abis["MarginVault"], "openIsolated", t)[0] for t in txs] == [BTC]


def test_trader_cross_open_deposits_then_trades(abis):
    trader = make_trader(
        abis,
        strategy="momentum",
        lookback_blocks=5,
        trade_probability=1.0,
        margin_mode="cross",
        markets=("ETH-USD",),
        leverage=Range(min=2, max=8),
        margin_usd=Range(min=500, max=5000),
    )
    txs = trader.decide(make_snap(eth=2050), RISE)
    assert [t.kind for t in txs] == ["deposit", "trade_cross"]
    assert {t.sender for t in txs} == {TRADER} and {t.to for t in txs} == {VAULT}
    token, amount = args(abis["MarginVault"], "depositCollateral", txs[0])
    mid, size = args(abis["MarginVault"], "tradeCross", txs[1])
    assert token == USDC and mid == ETH and size > 0
    assert 500 * USDC_UNIT <= amount <= 5000 * USDC_UNIT
    leverage = Decimal(size) * 2050 / WAD / (Decimal(amount) / USDC_UNIT)
    assert Decimal(2) - Decimal("1e-6") <= leverage <= Decimal(8) + Decimal("1e-6")
    assert trader.committed == {ETH: amount}


def test_trader_cross_stop_loss_trades_the_position_away(abis):
    trader = make_trader(abis, **{**EXIT_CFG, "margin_mode": "cross"})
    trader.committed[ETH] = 1000 * USDC_UNIT
    acct = CrossView(0, 0, 0, {ETH: (wad(1), wad(2000))}, 0)
    txs = trader.decide(make_snap(eth=1500, cross={TRADER: acct}), FLAT)
    assert [t.kind for t in txs] == ["stop_loss"]
    assert args(abis["MarginVault"], "tradeCross", txs[0]) == (ETH, -wad(1))
    assert (
        trader.committed[ETH] == 1000 * USDC_UNIT
    )  # kept until the close is seen on chain (it may revert)
    trader.decide(make_snap(eth=1500, cross={TRADER: CrossView(0, 0, 0, {}, 0)}), FLAT)
    assert ETH not in trader.committed


REBAL = dict(
    markets=("ETH-USD",),
    strategy="momentum",
    lookback_blocks=5,
    trade_probability=1.0,
    stop_loss=None,
    take_profit=None,
)


def rebal_snap(margin_usdc: float = 1000, price: float = 2000) -> Snapshot:
    # 10 ETH at 2000: notional 20000, maintenance 5 % = 1000 USD; health = equity / 1000
    return make_snap(eth=price, maintenance=0.05, positions=[iso(77, 10, 2000, margin_usdc)])


def test_rebalancer_tops_up_below_health(abis):
    trader = make_trader(
        abis,
        **REBAL,
        rebalance=RebalanceConfig(below_health=1.5, top_up_fraction=0.25, budget_usd=10_000),
    )
    snap = rebal_snap(margin_usdc=1000)
    h = mm.position_health(1000 * 10**18, wad(10), wad(2000), wad(2000), 0, wad("0.05"))
    assert h.equity_usd < 1.5 * h.maintenance_usd
    txs = trader.decide(snap, FLAT)
    assert [t.kind for t in txs] == ["rebalance"]
    assert args(abis["MarginVault"], "addIsolatedMargin", txs[0]) == (77, 250 * USDC_UNIT)
    assert trader.rebalance_left_usd == 10_000 - 250


def test_rebalancer_idle_at_or_above_health(abis):
    trader = make_trader(
        abis, **REBAL, rebalance=RebalanceConfig(below_health=1.5, budget_usd=10_000)
    )
    assert trader.decide(rebal_snap(margin_usdc=1500), FLAT) == []  # health exactly 1.5
    assert trader.decide(rebal_snap(margin_usdc=3000), FLAT) == []
    assert trader.rebalance_left_usd == 10_000


def test_rebalancer_respects_budget(abis):
    budget = 600.5
    trader = make_trader(
        abis,
        **REBAL,
        rebalance=RebalanceConfig(below_health=1.5, top_up_fraction=0.25, budget_usd=budget),
    )
    amounts = []
    for _ in range(10):
        for tx in trader.decide(rebal_snap(margin_usdc=1000), FLAT):
            amounts.append(args(abis["MarginVault"], "addIsolatedMargin", tx)[1])
    assert amounts == [250 * USDC_UNIT, 250 * USDC_UNIT, 100_500_000]
    assert sum(amounts) <= budget * USDC_UNIT
    assert trader.rebalance_left_usd == 0


def test_rebalancer_stops_when_less_than_a_dollar_left(abis):
    trader = make_trader(
        abis,
        **REBAL,
        rebalance=RebalanceConfig(below_health=1.5, top_up_fraction=0.25, budget_usd=500.5),
    )
    amounts = [
        args(abis["MarginVault"], "addIsolatedMargin", tx)[1]
        for _ in range(10)
        for tx in trader.decide(rebal_snap(margin_usdc=1000), FLAT)
    ]
    assert amounts == [250 * USDC_UNIT, 250 * USDC_UNIT]
    assert sum(amounts) <= 500.5 * USDC_UNIT


def test_rebalancer_not_in_cross_mode(abis):
    trader = make_trader(
        abis, **{**REBAL, "margin_mode": "cross"}, rebalance=RebalanceConfig(budget_usd=1000)
    )
    trader.committed[ETH] = 100 * USDC_UNIT
    acct = CrossView(0, 0, 0, {ETH: (wad(10), wad(2000))}, 0)
    assert trader.decide(make_snap(cross={TRADER: acct}), FLAT) == []


def test_trader_deterministic_for_same_seed(abis):
    cfg = dict(strategy="random", trade_probability=0.4, leverage=Range(min=2, max=9))
    a, b = make_trader(abis, seed=123, **cfg), make_trader(abis, seed=123, **cfg)
    c = make_trader(abis, seed=124, **cfg)
    out_a = [a.decide(make_snap(block=n), FLAT) for n in range(40)]
    out_b = [b.decide(make_snap(block=n), FLAT) for n in range(40)]
    out_c = [c.decide(make_snap(block=n), FLAT) for n in range(40)]
    assert out_a == out_b
    assert sum(map(len, out_a)) > 0
    assert out_a != out_c  # the seed matters


@pytest.mark.parametrize("first", ["position", "stale"])
def test_trader_draws_consumed_whatever_the_branch(abis, first):
    cfg = dict(strategy="random", trade_probability=0.5, stop_loss=0.5, take_profit=0.5)
    with_branch, without = make_trader(abis, seed=99, **cfg), make_trader(abis, seed=99, **cfg)
    if (
        first == "position"
    ):  # one manages (and stop-losses) positions in both markets; the other may open
        snap = make_snap(
            eth=1000, btc=30000, positions=[iso(1, 1, 2000, 1000), iso(2, -1, 40000, 1000, BTC)]
        )
        assert [t.kind for t in with_branch.decide(snap, FLAT)] == ["stop_loss", "take_profit"]
    else:
        assert with_branch.decide(make_snap(eth=None, btc=None), FLAT) == []
    without.decide(make_snap(), FLAT)
    later = [
        (with_branch.decide(make_snap(block=n), FLAT), without.decide(make_snap(block=n), FLAT))
        for n in range(2, 30)
    ]
    assert all(x == y for x, y in later)
    assert sum(len(x) for x, _ in later) > 0


# ---------------------------------------------------------------------------------------------- keepers

PENALTY = {ETH: wad("0.02"), BTC: wad("0.03")}
SHARE = {ETH: wad("0.5"), BTC: wad("0.4")}
CLOSE_FEE = {ETH: wad("0.003"), BTC: wad("0.004")}


def keeper_context(discount_wad: int = 0) -> AgentContext:
    terms = {  # the close fee as the spread, the fee floor under it
        m: MarketTerms(CLOSE_FEE[m], 0, 0, PENALTY[m], SHARE[m], 0) for m in (ETH, BTC)
    }
    markets = {"ETH-USD": ETH, "BTC-USD": BTC}
    return AgentContext(markets, terms, {"MarginVault": VAULT}, 12, 0, discount_wad)


def make_keeper(abis, **cfg: Any) -> Any:
    ctx = keeper_context()
    return Driven(Keeper(KeeperConfig(**{"name": "k", **cfg}), KEEPER, ctx), make_encoder(abis))


# 10 ETH long from 2000, 1500 USDC margin, price 1900: equity 500, maintenance 950, penalty 380
LIQ_POS = iso(11, 10, 2000, 1500, owner=OTHER)
LIQ_POS_BTC = iso(
    12, -1, 60000, 3000, market=BTC, owner=OTHER
)  # short 1 BTC at 62000: equity 1000, maint 3100
CROSS = CrossView(
    wad(400), wad(1000), wad(800), {ETH: (wad(2), wad(2100)), BTC: (wad("0.1"), wad(62000))}, 0
)


def liq_snap(**kw: Any) -> Snapshot:
    base = dict(
        eth=1900,
        btc=62000,
        positions=[LIQ_POS, LIQ_POS_BTC],
        cross={CROSS_ACCT: CROSS},
        liq_iso=[11, 12],
        liq_cross=[CROSS_ACCT],
    )
    return make_snap(**{**base, **kw})


def expected_reward(mid: int, notional: int, equity: int, maintenance: int) -> float:
    penalty = mm.mul_wad_up(notional, PENALTY[mid])
    # the vault sizes a partial liquidation leaving room for the penalty and the close's fill
    cost = penalty + mm.mul_wad_up(notional, CLOSE_FEE[mid])
    fraction = mm.liquidation_fraction_up(equity, maintenance, cost)
    return mm.mul_wad_down(mm.mul_wad_down(penalty, fraction), SHARE[mid]) / WAD


def expected_iso_reward(snap: Snapshot, p: IsolatedView) -> float:
    view = snap.market(p.market_id)
    assert view.price_wad is not None and view.maintenance_ratio_wad is not None
    h = mm.position_health(
        p.margin_quote * 10**12,
        p.size_wad,
        p.entry_price_wad,
        view.price_wad,
        0,
        view.maintenance_ratio_wad,
    )
    return expected_reward(
        p.market_id, mm.notional_usd_up(p.size_wad, view.price_wad), h.equity_usd, h.maintenance_usd
    )


def gas_cost_usd(gas: int, snap: Snapshot, priority_gwei: float) -> float:
    eth = snap.market(ETH).price_wad
    assert eth is not None
    return gas * (snap.base_fee_wei + int(priority_gwei * GWEI)) * eth / WAD / WAD


def test_keeper_liquidates_everything_it_saw(abis):
    keeper = make_keeper(abis, priority_fee_gwei=2.5)
    seen = liq_snap()
    now = make_snap(
        eth=1900, btc=62000
    )  # the latest snapshot lists nothing: the keeper acts on `seen`
    txs = keeper.decide(20, seen, now)
    assert [t.kind for t in txs] == ["liquidate_isolated", "liquidate_isolated", "liquidate_cross"]
    assert [t.target for t in txs] == ["iso:11", "iso:12", f"cross:{CROSS_ACCT}"]
    assert args(abis["MarginVault"], "liquidateIsolated", txs[0]) == (11,)
    assert args(abis["MarginVault"], "liquidateIsolated", txs[1]) == (12,)
    assert args(abis["MarginVault"], "liquidateCross", txs[2]) == (CROSS_ACCT,)
    assert all(t.sender == KEEPER and t.to == VAULT for t in txs)
    assert all(t.priority_fee_wei == int(2.5 * GWEI) for t in txs)
    assert keeper.skipped_unprofitable == 0
    # and nothing when what it saw lists nothing, whatever `now` lists
    assert make_keeper(abis).decide(20, now, liq_snap()) == []


def test_keeper_latency_no_resend(abis):
    keeper = make_keeper(abis, latency_blocks=2)
    seen = liq_snap(liq_iso=[11], liq_cross=[])
    assert [t.target for t in keeper.decide(10, seen, seen)] == ["iso:11"]
    assert keeper.decide(11, seen, seen) == []
    assert keeper.decide(12, seen, seen) == []
    # a new target is not held back by the first one's pending attempt
    assert [
        t.target for t in keeper.decide(12, liq_snap(liq_iso=[11, 12], liq_cross=[]), seen)
    ] == ["iso:12"]
    assert [t.target for t in keeper.decide(13, seen, seen)] == ["iso:11"]


def test_keeper_outage(abis):
    keeper = make_keeper(abis, outages=(Window(start_block=5, end_block=10),))
    for block in range(5, 10):
        assert keeper.decide(block, liq_snap(), liq_snap()) == []
    assert keeper.skipped_unprofitable == 0
    assert len(keeper.decide(10, liq_snap(), liq_snap())) == 3


def test_keeper_reward_formula_fraction_is_partial():
    """The chosen isolated case exercises a partial liquidation (0 < fraction < 1)."""
    snap = liq_snap()
    view = snap.market(ETH)
    h = mm.position_health(
        1500 * 10**18,
        LIQ_POS.size_wad,
        LIQ_POS.entry_price_wad,
        view.price_wad,
        0,
        view.maintenance_ratio_wad,
    )
    assert h.equity_usd == wad(500) and h.maintenance_usd == wad(950)
    f = mm.liquidation_fraction_up(
        h.equity_usd, h.maintenance_usd, mm.mul_wad_up(wad(19000), PENALTY[ETH])
    )
    assert 0 < f < WAD


@pytest.mark.parametrize("base_fee_gwei", [0.5, 30, 400])
def test_keeper_profit_threshold_isolated(abis, base_fee_gwei):
    prio = 3.0
    seen = liq_snap(liq_iso=[11], liq_cross=[], base_fee_gwei=base_fee_gwei)
    reward = expected_iso_reward(seen, LIQ_POS)
    net = reward - gas_cost_usd(GAS_ISOLATED, seen, prio)
    assert reward > 0

    above = make_keeper(
        abis, priority_fee_gwei=prio, min_profit_usd=net - 0.01
    )  # net just above the minimum
    txs = above.decide(10, seen, seen)
    assert [t.target for t in txs] == ["iso:11"] and above.skipped_unprofitable == 0

    below = make_keeper(abis, priority_fee_gwei=prio, min_profit_usd=net + 0.01)  # net just below
    assert below.decide(10, seen, seen) == []
    assert below.skipped_unprofitable == 1
    # still unprofitable next block: skipped again (not remembered as sent)
    assert below.decide(11, seen, seen) == []
    assert below.skipped_unprofitable == 2


def test_keeper_profit_threshold_uses_now_base_fee(abis):
    seen = liq_snap(liq_iso=[11], liq_cross=[], base_fee_gwei=1)
    now = liq_snap(liq_iso=[], liq_cross=[], base_fee_gwei=200)
    net_now = expected_iso_reward(seen, LIQ_POS) - gas_cost_usd(GAS_ISOLATED, now, 1.0)
    keeper = make_keeper(abis, priority_fee_gwei=1.0, min_profit_usd=net_now + 0.01)
    assert keeper.decide(10, seen, now) == [] and keeper.skipped_unprofitable == 1
    keeper = make_keeper(abis, priority_fee_gwei=1.0, min_profit_usd=net_now - 0.01)
    assert len(keeper.decide(10, seen, now)) == 1


def cross_plan(seen: Snapshot) -> tuple[dict[int, int], int]:
    """As MarginLiquidator.liquidateCross: ONE fraction for the CROSS account, from the cost (penalty and
    close fill) of closing everything; with the penalty per market."""
    notionals = {
        m: mm.notional_usd_up(size, seen.market(m).price_wad or 0)
        for m, (size, _) in CROSS.positions.items()
    }
    penalties = {m: mm.mul_wad_up(n, PENALTY[m]) for m, n in notionals.items()}
    costs = sum(penalties[m] + mm.mul_wad_up(n, CLOSE_FEE[m]) for m, n in notionals.items())
    return penalties, mm.liquidation_fraction_up(CROSS.equity_usd, CROSS.maintenance_usd, costs)


def test_keeper_profit_threshold_cross(abis):
    seen = liq_snap(liq_iso=[], base_fee_gwei=20)
    penalties, fraction = cross_plan(seen)
    assert 0 < fraction < WAD  # a partial liquidation, where per-market fractions would differ
    reward = (
        sum(mm.mul_wad_down(mm.mul_wad_down(p, fraction), SHARE[m]) for m, p in penalties.items())
        / WAD
    )
    net = reward - gas_cost_usd(GAS_CROSS, seen, 1.0)
    assert net > 0
    ok = make_keeper(abis, min_profit_usd=net - 0.01)
    assert [t.kind for t in ok.decide(10, seen, seen)] == ["liquidate_cross"]
    skip = make_keeper(abis, min_profit_usd=net + 0.01)
    assert skip.decide(10, seen, seen) == [] and skip.skipped_unprofitable == 1


def test_keeper_skips_when_gas_exceeds_reward(abis):
    seen = liq_snap(liq_iso=[11], liq_cross=[], base_fee_gwei=100_000)  # absurd gas: cost >> reward
    assert gas_cost_usd(GAS_ISOLATED, seen, 1.0) > expected_iso_reward(seen, LIQ_POS)
    keeper = make_keeper(abis)  # min_profit_usd 0
    assert keeper.decide(10, seen, seen) == [] and keeper.skipped_unprofitable == 1


# -------------------------------------------------------------------------------------------------- LPs


def make_lp(abis, drawdown: float | None = 0.1, fraction: float = 0.5) -> LiquidityProvider:
    cfg = LpGroup(
        name="lp", deposit_usd=1000, withdraw_on_drawdown=drawdown, withdraw_fraction=fraction
    )
    return Driven(LiquidityProvider("lp-0", LP, cfg), make_encoder(abis))


def pool(
    assets: float, shares: tuple[int, int] = (10**12, 10**12), supply: int = 10**12, **exit: int
) -> Snapshot:
    """Pool with `supply` shares whose share price is assets / supply; `shares`: (held, requestable);
    `exit`: the LP's pending exit (LpView's pending_shares, pending_quote, ready_at_s)."""
    return make_snap(
        pool_assets=int(assets * supply),
        pool_supply=supply,
        lp_shares={LP: LpView(*shares, **exit)},
    )


def test_lp_holds_within_drawdown(abis):
    lp = make_lp(abis, drawdown=0.1)
    for price in (1.0, 1.05, 1.0, 0.96, 0.9451, 1.02):  # peak 1.05 -> limit 0.945
        assert lp.decide(pool(price)) == []
    assert lp.peak_share_price == pytest.approx(1.05) and not lp.withdrawn


def test_lp_withdraws_once_below_drawdown(abis):
    lp = make_lp(abis, drawdown=0.1, fraction=0.5)
    shares = 8 * 10**11
    assert lp.decide(pool(1.0, (shares, shares))) == []
    assert lp.decide(pool(1.05, (shares, shares))) == []
    txs = lp.decide(pool(0.94, (shares, shares)))
    assert [t.kind for t in txs] == ["lp_withdraw"]
    assert txs[0].to == POOL and txs[0].sender == LP
    assert args(abis["LPPool"], "requestRedeem", txs[0]) == (shares // 2,)
    assert lp.withdrawn
    for price in (0.9, 0.5, 1.2, 0.5):
        assert lp.decide(pool(price, (shares, shares))) == []


def test_lp_claims_its_exit_once_ready(abis):
    lp = make_lp(abis, drawdown=0.1, fraction=0.5)
    waiting = dict(pending_shares=4 * 10**11, pending_quote=4 * 10**5, ready_at_s=1_000)
    assert lp.decide(replace(pool(0.94, (4 * 10**11, 0), **waiting), timestamp_s=999)) == []
    (claim,) = lp.decide(replace(pool(0.94, (4 * 10**11, 0), **waiting), timestamp_s=1_000))
    assert claim.kind == "lp_claim" and args(abis["LPPool"], "claimRedeem", claim) == (LP,)


def test_lp_withdrawal_capped_by_requestable(abis):
    lp = make_lp(abis, drawdown=0.2, fraction=0.75)
    assert lp.decide(pool(1.0, (10**12, 3 * 10**11))) == []
    txs = lp.decide(pool(0.7, (10**12, 3 * 10**11)))
    assert args(abis["LPPool"], "requestRedeem", txs[0]) == (3 * 10**11,)  # min(7.5e11, 3e11)
    lp2 = make_lp(abis, drawdown=0.2, fraction=0.75)
    lp2.decide(pool(1.0))
    assert args(
        abis["LPPool"], "requestRedeem", lp2.decide(pool(0.7, (10**12, 9 * 10**11)))[0]
    ) == (75 * 10**10,)


def test_lp_retries_when_nothing_requestable(abis):
    lp = make_lp(abis, drawdown=0.1)
    lp.decide(pool(1.0, (10**12, 0)))
    assert lp.decide(pool(0.8, (10**12, 0))) == [] and not lp.withdrawn
    assert len(lp.decide(pool(0.8, (10**12, 10**12)))) == 1


def test_lp_never_withdraws_without_limit(abis):
    lp = make_lp(abis, drawdown=None)
    for price in (1.0, 0.5, 0.1):
        assert lp.decide(pool(price)) == []


def test_keeper_counts_the_collateral_sale_discount(abis):
    """A cross liquidation that sells collateral to the keeper at 5 % under the oracle is worth more than
    the penalty share: the keeper's model counts that gain (the review: $1,186 earned on a $945 penalty)."""
    seen = liq_snap(liq_iso=[], base_fee_gwei=20)
    plain, with_sale = keeper_context(), keeper_context(wad("0.05"))
    penalties, fraction = cross_plan(seen)
    penalty = sum(penalties.values())
    # ETH 2 long from 2100 at 1900: -$400; BTC flat: the account's $400 equity is $800 of weighted
    # collateral less that loss, with no quote: everything owed is bought from the collateral
    owed = mm.mul_wad_up(wad(400) + penalty, fraction)
    needed = min(owed, wad(800))
    gain = needed * wad("0.05") // wad("0.95")
    assert gain > 0
    assert cross_liquidation(seen, with_sale, CROSS_ACCT).reward_usd == pytest.approx(
        cross_liquidation(seen, plain, CROSS_ACCT).reward_usd + gain / WAD
    )
