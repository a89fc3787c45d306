// Shopkeeper admin inside the Saleor Dashboard: show the Dashboard's colour scheme, not
// only the system's. The Dashboard names it on the iframe URL (?theme=) and posts App
// Bridge's {type: "theme", payload: {theme}} on every load of the frame and whenever it
// changes. The server draws the page in the scheme the URL or the sk_saleor_theme cookie
// names (the first paint is right); this script follows the messages and keeps the cookie,
// so the next page the merchant opens in the frame is drawn right too. The cookie is
// partitioned: it lives only in the Dashboard's frame (DOM storage is often refused there,
// as third-party). Deferred, it still listens before the frame's load event, on which the
// Dashboard posts; a file, as the CSP allows no inline script.
(function () {
  "use strict";
  var root = document.documentElement;
  var params = new URLSearchParams(window.location.search);
  var framed = window.parent !== window;
  var saleor = params.get("saleorApiUrl") || params.get("domain") ||
    root.getAttribute("data-sk-platform") === "saleor";
  if (!framed || !saleor) return;

  function apply(theme) {
    if (theme !== "light" && theme !== "dark") return;
    root.setAttribute("data-sk-theme", theme);
    document.cookie = "sk_saleor_theme=" + theme +
      "; Path=/admin; Max-Age=31536000; SameSite=None; Secure; Partitioned";
  }

  apply(root.getAttribute("data-sk-theme"));
  window.addEventListener("message", function (event) {
    // only the Dashboard framing this page, as for its handshake (admin.js)
    if (event.source !== window.parent) return;
    var msg = event.data || {};
    if (msg.type === "theme" && msg.payload) apply(msg.payload.theme);
  });
})();
