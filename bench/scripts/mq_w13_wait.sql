-- W13 waiter: one of many sessions blocked in receive(wait => 60 s) on
-- queue w13; records commit -> receive-return latency in ms with the side
-- the message names ('w13', 'warmup'; 'w13burst' gets ':' and the
-- receiving backend's pid), and acks.  ms stays -1 when the wait timed out.
\set ms -1
SELECT id, extract(epoch FROM clock_timestamp() - (message->>'t')::timestamptz) * 1000 AS ms,
       quote_literal(coalesce(message->>'side', 'w13')) AS side
  FROM mq.receive('w13', 1, wait => '60 s') \aset
\if :ms >= 0
INSERT INTO bench_latency
  VALUES (CASE WHEN :side = 'w13burst' THEN 'w13burst:' || pg_backend_pid() ELSE :side END, :ms);
SELECT mq.ack('w13', :id::bigint);
\endif
