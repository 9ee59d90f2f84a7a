-- rowpaths: leases, acks and a group's next message move their rows
-- without a plan (src/util.c: mq_insert_begin/next, mq_delete_first,
-- mq_delete_key); they must do what the statements they replace did.
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
CREATE FUNCTION pg_temp.state(q text) RETURNS text LANGUAGE sql AS
  $$ SELECT format('ready %s in_flight %s delayed %s', ready, in_flight, delayed)
       FROM mq.metrics(q) $$;
SELECT mq.create_queue('rp', retry_delay => '0');

-- A read-only transaction writes nothing: a lease and an ack fail as
-- their statements did (25006), and the messages stay where they were.
SELECT mq.send('rp', '{"n": 1}') AS id \gset
SELECT count(*) FROM mq.send_batch('rp', ARRAY['{"n": 0}']::jsonb[]);
SELECT receipt FROM mq.receive('rp') \gset
BEGIN READ ONLY;
SELECT pg_temp.err($$SELECT count(*) FROM mq.receive('rp')$$);
COMMIT;
SELECT pg_temp.state('rp');
SET default_transaction_read_only = on;
SELECT pg_temp.err(format('SELECT mq.ack(%L, %s)', 'rp', :id));
SELECT pg_temp.err(format('SELECT mq.ack(%L, ARRAY[%s]::bigint[], ARRAY[%L])', 'rp', :id, :'receipt'));
RESET default_transaction_read_only;
SELECT pg_temp.state('rp');
SELECT mq.ack('rp', :id, :'receipt');
SELECT mq.ack('rp', id) FROM mq.receive('rp');

-- One statement that receives and acks: each call sees what the calls
-- before it in the statement wrote (here the leases), as each statement
-- they ran did.
SELECT count(*) FROM mq.send_batch('rp', ARRAY['{"n": 2}', '{"n": 3}', '{"n": 4}']::jsonb[]);
SELECT mq.ack('rp', id, receipt) AS acked, message FROM mq.receive('rp', 3) ORDER BY id;
SELECT count(*) FROM mq.send_batch('rp', ARRAY['{"n": 5}', '{"n": 6}', '{"n": 7}', '{"n": 8}']::jsonb[]);
SELECT count(DISTINCT id) AS distinct_ids, count(*) AS leased
  FROM (SELECT id FROM mq.receive('rp', 2) UNION ALL SELECT id FROM mq.receive('rp', 2)) r;
SELECT mq.ack('rp', array_agg(id)) FROM mq.w_rp;
-- the same under REPEATABLE READ (a lease there runs the statement; the
-- ack deletes without a plan, under the transaction's snapshot)
SELECT mq.send('rp', '{"n": 9}') > 0 AS sent;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT mq.ack('rp', id, receipt) AS acked FROM mq.receive('rp');
COMMIT;

-- Savepoints: a lease or an ack rolled back to a savepoint is undone, and
-- the rest of the transaction sees the rows as they were.
SELECT count(*) FROM mq.send_batch('rp', ARRAY['{"n": 10}', '{"n": 11}']::jsonb[]);
BEGIN;
SAVEPOINT s;
SELECT message FROM mq.receive('rp', 10) ORDER BY id;
ROLLBACK TO s;
SELECT pg_temp.state('rp');
SELECT message, attempt FROM mq.receive('rp', 10) ORDER BY id;
SAVEPOINT t;
SELECT mq.ack('rp', array_agg(id)) FROM mq.w_rp;
ROLLBACK TO t;
SELECT pg_temp.state('rp');
SELECT mq.ack('rp', array_agg(id)) FROM mq.w_rp;
COMMIT;
SELECT pg_temp.state('rp');

-- ack(ids[]): an id given twice, an unknown id; with receipts, a wrong
-- and the right one for one id (in either order): each message once.
SELECT count(*) FROM mq.send_batch('rp', ARRAY['{"n": 12}', '{"n": 13}', '{"n": 14}']::jsonb[]);
CREATE TEMP TABLE l AS SELECT id, receipt, message->>'n' AS n FROM mq.receive('rp', 3);
SELECT mq.ack('rp', ARRAY[id, id, 999999999]) FROM l WHERE n = '12';
SELECT mq.ack('rp', ARRAY[id, id], ARRAY['0000000000000000', receipt]) FROM l WHERE n = '13';
SELECT mq.ack('rp', ARRAY[id, id], ARRAY[receipt, '0000000000000000']) FROM l WHERE n = '14';
SELECT mq.ack('rp', ARRAY[id, id], ARRAY[receipt, receipt]) FROM l WHERE n = '14';
SELECT pg_temp.state('rp');
DROP TABLE l;

-- Publications: a table that publishes deletes and has no replica
-- identity (the ready table has no primary key) refuses the lease's
-- delete, as it refused the statement's; with one it works.
SET client_min_messages = error;   -- (wal_level is not logical here)
CREATE PUBLICATION rp_pub FOR TABLE mq.q_rp, mq.w_rp;
RESET client_min_messages;
SELECT mq.send('rp', '{"n": 15}') > 0 AS sent;
SELECT pg_temp.err($$SELECT count(*) FROM mq.receive('rp')$$);
ALTER TABLE mq.q_rp REPLICA IDENTITY FULL;
SELECT message FROM mq.receive('rp');
SELECT mq.ack('rp', array_agg(id)) FROM mq.w_rp;
DROP PUBLICATION rp_pub;
ALTER TABLE mq.q_rp REPLICA IDENTITY DEFAULT;

-- A constraint added by hand is checked by the plan-less insert, with
-- the executor's message (on PostgreSQL 16 and later that message reads
-- the range table's permission info, which mq_insert_begin must give).
ALTER TABLE mq.q_rp ADD CONSTRAINT rp_small CHECK (priority < 5);
SELECT pg_temp.err($$SELECT mq.send('rp', '{"n": 16}', priority => 7)$$);
ALTER TABLE mq.q_rp DROP CONSTRAINT rp_small;

-- Toasted values: messages and headers stored out of line (large,
-- incompressible), and an error text as large, keep every byte through a
-- lease, a nack, a second lease, a group's backlog and the acks.
SELECT mq.create_queue('rp_big', retry_delay => '0');
CREATE FUNCTION pg_temp.blob(seed text, n int) RETURNS text LANGUAGE sql AS
  $$ SELECT string_agg(encode(sha256(convert_to(seed || '.' || i, 'UTF8')), 'base64'), '')
       FROM generate_series(1, n) i $$;
CREATE FUNCTION pg_temp.toasted(rel regclass) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM %s',
                 (SELECT reltoastrelid::regclass FROM pg_class WHERE oid = rel)) INTO n;
  RETURN n;
END $$;
CREATE TEMP TABLE sent AS
  SELECT n, jsonb_build_object('n', n, 'blob', pg_temp.blob('m' || n, 300)) AS m,
         jsonb_build_object('h', pg_temp.blob('h' || n, 100)) AS h,
         CASE WHEN n > 2 THEN 'g' END AS g
    FROM generate_series(1, 4) n;
SELECT count(*) FROM (SELECT mq.send('rp_big', m, headers => h, group_key => g) FROM sent ORDER BY n) s;
SELECT pg_temp.toasted('mq.q_rp_big') > 0 AS ready_toasted, pg_temp.toasted('mq.b_rp_big') > 0 AS backlog_toasted;
CREATE TEMP TABLE got AS SELECT * FROM mq.receive('rp_big', 10);
SELECT s.n, g.message = s.m AS message_intact, g.headers = s.h AS headers_intact
  FROM got g JOIN sent s ON s.n = (g.message->>'n')::int ORDER BY s.n;
SELECT pg_temp.toasted('mq.w_rp_big') > 0 AS wait_toasted;
-- a nack with a large error, then the same message leased again
SELECT mq.nack('rp_big', id, delay => '0', error => pg_temp.blob('e', 200), receipt => receipt)
  FROM got WHERE (message->>'n')::int = 1;
DELETE FROM got WHERE (message->>'n')::int = 1;
INSERT INTO got SELECT * FROM mq.receive('rp_big', 10);
SELECT s.n, g.attempt, g.message = s.m AS message_intact, g.headers = s.h AS headers_intact
  FROM got g JOIN sent s ON s.n = (g.message->>'n')::int WHERE s.n = 1;
SELECT last_error = pg_temp.blob('e', 200) AS error_intact FROM mq.w_rp_big
  WHERE (message->>'n')::int = 1;
-- acking group g's first message moves its second up from the backlog
SELECT mq.ack('rp_big', array_agg(id), array_agg(receipt)) FROM got WHERE (message->>'n')::int = 3;
SELECT s.n, g.message = s.m AS message_intact, g.headers = s.h AS headers_intact
  FROM mq.receive('rp_big', 10) g JOIN sent s ON s.n = (g.message->>'n')::int;
SELECT mq.ack('rp_big', array_agg(id)) FROM mq.w_rp_big;
SELECT pg_temp.state('rp_big');
SELECT mq.drop_queue('rp_big');
SELECT mq.drop_queue('rp');
