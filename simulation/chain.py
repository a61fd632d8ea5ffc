"""A local anvil node as a context manager: free port, fixed genesis, never left behind."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import requests

from simulation.paths import TOOLS_BIN
from simulation.redact import redact, register

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
"""The standard development mnemonic; ape's test accounts use the same one."""

GENESIS_TIMESTAMP = 1_700_000_000
"""Fixed genesis time (2023-11-14T22:13:20Z) so runs are reproducible."""


class ChainError(RuntimeError):
    """The node could not be started or stopped responding."""


def anvil_binary() -> str:
    """The native anvil: the project's own (.tools/bin) first, then PATH."""
    local = TOOLS_BIN / "anvil"
    if local.exists():
        return str(local)
    found = shutil.which("anvil")
    if found is None:
        raise ChainError(
            "anvil not found: run ./scripts/setup.sh (it links the npm @foundry-rs/anvil binary)"
        )
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM the child if this Python process dies, so anvil is never orphaned."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class AnvilNode:
    """One anvil process. Use as `with AnvilNode() as node: node.rpc_url`."""

    port: int | None = None
    chain_id: int | None = 31337
    """None keeps the chain id of the fork's upstream."""
    accounts: int = 10
    balance_eth: int = 1_000_000
    timestamp: int | None = GENESIS_TIMESTAMP
    automine: bool = True
    order: str = "fees"
    gas_limit: int = 1_000_000_000
    fork_url: str | None = None
    fork_block: int | None = None
    hardfork: str | None = None
    """None: the hardfork the contracts are compiled for (ape-config.yaml `evm_version`), on every
    node, local or fork, so that gas is the same as on the in-process backend (revm, same hardfork)."""
    extra_args: tuple[str, ...] = ()
    env: dict[str, str] | None = None
    """Extra environment for anvil (a fork run sets HOME to place anvil's fork cache)."""
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _state_dir: str | None = field(default=None, init=False, repr=False)

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [
            anvil_binary(),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--accounts",
            str(self.accounts),
            "--balance",
            str(self.balance_eth),
            "--mnemonic",
            ANVIL_MNEMONIC,
            "--order",
            self.order,
            "--gas-limit",
            str(self.gas_limit),
            "--code-size-limit",
            "49152",
        ]
        if self.chain_id is not None:
            cmd += ["--chain-id", str(self.chain_id)]
        if "--hardfork" not in self.extra_args:  # one given there wins
            if self.hardfork is None:
                from simulation.build import load_settings

                self.hardfork = load_settings().evm_version
            cmd += ["--hardfork", self.hardfork]
        if self.timestamp is not None and self.fork_url is None:
            cmd += ["--timestamp", str(self.timestamp)]
        if not self.automine:
            cmd += ["--no-mining"]
        if self.fork_url:
            cmd += ["--fork-url", self.fork_url]
            if self.fork_block is not None:
                cmd += ["--fork-block-number", str(self.fork_block)]
        if self._state_dir:  # old states anvil moves out of memory: ours, removed on stop
            cmd += ["--cache-path", self._state_dir]
        return cmd + list(self.extra_args)

    def shown_command(self) -> str:
        """The command line for messages: a fork URL is a secret (API keys) and is never shown."""
        return " ".join("<fork-url>" if a == self.fork_url else a for a in self.command())

    def start(self, timeout_s: float = 30.0) -> AnvilNode:
        if self.fork_url:
            register(self.fork_url)  # never shown, whatever anvil or a message repeats of it
        if self.port is None:
            self.port = free_port()
        # anvil otherwise leaves these under ~/.foundry/anvil/tmp when it is stopped by a signal
        self._state_dir = tempfile.mkdtemp(prefix="marginsim-anvil-")
        self._proc = subprocess.Popen(
            self.command(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env} if self.env else None,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self._tail: deque[str] = deque(maxlen=5)
        if self._proc.stdout is not None:  # keep the last lines, to say why anvil stopped
            threading.Thread(target=self._drain, args=(self._proc.stdout,), daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                time.sleep(0.1)  # let the reader catch the last lines
                said = " / ".join(self._tail)
                why = (
                    f"anvil exited at start with code {self._proc.returncode}"
                    + (f" ({said})" if said else "")
                    + ": "
                    + self.shown_command()
                )
                self.stop()
                raise ChainError(why)
            if self.is_alive():
                return self
            time.sleep(0.05)
        self.stop()
        raise ChainError(f"anvil did not answer on {self.rpc_url} within {timeout_s:.0f}s")

    def _drain(self, stream: Any) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").strip()
            if line:
                self._tail.append(redact(line))

    def is_alive(self) -> bool:
        try:
            r = requests.post(
                self.rpc_url,
                json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                timeout=1,
            )
            return r.ok
        except requests.RequestException:
            return False

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        try:
            self._stop(proc)
        finally:
            if self._state_dir:
                shutil.rmtree(self._state_dir, ignore_errors=True)
                self._state_dir = None

    def _stop(self, proc: subprocess.Popen[bytes] | None) -> None:
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def __enter__(self) -> AnvilNode:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
