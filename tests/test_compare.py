"""`marginsim compare`: the same path and intended book, all-isolated, all-cross and all-portfolio, side by
side."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from marginsim_cli import marginsim

from simulation.compare import MODES, ROWS


def test_compare_runs_every_mode_on_the_same_path(tmp_path):
    r = marginsim(
        "compare",
        "scenarios/crash.yaml",
        "--out",
        str(tmp_path),
        "--blocks",
        "250",
        "--no-progress",
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "compare.json").read_text())
    assert doc["scenario"] == "crash" and doc["blocks"] == 250
    assert MODES == ("isolated", "cross", "portfolio")
    for mode in MODES:
        m = doc[mode]
        assert set(m) == {key for key, _ in ROWS}
        # netting PnL per owner never needs more collateral than margining each position alone, and
        # margining on net risk never more than netting
        assert m["collateral_needed_portfolio_usd"] <= m["collateral_needed_cross_usd"]
        assert m["collateral_needed_cross_usd"] <= m["collateral_needed_isolated_usd"]
        assert m["carry_portfolio_usd"] <= m["carry_cross_usd"] <= m["carry_isolated_usd"]
    iso, cross, pm = (pd.read_csv(tmp_path / m / "timeseries.csv") for m in MODES)
    assert iso.price_ETH.equals(cross.price_ETH) and iso.price_BTC.equals(cross.price_BTC)
    assert pm.price_ETH.equals(cross.price_ETH)
    # each run is all one mode
    assert iso.cross_accounts.max() == 0 and cross.open_positions.max() == 0
    assert pm.open_positions.max() == 0 and pm.cross_accounts.max() > 0
    # the portfolio accounts were switched at set-up: before the crash, the same book is healthier on net
    # risk (lower requirements, the same equity)
    early = slice(1, 40)
    assert (pm.health_p50[early] >= cross.health_p50[early]).all()
    assert (pm.health_p50[early] > cross.health_p50[early]).any()
    assert doc["isolated"]["liquidation_events"] > 0  # the crash bites in this window
    for _, label in ROWS:
        assert label in r.stdout


def test_compare_across_seeds_gives_contagion_and_capital(tmp_path):
    """Every mode on 3 seeds (in process, on a local Ray): the rates are the paths' own figures
    pooled, the same book never needs more collateral margined cross, and a rerun resumes."""
    out = tmp_path / "cmp"
    args = ("compare", "scenarios/crash.yaml", "--out", str(out), "--blocks", "200")
    args += ("--seeds", "3", "--workers", "2", "--backend", "revm", "--no-progress")
    r = marginsim(*args, timeout=900)
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "compare.json").read_text())
    assert doc["seeds"] == [7, 8, 9]
    runs = pd.read_parquet(out / "runs.parquet")
    assert len(runs) == 9 and set(runs["status"]) == {"completed"}
    for point, mode in enumerate(MODES):
        m, mine = doc[mode], runs[runs["point"] == point]
        assert m["paths"] == 3
        # the rates, from the runs' own summaries
        assert m["contagion_path_rate"] == (mine["profitable_positions_liquidated"] > 0).mean()
        assert m["liquidation_probability"] == (mine["liquidations.count"] > 0).mean()
        assert m["bad_debt_usd_mean"] == pytest.approx(mine["bad_debt_usd"].mean())
        carry = mine[f"collateral_to_carry_usd.{mode}_margining"]
        assert m["carry_usd_mean"] == pytest.approx(carry.mean())
        assert 0 < m["same_book_cross_over_isolated"] <= 1
        # each run is all one mode
        assert (mine["scenario"] == f"crash ({mode})").all()
    assert doc["isolated"]["liquidation_probability"] == 1.0  # the crash bites in 200 blocks
    assert "paths where a leg with PnL >= 0 was liquidated" in r.stdout
    before = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/result.json")}
    assert marginsim(*args, timeout=600).returncode == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/result.json")} == before


def test_divergence_cross_liquidates_profitable_legs_isolated_does_not(tmp_path):
    """scenarios/divergence.yaml: hedged pairs, ETH -40 % while BTC is nearly flat. Cross margin closes
    the accounts' BTC legs with their ETH legs, some of them in profit at the oracle price; isolated
    margin never closes a profitable leg. The books are the same, leg for leg, until the crash. The
    hedged book needs less collateral on net risk than netted, and less netted than leg by leg."""
    r = marginsim(
        "compare",
        "scenarios/divergence.yaml",
        "--out",
        str(tmp_path),
        "--backend",
        "revm",
        "--no-progress",
        timeout=900,
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "compare.json").read_text())
    iso, cross = doc["isolated"], doc["cross"]
    assert iso["positions_liquidated"] > 0 and cross["positions_liquidated"] > 0
    assert iso["profitable_positions_liquidated"] == 0
    assert cross["profitable_positions_liquidated"] > 0
    # the profitable legs are BTC legs, each closed with its account's losing ETH leg
    legs = [json.loads(x) for x in (tmp_path / "cross" / "events.jsonl").read_text().splitlines()]
    liquidated = [e for e in legs if e["event"] == "CrossPositionLiquidated"]
    profitable = [e for e in liquidated if int(e["markPnlUsd"]) >= 0]
    assert len(profitable) == cross["profitable_positions_liquidated"]
    assert {int(e["marketId"]) for e in profitable} == {1}
    for e in profitable:
        same_call = [
            x
            for x in liquidated
            if x["block"] == e["block"] and x["account"] == e["account"] and x is not e
        ]
        assert [int(x["marketId"]) for x in same_call] == [0] and int(
            same_call[0]["markPnlUsd"]
        ) < 0
    # what the contagion costs the same traders
    assert cross["collateral_lost_usd"] > iso["collateral_lost_usd"]
    # the capital order, on each run's book carried through the path with no liquidation
    for mode in MODES:
        m = doc[mode]
        assert m["carry_portfolio_usd"] <= m["carry_cross_usd"] < m["carry_isolated_usd"], mode
    assert doc["portfolio"]["profitable_positions_liquidated"] > 0  # one account, one liquidation
