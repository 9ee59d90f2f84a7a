-- W4 mq: lease up to 100 messages, then ack them, in one transaction.
BEGIN;
SELECT coalesce(array_agg(id), '{}') AS ids FROM mq.receive('bench', 100) \gset
SELECT mq.ack('bench', :ids::bigint[]);
END;
