"""`ape run simulate SCENARIO --out DIR`: the same run as `marginsim run`, from inside ape.

The engine starts its own anvil (it needs one unlocked account per agent and control of mining), so
this script does not connect to an ape network.
"""

from pathlib import Path

import click

from simulation.runner import load_with_overrides, run_scenario
from simulation.scenario import ScenarioError


@click.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="output directory")
@click.option("--seed", type=int, default=None)
@click.option("--blocks", type=int, default=None)
def cli(scenario: Path, out: Path, seed: int | None, blocks: int | None) -> None:
    """Run a scenario and write summary.json, timeseries.csv, events.jsonl and report.html."""
    try:
        sc = load_with_overrides(scenario, seed, blocks)
    except ScenarioError as e:
        click.echo(f"marginsim: {e}", err=True)
        raise SystemExit(2) from None
    code, _ = run_scenario(sc, out)
    raise SystemExit(code)
