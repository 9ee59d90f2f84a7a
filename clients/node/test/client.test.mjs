// Tests of mq-client (issue 14, Node slice) against a temporary cluster
// (test/cluster.mjs): outbox sends, the Worker's ack/nack/retry/dead
// letter, lease heartbeat, SIGTERM, reconnection, exactly-once processing
// by concurrent workers, and the `for await` form.
// Run: node test/run.mjs (tools/test.sh does, in `make test`).

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { connection } from './cluster.mjs';
import { Message, Queue, Worker } from '../index.js';
import { parseKeywordDsn } from '../lib/connection.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const quiet = { warn() {}, error() {} };
let CONFIG;

before(async () => {
  CONFIG = await connection();
});

async function admin(fn) {
  const c = new pg.Client(CONFIG);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function makeQueue(name, opts = {}) {
  await admin(async (c) => {
    await c.query('SELECT mq.drop_queue($1)', [name]);
    const keys = Object.keys(opts);
    const args = keys.map((k, i) => `, ${k} => $${i + 2}`).join('');
    await c.query(`SELECT mq.create_queue($1${args})`, [name, ...keys.map((k) => opts[k])]);
  });
}

const metrics = (name) => admin((c) => new Queue(c, name).metrics());
const counts = (m) => [m.ready, m.in_flight, m.delayed, m.total_acked];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Wait until cond() is true (checked every 20 ms) or fail.
async function poll(cond, seconds, what) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await sleep(20);
  }
  throw new Error(`timed out after ${seconds}s waiting for ${what}`);
}

async function runWorker(worker, done, seconds, what) {
  worker.start();
  try {
    await poll(done, seconds, what);
  } finally {
    await worker.stop();
  }
}

test('a send in a rolled-back transaction is never delivered', async () => {
  await makeQueue('js_outbox');
  const kept = await admin(async (c) => {
    const q = new Queue(c, 'js_outbox');
    await c.query('BEGIN');
    await q.send({ n: 'rolled back' });
    await q.sendBatch([{ n: 'rb batch 1' }, { n: 'rb batch 2' }]);
    await c.query('ROLLBACK');
    await c.query('BEGIN');
    const id = await q.send({ n: 'committed' }, { headers: { tenant: 'acme' }, priority: 3 });
    await c.query('COMMIT');
    return id;
  });
  const got = await admin((c) => new Queue(c, 'js_outbox').receive({ quantity: 10 }));
  assert.deepEqual(got.map((m) => [m.id, m.message]), [[kept, { n: 'committed' }]],
    'only the committed send is delivered');
  const m = got[0];
  assert.ok(m instanceof Message);
  assert.equal(typeof m.id, 'string', 'bigint ids are strings');
  assert.deepEqual([m.headers, m.attempt, m.priority], [{ tenant: 'acme' }, 1, 3]);
  assert.match(m.receipt, /^[0-9a-f]{16}$/);
  assert.ok(m.enqueuedAt instanceof Date);
});

test('publish takes part in the caller\'s transaction; arrays are JSON', async () => {
  await makeQueue('js_topic');
  await admin(async (c) => {
    await c.query("SELECT mq.subscribe('js_topic', 'js.#')");
    const q = new Queue(c, 'js_topic');
    await c.query('BEGIN');
    assert.equal(await q.publish('js.a', { x: 1 }), 1);
    await c.query('ROLLBACK');
    assert.equal(await q.publish('js.b', [1, 'two', { three: 3 }]), 1);
  });
  const got = await admin((c) => new Queue(c, 'js_topic').receive({ quantity: 10 }));
  assert.deepEqual(got.map((m) => [m.message, m.topic]), [[[1, 'two', { three: 3 }], 'js.b']]);
});

test('handler success acks', async () => {
  await makeQueue('js_ok');
  const ids = await admin((c) => new Queue(c, 'js_ok').sendBatch(
    Array.from({ length: 20 }, (_, i) => ({ i }))));
  const seen = [];
  const w = new Worker(CONFIG, 'js_ok', (m) => { seen.push(m.id); }, { concurrency: 2, wait: 1 });
  await runWorker(w, () => w.stats.acked === 20, 20, '20 acks');
  assert.deepEqual([...seen].sort(), [...ids].sort(), 'each message handled once');
  assert.deepEqual(counts(await metrics('js_ok')), [0, 0, 0, 20], 'all acked, none left');
});

test('a throw nacks with the error, retried with backoff, then dead-lettered', async () => {
  await makeQueue('js_fail_dlq');
  await makeQueue('js_fail', { max_attempts: 3, retry_delay: '200 milliseconds',
    retry_delay_max: '1 second', dead_letter_queue: 'js_fail_dlq' });
  const mid = await admin((c) => new Queue(c, 'js_fail').send({ job: 'doomed' }));
  const calls = [];
  const w = new Worker(CONFIG, 'js_fail', async (m) => {
    calls.push([m.attempt, performance.now()]);
    throw new TypeError(`boom ${m.attempt}`);
  }, { concurrency: 1, wait: 1 });
  await runWorker(w, async () => (await metrics('js_fail_dlq')).ready === 1, 20, 'the dead letter');
  assert.deepEqual(calls.map(([a]) => a), [1, 2, 3], 'delivered 3 times (max_attempts)');
  const gaps = calls.slice(1).map(([, t], i) => t - calls[i][1]);
  assert.ok(gaps.every((g) => g >= 90), `retried after a backoff: ${gaps}`);
  assert.equal(w.stats.nacked, 3);
  assert.equal(w.stats.acked, 0);
  const dl = (await admin((c) => new Queue(c, 'js_fail_dlq').receive()))[0];
  const info = dl.headers.mq_dead_letter;
  assert.deepEqual([String(info.id), info.attempts, info.queue], [mid, 3, 'js_fail']);
  assert.equal(info.last_error, 'TypeError: boom 3', 'the nack carried the error text');
  assert.deepEqual(counts(await metrics('js_fail')).slice(0, 3), [0, 0, 0]);
});

test('the heartbeat keeps a 3 s job leased with a 1 s visibility timeout', async () => {
  await makeQueue('js_hb', { visibility_timeout: '1 second' });
  await admin((c) => new Queue(c, 'js_hb').send({ job: '3 seconds' }));
  const calls = [];
  let started;
  const startedP = new Promise((resolve) => { started = resolve; });
  const w = new Worker(CONFIG, 'js_hb', async (m) => {
    calls.push(m.attempt);
    started();
    await sleep(3000);
  }, { concurrency: 1, wait: 1 });
  w.start();
  const stolen = [];
  try {
    await Promise.race([startedP, sleep(10000).then(() => { throw new Error('handler did not start'); })]);
    await admin(async (c) => {
      const q = new Queue(c, 'js_hb');
      const end = Date.now() + 3200;
      while (Date.now() < end) {           // a competing consumer
        stolen.push(...await q.receive());
        await sleep(100);
      }
    });
    await poll(() => w.stats.acked === 1, 10, 'the ack');
  } finally {
    await w.stop();
  }
  assert.deepEqual(stolen, [], 'nobody else got the message while its handler ran');
  assert.deepEqual(calls, [1], 'handled once, in its first attempt');
  assert.ok(w.stats.extended >= 3, `the lease was extended (${w.stats.extended} times)`);
  assert.deepEqual(counts(await metrics('js_hb')), [0, 0, 0, 1]);
});

test('the heartbeat also keeps the messages of a batch that wait their turn', async () => {
  const n = 200;
  await makeQueue('js_hb_batch', { visibility_timeout: '1 second' });
  await admin((c) => new Queue(c, 'js_hb_batch').sendBatch(Array.from({ length: n }, (_, i) => ({ i }))));
  const handled = new Map();
  let slow = false;
  const w = new Worker(CONFIG, 'js_hb_batch', async (m) => {
    handled.set(m.id, (handled.get(m.id) || 0) + 1);
    if (handled.size === 60 && !slow) {      // by now a slot takes batches
      slow = true;
      await sleep(2500);                     // the rest of its batch waits 2.5 s
    }
  }, { concurrency: 2, wait: 1, logger: quiet });
  await runWorker(w, async () => w.stats.acked + w.stats.settleFailed >= n
    && (await metrics('js_hb_batch')).in_flight === 0, 30, 'every message settled');
  assert.deepEqual([...handled].filter(([, k]) => k > 1), [], 'none handled twice');
  assert.ok(w.stats.extended >= 2, `leases were extended (${w.stats.extended})`);
  assert.deepEqual([w.stats.acked, w.stats.settleFailed], [n, 0]);
  assert.deepEqual(counts(await metrics('js_hb_batch')), [0, 0, 0, n]);
});

test('SIGTERM mid-message finishes it and exits 0', async () => {
  await makeQueue('js_term');
  await admin((c) => new Queue(c, 'js_term').sendBatch([{ i: 0 }, { i: 1 }, { i: 2 }]));
  const p = spawn(process.execPath, [path.join(here, 'sigterm_worker.mjs'), JSON.stringify(CONFIG),
    'js_term', '1.5'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => p.on('close', (code, signal) => resolve([code, signal])));
  try {
    await poll(() => out.includes('\n'), 15, 'the handler to start');
    const first = out.split('\n')[0].split(' ');
    assert.equal(first[0], 'start', 'the handler started');
    p.kill('SIGTERM');
    const [code, signal] = await Promise.race([exited, sleep(20000).then(() => ['timeout', null])]);
    assert.deepEqual([code, signal], [0, null], 'exit status 0');
    assert.deepEqual(out.split(/\s+/).filter(Boolean), ['start', first[1], 'done', first[1]],
      'the message in hand finished, no other was started');
  } finally {
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
  assert.deepEqual(counts(await metrics('js_term')), [2, 0, 0, 1],
    'the finished one acked, the others untouched');
});

test('terminated connections: the worker reconnects, nothing lost or acked twice', async () => {
  const n = 300;
  await makeQueue('js_kill', { visibility_timeout: '3 seconds' });
  const ids = await admin((c) => new Queue(c, 'js_kill').sendBatch(
    Array.from({ length: n }, (_, i) => ({ i }))));
  const handled = new Map();
  let killed = 0;
  // Kill every worker connection from outside while the worker runs
  // (receives, waits), and once while an ack is in flight: the handler of
  // message 130 has another session lock the leased rows (mq.w_js_kill),
  // so that its batch's ack waits, and kills the workers' connections
  // 300 ms later; the ack must be repeated on a new connection.
  const killAll = () => admin(async (c) => {
    killed += Number((await c.query(
      'SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity'
      + " WHERE application_name = 'js_kill_worker'")).rows[0].n);
  });
  let blocker = null;
  let ackKilled = 0;
  const blockAckThenKill = async () => {
    const c = new pg.Client(CONFIG);
    await c.connect();
    await c.query('BEGIN');
    await c.query('SELECT 1 FROM mq.w_js_kill FOR UPDATE');
    blocker = (async () => {
      await sleep(300);
      ackKilled = Number((await c.query(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'js_kill_worker'"
        + " AND wait_event_type = 'Lock' AND query LIKE '%mq.ack%'")).rows[0].n);
      await killAll();
      await c.query('COMMIT');
      await c.end();
    })();
  };
  const w = new Worker(CONFIG, 'js_kill', async (m) => {
    await sleep(5);
    if (m.message.i === 130 && !handled.has(m.id)) await blockAckThenKill();
    handled.set(m.id, (handled.get(m.id) || 0) + 1);
  }, { concurrency: 3, wait: 1, applicationName: 'js_kill_worker', backoff: [0.05, 0.5],
    logger: quiet });
  w.start();
  try {
    for (const at of [80, 180]) {
      await poll(() => handled.size >= at, 30, `${at} messages handled`);
      await killAll();
    }
    await poll(async () => w.stats.acked + w.stats.settleFailed >= n
      && (await metrics('js_kill')).ready === 0, 40, 'every message settled');
  } finally {
    await w.stop();
    await blocker;
  }
  assert.ok(ackKilled >= 1, 'an ack was waiting when its connection was terminated');
  assert.ok(killed >= 5, `worker connections were terminated (${killed})`);
  assert.ok(w.stats.reconnects >= 3, `the worker reconnected (${w.stats.reconnects})`);
  assert.deepEqual([...handled.keys()].sort(), [...ids].sort(), 'no message lost');
  assert.deepEqual([...handled].filter(([, k]) => k > 1), [], 'none handled twice');
  assert.deepEqual([w.stats.acked, w.stats.settleFailed], [n, 0], 'each ack acted exactly once');
  assert.deepEqual(counts(await metrics('js_kill')), [0, 0, 0, n]);
});

test('4 concurrent workers process 10,000 messages exactly once', async () => {
  const n = 10000;
  await makeQueue('js_many');
  const ids = [];
  await admin(async (c) => {
    for (let k = 0; k < n; k += 1000)
      ids.push(...await new Queue(c, 'js_many').sendBatch(Array.from({ length: 1000 }, (_, i) => ({ i: k + i }))));
  });
  const handled = new Map();
  const handler = (m) => { handled.set(m.id, (handled.get(m.id) || 0) + 1); };
  const workers = Array.from({ length: 4 }, () => new Worker(CONFIG, 'js_many', handler, { wait: 1 }));
  const t0 = performance.now();
  workers.forEach((w) => w.start());
  const acked = () => workers.reduce((s, w) => s + w.stats.acked, 0);
  try {
    await poll(() => acked() >= n, 50, `${n} acks`);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
  const secs = (performance.now() - t0) / 1000;
  console.log(`# 4 workers: ${n} messages in ${secs.toFixed(2)}s (${Math.round(n / secs)} msg/s)`);
  assert.equal(handled.size, n, 'every message handled');
  assert.deepEqual([...handled.keys()].sort(), [...ids].sort());
  assert.equal(Math.max(...handled.values()), 1, 'none twice');
  assert.equal(acked(), n);
  assert.ok(workers.every((w) => w.stats.acked > 0), 'each worker took a share');
  assert.deepEqual(counts(await metrics('js_many')), [0, 0, 0, n]);
});

test('for await: acked on next(), msg.nack(error), the message in hand nacked on break', async () => {
  await makeQueue('js_iter', { max_attempts: 1 });     // a nack dead-letters at once
  await admin((c) => new Queue(c, 'js_iter').sendBatch([{ i: 0 }, { i: 1 }, { i: 2 }, { i: 3 }]));
  const w = new Worker(CONFIG, 'js_iter', { wait: 1, signals: false });
  const seen = [];
  for await (const msg of w) {
    seen.push(msg.message.i);
    if (msg.message.i === 1) msg.nack(new RangeError('odd one'));
    if (msg.message.i === 2) break;          // in hand, not settled: nacked
  }
  assert.deepEqual(seen, [0, 1, 2]);
  assert.deepEqual([w.stats.acked, w.stats.nacked], [1, 2]);
  const dead = await admin(async (c) => (await c.query(
    "SELECT message->>'i' AS i, last_error FROM mq.dead_letters WHERE queue = 'js_iter' ORDER BY 1")).rows);
  assert.deepEqual(dead.map((r) => [r.i, r.last_error]), [
    ['1', 'RangeError: odd one'],
    ['2', 'Error: the for await loop ended before the message was settled'],
  ]);
  const m = await metrics('js_iter');
  assert.deepEqual([m.ready, m.in_flight, m.delayed, m.dead, m.total_acked], [1, 0, 0, 2, 1],
    'one acked, two nacked, one never received');
});

test('connection strings: libpq keyword/value form', () => {
  assert.deepEqual(parseKeywordDsn("host=/tmp/x port=5433 dbname='my db' user=u application_name=a\\ b"),
    { host: '/tmp/x', port: 5433, database: 'my db', user: 'u', application_name: 'a b' });
  assert.throws(() => parseKeywordDsn('host=x nosuch=1'), /unsupported connection parameter "nosuch"/);
  assert.throws(() => parseKeywordDsn("host='x"), /unterminated/);
});
