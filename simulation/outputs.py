"""Where a run's outputs go, and how they get there whole.

Every final output file is written to a temporary file in its own directory and renamed over the
name (`os.replace`, atomic on POSIX): a reader sees the previous file or the new one, never a
truncated one, whatever stops the process (a full disk, a signal, a kill). An `--out` directory
that holds an earlier run is refused unless the caller forces it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

RUN_FILES = (
    "summary.json",
    "manifest.json",
    "timeseries.csv",
    "events.jsonl",
    "report.html",
    "timeseries.parquet",
)
"""What `marginsim run` writes into its --out directory."""
COMPARE_FILES = ("compare.json",)
COMPARE_MODES = ("isolated", "cross", "portfolio")
"""`marginsim compare` writes compare.json and one run per mode into these subdirectories."""


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """SIGINT and SIGTERM ignored while the run's last words are written (the summary): a further
    Ctrl-C then neither cuts the write short nor escapes as a traceback. Main thread only."""
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in held}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all: a temporary file beside it (same file system),
    flushed to disk, then renamed over `path`. On any error the temporary file is removed and the
    error raised; `path` keeps its previous content (or stays absent)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # what open() would give (mkstemp makes it private)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(doc, indent=2) + "\n")


def earlier_run(out: Path, compare: bool) -> str | None:
    """What in `out` belongs to an earlier run (the first such file), or None."""
    names = [*COMPARE_FILES, *(f"{m}/{n}" for m in COMPARE_MODES for n in RUN_FILES[:1])]
    for name in names if compare else RUN_FILES[:1]:
        if (out / name).exists():
            return name
    return None


def out_problem(out: Path, compare: bool, force: bool) -> str | None:
    """Why --out cannot be used (one line naming the flag), or None. With `force` an earlier run
    is allowed (and its outputs removed by `clear_earlier_run`)."""
    if out.exists() and not out.is_dir():
        return f"--out {out}: is not a directory"
    found = earlier_run(out, compare) if out.is_dir() else None
    if found and not force:
        return f"--out {out}: holds an earlier run ({found}); pass --force to replace it"
    return None


SWEEP_FILES = ("sweep.json", "runs.parquet", "risk.json", "report.html")
SWEEP_DIRS = ("runs", "timeseries")


def clear_earlier_run(out: Path, compare: bool, sweep: bool = False) -> None:
    """Remove the outputs an earlier run left in `out` (only the files a run writes, nothing else),
    so no stale report sits beside the new summary. `sweep`: also a sweep's files and run
    directories (compare --seeds)."""
    if sweep:
        for name in SWEEP_DIRS:
            shutil.rmtree(out / name, ignore_errors=True)
        for name in SWEEP_FILES:
            with contextlib.suppress(FileNotFoundError):
                (out / name).unlink()
    dirs = [out / m for m in COMPARE_MODES] if compare else [out]
    for d in dirs:
        for name in RUN_FILES:
            with contextlib.suppress(FileNotFoundError):
                (d / name).unlink()
    if compare:
        for name in COMPARE_FILES:
            with contextlib.suppress(FileNotFoundError):
                (out / name).unlink()


REPORT_RENDERING = "not written: the process stopped while it was rendered"
"""What summary.json says while report.html renders, so a run killed meanwhile says so on disk."""


def render_report(out: Path, summary: dict[str, Any]) -> tuple[str, int]:
    """Render report.html (written to a temporary file, then renamed). Returns how it went, in the
    words summary.json records ("written" or "not written: <reason>"), and the exit code that
    outcome calls for: 0, 130 (a signal while it rendered) or 1 (it could not be written)."""
    series = out / "timeseries.csv"
    try:
        if not series.exists() or series.stat().st_size == 0:
            return "not written: no block was mined", 0
        from simulation.report import write_report

        write_report(out, summary, pd.read_csv(series))
        return "written", 0
    except KeyboardInterrupt:  # a second Ctrl-C, or SIGTERM, while it rendered
        return "not written: interrupted while it was rendered", 130
    except OSError as e:  # a full disk
        return f"not written: {e.strerror or e}", 1
    except Exception as e:
        return f"not written: {e.__class__.__name__}: {e}", 1


REPORT_DEFERRED = "not written: deferred (a sweep renders the reports it links to)"


def write_outputs(out: Path, summary: dict[str, Any], report: bool = True) -> int:
    """summary.json, then report.html, then summary.json again with the report's status in
    `summary["report"]`. Returns render_report's exit code. Raises OSError if summary.json cannot
    be written (a full disk); it then keeps its previous content, or stays absent. `report=False`:
    summary.json only, saying the report was deferred (render_report can write it later)."""
    with contextlib.suppress(FileNotFoundError):
        (out / "report.html").unlink()  # a stale one (--force) must not pass for this run's
    if not report:
        summary["report"] = REPORT_DEFERRED
        with signals_ignored():
            write_json_atomic(out / "summary.json", summary)
        return 0
    summary["report"] = REPORT_RENDERING
    with signals_ignored():
        write_json_atomic(out / "summary.json", summary)
    summary["report"], code = render_report(out, summary)
    with signals_ignored():
        write_json_atomic(out / "summary.json", summary)
    return code
