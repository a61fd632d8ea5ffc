"""`marginsim sweep`: one base scenario run over many seeds and parameter points, on Ray.

A sweep file names the base scenario, the seeds, and the axes: a grid (every combination) and/or
random samples, over any scenario field by its dotted path (`protocol.markets.ETH-USD.maintenance`,
`traders.*.margin_mode` for every trader group; several paths joined by commas move together). Every
run is checked before anything starts, so a bad value is one line naming the sweep file and the
field, and exit code 2.

Each run is a Ray task (a local Ray by default, `--address` for a cluster) that writes its own run
directory, `DIR/runs/<key>/` (summary.json, timeseries.csv, events.jsonl; the report only for the
runs the sweep report links to), and its time series as Parquet under `DIR/timeseries/run=<key>/`.
The driver records each finished run in `DIR/runs/<key>/result.json`: a rerun skips those (keys are a
hash of the run's parameters and seed, so editing the sweep keeps what still belongs to it). A run
that fails is recorded with its error and the sweep goes on. At the end: `runs.parquet` (one row a
run), `risk.json` (simulation.risk, one entry per parameter point) and `report.html`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import random
import shutil
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulation.backends import BACKENDS
from simulation.scenario import (
    Scenario,
    ScenarioError,
    first_error,
    load_scenario,
    one_line,
    read_scenario_text,
)

MAX_RUNS = 1_000_000


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, use_attribute_docstrings=True
    )


class Uniform(_Model):
    """A number drawn uniformly from [min, max]."""

    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.max < self.min:
            raise ValueError(f"max {self.max:g} is below min {self.min:g}")
        return self


class RandomAxes(_Model):
    """`samples` parameter points, each field drawn on its own: uniform in a range, or one of a list."""

    samples: int = Field(gt=0, le=100_000)
    seed: int = Field(0, ge=0)
    fields: dict[str, Uniform | list[Any]] = Field(min_length=1)


class SweepFile(_Model):
    base: str = Field(min_length=1)
    """The base scenario, a path relative to the sweep file."""
    seeds: int | list[int] = 1
    """How many seeds (the base scenario's seed, then the next ones), or the seeds themselves."""
    blocks: int | None = Field(None, gt=0, le=1_000_000)
    """Override the base scenario's number of blocks."""
    grid: dict[str, list[Any]] = {}
    """Every combination of these values."""
    random: RandomAxes | None = None
    """Random parameter points (crossed with the grid if both are given)."""
    worst_reports: int = Field(3, ge=0, le=100)
    """Per parameter point, this many of the worst runs (by bad debt, then latent bad debt) get their
    own report.html, linked from the sweep report."""

    @model_validator(mode="after")
    def _checked(self) -> SweepFile:
        if isinstance(self.seeds, int) and not 1 <= self.seeds <= MAX_RUNS:
            raise ValueError(f"seeds: {self.seeds} is not between 1 and {MAX_RUNS}")
        if isinstance(self.seeds, list) and (
            not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0
        ):
            raise ValueError("seeds: a list must be non-empty, distinct and >= 0")
        for path, values in self.grid.items():
            if not values:
                raise ValueError(f"grid.{path}: no values")
        return self


class SweepError(ValueError):
    """A sweep file that cannot run: one line naming the file and the field (exit code 2)."""


@dataclass(frozen=True)
class RunSpec:
    key: str
    point: int
    seed: int
    params: dict[str, Any]
    scenario: dict[str, Any]
    """The run's whole scenario, validated (as a plain dict, to ship to a worker)."""

    def header(self) -> dict[str, Any]:
        """The first fields of the run's record."""
        return {"run": self.key, "point": self.point, "seed": self.seed, "params": self.params}


@dataclass(frozen=True)
class Plan:
    path: Path
    base: Scenario
    points: list[dict[str, Any]]
    runs: list[RunSpec]
    worst_reports: int


# ---------------------------------------------------------------------- the plan


def _set(doc: Any, dotted: str, value: Any, where: str) -> None:
    """Set `dotted` (keys, list indices, `*` for every item of a list) in the scenario dict `doc`."""
    *parents, last = dotted.split(".")
    nodes = [doc]
    for key in parents:
        nodes = [child for node in nodes for child in _children(node, key, dotted, where)]
    for node in nodes:
        if isinstance(node, list):
            for i in _indices(node, last, dotted, where):
                node[i] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise SweepError(f"{where}: {dotted}: {last!r} is inside a {type(node).__name__}")


def _indices(node: list[Any], key: str, dotted: str, where: str) -> list[int]:
    if key == "*":
        return list(range(len(node)))
    if not key.isdigit() or int(key) >= len(node):
        raise SweepError(f"{where}: {dotted}: {key!r} is not an index of a list of {len(node)}")
    return [int(key)]


def _children(node: Any, key: str, dotted: str, where: str) -> Iterator[Any]:
    if isinstance(node, list):
        for i in _indices(node, key, dotted, where):
            yield node[i]
    elif isinstance(node, dict):
        yield node.setdefault(key, {})
    else:
        raise SweepError(f"{where}: {dotted}: {key!r} is inside a {type(node).__name__}")


def _points(sf: SweepFile) -> list[dict[str, Any]]:
    grid = [
        dict(zip(sf.grid, combo, strict=True)) for combo in itertools.product(*sf.grid.values())
    ]
    if sf.random is None:
        return grid
    rng = random.Random(sf.random.seed)
    samples = []
    for _ in range(sf.random.samples):
        point = {}
        for path, spec in sf.random.fields.items():
            if isinstance(spec, Uniform):
                point[path] = rng.uniform(spec.min, spec.max)
            elif spec:
                point[path] = spec[rng.randrange(len(spec))]
            else:
                raise SweepError(f"random.fields.{path}: no values")
        samples.append(point)
    return [{**g, **s} for g in grid for s in samples]


def run_key(params: Mapping[str, Any], seed: int) -> str:
    """A run's identity: its parameters and seed (not its place in the sweep)."""
    text = json.dumps({"params": params, "seed": seed}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _read(path: Path) -> SweepFile:
    """The sweep file, read as a scenario file is (simulation.scenario.read_scenario_text: a missing,
    unreadable, binary or non-UTF-8 file is one line), then validated."""
    try:
        doc = yaml.safe_load(read_scenario_text(path))
    except ScenarioError as e:
        raise SweepError(str(e)) from None
    except yaml.YAMLError as e:
        raise SweepError(f"{path}: not valid YAML: {one_line(str(e))}") from None
    if not isinstance(doc, dict):
        raise SweepError(f"{path}: a sweep file is a mapping (base, seeds, grid, random)")
    try:
        return SweepFile.model_validate(doc)
    except ValidationError as e:
        raise SweepError(f"{path}: {first_error(e)}") from None


def plan(path: Path) -> Plan:
    """Read and check the sweep file and every run it implies (the scenario each run will run,
    validated and checked against the deployment). Raises SweepError naming the field."""
    from simulation.checks import deployment_problem

    sf = _read(path)
    base_path = (path.parent / sf.base).resolve()
    try:
        base = load_scenario(base_path)
    except ScenarioError as e:
        raise SweepError(f"{path}: base: {e}") from None
    seeds = list(range(base.seed, base.seed + sf.seeds)) if isinstance(sf.seeds, int) else sf.seeds
    points = _points(sf)
    if len(points) * len(seeds) > MAX_RUNS:
        raise SweepError(f"{path}: {len(points)} points x {len(seeds)} seeds is over {MAX_RUNS:,}")
    runs: list[RunSpec] = []
    for i, params in enumerate(points):
        doc = base.model_dump(mode="json")
        if sf.blocks is not None:
            doc["blocks"] = sf.blocks
        for axis, value in params.items():
            for dotted in axis.split(","):  # a linked axis: several fields take each value
                _set(doc, dotted.strip(), value, f"{path}")
        where = " ".join(f"{k}={v}" for k, v in params.items()) or "the base scenario"
        try:
            sc = Scenario.model_validate(doc)
        except ValidationError as e:
            raise SweepError(f"{path}: with {where}: {first_error(e)}") from None
        problem = deployment_problem(sc)
        if problem:
            raise SweepError(f"{path}: with {where}: {problem}")
        for seed in seeds:
            d = sc.model_dump(mode="json")
            d["seed"] = seed
            runs.append(RunSpec(run_key(params, seed), i, seed, params, d))
    return Plan(path, base, points, runs, sf.worst_reports)


# ---------------------------------------------------------------------- one run (a Ray task)


def execute_run(spec: RunSpec, out: Path, backend: str) -> dict[str, Any]:
    """Run one sweep run into `out/runs/<key>/` and its time series into `out/timeseries/`; return
    its record (never raises: a failure is a record with status "failed" and the error)."""
    run_dir = out / "runs" / spec.key
    record = spec.header()
    t0 = time.monotonic()
    try:
        from simulation.runner import run_scenario

        sc = Scenario.model_validate(spec.scenario)
        code, summary = run_scenario(sc, run_dir, progress=False, backend=backend, report=False)
        record["summary"] = summary
        if code != 0 or summary.get("status") != "completed":
            record["status"] = "failed"
            record["error"] = f"exit code {code}, status {summary.get('status')}"
        else:
            record["status"] = "completed"
            record["paths"] = path_measures(run_dir, out, spec.key)
    except Exception as e:  # recorded, and the sweep goes on
        record["status"] = "failed"
        record["error"] = f"{e.__class__.__name__}: {e}"
        record["traceback"] = traceback.format_exc(limit=8)
    record["wall_s"] = round(time.monotonic() - t0, 3)
    return record


PATH_COLUMNS = ("lp_share_price", "insurance_fund_usd", "latent_bad_debt_usd")


def path_measures(run_dir: Path, out: Path, key: str) -> dict[str, float]:
    """What the risk measures need from a run's time series, whose Parquet (written beside its CSV)
    is copied into the sweep's partitioned `timeseries/`."""
    import pandas as pd

    from simulation.risk import drawdown, drawdown_fraction

    part = out / "timeseries" / f"run={key}"
    part.mkdir(parents=True, exist_ok=True)
    tmp = part / "part-0.parquet.tmp"
    shutil.copyfile(run_dir / "timeseries.parquet", tmp)
    tmp.replace(part / "part-0.parquet")
    ts = pd.read_parquet(run_dir / "timeseries.parquet", columns=list(PATH_COLUMNS))
    return {
        "lp_drawdown": drawdown_fraction(ts["lp_share_price"].to_numpy()),
        "insurance_drawdown_usd": drawdown(ts["insurance_fund_usd"].to_numpy()),
        "latent_bad_debt_peak_usd": float(ts["latent_bad_debt_usd"].max()),
    }


# ---------------------------------------------------------------------- the driver


def _done(out: Path) -> dict[str, dict[str, Any]]:
    records = {}
    for f in (out / "runs").glob("*/result.json"):
        try:
            r = json.loads(f.read_text())
        except (OSError, ValueError):
            continue  # half-written by a killed driver: run again
        if r.get("status") == "completed":
            records[r["run"]] = r
    return records


def _save(out: Path, record: dict[str, Any]) -> None:
    from simulation.outputs import write_json_atomic

    d = out / "runs" / record["run"]
    d.mkdir(parents=True, exist_ok=True)
    write_json_atomic(d / "result.json", record)


def run_sweep(
    p: Plan,
    out: Path,
    workers: int,
    address: str | None,
    backend: str,
    progress: bool = True,
) -> int:
    """Run every run of the plan not done yet, on Ray; then write runs.parquet, risk.json and the
    report. Exit code 0, or 1 if any run failed (its record says why), 130 on Ctrl-C (what finished is
    kept, and a rerun goes on from there)."""
    import ray
    from tqdm import tqdm

    from simulation.risk import write_results

    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(
        json.dumps(
            {
                "sweep": str(p.path),
                "base": p.base.name,
                "backend": backend,
                "points": p.points,
                "runs": len(p.runs),
            },
            indent=2,
            default=str,
        )
    )
    done = _done(out)
    todo = [r for r in p.runs if r.key not in done]
    records: dict[str, dict[str, Any]] = {k: v for k, v in done.items()}
    code = 0
    if todo:
        os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # no GPUs: no notice
        init: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.WARNING,
        }
        if address:
            root = Path(__file__).resolve().parent
            init |= {"address": address, "runtime_env": {"py_modules": [str(root)]}}
        else:
            # "local": a Ray of its own, never the cluster named by a `ray start`'s address file
            # (/tmp/ray/ray_current_cluster, left behind when a head dies without `ray stop`) or by
            # RAY_ADDRESS; a cluster is what --address is for.
            init |= {"address": "local", "num_cpus": workers}
        ray.init(**init)
        try:
            task = ray.remote(num_cpus=1, max_retries=0)(execute_run)
            pending = {task.remote(r, out.resolve(), backend): r for r in todo}
            with tqdm(
                total=len(p.runs),
                initial=len(done),
                desc="sweep",
                unit="run",
                disable=not progress,
                file=sys.stderr,
            ) as bar:
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=1)
                    spec = pending.pop(ready[0])
                    try:
                        record = ray.get(ready[0])
                    except Exception as e:  # the worker died (out of memory, killed)
                        record = spec.header()
                        record["status"] = "failed"
                        record["error"] = f"{e.__class__.__name__}: {one_line(str(e))[:500]}"
                    _save(out, record)
                    records[spec.key] = record
                    bar.update(1)
        except KeyboardInterrupt:
            code = 130
        finally:
            ray.shutdown()
    mine = [records[r.key] for r in p.runs if r.key in records]  # this sweep's, in its order
    failed = sum(r["status"] != "completed" for r in mine)
    write_results(out, p, mine)
    print(
        f"sweep: {len(mine) - failed} runs completed, {failed} failed, "
        f"{len(p.runs) - len(mine)} not run; {out / 'risk.json'}, {out / 'report.html'}"
    )
    if code == 0 and failed:
        code = 1
    return code


def main(args: Any) -> int:
    """`marginsim sweep` from parsed arguments."""
    from simulation.runner import say

    try:
        import pyarrow  # noqa: F401
        import ray  # noqa: F401
    except ImportError as e:
        say(f"sweep needs Ray and pyarrow ({e.name} is missing): ./scripts/setup.sh installs both")
        return 2
    if args.workers < 1:
        say(f"--workers {args.workers}: must be at least 1")
        return 2
    if args.backend not in BACKENDS:
        say(f"--backend {args.backend}: one of {', '.join(BACKENDS)}")
        return 2
    try:
        p = plan(args.sweep)
    except SweepError as e:
        say(str(e))
        return 2
    return run_sweep(
        p, args.out, args.workers, args.address, args.backend, progress=not args.no_progress
    )
