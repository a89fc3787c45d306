/* The demo storefront's own script (not part of Shopkeeper): a client-side basket and the
 * calls a merchant makes into window.Shopkeeper. Uses the queue form so it works whether
 * the async loader has run yet or not. */
(function () {
  "use strict";
  var KEY = "demo:cart";
  // An accepted Shopkeeper offer. Like a platform's discount code it counts while it has
  // not expired and the basket reaches its minimum subtotal (an add-on offer's minimum
  // includes the suggested item); without a minimum, only for the basket it was made for.
  var DISCOUNT = "demo:discount";
  var d = document;

  function shopkeeper(call) { (window.Shopkeeper = window.Shopkeeper || []).push(call); }

  function load() {
    try { return JSON.parse(localStorage.getItem(KEY)) || []; } catch (e) { return []; }
  }
  function save(lines) {
    try { localStorage.setItem(KEY, JSON.stringify(lines)); } catch (e) { /* private mode */ }
    render();
  }
  function say(text) { var s = d.getElementById("status"); if (s) s.textContent = text; }
  function money(n) {
    return new Intl.NumberFormat("en-GB", { style: "currency", currency: "GBP" }).format(n);
  }

  /** What the basket is, as the cart-offer placeholder wants it (the offer is bound to it). */
  function cartJson(lines) {
    return JSON.stringify({ currency: "GBP", lines: lines.map(function (l) {
      return { product_id: l.id, quantity: l.qty, price: (+l.price).toFixed(2) };
    }) });
  }
  function subtotal(lines) {
    return lines.reduce(function (n, l) { return n + l.price * l.qty; }, 0);
  }
  function discount(lines) {
    try {
      var dsc = JSON.parse(localStorage.getItem(DISCOUNT));
      if (!dsc || !lines.length || (dsc.expires_at && Date.parse(dsc.expires_at) <= Date.now())) {
        return null;
      }
      if (dsc.min_subtotal === null || dsc.min_subtotal === undefined) {
        return dsc.cart === cartJson(lines) ? dsc : null; // the basket changed: void
      }
      return subtotal(lines) + 0.005 >= +dsc.min_subtotal ? dsc : null;
    } catch (e) { return null; }
  }

  function add(id, title, price) {
    var lines = load(), line = lines.filter(function (l) { return l.id === id; })[0];
    if (line) line.qty += 1; else lines.push({ id: id, title: title, price: +price || 0, qty: 1 });
    save(lines);
    say("Added " + title + " to your basket.");
  }

  function render() {
    var lines = load();
    var count = lines.reduce(function (n, l) { return n + l.qty; }, 0);
    var badge = d.getElementById("cart-count");
    if (badge) badge.textContent = String(count);
    var body = d.getElementById("cart-lines");
    if (!body) return;
    body.replaceChildren.apply(body, lines.map(function (l) {
      var tr = d.createElement("tr");
      var name = d.createElement("td"), a = d.createElement("a");
      a.href = "/demo/product/" + encodeURIComponent(l.id);
      a.textContent = l.title;
      name.appendChild(a);
      var qty = d.createElement("td"); qty.textContent = String(l.qty);
      var price = d.createElement("td"); price.textContent = money(l.price * l.qty);
      var rm = d.createElement("td"), btn = d.createElement("button");
      btn.type = "button"; btn.className = "link"; btn.textContent = "Remove";
      btn.setAttribute("data-remove-id", l.id);
      btn.setAttribute("aria-label", "Remove " + l.title);
      rm.appendChild(btn);
      tr.append(name, qty, price, rm);
      return tr;
    }));
    var total = subtotal(lines);
    var dsc = discount(lines), row = d.getElementById("cart-discount");
    if (row) {
      row.hidden = !dsc;
      if (dsc) {
        d.getElementById("cart-discount-code").textContent = dsc.code;
        d.getElementById("cart-discount-amount").textContent = "\u2212" + money(dsc.amount);
        total = Math.max(0, total - dsc.amount);
      }
    }
    d.getElementById("cart-total").textContent = money(total);
    d.getElementById("cart-table").hidden = !lines.length;
    d.getElementById("checkout").hidden = !lines.length;
    d.getElementById("cart-empty").hidden = !!lines.length;
    // The cart placement recommends complements of what is in the basket.
    var slot = d.querySelector('[data-shopkeeper="for-you"][data-placement="cart"]');
    if (slot) {
      slot.setAttribute("data-cart", lines.map(function (l) { return l.id; }).join(","));
    }
    var offer = d.querySelector('[data-shopkeeper="cart-offer"]');
    if (offer) offer.setAttribute("data-cart", lines.length ? cartJson(lines) : "");
    if (slot || offer) shopkeeper(["build"]);
  }

  /** Remove and Place order take their own button away (a re-rendered row, a hidden
   * button): focus the Remove now at ``at`` (or the last one), else the "empty" note, so
   * keyboard focus stays in the basket instead of falling to the top of the page. */
  function refocus(at) {
    var left = d.querySelectorAll("[data-remove-id]");
    var to = left[Math.min(at, left.length - 1)] || d.getElementById("cart-empty");
    if (!to) return;
    if (!to.matches("button")) to.setAttribute("tabindex", "-1");
    to.focus();
  }

  d.addEventListener("click", function (e) {
    var b = e.target.closest("[data-add-to-cart-id]");
    if (b) {
      var id = b.getAttribute("data-add-to-cart-id");
      add(id, b.getAttribute("data-title"), b.getAttribute("data-price"));
      shopkeeper(["track", "add_to_cart", { product_id: id, quantity: 1 }]);
      return;
    }
    var r = e.target.closest("[data-remove-id]");
    if (r) {
      var rid = r.getAttribute("data-remove-id");
      var at = [].indexOf.call(d.querySelectorAll("[data-remove-id]"), r);
      save(load().filter(function (l) { return l.id !== rid; }));
      refocus(at);
      shopkeeper(["track", "remove_from_cart", { product_id: rid }]);
      say("Removed from your basket.");
      return;
    }
    if (e.target.id === "checkout") {
      load().forEach(function (l) {
        shopkeeper(["track", "purchase", { product_id: l.id, quantity: l.qty }]);
      });
      save([]);
      refocus(0);
      say("Thank you! Your order is placed.");
    }
  });

  // An accepted cart offer: the platform would apply this code at checkout; the demo shows it.
  d.addEventListener("shopkeeper:offer-accepted", function (e) {
    var amount = e.detail.kind === "free_shipping" ? 0 : +e.detail.amount || 0;
    try {
      localStorage.setItem(DISCOUNT, JSON.stringify({
        code: e.detail.code, amount: amount, cart: cartJson(load()),
        min_subtotal: e.detail.min_subtotal, expires_at: e.detail.expires_at
      }));
    } catch (err) { /* private mode */ }
    render();
    say(discount(load()) ? "Discount " + e.detail.code + " applied."
      : "Discount " + e.detail.code + " saved: it applies once your basket reaches "
        + money(+e.detail.min_subtotal) + ".");
  });

  // Add-to-basket buttons inside the recommendation carousel.
  d.addEventListener("shopkeeper:add-to-cart", function (e) {
    add(e.detail.product_id, e.detail.title, e.detail.price);
  });

  // The same basket in another tab (added there, ordered there): show it here too, so
  // this tab's lines, its offer and its Place order are for the basket as it is.
  window.addEventListener("storage", function (e) {
    if (e.key === KEY || e.key === DISCOUNT || e.key === null) render();
  });

  d.addEventListener("DOMContentLoaded", function () {
    render();
    var select = d.getElementById("shopper");
    if (select) select.addEventListener("change", function () { select.form.submit(); });
    var pid = d.body.getAttribute("data-product-id");
    if (pid) shopkeeper(["track", "view", { product_id: pid }]);
  });
})();
