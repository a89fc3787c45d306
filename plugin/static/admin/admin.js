// Shopkeeper admin: confirmations, live progress bars, and the Shopify and Saleor App Bridge
// sign-ins.
// Loaded as a file (strict CSP: no inline script, no eval).
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // Refresh the sync table while a sync is running: each row by its resource (not its
  // place), its count beside the bar too, and a bar whose total is unknown stays
  // indeterminate (a value without a max filled it, as if the sync were done).
  var table = document.getElementById("sk-syncs");
  if (table && /running|paused/.test(table.textContent)) {
    setInterval(function () {
      fetch("progress.json", { credentials: "same-origin" }).then(function (r) {
        return r.ok ? r.json() : null;
      }).then(function (data) {
        if (!data) return;
        data.syncs.forEach(function (s) {
          var row = null;
          Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
            if (r.getAttribute("data-resource") === s.resource) row = r;
          });
          if (!row) return;
          row.cells[1].textContent = s.status;
          var bar = row.cells[2].querySelector("progress");
          if (bar && s.total) {
            bar.max = s.total;
            bar.value = Math.min(s.done, s.total);
            bar.textContent = s.done + "/" + s.total;
          } else if (bar) {
            bar.removeAttribute("value");
            bar.textContent = s.done + " so far";
          }
          var count = row.cells[2].querySelector(".sk-count");
          if (count) count.textContent = s.done + (s.total ? "/" + s.total : "");
        });
      }).catch(function () {});
    }, 3000);
  }

  // Shopify admin: App Bridge (loaded first, from Shopify's CDN) either leaves the iframe
  // so a new store can approve the install at the top level, or hands over a session
  // token for a store that installed Shopkeeper; the page then reloads with it.
  var bridge = document.getElementById("sk-shopify-bridge");
  var shopify = window.shopify;
  if (bridge && shopify) {
    if (bridge.getAttribute("data-mode") === "exit") {
      window.open(bridge.getAttribute("data-target"), "_top");
    } else if (typeof shopify.idToken === "function") {
      shopify.idToken().then(function (token) {
        var url = new URL(window.location.href);
        url.searchParams.set("id_token", token);
        window.location.replace(url.toString());
      }).catch(function () {});
    }
  }

  // Saleor Dashboard: App Bridge posts {type: "handshake", payload: {token}}; exchange it
  // for an admin session, then reload as a signed-in page.
  var params = new URLSearchParams(window.location.search);
  if (params.get("saleorApiUrl") || params.get("domain")) {
    window.addEventListener("message", function (event) {
      // only the Saleor Dashboard framing this page: not another window or a popup opener
      if (window.parent === window || event.source !== window.parent) return;
      var msg = event.data || {};
      if (msg.type !== "handshake" || !msg.payload || !msg.payload.token) return;
      var apiUrl = params.get("saleorApiUrl") || ("https://" + params.get("domain") + "/graphql/");
      fetch("session/saleor", { method: "POST", credentials: "same-origin",
        headers: { "saleor-api-url": apiUrl, "authorization-bearer": msg.payload.token } })
        .then(function (r) {
          if (r.ok) { window.location.replace("./"); return; }
          // refused (no "Manage apps", an unfinished install): say why, not a bare form
          return r.json().then(function (body) { refused(body && body.message); },
                               function () { refused(); });
        })
        .catch(function () { refused(); });
    });
  }

  function refused(message) {
    var heading = document.querySelector("main h1");
    if (!heading || document.getElementById("sk-saleor-refused")) return;
    var note = document.createElement("p");
    note.id = "sk-saleor-refused";
    note.className = "sk-error";
    note.setAttribute("role", "alert");
    note.textContent = message || "Signing in from the Saleor Dashboard failed; reload to try again.";
    heading.insertAdjacentElement("afterend", note);
  }
})();
