-- mq demo: a queue, a retry that ends in the dead-letter queue, a topic
-- fan-out, metrics.
-- Run by `make demo` on a throwaway cluster with mq preloaded.

\pset footer off
CREATE EXTENSION IF NOT EXISTS mq;

\echo
\echo '== 1. A queue, and a send that is part of a business transaction =='
SELECT mq.create_queue('emails');
BEGIN;
-- ... the order row is written here ...
SELECT mq.send('emails', '{"to": "ada@example.com", "template": "welcome"}') AS sent_id;
SELECT mq.send('emails', '{"to": "bob@example.com", "template": "invoice"}',
               priority => 5) AS urgent_id;
COMMIT;
-- a send in a transaction that rolls back never happened
BEGIN;
SELECT mq.send('emails', '{"to": "nobody@example.com"}') AS rolled_back_id;
ROLLBACK;

\echo
\echo '== 2. A worker leases messages (higher priority first), then acks =='
CREATE TEMP TABLE got AS
  SELECT * FROM mq.receive('emails', 10, visibility_timeout => '30 seconds');
SELECT id, message->>'to' AS "to", priority, attempt, visible_at AS lease_ends FROM got;
SELECT mq.ack('emails', array_agg(id)) AS acked FROM got;

\echo
\echo '== 3. A message that keeps failing: retries with backoff, then dead letter =='
SELECT mq.create_queue('emails_dead');
SELECT mq.create_queue('payments', max_attempts => 3,
                       retry_delay => '100 milliseconds',
                       dead_letter_queue => 'emails_dead');
SELECT mq.send('payments', '{"charge": 4200, "card": "declined"}') AS payment_id \gset
SELECT id, attempt FROM mq.receive('payments');
SELECT mq.nack('payments', :payment_id, error => 'card declined');
SELECT pg_sleep(0.25);
SELECT id, attempt FROM mq.receive('payments');
SELECT mq.nack('payments', :payment_id, error => 'card declined again');
SELECT pg_sleep(0.5);
SELECT id, attempt FROM mq.receive('payments');
-- third attempt failed: it goes to the dead-letter queue at once
SELECT mq.nack('payments', :payment_id, error => 'card declined for good');
SELECT message, headers->'mq_dead_letter' AS dead_letter
  FROM mq.receive('emails_dead');

\echo
\echo '== 4. A topic fan-out: one publish, a copy in every subscribed queue =='
SELECT mq.create_queue('billing');
SELECT mq.create_queue('shipping');
SELECT mq.create_queue('audit');
SELECT mq.subscribe('billing', 'orders.*.paid');
SELECT mq.subscribe('shipping', 'orders.eu.*', filter => '{"express": true}');
SELECT mq.subscribe('audit', 'orders.#');
SELECT * FROM mq.subscriptions ORDER BY queue;
SELECT mq.publish('orders.eu.paid', '{"order": 42}', headers => '{"express": true}') AS delivered_to;
SELECT mq.publish('orders.us.paid', '{"order": 43}') AS delivered_to;
SELECT 'billing' AS queue, message, headers->>'topic' AS topic FROM mq.receive('billing', 10)
UNION ALL
SELECT 'shipping', message, headers->>'topic' FROM mq.receive('shipping', 10)
UNION ALL
SELECT 'audit', message, headers->>'topic' FROM mq.receive('audit', 10);

\echo
\echo '== 5. Metrics, in SQL and for Prometheus =='
SELECT queue, ready, in_flight, delayed, dead, total_sent, total_acked, total_dead_lettered
  FROM mq.metrics();
SELECT mq.metrics_prometheus();

\echo
\echo '== 6. Queues =='
SELECT queue, max_attempts, visibility_timeout, retry_delay, dead_letter_queue FROM mq.queues;
