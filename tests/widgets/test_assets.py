"""Widget assets and demo pages without a browser: size budget, caching, CSP, tokens."""

from __future__ import annotations

import gzip
import re
from html.parser import HTMLParser

import jwt
import pytest

from plugin import demo
from plugin.demo import CUSTOMER_COOKIE, MODULES, WIDGETS_DIR

BUDGET_BYTES = 15 * 1024  # loader + api + For-you, each gzipped as it is transferred
JS_FILES = [WIDGETS_DIR / f"{name}.js" for name in MODULES] + [WIDGETS_DIR / "demo" / "store.js"]


def test_loader_and_for_you_fit_the_gzip_budget():
    sizes = {name: len(gzip.compress((WIDGETS_DIR / f"{name}.js").read_bytes(), 9))
             for name in ("loader", "api", "for-you")}
    assert sum(sizes.values()) <= BUDGET_BYTES, sizes


@pytest.mark.parametrize("path", JS_FILES, ids=lambda p: p.name)
def test_widget_code_needs_no_unsafe_csp(path):
    """Nothing that a strict CSP blocks or that parses API data as HTML."""
    code = path.read_text()
    for banned in (r"\beval\(", r"new Function\(", r"\.innerHTML\b", r"\.outerHTML\b",
                   r"document\.write", r"insertAdjacentHTML", r"setTimeout\(\s*['\"]",
                   r"setAttribute\(\s*['\"]style", r"\.cssText\b"):
        assert not re.search(banned, code), f"{path.name} uses {banned}"


def test_version_is_a_content_hash_that_follows_the_files(tmp_path, monkeypatch):
    for name in MODULES:
        (tmp_path / f"{name}.js").write_text(f"// {name}\n")
    monkeypatch.setattr(demo, "WIDGETS_DIR", tmp_path)
    before = demo.widget_version()
    assert re.fullmatch(r"[0-9a-f]{12}", before)
    assert demo.widget_version() == before
    (tmp_path / "for-you.js").write_text("// changed, longer than before\n")
    assert demo.widget_version() != before


def test_loader_is_stamped_and_briefly_cached(client):
    response = client.get("/widgets/loader.js")
    body = response.get_data(as_text=True)
    version = demo.widget_version()
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert f'var VERSION = "{version}";' in body and demo.VERSION_PLACEHOLDER not in body
    assert response.headers["Cache-Control"] == "public, max-age=300"
    again = client.get("/widgets/loader.js", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_versioned_modules_are_immutable_and_stale_versions_are_not(client):
    version = demo.widget_version()
    fresh = client.get(f"/widgets/v/{version}/for-you.js")
    assert fresh.status_code == 200
    assert fresh.get_data() == (WIDGETS_DIR / "for-you.js").read_bytes()
    assert "immutable" in fresh.headers["Cache-Control"]
    stale = client.get("/widgets/v/000000000000/for-you.js")
    assert stale.status_code == 200 and "immutable" not in stale.headers["Cache-Control"]
    assert client.get(f"/widgets/v/{version}/loader.js").status_code == 404
    assert client.get(f"/widgets/v/{version}/nope.js").status_code == 404


class _Inline(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, handlers, style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.slots: list[dict[str, str | None]] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self._in_script = True
            if not a.get("src"):
                self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("<style> element")
        for name in a:
            if name.startswith("on") or name == "style":
                self.problems.append(f"{name}= on <{tag}>")
        if "data-shopkeeper" in a:
            self.slots.append(a)

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.problems.append("script body")


@pytest.fixture
def seeded(app, seed_template):
    app.config["DEMO_SHOP_ID"] = seed_template.shop_id
    from plugin.extensions import db
    from plugin.models import Shop

    return db.session.get(Shop, seed_template.shop_id)


def _parse(response) -> _Inline:
    parser = _Inline()
    parser.feed(response.get_data(as_text=True))
    return parser


@pytest.mark.parametrize("path", ["/demo/", "/demo/product/22086", "/demo/cart"])
def test_demo_pages_send_a_strict_csp_and_contain_nothing_inline(client, seeded, path):
    response = client.get(path)
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe" not in csp
    page = _parse(response)
    assert page.problems == []
    assert page.slots and all("data-customer-token" not in s for s in page.slots)
    if path == "/demo/":  # a friendly placeholder for shoppers without JavaScript
        assert re.search(r'data-placement="for_you"[^>]*>\s*<noscript><p class="noscript">'
                         r"Turn on JavaScript", response.get_data(as_text=True))


def test_switcher_lists_real_customers_and_pages_carry_their_token(client, seeded):
    from plugin.api.identity import verify_customer_token
    from plugin.api.service import in_holdout

    shoppers = client.get("/demo/api/shoppers").get_json()["shoppers"]
    assert len(shoppers) == demo.SHOPPERS_IN_SWITCHER
    counts = [int(re.search(r"\((\d+) orders", s["label"]).group(1)) for s in shoppers]
    assert counts == sorted(counts, reverse=True) and counts[-1] >= 2
    for s in shoppers:  # control-group customers are labelled, not passed off as broken
        assert ("holdout group" in s["label"]) == in_holdout(seeded, s["id"])
    chosen = shoppers[0]["id"]
    switched = client.post("/demo/shopper", data={"customer": chosen, "next": "/demo/cart"})
    assert switched.status_code == 303 and switched.headers["Location"].endswith("/demo/cart")
    slots = _parse(client.get("/demo/")).slots
    tokens = {s["data-customer-token"] for s in slots if s["data-shopkeeper"] == "for-you"}
    assert len(tokens) == 1
    token = tokens.pop()
    assert verify_customer_token(seeded, token) == chosen
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == demo.TOKEN_TTL_SECONDS

    client.post("/demo/shopper", data={"customer": ""})
    assert client.get_cookie(CUSTOMER_COOKIE) is None


def test_switcher_ignores_unknown_customers_and_foreign_redirects(client, seeded):
    client.set_cookie(CUSTOMER_COOKIE, "not-a-demo-customer")
    assert all("data-customer-token" not in s for s in _parse(client.get("/demo/")).slots)
    away = client.post("/demo/shopper", data={"customer": "", "next": "https://evil.example/"})
    assert away.headers["Location"].endswith("/demo/")
    assert client.post("/demo/api/token", json={"customer": "not-a-demo-customer"}) \
        .status_code == 404


def test_token_endpoint_mints_for_demo_customers_only(client, seeded):
    from plugin.api.identity import verify_customer_token

    customer = client.get("/demo/api/shoppers").get_json()["shoppers"][-1]["id"]
    token = client.post("/demo/api/token", json={"customer": customer}).get_json()["token"]
    assert verify_customer_token(seeded, token) == customer


@pytest.mark.parametrize("body", [b"[1, 2]", b"12", b"\"customer\"", b"{not json"])
def test_the_token_endpoint_answers_a_body_that_is_no_object_with_a_json_400(
        client, seeded, body):
    r = client.post("/demo/api/token", data=body, content_type="application/json")
    assert r.status_code == 400 and r.get_json()["message"] == "The body must be a JSON object."


def test_the_token_endpoint_without_a_demo_shop_is_404_whatever_the_body(client):
    r = client.post("/demo/api/token", data=b"[1]", content_type="application/json")
    assert r.status_code == 404 and r.get_json()["code"] == 404


def test_demo_pages_404_without_a_demo_shop(client):
    assert client.get("/demo/").status_code == 404
    assert client.get("/demo/api/shoppers").status_code == 404


def test_an_unknown_product_is_a_shop_page_not_a_json_error(client, seeded):
    response = client.get("/demo/product/NOPE")
    assert response.status_code == 404 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "We can't find that product" in html and 'href="/demo/"' in html
    assert _parse(response).problems == []  # the same strict CSP as every demo page


@pytest.mark.parametrize("path", ["/widgets/loader.js", "v/for-you.js"])
def test_modules_are_gzipped_for_clients_that_accept_it(client, path):
    if path.startswith("v/"):
        path = f"/widgets/v/{demo.widget_version()}/{path[2:]}"
    plain = client.get(path)
    packed = client.get(path, headers={"Accept-Encoding": "gzip, deflate, br"})
    refused = client.get(path, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in plain.headers and "Content-Encoding" not in refused.headers
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.get_data()) == plain.get_data() == refused.get_data()
    assert len(packed.get_data()) < len(plain.get_data()) / 2
    for response in (plain, packed):
        assert "Accept-Encoding" in response.headers["Vary"]
    # the two forms are different bytes, so they carry different validators ...
    assert packed.headers["ETag"] != plain.headers["ETag"]
    # ... each stable (no gzip timestamp) and each honoured
    again = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert again.headers["ETag"] == packed.headers["ETag"]
    cached = client.get(path, headers={"Accept-Encoding": "gzip",
                                       "If-None-Match": packed.headers["ETag"]})
    assert cached.status_code == 304


def test_the_demo_embed_sets_a_timeout_only_when_configured(app, client, seeded):
    """A merchant's page gets the loader's own 3 s default; the setting is for slow hosts."""
    def loader_tag() -> str:
        return re.search(r"<script[^>]*loader\.js[^>]*>",
                         client.get("/demo/").get_data(as_text=True)).group(0)

    assert "data-timeout" not in loader_tag()
    app.config["DEMO_WIDGET_TIMEOUT_MS"] = 8000
    assert 'data-timeout="8000"' in loader_tag()
