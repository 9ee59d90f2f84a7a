-- W2/W8 mq: lease one message, then ack it, in one transaction.
-- id stays 0 when the queue is empty (\aset assigns nothing for no row).
\set id 0
BEGIN;
SELECT id FROM mq.receive('bench', 1) \aset
SELECT mq.ack('bench', :id::bigint);
END;
