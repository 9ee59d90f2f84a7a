#!/usr/bin/env node
// producer.mjs QUEUE COUNT [DSN]: send COUNT "hello" messages in one
// transaction, then exit.  Connects with DSN (a URI or libpq's
// "host=... port=..." form), or libpq's PGHOST, PGPORT, PGUSER,
// PGDATABASE, ...  Run after `npm ci` in clients/node.

import { Queue, pg } from '../../clients/node/index.js';
import { clientConfig } from '../../clients/node/lib/connection.js';

const [queue, countArg, dsn] = process.argv.slice(2);
if (!queue || countArg === undefined || !/^\d+$/.test(countArg)) {
  console.error('usage: producer.mjs QUEUE COUNT [DSN]');
  process.exit(2);
}
const count = Number(countArg);

const client = new pg.Client(clientConfig(dsn));
await client.connect();
try {
  await client.query('BEGIN');
  await client.query('SELECT mq.create_queue($1)', [queue]);
  const q = new Queue(client, queue);
  const ids = count > 0
    ? await q.sendBatch(Array.from({ length: count }, (_, i) => ({ hello: i + 1 })))
    : [];
  await client.query('COMMIT');          // the messages appear now, all together
  console.log(`sent ${ids.length} messages to ${queue}`);
} finally {
  await client.end();
}
