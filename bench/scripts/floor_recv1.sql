-- W2/W8 floor: lease one message, then ack (delete) it, in one transaction.
-- id stays 0 when the queue is empty (\aset assigns nothing for no row).
\set id 0
BEGIN;
WITH c AS (SELECT id FROM floor_q WHERE visible_at <= now() ORDER BY visible_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) UPDATE floor_q f SET visible_at = now() + interval '30 seconds', attempt = attempt + 1 FROM c WHERE f.id = c.id RETURNING f.id \aset
DELETE FROM floor_q WHERE id = :id;
END;
