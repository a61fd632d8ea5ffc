"""`marginsim` command line: run, compare, sweep, node, upstream, demo.

Bad input (a scenario that does not validate, a bad flag) gets one clear message and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from simulation.backends import BACKENDS


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `marginsim run: argument --blocks: ...`, exit code 2 (no
    usage block; --help has it). Subcommand parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {' '.join(message.split())}\n")


def _scenario_int(field: str) -> Callable[[str], int]:
    """An argparse type for a flag that overrides the scenario's `field`: a whole number within the
    field's own constraints (read from simulation.scenario, imported only when the flag is given)."""

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        from simulation.scenario import field_problem

        problem = field_problem(field, value)
        if problem:
            raise argparse.ArgumentTypeError(f"{value}: {problem} (the scenario's {field})")
        return value

    parse.__name__ = field  # argparse names the type in its messages
    return parse


def _scenario_arguments(p: argparse.ArgumentParser) -> None:
    """SCENARIO, --out, --force, --seed, --blocks, --no-progress (run and compare)."""
    p.add_argument("scenario", type=Path, help="scenario YAML file")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument(
        "--force", action="store_true", help="replace an earlier run in --out (refused otherwise)"
    )
    p.add_argument("--seed", type=_scenario_int("seed"), help="override the scenario's seed")
    p.add_argument(
        "--blocks", type=_scenario_int("blocks"), help="override the scenario's number of blocks"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="anvil",
        help="anvil: a real local chain (default); revm: an in-process EVM, same results, faster",
    )


def _fork_arguments(p: argparse.ArgumentParser) -> None:
    """--fork-url, --fork, --fork-block, --fork-cache (run and compare)."""
    p.add_argument(
        "--fork-url",
        metavar="URL",
        help="fork this chain (real tokens and Chainlink feeds, see chains/); never printed",
    )
    p.add_argument(
        "--fork",
        action="store_true",
        help="fork the chain at $MARGINSIM_FORK_URL (the scenario's fork.url_env if it has one)",
    )
    p.add_argument("--fork-block", type=int, metavar="N", help="block to fork at (default: head)")
    p.add_argument(
        "--fork-cache",
        type=Path,
        metavar="DIR",
        help="where fork state is cached ($MARGINSIM_FORK_CACHE, default ~/.cache/marginsim/fork)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="marginsim", description="Margin vaults on a local EVM, driven by agents."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run", help="run a scenario and write summary, time series, events and report"
    )
    _scenario_arguments(run)
    run.add_argument("--rpc-url", help="use this node instead of starting anvil")
    run.add_argument(
        "--external",
        action="append",
        metavar="NAME[=ADDRESS]",
        help="an outside bot acting in lockstep (repeatable); without ADDRESS it gets a dev account "
        "whose key is in DIR/manifest.json (docs: simulation/external.py)",
    )
    run.add_argument(
        "--external-timeout-s",
        type=float,
        default=10.0,
        help="how long each block waits for the outside bots (a later one misses it; default 10)",
    )
    run.add_argument(
        "--register-timeout-s",
        type=float,
        default=120.0,
        help="how long the run waits for the outside bots to register (default 120)",
    )
    _fork_arguments(run)

    compare = sub.add_parser(
        "compare", help="run a scenario all-isolated and all-cross, side by side"
    )
    _scenario_arguments(compare)
    _fork_arguments(compare)
    compare.add_argument(
        "--seeds",
        type=int,
        metavar="N",
        help="every mode on N seeds (the scenario's, then the next) on Ray: contagion, capital",
    )
    compare.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="with --seeds: local Ray workers"
    )
    compare.add_argument("--address", help="with --seeds: a Ray cluster's address")

    node = sub.add_parser(
        "node", help="start anvil, deploy, seed positions, write a manifest, stay up"
    )
    node.add_argument("--port", type=int, default=8545)
    node.add_argument(
        "--manifest", type=Path, required=True, help="where to write the manifest JSON"
    )

    upstream = sub.add_parser(
        "upstream",
        help="a local mainnet stand-in (chain id 1, real addresses) to fork without the internet",
    )
    upstream.add_argument("--port", type=int, default=8546)
    upstream.add_argument(
        "--chain-file",
        type=Path,
        help="chain data file (default: the project's chains/mainnet.yaml)",
    )

    sweep = sub.add_parser(
        "sweep",
        help="one scenario over many seeds and parameter points, on Ray: Parquet, risk.json, report",
    )
    sweep.add_argument("sweep", type=Path, help="sweep YAML file")
    sweep.add_argument("--out", type=Path, required=True, help="output directory (a rerun resumes)")
    sweep.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="local Ray workers (default: CPUs)"
    )
    sweep.add_argument("--address", help="a Ray cluster's address (default: a local Ray)")
    sweep.add_argument(
        "--backend", choices=BACKENDS, default="revm", help="revm (default, in process) or anvil"
    )
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")

    demo = sub.add_parser(
        "demo", help="deploy to a fresh anvil, seed positions, print their health"
    )
    demo.add_argument(
        "--eth-move", type=float, default=-0.06, help="ETH price move, e.g. -0.06 for -6%%"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        if not -0.9 <= args.eth_move <= 5:
            parser.error(f"--eth-move {args.eth_move}: must be between -0.9 and 5")
        from simulation.demo import run_demo

        return run_demo(args.eth_move)
    if args.command == "node":
        if not 1 <= args.port <= 65535:
            parser.error(f"--port {args.port}: must be between 1 and 65535")
        from simulation.node import run_node

        return run_node(args.port, args.manifest)
    if args.command == "sweep":
        from simulation.sweep import main as sweep_main

        return sweep_main(args)
    if args.command == "upstream":
        if not 1 <= args.port <= 65535:
            parser.error(f"--port {args.port}: must be between 1 and 65535")
        from simulation.chains import CHAINS_DIR
        from simulation.upstream import run_upstream

        return run_upstream(args.port, args.chain_file or CHAINS_DIR / "mainnet.yaml")
    from simulation.commands import Request, execute

    return execute(Request.from_args(args))


if __name__ == "__main__":
    sys.exit(main())
