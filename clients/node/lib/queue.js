// Queue: mq's SQL functions on a node-postgres client the caller owns.
//
// Nothing here begins, commits or rolls back: every call runs on the
// caller's client, so inside its BEGIN ... COMMIT a send is part of the
// business transaction and vanishes if that rolls back (the outbox).
// `client` is anything with node-postgres' query(config) -> Promise: a
// pg.Client, a client checked out of a pg.Pool, or a pg.Pool itself
// (then each call is its own transaction).
//
// Values: messages and headers are any JSON-serializable values (sent as
// JSON text, cast to jsonb; pg would turn a JS array into a PostgreSQL
// array otherwise); ids are bigint and come back as strings (exact, as
// node-postgres returns bigint); intervals are seconds (numbers) or
// PostgreSQL interval strings ("200 milliseconds").

// A number of seconds or an interval string, as interval text (or null).
export function intervalText(value) {
  if (value === undefined || value === null) return null;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError('an interval must be a finite number of seconds');
    return `${value.toFixed(6)} seconds`;
  }
  if (typeof value === 'string') return value;
  throw new TypeError('an interval is a number of seconds or an interval string');
}

function jsonText(value) {
  return value === undefined ? null : JSON.stringify(value);
}

// One delivery of a message (a row of mq.receive).
export class Message {
  constructor(queue, row) {
    this.queue = queue;
    this.id = row.id;                    // bigint as a string
    this.message = row.message;
    this.headers = row.headers;
    this.attempt = row.attempt;
    this.enqueuedAt = row.enqueued_at;
    this.visibleAt = row.visible_at;
    this.priority = row.priority;
    this.receipt = row.receipt;
  }

  // The topic of a copy made by mq.publish, else null.
  get topic() {
    return (this.headers && this.headers.topic) ?? null;
  }
}

const MSG_COLS = 'id, message, headers, attempt, enqueued_at, visible_at, priority, receipt';

// SQL of the calls, shared with the Worker (which names them, so that
// node-postgres prepares each once per connection).
export const SQL = {
  send: 'SELECT mq.send($1, $2::jsonb, $3::jsonb, coalesce($4::interval, \'0\'), $5, $6) AS id',
  sendBatch: 'SELECT id FROM mq.send_batch($1, $2::jsonb[], $3::jsonb[],'
    + ' coalesce($4::interval, \'0\'), $5) AS id',
  publish: 'SELECT mq.publish($1, $2::jsonb, $3::jsonb, coalesce($4::interval, \'0\')) AS n',
  receive: `SELECT ${MSG_COLS} FROM mq.receive($1, $2, $3::interval, coalesce($4::interval, '0'))`,
  ack: 'SELECT mq.ack($1, $2::bigint, $3::text) AS ok',
  ackMany: 'SELECT mq.ack($1, $2::bigint[], $3::text[]) AS n',
  nack: 'SELECT mq.nack($1, $2::bigint, $3::interval, $4::text, $5::text) AS ok',
  extend: 'SELECT mq.extend($1, $2::bigint, $3::interval, $4::text) AS until',
};

// mq.publish on `client`: one copy to every subscribed queue; returns how many.
export async function publish(client, topic, message, { headers, delay } = {}) {
  const r = await client.query(SQL.publish,
    [topic, jsonText(message), jsonText(headers), intervalText(delay)]);
  return r.rows[0].n;
}

function idReceipt(msg, receipt) {
  if (msg instanceof Message || (msg && typeof msg === 'object' && 'id' in msg))
    return [String(msg.id), receipt ?? msg.receipt ?? null];
  return [String(msg), receipt ?? null];
}

export class Queue {
  constructor(client, name) {
    if (!client || typeof client.query !== 'function')
      throw new TypeError('Queue needs a node-postgres client (or pool)');
    this.client = client;
    this.name = name;
  }

  // --- producing (the caller's transaction) ------------------------------

  // mq.send; resolves to the message id.
  async send(message, { headers, delay, priority = 0, dedupKey } = {}) {
    const r = await this.client.query(SQL.send,
      [this.name, jsonText(message), jsonText(headers), intervalText(delay), priority,
        dedupKey ?? null]);
    return r.rows[0].id;
  }

  // mq.send_batch; resolves to the ids in input order.
  async sendBatch(messages, { headers, delay, priority = 0 } = {}) {
    const msgs = Array.from(messages, jsonText);
    const hdrs = headers == null ? null : Array.from(headers, jsonText);
    const r = await this.client.query(SQL.sendBatch,
      [this.name, msgs, hdrs, intervalText(delay), priority]);
    return r.rows.map((row) => row.id);
  }

  // mq.publish on this queue's client (topics are not per queue: the
  // copies go to every subscribed queue).
  publish(topic, message, options) {
    return publish(this.client, topic, message, options);
  }

  // --- consuming -----------------------------------------------------------

  // mq.receive: lease up to `quantity` messages; `wait` (seconds) blocks.
  async receive({ quantity = 1, visibilityTimeout, wait } = {}) {
    const r = await this.client.query(SQL.receive,
      [this.name, quantity, intervalText(visibilityTimeout), intervalText(wait)]);
    return r.rows.map((row) => new Message(this.name, row));
  }

  // mq.ack, fenced by the delivery's receipt when given a Message. An
  // array of Messages (or ids) is acked with one call; resolves to how
  // many were acked.
  async ack(msg, receipt) {
    if (Array.isArray(msg)) {
      const ids = [];
      const receipts = [];
      for (const m of msg) {
        const [id, rc] = idReceipt(m);
        ids.push(id);
        receipts.push(rc);
      }
      const fenced = receipts.every((rc) => rc !== null);
      const r = fenced
        ? await this.client.query(SQL.ackMany, [this.name, ids, receipts])
        : await this.client.query('SELECT mq.ack($1, $2::bigint[]) AS n', [this.name, ids]);
      return Number(r.rows[0].n);
    }
    const [id, rc] = idReceipt(msg, receipt);
    const r = await this.client.query(SQL.ack, [this.name, id, rc]);
    return r.rows[0].ok;
  }

  // mq.nack: retry after `delay` (default: the queue's backoff), keeping
  // `error` as the message's last error.
  async nack(msg, { error, delay, receipt } = {}) {
    const [id, rc] = idReceipt(msg, receipt);
    const r = await this.client.query(SQL.nack,
      [this.name, id, intervalText(delay), error == null ? null : String(error), rc]);
    return r.rows[0].ok;
  }

  // mq.extend: the lease now ends `visibilityTimeout` from now.
  async extend(msg, visibilityTimeout, receipt) {
    const [id, rc] = idReceipt(msg, receipt);
    const r = await this.client.query(SQL.extend,
      [this.name, id, intervalText(visibilityTimeout), rc]);
    return r.rows[0].until;
  }

  // mq.metrics of this queue (counts as numbers).
  async metrics() {
    const r = await this.client.query('SELECT * FROM mq.metrics($1)', [this.name]);
    const row = { ...r.rows[0] };
    for (const k of ['ready', 'in_flight', 'delayed', 'dead', 'total_sent', 'total_acked',
      'total_dead_lettered']) {
      if (row[k] != null) row[k] = Number(row[k]);
    }
    return row;
  }
}
