-- errors: nothing half done after an error; search_path cannot redirect mq
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
SELECT mq.create_queue('e');
-- a failing statement after a send rolls the send back with it
SELECT pg_temp.err($$SELECT mq.send('e', '{"n": 1}') / 0$$);
SELECT ready, total_sent FROM mq.metrics('e');
-- a hostile search_path with its own = operator for bigint changes nothing
CREATE SCHEMA evil;
CREATE FUNCTION evil.always_true(bigint, bigint) RETURNS boolean
  LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.always_true);
SET search_path = evil, pg_catalog, public;
SELECT mq.send('e', '{"n": 2}') AS id \gset
SELECT mq.send('e', '{"n": 3}') > 0;
SELECT count(*) FROM mq.receive('e', 2);
SELECT mq.ack('e', :id);
SELECT in_flight FROM mq.metrics('e');
RESET search_path;
DROP SCHEMA evil CASCADE;
-- a prepared transaction cannot carry mq work
BEGIN;
SELECT mq.send('e', '{"n": 4}') > 0;
PREPARE TRANSACTION 'p1';
SELECT count(*) FROM pg_prepared_xacts;
SELECT ready FROM mq.metrics('e');
SELECT mq.drop_queue('e');
