"""What the admin saves is what shoppers get: exclusions, pins, consent, origins, holdout."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from plugin.extensions import db
from plugin.models import Interaction, Product
from plugin.models.types import utcnow

ANON = "anon_" + "c" * 22


def _stock(shop) -> None:
    now = utcnow()
    for k in range(10):
        db.session.add(Product(shop_id=shop.id, external_id=f"p{k}", title=f"Item {k}",
                               price=Decimal("3.00"), currency="GBP", available=True,
                               categories=["Tea" if k < 3 else "Mugs"], tags=[],
                               source_updated_at=now))
    for k in range(30):
        db.session.add(Interaction(shop_id=shop.id, shopper_id=f"c{k}", kind="purchase",
                                   product_external_id=f"p{k % 4}", quantity=1,
                                   occurred_at=now - timedelta(days=2), context={}))
    db.session.commit()


def _shown(client, shop) -> list[str]:
    r = client.get("/api/v1/recommendations", query_string={
        "key": shop.widget_key, "placement": "for_you", "n": 6},
        headers={"X-Shopkeeper-Shopper": ANON})
    assert r.status_code == 200
    return [i["product_id"] for i in r.get_json()["items"]]


def test_saved_rules_change_what_the_api_serves(admin, shop):
    client, token = admin
    _stock(shop)
    before = _shown(client, shop)
    assert "p0" in before and "p9" not in before
    r = client.post("/admin/settings", data={
        "csrf_token": token, "_section": "recommendations",
        "recommendations.holdout_share": "0", "recommendations.diversity": "0.3",
        "recommendations.sources": ["trending", "itemknn"],
        "merchandising": "exclude category Tea\npin product p9"})
    assert r.status_code == 302
    after = _shown(client, shop)
    assert after[0] == "p9"
    assert not {"p0", "p1", "p2"} & set(after)


def test_consent_switched_on_in_admin_stops_event_storage(admin, shop):
    client, token = admin
    client.post("/admin/settings", data={"csrf_token": token, "_section": "privacy",
                                         "privacy.consent_required": "on",
                                         "privacy.retention_days": "365"})
    r = client.post(f"/api/v1/events?key={shop.widget_key}",
                    json={"events": [{"type": "view", "product_id": "p1"}]},
                    headers={"X-Shopkeeper-Shopper": ANON})
    assert r.status_code == 202 and r.get_json() == {"stored": 0}


def test_allowed_origins_saved_in_admin_drive_cors(admin, shop):
    client, token = admin
    client.post("/admin/settings", data={"csrf_token": token, "_section": "origins",
                                         "origins.allowed_origins": "https://shop.example"})
    ok = client.get(f"/api/v1/config?key={shop.widget_key}",
                    headers={"Origin": "https://shop.example"})
    assert ok.headers.get("Access-Control-Allow-Origin") == "https://shop.example"
    foreign = client.get(f"/api/v1/config?key={shop.widget_key}",
                         headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
