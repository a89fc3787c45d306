/*! Shopkeeper api.js: talks to /api/v1 for every widget. Never throws, never rejects:
 * a failed, slow (timeout) or refused call resolves to null and the caller hides itself.
 * Through Shopify's app proxy (a relative data-api) only what Shopify documents it forwards
 * is used: the method of a GET or POST, the query and the body (+ Content-Type); the
 * shopper id goes in the query, and other methods as POST ?_method=.
 */
(function (w) {
  "use strict";
  var sk = w.Shopkeeper;
  if (!sk || sk.api) return;
  var S = sk.settings;
  var STORE = "shopkeeper:shopper";
  var RECS = "shopkeeper:recs";
  var ATTRIBUTION_MS = 30 * 60 * 1000; // an add-to-cart within 30 min of a click is attributed
  var BATCH = 50;                       // the API's maximum events per request
  var MAX_RETRIES = 3;                  // event posts retried after a 5xx or refused connection
  var RETRY_MS = 2000;                  // ...after 2, 4, 8 s
  var MAX_QUEUE = 500;                  // events kept while the API is unreachable

  function storage(kind) {
    try { return w[kind] || null; } catch (e) { return null; } // disabled storage throws
  }

  // When the shop requires consent, the id stays in memory and is neither stored nor sent
  // until the shopper agrees. A stored id means they did (or the shop does not ask).
  var stored = false, consentRequired = null; // null: no /config answer yet

  /** anon_ + 22 url-safe characters (16 random bytes), kept in localStorage when allowed. */
  function shopperId() {
    var ls = storage("localStorage"), id = null;
    try { id = ls && ls.getItem(STORE); } catch (e) { id = null; }
    if (id && /^anon_[A-Za-z0-9_-]{22}$/.test(id)) { stored = true; return id; }
    var bytes = new Uint8Array(16);
    try { w.crypto.getRandomValues(bytes); } catch (e) {
      for (var i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    }
    return "anon_" + w.btoa(String.fromCharCode.apply(null, bytes))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  var shopper = shopperId();

  /** May the anonymous id be stored and sent (and events recorded)? */
  function allowed() { return stored || consentRequired === false; }

  function keep(yes) {
    var ls = storage("localStorage");
    stored = yes;
    try {
      if (yes) ls.setItem(STORE, shopper);
      else { ls.removeItem(STORE); storage("sessionStorage").removeItem(RECS); }
    } catch (e) { /* private mode: per-page id */ }
  }

  /** The shop's public key: the script tag's data-key, else the first placeholder's. */
  function shopKey() {
    if (S.key) return S.key;
    var el = w.document.querySelector("[data-shopkeeper][data-key]");
    return el ? el.getAttribute("data-key") : "";
  }

  // data-api "/apps/shopkeeper": Shopify's app proxy, which documents forwarding the method,
  // query and body but strips headers it does not name (shopify.dev, "Authenticate app
  // proxies"): no X-Shopkeeper-* header would arrive.
  var PROXY = /^\/(?!\/)/.test(S.api);
  var PROXY_METHODS = { GET: 1, POST: 1 };

  function url(path, key, params) {
    // data-api may be relative, e.g. "/apps/shopkeeper" (a Shopify app proxy: same origin)
    var u = new URL(S.api + path, w.location.href);
    u.searchParams.set("key", key);
    for (var k in params || {}) {
      var v = params[k];
      if (v !== null && v !== undefined && v !== "") u.searchParams.set(k, String(v));
    }
    return u.toString();
  }

  /** Through the app proxy the shopper id rides in the query (the customer is Shopify's). */
  function identified(params, identify) {
    if (!PROXY || !(identify || allowed())) return params;
    var p = { shopper: shopper };
    for (var k in params || {}) p[k] = params[k];
    return p;
  }

  function headers(json, identify) {
    var h = {};
    if (PROXY) return json ? { "Content-Type": "application/json" } : h;
    if (identify || allowed()) h["X-Shopkeeper-Shopper"] = shopper;
    if (sk.customerToken) h["X-Shopkeeper-Customer-Token"] = sk.customerToken;
    if (json) h["Content-Type"] = "application/json";
    return h;
  }

  var pausedUntil = 0; // set from Retry-After on a 429

  /** Seconds from a Retry-After header: delay-seconds or an HTTP date (RFC 9110). */
  function retryAfter(value) {
    var secs = parseInt(value, 10);
    if (!isNaN(secs) && /^\s*\d+\s*$/.test(value || "")) return secs;
    var at = Date.parse(value || "");
    return isNaN(at) ? 30 : Math.max(0, Math.ceil((at - Date.now()) / 1000));
  }

  /** fetch with a timeout; resolves to ``{status, body}``: status 0 when nothing came back
   * (``timedOut`` tells our own timeout from a refused connection), body null unless a
   * 2xx JSON object. */
  function call(method, path, key, params, body, identify) {
    key = key || shopKey();
    if (!key || !w.fetch || Date.now() < pausedUntil) {
      return Promise.resolve({ status: -1, body: null, timedOut: false });
    }
    var ctl = w.AbortController ? new w.AbortController() : null;
    var timedOut = false;
    var timer = ctl ? w.setTimeout(function () { timedOut = true; ctl.abort(); }, S.timeout) : 0;
    params = identified(params, identify);
    if (PROXY && !PROXY_METHODS[method]) { // PATCH, DELETE, PUT: POST ?_method=
      var override = { _method: method };
      for (var k in params || {}) override[k] = params[k];
      params = override;
      method = "POST";
    }
    // Through the app proxy the storefront's own session cookie must go (same origin):
    // Shopify names the signed-in customer from it, and strips it before forwarding.
    var init = {
      method: method, headers: headers(!!body, identify), mode: "cors",
      credentials: PROXY ? "same-origin" : "omit",
      signal: ctl ? ctl.signal : undefined
    };
    if (body) { init.body = JSON.stringify(body); init.keepalive = true; }
    var p, status = 0;
    try { p = w.fetch(url(path, key, params), init); } catch (e) { p = Promise.reject(e); }
    return p.then(function (r) {
      status = r.status;
      if (r.status === 429) pausedUntil = Date.now() + 1000 * retryAfter(r.headers.get("Retry-After"));
      return r.ok ? r.json() : null;
    }).catch(function (e) {
      sk.log("shopkeeper: request failed", path, e);
      return null;
    }).then(function (v) {
      w.clearTimeout(timer);
      return { status: status, body: v && typeof v === "object" ? v : null, timedOut: timedOut };
    });
  }

  /** ``call`` for callers that only need the answer: the JSON body, or null on any failure. */
  function request(method, path, key, params, body, identify) {
    return call(method, path, key, params, body, identify).then(function (r) { return r.body; });
  }

  var configs = {};
  /** GET /config once per key and page (until it succeeds). */
  function config(key) {
    key = key || shopKey();
    if (!configs[key]) {
      configs[key] = request("GET", "/config", key).then(function (cfg) {
        if (cfg) {
          consentRequired = !!cfg.consent_required;
          if (!consentRequired && !stored) keep(true);
        } else {
          delete configs[key]; // a failure (timeout, 5xx, 429) is asked again next time
        }
        return cfg;
      });
    }
    return configs[key];
  }

  function recommendations(key, params) {
    return request("GET", "/recommendations", key, params).then(function (r) {
      return r && Array.isArray(r.items) ? r : null;
    });
  }

  // --- click attribution: remember which recommendation led to a product -------------
  function recs() {
    try { return JSON.parse(storage("sessionStorage").getItem(RECS)) || {}; } catch (e) { return {}; }
  }
  function remember(productId, recId) {
    if (!allowed()) return;
    var all = recs(), now = Date.now();
    all[productId] = { rec_id: recId, t: now };
    for (var k in all) if (now - all[k].t > ATTRIBUTION_MS) delete all[k];
    try { storage("sessionStorage").setItem(RECS, JSON.stringify(all)); } catch (e) { /* ok */ }
  }
  function attribute(e) {
    if (e.rec_id || !e.product_id || e.type === "click") return e;
    var hit = recs()[e.product_id];
    if (hit && Date.now() - hit.t <= ATTRIBUTION_MS) e.rec_id = hit.rec_id;
    return e;
  }

  // --- event batching ------------------------------------------------------------------
  var timer = 0;
  function schedule() {
    if (sk.queue.length >= BATCH) return flush();
    if (!timer) timer = w.setTimeout(flush, 1500);
  }

  // Browsers that ignore fetch's keepalive (e.g. Firefox before 133) drop a fetch started
  // while the page unloads; for them the unload flush goes out as a beacon.
  var KEEPALIVE = (function () {
    try { return "keepalive" in new w.Request(w.location.href); } catch (e) { return false; }
  })();

  /** Send queued events in batches of 50 with fetch keepalive: it survives navigation like
   * a beacon and, unlike a beacon, carries the X-Shopkeeper-* identity headers. */
  function flush(e) {
    w.clearTimeout(timer);
    timer = 0;
    var key = shopKey();
    if (!key || Date.now() < pausedUntil) return;
    if (!allowed()) {
      // Without consent the events are dropped (the API would not store them either);
      // before the shop's /config is known, wait for it.
      if (consentRequired) sk.queue.length = 0;
      else config(key).then(function (cfg) { if (cfg && sk.queue.length) schedule(); });
      return;
    }
    var unloading = !!(e && (e.type === "pagehide" || e.type === "visibilitychange"));
    while (sk.queue.length) {
      var batch = sk.queue.splice(0, BATCH).map(attribute);
      if (w.fetch && (KEEPALIVE || !unloading)) post(key, batch); else beacon(key, batch);
    }
  }

  var failures = 0; // consecutive event posts that failed without being stored

  /** A batch the API surely did not store is queued again: a 429 (sent after Retry-After),
   * a 5xx (the request rolled back) or a refused connection, the latter two at most
   * MAX_RETRIES times in a row with a doubling delay. Not after our own timeout: the events
   * may have been stored, and sending them again would count them twice. A 4xx is final. */
  function post(key, batch) {
    call("POST", "/events", key, null, { events: batch }).then(function (r) {
      if (r.body) { failures = 0; return; }
      if (r.status === 429 || (r.status === -1 && Date.now() < pausedUntil)) {
        requeue(batch);
      } else if ((r.status >= 500 || (r.status === 0 && !r.timedOut)) && failures < MAX_RETRIES) {
        failures += 1;
        requeue(batch);
        w.setTimeout(sk.guard(flush), RETRY_MS * Math.pow(2, failures - 1));
      }
    });
  }

  function requeue(batch) {
    sk.queue.unshift.apply(sk.queue, batch);
    if (sk.queue.length > MAX_QUEUE) sk.queue.length = MAX_QUEUE; // newest go: bounded memory
  }

  /** Last resort (no keepalive, page unloading). A beacon cannot send headers, so the
   * anonymous id travels in the query; the API must accept ?shopper= for these to count. */
  function beacon(key, batch) {
    try {
      var body = new w.Blob([JSON.stringify({ events: batch })], { type: "text/plain" });
      w.navigator.sendBeacon(url("/events", key, { shopper: shopper }), body);
    } catch (e) { sk.log("shopkeeper: beacon failed", e); }
  }

  /** The shopper's answer: yes stores the id; no forgets it (the API records either). */
  function consent(granted) {
    var answer = request("POST", "/consent", null, null, { granted: granted }, true);
    keep(!!granted);
    if (!granted) sk.queue.length = 0;
    return answer;
  }

  w.addEventListener("pagehide", sk.guard(flush));
  w.document.addEventListener("visibilitychange", sk.guard(function (e) {
    if (w.document.visibilityState === "hidden") flush(e);
  }));

  sk.shopper = shopper;
  sk.api = {
    request: request, call: call, config: config, recommendations: recommendations,
    consent: consent,
    schedule: schedule, flush: flush, remember: remember, shopKey: shopKey
  };
  sk._apiReady();
})(window);
