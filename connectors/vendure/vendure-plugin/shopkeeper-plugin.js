'use strict';
/**
 * Shopkeeper plugin for Vendure 3.x (plain CommonJS: merchants add it to vendure-config.js,
 * no TypeScript build needed).
 *
 * It forwards product, variant, stock, customer and order events to Shopkeeper as webhooks
 * signed with Shopkeeper's generic protocol v2:
 *   X-Shopkeeper-Topic, X-Shopkeeper-Delivery-Id (unique per delivery, stable across retries),
 *   X-Shopkeeper-Timestamp (unix seconds),
 *   X-Shopkeeper-Signature: v2=<hex HMAC-SHA256(secret,
 *     "<timestamp>\n<topic>\n<delivery id>\n<raw body>")>.
 *
 * Payloads are thin ({id, ...}): Shopkeeper fetches the current record back over the Admin API.
 * That keeps one mapping (the same GraphQL the backfill uses), makes reordered or late deliveries
 * harmless (the fetch always returns the newest state) and keeps personal data out of webhooks.
 * Bursts for one entity (a product update fires Product, Variant and Stock events) are coalesced
 * for `debounceMs` into one delivery.
 *
 * It also adds the `shopkeeper_order_currency` promotion condition. Vendure's amounts
 * (`order_fixed_discount`, `minimum_order_amount`) are bare minor units taken in whatever
 * currency the order is in; an offer's promotion carries this condition with the currency its
 * amounts were quoted in, so in a multi-currency channel it applies only to orders in that one.
 */
const { deliver, sign } = require('./delivery');

/** Use the host application's @vendure/core so `instanceof` and DI tokens match its instance. */
function loadVendureCore() {
  if (require.main) {
    try {
      return require.main.require('@vendure/core');
    } catch (err) {
      // fall through: the plugin lives inside the host project's node_modules tree
    }
  }
  return require('@vendure/core');
}

const core = loadVendureCore();
const {
  VendurePlugin, PluginCommonModule, EventBus, TransactionalConnection, Logger, ProductVariant,
  ProductEvent, ProductVariantEvent, StockMovementEvent, CustomerEvent, OrderPlacedEvent,
  OrderStateTransitionEvent, PromotionCondition, LanguageCode,
} = core;

const LOG_CTX = 'ShopkeeperPlugin';
const SHUTDOWN_GRACE_MS = 5000;
const logger = {
  error: msg => Logger.error(msg, LOG_CTX),
  warn: msg => Logger.warn(msg, LOG_CTX),
};
const DEFAULTS = {
  url: process.env.SHOPKEEPER_WEBHOOK_URL,
  secret: process.env.SHOPKEEPER_WEBHOOK_SECRET,
  maxRetries: 6,          // attempts after the first one
  baseDelayMs: 1000,      // back-off: base * 2^attempt (+ jitter), or Retry-After when sent
  maxDelayMs: 60000,
  timeoutMs: 10000,       // per request
  debounceMs: 250,        // coalescing window per entity
};

/** Native topics this plugin sends; the Python connector maps them onto Shopkeeper's topics. */
const TOPICS = [
  'product.created', 'product.updated', 'product.deleted',
  'variant.created', 'variant.updated', 'variant.deleted',
  'stock.movement',
  'customer.created', 'customer.updated', 'customer.deleted',
  'order.placed', 'order.state',
  'app.uninstalled', // sent by disconnect.js, never by the event subscriptions
];

/** Code of the condition; the Python connector looks for it before pinning a currency. */
const ORDER_CURRENCY = 'shopkeeper_order_currency';

/** True only for an order in the promotion's currency (re-checked whenever Vendure re-prices). */
const orderCurrencyCondition = new PromotionCondition({
  code: ORDER_CURRENCY,
  description: [{ languageCode: LanguageCode.en, value: 'If the order is in { currencyCode }' }],
  args: { currencyCode: { type: 'string' } },
  check(ctx, order, args) {
    return String(order.currencyCode).toUpperCase() === String(args.currencyCode).toUpperCase();
  },
});

/** Register the condition once, next to the host's own (a plugin listed twice adds nothing). */
function addOrderCurrencyCondition(config) {
  const conditions = config.promotionOptions.promotionConditions || [];
  if (!conditions.some(c => c.code === ORDER_CURRENCY)) conditions.push(orderCurrencyCondition);
  config.promotionOptions.promotionConditions = conditions;
  return config;
}

function iso(date) {
  return (date instanceof Date ? date : new Date()).toISOString();
}

/** Product ids of stock movements; allocations carry only a variant id, so look them up. */
async function productIdsOfMovements(connection, event) {
  const known = new Set();
  const unknown = new Set();
  for (const m of event.stockMovements) {
    const v = m.productVariant;
    if (!v || v.id == null) continue;
    if (v.productId != null) known.add(String(v.productId));
    else unknown.add(v.id);
  }
  if (unknown.size) {
    const rows = await connection.getRepository(event.ctx, ProductVariant).find({
      where: [...unknown].map(id => ({ id })),
      withDeleted: true,
      select: { id: true, productId: true },
    });
    rows.forEach(r => known.add(String(r.productId)));
  }
  return [...known];
}

/**
 * Map one Vendure event to [key, topic, payload] entries, one per affected entity. Variant and
 * stock events name their product, because Shopkeeper stores variants inside products.
 */
async function describe(event, connection) {
  const at = iso(event.createdAt);
  const product = (id, topic) => [`product:${id}`, topic,
    { id: String(id), type: 'product', occurred_at: at }];
  if (event instanceof ProductEvent) return [product(event.entity.id, `product.${event.type}`)];
  if (event instanceof ProductVariantEvent) {
    const ids = new Set(event.entity.filter(v => v.productId != null).map(v => String(v.productId)));
    return [...ids].map(id => product(id, `variant.${event.type}`));
  }
  if (event instanceof StockMovementEvent) {
    return (await productIdsOfMovements(connection, event)).map(id => product(id, 'stock.movement'));
  }
  if (event instanceof CustomerEvent) {
    return [[`customer:${event.entity.id}`, `customer.${event.type}`,
      { id: String(event.entity.id), type: 'customer', occurred_at: at }]];
  }
  if (event instanceof OrderPlacedEvent || event instanceof OrderStateTransitionEvent) {
    const order = event.order;
    return [[`order:${order.id}`, event instanceof OrderPlacedEvent ? 'order.placed' : 'order.state',
      { id: String(order.id), type: 'order', code: order.code, state: event.toState,
        currency: order.currencyCode, occurred_at: at }]];
  }
  return [];
}

class ShopkeeperPlugin {
  /** Configure once in vendure-config.js: `ShopkeeperPlugin.init({ url, secret })`. */
  static init(options) {
    ShopkeeperPlugin.options = { ...DEFAULTS, ...options };
    return ShopkeeperPlugin;
  }

  constructor(eventBus, connection) {
    this.eventBus = eventBus;
    this.connection = connection;
    this.pending = new Map();
    this.timer = null;
    this.subscriptions = [];
  }

  onApplicationBootstrap() {
    const options = ShopkeeperPlugin.options;
    if (!options.url || !options.secret) {
      Logger.warn('shopkeeper.disabled: url or secret not configured', LOG_CTX);
      return;
    }
    const types = [ProductEvent, ProductVariantEvent, StockMovementEvent, CustomerEvent,
      OrderPlacedEvent, OrderStateTransitionEvent];
    for (const Type of types) {
      this.subscriptions.push(this.eventBus.ofType(Type).subscribe(e => this.enqueue(e)));
    }
  }

  /** Send what is still queued, but never hold a shutdown for more than 5 s of retries. */
  onApplicationShutdown() {
    this.subscriptions.forEach(s => s.unsubscribe());
    let timer;
    const cap = new Promise(resolve => { timer = setTimeout(resolve, SHUTDOWN_GRACE_MS); });
    return Promise.race([this.flush(), cap]).finally(() => clearTimeout(timer));
  }

  async enqueue(event) {
    let entries;
    try {
      entries = await describe(event, this.connection);
    } catch (err) {
      Logger.error(`shopkeeper.describe_failed ${event.constructor.name}: ${err}`, LOG_CTX);
      return;
    }
    for (const [key, topic, payload] of entries) {
      const queued = this.pending.get(key);
      // A deletion in the window wins: a later variant/stock echo must not hide it.
      if (!(queued && queued.topic.endsWith('.deleted'))) this.pending.set(key, { topic, payload });
    }
    if (!this.timer && this.pending.size) {
      this.timer = setTimeout(() => this.flush(), ShopkeeperPlugin.options.debounceMs);
    }
  }

  flush() {
    clearTimeout(this.timer);
    this.timer = null;
    const batch = [...this.pending.values()];
    this.pending.clear();
    return Promise.all(batch.map(({ topic, payload }) =>
      deliver(ShopkeeperPlugin.options, topic, payload, logger).catch(err =>
        Logger.error(`shopkeeper.webhook_failed ${topic}: ${err}`, LOG_CTX))));
  }
}
ShopkeeperPlugin.options = { ...DEFAULTS };

// Plain JS has no decorators: declare the constructor's DI tokens, then apply @VendurePlugin.
Reflect.defineMetadata('design:paramtypes', [EventBus, TransactionalConnection], ShopkeeperPlugin);
VendurePlugin({
  imports: [PluginCommonModule],
  compatibility: '^3.0.0',
  configuration: addOrderCurrencyCondition,
})(ShopkeeperPlugin);

module.exports = {
  ShopkeeperPlugin, TOPICS, ORDER_CURRENCY, orderCurrencyCondition, describe, deliver, sign,
};
