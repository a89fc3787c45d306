"""Start and stop the real Vendure peer (used by tests/peer/conftest.py and fixture capture)."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.peer.receiver import Receiver

__all__ = ["NODE", "NO_NODE", "PEER_DIR", "VendurePeer", "running_vendure"]

ROOT = Path(__file__).resolve().parents[2]
PEER_DIR = Path(__file__).resolve().parent / "vendure"
SETUP = ROOT / ".ci" / "vendure.sh"
NODE = shutil.which("node")
NO_NODE = (
    "!!! VENDURE PEER TESTS SKIPPED: `node` is not on PATH, so the real Vendure server "
    "cannot run. Install Node.js >= 20 and run .ci/vendure.sh !!!"
)


@dataclass(frozen=True)
class VendurePeer:
    base_url: str
    admin_url: str
    shop_url: str
    webhook_secret: str
    receiver: Receiver
    log_path: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prepare() -> None:
    """Install and seed on first use, so a plain ``pytest`` works on a fresh clone."""
    if not (PEER_DIR / "seed.db").exists() or not (PEER_DIR / "node_modules").exists():
        subprocess.run([str(SETUP)], check=True, timeout=600)


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Vendure exited early:\n{log_path.read_text()[-3000:]}")
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"Vendure not healthy after 90 s:\n{log_path.read_text()[-3000:]}")


@contextmanager
def running_vendure(workdir: Path) -> Iterator[VendurePeer]:
    """Copy the seed into ``workdir``, start Vendure wired to a fresh ``Receiver``, stop by pid."""
    if NODE is None:
        raise RuntimeError(NO_NODE)
    _prepare()
    shutil.copyfile(PEER_DIR / "seed.db", workdir / "vendure.db")
    receiver = Receiver().start()
    port = _free_port()
    secret = "whsec_" + secrets.token_hex(16)
    env = {
        **os.environ,
        "VENDURE_DISABLE_TELEMETRY": "true",
        "PORT": str(port),
        "VENDURE_DB": str(workdir / "vendure.db"),
        "WEBHOOK_URL": receiver.url,
        "WEBHOOK_SECRET": secret,
        "SHOPKEEPER_RETRY_BASE_MS": "200",  # fast plugin retries for the retry test
    }
    log_path = workdir / "vendure.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [NODE, "index.js"], cwd=PEER_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc, log_path)
        yield VendurePeer(base, f"{base}/admin-api", f"{base}/shop-api", secret, receiver, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        receiver.stop()
