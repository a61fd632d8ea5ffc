"""`marginsim run` and `marginsim compare` (and `ape run simulate`): everything checked before anything
starts, then one run (simulation.runner) or the two of a comparison (simulation.compare).

Bad input ends here with one line naming the file or flag, the field and the reason, and exit code 2."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from simulation.checks import deployment_problem
from simulation.compare import run_compare, run_compare_seeds
from simulation.external import (
    ExternalBot,
    ExternalError,
    Outside,
    own_account_clash,
    parse_external,
)
from simulation.fork import ForkInputError, ForkTarget, fork_target, probe_upstream
from simulation.outputs import clear_earlier_run, out_problem
from simulation.revm_chain import dev_addresses
from simulation.runner import own_accounts, run_scenario, say
from simulation.scenario import (
    Scenario,
    ScenarioError,
    field_problem,
    first_error,
    load_scenario,
)


@dataclass(frozen=True)
class Request:
    """What a command asks for, from the command line or from ape's `simulate` script."""

    scenario: Path
    out: Path
    seed: int | None = None
    blocks: int | None = None
    compare: bool = False
    force: bool = False
    fork_url: str | None = None
    fork_block: int | None = None
    fork_cache: Path | None = None
    fork_from_env: bool = False
    rpc_url: str | None = None
    backend: str = "anvil"
    progress: bool = True
    seeds: int | None = None
    """compare only: this many seeds, each mode on each, on Ray (simulation.compare.run_compare_seeds)."""
    workers: int = 1
    address: str | None = None
    external: tuple[str, ...] = ()
    """run only: `NAME` or `NAME=ADDRESS` of each outside bot in lockstep (simulation.external)."""
    external_timeout_s: float = 10.0
    register_timeout_s: float = 120.0

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Request:
        return cls(
            scenario=args.scenario,
            out=args.out,
            seed=args.seed,
            blocks=args.blocks,
            compare=args.command == "compare",
            force=getattr(args, "force", False),
            fork_url=getattr(args, "fork_url", None),
            fork_block=getattr(args, "fork_block", None),
            fork_cache=getattr(args, "fork_cache", None),
            fork_from_env=getattr(args, "fork", False),
            rpc_url=getattr(args, "rpc_url", None),
            backend=getattr(args, "backend", "anvil"),
            progress=not args.no_progress,
            seeds=getattr(args, "seeds", None),
            workers=getattr(args, "workers", 1),
            address=getattr(args, "address", None),
            external=tuple(getattr(args, "external", None) or ()),
            external_timeout_s=getattr(args, "external_timeout_s", 10.0),
            register_timeout_s=getattr(args, "register_timeout_s", 120.0),
        )


def load_with_overrides(path: Path, seed: int | None, blocks: int | None) -> Scenario:
    """The scenario file with --seed and --blocks applied; ScenarioError (one line naming the file
    or the flag, the field and the reason) if either is bad."""
    sc = load_scenario(path)
    update: dict[str, Any] = {}
    for flag, field, value in (("--seed", "seed", seed), ("--blocks", "blocks", blocks)):
        if value is not None:
            problem = field_problem(field, value)
            if problem:
                raise ScenarioError(f"{flag} {value}: {problem} (the scenario's {field})")
            update[field] = value
    if not update:
        return sc
    try:
        return Scenario.model_validate({**sc.model_dump(), **update})
    except ValidationError as e:  # valid on its own, not with the rest of the scenario
        flags = " ".join(f"--{k} {v}" for k, v in update.items())
        raise ScenarioError(f"{path} with {flags}: {first_error(e)}") from None


def external_bots(r: Request, sc: Scenario, fork: ForkTarget | None) -> list[ExternalBot]:
    """The --external bots, checked: their names, addresses and timeouts, and a chain they can reach
    (an anvil of the run's own or the given node; not revm, in process, nor a fork)."""
    if not r.external:
        return []
    if r.backend == "revm":
        raise ScenarioError(
            "--external: outside bots need a node to reach; --backend revm has none"
        )
    if fork is not None:
        raise ForkInputError("--external runs on a local anvil, not on a fork")
    for flag, value in (
        ("--external-timeout-s", r.external_timeout_s),
        ("--register-timeout-s", r.register_timeout_s),
    ):
        if not 0 < value <= 3600:
            raise ScenarioError(f"{flag} {value:g}: must be above 0 and at most 3600 seconds")
    taken = {k.name for k in sc.keepers} | {a.name for a in sc.agents}
    taken |= {a.name for a in sc.adversaries}
    try:
        bots = parse_external(list(r.external), taken)
    except ExternalError as e:
        raise ScenarioError(str(e)) from None
    if r.rpc_url is None:  # the run's own anvil: its own agents' accounts are known now
        clash = own_account_clash(bots, dev_addresses(own_accounts(sc)))
        if clash:
            raise ScenarioError(clash)
    return bots


def prepare(r: Request) -> tuple[Scenario, ForkTarget | None, list[ExternalBot]]:
    """Everything checked before anything starts: the scenario, the flags, the fork, the outside
    bots, --out. Raises ScenarioError or ForkInputError (exit code 2)."""
    sc = load_with_overrides(r.scenario, r.seed, r.blocks)
    fork = fork_target(r.fork_url, r.fork_block, sc.fork, r.fork_cache, from_env=r.fork_from_env)
    problem = deployment_problem(sc, fork is not None)
    if problem:
        raise ScenarioError(f"{r.scenario}: {problem}")
    if fork is not None and r.rpc_url:
        raise ForkInputError("--rpc-url and a fork exclude each other: a fork starts its own anvil")
    if r.backend == "revm" and fork is not None:
        raise ForkInputError("--backend revm: a fork runs on anvil (it reads the upstream lazily)")
    if r.backend == "revm" and r.rpc_url:
        raise ScenarioError("--backend revm and --rpc-url exclude each other: revm runs in process")
    if r.external and (r.compare or r.seeds is not None):
        raise ScenarioError("--external: only `marginsim run` takes outside bots")
    bots = external_bots(r, sc, fork)
    if r.seeds is not None:
        if not 1 <= r.seeds <= 100_000:
            raise ScenarioError(f"--seeds {r.seeds}: must be between 1 and 100000")
        if fork is not None or r.rpc_url:
            raise ForkInputError("--seeds runs every path on its own fresh chain: not on a fork")
        if r.workers < 1:
            raise ScenarioError(f"--workers {r.workers}: must be at least 1")
        if (r.out / "sweep.json").exists() and not r.force:
            return sc, fork, bots  # an earlier compare --seeds here: it resumes
    problem = out_problem(r.out, r.compare, r.force)
    if problem:
        raise ScenarioError(problem)
    return sc, fork, bots


def execute(r: Request) -> int:
    """Check, then run; the exit code."""
    try:
        sc, fork, bots = prepare(r)
    except (ScenarioError, ForkInputError) as e:
        say(str(e))
        return 2
    if r.force:
        clear_earlier_run(r.out, compare=r.compare, sweep=r.seeds is not None)
    if r.compare and r.seeds is not None:
        try:
            import ray  # noqa: F401
        except ImportError:
            say("compare --seeds runs on Ray, which is missing: ./scripts/setup.sh installs it")
            return 2
        return run_compare_seeds(
            sc, r.out, r.seeds, r.workers, r.address, r.backend, progress=r.progress
        )
    if r.compare:
        if (
            fork is not None and fork.block is None
        ):  # both runs at one block, however the head moves
            try:
                fork = replace(fork, block=probe_upstream(fork).block)
            except ForkInputError as e:
                say(str(e))
                return 2
        return run_compare(sc, r.out, progress=r.progress, fork=fork, backend=r.backend)
    lockstep = Outside(bots, r.external_timeout_s, r.register_timeout_s) if bots else None
    code, _ = run_scenario(
        sc,
        r.out,
        rpc_url=r.rpc_url,
        progress=r.progress,
        fork=fork,
        backend=r.backend,
        outside=lockstep,
    )
    return code
