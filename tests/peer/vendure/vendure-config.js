'use strict';
/** Vendure config for the CI peer: sql.js file DB, in-process job queue, Shopkeeper plugin. */
const path = require('path');
const { DefaultJobQueuePlugin, DefaultSearchPlugin, dummyPaymentHandler } = require('@vendure/core');
const { ShopkeeperPlugin } = require('../../../connectors/vendure/vendure-plugin');

const retryBase = process.env.SHOPKEEPER_RETRY_BASE_MS;

/**
 * Test server only: bcrypt at cost 4 instead of Vendure's 12, so each login or registration in
 * the peer tests costs ~1 ms instead of ~0.3-0.7 s. Never use this in a real shop.
 */
class CheapBcryptForTests {
  hash(plaintext) {
    return require('bcrypt').hash(plaintext, 4);
  }

  check(plaintext, hash) {
    return require('bcrypt').compare(plaintext, hash);
  }
}

module.exports.config = {
  apiOptions: { port: +(process.env.PORT || 3000), adminApiPath: 'admin-api', shopApiPath: 'shop-api' },
  authOptions: {
    tokenMethod: ['bearer', 'cookie'],
    requireVerification: false,
    superadminCredentials: { identifier: 'superadmin', password: 'superadmin' },
    cookieOptions: { secret: 'ci' },
    passwordHashingStrategy: new CheapBcryptForTests(),
  },
  dbConnectionOptions: {
    type: 'sqljs', synchronize: true, logging: false, autoSave: true,
    location: process.env.VENDURE_DB || path.join(__dirname, 'vendure.db'),
  },
  paymentOptions: { paymentMethodHandlers: [dummyPaymentHandler] },
  importExportOptions: {
    importAssetsDir: path.join(__dirname, 'node_modules/@vendure/create/assets/images'),
  },
  plugins: [
    DefaultJobQueuePlugin.init({ useDatabaseForBuffer: true }),
    DefaultSearchPlugin.init({ bufferUpdates: false, indexStockStatus: true }),
    ShopkeeperPlugin.init({
      url: process.env.WEBHOOK_URL,
      secret: process.env.WEBHOOK_SECRET,
      ...(retryBase ? { baseDelayMs: +retryBase, maxDelayMs: 10 * +retryBase } : {}),
    }),
  ],
};
