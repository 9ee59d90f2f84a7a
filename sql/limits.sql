-- limits: every limit listed in the README's "Limits" section is enforced
-- with a clear error, and no accepted value can later make a queue fail.
-- Issue 11: item 4 (interval bounds, retry_delay_max >= retry_delay,
-- max_attempts bound, dead-letter cycles, dead-letter hops), item 6 (dedup
-- key length), item 7 (reserved header names), item 11 (retention '0').
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;

-- ---- issue 11, item 4: every interval option is at most 100 years --------
SELECT pg_temp.err($$SELECT mq.create_queue('lim', visibility_timeout => '101 years')$$);
SELECT pg_temp.err($$SELECT mq.create_queue('lim', retry_delay => '1000000 years', retry_delay_max => '1000000 years')$$);
SELECT pg_temp.err($$SELECT mq.create_queue('lim', retry_delay_max => '100 years 1 day')$$);
SELECT pg_temp.err($$SELECT mq.create_queue('lim', retention => '1000000 hours')$$);
-- a mixed-sign interval that compares as small but would overflow a timestamp
SELECT pg_temp.err($$SELECT mq.create_queue('lim', visibility_timeout => '-70000000 months 2100001000 days')$$);
SELECT count(*) AS refused_queues FROM mq.queues WHERE queue = 'lim';
-- 100 years itself is accepted, for every option
SELECT mq.create_queue('lim', visibility_timeout => '100 years', retry_delay => '100 years',
                       retry_delay_max => '100 years', retention => '100 years');
SELECT pg_temp.err($$SELECT mq.alter_queue('lim', visibility_timeout => '101 years')$$);
SELECT pg_temp.err($$SELECT mq.alter_queue('lim', retry_delay => '101 years')$$);
SELECT pg_temp.err($$SELECT mq.alter_queue('lim', retry_delay_max => '101 years')$$);
SELECT pg_temp.err($$SELECT mq.alter_queue('lim', retention => '101 years')$$);
SELECT visibility_timeout, retry_delay, retry_delay_max, retention FROM mq.queues WHERE queue = 'lim';
-- per call: send, send_batch, publish delays; receive lease and wait; extend; nack
SELECT pg_temp.err($$SELECT mq.send('lim', '{}', delay => '101 years')$$);
SELECT pg_temp.err($$SELECT mq.send_batch('lim', ARRAY['{}']::jsonb[], delay => '101 years')$$);
SELECT pg_temp.err($$SELECT mq.publish('lim.t', '{}', delay => '101 years')$$);
SELECT pg_temp.err($$SELECT mq.receive('lim', visibility_timeout => '101 years')$$);
SET statement_timeout = '5s';   -- without a bound, this would wait 101 years
SELECT pg_temp.err($$SELECT mq.receive('lim', wait => '101 years')$$);
RESET statement_timeout;
SELECT mq.send('lim', '{"n": 1}', delay => '100 years') > 0 AS sent_100_years;
SELECT mq.send('lim', '{"n": 2}') AS lid \gset
SELECT count(*) AS leased_100_years FROM mq.receive('lim', visibility_timeout => '100 years');
SELECT pg_temp.err(format($$SELECT mq.extend('lim', %s, '101 years')$$, :lid));
SELECT pg_temp.err(format($$SELECT mq.nack('lim', %s, delay => '101 years')$$, :lid));
SELECT mq.extend('lim', :lid, '100 years') > now() AS extended_100_years;
SELECT mq.nack('lim', :lid, delay => '100 years') AS nacked_100_years;
SELECT ready, in_flight, delayed FROM mq.metrics('lim');

-- the largest accepted options never put a computed time out of range: a
-- lease that expires is retried up to 100 years later, without an error
SELECT mq.alter_queue('lim', visibility_timeout => '1 millisecond');
SELECT mq.send('lim', '{"n": 3}') > 0 AS sent;
SELECT count(*) AS leased FROM mq.receive('lim');
SELECT pg_sleep(0.05);
SELECT count(*) AS nothing_ready FROM mq.receive('lim');
SELECT mq.maintain() >= 0 AS maintained;
SELECT ready, in_flight, delayed FROM mq.metrics('lim');

-- the backoff never overflows: min(retry_delay * 2^(attempt-1), retry_delay_max)
-- with retry_delay 3 hours at attempt 32 is retry_delay_max, not an error
SELECT mq.create_queue('lim_backoff', max_attempts => 100, retry_delay => '3 hours',
                       retry_delay_max => '4 hours');
SELECT mq.send('lim_backoff', '{}') AS bid \gset
UPDATE mq.q_lim_backoff SET attempt = 31;   -- as if it had failed 31 times
SELECT attempt FROM mq.receive('lim_backoff');
SELECT pg_temp.err(format($$SELECT mq.nack('lim_backoff', %s)$$, :bid));
SELECT vt BETWEEN now() + interval '2 hours' AND now() + interval '4 hours 1 minute' AS backoff_capped
  FROM mq.w_lim_backoff;

-- ---- issue 11, item 4: retry_delay_max >= retry_delay; max_attempts <= 1000
SELECT pg_temp.err($$SELECT mq.create_queue('lim_bad', retry_delay => '2 hours')$$);
SELECT pg_temp.err($$SELECT mq.create_queue('lim_bad', retry_delay => '2 s', retry_delay_max => '1 s')$$);
SELECT pg_temp.err($$SELECT mq.create_queue('lim_bad', max_attempts => 1001)$$);
SELECT count(*) AS refused_queues FROM mq.queues WHERE queue = 'lim_bad';
SELECT mq.create_queue('lim_ok', max_attempts => 1000, retry_delay => '2 s', retry_delay_max => '2 s');
SELECT pg_temp.err($$SELECT mq.alter_queue('lim_ok', retry_delay_max => '1 s')$$);
SELECT pg_temp.err($$SELECT mq.alter_queue('lim_ok', retry_delay => '3 s')$$);
SELECT pg_temp.err($$SELECT mq.alter_queue('lim_ok', max_attempts => 1001)$$);
SELECT mq.alter_queue('lim_ok', retry_delay => '1 minute', retry_delay_max => '1 minute');
SELECT max_attempts, retry_delay, retry_delay_max FROM mq.queues WHERE queue = 'lim_ok';

-- ---- issue 11, item 4: dead-letter cycles are refused --------------------
SELECT mq.create_queue('cyc_a'), mq.create_queue('cyc_b', dead_letter_queue => 'cyc_a');
SELECT pg_temp.err($$SELECT mq.alter_queue('cyc_a', dead_letter_queue => 'cyc_b')$$);
SELECT mq.create_queue('cyc_c'), mq.create_queue('cyc_d', dead_letter_queue => 'cyc_c'),
       mq.create_queue('cyc_e', dead_letter_queue => 'cyc_d');
SELECT pg_temp.err($$SELECT mq.alter_queue('cyc_c', dead_letter_queue => 'cyc_e')$$);
SELECT queue, dead_letter_queue FROM mq.queues WHERE queue LIKE 'cyc%' ORDER BY queue;
-- not a cycle: two queues into one, and a chain
SELECT mq.alter_queue('cyc_c', dead_letter_queue => 'cyc_a');
SELECT mq.alter_queue('cyc_d', dead_letter_queue => 'cyc_a');
SELECT queue, dead_letter_queue FROM mq.queues WHERE queue LIKE 'cyc%' ORDER BY queue;

-- ---- issue 11, item 4: at most 8 dead-letter hops --------------------------
-- hop_0 -> hop_1 -> ... -> hop_9: after 8 hops (in hop_8) the next dead
-- letter goes to mq.dead_letters, not to hop_9
SELECT bool_and(mq.create_queue(format('hop_%s', i), max_attempts => 1,
                dead_letter_queue => CASE WHEN i < 9 THEN format('hop_%s', i + 1) END))
  FROM generate_series(9, 0, -1) i;
SELECT mq.send('hop_0', '{"travel": true}') > 0 AS sent;
DO $$
BEGIN
  FOR i IN 0..9 LOOP
    PERFORM mq.nack(format('hop_%s', i), id) FROM mq.receive(format('hop_%s', i));
    COMMIT;
  END LOOP;
END $$;
SELECT string_agg(queue || '=' || ready, ' ' ORDER BY queue) AS ready
  FROM mq.metrics() WHERE queue LIKE 'hop%' AND ready > 0;
SELECT queue, message, headers->'mq_dead_letter'->>'queue' AS from_queue,
       headers->'mq_dead_letter'->'hops' AS hops
  FROM mq.dead_letters WHERE queue LIKE 'hop%';
-- a cycle made behind mq's back (a hand-edited catalog) ends the same way
SELECT mq.create_queue('loop_x', max_attempts => 1),
       mq.create_queue('loop_y', max_attempts => 1, dead_letter_queue => 'loop_x');
UPDATE mq.queue_catalog SET dead_letter_queue = 'loop_y' WHERE queue = 'loop_x';
SELECT mq.alter_queue('loop_x', max_attempts => 1);  -- every session reloads the catalog
SELECT mq.send('loop_x', '{"loop": true}') > 0 AS sent;
DO $$
BEGIN
  FOR i IN 1..12 LOOP
    PERFORM mq.nack('loop_x', id) FROM mq.receive('loop_x');
    COMMIT;
    PERFORM mq.nack('loop_y', id) FROM mq.receive('loop_y');
    COMMIT;
  END LOOP;
END $$;
SELECT queue, message, headers->'mq_dead_letter'->'hops' AS hops
  FROM mq.dead_letters WHERE queue LIKE 'loop%';
SELECT sum(ready + in_flight + delayed) AS left_in_queues FROM mq.metrics() WHERE queue LIKE 'loop%';

-- ---- issue 11, item 6: a dedup key has at most 512 bytes -----------------
SELECT mq.create_queue('lim_dedup');
-- 6400 bytes that do not compress: a btree size error before, now a clear one
SELECT pg_temp.err($$SELECT mq.send('lim_dedup', '{}', dedup_key =>
         (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 200) i))$$);
SELECT pg_temp.err($$SELECT mq.send('lim_dedup', '{}', dedup_key => repeat('k', 513))$$);
SELECT mq.send('lim_dedup', '{"n": 1}', dedup_key => repeat('k', 512))
     = mq.send('lim_dedup', '{"n": 2}', dedup_key => repeat('k', 512)) AS one_message_for_512_bytes;
SELECT ready, total_sent FROM mq.metrics('lim_dedup');

-- ---- issue 11, item 7: the header names mq sets are reserved -------------
SELECT mq.create_queue('lim_hdr');
SELECT pg_temp.err($$SELECT mq.send('lim_hdr', '{}', headers => '{"mq_dead_letter": {"queue": "payments", "id": 1}}')$$);
SELECT pg_temp.err($$SELECT mq.send('lim_hdr', '{}', headers => '{"topic": "orders.eu.paid"}')$$);
SELECT pg_temp.err($$SELECT mq.send('lim_hdr', '{}', headers => '{"a": 1, "mq_other": 2}')$$);
SELECT pg_temp.err($$SELECT mq.send_batch('lim_hdr', ARRAY['{}', '{}']::jsonb[],
                                          ARRAY['{"a": 1}', '{"topic": "x"}']::jsonb[])$$);
SELECT pg_temp.err($$SELECT mq.send_batch('lim_hdr', ARRAY['{}']::jsonb[],
                                          ARRAY['{"mq_dead_letter": 1}']::jsonb[])$$);
SELECT pg_temp.err($$SELECT mq.publish('lim.hdr', '{}', headers => '{"mq_dead_letter": {"queue": "x"}}')$$);
-- nested keys and other spellings belong to the sender
SELECT mq.send('lim_hdr', '{}', headers => '{"meta": {"topic": "t", "mq_dead_letter": 1}, "Topic": 1, "mq": 2}') > 0 AS sent;
-- nothing forged reached the queue
SELECT count(*) AS forged FROM mq.q_lim_hdr WHERE headers ? 'topic' OR headers ? 'mq_dead_letter' OR headers ? 'mq_other';
-- publish sets "topic" itself, replacing one it is given
SELECT mq.subscribe('lim_hdr', 'lim.#');
SELECT mq.publish('lim.hdr', '{"p": 1}', headers => '{"topic": "forged", "a": 1}');
SELECT headers FROM mq.q_lim_hdr WHERE message = '{"p": 1}';

-- ---- issue 11, item 11: retention '0' is no retention, in create and alter
SELECT mq.create_queue('lim_ret_create', retention => '0');
SELECT mq.create_queue('lim_ret_alter', retention => '1 hour');
SELECT mq.alter_queue('lim_ret_alter', retention => '0');
SELECT queue, retention FROM mq.queues WHERE queue LIKE 'lim_ret%' ORDER BY queue;
-- an acked message of either is deleted, not archived
SELECT mq.send('lim_ret_create', '{}') > 0 AS sent, mq.send('lim_ret_alter', '{}') > 0 AS sent;
SELECT mq.ack('lim_ret_create', id) FROM mq.receive('lim_ret_create');
SELECT mq.ack('lim_ret_alter', id) FROM mq.receive('lim_ret_alter');
SELECT count(*) AS archived FROM mq.archive WHERE queue LIKE 'lim_ret%';

SELECT count(*) FILTER (WHERE mq.drop_queue(queue)) AS dropped
  FROM mq.queues WHERE queue ~ '^(lim|cyc|hop|loop)';
