-- dead letters: the table, a dead-letter queue with its headers, redrive
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
SELECT mq.create_queue('dl', max_attempts => 1);
SELECT mq.create_queue('dl_sink');
SELECT mq.create_queue('dl_routed', max_attempts => 1, dead_letter_queue => 'dl_sink');

-- into mq.dead_letters
SELECT mq.send('dl', '{"n": 1}', headers => '{"h": 1}', priority => 4) AS id \gset
SELECT count(*) FROM mq.receive('dl');
SELECT mq.nack('dl', :id, error => 'boom');
SELECT queue, id = :id AS same_id, message, headers, attempts, last_error,
       dead_at >= enqueued_at AS dead_after_enqueued, priority
  FROM mq.dead_letters WHERE queue = 'dl';
SELECT ready, in_flight, delayed, dead, total_dead_lettered FROM mq.metrics('dl');

-- into a dead-letter queue, as a new message whose headers say where it came from
SELECT mq.send('dl_routed', '{"n": 2}', headers => '{"trace": "t1"}') AS rid \gset
SELECT count(*) FROM mq.receive('dl_routed');
SELECT mq.nack('dl_routed', :rid, error => 'bad payload');
SELECT count(*) FROM mq.dead_letters WHERE queue = 'dl_routed';
SELECT id <> :rid AS new_id, message, headers->'trace' AS trace,
       headers->'mq_dead_letter'->>'queue' AS from_queue,
       (headers->'mq_dead_letter'->>'id')::bigint = :rid AS original_id,
       headers->'mq_dead_letter'->'attempts' AS attempts,
       headers->'mq_dead_letter'->>'last_error' AS last_error, attempt
  FROM mq.receive('dl_sink');
SELECT q.queue, q.total_dead_lettered, s.total_sent
  FROM mq.metrics('dl_routed') q, mq.metrics('dl_sink') s;
-- the sink is dropped: dead letters fall back to the table
SELECT mq.drop_queue('dl_sink');
SELECT dead_letter_queue FROM mq.queues WHERE queue = 'dl_routed';
SELECT mq.send('dl_routed', '{"n": 3}') AS rid \gset
SELECT count(*) FROM mq.receive('dl_routed');
SELECT mq.nack('dl_routed', :rid);
SELECT count(*) FROM mq.dead_letters WHERE queue = 'dl_routed';

-- a dead-lettered message releases its dedup key
SELECT mq.send('dl', '{"n": 4}', dedup_key => 'dk') AS did \gset
SELECT count(*) FROM mq.receive('dl');
SELECT mq.nack('dl', :did);
SELECT mq.send('dl', '{"n": 5}', dedup_key => 'dk') <> :did AS new_message;
SELECT mq.purge_queue('dl');

-- redrive: back into the queue with fresh attempts, oldest first, bounded
SELECT count(*) FROM mq.dead_letters WHERE queue = 'dl';
SELECT mq.redrive('dl', 1);
SELECT count(*) FROM mq.dead_letters WHERE queue = 'dl';
SELECT mq.redrive('dl');
SELECT mq.redrive('dl');
SELECT message, attempt, priority FROM mq.receive('dl', 10);
SELECT ready, in_flight, dead FROM mq.metrics('dl');
-- a redrive that rolls back leaves the dead letters where they were
SELECT count(*) FROM (SELECT mq.nack('dl', id) FROM mq.w_dl) s;
BEGIN;
SELECT mq.redrive('dl');
ROLLBACK;
SELECT count(*) FROM mq.dead_letters WHERE queue = 'dl';

-- Leases that run out together end in one statement: a retry for the one
-- with attempts left, and the dead letters in the order their leases
-- ended (b, c, a), not in the order of their ids.
SELECT mq.create_queue('dl_sink2');
SELECT mq.create_queue('dl_exp', max_attempts => 2, retry_delay => '1 hour',
                       dead_letter_queue => 'dl_sink2');
SELECT count(*) FROM mq.send_batch('dl_exp', ARRAY['{"n": "a"}', '{"n": "b"}', '{"n": "c"}', '{"n": "d"}']::jsonb[]);
SELECT count(*) FROM mq.receive('dl_exp', 3) r, LATERAL mq.nack('dl_exp', r.id, delay => '0');
SELECT message->>'n' AS n, attempt FROM mq.receive('dl_exp', visibility_timeout => '300 milliseconds');
SELECT message->>'n' AS n, attempt FROM mq.receive('dl_exp', visibility_timeout => '900 milliseconds');
SELECT message->>'n' AS n, attempt FROM mq.receive('dl_exp', visibility_timeout => '100 milliseconds');
SELECT message->>'n' AS n, attempt FROM mq.receive('dl_exp', visibility_timeout => '500 milliseconds');
SELECT pg_sleep(1);
SELECT mq.maintain() >= 0 AS maintained;
SELECT ready, in_flight, delayed, total_dead_lettered FROM mq.metrics('dl_exp');
SELECT message->>'n' AS n, headers->'mq_dead_letter'->'attempts' AS attempts
  FROM mq.receive('dl_sink2', 10);
SELECT mq.drop_queue('dl_exp'), mq.drop_queue('dl_sink2');

SELECT pg_temp.err($$SELECT mq.redrive('nope')$$);
SELECT pg_temp.err($$SELECT mq.redrive(NULL)$$);
SELECT pg_temp.err($$SELECT mq.redrive('dl', 0)$$);
SELECT mq.drop_queue('dl'), mq.drop_queue('dl_routed');
SELECT count(*) FROM mq.dead_letters;
