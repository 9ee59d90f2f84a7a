-- W5 mq consumer: lease one message, record send-to-receive latency, ack.
-- An empty poll ends the transaction and sleeps 1 ms.
BEGIN;
SELECT count(*) AS n, coalesce(max(id), 0) AS id,
       coalesce(max(extract(epoch FROM clock_timestamp()) * 1000 - (message->>'sent_ms')::float8), 0) AS ms
  FROM mq.receive('bench', 1) \gset
\if :n > 0
INSERT INTO bench_latency VALUES ('mq', :ms);
SELECT mq.ack('bench', :id::bigint);
\endif
END;
\if :n = 0
\sleep 1 ms
\endif
