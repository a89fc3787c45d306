/*! Shopkeeper <shopkeeper-cart-offer>: SHELL ONLY. The cart offer banner (countdown,
 * accept, dismiss, free-shipping bar) gets its logic and API with issue 7 (offers). Until
 * then this element checks the shop's config and stays hidden, so merchants can already
 * place the placeholder:
 *   <div data-shopkeeper="cart-offer"></div>
 */
(function (w) {
  "use strict";
  var sk = w.Shopkeeper;
  if (!sk || !w.customElements || w.customElements.get("shopkeeper-cart-offer")) return;

  class CartOffer extends HTMLElement {
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
        var on = !!(cfg && cfg.widgets && cfg.widgets.cart_offer);
        if (self.parentElement) {
          self.parentElement.setAttribute("data-shopkeeper-state", on ? "pending" : "off");
        }
      }));
    }
  }

  w.customElements.define("shopkeeper-cart-offer", CartOffer);
})(window);
