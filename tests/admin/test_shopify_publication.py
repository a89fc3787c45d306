"""The merchant picks the Shopify publication the headless storefront sells through; the
products sync then marks unavailable what is not published there.

Shopify's answers (``publications``, a ``products`` page with ``publishedOnPublication``)
are mocked at the HTTP edge, shaped as the Admin GraphQL docs describe them.
"""

from __future__ import annotations

import json

import responses
import sqlalchemy as sa

from connectors.base import Credentials
from connectors.shopify.client import API_VERSION
from plugin import shops
from plugin.extensions import db
from plugin.ingestion.sync import run_sync
from plugin.models import AuditLog, Product
from tests.admin.conftest import sign_in
from tests.connectors.test_shopify import product_node
from tests.web import test_shopify_inventory as web

DOMAIN = "pubs.myshopify.com"
GRAPHQL = f"https://{DOMAIN}/admin/api/{API_VERSION}/graphql.json"
STOREFRONT = "gid://shopify/Publication/98765"
GRANTED = "read_products,read_customers,read_orders,read_inventory,write_discounts," \
          "read_publications,write_app_proxy"
PUBLICATIONS = {"data": {"publications": {
    "pageInfo": {"hasNextPage": False, "endCursor": "p2"},
    "nodes": [{"id": "gid://shopify/Publication/1", "catalog": {"title": "Online Store"}},
              {"id": STOREFRONT, "catalog": {"title": "Shoe storefront"}}]}}}


def _shop(scope: str = GRANTED):
    shop = shops.create_shop("shopify", DOMAIN, Credentials(
        DOMAIN, access_token="shpat_x", webhook_secret="app-secret",
        extra={"scope": scope, "currency": "USD", "timezone": "UTC"}))
    db.session.commit()
    return shop


def _signed_in(app, client, shop) -> str:
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json=PUBLICATIONS)
        return sign_in(app, client, shop)


def _sync(shop_id: str) -> tuple[dict, dict[str, bool]]:
    """One products page: product 1 only on the Online Store, product 2 on both. As
    Shopify, the answer holds ``publishedOnPublication`` only when the query asks for it."""
    def answer(request):
        asked = "publishedOnPublication" in json.loads(request.body)["query"]
        nodes = [{**product_node(pid), **({"publishedOnPublication": on} if asked else {})}
                 for pid, on in (("1", False), ("2", True))]
        return 200, {}, json.dumps({"data": {"shop": {"currencyCode": "USD"}, "products": {
            "pageInfo": {"hasNextPage": False, "endCursor": "c1"}, "nodes": nodes}}})

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, GRAPHQL, callback=answer)
        assert run_sync(shop_id, "products").finished
        sent = json.loads(rsps.calls[-1].request.body)
    db.session.expire_all()
    rows = db.session.scalars(sa.select(Product).where(Product.shop_id == shop_id))
    return sent, {p.external_id: p.available for p in rows}


def _choose(client, csrf: str, publication: str):
    """Choosing one checks it against Shopify's list; choosing none asks nothing."""
    with responses.RequestsMock() as rsps:
        if publication:
            rsps.post(GRAPHQL, json=PUBLICATIONS)
        return client.post("/admin/settings/shopify-publication",
                           data={"shopify_publication": publication, "csrf_token": csrf})


def test_the_chosen_publication_decides_what_the_products_sync_marks_available(app, client):
    shop = _shop()
    sent, available = _sync(shop.id)  # nothing chosen: as before this setting
    assert "publishedOnPublication" not in sent["query"] and available == {"1": True,
                                                                           "2": True}
    csrf = _signed_in(app, client, shop)
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json=PUBLICATIONS)
        page = client.get("/admin/settings").get_data(as_text=True)
    assert f'<option value="{STOREFRONT}" >Shoe storefront</option>' in page
    assert "Choose the publication of your headless storefront" in page

    assert _choose(client, csrf, STOREFRONT).status_code == 302
    db.session.expire_all()
    shop = shops.get_shop(shop.id)
    assert shop.settings["shopify_publication"] == STOREFRONT
    assert db.session.scalar(sa.select(AuditLog.detail).where(
        AuditLog.action == "settings.shopify_publication")) == {"publication": STOREFRONT}
    sent, available = _sync(shop.id)
    assert sent["variables"]["publication"] == STOREFRONT
    assert available == {"1": False, "2": True}

    assert _choose(client, csrf, "").status_code == 302  # back to none: as before
    _, available = _sync(shop.id)
    assert available == {"1": True, "2": True}


def test_a_publication_the_shop_does_not_have_is_refused(app, client):
    shop = _shop()
    csrf = _signed_in(app, client, shop)
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json=PUBLICATIONS)
        rsps.post(GRAPHQL, json=PUBLICATIONS)  # the page shown again with the error
        r = client.post("/admin/settings/shopify-publication",
                        data={"shopify_publication": "gid://shopify/Publication/2",
                              "csrf_token": csrf})
    assert r.status_code == 422
    assert "Shopify has: Online Store, Shoe storefront" in r.get_data(as_text=True)
    db.session.expire_all()
    assert "shopify_publication" not in (shops.get_shop(shop.id).settings or {})


def test_a_shop_installed_before_the_scope_is_told_to_approve_it_and_reads_as_before(
        app, client):
    """Its token may not read publications: the page asks nothing of Shopify (an unmocked
    call would fail the test) and says how to grant the scope; its sync is unchanged."""
    shop = _shop("read_products,read_customers,read_orders,read_inventory,write_discounts")
    shop.settings = {**(shop.settings or {}), "shopify_publication": STOREFRONT}
    db.session.commit()
    sign_in(app, client, shop)
    with responses.RequestsMock():
        page = client.get("/admin/settings").get_data(as_text=True)
    assert "approve the new permission (read_publications)" in page
    sent, available = _sync(shop.id)
    assert "publishedOnPublication" not in sent["query"] and available == {"1": True,
                                                                           "2": True}


def test_a_product_unpublished_from_the_storefront_stops_being_recommended(app, client):
    """A products/update delivery (its REST body speaks of the Online Store only) is read
    back with the chosen publication by the worker: unpublished there, serving drops it."""
    app.config["API_CATALOG_CACHE_SECONDS"] = 0
    shop = shops.create_shop("shopify", web.DOMAIN, Credentials(
        web.DOMAIN, access_token="shpat_test", webhook_secret=web.SECRET,
        extra={"currency": "USD", "scope": GRANTED}))
    db.session.commit()
    web.seed(client, shop)  # nothing chosen: the body as it is, recommendable
    shop.settings = {**(shop.settings or {}), "shopify_publication": STOREFRONT}
    db.session.commit()

    def read_back(published: bool) -> dict:
        answer = web.item_answer(2)
        product = answer["data"].pop("inventoryItem")["variant"]["product"]
        answer["data"]["product"] = {**product, "publishedOnPublication": published}
        body = {**json.loads(web.fixture("products_update.json")),
                "updated_at": f"2025-04-2{3 + published}T10:00:00-04:00"}
        assert web.deliver(client, shop, "products/update", body).status_code == 200
        with responses.RequestsMock() as rsps:
            rsps.post(web.GRAPHQL, json=answer)
            assert web.process_inbox().done == 1
            return json.loads(rsps.calls[0].request.body)["variables"]

    sent = read_back(False)
    assert sent == {"id": f"gid://shopify/Product/{web.PRODUCT}", "publication": STOREFRONT}
    assert not web.recommendable(shop)
    read_back(True)
    assert web.recommendable(shop)


def test_a_chosen_publication_shopify_no_longer_has_is_pointed_out(app, client):
    shop = _shop()
    shop.settings = {**(shop.settings or {}), "shopify_publication": "gid://shopify/Publication/3"}
    db.session.commit()
    _signed_in(app, client, shop)
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json=PUBLICATIONS)
        page = client.get("/admin/settings").get_data(as_text=True)
    assert "no longer in your Shopify store" in page


def test_a_deleted_chosen_publication_is_cleared_and_the_page_says_so(app, client):
    """Shopify's publications/delete for the chosen publication (Shopify will not read a
    deleted one: every products read with it would fail) clears the choice, so the sync
    reads availability as with none chosen, and the settings page says why. Another
    publication's deletion changes nothing."""
    shop = shops.create_shop("shopify", web.DOMAIN, Credentials(
        web.DOMAIN, access_token="shpat_test", webhook_secret=web.SECRET,
        extra={"currency": "USD", "scope": GRANTED}))
    shop.settings = {**(shop.settings or {}), "shopify_publication": STOREFRONT}
    db.session.commit()
    other = {"id": 1}  # the Online Store's
    assert web.deliver(client, shop, "publications/delete", other).status_code == 200
    assert web.process_inbox().done == 1
    db.session.expire_all()
    assert shops.get_shop(shop.id).settings["shopify_publication"] == STOREFRONT

    body = json.loads(web.fixture("publications_delete.json"))
    deleted = {**body, "id": int(STOREFRONT.rsplit("/", 1)[1])}
    assert web.deliver(client, shop, "publications/delete", deleted).status_code == 200
    assert web.process_inbox().done == 1
    db.session.expire_all()
    settings = shops.get_shop(shop.id).settings
    assert "shopify_publication" not in settings
    assert settings["shopify_publication_deleted"]["id"] == STOREFRONT
    assert db.session.scalar(sa.select(AuditLog.detail).where(
        AuditLog.action == "settings.shopify_publication")) == {"publication": None,
                                                                "deleted": STOREFRONT}

    def answer(request):  # a products read naming the deleted publication fails
        if "publishedOnPublication" in json.loads(request.body)["query"]:
            return 200, {}, json.dumps({"errors": [{"message": "Publication not found"}]})
        return 200, {}, json.dumps({"data": {"shop": {"currencyCode": "USD"}, "products": {
            "pageInfo": {"hasNextPage": False, "endCursor": "c1"},
            "nodes": [product_node("1")]}}})

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, web.GRAPHQL, callback=answer)
        assert run_sync(shop.id, "products").finished
    sign_in(app, client, shop)
    with responses.RequestsMock() as rsps:
        rsps.post(web.GRAPHQL, json=PUBLICATIONS)
        page = client.get("/admin/settings").get_data(as_text=True)
    assert "was deleted in Shopify" in page
