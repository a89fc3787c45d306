"""The Vendure plugin's JS delivery code against the Python verifier (no Vendure needed).

Runs ``connectors/vendure/vendure-plugin/delivery.js`` under node: its signature must match
generic protocol v2 byte for byte, and its retries must keep the delivery id.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from connectors.base import Credentials
from connectors.errors import SignatureInvalid
from connectors.vendure import VendureConnector
from tests.peer.receiver import Receiver

PLUGIN = Path(__file__).parents[2] / "connectors" / "vendure" / "vendure-plugin"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(
    NODE is None, reason="!!! node is not installed: the Vendure plugin's JS is NOT tested !!!"
)
# The protocol's published test vector (connectors/generic/PROTOCOL.md, tests/test_generic.py).
VECTOR_SECRET = "whsec_3a9bfc1e5d7240c68e0b2f4a61d8c7e9"
VECTOR_BODY = (
    '{"id":"42","title":"Tea","price":"12.50","currency":"GBP","updated_at":"2025-11-23T00:00:00Z"}'
)
VECTOR_SIG = "v2=d67fcd3bb8babf92a8e90b961899869c442a063b65b796bf1238f5aece68ea2b"


def node(script: str, timeout: float = 30) -> str:
    done = subprocess.run(
        [str(NODE), "-e", script], cwd=PLUGIN, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_js_signature_matches_protocol_vector() -> None:
    script = (
        "const {sign}=require('./delivery');"
        f"process.stdout.write(sign({json.dumps(VECTOR_SECRET)},'1763856000','products/upsert',"
        f"'vector-1',Buffer.from({json.dumps(VECTOR_BODY)})))"
    )
    assert node(script) == VECTOR_SIG


@pytest.mark.parametrize(
    ("value", "expected"),
    [("7", 7000), ("0.5", 500), ("", None), ("soon", None)],
)
def test_js_retry_after_parsing(value: str, expected: int | None) -> None:
    script = (
        f"const {{parseRetryAfter}}=require('./delivery');"
        f"process.stdout.write(JSON.stringify(parseRetryAfter({json.dumps(value)})))"
    )
    assert json.loads(node(script)) == expected


def _deliver(receiver: Receiver, secret: str, payload: dict) -> dict:
    options = {
        "url": receiver.url,
        "secret": secret,
        "maxRetries": 3,
        "baseDelayMs": 50,
        "maxDelayMs": 200,
        "timeoutMs": 5000,
    }
    script = (
        "const {deliver}=require('./delivery');"
        f"deliver({json.dumps(options)},'product.updated',{json.dumps(payload)},"
        "{error(){},warn(){}}).then(r=>process.stdout.write(JSON.stringify(r)))"
    )
    return json.loads(node(script))


def test_js_delivery_retries_with_same_id_and_verifies_in_python() -> None:
    receiver = Receiver().start()
    try:
        receiver.fail_next = 2
        result = _deliver(receiver, "whsec_js", {"id": "55", "type": "product"})
        seen = receiver.snapshot()
    finally:
        receiver.stop()
    assert result["ok"] and result["attempts"] == 3
    assert [d.status for d in seen] == [503, 503, 200]
    assert {d.delivery_id for d in seen} == {result["deliveryId"]}
    shop = VendureConnector(Credentials("v.example", webhook_secret="whsec_js"))
    for d in seen:  # every attempt is freshly signed and verifies
        shop.verify_webhook(d.headers, d.body)
    event = shop.parse_webhook(seen[-1].headers, seen[-1].body)
    assert (event.topic, event.record.external_id) == ("products/upsert", "55")
    with pytest.raises(SignatureInvalid):
        VendureConnector(Credentials("v.example", webhook_secret="other")).verify_webhook(
            seen[-1].headers, seen[-1].body
        )


def test_js_delivery_gives_up_on_permanent_rejection() -> None:
    receiver = Receiver().start()
    try:
        receiver.status_override = 401
        result = _deliver(receiver, "whsec_js", {"id": "1", "type": "product"})
        attempts = len(receiver.snapshot())
    finally:
        receiver.stop()
    assert (result["ok"], result["status"], attempts) == (False, 401, 1)
