/*! Shopkeeper <shopkeeper-shopping-for>: SHELL ONLY. The "Who are you shopping for?" prompt
 * gets its logic and API with issue 6 (sub-profiles). Until then this element checks the
 * shop's config and stays hidden, so merchants can already place the placeholder:
 *   <div data-shopkeeper="shopping-for"></div>
 */
(function (w) {
  "use strict";
  var sk = w.Shopkeeper;
  if (!sk || !w.customElements || w.customElements.get("shopkeeper-shopping-for")) return;

  class ShoppingFor extends HTMLElement {
    connectedCallback() {
      if (this._started) return;
      this._started = true;
      this.refresh();
    }

    /** Nothing to render yet: record whether the shop enabled the feature, stay hidden. */
    refresh() {
      var self = this, ds = (this.parentElement && this.parentElement.dataset) || {};
      sk.api.config(ds.key).then(sk.guard(function (cfg) {
        self.hidden = true;
        var on = !!(cfg && cfg.widgets && cfg.widgets.shopping_for);
        if (self.parentElement) {
          self.parentElement.setAttribute("data-shopkeeper-state", on ? "pending" : "off");
        }
      }));
    }
  }

  w.customElements.define("shopkeeper-shopping-for", ShoppingFor);
})(window);
