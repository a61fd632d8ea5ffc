"""Stateful property test of the margin protocol: random isolated and cross actions by three traders, LP
deposits and same-block round trips, price moves, stale feeds and keeper liquidations; after every step the
chain is checked against the reference model (simulation.margin_math) for conservation, health, scans,
isolation, the bad-debt waterfall, the LP share price, liquidation-vs-close and stale-feed liquidations.

Handlers: tests/invariants/machine.py, risk.py, pool_oracle.py; properties: tests/invariants/properties.py.
Each run draws a fresh seed and runs at least MIN_ACTIONS actions; a failure names its seed, and
`MARGINSIM_HYPOTHESIS_SEED=<seed>` replays the same run. Speed: `MARGINSIM_INVARIANT_ACTIONS=<n>` sets the
number of actions and the test prints actions/s (`-s`)."""

from __future__ import annotations

import os
import time
from typing import Any

import ape
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.stateful import run_state_machine_as_test
from invariants.harness import Harness
from invariants.machine import STATS, BaseMachine
from invariants.pool_oracle import FullMachine

MIN_ACTIONS = int(os.environ.get("MARGINSIM_INVARIANT_ACTIONS", "2000"))
"""Actions per run: state-changing protocol calls by traders, keepers and LPs (price moves, about as many
again, and what-if calls on snapshots not counted)."""
ROUND = settings(
    max_examples=10,
    stateful_step_count=40,
    deadline=None,
    derandomize=False,
    database=None,  # a run is replayed by its seed, not from a local example database
    phases=[
        Phase.generate
    ],  # no shrinking: a shrink of a long chain run takes longer than CI allows
    suppress_health_check=list(HealthCheck),
)


def actions() -> int:
    return STATS["steps"] + STATS["lpCalls"]


@pytest.mark.local_only
def test_margin_invariants(
    system: Any, owner: Any, alice: Any, bob: Any, carol: Any, keeper: Any
) -> None:
    traders = [alice.address, bob.address, carol.address]
    lps = [a.address for a in ape.accounts.test_accounts[5:7]]
    h = Harness(
        system,
        ape.chain.provider.web3.provider.endpoint_uri,
        owner.address,
        traders,
        keeper.address,
        lps,
    )
    h.fund_actors()
    BaseMachine.h = h
    BaseMachine.usdc_supply = h.call1("USDC", "totalSupply")
    # Block times advance one second a block (and by the handlers' jumps), not with the wall clock, so a
    # seed replays the same chain: volatility buffers and LP cooldown epochs depend on timestamps.
    h.rpc1("anvil_setBlockTimestampInterval", [1])
    BaseMachine.snapshot = h.snapshot()
    STATS.clear()
    seed = int(os.environ.get("MARGINSIM_HYPOTHESIS_SEED") or int.from_bytes(os.urandom(8), "big"))
    print(f"\ninvariant run: seed {seed} (replay: MARGINSIM_HYPOTHESIS_SEED={seed})")
    start, rounds = time.monotonic(), 0
    try:
        while actions() < MIN_ACTIONS:
            hypothesis_seed(seed + rounds)(FullMachine)
            run_state_machine_as_test(FullMachine, settings=ROUND)
            rounds += 1
    except BaseException as e:
        e.add_note(
            f"invariant run failed after {actions()} actions: MARGINSIM_HYPOTHESIS_SEED={seed}"
        )
        raise
    finally:
        h.revert(BaseMachine.snapshot)
        h.rpc1("anvil_removeBlockTimestampInterval", [])
    elapsed = time.monotonic() - start
    print(
        f"invariant run: {actions()} actions (+{STATS['priceMoves']} price moves) in {elapsed:.0f} s "
        f"({actions() / elapsed:.1f} actions/s)"
    )
    print("invariant run:", dict(sorted(STATS.items())))
    # The paths the invariants exist for must have run, not only been attempted.
    for path in (
        "liquidateIsolated:ok",
        "liquidateCross:ok",
        "badDebtEvents",
        "liquidationVsClose:isolated",
        "liquidationVsClose:cross",
        "lpRoundTrip:request",
        "lpExit:claim:ok",
        "stale:",
    ):
        assert any(k.startswith(path) for k in STATS), (
            f"the run never exercised {path}: {dict(STATS)}"
        )
