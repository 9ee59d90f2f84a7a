-- nulls: what a NULL in each argument of each mq function does, exactly as
-- the README documents it function by function (issue 11, item 5; the NULL
-- element of ack's array and the oldest age of an empty queue are item
-- 12).  "needed" arguments raise 22004; the others mean what their default
-- means; drop_queue and purge_queue are STRICT (their install script says
-- so and is released): NULL in, NULL out.
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN EXECUTE q INTO r; RETURN coalesce('ok: ' || r, 'ok: NULL');
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
SELECT mq.create_queue('nl'), mq.create_queue('nl_dlq');

-- create_queue: name and the first four options are needed; the rest default
SELECT pg_temp.err($$SELECT mq.create_queue(NULL)$$);
SELECT pg_temp.err($$SELECT mq.create_queue('nl_c', max_attempts => NULL)$$);
SELECT pg_temp.err($$SELECT mq.create_queue('nl_c', visibility_timeout => NULL)$$);
SELECT pg_temp.err($$SELECT mq.create_queue('nl_c', retry_delay => NULL)$$);
SELECT pg_temp.err($$SELECT mq.create_queue('nl_c', retry_delay_max => NULL)$$);
SELECT pg_temp.err($$SELECT mq.create_queue('nl_c', dead_letter_queue => NULL, retention => NULL, unlogged => NULL)::text$$);
SELECT dead_letter_queue, retention, unlogged FROM mq.queues WHERE queue = 'nl_c';
-- alter_queue: NULL keeps an option as it is
SELECT pg_temp.err($$SELECT mq.alter_queue(NULL, max_attempts => 2)$$);
SELECT pg_temp.err($$SELECT mq.alter_queue('nl_c', NULL, NULL, NULL, NULL, NULL, NULL, NULL)::text$$);
SELECT max_attempts, visibility_timeout, retry_delay, retry_delay_max, dead_letter_queue, retention, unlogged
  FROM mq.queues WHERE queue = 'nl_c';
-- drop_queue, purge_queue: STRICT, NULL returns NULL and does nothing
SELECT pg_temp.err($$SELECT mq.drop_queue(NULL)::text$$);
SELECT pg_temp.err($$SELECT mq.purge_queue(NULL)::text$$);
SELECT count(*) AS queues_left FROM mq.queues WHERE queue LIKE 'nl%';

-- send: queue and message are needed; headers, delay, priority, dedup_key default
SELECT pg_temp.err($$SELECT mq.send(NULL, '{}')::text$$);
SELECT pg_temp.err($$SELECT mq.send('nl', NULL)::text$$);
SELECT pg_temp.err($$SELECT (mq.send('nl', '{"n": 1}', NULL, NULL, NULL, NULL) > 0)::text$$);
SELECT message, headers, priority, dedup_key IS NULL AS no_key FROM mq.q_nl;
-- send_batch: the array and its elements are needed; headers (array or element), delay, priority default
SELECT pg_temp.err($$SELECT count(*)::text FROM mq.send_batch(NULL, ARRAY['{}']::jsonb[])$$);
SELECT pg_temp.err($$SELECT count(*)::text FROM mq.send_batch('nl', NULL)$$);
SELECT pg_temp.err($$SELECT count(*)::text FROM mq.send_batch('nl', ARRAY['{}', NULL]::jsonb[])$$);
SELECT pg_temp.err($$SELECT count(*)::text FROM mq.send_batch('nl', ARRAY['{"n": 2}', '{"n": 3}']::jsonb[], ARRAY[NULL, '{"h": 1}']::jsonb[], NULL, NULL)$$);
SELECT message, headers, priority FROM mq.q_nl ORDER BY id;

-- receive, pop: queue and quantity are needed; visibility_timeout and wait default
SELECT pg_temp.err($$SELECT count(*)::text FROM mq.receive(NULL)$$);
SELECT pg_temp.err($$SELECT count(*)::text FROM mq.receive('nl', NULL)$$);
SELECT pg_temp.err($$SELECT count(*)::text FROM mq.receive('nl', 1, NULL, NULL)$$);
SELECT pg_temp.err($$SELECT count(*)::text FROM mq.pop(NULL)$$);
SELECT pg_temp.err($$SELECT count(*)::text FROM mq.pop('nl', NULL)$$);
SELECT id AS lid FROM mq.w_nl \gset

-- ack (one id, an array), nack, extend
SELECT pg_temp.err($$SELECT mq.ack(NULL, 1::bigint)::text$$);
SELECT pg_temp.err($$SELECT mq.ack('nl', NULL::bigint)::text$$);
SELECT pg_temp.err($$SELECT mq.ack(NULL, ARRAY[1]::bigint[])::text$$);
SELECT pg_temp.err($$SELECT mq.ack('nl', NULL::bigint[])::text$$);
-- issue 11, item 12: a NULL id in the array is an error, not skipped
SELECT pg_temp.err(format($$SELECT mq.ack('nl', ARRAY[%s, NULL])::text$$, :lid));
SELECT count(*) AS still_in_flight FROM mq.w_nl WHERE leased;
SELECT pg_temp.err($$SELECT mq.nack(NULL, 1)::text$$);
SELECT pg_temp.err($$SELECT mq.nack('nl', NULL)::text$$);
SELECT pg_temp.err($$SELECT mq.extend(NULL, 1, '1 minute')::text$$);
SELECT pg_temp.err($$SELECT mq.extend('nl', NULL, '1 minute')::text$$);
SELECT pg_temp.err(format($$SELECT mq.extend('nl', %s, NULL)::text$$, :lid));
SELECT pg_temp.err(format($$SELECT mq.nack('nl', %s, NULL, NULL)::text$$, :lid));
SELECT leased, vt > now() AS backoff FROM mq.w_nl;

-- redrive: queue needed; max_messages NULL means all
SELECT pg_temp.err($$SELECT mq.redrive(NULL)::text$$);
SELECT pg_temp.err($$SELECT mq.redrive('nl', NULL)::text$$);

-- topics: queue, pattern, topic and message needed; filter, headers, delay default
SELECT pg_temp.err($$SELECT mq.subscribe(NULL, 'a.b')::text$$);
SELECT pg_temp.err($$SELECT mq.subscribe('nl', NULL)::text$$);
SELECT pg_temp.err($$SELECT mq.subscribe('nl', 'nl.#', NULL)::text$$);
SELECT pg_temp.err($$SELECT mq.unsubscribe(NULL, 'a.b')::text$$);
SELECT pg_temp.err($$SELECT mq.unsubscribe('nl', NULL)::text$$);
SELECT pg_temp.err($$SELECT mq.publish(NULL, '{}')::text$$);
SELECT pg_temp.err($$SELECT mq.publish('nl.x', NULL)::text$$);
SELECT pg_temp.err($$SELECT mq.publish('nl.x', '{"n": 4}', NULL, NULL)::text$$);
SELECT message, headers FROM mq.q_nl WHERE message = '{"n": 4}';

-- metrics: the queue is needed
SELECT pg_temp.err($$SELECT count(*)::text FROM mq.metrics(NULL)$$);
-- issue 11, item 12: an empty queue's oldest ready age is NULL in mq.metrics
-- and has no sample in metrics_prometheus (no data, not 0 seconds); its
-- other gauges are there
SELECT mq.create_queue('nl_empty');
SELECT queue, ready, oldest_ready_age IS NULL AS no_age FROM mq.metrics()
 WHERE queue IN ('nl', 'nl_empty') ORDER BY queue;
SELECT regexp_replace(line, '} [0-9.]+$', '} N') AS sample
  FROM regexp_split_to_table(mq.metrics_prometheus(), E'\n') line
 WHERE line ~ '^mq_(ready|oldest_ready_age_seconds)\{queue="nl(_empty)?"\}'
 ORDER BY 1;

SELECT mq.drop_queue('nl'), mq.drop_queue('nl_dlq'), mq.drop_queue('nl_c'), mq.drop_queue('nl_empty');
