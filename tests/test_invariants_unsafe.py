"""The invariant suite's new properties can fail: each runs, through the suite's own handlers, a short fixed
sequence that exploits the flaw it exists for, against a deployment with that defence off
(simulation.deploy.DEFENCES_OFF: no LP cooldown, no fee floor, liquidations at the oracle
price, stale collateral reverting), and reports a violation there; the same sequence on the hardened
system reports none."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ape
import pytest
from invariants.harness import USDC_DEC, Harness
from invariants.machine import BaseMachine
from invariants.pool_oracle import FullMachine

from simulation.deploy import Deployment
from simulation.units import WAD


def machine_on(d: Deployment, owner: Any, keeper: Any) -> FullMachine:
    """The suite's state machine on deployment `d`, its actors funded, at the start of an example."""
    accounts = ape.accounts.test_accounts
    h = Harness(
        d,
        ape.chain.provider.web3.provider.endpoint_uri,
        owner.address,
        [a.address for a in accounts[1:4]],
        keeper.address,
        [a.address for a in accounts[5:7]],
    )
    h.fund_actors()
    BaseMachine.h = h
    BaseMachine.usdc_supply = h.call1("USDC", "totalSupply")
    BaseMachine.snapshot = h.snapshot()
    m = FullMachine()
    m.reset_chain([0, 0, 0])
    return m


def jit_round_trip(m: FullMachine) -> None:
    """The review's JIT attack: $190M in, a $1M trade by someone else, everything out at once."""
    m.lp_round_trip(lp=1, amount=190_000_000, a=0, m=0, long=True, notional=1_000_000)


def self_liquidation(m: FullMachine) -> None:
    """The review's self-liquidation: $2M of ETH on $150k, ETH to $2930, the keeper liquidates."""
    h = m.h
    size = 2_000_000 * WAD // 3000
    out = h.must("MarginVault", "openIsolated", (0, size, 150_000 * 10**USDC_DEC), h.traders[0])
    pid = out.events("IsolatedOpened")[0]["positionId"]
    h.must("FEED_WETH", "updateAnswer", (2930 * 10**8,), h.owner)
    m.dirty()
    m._liquidate_one(pid, False)


def stale_dust(m: FullMachine) -> None:
    """A dust of WBTC in a cross account trading ETH, then WBTC's feed misses its heartbeat."""
    m.stale_collateral_feed(a=0, stale="WBTC", dust=True, margin=1_000, long=True, move=10)


SEQUENCES: dict[str, tuple[Callable[[FullMachine], None], str]] = {
    "lp_round_trip": (jit_round_trip, "other LPs lost"),
    "liquidation_vs_close": (self_liquidation, "liquidating from a second address pays"),
    "stale_feed_liquidation": (stale_dust, "WBTC stale: liquidating"),
}


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_each_new_invariant_catches_its_flaw_and_only_it(
    name: str, unsafe_system: Deployment, system: Deployment, owner: Any, keeper: Any
) -> None:
    """The sequence reports its flaw on the unsafe system, and nothing on the hardened one (where every
    other property holds after it too)."""
    run, expected = SEQUENCES[name]
    unsafe = machine_on(unsafe_system, owner, keeper)
    run(unsafe)
    print(f"\n{name} on the unsafe system:", *unsafe.violations, sep="\n  ")
    assert any(expected in v for v in unsafe.violations), unsafe.violations
    hardened = machine_on(system, owner, keeper)
    run(hardened)
    assert not hardened.violations, hardened.violations
    hardened.properties()
