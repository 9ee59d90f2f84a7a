-- W5 floor consumer: lease one message, record send-to-receive latency, ack.
-- An empty poll ends the transaction and sleeps 1 ms.
BEGIN;
WITH c AS (SELECT id FROM floor_q WHERE visible_at <= now() ORDER BY visible_at, id LIMIT 1 FOR UPDATE SKIP LOCKED),
     l AS (UPDATE floor_q f SET visible_at = now() + interval '30 seconds', attempt = attempt + 1 FROM c WHERE f.id = c.id RETURNING f.id, f.message)
SELECT count(*) AS n, coalesce(max(id), 0) AS id,
       coalesce(max(extract(epoch FROM clock_timestamp()) * 1000 - (message->>'sent_ms')::float8), 0) AS ms
  FROM l \gset
\if :n > 0
INSERT INTO bench_latency VALUES ('floor', :ms);
DELETE FROM floor_q WHERE id = :id;
\endif
END;
\if :n = 0
\sleep 1 ms
\endif
