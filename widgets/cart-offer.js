/*! Shopkeeper <shopkeeper-cart-offer>: the cart page's offer banner (reason, countdown,
 * accept, dismiss) and the free-shipping progress bar.
 * Placeholder: <div data-shopkeeper="cart-offer" data-cart='{"currency":"GBP","lines":
 *   [{"product_id":"p1","quantity":2,"price":"12.50"}]}'></div>
 * The storefront keeps data-cart current and calls Shopkeeper.build() after each change.
 * Accepting fires the bubbling "shopkeeper:offer-accepted" event with {code, amount,
 * currency, kind, min_subtotal, expires_at, discount_token, offer_id}: the storefront
 * applies the code (the platform discount enforces the price, and refuses it while the
 * cart is under min_subtotal: an add-on offer's code needs the suggested item added).
 * The offer is signed for exactly this cart.
 * Texts: data-apply, data-dismiss, data-ends-in, ... on the placeholder (see TEXTS).
 */
(function (w, d) {
  "use strict";
  var sk = w.Shopkeeper;
  if (!sk || !w.customElements || w.customElements.get("shopkeeper-cart-offer")) return;

  var CSS = [
    ":host{display:block;font-family:var(--sk-font,inherit);color:var(--sk-color,inherit)}",
    ":host([hidden]){display:none}",
    ".sk{margin:var(--sk-margin,1rem 0);display:grid;gap:.75rem}",
    ".sk-offer{display:flex;flex-wrap:wrap;align-items:center;gap:.75rem;padding:.9rem 1rem;",
    "border:2px solid var(--sk-accent,#1f4f46);border-radius:var(--sk-radius,.5rem);",
    "background:var(--sk-offer-bg,#f3f8f6);color:var(--sk-color,#1a1a1a)}", // light: dark text
    ".sk-text{flex:1 1 14rem;margin:0}",
    ".sk-reason{display:block;font-weight:600}",
    ".sk-ends{font-size:.9em;color:var(--sk-muted,#4a4a4a)}",
    ".sk-clock{font-variant-numeric:tabular-nums;font-weight:600}",
    "button{font:inherit;cursor:pointer;border-radius:var(--sk-radius,.5rem);padding:.5rem .9rem}",
    ".sk-accept{border:0;background:var(--sk-accent,#1f4f46);color:var(--sk-accent-text,#fff)}",
    ".sk-dismiss{border:1px solid var(--sk-border,#8a8a8a);background:transparent;color:inherit}",
    "button:disabled{opacity:.6;cursor:default}",
    ".sk-ship p{margin:0 0 .35rem}",
    ".sk-bar{height:.6rem;border-radius:1rem;background:var(--sk-track,#e2e2e2);overflow:hidden}",
    ".sk-fill{height:100%;width:0;background:var(--sk-accent,#1f4f46)}",
    ".sk-note{margin:0;font-weight:600}",
    ".sk-sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);",
    "white-space:nowrap}",
    ":focus-visible{outline:3px solid var(--sk-focus,#1a5fd0);outline-offset:2px}",
    "@media (prefers-reduced-motion:reduce){*{transition:none!important}}"
  ].join("");
  var sheet = null;
  try { sheet = new w.CSSStyleSheet(); sheet.replaceSync(CSS); } catch (e) { sheet = null; }

  // Each text can be replaced with a data-* attribute on the placeholder: data-apply,
  // data-apply-free-shipping, data-dismiss, data-dismiss-label, ... (these keys in dataset
  // form). {amount}, {time}, {code} and {n} stand for the values put in.
  var TEXTS = {
    reason: "A special offer", apply: "Apply {amount} off", applyFreeShipping: "Apply free shipping",
    dismiss: "No thanks", dismissLabel: "No thanks, dismiss this offer",
    endsIn: "Ends in {time}", endsAt: "Offer ends at {time}", minutes: "{n} min",
    applied: "Discount {code} applied to your basket.",
    appliesLater: "Discount {code} saved: it applies once your basket reaches {amount}.",
    unavailable: "Sorry, this offer is no longer available.", expired: "This offer has expired.",
    retry: "That did not go through. Please try again.",
    dismissed: "Offer dismissed.", shippingReached: "You get free shipping.",
    shippingMore: "Add {amount} more for free shipping."
  };

  function h(tag, attrs, kids) {
    var el = d.createElement(tag);
    for (var k in attrs || {}) {
      if (attrs[k] !== null && attrs[k] !== undefined) el.setAttribute(k, attrs[k]);
    }
    (kids || []).forEach(function (c) {
      if (c !== null && c !== undefined) el.appendChild(typeof c === "string" ? d.createTextNode(c) : c);
    });
    return el;
  }

  function money(amount, currency) {
    var n = Number(amount);
    if (amount === null || amount === undefined || isNaN(n)) return "";
    try {
      return new Intl.NumberFormat(d.documentElement.lang || undefined,
        { style: "currency", currency: currency }).format(n);
    } catch (e) { return n.toFixed(2) + (currency ? " " + currency : ""); }
  }

  /** "m:ss"; whole minutes ("12 min", the minutes text) for shoppers who asked for less motion. */
  function clock(ms, minutes) {
    var s = Math.max(0, Math.ceil(ms / 1000)), m = Math.floor(s / 60);
    return minutes ? minutes.replace("{n}", Math.ceil(s / 60)) : m + ":" + String(s % 60).padStart(2, "0");
  }

  /** The cart from data-cart; null when missing, malformed or empty. */
  function readCart(raw) {
    try {
      var c = JSON.parse(raw || "null");
      if (!c || typeof c.currency !== "string" || !Array.isArray(c.lines) || !c.lines.length) return null;
      return {
        currency: c.currency, lines: c.lines.map(function (l) {
          return { product_id: String(l.product_id), quantity: +l.quantity, price: String(l.price) };
        })
      };
    } catch (e) { return null; }
  }

  function number(v) {
    return v !== null && v !== undefined && v !== "" && isFinite(Number(v));
  }

  /** A malformed answer shows no banner (no "NaN:NaN", no "Apply  off"). */
  function usableOffer(o) {
    return !!o && typeof o === "object" && typeof o.token === "string" && !!o.token &&
      !isNaN(Date.parse(o.expires_at)) && (o.discount_kind === "free_shipping" || number(o.amount));
  }
  function usableShipping(fs) {
    return !!fs && typeof fs === "object" && number(fs.threshold) && number(fs.remaining);
  }

  var uid = 0;

  class CartOffer extends HTMLElement {
    connectedCallback() {
      if (this._started) { // re-inserted (a single-page route away and back): tick again
        if (this._offerEl && this._offer && !this.hidden) this._tick(this._offer);
        return;
      }
      this._started = true;
      this._id = "sk-co-" + (++uid);
      this.refresh();
    }

    disconnectedCallback() { this._stop(); }

    _slot() { return this.parentElement || this; }

    _state(state) { this._slot().setAttribute("data-shopkeeper-state", state); }

    _hide() {
      var had = this.shadowRoot && this.shadowRoot.activeElement;
      this.hidden = true;
      if (had) sk.focusSlot(this);
    }

    /** The placeholder's text (or the default) with its {placeholders} filled in. */
    _t(name, values) {
      return ((this._slot().dataset || {})[name] || TEXTS[name]).replace(/\{(\w+)\}/g, function (m, k) {
        return values && Object.prototype.hasOwnProperty.call(values, k) ? String(values[k]) : m;
      });
    }

    /** Ask for an offer when the cart (or the shopper) changed since the last answer. */
    refresh(force) {
      var ds = this._slot().dataset || {};
      var key = ds.key || "";
      if (ds.customerToken && !sk.customerToken) sk.customerToken = ds.customerToken;
      var cart = readCart(ds.cart);
      var sig = JSON.stringify(cart) + "|" + (sk.customerToken || "");
      if (!force && sig === this._sig) return;
      this._sig = sig;
      var self = this, seq = (this._seq = (this._seq || 0) + 1);
      if (!cart) { this._stop(); this._hide(); }
      sk.api.config(key).then(function (cfg) {
        if (!cfg) return null; // no answer: "error", not "off"
        if (!cfg.widgets || !cfg.widgets.cart_offer) return "off";
        if (!cart) return "empty";
        return sk.api.request("POST", "/offers/quote", key, null, { cart: cart });
      }).then(sk.guard(function (answer) {
        if (seq !== self._seq) return; // a newer cart won
        if (answer === "off" || answer === "empty") { self._hide(); return self._state(answer); }
        if (!answer) { self._sig = null; self._hide(); return self._state("error"); } // asked again on build()
        self._render(key, cart, answer);
      }));
    }

    _render(key, cart, answer) {
      this._stop();
      var root = this.shadowRoot || this.attachShadow({ mode: "open" });
      if (!sheet) { this.hidden = true; return this._state("unsupported"); }
      root.adoptedStyleSheets = [sheet];
      var parts = [];
      var offer = usableOffer(answer.offer) ? answer.offer : null;
      var ship = usableShipping(answer.free_shipping) ? answer.free_shipping : null;
      if (offer) parts.push(this._banner(key, cart, offer));
      if (ship) parts.push(this._shipping(ship, cart.currency));
      this._live = h("p", { "class": "sk-note", role: "status", tabindex: "-1" });
      parts.push(this._live);
      var had = root.activeElement; // a re-render (the basket changed) under keyboard focus
      root.replaceChildren(h("div", { "class": "sk" }, parts));
      this.hidden = !offer && !ship;
      if (had) { // ...keeps it on the same button, or gives it to the placeholder
        var same = !this.hidden && root.querySelector("." + had.classList[0]);
        if (same) same.focus(); else sk.focusSlot(this);
      }
      var malformed = (answer.offer && !offer) || (answer.free_shipping && !ship);
      this._state(offer ? "ready" : malformed ? "error" : "empty");
      if (offer) this._tick(offer);
    }

    _banner(key, cart, offer) {
      var ends = new Date(offer.expires_at);
      var time = ends.toLocaleTimeString(d.documentElement.lang || undefined,
        { hour: "2-digit", minute: "2-digit" });
      this._clock = h("span", { "class": "sk-clock" });
      var save = money(offer.amount, offer.currency);
      var accept = h("button", { type: "button", "class": "sk-accept" }, [offer.discount_kind ===
        "free_shipping" ? this._t("applyFreeShipping") : this._t("apply", { amount: save })]);
      // The label starts as shown; a replaced "No thanks" without a replaced label has none.
      var ds = this._slot().dataset || {};
      var dismiss = h("button", { type: "button", "class": "sk-dismiss",
        "aria-label": ds.dismiss && !ds.dismissLabel ? null : this._t("dismissLabel") }, [this._t("dismiss")]);
      var endsIn = this._t("endsIn").split("{time}"); // the clock goes in place of {time}
      var self = this;
      accept.addEventListener("click", sk.guard(function () { self._accept(key, cart, offer, accept, dismiss); }));
      dismiss.addEventListener("click", sk.guard(function () { self._dismiss(key, cart, offer); }));
      this._offerEl = h("section", { "class": "sk-offer", "aria-labelledby": this._id }, [
        h("p", { "class": "sk-text" }, [
          h("span", { "class": "sk-reason", id: this._id }, [String(offer.reason || this._t("reason"))]),
          // The ticking clock is for the eyes; a screen reader reads the end time once.
          h("span", { "class": "sk-ends" }, [
            h("span", { "aria-hidden": "true" }, [endsIn[0], this._clock, endsIn.slice(1).join("")]),
            h("span", { "class": "sk-sr" }, [this._t("endsAt", { time: time })])])
        ]),
        accept, dismiss
      ]);
      return this._offerEl;
    }

    _shipping(fs, currency) {
      var threshold = Number(fs.threshold), left = Number(fs.remaining);
      var done = Math.max(0, Math.min(threshold, threshold - left));
      var text = fs.reached ? this._t("shippingReached")
        : this._t("shippingMore", { amount: money(left, currency) });
      var fill = h("div", { "class": "sk-fill" });
      fill.style.width = (threshold > 0 ? Math.round(100 * done / threshold) : 100) + "%";
      return h("div", { "class": "sk-ship" }, [
        h("p", { id: this._id + "-ship" }, [text]),
        h("div", { "class": "sk-bar", role: "progressbar", "aria-labelledby": this._id + "-ship",
          "aria-valuemin": "0", "aria-valuemax": String(threshold), "aria-valuenow": String(done),
          "aria-valuetext": text }, [fill])
      ]);
    }

    /** Update the visible countdown each second (each minute under prefers-reduced-motion);
     * at zero the offer is gone. */
    _tick(offer) {
      this._stop();
      this._offer = offer; // kept to restart the clock when the element is put back
      var self = this, until = new Date(offer.expires_at).getTime();
      var minutes = !!(w.matchMedia && w.matchMedia("(prefers-reduced-motion: reduce)").matches) &&
        this._t("minutes");
      function step() {
        var left = until - Date.now();
        if (left <= 0) {
          self._stop();
          self._removeOffer(self._t("expired"), "expired");
          return;
        }
        var text = clock(left, minutes);
        if (self._clock.textContent !== text) self._clock.textContent = text;
      }
      step();
      this._timer = w.setInterval(sk.guard(step), 1000);
    }

    _stop() { if (this._timer) { w.clearInterval(this._timer); this._timer = 0; } }

    /** Is keyboard focus on one of the offer's buttons? */
    _hasFocus() {
      var active = this.shadowRoot && this.shadowRoot.activeElement;
      return !!(active && this._offerEl && this._offerEl.contains(active));
    }

    /** Replace the offer with a message; focus on its buttons moves to the message. */
    _removeOffer(message, state, refocus) {
      refocus = refocus || this._hasFocus();
      if (this._offerEl) { this._offerEl.remove(); this._offerEl = null; }
      if (this._live) {
        this._live.textContent = message;
        if (refocus) this._live.focus();
      }
      this._state(state);
    }

    _accept(key, cart, offer, accept, dismiss) {
      var self = this, refocus = this._hasFocus(); // disabling the buttons drops focus
      accept.disabled = dismiss.disabled = true;
      sk.api.call("POST", "/offers/accept", key, null, { token: offer.token, cart: cart })
        .then(sk.guard(function (answer) {
          var res = answer.body;
          if ((!res || !res.code) && (answer.status <= 0 || answer.status === 429 ||
                                      answer.status >= 500)) {
            // no answer, busy or failed: the offer still stands (accepting it again gets
            // the same discount if this one was made), so it stays, ready to try again
            accept.disabled = dismiss.disabled = false;
            if (self._live) self._live.textContent = self._t("retry");
            if (refocus) accept.focus();
            return;
          }
          self._stop();
          if (!res || !res.code) {
            return self._removeOffer(self._t("unavailable"), "error", refocus);
          }
          var subtotal = cart.lines.reduce(function (n, l) { return n + l.quantity * +l.price; }, 0);
          var short = offer.min_subtotal !== null && offer.min_subtotal !== undefined &&
            subtotal + 0.005 < +offer.min_subtotal;
          self._removeOffer(self._t(short ? "appliesLater" : "applied",
            { code: res.code, amount: money(offer.min_subtotal, offer.currency) }), "accepted", refocus);
          self.dispatchEvent(new w.CustomEvent("shopkeeper:offer-accepted", {
            bubbles: true, composed: true,
            detail: {
              offer_id: res.offer_id, code: res.code, amount: offer.amount,
              currency: offer.currency, kind: offer.discount_kind,
              min_subtotal: offer.min_subtotal === undefined ? null : offer.min_subtotal,
              expires_at: res.expires_at, discount_token: res.discount_token
            }
          }));
        }));
    }

    _dismiss(key, cart, offer) {
      this._stop();
      this._removeOffer(this._t("dismissed"), "dismissed");
      sk.api.request("POST", "/offers/dismiss", key, null, { token: offer.token, cart: cart });
    }
  }

  w.customElements.define("shopkeeper-cart-offer", CartOffer);
})(window, document);
