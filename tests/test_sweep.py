"""`marginsim sweep` on a real local Ray: what it writes, resuming, a failed run, bad sweep files, and a
machine without Ray. Runs in process (revm); each sweep here is a few short crash runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from simulation.cli import main

ROOT = Path(__file__).resolve().parent.parent
CRASH = ROOT / "scenarios" / "crash.yaml"
AXIS = "protocol.markets.ETH-USD.maintenance, protocol.markets.BTC-USD.maintenance"


def _sweep(tmp_path: Path, name: str = "sweep.yaml", **fields) -> Path:
    doc = {"base": str(CRASH), "seeds": 2, "blocks": 80, "grid": {AXIS: [0.03, 0.04]}}
    doc.update(fields)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return path


def _run(sweep: Path, out: Path) -> int:
    return main(["sweep", str(sweep), "--out", str(out), "--workers", "2", "--no-progress"])


def _results(out: Path) -> dict[str, float]:
    """Each run's result.json modification time, by run key."""
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*/result.json")}


def test_a_sweep_writes_its_parquet_risk_and_report_and_resumes(tmp_path):
    sweep, out = _sweep(tmp_path), tmp_path / "out"
    assert _run(sweep, out) == 0
    runs = pd.read_parquet(out / "runs.parquet")
    assert len(runs) == 4 and set(runs["status"]) == {"completed"}
    assert sorted(runs[f"param.{AXIS}"].unique()) == [0.03, 0.04]
    assert sorted(runs["seed"].unique()) == [7, 8]  # the base scenario's seed, then the next
    assert {"bad_debt_usd", "liquidations.notional_usd", "keepers.fast.rewards_usd"} <= set(runs)
    series = pd.read_parquet(out / "timeseries")
    assert len(series) == 4 * 80 and set(series["run"]) == set(runs["run"])
    # the Parquet holds what the run's own CSV holds
    one = runs["run"].iloc[0]
    csv = pd.read_csv(out / "runs" / one / "timeseries.csv")
    pq = series[series["run"] == one].drop(columns="run").reset_index(drop=True)
    pd.testing.assert_frame_equal(csv, pq[csv.columns], check_dtype=False)
    risk = json.loads((out / "risk.json").read_text())
    assert [p["params"][AXIS] for p in risk["points"]] == [0.03, 0.04]
    for point in risk["points"]:
        assert point["paths"] == 2 and point["failed"] == 0
        assert set(point["measures"]) == {
            "bad_debt_usd",
            "latent_bad_debt_usd",
            "liquidated_notional_usd",
            "lp_drawdown",
            "insurance_drawdown_usd",
        }
        notional = runs[runs["point"] == point["point"]]["liquidations.notional_usd"]
        assert point["measures"]["liquidated_notional_usd"]["mean"] == pytest.approx(
            notional.mean()
        )
        assert 0 <= point["p_insolvency"] <= 1
        assert {k["keeper"] for k in point["keepers"]} == {"fast", "medium", "slow"}
        mine = runs[runs["point"] == point["point"]]
        for k in point["keepers"]:  # the report cards add up over the point's paths
            name = k["keeper"]
            assert k["missed"] == mine[f"keepers.{name}.missed"].sum()
            assert k["gas_usd"] == pytest.approx(mine[f"keepers.{name}.gas_usd"].sum(), abs=1e-5)
        for key in point["worst_runs"]:  # the report links them: each has its own report
            assert (out / "runs" / key / "report.html").is_file()
    report = (out / "report.html").read_text()
    assert "Risk by parameter point" in report and "runs/" in report
    assert "missed episodes" in report and "latent bad debt left" in report

    # a rerun skips every run done
    before = _results(out)
    assert _run(sweep, out) == 0
    assert _results(out) == before
    # a run whose record is lost (a driver killed before writing it) runs again, alone
    lost = sorted(before)[0]
    (out / "runs" / lost / "result.json").unlink()
    assert _run(sweep, out) == 0
    after = _results(out)
    assert {k for k in before if after[k] != before[k]} == {lost}
    # one more seed: only its two runs are new
    assert _run(_sweep(tmp_path, seeds=3), out) == 0
    grown = _results(out)
    assert len(grown) == 6 and all(grown[k] == after[k] for k in after)
    assert len(pd.read_parquet(out / "runs.parquet")) == 6


@pytest.fixture
def ray_tmpdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A Ray temp dir of the test's own (`RAY_TMPDIR`), removed after it: short, since Ray's socket paths
    must stay under 108 bytes, and apart from the user's `/tmp/ray`."""
    import shutil
    import tempfile

    ray_tmp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    monkeypatch.setenv("RAY_TMPDIR", str(ray_tmp))
    yield ray_tmp
    shutil.rmtree(ray_tmp, ignore_errors=True)


def test_a_stale_ray_address_file_does_not_capture_a_local_sweep(tmp_path, ray_tmpdir):
    """A `ray start` head that died without `ray stop` leaves its address in
    `$RAY_TMPDIR/ray/ray_current_cluster`; `ray.init()` without an address would connect to it (and
    refuse `num_cpus`). A local sweep starts a Ray of its own."""
    (ray_tmpdir / "ray").mkdir()
    (ray_tmpdir / "ray" / "ray_current_cluster").write_text("192.0.2.2:45541")
    out = tmp_path / "out"
    assert _run(_sweep(tmp_path, seeds=1, grid={AXIS: [0.03]}), out) == 0
    assert set(pd.read_parquet(out / "runs.parquet")["status"]) == {"completed"}


def test_a_failed_run_is_recorded_and_the_sweep_goes_on(tmp_path, capfd):
    from simulation.sweep import plan

    sweep, out = _sweep(tmp_path), tmp_path / "out"
    victim = plan(sweep).runs[1]
    # its time series cannot be written: a directory sits where the file goes
    (out / "runs" / victim.key / "timeseries.csv").mkdir(parents=True)
    assert _run(sweep, out) == 1
    runs = pd.read_parquet(out / "runs.parquet").set_index("run")
    assert runs.loc[victim.key, "status"] == "failed"
    assert "exit code 1" in runs.loc[victim.key, "error"]
    assert (runs.drop(index=victim.key)["status"] == "completed").all()
    risk = json.loads((out / "risk.json").read_text())
    assert [p["failed"] for p in risk["points"]] == [1, 0]
    assert "3 runs completed, 1 failed" in capfd.readouterr().out
    # mended, a rerun runs only the failed one
    (out / "runs" / victim.key / "timeseries.csv").rmdir()
    before = _results(out)
    assert _run(sweep, out) == 0
    after = _results(out)
    assert {k for k in before if after[k] != before[k]} == {victim.key}


BAD = [
    ("typo", {"grid": {"protocol.markets.ETH-USD.maintenace": [0.03]}}, "maintenace"),
    ("bounds", {"grid": {"protocol.markets.ETH-USD.maintenance": [0.6]}}, "maintenance: 0.6"),
    ("index", {"grid": {"traders.9.margin_mode": ["cross"]}}, "traders.9"),
    ("mode", {"grid": {"traders.*.margin_mode": ["cross", "spot"]}}, "margin_mode"),
    ("empty", {"grid": {AXIS: []}}, "no values"),
    ("seeds", {"seeds": 0}, "seeds"),
    ("key", {"sedes": 3}, "sedes"),
    ("base", {"base": "nowhere.yaml"}, "base"),
    ("range", {"random": {"samples": 3, "fields": {AXIS: {"min": 0.05, "max": 0.03}}}}, "max"),
]


@pytest.mark.parametrize("fields,names", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_sweep_file_is_one_line_and_exit_2(tmp_path, capfd, fields, names):
    sweep, out = _sweep(tmp_path, **fields), tmp_path / "out"
    assert _run(sweep, out) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and str(sweep) in err and names in err, err
    assert "Traceback" not in err
    assert not out.exists()  # nothing started


def test_not_yaml(tmp_path, capfd):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("grid: [unclosed\n")
    assert _run(sweep, tmp_path / "out") == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "not valid YAML" in err


def test_without_ray_one_line_and_exit_2(tmp_path):
    """A machine without Ray: the import fails, the command says so in one line."""
    code = (
        "import sys; sys.modules['ray'] = None; from simulation.cli import main; "
        f"sys.exit(main(['sweep', {str(_sweep(tmp_path))!r}, '--out', {str(tmp_path / 'o')!r}]))"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, timeout=120
    )
    assert p.returncode == 2, p.stderr
    assert p.stderr.count("\n") == 1 and "Ray" in p.stderr and "ray" in p.stderr
    assert not (tmp_path / "o").exists()


def test_a_sweep_on_a_ray_cluster_by_its_address(tmp_path, ray_tmpdir):
    """`--address`: the same runs on a running Ray cluster (here a head node started for the test,
    `ray start --head --block`, stopped after it); the package travels as a runtime env. The head is
    stopped by signalling its own `ray start`, which takes down only the processes it started: `ray
    stop` would kill every Ray of the user on the machine (it took down a 1,000-run sweep once). The
    head keeps its files in a temp dir of its own, so that the address file it writes (which outlives
    it) is removed with it."""
    import socket
    import time

    ray_cli = str(Path(sys.executable).parent / "ray")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = [ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2", "--block"]
    start += ["--include-dashboard=false", "--disable-usage-stats"]
    log = (tmp_path / "ray-head.log").open("w")
    head = subprocess.Popen(start, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    status = [ray_cli, "status", "--address", f"127.0.0.1:{port}"]
    deadline = time.monotonic() + 120
    while subprocess.run(status, capture_output=True, timeout=60).returncode != 0:
        assert head.poll() is None, (tmp_path / "ray-head.log").read_text()
        assert time.monotonic() < deadline, "the Ray head did not come up in 120 s"
        time.sleep(1)
    try:
        out = tmp_path / "out"
        code = main(
            [
                "sweep",
                str(_sweep(tmp_path, seeds=1)),
                "--out",
                str(out),
                "--no-progress",
                "--address",
                f"127.0.0.1:{port}",
            ]
        )
        assert code == 0
        runs = pd.read_parquet(out / "runs.parquet")
        assert len(runs) == 2 and set(runs["status"]) == {"completed"}
    finally:
        head.terminate()  # its SIGTERM handler kills the processes it started, and only those
        try:
            head.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        log.close()
    assert subprocess.run(status, capture_output=True, timeout=60).returncode != 0  # nothing left
