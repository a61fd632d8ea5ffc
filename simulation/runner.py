"""`marginsim run` and `marginsim compare`: validate, start the chain, run, always write the outputs."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm
from web3 import Web3

from simulation.build import compile_contracts
from simulation.chain import AnvilNode, ChainError
from simulation.deploy import DEFAULT_TOKENS, SystemSpec, deploy_system
from simulation.engine import Engine
from simulation.market import price_path
from simulation.metrics import Recorder
from simulation.rpc import ChainDown, Rpc
from simulation.scenario import Scenario, ScenarioError, load_scenario

WALL_CLOCK_FIELDS = ("wall_s", "tx_per_s", "setup_s")
"""Summary fields that depend on the machine, not on the scenario and seed."""


def _say(msg: str) -> None:
    print(f"marginsim: {msg}", file=sys.stderr)


def load_with_overrides(path: Path, seed: int | None, blocks: int | None) -> Scenario:
    sc = load_scenario(path)
    update: dict[str, Any] = {}
    if seed is not None:
        update["seed"] = seed
    if blocks is not None:
        update["blocks"] = blocks
    if not update:
        return sc
    try:
        return Scenario.model_validate({**sc.model_dump(), **update})
    except Exception as e:  # a bad --seed or --blocks: same contract as a bad file
        raise ScenarioError(f"{path}: override {update}: {e}") from None


def run_command(args: argparse.Namespace) -> int:
    try:
        sc = load_with_overrides(args.scenario, args.seed, args.blocks)
    except ScenarioError as e:
        _say(str(e))
        return 2
    if args.command == "compare":
        from simulation.compare import run_compare

        return run_compare(sc, args.out, progress=not args.no_progress)
    code, _ = run_scenario(sc, args.out, rpc_url=args.rpc_url, progress=not args.no_progress)
    return code


def _system_spec(sc: Scenario) -> SystemSpec:
    start = {"WETH": sc.market.start["ETH"], "WBTC": sc.market.start["BTC"]}
    tokens = tuple(
        replace(t, price_usd=start[t.symbol]) if t.symbol in start else t for t in DEFAULT_TOKENS
    )
    return SystemSpec(
        tokens=tokens,
        lp_liquidity_usd=sc.protocol.lp_liquidity_usd,
        insurance_usd=sc.protocol.insurance_usd,
    )


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_scenario(
    sc: Scenario,
    out: Path,
    rpc_url: str | None = None,
    progress: bool = True,
    monitor: Callable[[int, int | None], None] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Run one scenario into `out`. Returns (exit code, summary). `monitor(block, anvil_pid)` is called
    after every block (benchmarks sample memory with it)."""
    t_setup = time.monotonic()
    prices = price_path(sc.market, sc.seed, sc.blocks, sc.block_time_s)
    artifacts = compile_contracts()
    n_agents = 1 + sum(g.count for g in sc.traders) + sum(g.count for g in sc.lps) + len(sc.keepers)
    node = None if rpc_url else AnvilNode(accounts=n_agents)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    engine: Engine | None = None
    recorder: Recorder | None = None
    status, code, t_run, setup_s = "completed", 0, time.monotonic(), 0.0
    try:
        url = rpc_url or node.start().rpc_url  # type: ignore[union-attr]
        w3 = Web3(Web3.HTTPProvider(url))
        # Every block one second after the last, whatever the wall clock: deployment and set-up then
        # land at the same timestamps on every run, and the loop mines at explicit ones.
        w3.provider.make_request("anvil_setBlockTimestampInterval", [1])  # type: ignore[arg-type]
        accounts = list(w3.eth.accounts)
        if len(accounts) < n_agents:
            raise ChainError(
                f"{url} has {len(accounts)} unlocked accounts, the scenario needs {n_agents}"
            )
        deployment = deploy_system(w3, artifacts, accounts[0], _system_spec(sc), rpc_url=url)
        recorder = Recorder(out, [k.name for k in sc.keepers])
        engine = Engine(sc, Rpc(url), deployment, accounts, prices, recorder)
        engine.fund()
        setup_s = time.monotonic() - t_setup
        t_run = time.monotonic()
        with tqdm(
            total=sc.blocks, desc=sc.name, unit="block", disable=not progress, file=sys.stderr
        ) as bar:
            pid = node.pid if node else None

            def on_block(block: int) -> None:
                bar.update(1)
                if monitor:
                    monitor(block, pid)

            engine.run(sc.blocks, on_block=on_block)
    except KeyboardInterrupt:
        status, code = "interrupted", 130
        _say(f"interrupted after block {engine.blocks_done if engine else 0}")
    except ChainDown as e:
        status, code = "chain_down", 1
        _say(f"the chain stopped answering after block {engine.blocks_done if engine else 0}: {e}")
    except ChainError as e:
        status, code = "chain_error", 1
        _say(str(e))
    except Exception as e:
        status, code = "failed", 1
        _say(
            f"failed after block {engine.blocks_done if engine else 0}: {e.__class__.__name__}: {e}"
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
        if node is not None:
            node.stop()
    wall_s = time.monotonic() - t_run
    summary: dict[str, Any] = {"scenario": sc.name, "seed": sc.seed, "status": status}
    if recorder is not None:
        recorder.close()
    if engine is not None and engine.start is not None:
        summary = build_summary(sc, engine, wall_s, status, setup_s)
        write_outputs(out, summary)
        print(f"report: {out / 'report.html'}")
    elif recorder is not None:  # failed during set-up: still say so on disk
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return code, summary


def build_summary(
    sc: Scenario, e: Engine, wall_s: float, status: str, setup_s: float
) -> dict[str, Any]:
    c, start, end = e.counters, e.start, e.last
    assert start is not None and end is not None
    from simulation.metrics import share_price

    return {
        "scenario": sc.name,
        "seed": sc.seed,
        "status": status,
        "blocks": e.blocks_done,
        "blocks_planned": sc.blocks,
        "setup_s": round(setup_s, 3),
        "wall_s": round(wall_s, 3),
        "tx_sent": c.tx_sent,
        "tx_reverted": c.tx_reverted,
        "tx_rejected": c.tx_rejected,
        "tx_per_s": round(c.tx_sent / wall_s, 1) if wall_s > 0 else 0.0,
        "reverts_by_kind": dict(sorted(c.reverts_by_kind.items())),
        "oracle_rounds": c.oracle_rounds,
        "liquidations": {
            "count": c.liquidations,
            "isolated": c.liquidations_isolated,
            "cross": c.liquidations_cross,
            "notional_usd": round(c.liquidated_notional_usd, 2),
        },
        "profitable_positions_liquidated": c.profitable_positions_liquidated,
        "collateral_lost_usd": round(c.collateral_lost_usd, 2),
        "bad_debt_usd": round(c.bad_debt_usd, 6),
        "bad_debt_covered": {
            "insurance_usd": round(c.bad_debt_from_insurance_usd, 6),
            "lp_pool_usd": round(c.bad_debt_from_pool_usd, 6),
        },
        "insurance_fund_usd": {
            "start": start.insurance_balance / 1e6,
            "end": end.insurance_balance / 1e6,
        },
        "lp_share_price": {
            "start": round(share_price(start), 8),
            "end": round(share_price(end), 8),
        },
        "collateral_needed_usd": {
            "isolated_margining": round(c.peak_capital_isolated_usd, 2),
            "cross_margining": round(c.peak_capital_netted_usd, 2),
        },
        "keepers": {
            name: {**asdict(k), "rewards_usd": round(k.rewards_usd, 6)}
            for name, k in c.keepers.items()
        },
        "invariants": {"blocks_checked": c.invariant_blocks, "violations": c.invariant_violations},
        "rpc_round_trips": e.rpc.round_trips,
        "rpc_round_trips_per_block": round(e.rpc.round_trips / e.blocks_done, 3)
        if e.blocks_done
        else 0.0,
    }


def write_outputs(out: Path, summary: dict[str, Any]) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    series = out / "timeseries.csv"
    if series.stat().st_size == 0:
        return
    from simulation.report import write_report

    write_report(out, summary, pd.read_csv(series))
