#!/usr/bin/env node
// consumer.mjs QUEUE [DSN]: print one line per message and ack it; runs
// until SIGTERM or Ctrl-C, then finishes the messages in hand and exits 0.
// Connects with DSN, or libpq's PGHOST, PGPORT, ...  MQ_CONCURRENCY sets
// the number of connections (default 1).  Run after `npm ci` in clients/node.

import { Worker } from '../../clients/node/index.js';

const [queue, dsn] = process.argv.slice(2);
if (!queue) {
  console.error('usage: consumer.mjs QUEUE [DSN]');
  process.exit(2);
}

const worker = new Worker(dsn, queue, (msg) => {
  console.log(`${queue} #${msg.id} attempt ${msg.attempt}: ${JSON.stringify(msg.message)}`);
}, { concurrency: Number(process.env.MQ_CONCURRENCY || 1) });

const status = await worker.run();      // resolves on SIGTERM / SIGINT
console.error(`stopped: ${worker.stats.acked} acked`);
process.exitCode = status;
