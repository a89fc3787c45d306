'use strict';
/** Starts the peer with the job queue in-process, so search indexing needs no worker. */
process.env.VENDURE_DISABLE_TELEMETRY = 'true';
const { bootstrap, JobQueueService } = require('@vendure/core');
const { config } = require('./vendure-config');

bootstrap(config)
  .then(app => app.get(JobQueueService).start())
  .catch(err => {
    console.error(err);
    process.exit(1);
  });
