-- W12 mq: W2's receive+ack on queue :q (pgbench -D q=...).
\set id 0
BEGIN;
SELECT id FROM mq.receive(:q, 1) \aset
SELECT mq.ack(:q, :id::bigint);
END;
