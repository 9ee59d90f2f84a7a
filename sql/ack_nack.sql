-- ack, nack (backoff, explicit delay, last attempt), extend
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
SELECT mq.create_queue('a', max_attempts => 3, retry_delay => '200 ms', retry_delay_max => '1 s');

-- ack: true once, then false; unknown ids are false
SELECT mq.send('a', '{"n": 1}') AS id \gset
SELECT count(*) FROM mq.receive('a');
SELECT mq.ack('a', :id);
SELECT mq.ack('a', :id);
SELECT mq.ack('a', 999999999);
-- a message not received yet is not acked (receive it first)
SELECT mq.send('a', '{"n": 2}') AS id \gset
SELECT mq.ack('a', :id);
SELECT count(*) FROM mq.receive('a');
SELECT mq.ack('a', :id);
-- a delayed message can be acked (cancelled)
SELECT mq.send('a', '{"n": 3}', delay => '1 hour') AS id \gset
SELECT mq.ack('a', :id);
SELECT ready, in_flight, delayed FROM mq.metrics('a');

-- ack of an array: how many were acked
SELECT count(*) FROM mq.send_batch('a', ARRAY['{"b": 1}', '{"b": 2}', '{"b": 3}']::jsonb[]);
SELECT array_agg(id) AS ids FROM mq.receive('a', 3) \gset
SELECT mq.ack('a', :'ids'::bigint[] || ARRAY[999999999::bigint]);  -- (a NULL id: sql/nulls.sql)
SELECT mq.ack('a', :'ids'::bigint[]);
SELECT mq.ack('a', ARRAY[]::bigint[]);
-- an ack that rolls back leaves the message in flight
SELECT mq.send('a', '{"n": 4}') AS id \gset
SELECT count(*) FROM mq.receive('a');
BEGIN;
SELECT mq.ack('a', :id);
ROLLBACK;
SELECT in_flight FROM mq.metrics('a');
SELECT mq.ack('a', :id);

-- nack with the queue's backoff: back after about retry_delay (100-200 ms)
SELECT mq.send('a', '{"n": 5}') AS id \gset
SELECT attempt FROM mq.receive('a');
SELECT mq.nack('a', :id, error => 'first failure');
SELECT count(*) FROM mq.receive('a');
SELECT in_flight, delayed FROM mq.metrics('a');
SELECT pg_sleep(0.25);
SELECT id = :id AS same, attempt FROM mq.receive('a');
-- nack with an explicit delay
SELECT mq.nack('a', :id, '1 hour');
SELECT pg_sleep(0.25);
SELECT count(*) FROM mq.receive('a');
SELECT mq.ack('a', :id);
-- nack of something not in flight is false
SELECT mq.nack('a', :id);
SELECT mq.nack('a', 999999999);
-- nack on the last attempt dead-letters at once, keeping the error
SELECT mq.send('a', '{"n": 6}') AS id \gset
SELECT attempt FROM mq.receive('a');
SELECT mq.nack('a', :id, '0');
SELECT attempt FROM mq.receive('a');
SELECT mq.nack('a', :id, '0');
SELECT attempt FROM mq.receive('a');
SELECT mq.nack('a', :id, '0', 'third failure');
SELECT id = :id AS same, attempts, last_error, message FROM mq.dead_letters WHERE queue = 'a';
SELECT count(*) FROM mq.receive('a');
-- a nack's error is kept as last_error until dead-lettering
SELECT mq.send('a', '{"n": 7}') AS id \gset
SELECT count(*) FROM mq.receive('a');
SELECT mq.nack('a', :id, '0', 'e1');
SELECT count(*) FROM mq.receive('a');
SELECT mq.nack('a', :id, '0');
SELECT count(*) FROM mq.receive('a');
SELECT mq.nack('a', :id, '0');
SELECT last_error FROM mq.dead_letters WHERE queue = 'a' AND id = :id;

-- backoff grows: min(retry_delay * 2^(attempt-1), retry_delay_max), jittered to 50-100 %
SELECT mq.alter_queue('a', max_attempts => 10, retry_delay => '100 ms', retry_delay_max => '300 ms');
SELECT mq.send('a', '{"n": 8}') AS id \gset
CREATE TEMP TABLE delays (attempt int, delay interval);
DO $$
DECLARE m record; vt timestamptz;
BEGIN
  FOR k IN 1..4 LOOP
    SELECT * INTO m FROM mq.receive('a');
    PERFORM mq.nack('a', m.id);
    EXECUTE format('SELECT vt FROM mq.w_a WHERE id = %s', m.id) INTO vt;
    INSERT INTO delays VALUES (m.attempt, vt - clock_timestamp());
    PERFORM pg_sleep(0.35);
  END LOOP;
END $$;
SELECT attempt,
       delay BETWEEN least(interval '100 ms' * 2 ^ (attempt - 1), interval '300 ms') / 2 - interval '20 ms'
                 AND least(interval '100 ms' * 2 ^ (attempt - 1), interval '300 ms') AS within_backoff
  FROM delays ORDER BY attempt;

-- extend: moves the lease end; not in flight is an error
SELECT mq.purge_queue('a') >= 0;
SELECT mq.send('a', '{"n": 9}') AS id \gset
SELECT count(*) FROM mq.receive('a', 1, '1 s');
SELECT mq.extend('a', :id, '1 hour') BETWEEN clock_timestamp() + interval '59 min' AND clock_timestamp() + interval '61 min' AS extended;
SELECT visible_at > clock_timestamp() + interval '59 min' AS lease_moved FROM (SELECT vt AS visible_at FROM mq.w_a WHERE id = :id) s;
SELECT mq.ack('a', :id);
SELECT regexp_replace(pg_temp.err(format($$SELECT mq.extend('a', %s, '1 minute')$$, :id)), '\d+ of', 'N of');
SELECT pg_temp.err($$SELECT mq.extend('a', 1, '0')$$);
SELECT pg_temp.err($$SELECT mq.extend('a', 1, NULL)$$);
SELECT pg_temp.err($$SELECT mq.extend('nope', 1, '1 s')$$);

-- bad input
SELECT pg_temp.err($$SELECT mq.ack('a', NULL::bigint)$$);
SELECT pg_temp.err($$SELECT mq.ack('a', NULL::bigint[])$$);
SELECT pg_temp.err($$SELECT mq.ack('a', ARRAY[[1,2],[3,4]]::bigint[])$$);
SELECT pg_temp.err($$SELECT mq.ack(NULL, 1)$$);
SELECT pg_temp.err($$SELECT mq.ack('nope', 1)$$);
SELECT pg_temp.err($$SELECT mq.nack('a', NULL)$$);
SELECT pg_temp.err($$SELECT mq.nack('a', 1, '-1 s')$$);
SELECT pg_temp.err($$SELECT mq.nack('nope', 1)$$);
SELECT mq.drop_queue('a');

-- Receipts (issue 12): ack, nack and extend with the receipt of a delivery
-- act only while that delivery holds the lease.
SELECT mq.create_queue('fence', visibility_timeout => '100 milliseconds', retry_delay => '0');
SELECT mq.send('fence', '"f"') > 0 AS sent;
CREATE TEMP TABLE d1 AS SELECT id, receipt FROM mq.receive('fence');
SELECT receipt ~ '^[0-9a-f]{16}$' AS receipt_is_opaque_hex FROM d1;
SELECT pg_sleep(0.3);
CREATE TEMP TABLE d2 AS SELECT id, receipt, attempt FROM mq.receive('fence');
SELECT d2.attempt, d2.receipt <> d1.receipt AS new_receipt FROM d1, d2;
-- the first delivery's late calls act on nothing
SELECT mq.ack('fence', id, receipt) AS late_ack FROM d1;
SELECT mq.nack('fence', id, receipt => receipt) AS late_nack FROM d1;
DO $$ BEGIN
  PERFORM mq.extend('fence', id, '1 minute', receipt) FROM d1;
EXCEPTION WHEN object_not_in_prerequisite_state THEN
  RAISE NOTICE 'late extend refused: %', SQLSTATE;
END $$;
SELECT mq.ack('fence', ARRAY[id], ARRAY[receipt]) AS late_acks FROM d1;
-- the current delivery's calls work
SELECT mq.extend('fence', id, '1 minute', receipt) > now() AS extended FROM d2;
SELECT mq.ack('fence', id, receipt) AS acked FROM d2;
-- without a receipt (or with NULL), as before
SELECT mq.send('fence', '"g"') > 0 AS sent;
SELECT mq.ack('fence', id, NULL::text) AS unfenced_ack FROM mq.receive('fence');
-- arrays: the receipts must match one for one
SELECT mq.send_batch('fence', ARRAY['1', '2']::jsonb[]) > 0 AS sent;
CREATE TEMP TABLE d3 AS SELECT id, receipt FROM mq.receive('fence', 2);
SELECT mq.ack('fence', array_agg(id), array_agg(receipt)) AS acked FROM d3;
SELECT mq.ack('fence', ARRAY[1, 2]::bigint[], ARRAY['0000000000000000']);
SELECT mq.ack('fence', ARRAY[1]::bigint[], ARRAY[NULL]::text[]);
-- a pop has no lease and no receipt
SELECT mq.send('fence', '"p"') > 0 AS sent;
SELECT receipt IS NULL AS no_receipt FROM mq.pop('fence');
-- malformed receipts
SELECT mq.ack('fence', 1, 'zz');
SELECT mq.ack('fence', 1, '0123456789ABCDEF');
SELECT mq.drop_queue('fence');
