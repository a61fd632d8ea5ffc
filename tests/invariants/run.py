"""Running the invariant suite on a deployed system, on either backend, and replaying a failure.

`run_suite` draws Hypothesis runs of FullMachine until `min_actions` actions have been sent, prints
`actions=N violations=V` at its end, and on a failure writes a reproducer: a JSON file with the seed, the
backend, the deployed parameters (simulation.deploy.SystemSpec) and the failing example's steps (shrunk
where the run shrinks). `replay` runs those steps on a fresh deployment, checking every property after each
step:

    python tests/invariants/replay.py REPRO.json [--backend revm|anvil]
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.stateful import run_state_machine_as_test

from simulation.backends import http_transport, revm_transport
from simulation.build import compile_contracts
from simulation.chain import AnvilNode
from simulation.deploy import MarketSpec, SystemSpec, TokenSpec, deploy_system

from .harness import Harness
from .machine import STATS, BaseMachine
from .pool_oracle import FullMachine

ACTORS = {"owner": 0, "traders": (1, 4), "keeper": 4, "lps": (5, 7)}
"""Which dev accounts play which part (the contract tests' ape accounts in the same order)."""

COVERED = (
    "liquidateIsolated:ok",
    "liquidateCross:ok",
    "badDebtEvents",
    "liquidationVsClose:isolated",
    "liquidationVsClose:cross",
    "lpRoundTrip:request",
    "lpExit:claim:ok",
    "stale:",
)
"""The paths the invariants exist for: a run must have executed each, not only attempted it."""


def actions() -> int:
    return STATS["steps"] + STATS["lpCalls"]


def round_settings(shrink: bool) -> settings:
    return settings(
        max_examples=10,
        stateful_step_count=40,
        deadline=None,
        derandomize=False,
        database=None,  # a run is replayed by its seed or its reproducer, not a local database
        # shrinking a long run on anvil takes longer than CI allows; on revm it is affordable
        phases=[Phase.generate, Phase.shrink] if shrink else [Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def harness(system: Any, rpc: Any, accounts: list[str]) -> Harness:
    t0, t1 = ACTORS["traders"]
    l0, l1 = ACTORS["lps"]
    return Harness(
        system,
        rpc,
        accounts[ACTORS["owner"]],
        accounts[t0:t1],
        accounts[ACTORS["keeper"]],
        accounts[l0:l1],
    )


def prepare(h: Harness) -> None:
    """Fund the actors, pin block times (one second a block, so a seed replays the same chain), and take
    the snapshot every example starts from."""
    h.fund_actors()
    BaseMachine.h = h
    BaseMachine.usdc_supply = h.call1("USDC", "totalSupply")
    h.rpc1("anvil_setBlockTimestampInterval", [1])
    BaseMachine.snapshot = h.snapshot()
    STATS.clear()


def _steps(e: BaseException) -> list[str]:
    """The failing example's steps, as Hypothesis notes them (`state.rule(arg=value, ...)`)."""
    lines = [line.strip() for note in getattr(e, "__notes__", []) for line in note.splitlines()]
    return [line.removeprefix("state.") for line in lines if line.startswith("state.")]


def write_reproducer(
    path: Path, seed: int, backend: str, spec: SystemSpec, steps: list[str], error: str
) -> Path:
    doc = {
        "seed": seed,
        "backend": backend,
        "spec": json.loads(json.dumps(dataclasses.asdict(spec), default=str)),
        "steps": steps,
        "error": error[:4000],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def run_suite(
    h: Harness,
    min_actions: int,
    *,
    backend: str,
    spec: SystemSpec,
    shrink: bool = False,
    repro_dir: Path | None = None,
) -> dict[str, Any]:
    """Run the suite until `min_actions` actions; returns the statistics. Raises on a violation, after
    writing the reproducer (to `repro_dir`, or $MARGINSIM_REPRO_DIR, or out/invariant-repro/)."""
    prepare(h)
    seed = int(os.environ.get("MARGINSIM_HYPOTHESIS_SEED") or int.from_bytes(os.urandom(8), "big"))
    print(f"\ninvariant run ({backend}): seed {seed} (replay: MARGINSIM_HYPOTHESIS_SEED={seed})")
    start, rounds = time.monotonic(), 0
    try:
        while actions() < min_actions:
            hypothesis_seed(seed + rounds)(FullMachine)
            run_state_machine_as_test(FullMachine, settings=round_settings(shrink))
            rounds += 1
    except BaseException as e:
        steps = _steps(e)
        violations = str(e).count("\n") + 1 if isinstance(e, AssertionError) else 0
        print(f"actions={actions()} violations={violations}")
        if steps:
            where = repro_dir or Path(os.environ.get("MARGINSIM_REPRO_DIR", "out/invariant-repro"))
            repro = write_reproducer(
                where / f"repro-{seed}.json", seed, backend, spec, steps, str(e)
            )
            e.add_note(f"reproducer: {repro} (replay: python tests/invariants/replay.py {repro})")
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
    print(f"actions={actions()} violations=0")
    missing = [p for p in COVERED if not any(k.startswith(p) for k in STATS)]
    assert not missing, f"the run never exercised {missing}: {dict(STATS)}"
    return dict(STATS)


def _call(machine: FullMachine, step: str) -> None:
    """Call `name(k=v, ...)` on the machine (arguments are Python literals)."""
    node = ast.parse(step, mode="eval").body
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name), step
    kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
    args = [ast.literal_eval(a) for a in node.args]
    getattr(machine, node.func.id)(*args, **kwargs)


def replay(h: Harness, steps: list[str]) -> list[str]:
    """Run `steps` on a fresh machine, checking the properties after each; returns the violations
    (empty when the sequence no longer breaks anything)."""
    prepare(h)
    machine = FullMachine()
    errors: list[str] = []
    try:
        for step in steps:
            if step.startswith(("teardown", "properties")):
                continue  # checked after every step anyway
            _call(machine, step)
            try:
                machine.properties()
            except AssertionError as e:
                errors.append(f"after {step}: {e}")
                break
        if not errors and machine.violations:
            errors += machine.violations
    finally:
        h.revert(BaseMachine.snapshot)
    return errors


def spec_from_dict(d: dict[str, Any]) -> SystemSpec:
    """The SystemSpec a reproducer recorded (local deployments only: no existing tokens or feeds)."""
    fields = dict(d)
    fields["tokens"] = tuple(TokenSpec(**t) for t in d["tokens"])
    fields["markets"] = tuple(MarketSpec(**m) for m in d["markets"])
    fields["existing_tokens"] = fields["existing_feeds"] = None
    return SystemSpec(**fields)


def replay_file(spec: dict[str, Any], steps: list[str], backend: str) -> list[str]:
    """Deploy `spec` on a fresh chain of `backend` and replay `steps` there."""
    artifacts = compile_contracts()
    if backend == "revm":
        t = revm_transport(10)
        d = deploy_system(t.w3, artifacts, t.w3.eth.accounts[0], spec_from_dict(spec))
        return replay(harness(d, t.rpc, t.w3.eth.accounts), steps)
    with AnvilNode() as node:
        t = http_transport(node.rpc_url)
        d = deploy_system(t.w3, artifacts, t.w3.eth.accounts[0], spec_from_dict(spec))
        return replay(harness(d, t.rpc, t.w3.eth.accounts), steps)
