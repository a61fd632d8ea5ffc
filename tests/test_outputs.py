"""Outputs: an --out holding an earlier run is refused without --force; summary.json says whether
report.html was written (also after a signal while it renders); a full disk ends the run with one
line and exit code 1 and never leaves a 0-byte summary.json.

The full disk is real: the run's --out is a small tmpfs mounted in a private mount namespace
(`unshare --user --map-root-user --mount`, no privileges needed where user namespaces are allowed),
so the kernel answers ENOSPC as it does on a full disk; nothing in the program is patched.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from marginsim_cli import MARGINSIM, ROOT, marginsim

from simulation.cli import main
from simulation.outputs import REPORT_RENDERING

CALM = str(ROOT / "scenarios" / "calm.yaml")


def _earlier_run(out: Path) -> str:
    out.mkdir(parents=True)
    text = '{"earlier": true}\n'
    (out / "summary.json").write_text(text)
    (out / "report.html").write_text("<html>earlier</html>")
    return text


@pytest.mark.parametrize("command,where", [("run", "."), ("compare", "."), ("compare", "cross")])
def test_out_with_an_earlier_run_is_refused(tmp_path, capfd, command, where):
    out = tmp_path / "out"
    if command == "compare" and where == ".":
        out.mkdir()
        (out / "compare.json").write_text("{}")
        earlier = None
    else:
        earlier = _earlier_run(out / where if where != "." else out)
    capfd.readouterr()
    code = main([command, CALM, "--out", str(out), "--blocks", "3"])
    err = capfd.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "--out" in err and str(out) in err and "--force" in err
    if earlier is not None:  # untouched
        assert (out / where / "summary.json").read_text() == earlier


def test_out_that_is_a_file_is_refused(tmp_path, capfd):
    out = tmp_path / "out"
    out.write_text("x")
    capfd.readouterr()
    assert main(["run", CALM, "--out", str(out), "--blocks", "3"]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "--out" in err and "directory" in err


def test_force_replaces_an_earlier_run_and_the_summary_says_the_report_is_written(tmp_path):
    out = tmp_path / "out"
    _earlier_run(out)
    r = marginsim("run", CALM, "--out", str(out), "--blocks", "3", "--no-progress", "--force")
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["blocks"] == 3 and "earlier" not in s
    assert s["report"] == "written"
    html = (out / "report.html").read_text()
    assert "earlier" not in html and html.rstrip().endswith("</html>")
    assert not list(out.glob(".*.tmp"))  # no temporary file left behind


def _wait(predicate, proc: subprocess.Popen[str], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if predicate():
            return
        time.sleep(0.005)
    raise AssertionError("timed out")


def _rendering(summary: Path) -> bool:
    try:
        return json.loads(summary.read_text()).get("report") == REPORT_RENDERING
    except (OSError, ValueError):
        return False


@pytest.mark.parametrize(
    "first,second",
    [(signal.SIGINT, signal.SIGINT), (None, signal.SIGTERM)],
    ids=["second-ctrl-c", "sigterm-after-the-run"],
)
def test_signal_while_the_report_renders(tmp_path, first, second):
    """A run stopped by Ctrl-C (or completed), then a signal while report.html renders: the summary
    says the report was not written, and there is no report.html (no half of one either)."""
    out = tmp_path / "out"
    blocks = "900" if first else "60"
    proc = subprocess.Popen(
        [*MARGINSIM, "run", "scenarios/crash.yaml", "--out", str(out), "--blocks", blocks],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if first:
            _wait(lambda: (out / "timeseries.csv").exists()
                  and (out / "timeseries.csv").read_text().count("\n") > 60, proc)  # fmt: skip
            proc.send_signal(first)
        _wait(lambda: _rendering(out / "summary.json"), proc)
        proc.send_signal(second)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    s = json.loads((out / "summary.json").read_text())
    assert s["report"].startswith("not written") and "interrupted" in s["report"], s["report"]
    assert not (out / "report.html").exists()
    assert not list(out.glob(".*.tmp"))


def _unshare() -> str:
    """util-linux's unshare, able to make a user and mount namespace (where a tmpfs can be mounted
    without root): the only way here to fill a real disk."""
    exe = shutil.which("unshare")
    assert exe, "this test needs util-linux's unshare to mount a small file system"
    probe = subprocess.run([exe, "-rm", "true"], capture_output=True)
    assert probe.returncode == 0, f"user namespaces refused: {probe.stderr.decode().strip()}"
    return exe


@pytest.mark.parametrize("size", ["4k", "16k", "64k"])
def test_full_disk(tmp_path, size):
    """--out on a tmpfs of `size`: the disk fills during the run (4k), at the summary (16k) or at
    the report (64k) with this scenario; each ends with one line and exit code 1."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    out = mnt / "out"
    cmd = " ".join([*MARGINSIM, "run", CALM, "--out", str(out), "--blocks", "30", "--no-progress"])
    seen = tmp_path / "seen"  # a copy of what the run left on the full disk
    script = (
        f"mount -t tmpfs -o size={size} tmpfs {mnt} && {cmd}; c=$?; cp -r {out} {seen}; exit $c"
    )
    r = subprocess.run(
        [_unshare(), "-rm", "sh", "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 1, r.stderr
    assert r.stderr.count("\n") == 1 and "No space left on device" in r.stderr, r.stderr
    summary = seen / "summary.json"
    if summary.exists():
        s = json.loads(summary.read_text())  # never empty, never cut short
        assert s["report"] == "written" or not (seen / "report.html").exists()
        assert s["report"] != "written"  # the disk was full: the report could not fit
    assert not list(seen.glob(".*.tmp"))


def test_atomic_write_on_a_full_disk(tmp_path):
    """write_json_atomic on a file system with no space left: it raises ENOSPC, the previous
    summary.json is intact, and no temporary file is left."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    code = (
        "import json, pathlib, sys\n"
        "from simulation.outputs import write_json_atomic\n"
        f"p = pathlib.Path('{mnt}') / 'summary.json'\n"
        "p.write_text('{\"before\": 1}')\n"
        f"open('{mnt}/filler', 'wb').write(b'x' * 8192)\n"  # the rest of the disk
        "try:\n"
        "    write_json_atomic(p, {'after': 'x' * 100_000})\n"
        "except OSError as e:\n"
        "    print(e.errno)\n"
    )
    python = MARGINSIM[0]
    script = f'mount -t tmpfs -o size=12k tmpfs {mnt} && {python} -c "$0" && ls -a {mnt}'
    script += f" && cat {mnt}/summary.json"
    r = subprocess.run(
        [_unshare(), "-rm", "sh", "-c", script, code], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "28"  # ENOSPC
    assert sorted(lines[1:-1]) == [".", "..", "filler", "summary.json"]
    assert json.loads(lines[-1]) == {"before": 1}
