"""Signed generic deliveries with hostile field values: refused at the edge or applied.

A delivery that passes verification and parsing is acknowledged with a 200 and stored;
if applying it then failed (a value the database cannot hold), the inbox would retry it
until it was dead. So every mutated payload must either be refused with a 4xx at the
edge, or be processed cleanly by the worker, on both databases. Hypothesis picks the
field and the value; derandomized, so the same cases run every time.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugin.extensions import db
from plugin.models import WebhookDelivery
from plugin.webhooks import inbox
from tests.factories import post_webhook

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "generic"
TOPICS = ("products/upsert", "orders/upsert", "customers/upsert")
EXAMPLES = int(os.environ.get("SHOPKEEPER_FUZZ_EXAMPLES", "120"))

#: values that broke or could break something: huge and negative numbers, NUL, surrogate-
#: free exotic text, dates with no UTC equivalent, wrong types
HOSTILE = st.one_of(
    st.sampled_from([
        "", "\x00", "a\x00b", "x" * 300, "1e12", "-1", "NaN", "Infinity", "0.00001",
        "1000000000", "1000000000.01", 10**7, 2**31, 2**63, -5, 0, 1.5, True, None, [], {},
        "0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00", "2026-02-30T00:00:00Z",
        "1970-01-01T00:00:00Z", "ünïcødé ✓", "GBP", "gbp", ["a", None], [{"x": 1}],
    ]),
    st.text(max_size=20),
    st.integers(),
)



def poison(draw, root: Any) -> None:
    """Replace one leaf of ``root``, at any depth, with a hostile value (in place)."""
    node: Any = root
    while True:
        keys = sorted(node) if isinstance(node, dict) else range(len(node))
        if not keys:
            return
        key = draw(st.sampled_from(list(keys)))
        child = node[key]
        if isinstance(child, dict | list) and child and draw(st.booleans()):
            node = child
            continue
        node[key] = copy.deepcopy(draw(HOSTILE))
        return

def _fixture(topic: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{topic.replace('/', '_')}.json").read_text())


@st.composite
def deliveries(draw) -> tuple[str, dict[str, Any]]:
    topic = draw(st.sampled_from(TOPICS))
    body = _fixture(topic)
    for _ in range(draw(st.integers(1, 3))):
        raw = body.get("lines")
        lines = [ln for ln in raw if isinstance(ln, dict) and ln] if isinstance(raw, list) else []
        if lines and draw(st.booleans()):
            line = draw(st.sampled_from(lines))
            line[draw(st.sampled_from(sorted(line)))] = copy.deepcopy(draw(HOSTILE))
        else:
            body[draw(st.sampled_from(sorted(body)))] = copy.deepcopy(draw(HOSTILE))
    return topic, body


def test_hostile_deliveries_are_refused_or_applied_never_lost(client, shop, shop_secret):
    outcomes: dict[str, int] = {"refused": 0, "applied": 0}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(deliveries())
    def check(delivery: tuple[str, dict[str, Any]]) -> None:
        topic, body = delivery
        r = post_webhook(client, shop.id, shop_secret, topic, body)
        assert r.status_code < 500, (topic, body, r.get_data(as_text=True))
        if r.status_code >= 400:
            assert r.get_json()["code"] == r.status_code
            outcomes["refused"] += 1
            return
        result = inbox.process_inbox()
        errors = db.session.scalars(sa.select(WebhookDelivery.last_error).where(
            WebhookDelivery.status != "done")).all()
        assert (result.failed, result.dead) == (0, 0), (topic, body, errors)
        outcomes["applied"] += 1

    check()
    statuses = set(db.session.scalars(sa.select(WebhookDelivery.status)))
    assert statuses <= {"done"}
    # both branches ran: the mutations are not all fatal, nor all harmless
    assert outcomes["refused"] > 10 and outcomes["applied"] > 10, outcomes
