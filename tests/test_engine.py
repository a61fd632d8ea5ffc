"""The engine through its real command line: determinism, bad input, interruption, a dying chain."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from marginsim_cli import MARGINSIM, ROOT, marginsim

from simulation.runner import WALL_CLOCK_FIELDS


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def comparable(s: dict) -> dict:
    return {k: v for k, v in s.items() if k not in WALL_CLOCK_FIELDS}


def test_same_seed_gives_identical_summary(tmp_path):
    outs = [tmp_path / n for n in ("a", "b", "c")]
    for out, seed in zip(outs, ("3", "3", "4"), strict=True):
        r = marginsim(
            "run",
            "scenarios/crash.yaml",
            "--out",
            str(out),
            "--blocks",
            "150",
            "--seed",
            seed,
            "--no-progress",
        )
        assert r.returncode == 0, r.stderr
    a, b, c = (summary(o) for o in outs)
    assert comparable(a) == comparable(b)
    assert (outs[0] / "timeseries.csv").read_text() == (outs[1] / "timeseries.csv").read_text()
    assert comparable(a) != comparable(c)  # the seed does drive the run
    assert a["tx_sent"] > 100 and a["blocks"] == 150
    # outputs load in one line each: the Parquet is the CSV's table; events.jsonl holds no integer
    # beyond 64 bits unquoted (wads, uint256 amounts are decimal strings)
    csv = pd.read_csv(outs[0] / "timeseries.csv")
    pd.testing.assert_frame_equal(pd.read_parquet(outs[0] / "timeseries.parquet"), csv)
    events = pd.read_json(outs[0] / "events.jsonl", lines=True)
    assert len(events) == len((outs[0] / "events.jsonl").read_text().splitlines()) > 0
    raw = [json.loads(line) for line in (outs[0] / "events.jsonl").read_text().splitlines()]
    values = [v for e in raw for v in e.values()]
    assert all(-(2**63) <= v < 2**63 for v in values if isinstance(v, int))
    big = [v for e in raw for k, v in e.items() if k == "priceWad"]
    assert big and all(isinstance(v, str) and int(v) > 2**63 for v in big)  # $ thousands in wad


BAD_SCENARIOS = [
    ("blocks: -5", "blocks"),
    ("blocks: 10\nunknown_field: 1", "unknown_field"),
    ("blocks: 10\nkeepers: [{name: a}, {name: a}]", "keepers"),
    ("blocks: 10\noracle: {deviation: 2}", "oracle.deviation"),
    (
        "blocks: 10\ntraders: [{name: t, count: 1, leverage: {min: 5, max: 2}}]",
        "traders.0.leverage",
    ),
]


@pytest.mark.parametrize("patch,field", BAD_SCENARIOS)
def test_bad_scenario_is_refused_with_exit_2(tmp_path, patch, field):
    path = tmp_path / "bad.yaml"
    path.write_text(
        _merge((ROOT / "scenarios" / "calm.yaml").read_text(), patch)
    )  # a valid file, then the patch
    r = marginsim("run", str(path), "--out", str(tmp_path / "out"), "--no-progress", timeout=60)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1, f"one message expected, got: {r.stderr}"
    assert field in r.stderr and str(path) in r.stderr
    assert not (tmp_path / "out").exists()  # nothing started


def _merge(base: str, patch: str) -> str:
    import yaml

    doc = yaml.safe_load(base)
    doc.update(yaml.safe_load(patch))
    return yaml.safe_dump(doc)


def test_missing_file_and_bad_override_exit_2(tmp_path):
    r = marginsim("run", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o"), timeout=60)
    assert r.returncode == 2 and "no such scenario file" in r.stderr
    r = marginsim(
        "run", "scenarios/calm.yaml", "--out", str(tmp_path / "o"), "--blocks", "0", timeout=60
    )
    assert r.returncode == 2 and "blocks" in r.stderr


def _start(tmp_path: Path, blocks: str = "900") -> tuple[subprocess.Popen[str], Path]:
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            *MARGINSIM,
            "run",
            "scenarios/crash.yaml",
            "--out",
            str(out),
            "--blocks",
            blocks,
            "--no-progress",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, out


def _anvil_child(pid: int, timeout_s: float = 60) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = subprocess.run(["pgrep", "-P", str(pid), "anvil"], capture_output=True, text=True)
        if r.stdout.strip():
            return int(r.stdout.split()[0])
        time.sleep(0.1)
    raise AssertionError("the run started no anvil")


def _wait_rows(out: Path, rows: int, proc: subprocess.Popen[str], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    csv = out / "timeseries.csv"
    while time.monotonic() < deadline and proc.poll() is None:
        if csv.exists() and csv.read_text().count("\n") > rows:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {rows} rows appeared")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie is gone too: it no longer runs
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_ctrl_c_keeps_everything_measured_and_leaves_no_anvil(tmp_path):
    proc, out = _start(tmp_path)
    try:
        anvil = _anvil_child(proc.pid)
        _wait_rows(out, 100, proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "interrupted after block" in err
        s = summary(out)
        assert s["status"] == "interrupted" and 100 <= s["blocks"] < 900
        rows = (out / "timeseries.csv").read_text().strip().splitlines()
        assert len(rows) - 1 == s["blocks"]  # every mined block is in the time series
        assert (out / "report.html").exists() and (out / "events.jsonl").stat().st_size > 0
        assert _gone(anvil)
    finally:
        proc.kill()


def test_dead_chain_ends_the_run_with_its_data(tmp_path):
    proc, out = _start(tmp_path)
    try:
        anvil = _anvil_child(proc.pid)
        _wait_rows(out, 50, proc)
        os.kill(anvil, signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err
        assert "the chain stopped answering" in err
        s = summary(out)
        assert s["status"] == "chain_down" and s["blocks"] >= 50
        assert len((out / "timeseries.csv").read_text().strip().splitlines()) - 1 == s["blocks"]
    finally:
        proc.kill()


def test_ape_run_simulate_runs_the_same_engine(tmp_path):
    ape = Path(sys.executable).parent / "ape"
    r = subprocess.run(
        [
            str(ape),
            "run",
            "simulate",
            "scenarios/calm.yaml",
            "--out",
            str(tmp_path),
            "--blocks",
            "20",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    s = summary(tmp_path)
    assert s["scenario"] == "calm" and s["blocks"] == 20 and s["status"] == "completed"
    bad = subprocess.run(
        [str(ape), "run", "simulate", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "x")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "no such scenario file" in bad.stderr


def test_run_against_a_given_rpc_url(tmp_path):
    from simulation.chain import AnvilNode

    with AnvilNode(accounts=40) as node:
        r = marginsim(
            "run",
            "scenarios/calm.yaml",
            "--out",
            str(tmp_path),
            "--blocks",
            "15",
            "--rpc-url",
            node.rpc_url,
            "--no-progress",
        )
        assert r.returncode == 0, r.stderr
        assert node.is_alive()  # the run used it and left it running: it is not the run's to stop
    s = summary(tmp_path)
    assert s["blocks"] == 15 and s["status"] == "completed"
    with AnvilNode(accounts=3) as small:  # too few unlocked accounts for the scenario's agents
        r = marginsim(
            "run",
            "scenarios/calm.yaml",
            "--out",
            str(tmp_path / "small"),
            "--blocks",
            "5",
            "--rpc-url",
            small.rpc_url,
            "--no-progress",
        )
    assert r.returncode == 1 and "unlocked accounts" in r.stderr


def test_every_event_names_its_transaction_and_log_on_chain(tmp_path):
    """events.jsonl gives each event's transaction hash and log index: on the chain the run used, that
    receipt holds, at that index, a log whose topic0 is the named event's signature; a Reverted
    event's transaction reverted."""
    from eth_utils import event_abi_to_log_topic
    from web3 import Web3

    from simulation.build import compile_contracts
    from simulation.chain import AnvilNode
    from simulation.runner import run_scenario
    from simulation.scenario import load_scenario

    sc = load_scenario(ROOT / "scenarios" / "crash.yaml").model_copy(update={"blocks": 120})
    topics = {
        e["name"]: "0x" + event_abi_to_log_topic(e).hex()
        for a in compile_contracts().values()
        for e in a.abi
        if e["type"] == "event"
    }
    with AnvilNode(accounts=60) as node:
        code, _ = run_scenario(sc, tmp_path / "run", rpc_url=node.rpc_url, progress=False)
        assert code == 0
        lines = (tmp_path / "run" / "events.jsonl").read_text().splitlines()
        events = [json.loads(line) for line in lines]
        on_chain = [e for e in events if "txHash" in e and e["event"] != "Reverted"]
        assert len(on_chain) > 100
        assert {"IsolatedOpened", "Transfer", "IsolatedLiquidated"} <= {
            e["event"] for e in on_chain
        }
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        receipts: dict[str, dict] = {}
        for e in on_chain:
            r = receipts.setdefault(e["txHash"], dict(w3.eth.get_transaction_receipt(e["txHash"])))
            (log,) = [g for g in r["logs"] if g["logIndex"] == e["logIndex"]]
            assert "0x" + log["topics"][0].hex().removeprefix("0x") == topics[e["event"]], e
        reverted = [e for e in events if e["event"] == "Reverted"]
        assert reverted and all(
            w3.eth.get_transaction_receipt(e["txHash"])["status"] == 0 for e in reverted
        )
