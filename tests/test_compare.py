"""`marginsim compare`: the same path and intended book, all-isolated then all-cross, side by side."""

from __future__ import annotations

import json

import pandas as pd
from marginsim_cli import marginsim

from simulation.compare import ROWS


def test_compare_runs_both_modes_on_the_same_path(tmp_path):
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
    for mode in ("isolated", "cross"):
        assert set(doc[mode]) == {key for key, _ in ROWS}
        # netting PnL per owner never needs more collateral than margining each position alone
        assert (
            doc[mode]["collateral_needed_cross_usd"] <= doc[mode]["collateral_needed_isolated_usd"]
        )
    iso = pd.read_csv(tmp_path / "isolated" / "timeseries.csv")
    cross = pd.read_csv(tmp_path / "cross" / "timeseries.csv")
    assert iso.price_ETH.equals(cross.price_ETH) and iso.price_BTC.equals(cross.price_BTC)
    assert (
        iso.cross_accounts.max() == 0 and cross.open_positions.max() == 0
    )  # each run is all one mode
    assert doc["isolated"]["liquidation_events"] > 0  # the crash bites in this window
    for _, label in ROWS:
        assert label in r.stdout
