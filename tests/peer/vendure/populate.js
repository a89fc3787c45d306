'use strict';
/** Seeds the sample catalogue (54 products) into VENDURE_DB; run once, then copy the file. */
process.env.VENDURE_DISABLE_TELEMETRY = 'true';
const path = require('path');
const { bootstrap, JobQueueService } = require('@vendure/core');
const { populate } = require('@vendure/core/cli');
const { config } = require('./vendure-config');

const assets = path.join(__dirname, 'node_modules/@vendure/create/assets');
const seedConfig = {
  ...config,
  apiOptions: { ...config.apiOptions, port: +(process.env.PORT || 3099) },
  plugins: config.plugins.filter(p => p.name !== 'ShopkeeperPlugin'),
};

populate(
  () => bootstrap(seedConfig).then(async app => {
    await app.get(JobQueueService).start();
    return app;
  }),
  require(path.join(assets, 'initial-data.json')),
  path.join(assets, 'products.csv'),
)
  .then(async app => {
    await new Promise(resolve => setTimeout(resolve, 3000)); // let the search index jobs finish
    await app.close();
    process.exit(0);
  })
  .catch(err => {
    console.error(err);
    process.exit(1);
  });
