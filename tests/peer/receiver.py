"""A tiny webhook receiver for peer tests: records raw deliveries, can fail or relay them.

Vendure is started once per session with ``WEBHOOK_URL`` pointing here. By default each
delivery is recorded byte-for-byte and answered 200. ``fail_next`` answers 503 that many
times (to watch the plugin retry); ``status_override`` answers one status every time;
``relay_to`` forwards the exact bytes and signature headers to a Shopkeeper server and
answers with its status, so the plugin sees Shopkeeper's verdict.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

__all__ = ["Delivery", "Receiver"]


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes
    status: int

    def header(self, name: str) -> str | None:
        """Case-insensitive: Node's fetch sends lower-case header names."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)

    @property
    def topic(self) -> str:
        return self.header("X-Shopkeeper-Topic") or ""

    @property
    def delivery_id(self) -> str:
        return self.header("X-Shopkeeper-Delivery-Id") or ""


class Receiver:
    """Thread-backed HTTP server on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.fail_next = 0
        self.status_override: int | None = None
        self.relay_to: str | None = None
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k: v for k, v in self.headers.items()}
                status = receiver._answer(headers, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _answer(self, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            failing = self.fail_next > 0
            if failing:
                self.fail_next -= 1
            relay = self.relay_to
            override = self.status_override
        if failing:
            status = 503
        elif override is not None:
            status = override
        elif relay:
            forwarded = {
                k: v
                for k, v in headers.items()
                if k.lower().startswith("x-shopkeeper-") or k.lower() == "content-type"
            }
            status = requests.post(relay, data=body, headers=forwarded, timeout=30).status_code
        else:
            status = 200
        with self._lock:
            self.deliveries.append(Delivery(headers, body, status))
        return status

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def clear(self) -> None:
        with self._lock:
            self.deliveries.clear()
            self.fail_next = 0
            self.status_override = None
            self.relay_to = None

    def snapshot(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)

    def wait_for(
        self, predicate: Callable[[list[Delivery]], bool], timeout: float = 20.0
    ) -> list[Delivery]:
        """Poll until ``predicate(deliveries)`` holds; Vendure delivers after its commit."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.snapshot()
            if predicate(seen):
                return seen
            if time.monotonic() > deadline:
                summary = [(d.topic, d.body[:80], d.status) for d in seen]
                raise AssertionError(f"timed out waiting for webhooks; got {summary}")
            time.sleep(0.1)
