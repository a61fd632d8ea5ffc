"""Batched JSON-RPC: one HTTP request carrying many calls. The hot loop's only way to the chain."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import requests

from simulation.redact import redact


class ChainDown(RuntimeError):
    """The node stopped answering (process died, connection refused)."""


@dataclass(frozen=True)
class RpcError:
    """An error answer to one call of a batch (a revert, a bad parameter)."""

    code: int
    message: str
    data: str | None = None


class Rpc:
    """A JSON-RPC client over one keep-alive HTTP session."""

    def __init__(self, url: str, timeout_s: float = 60.0):
        self.url = url
        self.timeout_s = timeout_s
        self._session = requests.Session()
        self._ids = itertools.count(1)
        self.round_trips = 0

    def _post(self, payload: Any) -> Any:
        self.round_trips += 1
        try:
            r = self._session.post(self.url, json=payload, timeout=self.timeout_s)
        except (requests.ConnectionError, requests.Timeout) as e:
            raise ChainDown(
                redact(f"node at {self.url} stopped answering: {e.__class__.__name__}")
            ) from e
        if r.status_code != 200:
            raise ChainDown(redact(f"node at {self.url} answered HTTP {r.status_code}"))
        return r.json()

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        """One call; raises RuntimeError on an error answer."""
        answer = self._post(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params or []}
        )
        if "error" in answer:
            raise RuntimeError(redact(f"{method} failed: {answer['error']}"))
        return answer["result"]

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Many calls in one request; each answer is its result or an RpcError, in call order."""
        if not calls:
            return []
        first = next(self._ids)
        payload = [
            {"jsonrpc": "2.0", "id": first + i, "method": m, "params": p}
            for i, (m, p) in enumerate(calls)
        ]
        for _ in range(len(calls) - 1):
            next(self._ids)
        answers = self._post(payload)
        if isinstance(answers, dict):  # the whole batch was refused
            raise RuntimeError(redact(f"batch refused: {answers.get('error')}"))
        by_id = {a["id"]: a for a in answers}
        out: list[Any] = []
        for i in range(len(calls)):
            a = by_id[first + i]
            if "error" in a:
                e = a["error"]
                out.append(
                    RpcError(
                        int(e.get("code", 0)), redact(str(e.get("message", ""))), e.get("data")
                    )
                )
            else:
                out.append(a["result"])
        return out

    def close(self) -> None:
        self._session.close()
