"""The "Who are you shopping for?" prompt in headless Chromium on the demo storefront."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from plugin.api import access
from plugin.extensions import db
from plugin.models import Interaction, PromptState, Shop, SubProfile
from plugin.subprofiles import detection
from tests.widgets.helpers import API, DARK_PAGE, unreadable, wait_until

pytestmark = pytest.mark.browser

SLOT = '[data-shopkeeper="shopping-for"]'
DIALOG = "shopkeeper-shopping-for dialog"


def _read(fn):
    """Run a query against the live server's database and release the read lock at once."""
    try:
        return fn()
    finally:
        db.session.rollback()


def _customer(page, nth: int) -> str:
    return page.eval_on_selector(f"#shopper option:nth-child({nth + 1})", "o => o.value")


def _foreign_product(shop: Shop, customer: str, on_page: list[str]) -> str:
    """The product on the page that fits this customer least; the shop's threshold is set
    just below its score so exactly such a basket asks (the rule itself is tested in
    tests/subprofiles; this test is about the widget flow)."""
    def pick():
        detector = detection.detector_for(shop.id)
        history = detection.own_history(shop.id, customer)
        scores = {p: detector.score(history, [p]) for p in on_page}
        best = max(scores, key=scores.get)
        assert scores[best] > 0, "the demo customer needs a purchase history"
        settings = dict(shop.settings or {})
        settings["subprofiles_enabled"] = True
        settings["subprofiles"] = {"threshold": scores[best] - 1e-6, "cooldown_days": 30}
        shop.settings = settings
        db.session.commit()
        access.forget_shops()  # the shopper API caches shops for a few seconds
        return best
    return _read(pick)


def _login(page, url: str, nth: int) -> str:
    page.goto(url + "/demo/")
    customer = _customer(page, nth)
    page.select_option("#shopper", customer)
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="idle"]', state="attached")
    return customer


def _grid(page) -> list[str]:
    return page.eval_on_selector_all("main .grid [data-add-to-cart-id]",
                                     "bs => bs.map(b => b.dataset.addToCartId)")


def _add(page, product: str) -> dict:
    with page.expect_response(lambda r: f"{API}subprofiles/prompt" in r.url
                              and r.request.method == "POST") as answer:
        page.click(f'main .grid [data-add-to-cart-id="{product}"]')
    return answer.value.json()


def _clean(page) -> None:
    assert page.watch.page_errors == []
    assert page.watch.errors() == []
    assert page.evaluate("window.__skViolations") == []


def test_prompt_creates_a_subprofile_and_switches_to_it(demo_shop, live, page):
    page.goto(live.url + "/demo/")
    customer = _customer(page, 1)
    product = _foreign_product(demo_shop, customer, _grid(page))
    assert _login(page, live.url, 1) == customer

    answer = _add(page, product)
    assert answer["ask"] is True
    dialog = page.locator(DIALOG)
    dialog.wait_for(state="visible")
    assert page.locator(f'{SLOT}[data-shopkeeper-state="asking"]').count() == 1
    assert dialog.get_attribute("aria-labelledby")
    heading = page.locator("shopkeeper-shopping-for h2")
    assert heading.text_content() == "Who are you shopping for?"
    assert page.evaluate("document.querySelector('shopkeeper-shopping-for').shadowRoot"
                         ".activeElement.value") == "me"  # focus moved into the dialog

    page.get_by_label("Someone new").check()
    name = page.get_by_label("Name or relationship")
    name.wait_for(state="visible")
    page.get_by_role("button", name="Save").click()  # no name yet: told, not sent
    assert page.get_by_role("alert").text_content() == "Please enter a name or relationship."
    name.fill("Maya")
    page.get_by_label("Age (optional)").select_option("3-5")
    with page.expect_response(lambda r: r.url.split("?")[0].endswith("/prompt/answer")) as done:
        page.get_by_role("button", name="Save").click()
    assert done.value.json()["subprofile_id"]
    dialog.wait_for(state="hidden")
    maya = _read(lambda: db.session.scalar(sa.select(SubProfile).filter_by(
        shop_id=demo_shop.id, owner_id=customer)))
    assert (maya.name, maya.age_band, maya.kind) == ("Maya", "3-5", "person")

    # The switcher appears; picking Maya makes her the active profile.
    switch = page.get_by_label("Shopping for")
    switch.wait_for(state="visible")
    with page.expect_response(lambda r: r.url.split("?")[0].endswith("/active")):
        switch.select_option(label="Maya")
    state = _read(lambda: db.session.scalar(sa.select(PromptState).filter_by(
        shop_id=demo_shop.id, shopper_id=customer)))
    assert state.active_subprofile_id == maya.id

    # The add-to-cart event (sent in the browser's batch) ends up as Maya's.
    wait_until(lambda: _read(lambda: db.session.scalar(sa.select(Interaction.id).where(
        Interaction.shop_id == demo_shop.id, Interaction.shopper_id == customer,
        Interaction.kind == "add_to_cart", Interaction.product_external_id == product))))
    page.reload()
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="ready"]', state="attached")
    tagged = _read(lambda: db.session.scalars(sa.select(Interaction.subprofile_id).where(
        Interaction.shop_id == demo_shop.id, Interaction.shopper_id == customer,
        Interaction.kind == "add_to_cart", Interaction.product_external_id == product)).all())
    assert tagged and set(tagged) == {maya.id}

    # Shopping for Maya now: another add-to-cart asks nothing and goes to her.
    again = _add(page, product)
    assert (again["ask"], again["reason"]) == (False, "shopping_for_subprofile")
    assert page.locator(DIALOG).count() == 0

    # Past orders: say the latest real order was for Maya; its purchase lines move to her.
    with page.expect_response(lambda r: r.url.split("?")[0].endswith("/orders")) as listed:
        page.locator("shopkeeper-shopping-for summary").click()
    latest = listed.value.json()["orders"][0]
    row = page.locator(f'shopkeeper-shopping-for select[data-order-id="{latest["order_id"]}"]')
    assert row.get_attribute("aria-label").startswith("Who was the order of ")
    with page.expect_response(lambda r: r.url.split("?")[0].endswith("/reassign")) as moved:
        row.select_option(label="Maya")
    assert moved.value.json()["moved"] == len(latest["items"]) > 0
    owners = _read(lambda: set(db.session.scalars(sa.select(Interaction.subprofile_id).where(
        Interaction.shop_id == demo_shop.id, Interaction.shopper_id == customer,
        Interaction.order_external_id == latest["order_id"]))))
    assert owners == {maya.id}
    _clean(page)


def test_past_orders_list_an_order_a_channel_switch_set_aside_as_whom_it_was_for(
        demo_shop, live, page):
    """The shopper said their latest order was for Maya, then the shop moved to another
    Saleor channel (its orders set aside): "Past orders" still lists it with Maya chosen,
    and "Me" still gives it back."""
    from plugin.models.events import SET_ASIDE

    page.goto(live.url + "/demo/")
    customer = _customer(page, 1)

    def given_to_maya_then_set_aside() -> tuple[int, str]:
        demo_shop.settings = {**(demo_shop.settings or {}), "subprofiles_enabled": True}
        maya = SubProfile(shop_id=demo_shop.id, owner_id=customer, name="Maya", kind="person")
        db.session.add(maya)
        db.session.flush()
        latest = db.session.scalar(sa.select(Interaction.order_external_id).where(
            Interaction.shop_id == demo_shop.id, Interaction.shopper_id == customer,
            Interaction.kind == "purchase", Interaction.order_external_id.is_not(None))
            .order_by(Interaction.occurred_at.desc()).limit(1))
        db.session.execute(sa.update(Interaction).where(
            Interaction.shop_id == demo_shop.id, Interaction.order_external_id == latest)
            .values(subprofile_id=maya.id, kind=SET_ASIDE))
        db.session.commit()
        access.forget_shops()
        return maya.id, latest

    maya, latest = _read(given_to_maya_then_set_aside)
    page.select_option("#shopper", customer)
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="ready"]', state="attached")
    with page.expect_response(lambda r: r.url.split("?")[0].endswith("/orders")) as listed:
        page.locator("shopkeeper-shopping-for summary").click()
    order = next(o for o in listed.value.json()["orders"] if o["order_id"] == latest)
    row = page.locator(f'shopkeeper-shopping-for select[data-order-id="{latest}"]')
    expect(row).to_have_value(str(maya))
    assert row.evaluate("s => s.selectedOptions[0].textContent") == "Maya"
    with page.expect_response(lambda r: r.url.split("?")[0].endswith("/reassign")) as moved:
        row.select_option(label="Me")
    assert moved.value.json()["moved"] == len(order["items"]) > 0
    rows = _read(lambda: set(db.session.execute(sa.select(
        Interaction.kind, Interaction.subprofile_id).where(
        Interaction.shop_id == demo_shop.id, Interaction.order_external_id == latest))))
    assert rows == {(SET_ASIDE, None)}  # the shopper's own, still set aside
    _clean(page)


def test_past_orders_show_a_one_off_gift_as_a_gift(demo_shop, live, page):
    """An order given to the one-off gift sub-profile (not one of the people listed) reads
    "A one-off gift" in "Past orders", not the shopper's own ("Me")."""
    page.goto(live.url + "/demo/")
    customer = _customer(page, 1)

    def given_as_a_gift() -> tuple[int, str]:
        demo_shop.settings = {**(demo_shop.settings or {}), "subprofiles_enabled": True}
        db.session.add(SubProfile(shop_id=demo_shop.id, owner_id=customer, name="Maya",
                                  kind="person"))
        gift = SubProfile(shop_id=demo_shop.id, owner_id=customer, name="One-off gifts",
                          kind="gift")
        db.session.add(gift)
        db.session.flush()
        latest = db.session.scalar(sa.select(Interaction.order_external_id).where(
            Interaction.shop_id == demo_shop.id, Interaction.shopper_id == customer,
            Interaction.kind == "purchase", Interaction.order_external_id.is_not(None))
            .order_by(Interaction.occurred_at.desc()).limit(1))
        db.session.execute(sa.update(Interaction).where(
            Interaction.shop_id == demo_shop.id, Interaction.order_external_id == latest)
            .values(subprofile_id=gift.id))
        db.session.commit()
        access.forget_shops()
        return gift.id, latest

    gift, latest = _read(given_as_a_gift)
    page.select_option("#shopper", customer)
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="ready"]', state="attached")
    page.locator("shopkeeper-shopping-for summary").click()
    row = page.locator(f'shopkeeper-shopping-for select[data-order-id="{latest}"]')
    expect(row).to_have_value(str(gift))
    assert row.evaluate("s => s.selectedOptions[0].textContent") == "A one-off gift"
    _clean(page)


def _asked_about_a_foreign_product(demo_shop, live, page) -> tuple[str, str]:
    """Customer 2 signed in, adding a product that does not fit their profile: the dialog
    is open. Returns the customer and the product."""
    page.goto(live.url + "/demo/")
    customer = _customer(page, 2)
    product = _foreign_product(demo_shop, customer, _grid(page))
    _login(page, live.url, 2)
    assert _add(page, product)["ask"] is True
    page.locator(DIALOG).wait_for(state="visible")
    return customer, product


def test_dont_ask_again_and_escape(demo_shop, live, page):
    customer, product = _asked_about_a_foreign_product(demo_shop, live, page)
    with page.expect_response(lambda r: r.url.split("?")[0].endswith("/prompt/answer")):
        page.keyboard.press("Escape")  # closes like "Not now" (and says so)
    page.locator(DIALOG).wait_for(state="hidden")

    def forget_cooldown():
        row = db.session.scalar(sa.select(PromptState).filter_by(shop_id=demo_shop.id,
                                                                 shopper_id=customer))
        row.last_asked_at = row.last_asked_at - timedelta(days=31)
        db.session.commit()
    _read(forget_cooldown)

    second = _add(page, product)
    assert second["ask"] is True, second
    page.locator(DIALOG).wait_for(state="visible")
    page.get_by_label("Don't ask me again").check()
    with page.expect_response(lambda r: r.url.split("?")[0].endswith("/prompt/answer")):
        page.get_by_role("button", name="Not now").click()
    page.locator(DIALOG).wait_for(state="hidden")
    assert _read(lambda: db.session.scalar(sa.select(PromptState.never_ask).filter_by(
        shop_id=demo_shop.id, shopper_id=customer))) is True
    _read(forget_cooldown)
    later = _add(page, product)
    assert (later["ask"], later["reason"]) == (False, "never_ask")
    assert not page.locator(DIALOG).is_visible()
    _clean(page)


def test_dialog_fits_a_phone_and_the_answer_is_announced(demo_shop, live, page):
    page.goto(live.url + "/demo/")
    customer = _customer(page, 1)
    product = _foreign_product(demo_shop, customer, _grid(page))
    _login(page, live.url, 1)
    page.set_viewport_size({"width": 390, "height": 844})
    assert _add(page, product)["ask"] is True
    dialog = page.locator(DIALOG)
    dialog.wait_for(state="visible")
    box = dialog.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box

    page.get_by_label("Someone new").check()
    page.get_by_label("Name or relationship").fill("Maya")
    with page.expect_response(lambda r: r.url.split("?")[0].endswith("/prompt/answer")):
        page.get_by_role("button", name="Save").click()
    page.get_by_label("Shopping for").wait_for(state="visible")
    status = page.locator("shopkeeper-shopping-for [role=status]")
    expect(status).to_have_text("Saved.")
    status.evaluate("""el => { window.__said = [];
        new MutationObserver(() => window.__said.push(el.textContent))
            .observe(el, {childList: true, characterData: true, subtree: true}); }""")
    with page.expect_response(lambda r: r.url.split("?")[0].endswith("/active")):
        page.get_by_label("Shopping for").select_option(label="Me")
    wait_until(lambda: "Saved." in page.evaluate("window.__said"))
    assert page.evaluate("window.__said") == ["", "Saved."]  # the same words, said again
    _clean(page)


def test_two_switchers_on_one_page_ask_once(demo_shop, live, page):
    """A shop may show the switcher twice (header and account panel): one add-to-cart asks
    one question in one dialog, and the answer shows in both switchers."""
    page.goto(live.url + "/demo/")
    customer = _customer(page, 1)
    product = _foreign_product(demo_shop, customer, _grid(page))
    _login(page, live.url, 1)
    page.evaluate("""() => {
        const div = document.createElement('div');
        div.id = 'second';
        div.dataset.shopkeeper = 'shopping-for';
        document.querySelector('main').append(div);
        Shopkeeper.build();
    }""")
    page.wait_for_selector('#second[data-shopkeeper-state="idle"]', state="attached")
    asked = []
    page.on("request", lambda r: asked.append(r.url) if r.method == "POST" and
            r.url.split("?")[0].endswith("/subprofiles/prompt") else None)
    assert _add(page, product)["ask"] is True
    page.locator(DIALOG).first.wait_for(state="visible")
    page.wait_for_timeout(500)
    assert len(asked) == 1
    assert page.locator(DIALOG).count() == 1
    page.get_by_label("Someone new").check()
    page.get_by_label("Name or relationship").fill("Maya")
    with page.expect_response(lambda r: r.url.split("?")[0].endswith("/prompt/answer")):
        page.get_by_role("button", name="Save").click()
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="ready"] >> nth=1', state="attached")
    assert page.locator(f'{SLOT}[data-shopkeeper-state="ready"]').count() == 2
    _clean(page)


def test_escape_answers_like_not_now(demo_shop, live, page):
    """Escape closes the dialog like "Not now": the answer (and a ticked "Don't ask me
    again") reaches the shop instead of being lost."""
    customer, _ = _asked_about_a_foreign_product(demo_shop, live, page)
    page.get_by_label("Don't ask me again").check()
    with page.expect_request(lambda r: r.url.split("?")[0].endswith("/prompt/answer")) as sent:
        page.keyboard.press("Escape")
    page.locator(DIALOG).wait_for(state="hidden")
    assert sent.value.post_data_json == {"choice": "dismiss", "product_ids": [],
                                         "dont_ask_again": True}
    assert wait_until(lambda: _read(lambda: db.session.scalar(sa.select(
        PromptState.never_ask).filter_by(shop_id=demo_shop.id, shopper_id=customer))))
    _clean(page)


def test_a_re_inserted_switcher_keeps_its_state(demo_shop, live, page):
    """A single-page route away and back re-inserts the placeholder: the switcher, like
    the other widgets, neither asks the API again nor re-renders, and still asks about
    the next add-to-cart."""
    page.goto(live.url + "/demo/")
    customer = _customer(page, 1)
    product = _foreign_product(demo_shop, customer, _grid(page))
    asked: list[str] = []
    page.on("request", lambda r: asked.append(f"{r.method} {r.url}")
            if f"{API}subprofiles" in r.url else None)
    assert _login(page, live.url, 1) == customer
    wait_until(lambda: asked, timeout=5)
    page.wait_for_timeout(500)  # the login's loads (a page load, then identify) are done
    loaded = list(asked)
    page.evaluate(f"""() => {{
        window.__slot = document.querySelector('{SLOT}');
        window.__el = window.__slot.querySelector('shopkeeper-shopping-for');
        window.__slot.remove();
    }}""")
    wait_until(lambda: page.evaluate("!Shopkeeper.elements.includes(window.__el)"), timeout=5)
    page.evaluate("""() => {
        window.__renders = 0;
        new MutationObserver(() => window.__renders++)
            .observe(window.__el.shadowRoot, {childList: true, subtree: true});
        document.querySelector('main').prepend(window.__slot);
    }""")
    wait_until(lambda: page.evaluate("Shopkeeper.elements.includes(window.__el)"), timeout=5)
    page.wait_for_timeout(500)
    assert asked == loaded, asked  # no new request
    assert page.evaluate("window.__renders") == 0
    assert page.get_attribute(SLOT, "data-shopkeeper-state") == "idle"
    assert page.locator("shopkeeper-shopping-for").count() == 1
    # still the page's switcher: the next add-to-cart is asked about
    assert _add(page, product)["ask"] is True
    page.locator(DIALOG).wait_for(state="visible")
    _clean(page)


def test_the_dialog_stays_readable_on_a_dark_host_page(demo_shop, live, page):
    """The dialog's white background comes with a dark default text colour."""
    _asked_about_a_foreign_product(demo_shop, live, page)
    page.evaluate(DARK_PAGE)
    assert unreadable(page, "shopkeeper-shopping-for",
                      ["dialog h2", "dialog label", "dialog .sk-later", "dialog select"]) == []


def test_the_error_follows_a_dark_theme(demo_shop, live, page):
    """A merchant's dark theme (README's example) darkens the dialog; the "enter a name"
    error must take the theme's colour, not stay dark red on dark grey."""
    _asked_about_a_foreign_product(demo_shop, live, page)
    page.evaluate("""() => { const s = document.documentElement.style;
        for (const [k, v] of [['--sk-card-bg', '#1e1e1e'], ['--sk-color', '#eeeeee'],
                              ['--sk-muted', '#bbbbbb'], ['--sk-error', '#ff8a80']])
            s.setProperty(k, v); }""")
    page.get_by_label("Someone new").check()
    page.get_by_role("button", name="Save").click()
    page.get_by_role("alert").wait_for(state="visible")
    assert unreadable(page, "shopkeeper-shopping-for",
                      ["dialog .sk-error", "dialog h2", "dialog label"]) == []
    _clean(page)


@pytest.mark.parametrize("choice", ["Me", "A one-off gift"])
def test_saved_is_announced_to_a_shopper_with_no_people(demo_shop, live, page, choice):
    """With nobody saved there is no switcher to show, but the live region must still be
    in the page (not inside a hidden widget) when "Saved." is written into it."""
    _asked_about_a_foreign_product(demo_shop, live, page)
    page.locator("shopkeeper-shopping-for [role=status]").evaluate("""el => {
        window.__said = [];
        new MutationObserver(() => window.__said.push([el.textContent, el.checkVisibility()]))
            .observe(el, {childList: true, characterData: true, subtree: true}); }""")
    page.get_by_label(choice, exact=True).check()
    with page.expect_response(lambda r: r.url.split("?")[0].endswith("/prompt/answer")):
        page.get_by_role("button", name="Save").click()
    page.locator(DIALOG).wait_for(state="hidden")
    said = wait_until(lambda: [s for s in page.evaluate("window.__said") if s[0] == "Saved."])
    assert said == [["Saved.", True]]
    expect(page.locator("shopkeeper-shopping-for").get_by_role("status")).to_have_text("Saved.")
    assert page.get_attribute(SLOT, "data-shopkeeper-state") == "idle"
    assert page.eval_on_selector("shopkeeper-shopping-for",  # shown, yet takes no space
                                 "el => el.getBoundingClientRect().height") == 0
    _clean(page)


@pytest.mark.parametrize("width", [320, 360])
def test_a_long_name_keeps_the_switcher_on_a_phone_screen(demo_shop, live, page, width):
    """Names may be 40 characters: the "Shopping for" select (its width is its longest
    option's) must shrink to the screen, not push the page sideways."""
    def enable():
        demo_shop.settings = {**demo_shop.settings, "subprofiles_enabled": True}
        db.session.commit()
        access.forget_shops()
    _read(enable)
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(live.url + "/demo/")
    shopper = page.wait_for_function("() => window.Shopkeeper && window.Shopkeeper.shopper"
                                     ).json_value()
    name = "Great-grandmother Annabel-Rose Whitfield"  # 40 characters, the most allowed

    def add_person():
        db.session.add(SubProfile(shop_id=demo_shop.id, owner_id=shopper, name=name,
                                  kind="person"))
        db.session.commit()
    _read(add_person)
    page.reload()
    switch = page.get_by_label("Shopping for")
    switch.wait_for(state="visible")
    page.locator("shopkeeper-shopping-for summary").click()  # "Past orders"
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a {width}px screen"
    box = switch.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
    _clean(page)


def test_an_answer_that_did_not_save_keeps_the_dialog_and_says_so(demo_shop, live, page):
    """The API failing on Save (5xx, offline) closed the dialog as if saved: the typed
    name was lost without a word. The dialog stays, says so, and Save works again."""
    customer, _ = _asked_about_a_foreign_product(demo_shop, live, page)
    answer = f"**{API}subprofiles/prompt/answer**"
    page.route(answer, lambda route: route.fulfill(status=503, body="busy"))
    page.get_by_label("Someone new").check()
    page.get_by_label("Name or relationship").fill("Maya")
    with page.expect_response(lambda r: r.url.split("?")[0].endswith("/prompt/answer")):
        page.get_by_role("button", name="Save").click()
    alert = page.locator(f"{DIALOG} [role=alert]")
    expect(alert).to_be_visible()
    assert alert.text_content().strip()
    expect(page.locator(DIALOG)).to_be_visible()
    assert page.get_by_label("Name or relationship").input_value() == "Maya"

    page.unroute(answer)
    with page.expect_response(lambda r: r.url.split("?")[0].endswith("/prompt/answer")):
        page.get_by_role("button", name="Save").click()
    page.get_by_label("Shopping for").wait_for(state="visible")
    expect(page.locator(DIALOG)).to_have_count(0)
    assert _read(lambda: [p.name for p in db.session.scalars(sa.select(SubProfile).filter_by(
        shop_id=demo_shop.id, owner_id=customer, kind="person"))]) == ["Maya"]
    assert page.watch.page_errors == []
    assert page.watch.errors(ignore_network_to=live.url + API + "subprofiles/prompt/answer") == []


def _deep_focus(page) -> str:
    return page.evaluate("""() => { let a = document.activeElement;
        while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
        return a.tagName + (a.name ? '[' + a.name + ']' : ''); }""")


def test_the_keyboard_moves_on_from_the_typed_name(demo_shop, live, page):
    """Any change in the form (the name field left after typing, an age picked with the
    arrow keys) sent focus back to the name field: the first Tab out of it, and every age
    change, landed there again. Only picking "Someone new" moves focus to the name."""
    _asked_about_a_foreign_product(demo_shop, live, page)
    page.get_by_label("Someone new").focus()
    page.keyboard.press("Space")
    assert _deep_focus(page) == "INPUT[name]"
    page.keyboard.type("Maya")
    page.keyboard.press("Tab")
    assert _deep_focus(page) == "SELECT[age_band]"
    page.keyboard.press("ArrowDown")  # a closed select changes its value
    assert page.get_by_label("Age (optional)").input_value() != ""
    assert _deep_focus(page) == "SELECT[age_band]"
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # "Don't ask me again"
    assert _deep_focus(page) == "INPUT[never]"
    _clean(page)
