'use strict';
/** Vendure config for the CI peer: sql.js file DB, in-process job queue, Shopkeeper plugin. */
const path = require('path');
const { DefaultJobQueuePlugin, DefaultSearchPlugin, dummyPaymentHandler } = require('@vendure/core');
const { ShopkeeperPlugin } = require('../../../connectors/vendure/vendure-plugin');

const retryBase = process.env.SHOPKEEPER_RETRY_BASE_MS;

module.exports.config = {
  apiOptions: { port: +(process.env.PORT || 3000), adminApiPath: 'admin-api', shopApiPath: 'shop-api' },
  authOptions: {
    tokenMethod: ['bearer', 'cookie'],
    requireVerification: false,
    superadminCredentials: { identifier: 'superadmin', password: 'superadmin' },
    cookieOptions: { secret: 'ci' },
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
