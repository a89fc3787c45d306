/*! Shopkeeper widget loader (Apache-2.0). Embed once, async:
 *  <script async src="https://SHOPKEEPER/widgets/loader.js" data-key="pk_..."></script>
 *  <div data-shopkeeper="for-you"><noscript>…</noscript></div>
 * It finds placeholders, loads only the widget modules they need (versioned, cacheable URLs)
 * and exposes window.Shopkeeper. Every step is guarded: a failure hides a widget, never the page.
 */
(function (w, d) {
  "use strict";
  var prior = w.Shopkeeper;
  if (prior && prior.version) return; // loaded twice: keep the first instance

  // Replaced by the server with a content hash (plugin/demo.py); left as is on static hosting.
  var VERSION = "__SK_VERSION__";
  var MODULES = {
    "for-you": "for-you", "shopping-for": "who-for", "cart-offer": "cart-offer"
  };
  var script = d.currentScript || d.querySelector("script[src*='loader.js']");
  var src = (script && script.src) || "";
  var base = src.replace(/[?#].*$/, "").replace(/[^/]*$/, "");
  var origin = src ? new URL(src, d.baseURI).origin : "";
  var dataset = (script && script.dataset) || {};

  var sk = {
    version: VERSION,
    settings: {
      key: dataset.key || "",
      api: (dataset.api || origin + "/api/v1").replace(/\/$/, ""),
      timeout: +dataset.timeout || 3000,
      debug: "debug" in dataset
    },
    queue: [],         // events waiting for api.js to batch them
    modules: {},       // name -> true once the module's script ran
    elements: [],
    build: build,
    identify: identify,
    track: track,
    consent: function (granted) {
      load("api");
      ready(function () { sk.api.consent(!!granted); });
    },
    /** Snippet-style calls that work before and after the loader ran:
     * (window.Shopkeeper = window.Shopkeeper || []).push(["track", "view", {...}]) */
    push: function (call) {
      if (call && typeof sk[call[0]] === "function" && call[0] !== "push") {
        guard(sk[call[0]]).apply(sk, call.slice(1));
      }
    }
  };
  w.Shopkeeper = sk;

  // The customer token: a placeholder's data-customer-token may seed it, but once the
  // storefront called identify() (log in or out) only identify() changes it.
  var token = dataset.customerToken || null, identified = false;
  Object.defineProperty(sk, "customerToken", {
    get: function () { return token; },
    set: function (value) { if (!identified) token = value || null; }
  });

  /** Debug-only logging: a broken widget must never add errors to the host's console. */
  sk.log = function () {
    if (sk.settings.debug && w.console) w.console.debug.apply(w.console, arguments);
  };

  /** Run fn now, or once api.js is there; exceptions are swallowed (logged in debug mode). */
  var waiting = [];
  function ready(fn) {
    if (sk.api) guard(fn)(); else waiting.push(fn);
  }
  sk._apiReady = function () {
    var list = waiting; waiting = [];
    for (var i = 0; i < list.length; i++) guard(list[i])();
  };

  function guard(fn) {
    return function () {
      try { return fn.apply(this, arguments); } catch (e) { sk.log("shopkeeper", e); }
    };
  }
  sk.guard = guard;

  /** Focus a widget's placeholder: a hidden widget cannot keep keyboard focus, and dropped
   * it would fall to the top of the page. tabindex=-1 while it has focus (Tab goes on from
   * here); a tabindex the merchant set is kept. */
  sk.focusSlot = function (widget) {
    var slot = widget.parentElement;
    if (!slot) return;
    if (!slot.hasAttribute("tabindex")) {
      slot.setAttribute("tabindex", "-1");
      slot.addEventListener("blur", function () { slot.removeAttribute("tabindex"); }, { once: true });
    }
    slot.focus({ preventScroll: true });
  };

  /** Where a module lives: a versioned, immutable URL when the server stamped VERSION. */
  function moduleUrl(name) {
    return VERSION.charAt(0) === "_" ? base + name + ".js" : base + "v/" + VERSION + "/" + name + ".js";
  }

  /** Pages enforcing Trusted Types (require-trusted-types-for 'script') refuse a plain
   * string as a script's src: the "shopkeeper" policy passes this loader's modules only. */
  var policy;
  function scriptUrl(url) {
    if (policy === undefined) {
      policy = null;
      try {
        if (w.trustedTypes && w.trustedTypes.createPolicy) {
          policy = w.trustedTypes.createPolicy("shopkeeper", {
            createScriptURL: function (u) {
              if (u.indexOf(base) === 0 && /^(v\/\w+\/)?[a-z-]+\.js$/.test(u.slice(base.length))) return u;
              throw new TypeError("shopkeeper: not a widget module: " + u);
            }
          });
        }
      } catch (e) { sk.log("shopkeeper: no Trusted Types policy", e); }
    }
    return policy ? policy.createScriptURL(url) : url;
  }

  var requested = {};
  function load(name) {
    if (requested[name]) return;
    requested[name] = true;
    var s = d.createElement("script");
    try { s.src = scriptUrl(moduleUrl(name)); } catch (e) { sk.log("shopkeeper:", e); return broken(name); }
    s.async = false; // download in parallel, execute in order (api.js before widgets)
    s.onerror = function () { sk.log("shopkeeper: cannot load", name); broken(name); };
    // A module that hangs (slow CDN) must not keep its slots pending (and reserved) for
    // minutes: they are marked error meanwhile; a late module still renders them.
    var late = w.setTimeout(function () { broken(name); }, Math.max(3 * sk.settings.timeout, 5000));
    s.onload = function () { w.clearTimeout(late); delete failed[name]; };
    (d.head || d.documentElement).appendChild(s);
  }

  /** Find placeholders (again, for single-page storefronts) and mount or refresh widgets. */
  function build(root) { place(root, false); }

  /** Mount placeholders under root; with onlyNew, leave those whose widget is already
   * mounted alone (the page observer must not refresh or re-render them). */
  function place(root, onlyNew) {
    prune();
    root = root && root.querySelectorAll ? root : d;
    var nodes = root.querySelectorAll("[data-shopkeeper]");
    var needed = [];
    for (var i = 0; i < nodes.length; i++) {
      var kind = nodes[i].getAttribute("data-shopkeeper");
      var file = MODULES[kind];
      if (!file || !w.customElements || !nodes[i].attachShadow) continue;
      if (onlyNew && sk.elements.indexOf(nodes[i].querySelector("shopkeeper-" + kind)) >= 0) continue;
      needed.push(file);
      mount(nodes[i], kind);
    }
    if (needed.length) load("api");
    for (var j = 0; j < needed.length; j++) load(needed[j]);
  }

  /** A module that cannot load (blocked, offline): its placeholders stop waiting. */
  var failed = {};
  function broken(name) {
    failed[name] = true;
    for (var i = 0; i < sk.elements.length; i++) {
      var el = sk.elements[i], file = MODULES[el.localName.slice(11)];
      if ((name === "api" || file === name) && el.parentElement) {
        el.parentElement.setAttribute("data-shopkeeper-state", "error");
      }
    }
  }

  function mount(node, kind) {
    var tag = "shopkeeper-" + kind;
    var el = node.querySelector(tag);
    if (!el) {
      el = d.createElement(tag);
      el.hidden = true; // shown by the widget only once it has something to show
      // "pending" until the widget answers, so the storefront can reserve its space.
      node.setAttribute("data-shopkeeper-state",
        failed.api || failed[MODULES[kind]] ? "error" : "pending");
      node.appendChild(el);
      sk.elements.push(el);
    } else {
      if (sk.elements.indexOf(el) < 0) sk.elements.push(el); // back on the page
      if (typeof el.refresh === "function") el.refresh(); // data-* changed (cart, product, token)
    }
  }

  /** Forget widgets a single-page storefront removed: they are neither refreshed nor kept. */
  function prune() {
    for (var i = sk.elements.length - 1; i >= 0; i--) {
      if (!sk.elements[i].isConnected) sk.elements.splice(i, 1);
    }
  }

  /** Single-page storefronts insert placeholders after load (client-side routes): one
   * MutationObserver mounts them. Mutations are coalesced into one scan per burst, and the
   * scan only mounts new or re-inserted placeholders; removed ones are pruned. */
  var OBSERVE_DELAY = 50, scan = null, observer = null;
  function observe() {
    if (!w.MutationObserver || observer) return;
    observer = new w.MutationObserver(guard(function (records) {
      if (scan !== null || !records.some(relevant)) return;
      scan = w.setTimeout(guard(function () { scan = null; place(d, true); }), OBSERVE_DELAY);
    }));
    observer.observe(d.documentElement, {
      childList: true, subtree: true, attributes: true, attributeFilter: ["data-shopkeeper"]
    });
  }

  /** A record that adds or removes a placeholder (busy pages mutate all the time). */
  function relevant(r) {
    if (r.type === "attributes") return true;
    return [r.addedNodes, r.removedNodes].some(function (list) {
      for (var i = 0; i < list.length; i++) {
        var n = list[i];
        if (n.nodeType === 1 && (n.hasAttribute("data-shopkeeper") ||
            n.querySelector("[data-shopkeeper]"))) return true;
      }
      return false;
    });
  }

  /** Log in a customer whose storefront backend minted a signed token (null logs out). */
  function identify(customerToken) {
    identified = true;
    token = customerToken || null;
    prune();
    for (var i = 0; i < sk.elements.length; i++) {
      if (sk.elements[i].refresh) guard(function (el) { el.refresh(true); })(sk.elements[i]);
    }
  }

  /** Record a shopper event: track("add_to_cart", {product_id: "p1", quantity: 1}). */
  function track(type, props) {
    var e = { type: String(type), at: new Date().toISOString() };
    props = props || {};
    for (var k in props) if (Object.prototype.hasOwnProperty.call(props, k)) e[k] = props[k];
    sk.queue.push(e);
    load("api");
    ready(function () { sk.api.schedule(); });
  }

  // Replay calls queued by a snippet that ran before us: window.Shopkeeper = [["track", ...]].
  if (prior && prior.length) {
    for (var i = 0; i < prior.length; i++) sk.push(prior[i]);
  }

  guard(function () {
    // Cached, the async loader can run before the DOM is parsed: build once it is.
    var first = guard(function () { build(); observe(); });
    if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", first);
    else first();
  })();
})(window, document);
