-- receive and pop: leases, attempts, quantity, lease expiry, max_attempts
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
SELECT mq.create_queue('r', max_attempts => 3, visibility_timeout => '1 minute',
                       retry_delay => '10 ms', retry_delay_max => '20 ms');

-- the columns of mq.message
SELECT mq.send('r', '{"n": 1}', headers => '{"h": true}') AS id1 \gset
SELECT id = :id1 AS same_id, message, headers, attempt,
       enqueued_at <= now() + interval '1 s' AS enqueued_ok,
       visible_at BETWEEN clock_timestamp() + interval '50 s' AND clock_timestamp() + interval '61 s' AS lease_ends_in_a_minute,
       priority
  FROM mq.receive('r');
-- leased: not received again, until the lease ends
SELECT count(*) FROM mq.receive('r');
SELECT ready, in_flight FROM mq.metrics('r');

-- an explicit visibility timeout, then expiry: comes back with attempt 2
SELECT mq.send('r', '{"n": 2}') AS id2 \gset
SELECT attempt, visible_at < clock_timestamp() + interval '1 s' AS short_lease
  FROM mq.receive('r', 1, visibility_timeout => '50 ms');
SELECT pg_sleep(0.2);
SELECT id = :id2 AS same, attempt FROM mq.receive('r', 1, visibility_timeout => '50 ms');
SELECT pg_sleep(0.2);
SELECT id = :id2 AS same, attempt FROM mq.receive('r', 1, visibility_timeout => '50 ms');
-- third lease expired: attempts used up, dead-lettered by receive itself
SELECT pg_sleep(0.2);
SELECT count(*) FROM mq.receive('r', 10, visibility_timeout => '50 ms');
SELECT id = :id2 AS same, attempts, queue FROM mq.dead_letters WHERE queue = 'r';
SELECT ready, in_flight, delayed, dead FROM mq.metrics('r');

-- quantity: up to n, in order
SELECT mq.purge_queue('r') >= 0;
SELECT count(*) FROM mq.send_batch('r', (SELECT array_agg(jsonb_build_object('i', i) ORDER BY i) FROM generate_series(1, 25) i));
SELECT array_agg((message->>'i')::int) FROM mq.receive('r', 10);
SELECT array_agg((message->>'i')::int) FROM mq.receive('r', 10);
SELECT array_agg((message->>'i')::int) FROM mq.receive('r', 10);
SELECT count(*) FROM mq.receive('r', 10);

-- a rolled-back receive gives the messages back; the delivery counted as an attempt
SELECT mq.purge_queue('r') >= 0;
SELECT count(*) FROM mq.send_batch('r', ARRAY['{"i": 1}', '{"i": 2}', '{"i": 3}']::jsonb[]);
BEGIN;
SELECT message->>'i' AS i FROM mq.receive('r', 2);
ROLLBACK;
SELECT message->>'i' AS i, attempt FROM mq.receive('r', 10);

-- receive twice in one transaction, then roll back: all come back
SELECT mq.purge_queue('r') >= 0;
SELECT count(*) FROM mq.send_batch('r', ARRAY['{"i": 1}', '{"i": 2}', '{"i": 3}', '{"i": 4}']::jsonb[]);
BEGIN;
SELECT message->>'i' AS i FROM mq.receive('r', 1);
SELECT message->>'i' AS i FROM mq.receive('r', 1);
ROLLBACK;
SELECT message->>'i' AS i FROM mq.receive('r', 10);

-- many receives and acks, then more sends: nothing is skipped
SELECT mq.purge_queue('r') >= 0;
SELECT count(*) FROM mq.send_batch('r', (SELECT array_agg(jsonb_build_object('i', i)) FROM generate_series(1, 50) i));
DO $$
DECLARE m record;
BEGIN
  FOR k IN 1..50 LOOP
    SELECT * INTO m FROM mq.receive('r');
    PERFORM mq.ack('r', m.id);
  END LOOP;
END $$;
SELECT count(*) FROM mq.receive('r');
SELECT mq.send('r', '{"i": "after"}') > 0;
SELECT message FROM mq.receive('r');

-- pop: taken and deleted at once
SELECT mq.purge_queue('r') >= 0;
SELECT count(*) FROM mq.send_batch('r', ARRAY['{"p": 1}', '{"p": 2}', '{"p": 3}']::jsonb[]);
SELECT message, attempt FROM mq.pop('r', 2);
SELECT message FROM mq.pop('r');
SELECT count(*) FROM mq.pop('r');
SELECT ready, in_flight FROM mq.metrics('r');
-- pop releases dedup keys
SELECT mq.send('r', '{"p": "k"}', dedup_key => 'pk') AS pid \gset
SELECT count(*) FROM mq.pop('r');
SELECT mq.send('r', '{"p": "k2"}', dedup_key => 'pk') <> :pid AS new_message;

-- lowering max_attempts: a message past it is dead-lettered, not delivered
SELECT mq.purge_queue('r') >= 0;
SELECT mq.send('r', '{"m": 1}') AS mid \gset
SELECT attempt FROM mq.receive('r', 1, visibility_timeout => '10 ms');
SELECT pg_sleep(0.1);
SELECT attempt FROM mq.receive('r', 1, visibility_timeout => '10 ms');
SELECT pg_sleep(0.1);
SELECT mq.maintain() >= 1 AS promoted;
SELECT mq.alter_queue('r', max_attempts => 2);
SELECT count(*) FROM mq.receive('r', 1);
SELECT attempts FROM mq.dead_letters WHERE queue = 'r' AND id = :mid;

-- leases that end together are handled in one pass: every one retried,
-- after its backoff, and those past their attempts dead-lettered, in order
SELECT mq.create_queue('rr', max_attempts => 2, retry_delay => '1 hour', retry_delay_max => '1 hour');
SELECT count(*) FROM mq.send_batch('rr', (SELECT array_agg(jsonb_build_object('i', i) ORDER BY i) FROM generate_series(1, 6) i));
SELECT count(*) FROM mq.receive('rr', 6, visibility_timeout => '10 ms');
SELECT pg_sleep(0.1);
SELECT mq.maintain() >= 6 AS promoted;
SELECT count(*) FILTER (WHERE leased) AS leased,
       count(*) FILTER (WHERE vt > clock_timestamp() + interval '20 min') AS retried_later
  FROM mq.w_rr;
SELECT in_flight, delayed FROM mq.metrics('rr');
SELECT mq.drop_queue('rr');
SELECT mq.create_queue('rd', max_attempts => 1);
SELECT count(*) FROM mq.send_batch('rd', (SELECT array_agg(jsonb_build_object('i', i) ORDER BY i) FROM generate_series(1, 6) i));
SELECT count(*) FROM mq.receive('rd', 6, visibility_timeout => '10 ms');
SELECT pg_sleep(0.1);
SELECT mq.maintain() >= 6 AS promoted;
SELECT count(*) AS left_in_queue FROM mq.w_rd;
SELECT array_agg((message->>'i')::int ORDER BY id) AS dead, min(attempts), max(attempts)
  FROM mq.dead_letters WHERE queue = 'rd';
SELECT in_flight, delayed, dead FROM mq.metrics('rd');
SELECT mq.drop_queue('rd');

-- bad input
SELECT pg_temp.err($$SELECT * FROM mq.receive('r', 0)$$);
SELECT pg_temp.err($$SELECT * FROM mq.receive('r', 10001)$$);
SELECT pg_temp.err($$SELECT * FROM mq.receive('r', -5)$$);
SELECT pg_temp.err($$SELECT * FROM mq.receive('r', NULL)$$);
SELECT pg_temp.err($$SELECT * FROM mq.receive(NULL)$$);
SELECT pg_temp.err($$SELECT * FROM mq.receive('nope')$$);
SELECT pg_temp.err($$SELECT * FROM mq.receive('NOPE')$$);
SELECT pg_temp.err($$SELECT * FROM mq.receive('r', 1, '0')$$);
SELECT pg_temp.err($$SELECT * FROM mq.receive('r', 1, '-1 s')$$);
SELECT pg_temp.err($$SELECT * FROM mq.receive('r', 1, NULL, '-1 s')$$);
-- a wait with nothing to receive returns no rows when it ends
SELECT count(*) FROM mq.receive('r', 1, NULL, '100 ms');
SELECT pg_temp.err($$SELECT * FROM mq.pop('r', 0)$$);
SELECT pg_temp.err($$SELECT * FROM mq.pop('nope')$$);
SELECT count(*) FROM mq.receive('r', 10000);
SELECT count(*) FROM mq.receive('r', 1, NULL, '0');
SELECT mq.drop_queue('r');
