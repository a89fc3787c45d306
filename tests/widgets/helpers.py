"""Small helpers shared by the browser tests: DB polling and reading the carousel."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import Interaction, Product

API = "/api/v1/"
#: 2026-01-01 in ms: where a test that holds the page's clock (``page.clock``) starts it
PAGE_EPOCH = 1_767_225_600_000
FOR_YOU = "shopkeeper-for-you"
READY = '[data-shopkeeper="for-you"][data-shopkeeper-state="ready"]'
FAILED = '[data-shopkeeper="for-you"][data-shopkeeper-state="error"]'


def interactions(shop_id: str, **filters: Any) -> list[Interaction]:
    """Rows as committed by the server thread; the read transaction ends at once so the
    server's next write is never blocked by this test's SQLite read lock."""
    try:
        rows = list(db.session.scalars(sa.select(Interaction).filter_by(shop_id=shop_id,
                                                                         **filters)
                                       .order_by(Interaction.id)))
        for row in rows:
            db.session.expunge(row)
        return rows
    finally:
        db.session.rollback()


def product_titles(shop_id: str, ids: list[str]) -> dict[str, str]:
    """Titles from the catalog table (read lock released at once, as above)."""
    try:
        return dict(db.session.execute(sa.select(Product.external_id, Product.title).where(
            Product.shop_id == shop_id, Product.external_id.in_(ids))).all())
    finally:
        db.session.rollback()


def wait_until(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy (the value) or fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {check}")
        time.sleep(interval)


def cards(page) -> list[dict[str, str]]:
    """What the first carousel shows: title, price, reason per card (through shadow DOM)."""
    return page.eval_on_selector(FOR_YOU, """el => [...el.shadowRoot.querySelectorAll('.sk-card')]
        .map(c => ({title: c.querySelector('.sk-title').textContent,
                    price: c.querySelector('.sk-price').textContent,
                    reason: (c.querySelector('.sk-reason') || {}).textContent || '',
                    href: (c.querySelector('a.sk-link') || {}).href || ''}))""")


def focused(page) -> dict[str, Any] | None:
    """The element focused inside the carousel's shadow root (class, data-i, outline)."""
    return page.evaluate("""() => {
        const host = document.activeElement;
        if (!host || host.tagName !== 'SHOPKEEPER-FOR-YOU') return null;
        const el = host.shadowRoot.activeElement;
        if (!el) return null;
        const cs = getComputedStyle(el);
        return {cls: el.className, i: el.getAttribute('data-i'),
                outline: cs.outlineStyle, outlineWidth: cs.outlineWidth};
    }""")


def open_page(page, url: str) -> dict:
    """Load a storefront page; return the recommendations answer the carousel rendered."""
    with page.expect_response(lambda r: f"{API}recommendations" in r.url) as answer:
        page.goto(url)
    page.wait_for_selector(READY)
    return answer.value.json()


def assert_clean(page, *, ignore_network_to: str | None = None) -> None:
    """No uncaught error, no console error, no CSP violation on the host page."""
    assert page.watch.page_errors == []
    assert page.watch.errors(ignore_network_to=ignore_network_to) == []
    assert page.evaluate("window.__skViolations") == []


#: For each selector inside ``el``'s shadow root: [selector, text colour, the colour of the
#: first non-transparent background behind it (walking out of the shadow root to the page)].
COLOURS = """(el, sels) => sels.map(s => {
    const t = el.shadowRoot.querySelector(s);
    let b = t;
    while (b && getComputedStyle(b).backgroundColor.replace(/ /g, '') === 'rgba(0,0,0,0)') {
        b = b.parentElement || (b.getRootNode() && b.getRootNode().host) || null;
    }
    return [s, getComputedStyle(t).color,
            b ? getComputedStyle(b).backgroundColor : 'rgb(255, 255, 255)'];
})"""

#: A dark theme on the host page (the CSSOM, which the demo pages' strict CSP allows).
DARK_PAGE = """() => { document.documentElement.style.background = '#121212';
    document.body.style.background = '#121212'; document.body.style.color = '#eeeeee'; }"""

#: The widgets' dark theme from widgets/README.md ("Theming"), set on :root (with DARK_PAGE).
DARK_THEME = """() => { const s = document.documentElement.style;
    for (const [k, v] of [['--sk-card-bg', '#1e1e1e'], ['--sk-offer-bg', '#16302b'],
                          ['--sk-color', '#eeeeee'], ['--sk-muted', '#bbbbbb'],
                          ['--sk-error', '#ff8a80']])
        s.setProperty(k, v); }"""


def luminance(css: str) -> float:
    """WCAG relative luminance of an opaque ``rgb(...)`` colour (0 black, 1 white)."""
    r, g, b = (float(v) / 255 for v in re.findall(r"[\d.]+", css)[:3])
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(fg: str, bg: str) -> float:
    """WCAG contrast ratio of two opaque ``rgb(...)`` colours as getComputedStyle gives them."""
    hi, lo = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def unreadable(page, host: str, selectors: list[str]) -> list:
    """The selectors whose text has under 4.5:1 contrast with what is behind it."""
    return [c for c in page.eval_on_selector(host, COLOURS, selectors)
            if contrast(c[1], c[2]) < 4.5]


def with_attributes(page, path: str, kind: str, attrs: dict[str, str]) -> None:
    """Serve ``path`` with extra attributes on its first ``data-shopkeeper=kind``
    placeholder, as a merchant writes them in the page (headers, so the CSP, kept)."""
    extra = "".join(f' data-{k}="{html.escape(v, quote=True)}"' for k, v in attrs.items())

    def handler(route):
        response = route.fetch()
        body = response.text().replace(f'data-shopkeeper="{kind}"',
                                       f'data-shopkeeper="{kind}"{extra}', 1)
        route.fulfill(response=response, body=body)
    page.route(f"**{path}", handler)


#: The impacts that fail an audit (axe-core's four: minor, moderate, serious, critical).
AXE_FAILING = ("serious", "critical")


def axe_violations(page, context: object = None,
                   impacts: tuple[str, ...] = AXE_FAILING) -> list[dict]:
    """axe-core's violations of the given impacts on the page as it is now, open shadow
    roots included (axe.min.js from the axe-playwright-python package, injected by CDP
    so the demo pages' strict CSP does not block it)."""
    from axe_playwright_python.base import AXE_SCRIPT

    if not page.evaluate("() => !!window.axe"):
        page.evaluate(AXE_SCRIPT)
    found = page.evaluate("""async context => {
        const r = await axe.run(context || document, {resultTypes: ['violations']});
        return r.violations; }""", context)
    return [v for v in found if v["impact"] in impacts]


def axe_report(violations: list[dict]) -> str:
    """One line per failing element: rule, impact, target (shadow hosts first), summary."""
    lines = []
    for v in violations:
        for node in v["nodes"]:
            lines.append(f"{v['id']} ({v['impact']}) {node['target']}: "
                         f"{node.get('failureSummary', '')!s}".replace("\n", " ")
                         + f" | {node['html'][:160]}")
    return "\n".join(lines)
