-- queues: create, alter, drop and purge queues; every bad option is refused
CREATE EXTENSION mq;
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;

-- create is idempotent
SELECT mq.create_queue('orders');
SELECT mq.create_queue('orders');
SELECT mq.create_queue('orders_dlq', max_attempts => 1);
SELECT mq.create_queue('tiny', 3, '5 seconds', '100 ms', '2 seconds', 'orders_dlq', '1 day', true);
SELECT queue, max_attempts, visibility_timeout, retry_delay, retry_delay_max,
       dead_letter_queue, retention, unlogged
  FROM mq.queues ORDER BY queue;
-- the tables exist, unlogged when asked
SELECT c.relname, c.relpersistence FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'mq' AND c.relname IN ('q_tiny', 'w_tiny', 'q_orders', 'w_orders')
 ORDER BY 1;

-- alter: NULL keeps, '' removes the dead-letter queue, '0' removes retention
SELECT mq.alter_queue('tiny', max_attempts => 7);
SELECT queue, max_attempts, dead_letter_queue, retention FROM mq.queues WHERE queue = 'tiny';
SELECT mq.alter_queue('tiny', dead_letter_queue => '', retention => '0');
SELECT queue, max_attempts, dead_letter_queue, retention FROM mq.queues WHERE queue = 'tiny';
SELECT mq.alter_queue('tiny', unlogged => false, visibility_timeout => '1 minute');
SELECT c.relname, c.relpersistence FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'mq' AND c.relname IN ('q_tiny', 'w_tiny') ORDER BY 1;
SELECT visibility_timeout FROM mq.queues WHERE queue = 'tiny';

-- purge counts what it removed
SELECT mq.send('tiny', '{"n": 1}');
SELECT mq.send('tiny', '{"n": 2}', delay => '1 hour');
SELECT count(*) FROM mq.receive('tiny');
SELECT mq.send('tiny', '{"n": 3}');
SELECT mq.purge_queue('tiny');
SELECT mq.purge_queue('tiny');
SELECT ready, in_flight, delayed FROM mq.metrics('tiny');

-- drop: true once, then false; dead-letter references are cleared
SELECT mq.alter_queue('orders', dead_letter_queue => 'orders_dlq');
SELECT mq.drop_queue('orders_dlq');
SELECT mq.drop_queue('orders_dlq');
SELECT dead_letter_queue FROM mq.queues WHERE queue = 'orders';
SELECT count(*) FROM pg_class WHERE relname IN ('q_orders_dlq', 'w_orders_dlq');

-- a queue created and dropped in a rolled-back transaction leaves nothing
BEGIN;
SELECT mq.create_queue('ghost');
SELECT mq.send('ghost', '{}') > 0 AS sent;
ROLLBACK;
SELECT count(*) FROM mq.queues WHERE queue = 'ghost';
SELECT pg_temp.err($$SELECT mq.send('ghost', '{}')$$);
SELECT mq.create_queue('ghost');
SELECT count(*) FROM mq.receive('ghost');
SELECT mq.drop_queue('ghost');

-- names: 1 to 48 of [a-z0-9_], not starting with a digit
SELECT mq.create_queue('_ok_9');
SELECT mq.create_queue(repeat('a', 48));
SELECT pg_temp.err($$SELECT mq.create_queue(repeat('a', 49))$$);
SELECT pg_temp.err($$SELECT mq.create_queue('Orders')$$);
SELECT pg_temp.err($$SELECT mq.create_queue('9lives')$$);
SELECT pg_temp.err($$SELECT mq.create_queue('a-b')$$);
SELECT pg_temp.err($$SELECT mq.create_queue('a b')$$);
SELECT pg_temp.err($$SELECT mq.create_queue('')$$);
SELECT pg_temp.err($$SELECT mq.create_queue('x"; DROP TABLE mq.queue_catalog; --')$$);
SELECT pg_temp.err($$SELECT mq.create_queue(NULL)$$);
SELECT pg_temp.err($$SELECT mq.drop_queue('no such')$$);

-- bad options
SELECT pg_temp.err($$SELECT mq.create_queue('q1', max_attempts => 0)$$);
SELECT pg_temp.err($$SELECT mq.create_queue('q1', visibility_timeout => '0')$$);
SELECT pg_temp.err($$SELECT mq.create_queue('q1', visibility_timeout => '-1 s')$$);
SELECT pg_temp.err($$SELECT mq.create_queue('q1', retry_delay => '-1 s')$$);
SELECT pg_temp.err($$SELECT mq.create_queue('q1', retry_delay_max => '-1 s')$$);
SELECT pg_temp.err($$SELECT mq.create_queue('q1', retention => '-1 day')$$);
SELECT pg_temp.err($$SELECT mq.create_queue('q1', dead_letter_queue => 'nope')$$);
SELECT pg_temp.err($$SELECT mq.create_queue('q1', dead_letter_queue => 'q1')$$);
SELECT pg_temp.err($$SELECT mq.create_queue('q1', dead_letter_queue => 'Bad')$$);
SELECT pg_temp.err($$SELECT mq.create_queue('q1', max_attempts => NULL)$$);
SELECT count(*) FROM mq.queues WHERE queue = 'q1';

-- unknown queues: 42P01
SELECT pg_temp.err($$SELECT mq.alter_queue('nope', max_attempts => 2)$$);
SELECT pg_temp.err($$SELECT mq.purge_queue('nope')$$);
SELECT pg_temp.err($$SELECT mq.alter_queue('orders', max_attempts => 0)$$);
SELECT pg_temp.err($$SELECT mq.alter_queue('orders', dead_letter_queue => 'nope')$$);

SELECT queue, mq.drop_queue(queue) FROM mq.queues ORDER BY queue;
SELECT count(*) FROM mq.queues;

-- No two valid queue names collide in their objects (issue 11, item 8):
-- queue "a" used to keep "a_order", "a_vt", "a_pkey" from being created,
-- and "_" kept "__order".
SELECT mq.create_queue(n) FROM unnest(ARRAY['a', 'a_order', 'a_vt', 'a_pkey', '_', '__order', 'i_a', 'k_a']) n;
SELECT count(*) AS objects, count(DISTINCT relname) AS distinct_names
  FROM pg_class
 WHERE relnamespace = 'mq'::regnamespace
   AND relname ~ '^(q|w|qi|wi|wk)_(a|a_order|a_vt|a_pkey|_|__order|i_a|k_a)$';
SELECT bool_and(mq.drop_queue(n)) FROM unnest(ARRAY['a', 'a_order', 'a_vt', 'a_pkey', '_', '__order', 'i_a', 'k_a']) n;
