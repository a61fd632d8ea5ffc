"""A JSON-RPC relay that counts the methods passing through it: put between a fork and its upstream,
it shows what the fork fetched (the fork tests and benchmarks/fork.py use it)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

STATE_METHODS = frozenset(
    {
        "eth_getStorageAt",
        "eth_getCode",
        "eth_getBalance",
        "eth_getTransactionCount",
        "eth_getAccount",
        "eth_getAccountInfo",
        "eth_getProof",
    }
)
"""What a fork fetches per account and slot (block headers and the chain id are asked every start)."""


class CountingRelay:
    """Relays POSTed JSON-RPC to `upstream_url` on 127.0.0.1:<free port>, counting methods.
    `suffix` is appended to the relay's URL (a fake API key, to check it never leaks)."""

    def __init__(self, upstream_url: str, suffix: str = ""):
        self.counts: Counter[str] = Counter()
        counts, target = self.counts, upstream_url

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as JSON-RPC clients expect

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                payload = json.loads(body)
                for call in payload if isinstance(payload, list) else [payload]:
                    counts[call["method"]] += 1
                r = requests.post(target, data=body, headers={"Content-Type": "application/json"})
                self.send_response(r.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # anvil opens many connections at once when it starts a fork
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{suffix}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def fetched(self) -> int:
        """Account and storage reads that went through (a warm fork cache makes this 0)."""
        return sum(n for m, n in self.counts.items() if m in STATE_METHODS)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
