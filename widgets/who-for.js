/*! Shopkeeper <shopkeeper-shopping-for>: "Who are you shopping for?" (issue 6).
 * Placeholder: <div data-shopkeeper="shopping-for" [data-key] [data-customer-token]></div>
 * After an add-to-cart or a purchase reported with Shopkeeper.track(...), it asks the API
 * whether this basket looks bought for someone else; if so it opens an accessible dialog:
 * me / an existing person / someone new (name or relationship, optional age band) / a
 * one-off gift, plus "don't ask again". When the shopper has people, it shows a
 * "Shopping for" switcher and a "Past orders" list to say who each recent order was for
 * (merchants can also call el.reassign({order_id}, subprofileId) from their own pages). Theme with --sk-* custom properties; text only via textContent.
 */
(function (w, d) {
  "use strict";
  var sk = w.Shopkeeper;
  if (!sk || !w.customElements || w.customElements.get("shopkeeper-shopping-for")) return;

  var CSS = [
    ":host{display:block;font-family:var(--sk-font,inherit);color:var(--sk-color,inherit)}",
    ":host([hidden]){display:none}",
    ".sk-bar{display:flex;align-items:center;gap:.5rem;flex-wrap:wrap;margin:var(--sk-margin,1rem 0)}",
    "select,input,button{font:inherit;border-radius:var(--sk-radius,.5rem)}",
    // A select is as wide as its longest option (a 40-character name): never wider than the line.
    "select,input{max-width:100%;padding:.35rem .5rem;border:1px solid var(--sk-border,#8a8a8a);",
    "background:var(--sk-card-bg,#fff);color:var(--sk-color,#1a1a1a)}",
    "button{cursor:pointer;padding:.45rem .8rem;border:1px solid var(--sk-border,#8a8a8a);",
    "background:var(--sk-card-bg,#fff);color:var(--sk-color,#1a1a1a)}",
    "button.sk-primary{border:0;background:var(--sk-accent,#1f4f46);color:var(--sk-accent-text,#fff)}",
    "dialog{border:1px solid var(--sk-border,#c8c8c8);border-radius:var(--sk-radius,.5rem);",
    "box-sizing:border-box;padding:1.25rem;max-width:26rem;width:calc(100% - 2rem);",
    "background:var(--sk-card-bg,#fff);color:var(--sk-color,#1a1a1a)}",
    "dialog::backdrop{background:rgba(0,0,0,.35)}",
    "h2{font-size:1.2rem;margin:0 0 .5rem}",
    "p{margin:0 0 .75rem;color:var(--sk-muted,#595959)}",
    "fieldset{border:0;margin:0 0 .75rem;padding:0;display:grid;gap:.4rem}",
    "legend{font-weight:600;margin-bottom:.4rem}",
    "label{display:flex;align-items:center;gap:.5rem}",
    ".sk-new{display:grid;gap:.5rem;margin:.25rem 0 .75rem 1.6rem}",
    ".sk-new[hidden]{display:none}",
    ".sk-new label{display:grid;gap:.2rem}",
    ".sk-actions{display:flex;justify-content:flex-end;gap:.5rem;margin-top:1rem}",
    ".sk-error{color:var(--sk-error,#a4161a);font-weight:600}",
    "details{margin:.25rem 0 1rem}summary{cursor:pointer}",
    ".sk-orders{list-style:none;margin:.5rem 0 0;padding:0;display:grid;gap:.5rem}",
    ".sk-orders li{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:.5rem}",
    ".sk-live{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}",
    ":focus-visible{outline:3px solid var(--sk-focus,#1a5fd0);outline-offset:2px}"
  ].join("");
  var sheet = null;
  try { sheet = new w.CSSStyleSheet(); sheet.replaceSync(CSS); } catch (e) { sheet = null; }

  var STRINGS = {
    who_for_title: "Who are you shopping for?",
    who_for_intro: "This looks different from what you usually buy. Telling us keeps your own recommendations about you.",
    who_for_me: "Me",
    who_for_new: "Someone new",
    who_for_gift: "A one-off gift",
    who_for_name: "Name or relationship",
    who_for_age: "Age (optional)",
    who_for_age_none: "Prefer not to say",
    who_for_never: "Don't ask me again",
    who_for_save: "Save",
    who_for_later: "Not now",
    who_for_switch: "Shopping for",
    who_for_saved: "Saved.",
    who_for_orders: "Past orders",
    who_for_order_for: "Who was the order of {date} for?",
    who_for_name_needed: "Please enter a name or relationship.",
    who_for_not_saved: "Sorry, that did not save. Please try again."
  };
  var BATCH_MS = 300; // purchase lines tracked one by one form one question

  function h(tag, attrs, kids) {
    var el = d.createElement(tag);
    for (var k in attrs || {}) {
      if (attrs[k] !== null && attrs[k] !== undefined && attrs[k] !== false) el.setAttribute(k, attrs[k]);
    }
    (kids || []).forEach(function (c) {
      if (c !== null && c !== undefined) el.appendChild(typeof c === "string" ? d.createTextNode(c) : c);
    });
    return el;
  }

  var uid = 0;
  var instances = [];

  /** Wrap Shopkeeper.track once: add-to-cart and purchase events reach every instance. */
  function hookTrack() {
    if (sk._whoForHooked) return;
    sk._whoForHooked = true;
    var original = sk.track;
    sk.track = function (type, props) {
      var result = original.apply(sk, arguments);
      if ((type === "add_to_cart" || type === "purchase") && props && props.product_id) {
        // One question per basket however many switchers the page shows: the first asks.
        var asker = instances.filter(function (el) { return el._on && el.isConnected; })[0];
        if (asker) sk.guard(asker._onEvent).call(asker, type, props);
      }
      return result;
    };
  }

  class ShoppingFor extends HTMLElement {
    connectedCallback() {
      // Re-inserted (a single-page route away and back): it keeps its state, as the
      // other widgets do; it only answers add-to-cart events again.
      if (this._started) {
        if (instances.indexOf(this) < 0) instances.push(this);
        return;
      }
      this._started = true;
      this._id = "sk-wf-" + (++uid);
      this._pending = [];
      instances.push(this);
      hookTrack();
      this.refresh(true);
    }

    /** Off the page it answers no events and is not held by ``instances``. */
    disconnectedCallback() {
      var i = instances.indexOf(this);
      if (i >= 0) instances.splice(i, 1);
    }

    _params() {
      var ds = (this.parentElement && this.parentElement.dataset) || {};
      var own = this.dataset;
      function pick(k) { return own[k] !== undefined ? own[k] : ds[k]; }
      return { key: pick("key") || "", token: pick("customerToken") || null };
    }

    _state(state) {
      if (this.parentElement) this.parentElement.setAttribute("data-shopkeeper-state", state);
    }

    _call(method, path, body, params) {
      return sk.api.request(method, "/subprofiles" + path, this._p.key, params || null, body || null);
    }

    /** Load the shop's config and the shopper's people; render the switcher if any. */
    refresh(force) {
      var p = this._params();
      if (p.token && !sk.customerToken) sk.customerToken = p.token;
      var sig = JSON.stringify(p) + "|" + (sk.customerToken || "");
      if (!force && sig === this._sig) return;
      this._sig = sig;
      this._p = p;
      var self = this;
      sk.api.config(p.key).then(sk.guard(function (cfg) {
        self._on = !!(cfg && cfg.widgets && cfg.widgets.shopping_for);
        if (!cfg) return self._failed(); // not "off": the shop did not say so
        if (!self._on) { self.hidden = true; return self._state("off"); }
        self._strings = Object.assign({}, STRINGS, (cfg && cfg.strings) || {});
        return self._load();
      }));
    }

    /** The API did not answer: hidden as "error", and the next build() asks again. */
    _failed() {
      this.hidden = true;
      this._sig = null;
      this._state("error");
    }

    _load() {
      var self = this;
      return this._call("GET", "").then(sk.guard(function (r) {
        if (!r) return self._failed();
        self._people = r.subprofiles || [];
        self._ages = r.age_bands || [];
        self._active = r.active_subprofile_id === undefined ? null : r.active_subprofile_id;
        self._renderBar();
      }));
    }

    _root() {
      var root = this.shadowRoot || this.attachShadow({ mode: "open" });
      if (sheet) root.adoptedStyleSheets = [sheet];
      return root;
    }

    /** "Shopping for: [Me | Maya]": only once the shopper has someone to shop for. */
    _renderBar() {
      if (!sheet) { this.hidden = true; return this._state("unsupported"); }
      var root = this._root(), s = this._strings, self = this;
      // One live region for the element's life: a replaced region announces nothing.
      var live = this._live || h("p", { "class": "sk-live", role: "status", "aria-live": "polite" });
      var children = [live];
      if (this._people.length) {
        var select = h("select", { id: this._id + "-switch", "class": "sk-switch" },
          [h("option", { value: "" }, [s.who_for_me])].concat(this._people.map(function (p) {
            return h("option", { value: String(p.id), selected: p.id === self._active ? "" : null }, [p.name]);
          })));
        select.addEventListener("change", sk.guard(function () {
          var id = select.value ? parseInt(select.value, 10) : null;
          self._call("POST", "/active", { subprofile_id: id }).then(sk.guard(function (r) {
            if (!r) return;
            self._active = r.active_subprofile_id;
            self._say(s.who_for_saved);
          }));
        }));
        children.push(h("div", { "class": "sk-bar" }, [
          h("label", { "for": this._id + "-switch" }, [s.who_for_switch]), select]));
        children.push(this._ordersPanel());
      }
      var dialog = this._dialog && this._dialog.open ? this._dialog : null;
      root.replaceChildren.apply(root, dialog ? children.concat([dialog]) : children);
      this._live = live;
      // Shown even with nothing else to show (it then takes no space): a live region inside a
      // hidden element announces nothing, and "Saved." follows answers from shoppers who
      // have nobody saved ("Me", a gift).
      this.hidden = false;
      this._state(this._people.length ? "ready" : "idle");
    }

    /** Announce text; cleared first so the same words ("Saved.") are announced again. */
    _say(text) {
      var live = this._live;
      if (!live) return;
      live.textContent = "";
      w.setTimeout(function () { live.textContent = text; }, 100);
    }

    /** "Past orders": say who each recent order was for (reassigns its purchases). */
    _ordersPanel() {
      var s = this._strings, self = this;
      var list = h("ul", { "class": "sk-orders" });
      var panel = h("details", { "class": "sk-past" }, [h("summary", {}, [s.who_for_orders]), list]);
      panel.addEventListener("toggle", sk.guard(function () {
        if (!panel.open || panel._loaded) return;
        panel._loaded = true;
        self._call("GET", "/orders").then(sk.guard(function (r) {
          list.replaceChildren.apply(list, ((r && r.orders) || []).map(function (o) {
            return self._orderRow(o);
          }));
        }));
      }));
      return panel;
    }

    _orderRow(order) {
      var s = this._strings, self = this;
      var date = new Date(order.at).toLocaleDateString(d.documentElement.lang || undefined);
      var titles = order.items.slice(0, 3).map(function (i) { return i.title; }).join(", ");
      if (order.items.length > 3) titles += " +" + (order.items.length - 3);
      var select = h("select", {
        "aria-label": s.who_for_order_for.replace("{date}", date), "data-order-id": order.order_id
      }, [h("option", { value: "" }, [s.who_for_me])].concat(this._people.map(function (p) {
        return h("option", { value: String(p.id), selected: p.id === order.subprofile_id ? "" : null }, [p.name]);
      }), order.gift ? [h("option", { value: String(order.subprofile_id), selected: "" }, [s.who_for_gift])] : []));
      select.addEventListener("change", sk.guard(function () {
        var id = select.value ? parseInt(select.value, 10) : null;
        self.reassign({ order_id: order.order_id }, id).then(sk.guard(function (r) {
          if (r) self._say(s.who_for_saved);
        }));
      }));
      return h("li", {}, [h("span", {}, [date + ": " + titles]), select]);
    }

    /** An add-to-cart asks about that product; purchase lines are batched into one basket. */
    _onEvent(type, props) {
      if (!this._on) return;
      var self = this;
      this._pending.push(String(props.product_id));
      this._orderId = props.order_id ? String(props.order_id) : this._orderId;
      w.clearTimeout(this._timer);
      this._timer = w.setTimeout(sk.guard(function () { self._ask(); }), type === "purchase" ? BATCH_MS : 0);
    }

    _ask() {
      var items = this._pending.splice(0), orderId = this._orderId, self = this;
      this._orderId = null;
      if (!items.length || (this._dialog && this._dialog.open)) return;
      var body = { product_ids: items };
      if (orderId) body.order_id = orderId;
      this._call("POST", "/prompt", body).then(sk.guard(function (r) {
        if (r && r.ask) self._open(items, orderId, r.suggested_subprofile_id);
      }));
    }

    /** The modal dialog (native <dialog>: focus moves in, Escape closes, focus returns). */
    _open(items, orderId, suggested) {
      var s = this._strings, self = this, name = "sk-who-" + this._id;
      var opener = d.activeElement;
      function radio(value, label, checked) {
        return h("label", {}, [h("input", { type: "radio", name: name, value: value, checked: checked ? "" : null }), label]);
      }
      var options = [radio("me", s.who_for_me, !suggested)];
      this._people.forEach(function (p) {
        options.push(radio("existing:" + p.id, p.name, p.id === suggested));
      });
      options.push(radio("new", s.who_for_new, false));
      var nameInput = h("input", { type: "text", name: "name", maxlength: "40", autocomplete: "off" });
      var age = h("select", { name: "age_band" }, [h("option", { value: "" }, [s.who_for_age_none])]
        .concat(this._ages.map(function (a) { return h("option", { value: a }, [a]); })));
      var error = h("p", { "class": "sk-error", role: "alert", hidden: "" });
      var more = h("div", { "class": "sk-new", hidden: "" }, [
        h("label", {}, [s.who_for_name, nameInput]),
        h("label", {}, [s.who_for_age, age])
      ]);
      options.push(more);
      options.push(radio("gift", s.who_for_gift, false));
      var never = h("input", { type: "checkbox", name: "never" });
      var save = h("button", { type: "submit", "class": "sk-primary", value: "save" }, [s.who_for_save]);
      var later = h("button", { type: "button", "class": "sk-later" }, [s.who_for_later]);
      var title = h("h2", { id: this._id + "-title" }, [s.who_for_title]);
      var form = h("form", { method: "dialog", novalidate: "" }, [
        title, h("p", { id: this._id + "-intro" }, [s.who_for_intro]),
        h("fieldset", {}, [h("legend", { "class": "sk-live" }, [s.who_for_title])].concat(options)),
        h("label", {}, [never, s.who_for_never]), error,
        h("div", { "class": "sk-actions" }, [later, save])
      ]);
      var dialog = h("dialog", {
        "class": "sk-dialog", "aria-labelledby": title.id, "aria-describedby": this._id + "-intro"
      }, [form]);
      form.addEventListener("change", sk.guard(function (e) {
        // Only a radio picked: a change of the name, age or checkbox must leave focus there.
        if (!e.target || e.target.name !== name) return;
        var picked = form.querySelector("input[name='" + name + "']:checked");
        more.hidden = !(picked && picked.value === "new");
        if (!more.hidden) nameInput.focus();
      }));
      var done = false;
      function close(choice) {
        if (done) return;
        done = true;
        if (dialog.open) dialog.close();
        dialog.remove();
        self._dialog = null;
        self._state(self._people.length ? "ready" : "idle");
        if (opener && opener.focus) { try { opener.focus(); } catch (e) { /* gone */ } }
        return choice;
      }
      form.addEventListener("submit", sk.guard(function (e) {
        e.preventDefault();
        var picked = form.querySelector("input[name='" + name + "']:checked");
        var value = picked ? picked.value : "me";
        var body = { choice: value, product_ids: items, dont_ask_again: never.checked };
        if (orderId) body.order_id = orderId;
        if (value.indexOf("existing:") === 0) {
          body.choice = "existing";
          body.subprofile_id = parseInt(value.slice(9), 10);
        } else if (value === "new") {
          var typed = nameInput.value.replace(/\s+/g, " ").trim();
          if (!typed) {
            error.textContent = s.who_for_name_needed;
            error.hidden = false;
            nameInput.setAttribute("aria-invalid", "true");
            nameInput.focus();
            return;
          }
          body.name = typed;
          if (age.value) body.age_band = age.value;
        }
        self._answer(body, close, function () { // not saved: the dialog and the typing stay
          error.textContent = s.who_for_not_saved;
          error.hidden = false;
        });
      }));
      function dismiss() {
        self._answer({ choice: "dismiss", product_ids: [], dont_ask_again: never.checked }, close);
      }
      later.addEventListener("click", sk.guard(dismiss));
      dialog.addEventListener("cancel", sk.guard(function () { // Escape: like "Not now"
        close("dismiss");
        dismiss();
      }));
      this._dialog = dialog;
      var root = this._root();
      root.appendChild(dialog);
      this.hidden = false;
      this._state("asking");
      if (dialog.showModal) dialog.showModal(); else dialog.setAttribute("open", "");
      var first = form.querySelector("input[name='" + name + "']:checked");
      if (first) first.focus();
    }

    /** Send the answer; ``failed`` (a Save) runs instead of closing when it did not save. */
    _answer(body, close, failed) {
      var self = this;
      this._call("POST", "/prompt/answer", body).then(sk.guard(function (r) {
        if (!r && failed) return failed();
        close(body.choice);
        instances.forEach(function (el) { // other switchers show a new person too
          if (el !== self && el._on) sk.guard(el._load).call(el);
        });
        return self._load().then(function () { // said once the bar is shown again
          if (r) self._say(self._strings.who_for_saved);
        });
      }));
    }

    /** For merchant pages listing past orders: move an order (or products) to a person. */
    reassign(selection, subprofileId) {
      var body = { subprofile_id: subprofileId === undefined ? null : subprofileId };
      if (selection && selection.order_id) body.order_id = String(selection.order_id);
      if (selection && selection.product_ids) body.product_ids = selection.product_ids.map(String);
      return this._call("POST", "/reassign", body);
    }
  }

  w.customElements.define("shopkeeper-shopping-for", ShoppingFor);
})(window, document);
