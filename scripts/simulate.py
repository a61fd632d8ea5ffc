"""`ape run simulate SCENARIO --out DIR`: the same run as `marginsim run`, from inside ape.

The engine starts its own anvil (it needs one unlocked account per agent and control of mining), so
this script does not connect to an ape network. `--fork-url URL` / `--fork` run it on a fork, as
`marginsim run` does.
"""

from pathlib import Path

import click

from simulation.commands import Request, execute


@click.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="output directory")
@click.option("--seed", type=int, default=None)
@click.option("--blocks", type=int, default=None)
@click.option("--fork-url", default=None, help="fork this chain (never printed)")
@click.option("--fork", "from_env", is_flag=True, help="fork the chain at $MARGINSIM_FORK_URL")
@click.option("--fork-block", type=int, default=None, help="block to fork at (default: head)")
@click.option("--force", is_flag=True, help="replace an earlier run in --out (refused otherwise)")
def cli(
    scenario: Path,
    out: Path,
    seed: int | None,
    blocks: int | None,
    fork_url: str | None,
    from_env: bool,
    fork_block: int | None,
    force: bool,
) -> None:
    """Run a scenario and write summary.json, timeseries.csv, events.jsonl and report.html."""
    request = Request(
        scenario,
        out,
        seed=seed,
        blocks=blocks,
        force=force,
        fork_url=fork_url,
        fork_block=fork_block,
        fork_from_env=from_env,
        progress=True,
    )
    raise SystemExit(execute(request))
