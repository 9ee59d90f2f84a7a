-- send: ids, delay, priority order, dedup keys, batches, transactions
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
SELECT mq.create_queue('s');

-- ids increase
SELECT mq.send('s', '{"n": 1}') < mq.send('s', '{"n": 2}') AS increasing;

-- priority: higher first, then oldest first
SELECT mq.purge_queue('s') >= 0 AS purged;
SELECT mq.send('s', '{"n": "low-1"}', priority => -1) > 0;
SELECT mq.send('s', '{"n": "mid-1"}') > 0;
SELECT mq.send('s', '{"n": "high-1"}', priority => 10) > 0;
SELECT mq.send('s', '{"n": "mid-2"}') > 0;
SELECT mq.send('s', '{"n": "high-2"}', priority => 10) > 0;
SELECT mq.send('s', '{"n": "max"}', priority => 2147483647) > 0;
SELECT mq.send('s', '{"n": "min"}', priority => -2147483648) > 0;
SELECT message->>'n' AS n, priority, attempt FROM mq.receive('s', 10);
-- one at a time gives the same order
SELECT mq.send('s', '{"n": "b"}', priority => 1) > 0;
SELECT mq.send('s', '{"n": "a"}', priority => 2) > 0;
SELECT mq.send('s', '{"n": "c"}') > 0;
SELECT (SELECT message->>'n' FROM mq.receive('s')) AS first,
       (SELECT message->>'n' FROM mq.receive('s')) AS second,
       (SELECT message->>'n' FROM mq.receive('s')) AS third;

-- headers are kept; delay hides a message
SELECT mq.send('s', '{"n": "h"}', headers => '{"k": "v"}') > 0;
SELECT message, headers FROM mq.receive('s');
SELECT mq.send('s', '{"n": "later"}', delay => '1 hour') > 0;
SELECT count(*) FROM mq.receive('s');
SELECT ready, delayed FROM mq.metrics('s');

-- visible later in the same transaction when not delayed
BEGIN;
SELECT mq.send('s', '{"n": "tx"}') > 0;
SELECT message FROM mq.receive('s');
COMMIT;

-- a rolled-back send leaves nothing
BEGIN;
SELECT mq.send('s', '{"n": "rolled back"}') > 0;
ROLLBACK;
SELECT count(*) FROM mq.receive('s');

-- a send inside a savepoint that rolls back is gone, the rest stays
BEGIN;
SELECT mq.send('s', '{"n": "kept"}') > 0;
SAVEPOINT a;
SELECT mq.send('s', '{"n": "dropped"}') > 0;
ROLLBACK TO a;
COMMIT;
SELECT message->>'n' FROM mq.receive('s', 10);

-- dedup: same key, same id, one message, until it is acked
SELECT mq.send('s', '{"n": "d1"}', dedup_key => 'k') AS first_id \gset
SELECT mq.send('s', '{"n": "d2"}', dedup_key => 'k') = :first_id AS same_id;
SELECT mq.send('s', '{"n": "other"}', dedup_key => 'k2') <> :first_id AS other_key_new_id;
SELECT message->>'n' AS n FROM mq.receive('s', 10) ORDER BY 1;
-- still deduplicated while in flight
SELECT mq.send('s', '{"n": "d3"}', dedup_key => 'k') = :first_id AS same_while_in_flight;
SELECT mq.ack('s', :first_id);
SELECT mq.send('s', '{"n": "d4"}', dedup_key => 'k') <> :first_id AS new_after_ack;
SELECT message->>'n' AS n FROM mq.receive('s', 10);
-- delayed messages deduplicate too
SELECT mq.send('s', '{"n": "dd1"}', dedup_key => 'kd', delay => '1 hour') AS delayed_id \gset
SELECT mq.send('s', '{"n": "dd2"}', dedup_key => 'kd') = :delayed_id AS same_delayed;
SELECT mq.purge_queue('s');
SELECT mq.send('s', '{"n": "dd3"}', dedup_key => 'kd') <> :delayed_id AS new_after_purge;

-- batches return ids in input order, all in one transaction
SELECT mq.purge_queue('s');
SELECT count(*), bool_and(id > 0) FROM mq.send_batch('s', ARRAY['{"b": 1}', '{"b": 2}', '{"b": 3}']::jsonb[]) AS id;
SELECT array_agg(b ORDER BY o) = array_agg(b ORDER BY b) AS ordered
  FROM mq.send_batch('s', ARRAY['{"b": 4}', '{"b": 5}', '{"b": 6}']::jsonb[]) WITH ORDINALITY AS t(b, o);
SELECT message->>'b' AS b, headers FROM mq.receive('s', 10);
SELECT count(*) FROM mq.send_batch('s', ARRAY['{"c": 1}', '{"c": 2}']::jsonb[],
                                   ARRAY['{"h": 1}', NULL]::jsonb[], priority => 3);
SELECT message, headers, priority FROM mq.receive('s', 10);
SELECT count(*) FROM mq.send_batch('s', ARRAY[]::jsonb[]);
SELECT count(*) FROM mq.send_batch('s', ARRAY['{"d": 1}']::jsonb[], delay => '1 hour');
SELECT ready, delayed FROM mq.metrics('s');

-- bad input
SELECT pg_temp.err($$SELECT mq.send('s', NULL)$$);
SELECT pg_temp.err($$SELECT mq.send(NULL, '{}')$$);
SELECT pg_temp.err($$SELECT mq.send('nope', '{}')$$);
SELECT pg_temp.err($$SELECT mq.send('Bad Name', '{}')$$);
SELECT pg_temp.err($$SELECT mq.send('s', '{}', headers => '[1, 2]')$$);
SELECT pg_temp.err($$SELECT mq.send('s', '{}', headers => '"text"')$$);
SELECT pg_temp.err($$SELECT mq.send('s', '{}', delay => '-1 second')$$);
SELECT pg_temp.err($$SELECT mq.send_batch('s', NULL)$$);
SELECT pg_temp.err($$SELECT mq.send_batch('s', ARRAY['{}', NULL]::jsonb[])$$);
SELECT pg_temp.err($$SELECT mq.send_batch('s', ARRAY['{}', '{}']::jsonb[], ARRAY['{}']::jsonb[])$$);
SELECT pg_temp.err($$SELECT mq.send_batch('s', ARRAY['{}']::jsonb[], ARRAY['[]']::jsonb[])$$);
SELECT pg_temp.err($$SELECT mq.send_batch('s', ARRAY['{}']::jsonb[], delay => '-1 s')$$);
SELECT pg_temp.err($$SELECT mq.send_batch('nope', ARRAY['{}']::jsonb[])$$);
-- scalars and arrays are valid messages; a failed batch adds nothing
SELECT mq.purge_queue('s');
SELECT mq.send('s', '42') > 0, mq.send('s', '"text"') > 0, mq.send('s', '[1]') > 0;
SELECT pg_temp.err($$SELECT mq.send_batch('s', ARRAY['{"x": 1}', NULL]::jsonb[])$$);
SELECT message FROM mq.receive('s', 10);
-- sends write a row without a plan (src/util.c mq_insert_row) while the
-- tables are as mq made them; a table altered by hand (a trigger, a column)
-- gets the INSERT statement instead, which honours the change
SELECT mq.purge_queue('s');
CREATE TABLE public.seen (tab text, n int);
CREATE FUNCTION public.seen_row() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO public.seen VALUES (TG_TABLE_NAME, (NEW.message->>'n')::int); RETURN NEW; END $$;
CREATE TRIGGER seen AFTER INSERT ON mq.q_s FOR EACH ROW EXECUTE FUNCTION public.seen_row();
CREATE TRIGGER seen AFTER INSERT ON mq.w_s FOR EACH ROW EXECUTE FUNCTION public.seen_row();
SELECT mq.send('s', '{"n": 1}') > 0, mq.send('s', '{"n": 2}', delay => '1 hour') > 0;
SELECT tab, n FROM public.seen ORDER BY n;
DROP TRIGGER seen ON mq.q_s;
DROP TRIGGER seen ON mq.w_s;
ALTER TABLE mq.q_s ADD COLUMN extra int DEFAULT 7;
SELECT mq.send('s', '{"n": 3}') > 0;
SELECT message->>'n' AS n, extra FROM mq.q_s ORDER BY seq;
ALTER TABLE mq.q_s DROP COLUMN extra;
SELECT mq.send('s', '{"n": 4}') > 0;
SELECT string_agg(message->>'n', ' ' ORDER BY message->>'n') FROM mq.receive('s', 10);
SELECT count(*) FROM public.seen;
-- leases and acks delete without a plan (src/util.c mq_delete_first,
-- mq_delete_key) likewise; with a DELETE trigger on the table they run the
-- statement, which fires it
CREATE FUNCTION public.seen_gone() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO public.seen VALUES ('gone ' || TG_TABLE_NAME, (OLD.message->>'n')::int); RETURN OLD; END $$;
CREATE TRIGGER gone AFTER DELETE ON mq.q_s FOR EACH ROW EXECUTE FUNCTION public.seen_gone();
CREATE TRIGGER gone AFTER DELETE ON mq.w_s FOR EACH ROW EXECUTE FUNCTION public.seen_gone();
SELECT mq.send('s', '{"n": 5}') > 0;
SELECT message FROM mq.receive('s', 1);
SELECT mq.ack('s', array_agg(id ORDER BY id)) FROM mq.w_s WHERE leased;
SELECT mq.ack('s', id) FROM mq.w_s;
SELECT tab, string_agg(n::text, ' ' ORDER BY n) FROM public.seen WHERE tab LIKE 'gone%' GROUP BY tab ORDER BY tab;
DROP TRIGGER gone ON mq.q_s;
DROP TRIGGER gone ON mq.w_s;
DROP FUNCTION public.seen_gone();
-- a column whose type was changed by hand (only a superuser can): the
-- statements, which convert, instead of the row helpers, which would write
-- a jsonb value into a json column as it is
SELECT mq.create_queue('s_types');
ALTER TABLE mq.q_s_types ALTER COLUMN message TYPE json USING message::json;
SELECT mq.send('s_types', '{"n": 7}') > 0;
SELECT message::text FROM mq.q_s_types;
ALTER TABLE mq.q_s_types ALTER COLUMN message TYPE jsonb USING message::jsonb;
SELECT mq.drop_queue('s_types');
DROP TABLE public.seen;
DROP FUNCTION public.seen_row();
SELECT mq.drop_queue('s');
