/*! Shopkeeper <shopkeeper-for-you>: a carousel of recommendations, each with its reason.
 * Placeholder attributes: data-key, data-placement (for_you|product|cart|reorder),
 * data-product-id, data-cart ("p1,p2"), data-n, data-title, data-customer-token,
 * data-add-to-cart (show buttons that fire the bubbling "shopkeeper:add-to-cart" event),
 * data-product-url ("/p/{id}" when the API has no url), data-prev-label, data-next-label,
 * data-slide-label ("{n} of {total}"). Theme with --sk-* custom properties.
 */
(function (w, d) {
  "use strict";
  var sk = w.Shopkeeper;
  if (!sk || !w.customElements || w.customElements.get("shopkeeper-for-you")) return;

  // What sits on the card background (white by default) gets a dark text colour by default:
  // inheriting a dark theme's light text onto it would be unreadable. Text on the host's
  // own background (the heading) inherits the host's colour.
  // Sizes that go with the text are in em (the text the widget inherits), not rem: a host
  // page's html{font-size:62.5%} reset would shrink them below the text and the buttons.
  var CSS = [
    ":host{display:block;font-family:var(--sk-font,inherit);color:var(--sk-color,inherit)}",
    ":host([hidden]){display:none}",
    ".sk{margin:var(--sk-margin,1.5rem 0)}",
    ".sk-head{display:flex;align-items:center;justify-content:space-between;gap:.5rem}",
    "h2{font-size:var(--sk-title-size,1.25em);margin:0 0 .75rem}",
    ".sk-nav{display:flex;gap:.4rem}",
    "button{font:inherit;cursor:pointer;border-radius:var(--sk-radius,.5rem)}",
    ".sk-nav button{width:1.875em;height:1.875em;border:1px solid var(--sk-border,#c8c8c8);",
    "background:var(--sk-card-bg,#fff);color:var(--sk-color,#1a1a1a);",
    "font-size:1.2em;line-height:1}",
    ".sk-nav button[aria-disabled=true]{opacity:.4;cursor:default}",
    ".sk-track{display:grid;grid-auto-flow:column;grid-auto-columns:var(--sk-card-width,11em);",
    "gap:var(--sk-gap,1rem);overflow-x:auto;scroll-snap-type:x mandatory;",
    "scroll-behavior:smooth;padding:4px 4px 8px;scroll-padding-inline:4px;scrollbar-width:thin}",
    ".sk-card{scroll-snap-align:start;display:flex;flex-direction:column;gap:.35rem;",
    "background:var(--sk-card-bg,#fff);color:var(--sk-color,#1a1a1a);",
    "border:1px solid var(--sk-border,#e2e2e2);",
    "border-radius:var(--sk-radius,.5rem);padding:.75rem;overflow-wrap:anywhere}", // SKU-like titles wrap
    ".sk-link{color:inherit;text-decoration:none;display:flex;flex-direction:column;gap:.5rem;",
    "border-radius:calc(var(--sk-radius,.5rem) * .75)}",
    ".sk-link:hover .sk-title{text-decoration:underline}",
    ".sk-img{aspect-ratio:1;display:grid;place-items:center;overflow:hidden;",
    "border-radius:calc(var(--sk-radius,.5rem) * .75);background:var(--sk-img-bg,#f1ede6)}",
    ".sk-img img{width:100%;height:100%;object-fit:cover}",
    // The initials sit on a fixed light tint, not on the card: --sk-muted, which a dark theme
    // makes light, would leave them unreadable (1.5:1).
    ".sk-ph{font-size:1.6rem;font-weight:700;color:var(--sk-img-text,#595959)}",
    ".sk-t1{background:#d6e4d3}.sk-t2{background:#d9dff0}.sk-t3{background:#f2e3b3}",
    ".sk-t4{background:#e9d2dc}.sk-t5{background:#cfe6e6}",
    ".sk-title{font-weight:600;line-height:1.3}",
    ".sk-price{font-weight:600}",
    ".sk-reason{margin:0;font-size:.85em;color:var(--sk-muted,#595959)}",
    ".sk-add{margin-top:auto;padding:.45rem .6rem;border:0;",
    "background:var(--sk-accent,#1f4f46);color:var(--sk-accent-text,#fff)}",
    ":focus-visible{outline:3px solid var(--sk-focus,#1a5fd0);outline-offset:2px}",
    "@media (prefers-reduced-motion:reduce){.sk-track{scroll-behavior:auto}",
    "*{transition:none!important;animation:none!important}}"
  ].join("");
  var sheet = null;
  try { sheet = new w.CSSStyleSheet(); sheet.replaceSync(CSS); } catch (e) { sheet = null; }

  var TITLES = {
    for_you: "Recommended for you", product: "You may also like",
    cart: "Goes well with your basket", reorder: "Time to stock up again?"
  };

  /** Tiny element builder: text goes through textContent, so API data is never parsed as HTML. */
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

  /** Only http(s) or relative URLs reach href/src (no javascript: or data: from the API). */
  function safeUrl(u) {
    if (!u) return null;
    try {
      var p = new URL(u, d.baseURI);
      return p.protocol === "http:" || p.protocol === "https:" ? p.href : null;
    } catch (e) { return null; }
  }

  function money(price, currency) {
    var n = Number(price);
    if (price === null || price === undefined || price === "" || isNaN(n)) return "";
    try {
      return new Intl.NumberFormat(d.documentElement.lang || undefined,
        { style: "currency", currency: currency }).format(n);
    } catch (e) { return String(price) + (currency ? " " + currency : ""); }
  }

  /** A stable placeholder tint per product when the API has no image. */
  function tint(id) {
    var n = 0;
    for (var i = 0; i < String(id).length; i++) n = (n * 31 + String(id).charCodeAt(i)) % 997;
    return n % 6;
  }

  /** An item the carousel can show: an object with a product id (junk is skipped). */
  function product(it) {
    return !!it && typeof it === "object" && !Array.isArray(it) &&
      (typeof it.product_id === "string" || typeof it.product_id === "number") && it.product_id !== "";
  }

  function reducedMotion() {
    return !!(w.matchMedia && w.matchMedia("(prefers-reduced-motion: reduce)").matches);
  }

  var uid = 0;

  class ForYou extends HTMLElement {
    connectedCallback() {
      if (this._onResize) w.addEventListener("resize", this._onResize, { passive: true }); // moved
      if (this._started) {
        // Moved (keyed list, portal) before it was seen: watch its new place.
        if (this._io && !this._visible) this._io.observe(this.parentElement || this);
        return;
      }
      this._started = true;
      this._id = "sk-fy-" + (++uid);
      sk.guard(this._observe).call(this);
    }

    disconnectedCallback() {
      if (this._io) this._io.disconnect();
      if (this._onResize) w.removeEventListener("resize", this._onResize);
    }

    /** Placeholder data-* (the div the merchant wrote) with the element's own as fallback. */
    _params() {
      var ds = (this.parentElement && this.parentElement.dataset) || {};
      var own = this.dataset;
      function pick(k) { return own[k] !== undefined ? own[k] : ds[k]; }
      return {
        key: pick("key") || "", placement: pick("placement") || "for_you",
        product_id: pick("productId") || null, cart: pick("cart") || null,
        n: Math.min(parseInt(pick("n"), 10) || 8, 24), title: pick("title") || "",
        token: pick("customerToken") || null,
        addToCart: pick("addToCart") === undefined ? null : pick("addToCart"),
        productUrl: pick("productUrl") || "",
        prev: pick("prevLabel") || "Previous products", next: pick("nextLabel") || "Next products",
        slide: pick("slideLabel") || "{n} of {total}"
      };
    }

    /** Lazy: fetch nothing until the placeholder is (nearly) scrolled into view. */
    _observe() {
      var self = this, target = this.parentElement || this;
      if (!w.IntersectionObserver) return this.refresh(true);
      this._io = new w.IntersectionObserver(function (entries) {
        if (entries.some(function (e) { return e.isIntersecting; })) {
          self._io.disconnect();
          self._visible = true;
          self.refresh(true);
        }
      }, { rootMargin: "200px" });
      this._io.observe(target);
    }

    /** (Re)load when visible and the placeholder's parameters or the shopper changed. */
    refresh(force) {
      if (!this._visible && this._io) return;
      var p = this._params();
      if (p.token && !sk.customerToken) sk.customerToken = p.token; // ignored after identify()
      var sig = JSON.stringify(p) + "|" + (sk.customerToken || "");
      if (!force && sig === this._sig) return;
      this._sig = sig;
      var self = this, seq = (this._seq = (this._seq || 0) + 1);
      sk.api.config(p.key).then(function (cfg) {
        if (cfg && !(cfg.widgets && cfg.widgets.for_you)) return "off";
        if (!cfg) return null;
        return sk.api.recommendations(p.key, {
          placement: p.placement, n: p.n, product_id: p.product_id, cart: p.cart
        }).then(function (r) { return r && { cfg: cfg, recs: r }; });
      }).then(sk.guard(function (res) {
        if (seq !== self._seq) return; // a newer refresh won
        if (res === "off") return self._hide("off");
        var items = res ? res.recs.items.filter(product) : [];
        if (res && !res.recs.items.length) return self._hide("empty");
        try {
          if (items.length) return self._render(p, res.cfg, res.recs, items);
        } catch (e) { sk.log("shopkeeper: cannot render", e); }
        self._sig = null; // failed or malformed: the next build() or identify() asks again
        self._hide("error");
      }));
    }

    _hide(state) {
      var had = this.shadowRoot && this.shadowRoot.activeElement;
      this.hidden = true;
      if (had) sk.focusSlot(this);
      if (this.parentElement) this.parentElement.setAttribute("data-shopkeeper-state", state);
    }

    _render(p, cfg, recs, items) {
      var root = this.shadowRoot || this.attachShadow({ mode: "open" });
      if (!sheet) return this._hide("unsupported");
      root.adoptedStyleSheets = [sheet];
      var strings = cfg.strings || {};
      var title = p.title || strings[p.placement + "_title"] || TITLES[p.placement] || TITLES.for_you;
      var total = items.length, self = this;
      var cards = items.map(function (it, i) { return self._card(p, cfg, it, i, total); });
      var track = h("div", { "class": "sk-track", "aria-live": "off", tabindex: "-1" }, cards);
      var prev = h("button", {
        type: "button", "class": "sk-prev", "aria-label": p.prev, "aria-disabled": "true"
      }, ["\u2039"]);
      var next = h("button", { type: "button", "class": "sk-next", "aria-label": p.next }, ["\u203a"]);
      var section = h("section", {
        "class": "sk", "aria-roledescription": "carousel", "aria-labelledby": this._id
      }, [
        h("div", { "class": "sk-head" }, [
          h("h2", { id: this._id }, [title]),
          h("div", { "class": "sk-nav" }, [prev, next])
        ]),
        track
      ]);
      var had = root.activeElement; // a re-render (cart changed, log in) under keyboard focus
      root.replaceChildren(section);
      this._wire(track, prev, next, items);
      this.hidden = false;
      if (had) { // ...keeps it on the same control, at the same place in the new list
        var at = Math.min(+had.getAttribute("data-i") || 0, total - 1);
        var same = "." + had.classList[0] + (had.hasAttribute("data-i") ? "[data-i='" + at + "']" : "");
        (root.querySelector(same) || track).focus();
      }
      if (this.parentElement) this.parentElement.setAttribute("data-shopkeeper-state", "ready");
      this.setAttribute("data-personalized", recs.personalized ? "true" : "false");
    }

    _card(p, cfg, it, i, total) {
      var title = String(it.title || it.product_id);
      var href = safeUrl(it.url) ||
        (p.productUrl ? safeUrl(p.productUrl.replace("{id}", encodeURIComponent(it.product_id))) : null);
      var img = safeUrl(it.image_url), tinted = "sk-img sk-t" + tint(it.product_id);
      function initials() {
        return h("span", { "class": "sk-ph", "aria-hidden": "true" }, [title.replace(/[^A-Za-z0-9 ]/g, "")
          .split(/\s+/).filter(Boolean).slice(0, 2).map(function (s) { return s[0]; }).join("").toUpperCase()]);
      }
      var pic = img ? h("img", { src: img, alt: "", loading: "lazy", decoding: "async" }) : initials();
      var why = it.reason ? this._id + "-why-" + i : null; // read out when the link is focused
      var link = h(href ? "a" : "span", { // no page: text, not a focusable dead end
        "class": "sk-link", href: href, "data-i": String(i), "aria-describedby": why
      }, [h("span", { "class": img ? "sk-img" : tinted }, [pic]),
        h("span", { "class": "sk-title" }, [title])]);
      if (img) pic.addEventListener("error", sk.guard(function () { // gone (404): as if it had none
        pic.parentNode.className = tinted;
        pic.replaceWith(initials());
      }));
      var kids = [link, h("span", { "class": "sk-price" }, [money(it.price, it.currency || cfg.currency)])];
      if (it.reason) kids.push(h("p", { "class": "sk-reason", id: why }, [String(it.reason)]));
      if (p.addToCart !== null) { // present, even empty, means "show the button"
        var label = p.addToCart || (cfg.strings || {}).add_to_cart || "Add to cart";
        kids.push(h("button", {
          type: "button", "class": "sk-add", "data-i": String(i), "aria-label": label + ": " + title
        }, [label]));
      }
      return h("div", {
        "class": "sk-card", role: "group", "aria-roledescription": "slide",
        "aria-label": p.slide.replace("{n}", i + 1).replace("{total}", total)
      }, kids);
    }

    _wire(track, prev, next, items) {
      var self = this;
      function behavior() { return reducedMotion() ? "auto" : "smooth"; }
      // aria-disabled, not disabled: a disabled button drops keyboard focus to the page.
      function edges() {
        prev.setAttribute("aria-disabled", String(track.scrollLeft <= 1));
        next.setAttribute("aria-disabled",
          String(track.scrollLeft + track.clientWidth >= track.scrollWidth - 1));
      }
      function pager(button, sign) {
        button.addEventListener("click", function () {
          if (button.getAttribute("aria-disabled") === "true") return;
          track.scrollBy({ left: sign * track.clientWidth, behavior: behavior() });
        });
      }
      pager(prev, -1);
      pager(next, 1);
      track.addEventListener("scroll", edges, { passive: true });
      // One listener per element: a re-render replaces the last one (and its old DOM).
      if (this._onResize) w.removeEventListener("resize", this._onResize);
      this._onResize = edges;
      w.addEventListener("resize", edges, { passive: true });
      w.requestAnimationFrame(edges); // after the host is shown and laid out

      // Arrow keys, Home and End move focus between products (Tab still walks every control):
      // to each card's link, or its button when the product has no page.
      var STOP = "a.sk-link,.sk-add";
      track.addEventListener("keydown", sk.guard(function (e) {
        var links = Array.prototype.map.call(track.querySelectorAll(".sk-card"), function (c) {
          return c.querySelector(STOP);
        }).filter(Boolean);
        var active = self.shadowRoot.activeElement;
        var card = active && active.closest(".sk-card");
        var at = card ? links.indexOf(card.querySelector(STOP)) : -1;
        var to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: links.length - 1 }[e.key];
        if (to === undefined || at < 0 || !links[to]) return;
        e.preventDefault();
        links[to].focus({ preventScroll: true });
        links[to].scrollIntoView({ block: "nearest", inline: "nearest", behavior: behavior() });
      }));

      track.addEventListener("click", sk.guard(function (e) {
        var add = e.target.closest(".sk-add"), link = e.target.closest(".sk-link");
        var el = add || link;
        if (!el) return;
        var it = items[+el.getAttribute("data-i")];
        if (!it) return;
        if (it.rec_id) sk.api.remember(it.product_id, it.rec_id);
        if (add) {
          sk.track("add_to_cart", { product_id: it.product_id, rec_id: it.rec_id, quantity: 1 });
          self.dispatchEvent(new w.CustomEvent("shopkeeper:add-to-cart", {
            bubbles: true, composed: true,
            detail: { product_id: it.product_id, rec_id: it.rec_id, title: it.title, price: it.price }
          }));
          sk.api.flush();
        } else {
          sk.track("click", { product_id: it.product_id, rec_id: it.rec_id });
          sk.api.flush(); // the page is probably navigating away: send now, keepalive
        }
      }));
    }
  }

  w.customElements.define("shopkeeper-for-you", ForYou);
})(window, document);
