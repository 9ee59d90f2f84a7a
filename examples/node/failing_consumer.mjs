#!/usr/bin/env node
// failing_consumer.mjs [DSN]: a handler that always throws.  Creates queue
// "flaky" (3 attempts, short backoff, dead letters to "flaky_dead"), sends
// one message, and consumes with `for await` until the message has been
// nacked 3 times and lands in "flaky_dead", whose message it prints.
// Connects with DSN or libpq's PG* variables.  Run after `npm ci` in
// clients/node.

import { Queue, Worker, pg } from '../../clients/node/index.js';
import { clientConfig } from '../../clients/node/lib/connection.js';

const dsn = process.argv[2];
const admin = new pg.Client(clientConfig(dsn));
await admin.connect();
await admin.query("SELECT mq.create_queue('flaky_dead')");
await admin.query("SELECT mq.create_queue('flaky', max_attempts => 3,"
  + " retry_delay => '200 milliseconds', dead_letter_queue => 'flaky_dead')");
await new Queue(admin, 'flaky').send({ charge: 42 });

async function charge(message) {
  throw new Error(`payment gateway down (attempt ${message.attempt})`);
}

let failures = 0;
for await (const msg of new Worker(dsn, 'flaky', { wait: 1 })) {
  console.log(`flaky #${msg.id} attempt ${msg.attempt}: failing`);
  try {
    await charge(msg);
  } catch (e) {
    msg.nack(e);                          // retried after the backoff, then dead-lettered
    if (++failures === 3) break;
  }
}

for (const m of await new Queue(admin, 'flaky_dead').receive({ wait: 5 })) {
  console.log(`dead letter in flaky_dead: ${JSON.stringify(m.message)} ${JSON.stringify(m.headers.mq_dead_letter)}`);
  await new Queue(admin, 'flaky_dead').ack(m);
}
await admin.end();
