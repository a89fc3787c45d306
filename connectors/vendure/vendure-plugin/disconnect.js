#!/usr/bin/env node
'use strict';
/**
 * Tell Shopkeeper this shop is leaving: sends a signed `app.uninstalled` delivery, after which
 * Shopkeeper wipes the shop's credentials and schedules its data for deletion. Vendure has no
 * "plugin removed" event, so merchants run this when they take the plugin out:
 *
 *   SHOPKEEPER_WEBHOOK_URL=... SHOPKEEPER_WEBHOOK_SECRET=... node disconnect.js
 */
const { deliver } = require('./delivery');

const options = {
  url: process.env.SHOPKEEPER_WEBHOOK_URL,
  secret: process.env.SHOPKEEPER_WEBHOOK_SECRET,
  maxRetries: 3, baseDelayMs: 1000, maxDelayMs: 10000, timeoutMs: 10000,
};
if (!options.url || !options.secret) {
  console.error('set SHOPKEEPER_WEBHOOK_URL and SHOPKEEPER_WEBHOOK_SECRET');
  process.exit(2);
}
deliver(options, 'app.uninstalled', {}).then(result => {
  console.log(result.ok ? `disconnected (delivery ${result.deliveryId})` : `failed: ${result.status}`);
  process.exit(result.ok ? 0 : 1);
});
