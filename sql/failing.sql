-- failing: one queue that fails never stops the others (issue 11, item 3).
-- Two damaged queues (catalog rows that lost their tables, or one of them)
-- and a queue whose options, written into the catalog behind mq's back (as
-- a restore of an old dump could), put its retries out of range:
-- mq.maintain() still maintains every other queue (retention, expired
-- leases) and warns about the failing ones; metrics() and
-- metrics_prometheus() report the healthy queues; drop_queue removes a
-- damaged queue, whatever tables it has left.  (The worker: test/t/018.)
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
SELECT mq.create_queue('fq_a_damaged'), mq.create_queue('fq_b_half'),
       mq.create_queue('fq_c_huge'),
       mq.create_queue('fq_z_ok', retention => '1 millisecond',
                       visibility_timeout => '1 millisecond', retry_delay => '0');
-- this session has fq_a_damaged cached, as a worker would
SELECT mq.send('fq_a_damaged', '{}') > 0 AS sent;
DROP TABLE mq.q_fq_a_damaged, mq.w_fq_a_damaged;
DROP TABLE mq.w_fq_b_half;
UPDATE mq.queue_catalog SET retry_delay = '1000000 years', retry_delay_max = '1000000 years'
 WHERE queue = 'fq_c_huge';
SELECT mq.alter_queue('fq_c_huge', max_attempts => 5);   -- every session reloads the catalog
-- fq_c_huge: a lease that ends needs a retry time out of range
SELECT mq.send('fq_c_huge', '{}') > 0 AS sent;
SELECT count(*) AS leased FROM mq.receive('fq_c_huge', visibility_timeout => '1 millisecond');
-- fq_z_ok: an acked message for retention to delete, a lease that ends
SELECT mq.send('fq_z_ok', '{"n": 1}') > 0 AS sent, mq.send('fq_z_ok', '{"n": 2}') > 0 AS sent;
SELECT mq.ack('fq_z_ok', id) FROM mq.receive('fq_z_ok');
SELECT count(*) AS leased FROM mq.receive('fq_z_ok');
SELECT pg_sleep(0.05);

SELECT mq.maintain() > 0 AS maintained;
-- fq_z_ok was maintained: archive emptied, the ended lease retried and ready
SELECT (SELECT count(*) FROM mq.archive WHERE queue = 'fq_z_ok') AS archived,
       (SELECT count(*) FROM mq.q_fq_z_ok) AS ready_rows;
-- fq_c_huge was rolled back alone: its message is still there
SELECT (SELECT count(*) FROM mq.w_fq_c_huge) AS huge_rows;
-- metrics of the healthy queues; the damaged ones are left out
SELECT queue, ready, in_flight, delayed FROM mq.metrics() WHERE queue LIKE 'fq%' ORDER BY queue;
SELECT line FROM regexp_split_to_table(mq.metrics_prometheus(), E'\n') line
 WHERE line LIKE 'mq_ready{queue="fq%' ORDER BY 1;
-- a damaged queue asked for by name says what happened
SELECT pg_temp.err($$SELECT count(*) FROM mq.metrics('fq_a_damaged')$$);
SELECT pg_temp.err($$SELECT mq.send('fq_b_half', '{}')$$);
-- drop_queue removes it, with or without the tables it has left
SELECT mq.drop_queue('fq_a_damaged') AS dropped, mq.drop_queue('fq_b_half') AS dropped;
SELECT mq.drop_queue('fq_a_damaged') AS dropped_again;
SELECT count(*) AS tables_left FROM pg_class WHERE relname ~ '^[qw]_fq_[ab]';
SELECT queue FROM mq.queues WHERE queue LIKE 'fq%' ORDER BY queue;
-- now only fq_c_huge warns
SELECT mq.maintain() >= 0 AS maintained;
SELECT mq.drop_queue('fq_c_huge'), mq.drop_queue('fq_z_ok');
