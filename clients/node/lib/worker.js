// Worker: the consumer loop of mq on node-postgres.
//
//   const worker = new Worker(connection, 'emails', handle, { concurrency: 4 });
//   await worker.run();              // until SIGTERM/SIGINT (or stop()); resolves 0
//
//   for await (const msg of new Worker(connection, 'emails')) { ... }
//
// Each of the `concurrency` slots is an async loop with its own
// connection: it blocks in mq.receive(wait => ...), calls handler(message)
// for each message it got (one after the other), acks the ones whose
// handler resolved and nacks, with the error's text, the ones whose
// handler threw or rejected. Acks, nacks and extends carry the delivery's
// receipt, so a late one never touches another consumer's lease.
//
// Batches: a slot receives one message at a time until it knows how long
// the handler takes, then as many as the handler gets through in
// `batchTime` seconds (at most `batch`), and acks them with one call
// (mq.ack(queue, ids[], receipts[])) once the batch is handled. Fast
// handlers so cost two round trips per batch instead of two per message;
// slow ones still get one message per receive, and what a slot holds is
// done within about `batchTime`.
//
// A heartbeat loop (own connection, opened when first needed) extends the
// lease of every message in hand (received, not yet settled) once it has
// been held for half the visibility timeout. stop() (SIGTERM/SIGINT under
// run() and for await) lets the messages in hand finish and be settled,
// receives no more (a waiting receive is cancelled, which gives its
// messages back) and resolves. A lost connection is reopened with
// exponential backoff; an ack or nack whose connection broke is repeated
// on the new one with the same receipts, so it acts at most once and never
// on another consumer's lease; a receive lost with its connection leaves
// its messages leased until the lease ends, then they come again.

import pg from 'pg';
import { Message, SQL, intervalText } from './queue.js';
import { clientConfig, cancelQuery } from './connection.js';

const IDLE = 'idle';
const RECEIVING = 'receiving';
const HANDLING = 'handling';

const defaultLogger = {
  info() {},
  warn: (...args) => console.warn(...args),
  error: (...args) => console.error(...args),
};

const now = () => performance.now();          // milliseconds, monotonic
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function oneLine(e) {
  const text = String((e && e.message) || e || '').split('\n')[0].replace(/\s+/g, ' ').trim();
  return text || (e && e.name) || 'error';
}

// The text a nack carries: "Name: message" for an Error, else the value.
function errorText(e) {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  if (typeof e === 'string') return e;
  try {
    return JSON.stringify(e) ?? String(e);
  } catch {
    return String(e);
  }
}

const isCancel = (e) => !!e && e.code === '57014';

// A failure of the connection rather than of the statement: SQLSTATE
// classes 08 (connection exception) and 57P (operator intervention:
// pg_terminate_backend, shutdown), too many connections, socket errors,
// and node-postgres' own errors for a closed or ended connection.
function isConnectionError(e) {
  if (!e) return false;
  const code = e.code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code))
    return code.startsWith('08') || code.startsWith('57P') || code === '53300';
  if (typeof code === 'string' && code.startsWith('E')) return true;   // ECONNRESET, ENOENT, ...
  return /connection|not queryable|terminated|timeout/i.test(String(e.message));
}

function seconds(value, what) {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    throw new TypeError(`${what} is a number of seconds`);
  return value;
}

class Slot {
  constructor(index) {
    this.index = index;
    this.conn = null;          // { client, broken }
    this.state = IDLE;
    this.failures = 0;         // consecutive connection failures
    this.connected = false;    // has had a connection before
  }
}

export class Worker {
  // connection: see lib/connection.js; handler: (message) => any | Promise,
  // optional for `for await`; options: see index.d.ts.
  constructor(connection, queue, handler, options) {
    if (handler !== null && typeof handler === 'object' && options === undefined) {
      options = handler;
      handler = undefined;
    }
    if (handler != null && typeof handler !== 'function')
      throw new TypeError('handler must be a function');
    const o = options || {};
    if (typeof queue !== 'string' || queue === '') throw new TypeError('queue must be a queue name');
    this.connection = clientConfig(connection);
    this.queue = queue;
    this.handler = handler ?? null;
    this.concurrency = o.concurrency ?? 1;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1)
      throw new RangeError('concurrency must be at least 1');
    this.vt = seconds(o.visibilityTimeout, 'visibilityTimeout');
    this.wait = seconds(o.wait ?? 5, 'wait');
    this.batch = o.batch ?? 50;
    this._batchGiven = o.batch !== undefined;
    if (!Number.isInteger(this.batch) || this.batch < 1) throw new RangeError('batch must be at least 1');
    this.batchTime = seconds(o.batchTime ?? 0.1, 'batchTime');
    this.heartbeat = o.heartbeat ?? true;
    this.backoff = o.backoff ?? [0.1, 5];
    this.applicationName = o.applicationName ?? 'mq_worker';
    this.signals = o.signals ?? true;
    this.log = { ...defaultLogger, ...(o.logger || {}) };
    this.stats = { received: 0, acked: 0, nacked: 0, settleFailed: 0, extended: 0, reconnects: 0 };

    this._stopping = false;
    this._slots = [];
    this._inflight = new Map();      // "slot:id" -> { msg, leaseStart (ms) }
    this._avgHandler = null;         // seconds per message, moving average
    this._finished = null;
    this._slotsDone = false;
    this._fatal = null;
    this._wakers = new Set();        // sleeps that stop() and the end cut short
  }

  get stopping() {
    return this._stopping;
  }

  // Start the slots (and the heartbeat); returns at once.
  start(handler) {
    if (this._finished) throw new Error('worker already started');
    if (handler) this.handler = handler;
    if (typeof this.handler !== 'function') throw new TypeError('the worker needs a handler');
    this._slots = Array.from({ length: this.concurrency }, (_, i) => new Slot(i));
    const loops = this._slots.map((slot) => this._slotLoop(slot).catch((e) => {
      this._fatal ??= e;
      this.log.error(`mq worker ${this.queue}/${slot.index}: ${oneLine(e)}; stopping`);
      this.stop();
    }));
    const heartbeat = this.heartbeat ? this._heartbeatLoop() : null;
    this._finished = (async () => {
      await Promise.all(loops);
      this._slotsDone = true;
      this._wake();
      if (heartbeat) await heartbeat;
      if (this._fatal) throw this._fatal;
    })();
    this._finished.catch(() => {});  // rejections are for whoever awaits join()
    return this;
  }

  // Receive no more; messages in hand are finished and settled. Resolves
  // when the worker has ended (as join()).
  stop() {
    if (!this._stopping) {
      this._stopping = true;
      this._wake();
      this._cancelReceives();
    }
    return this.join();
  }

  // Resolves when every slot and the heartbeat have ended; rejects with
  // the error that ended the worker (a queue that does not exist, ...).
  join() {
    return this._finished ?? Promise.resolve();
  }

  // start(), stop on SIGTERM/SIGINT, wait for the end; resolves to 0.
  async run(handler) {
    this.start(handler);
    const off = this.signals ? this._installSignals() : null;
    try {
      await this._finished;
    } finally {
      if (off) off();
    }
    return 0;
  }

  // for await (const msg of worker): one message at a time. A message is
  // acked when the loop asks for the next one, or nacked with
  // msg.nack(error) (msg.ack() acks it early). Leaving the loop (break,
  // return, an exception) nacks the message in hand unless it was settled,
  // and stops the worker (messages other slots hold are nacked too);
  // SIGTERM/SIGINT end the loop once the messages in hand have been yielded.
  [Symbol.asyncIterator]() {
    // One message per receive unless asked otherwise: a message received
    // ahead of the loop would be nacked if the loop ends first.
    if (!this._batchGiven) this.batch = 1;
    const ready = [];
    let waiter = null;
    let current = null;
    let ended = false;
    const wake = () => {
      if (waiter) {
        const w = waiter;
        waiter = null;
        w();
      }
    };
    const settle = (item, error) => {
      if (item.settled) return;
      item.settled = true;
      if (error == null) item.resolve();
      else item.reject(error);
    };
    this.start((msg) => new Promise((resolve, reject) => {
      ready.push({ msg, resolve, reject, settled: false });
      wake();
    }));
    const off = this.signals ? this._installSignals() : null;
    this._finished.then(() => {}, () => {}).then(() => {
      ended = true;
      wake();
    });
    const rejectReady = () => {
      while (ready.length) settle(ready.shift(), new Error('not handled: the for await loop ended'));
    };
    return {
      next: async () => {
        if (current) settle(current, null);
        current = null;
        for (;;) {
          if (ready.length) {
            const item = ready.shift();
            current = item;
            Object.defineProperties(item.msg, {
              ack: { value: () => settle(item, null), configurable: true },
              nack: { value: (error) => settle(item, error ?? new Error('nacked')), configurable: true },
            });
            return { value: item.msg, done: false };
          }
          if (ended) {
            if (off) off();
            await this._finished;
            return { value: undefined, done: true };
          }
          await new Promise((resolve) => { waiter = resolve; });
        }
      },
      return: async () => {
        if (current) settle(current, new Error('the for await loop ended before the message was settled'));
        current = null;
        this.stop();
        while (!ended) {
          rejectReady();
          await new Promise((resolve) => { waiter = resolve; });
        }
        rejectReady();
        if (off) off();
        await this._finished.catch(() => {});
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  // --- helpers -------------------------------------------------------------

  _installSignals() {
    const onSignal = () => {
      this.stop();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    return () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    };
  }

  // A sleep that stop() and the end of the slots cut short.
  _sleep(ms) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this._wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this._wakers.add(done);
    });
  }

  _wake() {
    for (const w of [...this._wakers]) w();
  }

  _backoffMs(failures) {
    const [first, most] = this.backoff;
    return Math.min(most, first * 2 ** Math.min(failures, 20)) * (0.5 + Math.random() / 2) * 1000;
  }

  // Cancel the waiting receives (again every 200 ms: a cancel that reaches
  // the server before the receive does is lost).
  async _cancelReceives() {
    for (;;) {
      const waiting = this._slots.filter((s) => s.state === RECEIVING && s.conn && !s.conn.broken);
      if (waiting.length === 0) return;
      await Promise.all(waiting.map((s) => cancelQuery(s.conn.client)));
      await sleep(200);
    }
  }

  // --- connections -----------------------------------------------------------

  async _connect() {
    const config = { keepAlive: true, ...this.connection };
    config.application_name ??= this.applicationName;
    const client = new pg.Client(config);
    const conn = { client, broken: false };
    client.on('error', () => { conn.broken = true; });
    client.on('end', () => { conn.broken = true; });
    try {
      await client.connect();
      if (this.vt === null) {
        const r = await client.query(
          'SELECT extract(epoch FROM visibility_timeout)::float8 AS vt FROM mq.queues WHERE queue = $1',
          [this.queue]);
        if (r.rows.length === 0) {
          const e = new Error(`queue "${this.queue}" does not exist`);
          e.code = '42P01';
          throw e;
        }
        this.vt = r.rows[0].vt;
      }
    } catch (e) {
      conn.broken = true;
      client.end().catch(() => {});
      throw e;
    }
    return conn;
  }

  _dropConn(slot) {
    const conn = slot.conn;
    slot.conn = null;
    if (conn) {
      conn.broken = true;
      conn.client.end().catch(() => {});
    }
  }

  // The slot's open connection, reconnecting with backoff; null when
  // stopping (and giveUpAt, a now() value, has passed or is null).
  async _slotConn(slot, giveUpAt = null) {
    for (;;) {
      if (slot.conn && !slot.conn.broken) return slot.conn;
      if (slot.conn) this._dropConn(slot);
      if (this._stopping && (giveUpAt === null || now() > giveUpAt)) return null;
      let conn;
      try {
        conn = await this._connect();
      } catch (e) {
        if (e.code === '42P01' || e.code === '42501') throw e;   // no such queue / no right to it
        slot.failures++;
        this.log.warn(`mq worker ${this.queue}/${slot.index}: connect failed (${oneLine(e)}), retrying`);
        await this._sleep(this._backoffMs(slot.failures));
        if (giveUpAt !== null && now() > giveUpAt) return null;
        continue;
      }
      if (slot.connected) this.stats.reconnects++;
      slot.connected = true;
      slot.failures = 0;
      slot.conn = conn;
      return conn;
    }
  }

  // --- the loop --------------------------------------------------------------

  // Messages per receive: 1 until the handler's speed is known, then what
  // it gets through in batchTime (and within a quarter of the lease).
  _quantity() {
    if (this.batch <= 1 || this._avgHandler === null) return 1;
    const budget = Math.min(this.batchTime, (this.vt ?? 30) / 4);
    const n = Math.floor(budget / Math.max(this._avgHandler, 1e-6));
    return Math.max(1, Math.min(this.batch, n));
  }

  async _slotLoop(slot) {
    try {
      while (!this._stopping) {
        const conn = await this._slotConn(slot);
        if (!conn || this._stopping) break;
        const quantity = this._quantity();
        slot.state = RECEIVING;
        const sent = now();
        let rows = [];
        try {
          const r = await conn.client.query({
            name: 'mq_receive',
            text: SQL.receive,
            values: [this.queue, quantity, intervalText(this.vt), intervalText(this.wait)],
          });
          rows = r.rows;
        } catch (e) {
          if (isCancel(e)) {
            // stop() cancelled the wait
          } else if (conn.broken || isConnectionError(e)) {
            this.log.warn(`mq worker ${this.queue}/${slot.index}: receive failed (${oneLine(e)}); reconnecting`);
            slot.failures++;
            this._dropConn(slot);
            await this._sleep(this._backoffMs(slot.failures));
          } else {
            throw e;
          }
        } finally {
          slot.state = HANDLING;
        }
        if (rows.length > 0) await this._handleBatch(slot, rows, Math.max(sent, now() - 100));
        slot.state = IDLE;
      }
    } finally {
      slot.state = IDLE;
      this._dropConn(slot);
    }
  }

  async _handleBatch(slot, rows, leaseStart) {
    this.stats.received += rows.length;
    const entries = rows.map((row) => {
      const msg = new Message(this.queue, row);
      const entry = { key: `${slot.index}:${msg.id}`, msg, leaseStart };
      this._inflight.set(entry.key, entry);
      return entry;
    });
    const done = [];
    for (const entry of entries) {
      const t0 = now();
      let error = null;
      try {
        await this.handler(entry.msg);
      } catch (e) {
        error = errorText(e);
        this.log.info(`mq worker ${this.queue}: message ${entry.msg.id} failed: ${error}`);
      }
      const took = (now() - t0) / 1000;
      this._avgHandler = this._avgHandler === null ? took : this._avgHandler * 0.8 + took * 0.2;
      if (error === null) done.push(entry);
      else await this._settle(slot, [entry], error.slice(0, 2000));
    }
    if (done.length > 0) await this._settle(slot, done, null);
  }

  // ack (error null) or nack, repeated over lost connections for as long
  // as the lease may still be ours (the receipts fence it).
  async _settle(slot, entries, error) {
    const giveUpAt = now() + Math.max(this.vt ?? 30, 5) * 2000;
    const what = error === null ? 'ack' : 'nack';
    let failures = 0;
    try {
      for (;;) {
        let conn;
        try {
          conn = await this._slotConn(slot, giveUpAt);
        } catch (e) {
          this.log.error(`mq worker ${this.queue}: ${oneLine(e)}`);
          conn = null;
        }
        if (!conn) break;
        try {
          let settled;
          if (error !== null) {
            const m = entries[0].msg;
            const r = await conn.client.query({
              name: 'mq_nack', text: SQL.nack, values: [this.queue, m.id, null, error, m.receipt],
            });
            settled = r.rows[0].ok ? 1 : 0;
            this.stats.nacked += settled;
          } else if (entries.length === 1) {
            const m = entries[0].msg;
            const r = await conn.client.query({
              name: 'mq_ack', text: SQL.ack, values: [this.queue, m.id, m.receipt],
            });
            settled = r.rows[0].ok ? 1 : 0;
            this.stats.acked += settled;
          } else {
            const r = await conn.client.query({
              name: 'mq_ack_many',
              text: SQL.ackMany,
              values: [this.queue, entries.map((e) => e.msg.id), entries.map((e) => e.msg.receipt)],
            });
            settled = Number(r.rows[0].n);
            this.stats.acked += settled;
          }
          if (settled < entries.length) {
            this.stats.settleFailed += entries.length - settled;
            this.log.warn(`mq worker ${this.queue}: ${what} of ${entries.length - settled} of`
              + ` ${entries.length} message(s) found the lease gone`);
          }
          return;
        } catch (e) {
          if (!(isCancel(e) || conn.broken || isConnectionError(e))) {
            this.log.error(`mq worker ${this.queue}: ${what} failed: ${oneLine(e)}`);
            break;
          }
          failures++;
          this.log.warn(`mq worker ${this.queue}/${slot.index}: ${what} failed (${oneLine(e)}); retrying`);
          if (!isCancel(e)) this._dropConn(slot);
          if (now() > giveUpAt) break;
          if (this._stopping) await sleep(50 * failures);
          else await this._sleep(this._backoffMs(failures));
        }
      }
      this.stats.settleFailed += entries.length;
      this.log.error(`mq worker ${this.queue}: could not ${what} message(s)`
        + ` ${entries.map((e) => e.msg.id).join(', ')}; delivered again when the lease ends`);
    } finally {
      for (const e of entries) {
        if (this._inflight.get(e.key) === e) this._inflight.delete(e.key);
      }
    }
  }

  // --- heartbeat ---------------------------------------------------------------

  async _heartbeatLoop() {
    let conn = null;
    let failures = 0;
    while (!this._slotsDone) {
      const vt = this.vt;
      if (vt === null) {
        await this._sleep(50);
        continue;
      }
      const tick = Math.max(20, Math.min(vt * 100, 1000));
      const due = [];
      const t = now();
      for (const entry of this._inflight.values()) {
        if (t - entry.leaseStart >= vt * 500) due.push(entry);
      }
      for (const entry of due) {
        if (this._inflight.get(entry.key) !== entry) continue;   // settled meanwhile
        try {
          if (!conn || conn.broken) conn = await this._connect();
          const start = now();
          await conn.client.query({
            name: 'mq_extend',
            text: SQL.extend,
            values: [this.queue, entry.msg.id, intervalText(vt), entry.msg.receipt],
          });
          entry.leaseStart = start;
          failures = 0;
          this.stats.extended++;
        } catch (e) {
          if (e.code === '55000') {
            // not in flight any more (settled meanwhile, or the lease was lost)
            entry.leaseStart = Infinity;
            continue;
          }
          failures++;
          this.log.warn(`mq worker ${this.queue}: heartbeat failed (${oneLine(e)})`);
          if (conn) conn.client.end().catch(() => {});
          conn = null;
          await sleep(Math.min(tick, 100 * failures));
          break;
        }
      }
      await this._sleep(tick);
    }
    if (conn) await conn.client.end().catch(() => {});
  }
}
