'use strict';
/**
 * Shopkeeper plugin for Vendure 3.x (plain CommonJS: merchants add it to vendure-config.js,
 * no TypeScript build needed).
 *
 * It forwards product, variant, stock, customer and order events to Shopkeeper as webhooks
 * signed with Shopkeeper's generic protocol v1:
 *   X-Shopkeeper-Topic, X-Shopkeeper-Delivery-Id (unique per delivery, stable across retries),
 *   X-Shopkeeper-Timestamp (unix seconds),
 *   X-Shopkeeper-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>.
 *
 * Payloads are thin ({id, ...}): Shopkeeper fetches the current record back over the Admin API.
 * That keeps one mapping (the same GraphQL the backfill uses), makes reordered or late deliveries
 * harmless (the fetch always returns the newest state) and keeps personal data out of webhooks.
 * Bursts for one entity (a product update fires Product, Variant and Stock events) are coalesced
 * for `debounceMs` into one delivery.
 */
const crypto = require('crypto');

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
  ProductEvent, ProductVariantEvent, StockMovementEvent, CustomerEvent, OrderPlacedEvent, OrderStateTransitionEvent,
} = core;

const LOG_CTX = 'ShopkeeperPlugin';
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
];

/** Signature header value of generic protocol v1 for the exact bytes sent. */
function sign(secret, timestamp, body) {
  const mac = crypto.createHmac('sha256', secret);
  mac.update(`${timestamp}.`);
  mac.update(body);
  return `v1=${mac.digest('hex')}`;
}

/** Seconds or HTTP date -> milliseconds to wait, or null when absent or unreadable. */
function parseRetryAfter(value) {
  if (!value) return null;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.round(parseFloat(value) * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}

/** 408/425/429 and 5xx may succeed later; other 4xx (bad secret, bad body) never will. */
function isRetryable(status) {
  return status === 408 || status === 425 || status === 429 || status >= 500;
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
      { id: String(order.id), type: 'order', code: order.code, state: event.toState, occurred_at: at }]];
  }
  return [];
}

/** Sends one delivery with retries; the delivery id stays the same so Shopkeeper dedupes. */
async function deliver(options, topic, payload) {
  const body = Buffer.from(JSON.stringify(payload), 'utf8');
  const deliveryId = crypto.randomUUID();
  for (let attempt = 0; ; attempt += 1) {
    const timestamp = String(Math.floor(Date.now() / 1000));
    let waitMs = null;
    let reason;
    try {
      const res = await fetch(options.url, {
        method: 'POST',
        body,
        signal: AbortSignal.timeout(options.timeoutMs),
        headers: {
          'content-type': 'application/json',
          'x-shopkeeper-topic': topic,
          'x-shopkeeper-delivery-id': deliveryId,
          'x-shopkeeper-timestamp': timestamp,
          'x-shopkeeper-signature': sign(options.secret, timestamp, body),
        },
      });
      if (res.ok) return { ok: true, status: res.status, attempts: attempt + 1, deliveryId };
      reason = `HTTP ${res.status}`;
      if (!isRetryable(res.status)) {
        Logger.error(`shopkeeper.webhook_rejected ${topic} ${deliveryId}: ${reason}`, LOG_CTX);
        return { ok: false, status: res.status, attempts: attempt + 1, deliveryId };
      }
      waitMs = parseRetryAfter(res.headers.get('retry-after'));
    } catch (err) {
      reason = err && err.name ? err.name : 'error';
    }
    if (attempt >= options.maxRetries) {
      Logger.error(`shopkeeper.webhook_gave_up ${topic} ${deliveryId} after ${attempt + 1}: ${reason}`,
        LOG_CTX);
      return { ok: false, status: null, attempts: attempt + 1, deliveryId };
    }
    const backoff = options.baseDelayMs * 2 ** attempt * (1 + Math.random() * 0.2);
    const delay = Math.min(options.maxDelayMs, waitMs != null ? waitMs : backoff);
    Logger.warn(`shopkeeper.webhook_retry ${topic} ${deliveryId} in ${Math.round(delay)} ms: ${reason}`,
      LOG_CTX);
    await new Promise(resolve => setTimeout(resolve, delay));
  }
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

  onApplicationShutdown() {
    this.subscriptions.forEach(s => s.unsubscribe());
    return this.flush();
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
      deliver(ShopkeeperPlugin.options, topic, payload).catch(err =>
        Logger.error(`shopkeeper.webhook_failed ${topic}: ${err}`, LOG_CTX))));
  }
}
ShopkeeperPlugin.options = { ...DEFAULTS };

// Plain JS has no decorators: declare the constructor's DI tokens, then apply @VendurePlugin.
Reflect.defineMetadata('design:paramtypes', [EventBus, TransactionalConnection], ShopkeeperPlugin);
VendurePlugin({ imports: [PluginCommonModule], compatibility: '^3.0.0' })(ShopkeeperPlugin);

module.exports = { ShopkeeperPlugin, TOPICS, sign, parseRetryAfter, isRetryable, describe, deliver };
