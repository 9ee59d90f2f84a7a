-- metrics: gauges and totals follow commits, not rollbacks; prometheus text; maintain
SELECT mq.create_queue('m1', retention => '1 hour');
SELECT mq.create_queue('m2');
SELECT count(*) FROM mq.send_batch('m1', ARRAY['{}', '{}', '{}', '{}', '{}']::jsonb[]);
SELECT mq.send('m1', '{}', delay => '1 hour') > 0;
SELECT count(*) FROM mq.receive('m1', 2);
SELECT queue, ready, in_flight, delayed, dead, oldest_ready_age >= '0' AS has_age,
       total_sent, total_acked, total_dead_lettered
  FROM mq.metrics() WHERE queue IN ('m1', 'm2') ORDER BY queue;
-- rollbacks change nothing
BEGIN;
SELECT mq.send('m1', '{}') > 0;
SELECT count(*) FROM mq.receive('m1', 3);
ROLLBACK;
SELECT ready, in_flight, delayed, total_sent FROM mq.metrics('m1');
-- acks count, and archive with retention
SELECT count(*) FROM (SELECT mq.ack('m1', id) FROM mq.w_m1 WHERE leased) s;
SELECT ready, in_flight, total_acked FROM mq.metrics('m1');
SELECT count(*) FROM mq.archive WHERE queue = 'm1';
-- retention deletes archived messages past their age
UPDATE mq.archive SET archived_at = archived_at - interval '2 hours'
 WHERE id = (SELECT min(id) FROM mq.archive WHERE queue = 'm1');
SELECT mq.maintain() >= 1 AS maintained;
SELECT count(*) FROM mq.archive WHERE queue = 'm1';
-- an empty queue has no oldest age
SELECT ready, oldest_ready_age FROM mq.metrics('m2');
-- totals are saved by maintain
SELECT queue, total_sent, total_acked FROM mq.queue_totals WHERE queue = 'm1';
-- prometheus text
SELECT line FROM regexp_split_to_table(mq.metrics_prometheus(), E'\n') AS line
 WHERE (line LIKE '%m1%' OR line LIKE '# TYPE%') AND line NOT LIKE 'mq_oldest%';
SELECT mq.metrics_prometheus() ~ 'mq_oldest_ready_age_seconds\{queue="m1"\} [0-9.]+' AS has_age;
SELECT mq.metrics_prometheus() LIKE '%mq_ready{queue="m2"} 0%' AS has_m2;
-- unknown queue
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
SELECT pg_temp.err($$SELECT * FROM mq.metrics('nope')$$);
SELECT pg_temp.err($$SELECT * FROM mq.metrics(NULL)$$);
SELECT mq.drop_queue('m1'), mq.drop_queue('m2');
SELECT count(*) FROM mq.metrics();
