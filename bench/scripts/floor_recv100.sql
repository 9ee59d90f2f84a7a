-- W4 floor: lease up to 100 messages, then ack (delete) them, in one transaction.
BEGIN;
WITH c AS (SELECT id FROM floor_q WHERE visible_at <= now() ORDER BY visible_at, id LIMIT 100 FOR UPDATE SKIP LOCKED),
     l AS (UPDATE floor_q f SET visible_at = now() + interval '30 seconds', attempt = attempt + 1 FROM c WHERE f.id = c.id RETURNING f.id)
SELECT coalesce(array_agg(id), '{}') AS ids FROM l \gset
DELETE FROM floor_q WHERE id = ANY (:ids::bigint[]);
END;
