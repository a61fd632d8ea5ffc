"""`marginsim` command line."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="marginsim", description="Margin vaults on a local EVM, driven by agents."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="deploy to a fresh anvil, seed positions, print their health"
    )
    demo.add_argument(
        "--eth-move", type=float, default=-0.06, help="ETH price move to apply, e.g. -0.06 for -6%%"
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        if not -0.9 <= args.eth_move <= 5:
            parser.error(f"--eth-move {args.eth_move}: must be between -0.9 and 5")
        from simulation.demo import run_demo

        return run_demo(args.eth_move)
    return 2


if __name__ == "__main__":
    sys.exit(main())
