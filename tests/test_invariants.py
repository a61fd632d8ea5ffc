"""Stateful property test of the margin protocol: random isolated and cross actions by three traders, LP
deposits and same-block round trips, price moves, stale feeds and keeper liquidations; after every step the
chain is checked against the reference model (simulation.margin_math) for conservation, health, scans,
isolation, the bad-debt waterfall, the LP share price, liquidation-vs-close and stale-feed liquidations.

Handlers: tests/invariants/machine.py, risk.py, pool_oracle.py; properties: tests/invariants/properties.py.
Each run draws a fresh seed and runs at least MIN_ACTIONS actions; a failure names its seed, and
`MARGINSIM_HYPOTHESIS_SEED=<seed>` replays the same run. Speed: `MARGINSIM_INVARIANT_ACTIONS=<n>` sets the
number of actions and the test prints actions/s (`-s`). A failure writes a reproducer (tests/invariants/
run.py) under out/invariant-repro/."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import ape
import pytest
from invariants.run import harness, run_suite

from simulation.deploy import SystemSpec

ROOT = Path(__file__).resolve().parents[1]

MIN_ACTIONS = int(os.environ.get("MARGINSIM_INVARIANT_ACTIONS", "2000"))
"""Actions per run: state-changing protocol calls by traders, keepers and LPs (price moves, about as many
again, and what-if calls on snapshots not counted)."""


@pytest.mark.local_only
def test_margin_invariants(system: Any, owner: Any, alice: Any, keeper: Any, capsys: Any) -> None:
    """On a real anvil (ape's): the same machine as on revm (test_invariants_revm.py), fewer actions."""
    accounts = [a.address for a in ape.accounts.test_accounts[:7]]
    assert accounts[0] == owner.address and accounts[1] == alice.address
    assert accounts[4] == keeper.address  # the parts run.ACTORS gives the accounts
    h = harness(system, ape.chain.provider.web3.provider.endpoint_uri, accounts)
    with capsys.disabled():  # the seed, the speed and `actions=N violations=V` reach CI's log
        stats = run_suite(
            h,
            MIN_ACTIONS,
            backend="anvil",
            spec=SystemSpec(),
            repro_dir=ROOT / "out" / "invariant-repro",
        )
    assert stats["steps"] + stats["lpCalls"] >= MIN_ACTIONS
