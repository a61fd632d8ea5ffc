"""Running `marginsim` as a user does: a subprocess from the project root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARGINSIM = [sys.executable, "-m", "simulation.cli"]


def marginsim(
    *args: str, env: dict[str, str] | None = None, timeout: int = 900
) -> subprocess.CompletedProcess[str]:
    """`marginsim ARGS...`, output captured; `env` adds to (overrides) the environment."""
    return subprocess.run(
        [*MARGINSIM, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env} if env else None,
    )
