-- groups: message groups (send's group_key): strict order within a group,
-- one message of a group handed out at a time, parallel across groups
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
-- what a receive handed out: "n/group" in the order it returned them
CREATE TEMP TABLE got (id bigint, n text, g text, attempt int, receipt text);
CREATE FUNCTION pg_temp.recv(q text, qty int, per_group int DEFAULT 1,
                             vt interval DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE r record; res text := '';
BEGIN
  FOR r IN SELECT * FROM mq.receive(q, qty, visibility_timeout => vt, per_group => per_group) LOOP
    DELETE FROM got WHERE id = r.id;
    INSERT INTO got VALUES (r.id, r.message->>'n', r.group_key, r.attempt, r.receipt);
    res := res || CASE WHEN res = '' THEN '' ELSE ' ' END
               || coalesce(r.message->>'n', '?') || '/' || coalesce(left(r.group_key, 8), '-');
  END LOOP;
  RETURN res;
END $$;
CREATE FUNCTION pg_temp.msg(q text, n text) RETURNS bigint LANGUAGE sql AS
  $$ SELECT id FROM got WHERE got.n = msg.n $$;
CREATE FUNCTION pg_temp.ack(q text, n text) RETURNS boolean LANGUAGE sql AS
  $$ SELECT mq.ack(q, id, receipt) FROM got WHERE got.n = ack.n $$;
CREATE FUNCTION pg_temp.state(q text) RETURNS text LANGUAGE sql AS
  $$ SELECT format('ready %s in_flight %s delayed %s groups %s groups_ready %s groups_in_flight %s',
                   ready, in_flight, delayed, groups, groups_ready, groups_in_flight)
       FROM mq.metrics(q) $$;

SELECT mq.create_queue('gq', retry_delay => '0', max_attempts => 3);
-- a group key compares byte by byte in each of the queue's tables: the
-- probes of the group and backlog indexes never call the database's collation
SELECT string_agg(c.relname || ':' || a.attcollation::regcollation::text, ',' ORDER BY c.relname)
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'group_key'
 WHERE c.relnamespace = 'mq'::regnamespace AND c.relname ~ '^[bgqw]_gq$';
-- a, b interleaved, and an ungrouped message
SELECT count(*) FROM (
  SELECT mq.send('gq', jsonb_build_object('n', i::text), group_key => g)
    FROM (VALUES (1, 'a'), (2, 'a'), (3, 'b'), (4, NULL), (5, 'a'), (6, 'b')) v(i, g)) s;
SELECT pg_temp.state('gq');
SELECT grouped FROM mq.queues WHERE queue = 'gq';
-- one message per group, the first of each, and the ungrouped one
SELECT pg_temp.recv('gq', 10);
SELECT pg_temp.recv('gq', 10);
SELECT pg_temp.state('gq');
-- ack a's first: a's second comes next, b stays held by 3
SELECT pg_temp.ack('gq', '1');
SELECT pg_temp.recv('gq', 10);
-- a nack (no delay) makes the same message the next one of its group
SELECT mq.nack('gq', pg_temp.msg('gq', '2'), delay => '0');
SELECT pg_temp.recv('gq', 10);
SELECT attempt FROM got WHERE n = '2';
-- a nack with a delay holds the group until the retry
SELECT mq.nack('gq', pg_temp.msg('gq', '2'), delay => '1 hour');
SELECT pg_temp.recv('gq', 10);
SELECT pg_temp.state('gq');
-- acking the waiting retry cancels it; the group goes on
SELECT mq.ack('gq', pg_temp.msg('gq', '2'));
SELECT pg_temp.recv('gq', 10);
-- an expired lease is a failed attempt: the same message comes back first
SELECT pg_temp.ack('gq', '3');
SELECT pg_temp.recv('gq', 10, vt => '1 millisecond');
SELECT pg_sleep(0.05);
SELECT pg_temp.recv('gq', 10);
SELECT n, attempt FROM got WHERE n = '6';
SELECT pg_temp.ack('gq', '5'), pg_temp.ack('gq', '6'), pg_temp.ack('gq', '4');
SELECT pg_temp.state('gq');
SELECT grouped FROM mq.queues WHERE queue = 'gq';
SELECT count(*) AS group_rows FROM mq.g_gq;

-- dead letter: past max_attempts the message goes, and its group moves on
SELECT count(*) FROM mq.send_batch('gq', ARRAY['{"n": "10"}', '{"n": "11"}']::jsonb[], group_key => 'c');
SELECT pg_temp.recv('gq', 10);
SELECT mq.nack('gq', pg_temp.msg('gq', '10'), delay => '0');
SELECT pg_temp.recv('gq', 10);
SELECT mq.nack('gq', pg_temp.msg('gq', '10'), delay => '0');
SELECT pg_temp.recv('gq', 10);
SELECT mq.nack('gq', pg_temp.msg('gq', '10'), error => 'poison');
SELECT message->>'n' AS n, group_key, attempts, last_error FROM mq.dead_letters WHERE queue = 'gq';
SELECT pg_temp.recv('gq', 10);
-- a redrive sends it back to the end of its group
SELECT mq.redrive('gq');
SELECT pg_temp.recv('gq', 10);
SELECT pg_temp.ack('gq', '11');
SELECT pg_temp.recv('gq', 10);
SELECT pg_temp.ack('gq', '10');
SELECT pg_temp.state('gq');

-- a delayed message delays its group; a later message of it waits
SELECT mq.send('gq', '{"n": "20"}', group_key => 'd', delay => '1 hour') > 0;
SELECT mq.send('gq', '{"n": "21"}', group_key => 'd') > 0;
SELECT mq.send('gq', '{"n": "22"}', group_key => 'e') > 0;
SELECT pg_temp.recv('gq', 10);
SELECT pg_temp.state('gq');
SELECT mq.purge_queue('gq');
SELECT pg_temp.state('gq');

-- priority orders the groups' current messages, never reorders a group
SELECT mq.send('gq', '{"n": "30"}', group_key => 'p', priority => 0) > 0;
SELECT mq.send('gq', '{"n": "31"}', group_key => 'p', priority => 9) > 0;
SELECT mq.send('gq', '{"n": "32"}', group_key => 'q', priority => 5) > 0;
SELECT mq.send('gq', '{"n": "33"}', priority => 7) > 0;
SELECT pg_temp.recv('gq', 1), pg_temp.recv('gq', 1), pg_temp.recv('gq', 1), pg_temp.recv('gq', 1);
SELECT pg_temp.ack('gq', '30');
SELECT pg_temp.recv('gq', 10);
SELECT mq.purge_queue('gq');

-- fairness: a group's next message queues behind the groups already ready
SELECT count(*) FROM mq.send_batch('gq', ARRAY['{"n": "40"}', '{"n": "41"}', '{"n": "42"}']::jsonb[],
                                   group_key => 'big');
SELECT count(*) FROM mq.send_batch('gq', ARRAY['{"n": "43"}', '{"n": "44"}']::jsonb[],
                                   group_keys => ARRAY['s1', 's2']);
SELECT pg_temp.recv('gq', 1);
SELECT pg_temp.ack('gq', '40');
SELECT pg_temp.recv('gq', 10);
SELECT mq.purge_queue('gq');

-- per_group: a run of a group's next messages, in order, with its head
SELECT count(*) FROM mq.send_batch('gq',
  ARRAY['{"n": "50"}', '{"n": "51"}', '{"n": "52"}', '{"n": "53"}', '{"n": "54"}', '{"n": "55"}']::jsonb[],
  group_keys => ARRAY['r', 'r', 'r', 's', 'r', NULL]);
SELECT pg_temp.recv('gq', 10, per_group => 3);
SELECT pg_temp.state('gq');
-- the run holds its group until every message of it is gone
SELECT pg_temp.ack('gq', '52'), pg_temp.ack('gq', '50');
SELECT pg_temp.recv('gq', 10, per_group => 3);
SELECT mq.nack('gq', pg_temp.msg('gq', '51'), delay => '0');
-- the retried message keeps its row in the run table
SELECT run_start IS NOT NULL AS in_run, count(*) FROM mq.r_gq GROUP BY 1;
SELECT pg_temp.recv('gq', 10, per_group => 3);
SELECT pg_temp.ack('gq', '51');
SELECT pg_temp.recv('gq', 10, per_group => 3);
SELECT count(*) AS run_rows_left FROM mq.r_gq;
-- a run acked in one call (one statement deletes all of it): only the last
-- one to settle moves the group on, once
SELECT mq.purge_queue('gq');
SELECT count(*) FROM mq.send_batch('gq', ARRAY['{"n": "a0"}', '{"n": "a1"}', '{"n": "a2"}',
                                               '{"n": "a3"}', '{"n": "a4"}']::jsonb[], group_key => 'k');
SELECT pg_temp.recv('gq', 2, per_group => 2);
SELECT mq.ack('gq', ARRAY[pg_temp.msg('gq', 'a0'), pg_temp.msg('gq', 'a1')]);
SELECT pg_temp.recv('gq', 10);
SELECT pg_temp.state('gq');
-- quantity bounds a run too
SELECT mq.purge_queue('gq');
SELECT count(*) FROM mq.send_batch('gq', ARRAY['{"n": "60"}', '{"n": "61"}', '{"n": "62"}']::jsonb[],
                                   group_key => 't');
SELECT pg_temp.recv('gq', 2, per_group => 10);
SELECT mq.purge_queue('gq');

-- pop: a popped message lets its group go on
SELECT count(*) FROM mq.send_batch('gq', ARRAY['{"n": "70"}', '{"n": "71"}']::jsonb[], group_key => 'u');
SELECT string_agg(message->>'n', ' ') FROM mq.pop('gq', 10);
SELECT string_agg(message->>'n', ' ') FROM mq.pop('gq', 10);

-- publish with a group key
SELECT mq.create_queue('gsub');
SELECT mq.subscribe('gsub', 'orders.#');
SELECT mq.publish('orders.paid', '{"n": "80"}', group_key => 'order-1');
SELECT mq.publish('orders.shipped', '{"n": "81"}', group_key => 'order-1');
SELECT pg_temp.recv('gsub', 10);
SELECT pg_temp.ack('gsub', '80');
SELECT pg_temp.recv('gsub', 10);

-- a dead letter into a dead-letter queue keeps its group there
SELECT mq.create_queue('gdlq');
SELECT mq.create_queue('gsrc', max_attempts => 1, dead_letter_queue => 'gdlq');
SELECT mq.send('gsrc', '{"n": "90"}', group_key => 'k') > 0;
SELECT pg_temp.recv('gsrc', 1);
SELECT mq.nack('gsrc', pg_temp.msg('gsrc', '90'));
SELECT pg_temp.recv('gdlq', 1);

-- a rolled-back ack changes nothing: the message stays leased, its group held
SELECT count(*) FROM mq.send_batch('gq', ARRAY['{"n": "95"}', '{"n": "96"}']::jsonb[], group_key => 'v');
SELECT pg_temp.recv('gq', 10);
BEGIN;
SELECT pg_temp.ack('gq', '95');
ROLLBACK;
SELECT pg_temp.recv('gq', 10);
SELECT pg_temp.ack('gq', '95');
SELECT pg_temp.recv('gq', 10);
SELECT mq.purge_queue('gq');

-- A settle looks first within a few of the gaps its queue's groups have
-- shown between their messages.  Gaps of about one, then one of about four
-- hundred (sends to other groups in between, after the message before it
-- was found, so that no trail has it): the last message is found past the
-- window, in its place, and none is left in the backlog.  (The others
-- wait at a lower priority.)
SELECT mq.create_queue('gw');
SELECT count(*) FROM mq.send_batch('gw', ARRAY['{"n": "w1"}', '{"n": "w2"}', '{"n": "w3"}']::jsonb[], group_key => 'w');
SELECT pg_temp.recv('gw', 1);
SELECT pg_temp.ack('gw', 'w1');
SELECT count(*) FROM generate_series(1, 200) i, LATERAL mq.send('gw', '{}', group_key => 'o' || i, priority => -1);
SELECT mq.send('gw', '{"n": "w4"}', group_key => 'w') > 0;
SELECT pg_temp.recv('gw', 1);
SELECT pg_temp.ack('gw', 'w2');
SELECT pg_temp.recv('gw', 1);
SELECT pg_temp.ack('gw', 'w3');
SELECT pg_temp.recv('gw', 1);
SELECT pg_temp.ack('gw', 'w4');
SELECT pg_temp.state('gw');
SELECT count(*) AS w_left FROM mq.b_gw WHERE group_key = 'w';
SELECT mq.drop_queue('gw');

-- The settle that takes a group's next message from the backlog notes the
-- index entries that follow it (the group's trail), and the next settles
-- go straight to those rows; each is checked first.
-- gt: a rolled back send leaves an entry in the trail: t4 is followed by t6.
SELECT mq.create_queue('gt');
SELECT count(*) FROM mq.send_batch('gt', ARRAY['{"n": "t1"}', '{"n": "t2"}', '{"n": "t3"}', '{"n": "t4"}']::jsonb[], group_key => 'a');
BEGIN;
SELECT mq.send('gt', '{"n": "t5"}', group_key => 'a') > 0;
ROLLBACK;
SELECT mq.send('gt', '{"n": "t6"}', group_key => 'a') > 0;
SELECT pg_temp.recv('gt', 1);
SELECT pg_temp.ack('gt', 't1');
SELECT pg_temp.recv('gt', 1);
SELECT pg_temp.ack('gt', 't2');
SELECT pg_temp.recv('gt', 1);
SELECT pg_temp.ack('gt', 't3');
SELECT pg_temp.recv('gt', 1);
SELECT pg_temp.ack('gt', 't4');
SELECT pg_temp.recv('gt', 1);
SELECT pg_temp.ack('gt', 't6');
SELECT pg_temp.state('gt');
SELECT mq.drop_queue('gt');
-- gu: u3, in the trail, removed by hand; VACUUM frees its place and u6, a
-- later message of the group, takes it: u4 still comes before u5 and u6.
SELECT mq.create_queue('gu');
SELECT count(*) FROM mq.send_batch('gu', ARRAY['{"n": "u1"}', '{"n": "u2"}', '{"n": "u3"}', '{"n": "u4"}']::jsonb[], group_key => 'b');
SELECT pg_temp.recv('gu', 1);
SELECT pg_temp.ack('gu', 'u1');
SELECT ctid AS u3_place FROM mq.b_gu WHERE message->>'n' = 'u3' \gset
DELETE FROM mq.b_gu WHERE message->>'n' = 'u3';
VACUUM mq.b_gu;
SELECT mq.send('gu', '{"n": "u5"}', group_key => 'b') > 0, mq.send('gu', '{"n": "u6"}', group_key => 'b') > 0;
SELECT ctid = :'u3_place' AS u6_in_u3s_place FROM mq.b_gu WHERE message->>'n' = 'u6';
SELECT pg_temp.recv('gu', 1);
SELECT pg_temp.ack('gu', 'u2');
SELECT pg_temp.recv('gu', 1);
SELECT pg_temp.ack('gu', 'u4');
SELECT pg_temp.recv('gu', 1);
SELECT pg_temp.ack('gu', 'u5');
SELECT pg_temp.recv('gu', 1);
SELECT pg_temp.ack('gu', 'u6');
SELECT mq.drop_queue('gu');
-- gv: the trail's rows are removed by hand and VACUUM truncates the
-- backlog: the trail points past the table's end, and the group ends.
SELECT mq.create_queue('gv');
SELECT count(*) FROM mq.send_batch('gv', ARRAY['{"n": "v1"}', '{"n": "v2"}']::jsonb[], group_key => 'c');
SELECT count(*) FROM generate_series(1, 300) i, LATERAL mq.send('gv', jsonb_build_object('i', i), group_key => 'z', priority => -1);
SELECT count(*) FROM mq.send_batch('gv', ARRAY['{"n": "v3"}', '{"n": "v4"}']::jsonb[], group_key => 'c');
SELECT pg_temp.recv('gv', 1);
SELECT pg_temp.ack('gv', 'v1');
SELECT (ctid::text::point)[0] > 0 AS v3_past_the_first_page FROM mq.b_gv WHERE message->>'n' = 'v3';
DELETE FROM mq.b_gv WHERE group_key = 'z' OR message->>'n' IN ('v3', 'v4');
VACUUM mq.b_gv;
SELECT pg_relation_size('mq.b_gv') = 0 AS truncated;
SELECT pg_temp.recv('gv', 1);
SELECT pg_temp.ack('gv', 'v2');
SELECT count(*) FROM mq.g_gv WHERE group_key = 'c';
SELECT mq.drop_queue('gv');

-- Leases that run out end in one statement (MQP_LEASES_EXPIRED), retries
-- and dead letters together, grouped or not, runs included: every gauge
-- stays what the tables hold (pg_temp.exact: metrics against a recount),
-- the dead letters' dedup keys are released and the retries' kept, and a
-- dead letter's group goes on (or its run waits for the run's others).
-- (ready counts the backlogs too.)
CREATE FUNCTION pg_temp.exact(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE m record; c record;
BEGIN
  SELECT * INTO m FROM mq.metrics(q);
  EXECUTE format('SELECT (SELECT count(*) FROM mq.%1$I) + (SELECT count(*) FROM mq.%5$I) AS ready,
                         (SELECT count(*) FROM mq.%2$I WHERE leased) AS in_flight,
                         (SELECT count(*) FROM mq.%2$I WHERE NOT leased) AS delayed,
                         (SELECT count(*) FROM mq.%3$I) AS groups,
                         (SELECT count(*) FROM mq.%1$I WHERE group_key IS NOT NULL) AS groups_ready,
                         (SELECT count(*) FROM mq.%2$I WHERE leased AND group_key IS NOT NULL) AS groups_in_flight,
                         (SELECT count(*) FROM mq.dead_letters WHERE queue = %4$L) AS dead',
                 'q_' || q, 'w_' || q, 'g_' || q, q, 'b_' || q) INTO c;
  RETURN CASE WHEN (m.ready, m.in_flight, m.delayed, m.groups, m.groups_ready, m.groups_in_flight, m.dead)
                   = (c.ready, c.in_flight, c.delayed, c.groups, c.groups_ready, c.groups_in_flight, c.dead)
              THEN 'exact' ELSE format('metrics %s, tables %s',
                   (m.ready, m.in_flight, m.delayed, m.groups, m.groups_ready, m.groups_in_flight, m.dead),
                   (c.ready, c.in_flight, c.delayed, c.groups, c.groups_ready, c.groups_in_flight, c.dead)) END;
END $$;
-- gx: 2 attempts, retries an hour away; gy: 1 attempt
SELECT mq.create_queue('gx', max_attempts => 2, retry_delay => '1 hour', retry_delay_max => '1 hour'),
       mq.create_queue('gy', max_attempts => 1);
SELECT mq.send('gx', '{"n": "x1"}', dedup_key => 'kx1') > 0 AS sent,
       mq.send('gx', '{"n": "c1"}', dedup_key => 'kc1', group_key => 'c') > 0 AS sent;
SELECT count(*) FROM mq.send_batch('gx', ARRAY['{"n": "r1"}', '{"n": "r2"}', '{"n": "r3"}']::jsonb[],
                                   group_key => 'r');
-- x1, c1 and r1 fail once: their next leases' end makes them dead
DELETE FROM got;
SELECT pg_temp.recv('gx', 10);
SELECT bool_and(mq.nack('gx', id, delay => '0', receipt => receipt)) FROM got;
-- leased for 400 ms: x1, c1, and r1 with r2 as one run
SELECT pg_temp.recv('gx', 10, per_group => 2, vt => '400 milliseconds');
-- and the fresh x2, d1 (d2 behind it), e1 (e2 behind it): retries when
-- their leases end
SELECT mq.send('gx', '{"n": "c2"}', group_key => 'c') > 0 AS sent,
       mq.send('gx', '{"n": "x2"}', dedup_key => 'kx2') > 0 AS sent,
       mq.send('gx', '{"n": "d1"}', dedup_key => 'kd1', group_key => 'd') > 0 AS sent,
       mq.send('gx', '{"n": "d2"}', group_key => 'd') > 0 AS sent,
       mq.send('gx', '{"n": "e1"}', group_key => 'e') > 0 AS sent,
       mq.send('gx', '{"n": "e2"}', group_key => 'e') > 0 AS sent;
SELECT pg_temp.recv('gx', 10, vt => '400 milliseconds');
-- gy: the run f1 f2 (f3 behind it) dies whole in one statement
SELECT count(*) FROM mq.send_batch('gy', ARRAY['{"n": "f1"}', '{"n": "f2"}', '{"n": "f3"}']::jsonb[],
                                   group_key => 'f');
SELECT pg_temp.recv('gy', 10, per_group => 2, vt => '400 milliseconds');
SELECT pg_temp.state('gx'), pg_temp.exact('gx'), pg_temp.state('gy'), pg_temp.exact('gy');
SELECT pg_sleep(0.5);
-- one receive ends them all, in a REPEATABLE READ transaction: x1, c1, r1
-- dead, c2 moved up (and handed out at once), the rest retried an hour
-- away, r's run held by r2's retry
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT pg_temp.recv('gx', 10);
COMMIT;
SELECT pg_temp.state('gx'), pg_temp.exact('gx');
SELECT message->>'n' AS n, attempts, group_key FROM mq.dead_letters WHERE queue = 'gx' ORDER BY id;
SELECT total_dead_lettered FROM mq.metrics('gx');
SELECT message->>'n' AS n, attempt, leased, vt > now() + '10 minutes' AS later
  FROM mq.w_gx ORDER BY id;
SELECT message->>'n' AS n FROM mq.b_gx ORDER BY gseq;
-- the dead letters' keys are free again, the retries' still held
SELECT mq.send('gx', '{"n": "x1 again"}', dedup_key => 'kx1') <> pg_temp.msg('gx', 'x1') AS new_x1,
       mq.send('gx', '{"n": "c1 again"}', dedup_key => 'kc1') <> pg_temp.msg('gx', 'c1') AS new_c1,
       mq.send('gx', '{"n": "x2 again"}', dedup_key => 'kx2') = pg_temp.msg('gx', 'x2') AS dup_x2,
       mq.send('gx', '{"n": "d1 again"}', dedup_key => 'kd1') = pg_temp.msg('gx', 'd1') AS dup_d1;
SELECT pg_temp.state('gx'), pg_temp.exact('gx');
-- gy: f1 and f2 dead in one statement, and f3 goes on
SELECT pg_temp.recv('gy', 10);
SELECT message->>'n' AS n, attempts FROM mq.dead_letters WHERE queue = 'gy' ORDER BY id;
SELECT pg_temp.state('gy'), pg_temp.exact('gy');
SELECT mq.drop_queue('gx'), mq.drop_queue('gy');

-- bad inputs
SELECT pg_temp.err($$SELECT mq.send('gq', '{}', group_key => '')$$);
SELECT pg_temp.err($$SELECT mq.send('gq', '{}', group_key => repeat('x', 513))$$);
SELECT pg_temp.err($$SELECT mq.send('gq', '{"n": "98"}', group_key => repeat('x', 512))$$);
SELECT pg_temp.err($$SELECT mq.send('gq', '{}', group_key => 42)$$);
SELECT pg_temp.err($$SELECT mq.send_batch('gq', ARRAY['{}']::jsonb[], group_key => 'a', group_keys => ARRAY['a'])$$);
SELECT pg_temp.err($$SELECT mq.send_batch('gq', ARRAY['{}', '{}']::jsonb[], group_keys => ARRAY['a'])$$);
SELECT pg_temp.err($$SELECT mq.send_batch('gq', ARRAY['{}']::jsonb[], group_keys => ARRAY[['a']])$$);
SELECT pg_temp.err($$SELECT mq.send_batch('gq', ARRAY['{}']::jsonb[], group_keys => ARRAY[''])$$);
SELECT pg_temp.err($$SELECT mq.publish('orders.x', '{}', group_key => '')$$);
SELECT pg_temp.err($$SELECT mq.receive('gq', per_group => 0)$$);
SELECT pg_temp.err($$SELECT mq.receive('gq', per_group => 10001)$$);
SELECT pg_temp.err($$SELECT mq.receive('gq', per_group => 'x')$$);
-- NULL: no group, and per_group 1
SELECT mq.send('gq', '{"n": "99"}', group_key => NULL) > 0;
SELECT pg_temp.recv('gq', 10, per_group => NULL);
SELECT pg_temp.state('gq');
SELECT mq.drop_queue('gq'), mq.drop_queue('gsub'), mq.drop_queue('gsrc'), mq.drop_queue('gdlq');
SELECT count(*) FROM pg_class WHERE relnamespace = 'mq'::regnamespace AND relname ~ '^(g|b|gk|bi|qr|wr)_g';
