"""HTTPS_PROXY / HTTP_PROXY in the worker's environment do not carry the nudge webhook past
its address check: requests sent it through the proxy, which resolved the merchant's host
itself (to our network, as like as not), so neither the public-address check nor the pin
to the checked addresses applied. The nudge now goes straight to the checked address."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3.util.connection

from plugin.offers.nudges import run_nudges
from tests.offers.conftest import PUBLIC_ADDRESS, configure, fake_dns
from tests.offers.test_nudges import _idle_cart


class _Proxy(BaseHTTPRequestHandler):
    """A forward proxy that records what it is asked and answers 200 to all of it."""

    seen: list[str]

    def _answer(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_CONNECT = do_POST = do_GET = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy(monkeypatch):
    """A local proxy named by every proxy variable; yields the requests it received."""
    seen: list[str] = []
    handler = type("Handler", (_Proxy,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    address = f"http://127.0.0.1:{server.server_address[1]}"
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, address)
        monkeypatch.setenv(name.lower(), address)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("hook", ["https://crm.example/hooks/shopkeeper",
                                  "http://crm.example/hooks/shopkeeper"])
def test_the_nudge_ignores_the_proxy_variables_and_goes_to_the_checked_address(
        app, shop, monkeypatch, proxy, hook):
    configure(shop, nudge_webhook_url=hook)
    _idle_cart(shop.id)
    fake_dns(monkeypatch, [PUBLIC_ADDRESS])
    connected: list[str] = []

    def create_connection(address, timeout=None, *args, **kwargs):
        connected.append(address[0])
        if address[0] != "127.0.0.1":  # the checked address: no network in tests
            raise ConnectionRefusedError("test: no network")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # the proxy, no lookup
        sock.settimeout(timeout)
        sock.connect(address)
        return sock

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    assert run_nudges(shop) == {"sent": 0, "failed": 1, "skipped": 0}
    assert proxy == [] and connected == [PUBLIC_ADDRESS]
