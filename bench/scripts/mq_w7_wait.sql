-- W7 waiter: block until a message comes (at most 5 s), record commit ->
-- receive-return latency in ms (side 'w7', or 'warmup' for a message marked
-- so), ack.  ms stays -1 when the wait timed out (\aset assigns nothing for
-- no row).
\set ms -1
SELECT id, extract(epoch FROM clock_timestamp() - (message->>'t')::timestamptz) * 1000 AS ms,
       coalesce((message->>'warmup')::int, 0) AS warm
  FROM mq.receive('w7', 1, wait => '5 s') \aset
\if :ms >= 0
INSERT INTO bench_latency VALUES (CASE WHEN :warm = 1 THEN 'warmup' ELSE 'w7' END, :ms);
SELECT mq.ack('w7', :id::bigint);
\endif
