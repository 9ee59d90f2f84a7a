// mq-client: Node client for mq, message queues inside PostgreSQL, on
// node-postgres (pg).
//
//   Queue(client, name)   send / sendBatch / publish in the caller's
//                         transaction; receive / ack / nack / extend
//   Worker(connection, queue, handler, options)
//                         the consumer loop: blocking receive, ack on
//                         success, nack with the error on throw, lease
//                         heartbeat, clean stop on SIGTERM/SIGINT,
//                         reconnect with backoff; also `for await`
//   Message               one delivery of a message
//
// Types: index.d.ts.

export { Message, Queue, publish } from './lib/queue.js';
export { Worker } from './lib/worker.js';

// node-postgres itself, so that code beside the client (the examples)
// uses the same pg as the Worker without a node_modules of its own.
export { default as pg } from 'pg';
