"""Market depth: liquidations move the market, the market recovers, and cascades are counted.

The pure parts are checked on hand-worked numbers; a real run of `scenarios/thin_market.yaml` (the crash on
thin markets) is checked against an independent re-computation of the impact from its own events.jsonl,
and against the same scenario without depth."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from marginsim_cli import ROOT
from run_events import liquidation_closes

from simulation.depth import (
    Cascade,
    Depth,
    DepthConfig,
    block_flows,
    impact_log,
    largest_fall,
    share_of_move,
)
from simulation.runner import run_scenario
from simulation.scenario import load_scenario
from simulation.state import CrossView, IsolatedView, MarketView, Snapshot

WAD = 10**18


def test_impact_is_one_percent_at_the_depth_and_follows_the_exponent():
    assert impact_log(-50_000, 50_000, 1.0) == pytest.approx(-0.01)
    assert impact_log(200_000, 50_000, 1.0) == pytest.approx(0.04)
    assert impact_log(-200_000, 50_000, 0.5) == pytest.approx(-0.02)  # square-root law: 4x -> 2x
    assert impact_log(0, 50_000, 1.0) == 0.0


def test_impact_halves_every_half_life_and_adds_up():
    cfg = DepthConfig(depth_usd={"ETH": 100_000}, half_life_s=120)
    d = Depth(cfg, block_time_s=12)
    d.absorb({"ETH": -100_000}, {})
    assert d.liq["ETH"] == pytest.approx(-0.01)
    for _ in range(10):  # 120 s
        d.absorb({}, {})
    assert d.liq["ETH"] == pytest.approx(-0.005)
    d.absorb({"ETH": -100_000}, {"ETH": 1e9})  # traders' flow is ignored unless asked for
    assert d.liq["ETH"] == pytest.approx(-0.005 * 0.5 ** (12 / 120) - 0.01)
    assert d.trade["ETH"] == 0.0
    prices = d.price({"ETH": 3000.0, "BTC": 60000.0})
    assert prices["ETH"] == pytest.approx(3000 * math.exp(d.liq["ETH"]))
    assert prices["BTC"] == 60000.0  # no depth given: it does not move


def test_traders_flow_moves_the_market_when_asked():
    cfg = DepthConfig(depth_usd={"ETH": 100_000}, half_life_s=60, traders=True)
    d = Depth(cfg, block_time_s=12)
    d.absorb({}, {"ETH": 100_000})
    assert d.trade["ETH"] == pytest.approx(0.01)
    assert d.price({"ETH": 1000.0})["ETH"] == pytest.approx(1000 * math.exp(0.01))


def test_outside_orders_move_the_market_and_fill_after_their_own_impact():
    """A manipulator's buying on the outside venue moves the price whether or not traders' flow does, decays
    like the rest, and fills at the price after its own impact (the worst of the order)."""
    cfg = DepthConfig(depth_usd={"BTC": 100_000}, half_life_s=120)
    d = Depth(cfg, block_time_s=12)
    assert d.fill_price(60_000.0, "BTC", 300_000) == pytest.approx(60_000 * math.exp(0.03))
    assert d.fill_price(60_000.0, "BTC", -100_000) == pytest.approx(60_000 * math.exp(-0.01))
    d.absorb({}, {}, {"BTC": 300_000})
    assert d.outside["BTC"] == pytest.approx(0.03) and d.liq["BTC"] == d.trade["BTC"] == 0.0
    for _ in range(10):  # 120 s
        d.absorb({}, {})
    assert d.outside["BTC"] == pytest.approx(0.015)
    assert d.price({"BTC": 60_000.0})["BTC"] == pytest.approx(60_000 * math.exp(0.015))


@pytest.mark.parametrize(
    "bad,field",
    [
        ({"depth_usd": {"ETH": 0}, "half_life_s": 60}, "depth_usd"),
        ({"depth_usd": {"ETH": 1e5}, "half_life_s": 0}, "half_life_s"),
        ({"depth_usd": {"ETH": 1e5}, "half_life_s": 60, "exponent": 1.5}, "exponent"),
        ({"depth_usd": {}, "half_life_s": 60}, "depth_usd"),
    ],
)
def test_bad_depth_is_refused(bad, field):
    with pytest.raises(ValueError, match=field):
        DepthConfig(**bad)


def _market(mid: int, symbol: str, price: float, maintenance: float = 0.05) -> MarketView:
    return MarketView(
        mid, f"{symbol}-USD", symbol, int(price * WAD), int(0.1 * WAD), int(maintenance * WAD), 0, 0
    )


def _snapshot(
    positions: dict[int, IsolatedView], cross: dict[str, CrossView], eth: float
) -> Snapshot:
    return Snapshot(
        block=1,
        timestamp_s=0,
        base_fee_wei=0,
        markets=(_market(0, "ETH", eth), _market(1, "BTC", 60_000.0)),
        oracle_rounds={},
        positions=positions,
        cross=cross,
        liquidatable_isolated=(),
        liquidatable_cross=(),
        pool_assets_quote=0,
        pool_supply_shares=0,
        pool_cash_quote=0,
        insurance_quote=0,
    )


def test_block_flows_sell_on_long_closes_and_find_the_market():
    before = _snapshot({7: IsolatedView(7, "0xa", 0, 2 * WAD, 100 * 10**6, 3000 * WAD)}, {}, 3000)
    events = [
        ("k", "IsolatedLiquidated", {"positionId": 7, "closedSize": WAD, "priceWad": 3000 * WAD}),
        (
            "k",
            "CrossPositionLiquidated",
            {"marketId": 1, "closedSize": -WAD, "priceWad": 60000 * WAD},
        ),
        (
            "t",
            "IsolatedOpened",
            {"positionId": 8, "marketId": 1, "size": WAD // 2, "fillPriceWad": 60000 * WAD},
        ),
        (
            "t",
            "IsolatedModified",
            {"positionId": 8, "sizeDelta": -WAD // 4, "fillPriceWad": 60000 * WAD},
        ),
        ("t", "IsolatedClosed", {"positionId": 7, "fillPriceWad": 2000 * WAD}),
        ("t", "CrossTraded", {"marketId": 0, "sizeDelta": 3 * WAD, "fillPriceWad": 1000 * WAD}),
    ]
    liq, trade = block_flows(events, before, {0: "ETH", 1: "BTC"})
    # a long's liquidation sells $3,000 of ETH; a short's buys $60,000 of BTC
    assert liq == {"ETH": pytest.approx(-3000.0), "BTC": pytest.approx(60000.0)}
    # open +30,000, reduce -15,000 in BTC; close of the 2-ETH long at 2,000 sells 4,000, cross buys 3,000
    assert trade == {"BTC": pytest.approx(15000.0), "ETH": pytest.approx(-1000.0)}


def test_a_liquidation_is_induced_only_if_the_impact_made_it_liquidatable():
    # 1 ETH long from 3,000 on $100 of margin, 5 % maintenance: liquidatable below 2,900 / 0.95 = 3,052.63
    iso = IsolatedView(1, "0xa", 0, WAD, 100 * 10**6, 3000 * WAD)
    before = _snapshot({1: iso}, {}, 3040)
    liquidated_at_3040 = ("k", "IsolatedLiquidated", {"positionId": 1, "priceWad": 3040 * WAD})
    c = Cascade()
    # without the impact the price was 3,040 * e^0.01 = 3,070.6: healthy there, so induced
    assert c.fold([liquidated_at_3040], before, lambda mid, p: math.exp(0.01)) == 1
    # 3,040 * e^0.002 = 3,046.1: liquidatable anyway, not induced
    assert c.fold([liquidated_at_3040], before, lambda mid, p: math.exp(0.002)) == 0
    # the impact pushed the price up (short liquidations): a long is worse off without it
    assert c.fold([liquidated_at_3040], before, lambda mid, p: math.exp(-0.01)) == 0
    assert (c.induced, c.rounds, c.liquidations_seen) == (1, 1, 3)


def test_a_cross_account_is_judged_on_all_its_legs():
    # long 1 ETH from 3,000 and short 0.05 BTC from 60,000, $150 of equity at 3,000 / 60,000,
    # 5 % maintenance on both legs: 150 + 0 PnL vs 0.05 * (3,000 + 3,000) = 300 -> liquidatable
    account = "0xB0B"
    acct = CrossView(
        150 * WAD, 0, 300 * WAD, {0: (WAD, 3000 * WAD), 1: (-WAD // 20, 60000 * WAD)}, 0
    )
    before = _snapshot({}, {account: acct}, 3000)
    events = [
        (
            "k",
            "CrossPositionLiquidated",
            {"account": account.lower(), "marketId": 0, "priceWad": 3000 * WAD},
        ),
        ("k", "CrossLiquidated", {"account": account}),
    ]
    # ETH 6 % higher without the impact: equity 150 + 180 = 330, maintenance 0.05 * (3,180 + 3,000) = 309
    assert Cascade().fold(events, before, lambda mid, p: 1.06 if mid == 0 else 1.0) == 1
    # 2 % higher: 150 + 60 = 210 < 0.05 * (3,060 + 3,000) = 303: liquidatable anyway
    assert Cascade().fold(events, before, lambda mid, p: 1.02 if mid == 0 else 1.0) == 0


def test_share_of_the_largest_fall():
    prices = [100.0, 110.0, 99.0, 88.0, 95.0]
    assert largest_fall(prices) == (1, 3)
    fall = math.log(110 / 88)
    impact = [0.0, -0.01, -0.05, -0.04, -0.02]
    assert share_of_move(prices, impact) == pytest.approx(0.03 / fall)
    assert share_of_move([1.0, 2.0, 3.0], [0.0, 0.0, 0.0]) == 0.0


# --------------------------------------------------------------------------- a real run


def _impact_from_events(
    out: Path, depth: dict[str, float], half_life_s: float, block_time_s: int, blocks: int
) -> list[dict[str, float]]:
    """The liquidation impact in each block's price, recomputed from events.jsonl alone (the model as its
    docstring states it): the flows of block b move the log price of block b + 1 onwards, decaying."""
    flows: dict[int, dict[str, float]] = {}
    symbols = {0: "ETH", 1: "BTC"}
    for c in liquidation_closes(out):  # closing a long sells
        b = flows.setdefault(c.block, {})
        b[symbols[c.market_id]] = b.get(symbols[c.market_id], 0.0) - c.size * c.price_wad / 1e36
    decay = 0.5 ** (block_time_s / half_life_s)
    level = {s: 0.0 for s in depth}
    series = []
    for block in range(blocks + 1):
        series.append(dict(level))
        for s in depth:
            q = flows.get(block, {}).get(s, 0.0)
            level[s] = level[s] * decay + (math.copysign(0.01 * abs(q) / depth[s], q) if q else 0.0)
    return series


@pytest.fixture(scope="module")
def thin_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    sc = load_scenario(ROOT / "scenarios" / "thin_market.yaml")
    thin, deep = tmp_path_factory.mktemp("thin"), tmp_path_factory.mktemp("no-depth")
    code, _ = run_scenario(sc, thin, progress=False, backend="revm")
    assert code == 0
    no_depth = sc.model_copy(update={"market": sc.market.model_copy(update={"depth": None})})
    code, _ = run_scenario(no_depth, deep, progress=False, backend="revm")
    assert code == 0
    return thin, deep


def test_liquidations_move_the_price_as_the_model_says(thin_runs):
    thin, _ = thin_runs
    sc = load_scenario(ROOT / "scenarios" / "thin_market.yaml")
    assert sc.market.depth is not None
    ts = pd.read_parquet(thin / "timeseries.parquet")
    expected = _impact_from_events(
        thin,
        sc.market.depth.depth_usd,
        sc.market.depth.half_life_s,
        sc.block_time_s,
        int(ts["block"].max()),
    )
    for symbol in ("ETH", "BTC"):
        want = [(math.expm1(expected[int(b)][symbol])) * 100 for b in ts["block"]]
        assert ts[f"liq_impact_pct_{symbol}"].tolist() == pytest.approx(want, abs=1e-9)
        # the market price is the scenario's path times the impact (traders do not move it here)
        ratio = ts[f"price_{symbol}"] / ts[f"base_price_{symbol}"]
        assert ratio.tolist() == pytest.approx([1 + w / 100 for w in want], rel=1e-12)
    assert (
        min(ts["liq_impact_pct_ETH"]) < -1.0
    )  # liquidations held ETH more than 1 % down at some block


def test_a_thin_market_cascades(thin_runs):
    thin, deep = thin_runs
    s = json.loads((thin / "summary.json").read_text())
    d = json.loads((deep / "summary.json").read_text())
    c = s["cascade"]
    assert c["depth"] is True and c["induced_liquidations"] > 0 and 0 < c["rounds"] <= s["blocks"]
    assert c["induced_liquidations"] <= s["liquidations"]["count"]
    assert all(v < 0 for v in c["peak_impact_pct"].values())
    assert d["cascade"] == {
        "depth": False,
        "induced_liquidations": 0,
        "rounds": 0,
        "share_of_move": {},
        "peak_impact_pct": {},
    }
    # the same seed and path: the thin market liquidates more notional and leaves more bad debt
    assert s["liquidations"]["notional_usd"] > d["liquidations"]["notional_usd"]
    assert s["bad_debt_usd"] > d["bad_debt_usd"]
    assert s["invariants"]["violations"] == 0
    ts = pd.read_parquet(thin / "timeseries.parquet")
    assert int(ts["induced_liquidations"].sum()) == c["induced_liquidations"]
    assert int((ts["induced_liquidations"] > 0).sum()) == c["rounds"]
    html = (thin / "report.html").read_text()
    assert "Cascades: liquidation impact and induced liquidations" in html
    assert "without liquidation impact" in html
