"""`marginsim` command line: run, compare, node, upstream, demo.

Bad input (a scenario that does not validate, a bad flag) gets one clear message and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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
    parser = argparse.ArgumentParser(
        prog="marginsim", description="Margin vaults on a local EVM, driven by agents."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run", help="run a scenario and write summary, time series, events and report"
    )
    run.add_argument("scenario", type=Path, help="scenario YAML file")
    run.add_argument("--out", type=Path, required=True, help="output directory")
    run.add_argument("--seed", type=int, help="override the scenario's seed")
    run.add_argument("--blocks", type=int, help="override the scenario's number of blocks")
    run.add_argument("--rpc-url", help="use this node instead of starting anvil")
    _fork_arguments(run)
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    compare = sub.add_parser(
        "compare", help="run a scenario all-isolated and all-cross, side by side"
    )
    compare.add_argument("scenario", type=Path)
    compare.add_argument("--out", type=Path, required=True)
    compare.add_argument("--seed", type=int)
    compare.add_argument("--blocks", type=int)
    compare.add_argument("--no-progress", action="store_true")
    _fork_arguments(compare)

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
    if args.command == "upstream":
        if not 1 <= args.port <= 65535:
            parser.error(f"--port {args.port}: must be between 1 and 65535")
        from simulation.chains import CHAINS_DIR
        from simulation.upstream import run_upstream

        return run_upstream(args.port, args.chain_file or CHAINS_DIR / "mainnet.yaml")
    from simulation.runner import run_command

    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
