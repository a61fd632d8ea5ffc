"""One run: start the chain (anvil, a fork, a given node, or revm in process), deploy, run the engine,
always write the outputs. What is checked before anything starts is in simulation.commands."""

from __future__ import annotations

import errno
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from simulation.agents.adversaries import addresses_needed
from simulation.backends import http_transport, revm_transport
from simulation.build import compile_contracts
from simulation.chain import AnvilNode, ChainError
from simulation.deploy import (
    deploy_system,
)
from simulation.engine import Engine
from simulation.external import ExternalError, Lockstep, Outside, manifest, own_account_clash
from simulation.fork import (
    ForkInputError,
    ForkTarget,
    fork_node,
    timed,
)
from simulation.fork.wiring import wire_fork
from simulation.market import price_path
from simulation.metrics import Recorder
from simulation.node import dev_accounts
from simulation.outputs import (
    signals_ignored,
    write_json_atomic,
    write_outputs,
)
from simulation.params import protocol_spec, system_spec
from simulation.redact import redact
from simulation.rpc import ChainDown
from simulation.scenario import (
    Scenario,
    one_line,
)
from simulation.summary import WALL_CLOCK_FIELDS as WALL_CLOCK_FIELDS  # re-exported
from simulation.summary import build_summary, fork_summary


def say(msg: str) -> None:
    """One line on stderr, the fork URL redacted."""
    print(f"marginsim: {one_line(redact(msg))}", file=sys.stderr)


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def own_accounts(sc: Scenario) -> int:
    """How many of the node's accounts the run's own agents take (the deployer first)."""
    n = 1 + sum(g.count for g in sc.traders) + sum(g.count for g in sc.lps) + len(sc.keepers)
    return n + len(sc.agents) + sum(addresses_needed(a) for a in sc.adversaries)


def run_scenario(
    sc: Scenario,
    out: Path,
    rpc_url: str | None = None,
    progress: bool = True,
    monitor: Callable[[int, int | None], None] | None = None,
    fork: ForkTarget | None = None,
    backend: str = "anvil",
    report: bool = True,
    outside: Outside | None = None,
) -> tuple[int, dict[str, Any]]:
    """Run one scenario into `out`. Returns (exit code, summary). `monitor(block, anvil_pid)` is called
    after every block (benchmarks sample memory with it; the pid is None on revm). With `fork`, anvil
    forks that upstream and the system is wired to its real tokens and Chainlink proxies
    (simulation.fork). `backend`: "anvil" (a real local node) or "revm" (in process). `report=False`
    leaves report.html for later (sweeps render only the reports they link to). `outside`: bots in other
    processes acting in lockstep with the blocks (simulation.external): the run gives them dev accounts
    after its own, funds them, writes `out/manifest.json` and waits for them to register."""
    t_setup = time.monotonic()
    artifacts = compile_contracts()
    n_own = n_agents = own_accounts(sc)
    n_agents += outside.dev_accounts_needed if outside else 0
    lockstep: Lockstep | None = None
    in_process = backend == "revm"
    node = None if rpc_url or fork or in_process else AnvilNode(accounts=n_agents)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    engine: Engine | None = None
    recorder: Recorder | None = None
    fork_info: dict[str, Any] | None = None
    status, code, t_run, setup_s = "completed", 0, time.monotonic(), 0.0
    try:
        spec, fork_ctx = system_spec(sc), None
        if fork is not None:
            node, up, cached = fork_node(fork, n_agents)
            _, start_s = timed(node.start, timeout_s=300)
            fork_info = {
                "chain": up.chain.name,
                "chain_id": up.chain.chain_id,
                "block": up.block,
                "block_timestamp": up.timestamp,
                "upstream_head": up.head,
                "url_from": fork.source,
                "start_s": round(start_s, 3),
                "cache": "hit" if cached else "miss",
            }
        # a fork's anvil is already up; otherwise the given node, or a fresh anvil
        if in_process:
            transport = revm_transport(n_agents)
        else:  # a fork's anvil is already up; otherwise the given node, or a fresh anvil
            transport = http_transport(
                node.rpc_url if fork else (rpc_url or node.start().rpc_url)  # type: ignore[union-attr]
            )
        w3, url = transport.w3, transport.url
        # Every block one second after the last, whatever the wall clock: deployment and set-up then
        # land at the same timestamps on every run, and the loop mines at explicit ones.
        w3.provider.make_request("anvil_setBlockTimestampInterval", [1])  # type: ignore[arg-type]
        accounts: list[str] = list(w3.eth.accounts)
        if len(accounts) < n_agents:
            raise ChainError(
                f"{url} has {len(accounts)} unlocked accounts, the scenario needs {n_agents}"
            )
        if fork is not None:
            assert fork_info is not None
            sc, spec, fork_ctx = wire_fork(
                w3, url, up, artifacts, accounts[:n_agents], sc, fork_info, protocol_spec(sc)
            )
            say(
                f"forked {up.chain.name} at block {up.block} in {fork_info['start_s']:.2f} s "
                f"(fork cache {fork_info['cache']}; URL from {fork.source})"
            )
        prices = price_path(sc.market, sc.seed, sc.blocks, sc.block_time_s)
        if fork_ctx is not None:
            for symbol in ("ETH", "BTC"):  # a replayed CSV: its moves, from the fork's prices
                prices[symbol] *= sc.market.start[symbol] / prices[symbol][0]
            q = fork_ctx.quote_symbol
            if q in fork_ctx.feeds:  # the quote's feed: held at its first answer
                first = fork_ctx.feeds[q].answer / 10 ** fork_ctx.decimals[q]
                prices[q] = np.full(sc.blocks + 1, first)
        funder = fork_ctx.fund if fork_ctx else None
        deployment = deploy_system(w3, artifacts, accounts[0], spec, rpc_url=url, fund=funder)
        recorder = Recorder(out)
        if outside is not None:
            clash = own_account_clash(outside.bots, accounts[:n_own])  # a given node's accounts
            if clash:
                raise ExternalError(clash)
            lockstep = outside.lockstep(accounts[n_own:n_agents]).start()
        engine = Engine(
            sc,
            transport.rpc,
            deployment,
            accounts[:n_own],
            prices,
            recorder,
            fork=fork_ctx,
            lockstep=lockstep,
        )
        engine.fund()
        if lockstep is not None:
            _await_outside(out, deployment, lockstep, sc, accounts[n_own:n_agents], n_agents)
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
    except ForkInputError as e:
        status, code = "bad_fork", 2
        say(str(e))
    except ExternalError as e:
        status, code = "external_absent", 1
        say(str(e))
    except KeyboardInterrupt:
        status, code = "interrupted", 130
        say(f"interrupted after block {engine.blocks_done if engine else 0}")
    except ChainDown as e:
        status, code = "chain_down", 1
        say(f"the chain stopped answering after block {engine.blocks_done if engine else 0}: {e}")
    except ChainError as e:
        status, code = "chain_error", 1
        say(str(e))
    except Exception as e:
        status, code = ("disk_full" if _disk_full(e) else "failed"), 1
        done = engine.blocks_done if engine else 0
        if isinstance(e, OSError) and _disk_full(e):
            say(f"{out}: disk full after block {done}: {e.strerror}")
        else:
            say(f"failed after block {done}: {e.__class__.__name__}: {e}")
    finally:
        with signals_ignored():  # a further Ctrl-C must not leave anvil running
            if lockstep is not None:  # the bots hear the run is over
                lockstep.stop()
            if node is not None:
                node.stop()
    wall_s = time.monotonic() - t_run
    try:
        return _finish(
            out, sc, engine, recorder, fork_info, (status, code), wall_s, setup_s, report
        )
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _await_outside(
    out: Path, d: Any, lockstep: Lockstep, sc: Scenario, spare: list[str], n_accounts: int
) -> None:
    """Write out/manifest.json for the outside bots (with the dev keys of the accounts the run gave
    them: the last of anvil's first `n_accounts`) and wait until each has registered (ExternalError naming the
    missing ones)."""
    derived = dev_accounts(n_accounts, start=n_accounts - len(spare))  # the spare ones' keys only
    keys_by_address = {a["address"].lower(): a["private_key"] for a in derived}
    keys = {
        name: keys_by_address[address.lower()]
        for name, address in lockstep.bots.items()
        if address.lower() in keys_by_address
    }
    path = out / "manifest.json"
    write_json_atomic(path, manifest(d, lockstep, keys, sc.blocks, sc.block_time_s))
    names = ", ".join(lockstep.bots)
    say(
        f"waiting for {names} to register (manifest {path}, sync {lockstep.url}, "
        f"{lockstep.register_timeout_s:g} s)"
    )
    lockstep.wait_registered()


def _disk_full(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


def _finish(
    out: Path,
    sc: Scenario,
    engine: Engine | None,
    recorder: Recorder | None,
    fork_info: dict[str, Any] | None,
    outcome: tuple[str, int],
    wall_s: float,
    setup_s: float,
    report: bool = True,
) -> tuple[int, dict[str, Any]]:
    """Write what the run measured: summary.json (atomically) and report.html, or only the
    summary when it failed in set-up. A full disk here: one line, exit code 1 (said once)."""
    status, code = outcome
    summary: dict[str, Any] = {"scenario": sc.name, "seed": sc.seed, "status": status}
    try:
        with signals_ignored():
            if recorder is not None:
                recorder.close()
        if engine is not None and engine.start is not None:
            summary = build_summary(sc, engine, wall_s, status, setup_s)
            if fork_info is not None:
                summary["fork"] = fork_summary(fork_info, engine)
            # a signal while the report rendered (130) or a full disk (1): the summary says so
            written = write_outputs(out, summary, report)
            code = code or written
            if report and summary["report"] == "written":
                print(f"report: {out / 'report.html'}")
            elif report:
                say(f"{out / 'report.html'}: {summary['report']}")
        elif recorder is not None or fork_info is not None:  # failed in set-up: say so on disk
            if fork_info is not None:
                summary["fork"] = fork_summary(fork_info, engine)
            summary["report"] = "not written: the run stopped before its first block"
            out.mkdir(parents=True, exist_ok=True)
            with signals_ignored():
                write_json_atomic(out / "summary.json", summary)
    except OSError as e:
        if status != "disk_full":  # a full disk during the run was said already
            say(f"cannot write the outputs in {out}: {e.strerror or e}")
        code = code or 1
    return code, summary
