'use strict';
/**
 * Shopkeeper generic protocol v2 delivery, with no Vendure dependency (the plugin and the
 * `disconnect.js` script share it): sign "<timestamp>\n<topic>\n<delivery id>\n<raw body>"
 * with HMAC-SHA256 (the topic is signed, so a body cannot be re-sent as another), POST, and
 * retry network errors, 408/425/429 and 5xx with exponential back-off (or Retry-After).
 * The delivery id is fixed before the first attempt so Shopkeeper dedupes retries; the
 * timestamp and signature are renewed per attempt so retries stay inside the 300 s window.
 */
const crypto = require('crypto');

/** Signature header value of generic protocol v2 for the exact bytes sent. */
function sign(secret, timestamp, topic, deliveryId, body) {
  const mac = crypto.createHmac('sha256', secret);
  mac.update(`${timestamp}\n${topic}\n${deliveryId}\n`);
  mac.update(body);
  return `v2=${mac.digest('hex')}`;
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

/** Sends one delivery with retries; the delivery id stays the same so Shopkeeper dedupes. */
async function deliver(options, topic, payload, logger = console) {
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
          'x-shopkeeper-signature': sign(options.secret, timestamp, topic, deliveryId, body),
        },
      });
      if (res.ok) return { ok: true, status: res.status, attempts: attempt + 1, deliveryId };
      reason = `HTTP ${res.status}`;
      if (!isRetryable(res.status)) {
        logger.error(`shopkeeper.webhook_rejected ${topic} ${deliveryId}: ${reason}`);
        return { ok: false, status: res.status, attempts: attempt + 1, deliveryId };
      }
      waitMs = parseRetryAfter(res.headers.get('retry-after'));
    } catch (err) {
      reason = err && err.name ? err.name : 'error';
    }
    if (attempt >= options.maxRetries) {
      logger.error(`shopkeeper.webhook_gave_up ${topic} ${deliveryId} after ${attempt + 1}: ${reason}`);
      return { ok: false, status: null, attempts: attempt + 1, deliveryId };
    }
    const backoff = options.baseDelayMs * 2 ** attempt * (1 + Math.random() * 0.2);
    const delay = Math.min(options.maxDelayMs, waitMs != null ? waitMs : backoff);
    logger.warn(`shopkeeper.webhook_retry ${topic} ${deliveryId} in ${Math.round(delay)} ms: ${reason}`);
    await new Promise(resolve => setTimeout(resolve, delay));
  }
}

module.exports = { sign, parseRetryAfter, isRetryable, deliver };
