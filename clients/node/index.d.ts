// Type declarations of mq-client (index.js).

/** Seconds, or a PostgreSQL interval string such as "200 milliseconds". */
export type Interval = number | string;

/** Anything with node-postgres' query(): pg.Client, a pool's client, pg.Pool. */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: any[] }>;
}

/**
 * How a Worker connects: undefined or "" (libpq's PGHOST, PGPORT, PGUSER,
 * PGDATABASE, PGPASSWORD, ...), a URI, libpq's keyword/value form
 * ("host=/tmp port=5432 dbname=app"), or a pg.Client config object.
 */
export type Connection = string | Record<string, unknown> | undefined;

/** One delivery of a message (a row of mq.receive). */
export class Message<T = unknown> {
  readonly queue: string;
  /** bigint, as a string (exact). */
  readonly id: string;
  readonly message: T;
  readonly headers: Record<string, unknown> | null;
  /** Deliveries so far, this one included. */
  readonly attempt: number;
  readonly enqueuedAt: Date;
  /** When the lease of this delivery ends. */
  readonly visibleAt: Date | null;
  readonly priority: number;
  /** Names this delivery; acks, nacks and extends are fenced by it. */
  readonly receipt: string | null;
  /** The topic of a copy made by mq.publish, else null. */
  readonly topic: string | null;
}

/** A message yielded by `for await (const msg of worker)`. */
export interface IteratedMessage<T = unknown> extends Message<T> {
  /** Mark it done now (it is acked with its batch). */
  ack(): void;
  /** Nack it with this error's text (retried after the queue's backoff). */
  nack(error?: unknown): void;
}

export interface SendOptions {
  headers?: Record<string, unknown> | null;
  delay?: Interval | null;
  priority?: number;
  dedupKey?: string | null;
}

export interface SendBatchOptions {
  headers?: Array<Record<string, unknown> | null> | null;
  delay?: Interval | null;
  priority?: number;
}

export interface PublishOptions {
  headers?: Record<string, unknown> | null;
  delay?: Interval | null;
}

export interface ReceiveOptions {
  quantity?: number;
  visibilityTimeout?: Interval | null;
  wait?: Interval | null;
}

export interface NackOptions {
  error?: string | null;
  delay?: Interval | null;
  receipt?: string | null;
}

export interface QueueMetrics {
  queue: string;
  ready: number;
  in_flight: number;
  delayed: number;
  dead: number;
  oldest_ready_age: unknown;
  total_sent: number;
  total_acked: number;
  total_dead_lettered: number;
}

/** mq.publish on `client`; resolves to the number of copies made. */
export function publish(client: Queryable, topic: string, message: unknown,
                        options?: PublishOptions): Promise<number>;

/** A queue used through a client the caller owns (its transaction: the outbox). */
export class Queue {
  constructor(client: Queryable, name: string);
  readonly client: Queryable;
  readonly name: string;
  /** mq.send; resolves to the message id. */
  send(message: unknown, options?: SendOptions): Promise<string>;
  /** mq.send_batch; resolves to the ids in input order. */
  sendBatch(messages: Iterable<unknown>, options?: SendBatchOptions): Promise<string[]>;
  publish(topic: string, message: unknown, options?: PublishOptions): Promise<number>;
  receive<T = unknown>(options?: ReceiveOptions): Promise<Message<T>[]>;
  /** One message (fenced by its receipt) or an array of them in one call (resolves to the count). */
  ack(msg: Message | string, receipt?: string | null): Promise<boolean>;
  ack(msgs: Array<Message | string>): Promise<number>;
  nack(msg: Message | string, options?: NackOptions): Promise<boolean>;
  extend(msg: Message | string, visibilityTimeout: Interval, receipt?: string | null): Promise<Date>;
  metrics(): Promise<QueueMetrics>;
}

export interface Logger {
  info?(message: string): void;
  warn?(message: string): void;
  error?(message: string): void;
}

export interface WorkerOptions {
  /** Connections, each handling one message at a time (default 1). */
  concurrency?: number;
  /** Lease per delivery in seconds (default: the queue's). */
  visibilityTimeout?: number;
  /** Longest blocking receive in seconds (default 5; a commit wakes it at once). */
  wait?: number;
  /** Most messages per receive (default 50, for await: 1; fewer for slow handlers, see batchTime). */
  batch?: number;
  /** A receive takes what the handler gets through in this many seconds (default 0.1). */
  batchTime?: number;
  /** Extend leases of messages held past half the visibility timeout (default true). */
  heartbeat?: boolean;
  /** [first, max] seconds between reconnection attempts (default [0.1, 5]). */
  backoff?: [number, number];
  /** application_name of the connections (default "mq_worker"). */
  applicationName?: string;
  /** Stop on SIGTERM/SIGINT under run() and for await (default true). */
  signals?: boolean;
  logger?: Logger;
}

export interface WorkerStats {
  received: number;
  acked: number;
  nacked: number;
  settleFailed: number;
  extended: number;
  reconnects: number;
}

export type Handler<T = unknown> = (message: Message<T>) => unknown | Promise<unknown>;

/** The consumer loop of a queue. */
export class Worker<T = unknown> implements AsyncIterable<IteratedMessage<T>> {
  constructor(connection: Connection, queue: string, handler?: Handler<T> | null,
              options?: WorkerOptions);
  constructor(connection: Connection, queue: string, options?: WorkerOptions);
  readonly queue: string;
  readonly stats: WorkerStats;
  readonly stopping: boolean;
  /** Start the slots and return at once. */
  start(handler?: Handler<T>): this;
  /** Receive no more, finish and settle the messages in hand; resolves when ended. */
  stop(): Promise<void>;
  /** Resolves when the worker has ended; rejects with the error that ended it. */
  join(): Promise<void>;
  /** start(), stop on SIGTERM/SIGINT, resolve to 0 at the end. */
  run(handler?: Handler<T>): Promise<number>;
  [Symbol.asyncIterator](): AsyncIterator<IteratedMessage<T>>;
}

/** node-postgres (the `pg` module this client uses); typed by @types/pg if installed. */
export const pg: any;
