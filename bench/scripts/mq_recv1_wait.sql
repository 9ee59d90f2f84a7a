-- W8b/W10 mq consumer: a blocking receive of one message (waits up to 1 s
-- for one to be committed), then its ack, in one transaction.  id stays 0
-- when the wait ended with nothing (\aset assigns nothing for no row).
\set id 0
BEGIN;
SELECT id FROM mq.receive('bench', 1, wait => '1 s') \aset
SELECT mq.ack('bench', :id::bigint);
END;
