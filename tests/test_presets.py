"""History as presets: each scenario under scenarios/ named after an incident, run against the same path
without what made the incident (the counterfactual), checking what the preset is there to show."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from marginsim_cli import ROOT
from run_events import notional_per_block_and_market

from simulation.runner import run_scenario
from simulation.scenario import MarketParams, Scenario, load_scenario


def _run(sc: Scenario, out: Path) -> dict:
    code, summary = run_scenario(sc, out, progress=False, backend="revm")
    assert code == 0 and summary["status"] == "completed"
    return summary


@pytest.fixture(scope="module")
def black_thursday(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    sc = load_scenario(ROOT / "scenarios" / "black_thursday.yaml")
    out = tmp_path_factory.mktemp("black-thursday")
    incident = _run(sc, out)
    plain = sc.model_copy(
        update={"oracle": sc.oracle.model_copy(update={"delay_blocks": 0}), "base_fee": []}
    )
    calm = _run(plain, tmp_path_factory.mktemp("no-delay-no-spike"))
    return out, incident, calm


def test_black_thursday_leaves_bad_debt_that_the_same_fall_does_not(black_thursday):
    """The same fall, the same book: with gas six-fold and the oracle an hour late, keepers skip the
    liquidations that no longer pay for their gas, underwater positions pile up (latent bad debt), and
    the insurance fund pays for them; without, keepers keep up and the fund grows."""
    _, incident, calm = black_thursday
    assert calm["bad_debt_usd"] == 0
    assert incident["bad_debt_usd"] > 10_000
    assert incident["latent_bad_debt_usd"]["peak"] > 100 * max(
        1.0, calm["latent_bad_debt_usd"]["peak"]
    )
    assert incident["liquidations"]["count"] < calm["liquidations"]["count"] / 2
    assert incident["insurance_fund_usd"]["end"] < incident["insurance_fund_usd"]["start"]
    assert calm["insurance_fund_usd"]["end"] > calm["insurance_fund_usd"]["start"]
    assert incident["invariants"]["violations"] == 0


def test_black_thursday_oracle_lags_an_hour_and_gas_is_six_fold(black_thursday):
    out, _, _ = black_thursday
    ts = pd.read_parquet(out / "timeseries.parquet").set_index("block")
    fall = ts.loc[300:1100]
    lag = fall["oracle_ETH"] / fall["price_ETH"] - 1
    # falling about 0.064 % a minute, an hour late: the on-chain price sits some 4 % above the market
    assert lag.median() > 0.02
    # each round reports the market of 60 blocks before (to the feed's 8 decimals, within a round's deviation)
    hour_before = ts["price_ETH"].shift(60).loc[300:1100]
    assert ((fall["oracle_ETH"] / hour_before - 1).abs() < 0.006).mean() > 0.95
    assert ts.loc[130:1199, "base_fee_gwei"].min() == pytest.approx(180)
    assert ts.loc[2:119, "base_fee_gwei"].max() == pytest.approx(30)
    windows = json.loads((out / "summary.json").read_text())["windows"]
    assert [w["label"] for w in windows if w["kind"] == "gas_spike"] == [
        "base fee 30 gwei",
        "base fee 180 gwei",
    ]


@pytest.fixture(scope="module")
def cascade(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict, int]:
    sc = load_scenario(ROOT / "scenarios" / "cascade_2025.yaml")
    out = tmp_path_factory.mktemp("cascade-2025")
    incident = _run(sc, out)
    deep = sc.model_copy(
        update={
            "market": sc.market.model_copy(update={"depth": None}),
            "protocol": sc.protocol.model_copy(update={"markets": {}}),  # no cap of any kind
        }
    )
    calm = _run(deep, tmp_path_factory.mktemp("deep-uncapped"))
    cap = sc.protocol.markets["ETH-USD"].liquidation_cap_usd
    assert cap is not None
    return out, incident, calm, int(cap)


def test_cascade_2025_overshoots_the_path_and_reaches_the_pool(cascade):
    """Thin depth: liquidations push the price past the scenario's path (induced liquidations, cascade
    rounds), bad debt empties the insurance fund and reaches the LP pool; the same fall on deep markets
    without a cap leaves none."""
    out, incident, calm, _ = cascade
    c = incident["cascade"]
    assert c["induced_liquidations"] > 0 and c["rounds"] > 0
    assert c["peak_impact_pct"]["ETH"] < -5 and c["peak_impact_pct"]["BTC"] < -5
    assert calm["bad_debt_usd"] == 0
    assert incident["bad_debt_usd"] > incident["insurance_fund_usd"]["start"]
    assert incident["bad_debt_covered"]["lp_pool_usd"] > 0  # past the fund: the LP pool pays
    assert incident["lp_share_price"]["end"] < incident["lp_share_price"]["start"]
    assert incident["invariants"]["violations"] == 0
    ts = pd.read_parquet(out / "timeseries.parquet")
    assert (ts["price_ETH"] < ts["base_price_ETH"] * 0.95).any()  # the market undershoots the path


def test_cascade_2025_auto_deleverages_what_the_pool_cap_leaves(cascade):
    """The LP pool takes bad debt up to its loss cap (0.2 % of its trading liquidity a day per market); the
    rest is owed by the profitable side, and the deleverager's haircuts pay all of it back by the end. The
    same fall on deep markets needs none."""
    out, incident, calm, _ = cascade
    covered, adl = incident["bad_debt_covered"], incident["deleveraging"]
    ts = pd.read_parquet(out / "timeseries.parquet")
    cap = 2 * 0.002 * ts["pool_cash_usd"].max()  # two markets, each capped apart
    assert 0 < covered["lp_pool_usd"] <= cap
    assert covered["deleveraging_usd"] > 0 and adl["positions"] > 0
    assert adl["haircut_usd"] == pytest.approx(covered["deleveraging_usd"], abs=1e-6)
    assert adl["deficit_peak_usd"] > 0 and adl["deficit_end_usd"] == 0
    assert ts["deleverage_deficit_usd"].max() == pytest.approx(adl["deficit_peak_usd"])
    assert calm["deleveraging"]["positions"] == 0
    haircuts = [
        json.loads(line)
        for line in (out / "events.jsonl").read_text().splitlines()
        if '"Deleveraged"' in line
    ]
    assert len(haircuts) == adl["positions"] and all(e["closedSize"] for e in haircuts)


def test_cascade_2025_liquidations_wait_for_room(cascade):
    """The cap: no block liquidates more than $100,000 of notional in a market, some liquidations meet a
    spent cap (LiquidationCapReached), and the queue holds more than a block can take."""
    out, incident, _, cap = cascade
    per_block = notional_per_block_and_market(out)
    assert max(per_block.values()) <= cap * (1 + 1e-9)
    capped = sum(v for k, v in incident["reverts_by_kind"].items() if "LiquidationCapReached" in k)
    assert capped > 0
    assert incident["liquidation_queue_peak_usd"] > cap


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    sc = load_scenario(ROOT / "scenarios" / "crowded_long.yaml")
    out = tmp_path_factory.mktemp("crowded-long")
    funded = _run(sc, out)
    markets = {
        name: m.model_copy(update={"funding_rate": 0.0}) for name, m in sc.protocol.markets.items()
    }
    free = sc.model_copy(update={"protocol": sc.protocol.model_copy(update={"markets": markets})})
    return out, funded, _run(free, tmp_path_factory.mktemp("no-funding"))


def test_crowded_long_pays_the_pool_what_its_lps_gain(crowded):
    """The book leans long through the rally: the rate reaches the full 5 % a day in both markets (the
    whole book long) and stays positive most of the way; the traders pay the pool, net, and the LPs'
    share price ends that much above the same rally without funding (the pool's value counts the
    funding owed but not yet settled too)."""
    out, funded, free = crowded
    funding = funded["funding"]
    assert funding["peak_rate_pct_day"] == {"BTC": 5.0, "ETH": 5.0}
    assert free["funding"] == {
        "to_pool_usd": 0,
        "open_usd": 0,
        "peak_rate_pct_day": {"BTC": 0.0, "ETH": 0.0},
    }
    assert (
        funding["to_pool_usd"] > 50_000 and funding["open_usd"] < 0
    )  # longs owe what is unsettled
    ts = pd.read_parquet(out / "timeseries.parquet")
    for symbol in (
        "ETH",
        "BTC",
    ):  # the longs pay two blocks in three, more than 1 % a day on average
        rate = ts[f"funding_rate_pct_day_{symbol}"]
        assert (rate > 0).mean() > 2 / 3 and rate.mean() > 1.0
    # whichever side is heavier pays, and the pool holds the other side of the net: it never pays
    assert (ts["funding_paid_usd"] >= 0).all()
    assert ts["funding_to_pool_usd"].iloc[-1] == pytest.approx(funding["to_pool_usd"], rel=1e-6)
    supply_usd = 3 * 2_000_000  # the LPs' deposits, at a share price of 1 to start
    lp_gain = (funded["lp_share_price"]["end"] - free["lp_share_price"]["end"]) * supply_usd
    assert lp_gain == pytest.approx(funding["to_pool_usd"], rel=0.05)
    assert funded["invariants"]["violations"] == 0


def _events(out: Path, name: str) -> list[dict]:
    return [
        json.loads(line)
        for line in (out / "events.jsonl").read_text().splitlines()
        if f'"event": "{name}"' in line
    ]


def _deeper(sc: Scenario, factor: float) -> Scenario:
    depth = sc.market.depth
    assert depth is not None
    deep = depth.model_copy(
        update={"depth_usd": {a: d * factor for a, d in depth.depth_usd.items()}}
    )
    return sc.model_copy(update={"market": sc.market.model_copy(update={"depth": deep})})


@pytest.fixture(scope="module")
def mango(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    sc = load_scenario(ROOT / "scenarios" / "mango.yaml")
    out = tmp_path_factory.mktemp("mango")
    return out, _run(sc, out), _run(_deeper(sc, 20), tmp_path_factory.mktemp("mango-deep"))


def test_mango_cashes_out_a_pumped_long_that_the_lps_pay(mango):
    """The pump: $4,000,000 bought on a venue $100,000 deep at 1 % takes the oracle price up by more than
    half; the long closes there and the LP pool pays its profit; the manipulator ends more than $1,000,000
    up after its outside round trip, its short and gas, and the LPs' share price falls by more than 5 %.
    The same attack on a market 20 times deeper loses the manipulator money and costs the LPs nothing."""
    out, incident, deep = mango
    ts = pd.read_parquet(out / "timeseries.parquet").set_index("block")
    assert ts["oracle_BTC"].max() > 1.5 * ts["oracle_BTC"].iloc[0]
    (close,) = [e for e in _events(out, "IsolatedClosed") if e["agent"] == "mango"]
    assert int(close["fillPriceWad"]) > 1.4 * 60_000 * 10**18
    assert close["realizedPnl"] > 1_000_000 * 10**6  # paid out of the pool, USDC
    adv = incident["adversaries"]["mango"]
    assert adv["pnl_usd"] > 1_000_000
    assert incident["lp_share_price"]["end"] < 0.95
    buys = [e for e in _events(out, "OutsideTrade") if e["units"] > 0]
    sells = [e for e in _events(out, "OutsideTrade") if e["units"] < 0]
    assert len(buys) == 10 and sum(e["units"] for e in buys) == pytest.approx(
        -sum(e["units"] for e in sells)
    )  # everything bought is sold again: the PnL holds no inventory
    assert deep["adversaries"]["mango"]["pnl_usd"] < 0
    assert deep["lp_share_price"]["end"] >= 1.0
    assert incident["invariants"]["violations"] == deep["invariants"]["violations"] == 0


@pytest.fixture(scope="module")
def jelly(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path, dict]:
    sc = load_scenario(ROOT / "scenarios" / "jelly.yaml")
    out = tmp_path_factory.mktemp("jelly")
    incident = _run(sc, out)
    capped = sc.protocol.model_copy(
        update={
            "insurance_usd": 10_000,
            "markets": {"BTC-USD": MarketParams(pool_loss_cap=0.0001)},
        }
    )
    out_cap = tmp_path_factory.mktemp("jelly-capped")
    return out, incident, out_cap, _run(sc.model_copy(update={"protocol": capped}), out_cap)


def test_jelly_liquidates_the_short_into_the_pool_and_the_price_goes_on_up(jelly):
    """The thin short is liquidated early in the pump: the pool takes its side, and the liquidation's own
    buying moves the thin market by more than 10 %; the price goes on up past the liquidation's by more
    than a third, the long closes at the top, and the LPs lose more than 10 %."""
    out, incident, _, _ = jelly
    address = incident["adversaries"]["jelly"]["addresses"][0]
    (liq,) = [e for e in _events(out, "IsolatedLiquidated") if e["owner"] == address]
    assert int(liq["closedSize"]) < 0 and liq["full"]
    (close,) = [e for e in _events(out, "IsolatedClosed") if e["agent"] == "jelly"]
    assert int(close["fillPriceWad"]) > 1.33 * int(liq["priceWad"])
    assert close["block"] > liq["block"]
    ts = pd.read_parquet(out / "timeseries.parquet").set_index("block")
    assert ts["liq_impact_pct_BTC"].max() > 10  # the short's liquidation bought the thin market
    assert incident["adversaries"]["jelly"]["pnl_usd"] > 1_000_000
    assert incident["lp_share_price"]["end"] < 0.9
    assert incident["invariants"]["violations"] == 0


def test_jelly_auto_deleveraging_recovers_the_bad_debt_not_the_pools_loss(jelly):
    """With a pool loss cap and a small insurance fund, the short's bad debt past them is auto-deleveraged
    from the most profitable long: the manipulator's own. The haircuts pay the deficit back, but they
    are all the waterfall takes: the pool's loss is the inherited short marked up, not bad debt, so the
    manipulator keeps more than 90 % of its gain (Hyperliquid settled JELLY by delisting the market)."""
    _, incident, out_cap, capped = jelly
    address = capped["adversaries"]["jelly"]["addresses"][0]
    haircuts = _events(out_cap, "Deleveraged")
    assert haircuts and all(e["owner"] == address for e in haircuts)
    adl = capped["deleveraging"]
    assert adl["haircut_usd"] == pytest.approx(capped["bad_debt_covered"]["deleveraging_usd"])
    assert adl["deficit_end_usd"] == 0
    assert incident["deleveraging"]["positions"] == 0
    kept = capped["adversaries"]["jelly"]["pnl_usd"] / incident["adversaries"]["jelly"]["pnl_usd"]
    assert 0.9 < kept < 1.0
    assert capped["invariants"]["violations"] == 0


@pytest.fixture(scope="module")
def depeg(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path, dict]:
    sc = load_scenario(ROOT / "scenarios" / "usdc_depeg.yaml")
    out = tmp_path_factory.mktemp("usdc-depeg")
    at_feed = _run(sc, out)
    par = sc.model_copy(update={"protocol": sc.protocol.model_copy(update={"quote_at_par": True})})
    out_par = tmp_path_factory.mktemp("usdc-at-par")
    return out, at_feed, out_par, _run(par, out_par)


def test_usdc_depeg_valued_at_the_feed_liquidates_what_par_hides(depeg):
    """USDC at $0.88: valued at its feed, the vault sees every USDC margin lose 12 % and liquidates the
    levered positions that no longer cover maintenance (more than 10 liquidations beyond the same run at
    par, all of them in the depeg's window); at par the books overstate the quote held by more than
    $50,000 and at least 5 positions sit unliquidated that the quote's market price makes liquidatable.
    The feed lags the market by at most its 0.25 % deviation: what it leaves unseen is that lag's."""
    out, feed, out_par, par = depeg
    assert feed["quote"]["valued_at"] == "feed" and par["quote"]["valued_at"] == "par"
    assert feed["quote"]["market_low_usd"] == pytest.approx(0.88)
    assert feed["quote"]["vault_low_usd"] == pytest.approx(0.88, abs=0.0025 * 0.88)
    assert par["quote"]["vault_low_usd"] == 1.0
    assert feed["liquidations"]["count"] > par["liquidations"]["count"] + 10
    ts, ts_par = (
        pd.read_parquet(o / "timeseries.parquet").set_index("block") for o in (out, out_par)
    )
    extra = ts["liquidations"] - ts_par["liquidations"]
    assert extra.loc[60:600].sum() > 10  # the depeg's window: the fall, the trough, the recovery
    assert par["quote"]["overvalued_peak_usd"] > 50_000
    assert feed["quote"]["overvalued_peak_usd"] < par["quote"]["overvalued_peak_usd"] / 20
    assert par["quote"]["unseen_liquidatable_peak"] >= 5
    assert feed["quote"]["unseen_liquidatable_peak"] < par["quote"]["unseen_liquidatable_peak"]
    assert ts["oracle_USDC"].min() == pytest.approx(0.88, abs=0.0025 * 0.88)
    # at par the same feed follows the market, and the vault values the quote at $1 all the same
    assert ts_par["oracle_USDC"].min() == pytest.approx(0.88, abs=0.0025 * 0.88)
    assert feed["bad_debt_usd"] == par["bad_debt_usd"] == 0
    assert feed["invariants"]["violations"] == par["invariants"]["violations"] == 0
