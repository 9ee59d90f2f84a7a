-- privileges: the security model of issue 9 ("Tests": pg_regress file
-- `privileges`).  Every mq function against every queue privilege (send,
-- receive, observe, manage), allowed and refused with its SQLSTATE; the
-- right to create queues; grants by a queue's creator; role membership;
-- revoke taking effect at once; a plain role reads no mq table and sees no
-- row of any view; storage owned by the extension's owner with pg_catalog
-- column types (also under a hostile search_path); topic rights; invalid
-- inputs (22023, 22004, 42P01, 42704).
--
-- Two sections near the end assert what issue 9 asks for and today's code
-- does not do; each is headed "SECURITY HOLE" and explains what fails:
--   A. the views mq.queues, mq.queue_privileges, mq.dead_letters,
--      mq.archive and mq.subscriptions are not security barriers: a role
--      with no grant at all reads every queue's dead letters, archive,
--      subscriptions (filters) and names through a cheap function of its own
--      in the WHERE clause, which the planner runs before the views' filter;
--   B. DROP ROLE leaves the role's mq grants, creator right, topic rights and
--      queue ownership behind as dangling role OIDs, which a role created
--      later with the same OID (or a restore: regrole dumps a dangling OID as
--      a number) inherits.
-- A contradicts issue 9's "views and set-returning functions ... show only
-- queues the caller may observe" and "no role without a grant can ... learn
-- the contents of a queue"; B its "no role without a grant can read, write
-- ..." for roles created later.  Everything else passes on the "Security
-- model, first slice" commit; with security_barrier views and a DROP ROLE
-- that refuses a role mq still refers to, the whole file passes (checked
-- with both fixes made by hand, not committed).
--
-- Roles are regress_mq_*; queues pr*; topics start with privtest.  The
-- session user is the superuser that created the extension (its owner).

-- try(role, sql): run sql as role (SET ROLE inside, RESET after); res is
-- the first column of the first row ('ok' when empty, e.g. void) or the
-- SQLSTATE of the error; msg is the error's message and detail.  Called by
-- the session user only.
CREATE FUNCTION pg_temp.try(r text, q text, OUT res text, OUT msg text)
LANGUAGE plpgsql AS $$
DECLARE
    v text;
    d text;
BEGIN
    BEGIN
        EXECUTE format('SET ROLE %I', r);
        EXECUTE q INTO v;
        res := coalesce(nullif(v, ''), 'ok');
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
        res := SQLSTATE;
        msg := SQLERRM || ' / ' || coalesce(d, '');
    END;
    RESET ROLE;
END $$;
-- err(sql): SQLSTATE and message of sql, run as the current role.
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;

CREATE ROLE regress_mq_creator;   -- creates the queues, grants on them
CREATE ROLE regress_mq_s;         -- send only
CREATE ROLE regress_mq_r;         -- receive only
CREATE ROLE regress_mq_o;         -- observe only
CREATE ROLE regress_mq_m;         -- manage only
CREATE ROLE regress_mq_plain;     -- nothing
CREATE ROLE regress_mq_group;
CREATE ROLE regress_mq_member IN ROLE regress_mq_group;
CREATE ROLE regress_mq_noinherit NOINHERIT IN ROLE regress_mq_group;

-- ===== creating queues is a privilege, off by default =====================
SET ROLE regress_mq_creator;
SELECT pg_temp.err($$SELECT mq.create_queue('pr')$$);
RESET ROLE;
SELECT count(*) FROM mq.queue_catalog WHERE queue = 'pr';
-- only administrators hand it out (and topic rights)
SELECT r, f, (pg_temp.try(r, format('SELECT mq.%s(%L)', f, r))).res
  FROM unnest(ARRAY['regress_mq_creator', 'regress_mq_plain']) r,
       unnest(ARRAY['grant_create', 'revoke_create']) f ORDER BY 1, 2;
SELECT r, f, (pg_temp.try(r, format($q$SELECT mq.%s('privtest', %L, '{publish,subscribe}')$q$, f, r))).res
  FROM unnest(ARRAY['regress_mq_creator', 'regress_mq_plain']) r,
       unnest(ARRAY['grant_topic', 'revoke_topic']) f ORDER BY 1, 2;
SELECT count(*) FROM mq.creator_catalog;
SELECT count(*) FROM mq.topic_privilege_catalog;
SELECT mq.grant_create('regress_mq_creator');
-- the creator needs the right to subscribe to privtest.* for its set-up
SELECT mq.grant_topic('privtest', 'regress_mq_creator', '{subscribe}');

-- ===== set-up, all done by the creator: it holds every privilege ==========
-- setup(q): as regress_mq_creator, create q (max_attempts 1, retention: a
-- nack dead-letters, an ack archives) and q_drop; send a..g; receive a..f;
-- nack e (dead letter), ack f (archive); subscribe q to privtest.setup;
-- grant send/receive/observe/manage on q and q_drop to regress_mq_s/r/o/m,
-- and every privilege to each role of extra.  Ids a..d go to table ids.
CREATE TEMP TABLE ids (queue text PRIMARY KEY, a bigint, b bigint, c bigint, d bigint);
CREATE FUNCTION pg_temp.setup(q text, extra text[] DEFAULT '{}') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    a bigint; b bigint; c bigint; d bigint; e bigint; f bigint;
    n bigint;
    g text;
BEGIN
    SET ROLE regress_mq_creator;
    PERFORM mq.create_queue(q, max_attempts => 1, retention => '1 hour');
    PERFORM mq.create_queue(q || '_drop');
    a := mq.send(q, '{"m": "a"}', priority => 9);
    b := mq.send(q, '{"m": "b"}', priority => 8);
    c := mq.send(q, '{"m": "c"}', priority => 7);
    d := mq.send(q, '{"m": "d"}', priority => 6);
    e := mq.send(q, '{"m": "e"}', priority => 5);
    f := mq.send(q, '{"m": "f"}', priority => 4);
    PERFORM mq.send(q, '{"m": "g"}');
    SELECT count(*) INTO n FROM mq.receive(q, 6, '1 hour');
    IF n <> 6 THEN RAISE EXCEPTION 'received % of 6', n; END IF;
    IF NOT mq.nack(q, e) OR NOT mq.ack(q, f) THEN RAISE EXCEPTION 'nack/ack'; END IF;
    PERFORM mq.subscribe(q, 'privtest.setup');
    PERFORM mq.grant(x, 'regress_mq_s', '{send}'),
            mq.grant(x, 'regress_mq_r', '{receive}'),
            mq.grant(x, 'regress_mq_o', '{observe}'),
            mq.grant(x, 'regress_mq_m', '{manage}')
       FROM unnest(ARRAY[q, q || '_drop']) x;
    FOREACH g IN ARRAY extra LOOP
        PERFORM mq.grant(x, g::regrole, '{send,receive,observe,manage}')
           FROM unnest(ARRAY[q, q || '_drop']) x;
    END LOOP;
    -- and it observes what it made (the gauges count at commit: not yet)
    SELECT count(*) INTO n FROM mq.metrics(q);
    SELECT format('%s: metrics %s, dead letters %s, archived %s, subscriptions %s', q, n,
                  (SELECT count(*) FROM mq.dead_letters x WHERE x.queue = q),
                  (SELECT count(*) FROM mq.archive x WHERE x.queue = q),
                  (SELECT count(*) FROM mq.subscriptions x WHERE x.queue = q)) INTO g;
    RESET ROLE;
    INSERT INTO ids VALUES (q, a, b, c, d);
    RETURN g;
END $$;
SELECT pg_temp.setup('pr');                          -- the single-privilege roles
SELECT pg_temp.setup('pr_c');                        -- the creator alone
SELECT pg_temp.setup('pr_g', '{regress_mq_group}');  -- the group's members
-- the creator is recorded as the owner of its queues
SELECT queue, owner FROM mq.queues WHERE queue LIKE 'pr%' ORDER BY queue;
SELECT queue, grantee, privilege FROM mq.queue_privileges
 WHERE queue IN ('pr', 'pr_g') ORDER BY 1, 2::text, 3;

-- ===== every function x every privilege ==================================
-- Each row is run, in order, by the roles regress_mq_plain, _s, _r, _o, _m
-- on queue pr (drop_queue: pr_drop); then by the creator alone on pr_c and
-- by regress_mq_member (privileges of its group) alone on pr_g.  A cell is
-- the call's result or its SQLSTATE.  Views and metrics() refuse nothing:
-- they show no rows to a role that may not observe the queue.
-- %1$L queue, %2$s..%5$s ids a..d (in flight), %6$L its _drop queue.
CREATE TEMP TABLE fn (n int PRIMARY KEY, fn text, needs text, sql text);
INSERT INTO fn VALUES
 (1, 'send', 'send', $$SELECT mq.send(%1$L, '{"m": "matrix"}') > 0$$),
 (2, 'send_batch', 'send', $$SELECT count(*) FROM mq.send_batch(%1$L, ARRAY['{"m": "matrix"}']::jsonb[])$$),
 (3, 'receive', 'receive', $$SELECT count(*) FROM mq.receive(%1$L, 1, '1 hour')$$),
 (4, 'pop', 'receive', $$SELECT count(*) FROM mq.pop(%1$L, 1)$$),
 (5, 'ack(id)', 'receive', $$SELECT mq.ack(%1$L, %2$s::bigint)$$),
 (6, 'ack(ids)', 'receive', $$SELECT mq.ack(%1$L, ARRAY[%3$s]::bigint[])$$),
 (7, 'nack', 'receive', $$SELECT mq.nack(%1$L, %4$s::bigint, error => 'matrix')$$),
 (8, 'extend', 'receive', $$SELECT mq.extend(%1$L, %5$s::bigint, '2 hours') > now()$$),
 (9, 'metrics(q)', 'observe', $$SELECT count(*) FROM mq.metrics(%1$L)$$),
 (10, 'metrics() rows', 'observe', $$SELECT count(*) FROM mq.metrics() WHERE queue = %1$L$$),
 (11, 'metrics_prometheus', 'observe', $$SELECT count(*) > 0 FROM regexp_split_to_table(mq.metrics_prometheus(), E'\n') l WHERE l LIKE '%%{queue="' || %1$L || '"}%%'$$),
 (12, 'mq.queues', 'observe', $$SELECT count(*) FROM mq.queues WHERE queue = %1$L$$),
 (13, 'mq.dead_letters', 'observe', $$SELECT count(*) FROM mq.dead_letters WHERE queue = %1$L$$),
 (14, 'mq.archive', 'observe', $$SELECT count(*) FROM mq.archive WHERE queue = %1$L$$),
 (15, 'mq.subscriptions', 'observe', $$SELECT count(*) FROM mq.subscriptions WHERE queue = %1$L$$),
 (16, 'mq.queue_privileges', 'observe', $$SELECT count(*) > 0 FROM mq.queue_privileges WHERE queue = %1$L$$),
 (17, 'alter_queue', 'manage', $$SELECT mq.alter_queue(%1$L, visibility_timeout => '1 hour')$$),
 (18, 'redrive', 'manage', $$SELECT mq.redrive(%1$L)$$),
 (19, 'subscribe', 'manage', $$SELECT mq.subscribe(%1$L, 'privtest.matrix')$$),
 (20, 'unsubscribe', 'manage', $$SELECT mq.unsubscribe(%1$L, 'privtest.matrix')$$),
 (21, 'grant', 'manage', $$SELECT mq.grant(%1$L, 'regress_mq_plain', '{observe}')$$),
 (22, 'revoke', 'manage', $$SELECT mq.revoke(%1$L, 'regress_mq_plain', '{observe}')$$),
 (23, 'purge_queue', 'manage', $$SELECT mq.purge_queue(%1$L)$$),
 (24, 'drop_queue', 'manage', $$SELECT mq.drop_queue(%6$L)$$);
-- subscribing also needs the topic right: every role has it on privtest,
-- so that only the queue privilege decides here (topics are tested below)
SELECT count(mq.grant_topic('privtest', r, '{subscribe}'))
  FROM unnest(ARRAY['regress_mq_plain', 'regress_mq_s', 'regress_mq_r', 'regress_mq_o',
                    'regress_mq_m', 'regress_mq_group']::regrole[]) r;
CREATE TEMP TABLE results (queue text, n int, role text, res text, msg text);
CREATE FUNCTION pg_temp.matrix(q text, roles text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    f record;
    r text;
    i ids%ROWTYPE;
    t record;
BEGIN
    SELECT * INTO STRICT i FROM ids WHERE queue = q;
    FOR f IN SELECT * FROM fn ORDER BY n LOOP
        FOREACH r IN ARRAY roles LOOP
            t := pg_temp.try(r, format(f.sql, q, i.a, i.b, i.c, i.d, q || '_drop'));
            INSERT INTO results VALUES (q, f.n, r, t.res, t.msg);
        END LOOP;
    END LOOP;
END $$;
SELECT pg_temp.matrix('pr', '{regress_mq_plain,regress_mq_s,regress_mq_r,regress_mq_o,regress_mq_m}');
SELECT pg_temp.matrix('pr_c', '{regress_mq_creator}');
SELECT pg_temp.matrix('pr_g', '{regress_mq_member}');
SELECT f.fn, f.needs,
       max(res) FILTER (WHERE role = 'regress_mq_s') AS send,
       max(res) FILTER (WHERE role = 'regress_mq_r') AS receive,
       max(res) FILTER (WHERE role = 'regress_mq_o') AS observe,
       max(res) FILTER (WHERE role = 'regress_mq_m') AS manage,
       max(res) FILTER (WHERE role = 'regress_mq_plain') AS "none",
       max(res) FILTER (WHERE role = 'regress_mq_creator') AS creator,
       max(res) FILTER (WHERE role = 'regress_mq_member') AS member
  FROM fn f JOIN results USING (n) GROUP BY f.n, f.fn, f.needs ORDER BY f.n;
-- every refusal names the queue and the missing privilege
SELECT queue, f.fn, role, msg FROM results JOIN fn f USING (n)
 WHERE res = '42501'
   AND NOT (msg LIKE '%"' || queue || CASE f.fn WHEN 'drop_queue' THEN '_drop' ELSE '' END || '"%'
            AND msg LIKE '%' || f.needs || '%');
-- refused calls changed nothing: on pr, where four roles were refused
-- before each allowed call, the allowed calls returned what they returned on
-- pr_c and pr_g, where nobody was refused (purge_queue: 5 messages each);
-- and what is left is the same everywhere
SELECT q.queue,
       (SELECT count(*) FROM mq.subscription_catalog s WHERE s.queue = q.queue) AS subscriptions,
       (SELECT count(*) FROM mq.privilege_catalog p
         WHERE p.queue = q.queue AND p.grantee = 'regress_mq_plain'::regrole) AS plain_grants
  FROM mq.queue_catalog q WHERE q.queue LIKE 'pr%' ORDER BY 1;
SELECT queue, ready, in_flight, delayed, dead FROM mq.metrics() WHERE queue LIKE 'pr%' ORDER BY 1;

-- ===== role membership ===================================================
-- NOINHERIT: membership alone gives nothing (as for PostgreSQL's own grants)
SELECT (pg_temp.try('regress_mq_noinherit', $$SELECT mq.send('pr_g', '{}') > 0$$)).res;
SELECT (pg_temp.try('regress_mq_member', $$SELECT mq.send('pr_g', '{}') > 0$$)).res;
-- leaving the group takes its privileges away at once
REVOKE regress_mq_group FROM regress_mq_member;
SELECT (pg_temp.try('regress_mq_member', $$SELECT mq.send('pr_g', '{}') > 0$$)).res;
SELECT (pg_temp.try('regress_mq_member', $$SELECT count(*) FROM mq.queues WHERE queue = 'pr_g'$$)).res;
GRANT regress_mq_group TO regress_mq_member;
SELECT (pg_temp.try('regress_mq_member', $$SELECT mq.send('pr_g', '{}') > 0$$)).res;
-- privileges through two levels of membership
CREATE ROLE regress_mq_grandchild IN ROLE regress_mq_member;
SELECT (pg_temp.try('regress_mq_grandchild', $$SELECT count(*) FROM mq.metrics('pr_g')$$)).res;
-- the creator's group gets the creator's rights (creator role membership)
CREATE ROLE regress_mq_creator_member IN ROLE regress_mq_creator;
SELECT (pg_temp.try('regress_mq_creator_member', $$SELECT mq.purge_queue('pr_c')$$)).res;
-- creating queues through a group: the queue belongs to the member
SELECT mq.grant_create('regress_mq_group');
SELECT (pg_temp.try('regress_mq_member', $$SELECT mq.create_queue('pr_by_member')$$)).res;
SELECT queue, owner FROM mq.queues WHERE queue = 'pr_by_member';
SELECT mq.revoke_create('regress_mq_group');
SELECT (pg_temp.try('regress_mq_member', $$SELECT mq.create_queue('pr_by_member2')$$)).res;
-- a member of the group that owns nothing cannot touch the member's queue
SELECT (pg_temp.try('regress_mq_noinherit', $$SELECT mq.drop_queue('pr_by_member')$$)).res;
SELECT (pg_temp.try('regress_mq_member', $$SELECT mq.drop_queue('pr_by_member')$$)).res;

-- ===== revoke takes effect at once ========================================
-- in the same session, next statement
SET ROLE regress_mq_s;
SELECT mq.send('pr', '{"m": "before revoke"}') > 0 AS sent;
RESET ROLE;
SET ROLE regress_mq_creator;
SELECT mq.revoke('pr', 'regress_mq_s', '{send}');
RESET ROLE;
SET ROLE regress_mq_s;
SELECT pg_temp.err($$SELECT mq.send('pr', '{"m": "after revoke"}')$$);
SELECT pg_temp.err($$SELECT mq.send_batch('pr', ARRAY['{}']::jsonb[])$$);
RESET ROLE;
-- in the same transaction; rolled back, the grant is there again
BEGIN;
SELECT (pg_temp.try('regress_mq_r', $$SELECT count(*) FROM mq.receive('pr', 1, '1 hour')$$)).res;
SELECT mq.revoke('pr', 'regress_mq_r', '{receive}');
SELECT (pg_temp.try('regress_mq_r', $$SELECT count(*) FROM mq.receive('pr', 1, '1 hour')$$)).res;
SELECT (pg_temp.try('regress_mq_r', $$SELECT mq.ack('pr', 1::bigint)$$)).res;
ROLLBACK;
SELECT (pg_temp.try('regress_mq_r', $$SELECT mq.ack('pr', ARRAY[]::bigint[])$$)).res;
-- a grant rolled back to a savepoint gives nothing
BEGIN;
SAVEPOINT s1;
SELECT mq.grant('pr', 'regress_mq_plain', '{observe}');
SELECT (pg_temp.try('regress_mq_plain', $$SELECT count(*) FROM mq.metrics('pr')$$)).res;
ROLLBACK TO SAVEPOINT s1;
SELECT (pg_temp.try('regress_mq_plain', $$SELECT count(*) FROM mq.metrics('pr')$$)).res;
SELECT (pg_temp.try('regress_mq_plain', $$SELECT count(*) FROM mq.queues WHERE queue = 'pr'$$)).res;
COMMIT;
-- revoking what was never granted is not an error; granting twice neither
SELECT mq.revoke('pr', 'regress_mq_plain', '{send,receive,observe,manage}');
SELECT mq.grant('pr', 'regress_mq_s', '{send,send}'), mq.grant('pr', 'regress_mq_s', '{send}');
SELECT grantee, privilege FROM mq.queue_privileges WHERE queue = 'pr' ORDER BY 1::text, 2;
-- a manager may pass on any privilege, manage included; then lose it
SELECT (pg_temp.try('regress_mq_m', $$SELECT mq.grant('pr', 'regress_mq_plain', '{manage}')$$)).res;
SELECT (pg_temp.try('regress_mq_plain', $$SELECT mq.alter_queue('pr', max_attempts => 2)$$)).res;
SELECT (pg_temp.try('regress_mq_plain', $$SELECT mq.revoke('pr', 'regress_mq_plain', '{manage}')$$)).res;
SELECT (pg_temp.try('regress_mq_plain', $$SELECT mq.alter_queue('pr', max_attempts => 1)$$)).res;
-- the creator's rights do not come from a grant: revoking them changes nothing
SELECT mq.revoke('pr', 'regress_mq_creator', '{send,receive,observe,manage}');
SELECT (pg_temp.try('regress_mq_creator', $$SELECT mq.send('pr', '{}') > 0$$)).res;
-- and no longer holding the right to create queues neither
SELECT mq.revoke_create('regress_mq_creator');
SELECT (pg_temp.try('regress_mq_creator', $$SELECT mq.create_queue('pr_after')$$)).res;
SELECT (pg_temp.try('regress_mq_creator', $$SELECT count(*) FROM mq.receive('pr', 1)$$)).res;

-- ===== a role without grants reads no mq table ============================
-- (the tables are for the extension's owner alone; mq.q_pr / mq.w_pr stand
-- for every queue's tables)
SELECT t, (pg_temp.try('regress_mq_plain', format('SELECT count(*) FROM %s', t))).res
  FROM unnest(ARRAY['mq.queue_catalog', 'mq.q_pr', 'mq.w_pr', 'mq.dead_letter_store',
                    'mq.archive_store', 'mq.dedup_keys', 'mq.privilege_catalog',
                    'mq.subscription_catalog', 'mq.creator_catalog',
                    'mq.topic_privilege_catalog', 'mq.queue_totals', 'mq.message_id_seq']) t;
-- nor do the roles that hold privileges on a queue
SELECT r, count(*) FILTER (WHERE (pg_temp.try(r, format('SELECT count(*) FROM mq.%I', c.relname))).res <> '42501') AS readable
  FROM unnest(ARRAY['regress_mq_s', 'regress_mq_r', 'regress_mq_o', 'regress_mq_m',
                    'regress_mq_creator', 'regress_mq_member']) r,
       pg_class c
 WHERE c.relnamespace = 'mq'::regnamespace AND c.relkind IN ('r', 'p', 'S', 'm', 'f')
 GROUP BY r ORDER BY r;
-- every table and sequence of schema mq, queue tables included: none
-- readable (no row below)
SELECT relname, res
  FROM (SELECT relname, (pg_temp.try('regress_mq_plain', format('SELECT count(*) FROM mq.%I', relname))).res
          FROM pg_class WHERE relnamespace = 'mq'::regnamespace AND relkind IN ('r', 'p', 'S', 'm', 'f')) t
 WHERE res <> '42501';
-- writes are refused too: granting oneself, rewriting a queue, siphoning
-- with a subscription, creating queues, taking ids, replacing a table
SELECT s, (pg_temp.try('regress_mq_m', s)).res FROM unnest(ARRAY[
  $$INSERT INTO mq.privilege_catalog VALUES ('pr', 'regress_mq_m', 'observe')$$,
  $$INSERT INTO mq.creator_catalog VALUES ('regress_mq_m')$$,
  $$INSERT INTO mq.topic_privilege_catalog VALUES ('privtest', 'regress_mq_m', 'publish')$$,
  $$UPDATE mq.queue_catalog SET dead_letter_queue = NULL$$,
  $$INSERT INTO mq.subscription_catalog (queue, pattern) VALUES ('pr', '#')$$,
  $$DELETE FROM mq.q_pr$$,
  $$INSERT INTO mq.dead_letters (queue, id, message, attempts, enqueued_at) VALUES ('pr', 1, '{}', 1, now())$$,
  $$DELETE FROM mq.archive$$,
  $$SELECT nextval('mq.message_id_seq')$$,
  $$CREATE TABLE mq.q_pr_new (x int)$$,
  $$ALTER TABLE mq.w_pr OWNER TO regress_mq_m$$]) s;
-- the views show no row to a role without grants; the functions no queue
SELECT v, (pg_temp.try('regress_mq_plain', format('SELECT count(*) FROM %s', v))).res
  FROM unnest(ARRAY['mq.queues', 'mq.queue_privileges', 'mq.dead_letters', 'mq.archive',
                    'mq.subscriptions', 'mq.metrics()']) v;
SELECT (pg_temp.try('regress_mq_plain',
        $$SELECT count(*) FROM regexp_split_to_table(mq.metrics_prometheus(), E'\n') l WHERE l LIKE '%queue=%'$$)).res
       AS prometheus_lines;
-- maintain() touches only queues the caller manages: nothing here
SELECT (pg_temp.try('regress_mq_plain', $$SELECT mq.maintain()$$)).res;

-- ===== mq owns its storage ================================================
-- every relation of schema mq belongs to the extension's owner, the queue
-- tables made by the (non-superuser) creator included
SELECT c.relname, pg_get_userbyid(c.relowner) AS owner
  FROM pg_class c, pg_extension e
 WHERE e.extname = 'mq' AND c.relnamespace = 'mq'::regnamespace AND c.relowner <> e.extowner;
SELECT c.relname, c.relowner = e.extowner AS owned_by_extension_owner
  FROM pg_class c, pg_extension e
 WHERE e.extname = 'mq' AND c.oid IN ('mq.q_pr'::regclass, 'mq.w_pr'::regclass,
                                      'mq.q_pr_c'::regclass, 'mq.w_pr_c'::regclass)
 ORDER BY 1;
-- a hostile search_path at create_queue: domains named like the column
-- types in a schema searched first change nothing
CREATE SCHEMA regress_mq_evil;
CREATE DOMAIN regress_mq_evil.jsonb AS pg_catalog.jsonb CHECK (false);
CREATE DOMAIN regress_mq_evil.text AS pg_catalog.text CHECK (false);
CREATE DOMAIN regress_mq_evil.timestamptz AS pg_catalog.timestamptz CHECK (false);
CREATE DOMAIN regress_mq_evil.bigint AS pg_catalog.int8 CHECK (false);
CREATE DOMAIN regress_mq_evil.int8 AS pg_catalog.int8 CHECK (false);
CREATE DOMAIN regress_mq_evil.integer AS pg_catalog.int4 CHECK (false);
CREATE DOMAIN regress_mq_evil.int4 AS pg_catalog.int4 CHECK (false);
CREATE DOMAIN regress_mq_evil.boolean AS pg_catalog.bool CHECK (false);
CREATE DOMAIN regress_mq_evil.bool AS pg_catalog.bool CHECK (false);
GRANT USAGE ON SCHEMA regress_mq_evil TO PUBLIC;
SELECT mq.grant_create('regress_mq_creator');
SET ROLE regress_mq_creator;
SET search_path = regress_mq_evil, pg_catalog, public;
SELECT mq.create_queue('pr_path');
SELECT mq.send('pr_path', '{"m": 1}') > 0 AS sent;
SELECT message FROM mq.receive('pr_path');
RESET search_path;
RESET ROLE;
SELECT mq.revoke_create('regress_mq_creator');
SELECT c.relname, a.attname, a.atttypid::regtype
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid
 WHERE c.relnamespace = 'mq'::regnamespace AND c.relkind = 'r' AND a.attnum > 0
   AND NOT a.attisdropped AND t.typnamespace <> 'pg_catalog'::regnamespace;
SELECT count(DISTINCT attrelid) AS queue_tables FROM pg_attribute
 WHERE attrelid IN ('mq.q_pr_path'::regclass, 'mq.w_pr_path'::regclass) AND attnum > 0;
DROP SCHEMA regress_mq_evil CASCADE;

-- ===== topics =============================================================
-- queue pr_t (the creator's) receives privtest.#; regress_mq_m manages it
SELECT mq.grant_create('regress_mq_creator');
SET ROLE regress_mq_creator;
SELECT mq.create_queue('pr_t');
SELECT mq.subscribe('pr_t', 'privtest.#');
SELECT mq.grant('pr_t', 'regress_mq_m', '{manage}');
RESET ROLE;
SELECT mq.revoke_create('regress_mq_creator');
-- publishing needs 'publish' on the topic's first word
SELECT (pg_temp.try('regress_mq_plain', $$SELECT mq.publish('privtest.a', '{"n": 1}')$$)).res;
SELECT mq.grant_topic('privtest', 'regress_mq_plain', '{publish}');
SELECT prefix, grantee, privilege FROM mq.topic_privileges
 WHERE grantee = 'regress_mq_plain'::regrole ORDER BY 3;
SELECT t, (pg_temp.try('regress_mq_plain', format($q$SELECT mq.publish(%L, '{"n": 2}')$q$, t))).res
  FROM unnest(ARRAY['privtest.a', 'privtest', 'privtest.a.b.c', 'privtest2.a', 'other.privtest', 'orders']) t;
-- the subscriber queue got the three messages whose topic matched privtest.#,
-- although the publisher holds no privilege on it (the queue's manager chose
-- the subscription)
SELECT ready FROM mq.metrics('pr_t');
-- a right granted to a group is its members'
SELECT (pg_temp.try('regress_mq_member', $$SELECT mq.publish('privtest.b', '{}')$$)).res;
SELECT mq.grant_topic('privtest', 'regress_mq_group', '{publish}');
SELECT (pg_temp.try('regress_mq_member', $$SELECT mq.publish('privtest.b', '{}')$$)).res;
SELECT mq.revoke_topic('privtest', 'regress_mq_group', '{publish}');
SELECT (pg_temp.try('regress_mq_member', $$SELECT mq.publish('privtest.b', '{}')$$)).res;
-- revoked, at once
SELECT mq.revoke_topic('privtest', 'regress_mq_plain', '{publish}');
SELECT (pg_temp.try('regress_mq_plain', $$SELECT mq.publish('privtest.a', '{}')$$)).res;
SELECT ready FROM mq.metrics('pr_t');
-- subscribing needs manage on the queue and 'subscribe' on the pattern's
-- first word (regress_mq_m and _plain hold 'subscribe' on privtest)
SELECT mq.revoke_topic('privtest', 'regress_mq_m', '{subscribe}');
SELECT r, p, (pg_temp.try(r, format('SELECT mq.subscribe(%L, %L)', 'pr_t', p))).res
  FROM unnest(ARRAY['regress_mq_m', 'regress_mq_plain']) r,
       unnest(ARRAY['privtest.x', 'privtest', 'orders.#', 'orders', 'privtest2.x']) p
 ORDER BY 1, 2;
SELECT mq.grant_topic('privtest', 'regress_mq_m', '{subscribe}');
SELECT r, p, (pg_temp.try(r, format('SELECT mq.subscribe(%L, %L)', 'pr_t', p))).res
  FROM unnest(ARRAY['regress_mq_m', 'regress_mq_plain']) r,
       unnest(ARRAY['privtest.x', 'privtest.*.y', 'privtest.#', 'orders.#']) p
 ORDER BY 1, 2;
-- 'publish' is not 'subscribe'
SELECT mq.grant_topic('orders', 'regress_mq_m', '{publish}');
SELECT (pg_temp.try('regress_mq_m', $$SELECT mq.subscribe('pr_t', 'orders.#')$$)).res;
-- patterns that start with a wildcard match every namespace: administrators
-- only, whatever topic rights the role holds
SELECT p, (pg_temp.try('regress_mq_m', format('SELECT mq.subscribe(%L, %L)', 'pr_t', p))).res
  FROM unnest(ARRAY['#', '*', '#.x', '*.x', '*.privtest', '#.privtest.#', '*.#']) p;
SELECT mq.subscribe('pr_t', '#'), mq.unsubscribe('pr_t', '#');
-- so nothing siphons another namespace: a publish to orders.* reaches no
-- queue of theirs
SELECT pattern FROM mq.subscriptions WHERE queue = 'pr_t' ORDER BY 1;
SELECT mq.publish('orders.eu', '{"secret": 1}');
SELECT ready FROM mq.metrics('pr_t');
-- unsubscribing needs manage alone
SELECT mq.revoke_topic('privtest', 'regress_mq_m', '{subscribe}');
SELECT (pg_temp.try('regress_mq_plain', $$SELECT mq.unsubscribe('pr_t', 'privtest.x')$$)).res;
SELECT (pg_temp.try('regress_mq_m', $$SELECT mq.unsubscribe('pr_t', 'privtest.x')$$)).res;
SELECT mq.revoke_topic('orders', 'regress_mq_m', '{publish}');

-- ===== invalid inputs =====================================================
SELECT (SELECT count(*) FROM mq.privilege_catalog) AS grants_before,
       (SELECT count(*) FROM mq.topic_privilege_catalog) AS topic_grants_before,
       (SELECT count(*) FROM mq.creator_catalog) AS creators_before \gset
SELECT s, pg_temp.err(s) FROM unnest(ARRAY[
  -- unknown privilege names (22023)
  $$SELECT mq.grant('pr', 'regress_mq_s', '{sned}')$$,
  $$SELECT mq.grant('pr', 'regress_mq_s', '{send,all}')$$,
  $$SELECT mq.revoke('pr', 'regress_mq_s', '{SEND}')$$,
  $$SELECT mq.grant('pr', 'regress_mq_s', '{publish}')$$,
  $$SELECT mq.grant_topic('privtest', 'regress_mq_s', '{send}')$$,
  $$SELECT mq.revoke_topic('privtest', 'regress_mq_s', '{manage}')$$,
  -- bad names (22023)
  $$SELECT mq.grant('Bad', 'regress_mq_s', '{send}')$$,
  $$SELECT mq.grant_topic('privtest.a', 'regress_mq_s', '{publish}')$$,
  $$SELECT mq.grant_topic('', 'regress_mq_s', '{publish}')$$,
  $$SELECT mq.grant_topic('#', 'regress_mq_s', '{publish}')$$,
  $$SELECT mq.revoke_topic('priv*', 'regress_mq_s', '{publish}')$$,
  -- NULL arguments (22004)
  $$SELECT mq.grant(NULL, 'regress_mq_s', '{send}')$$,
  $$SELECT mq.grant('pr', NULL, '{send}')$$,
  $$SELECT mq.grant('pr', 'regress_mq_s', NULL)$$,
  $$SELECT mq.grant('pr', 'regress_mq_s', '{send,NULL}')$$,
  $$SELECT mq.revoke(NULL, 'regress_mq_s', '{send}')$$,
  $$SELECT mq.revoke('pr', NULL, '{send}')$$,
  $$SELECT mq.revoke('pr', 'regress_mq_s', NULL)$$,
  $$SELECT mq.revoke('pr', 'regress_mq_s', '{NULL}')$$,
  $$SELECT mq.grant_create(NULL)$$,
  $$SELECT mq.revoke_create(NULL)$$,
  $$SELECT mq.grant_topic(NULL, 'regress_mq_s', '{publish}')$$,
  $$SELECT mq.grant_topic('privtest', NULL, '{publish}')$$,
  $$SELECT mq.grant_topic('privtest', 'regress_mq_s', NULL)$$,
  $$SELECT mq.revoke_topic(NULL, 'regress_mq_s', '{publish}')$$,
  $$SELECT mq.revoke_topic('privtest', NULL, '{publish}')$$,
  $$SELECT mq.revoke_topic('privtest', 'regress_mq_s', NULL)$$,
  -- unknown queue (42P01)
  $$SELECT mq.grant('pr_nope', 'regress_mq_s', '{send}')$$,
  $$SELECT mq.revoke('pr_nope', 'regress_mq_s', '{send}')$$,
  -- unknown role (42704)
  $$SELECT mq.grant('pr', 'regress_mq_nobody', '{send}')$$,
  $$SELECT mq.grant_create('regress_mq_nobody')$$,
  $$SELECT mq.grant_topic('privtest', 'regress_mq_nobody', '{publish}')$$]) s;
-- an unknown queue is 42P01 for a role without grants too
SELECT (pg_temp.try('regress_mq_plain', $$SELECT mq.send('pr_nope', '{}')$$)).res;
SELECT (pg_temp.try('regress_mq_plain', $$SELECT mq.grant('pr_nope', 'regress_mq_plain', '{send}')$$)).res;
-- none of them granted or revoked anything
SELECT (SELECT count(*) FROM mq.privilege_catalog) = :grants_before AS grants_unchanged,
       (SELECT count(*) FROM mq.topic_privilege_catalog) = :topic_grants_before AS topic_grants_unchanged,
       (SELECT count(*) FROM mq.creator_catalog) = :creators_before AS creators_unchanged;

-- ===== SECURITY HOLE A: the views leak through a caller's function ========
-- FAILS ON TODAY'S CODE.  mq.queues, mq.queue_privileges, mq.dead_letters,
-- mq.archive and mq.subscriptions filter rows with mq._may_observe(queue)
-- but are not security barriers: a role with no grant at all creates a
-- cheap function (pg_temp needs only the default TEMP right) and puts it in
-- its WHERE clause; the planner runs it before the views' filter, on every
-- row, and it prints other tenants' dead-lettered and archived message
-- bodies, subscription filters, queue names and grantees.  Correct: the
-- function sees nothing (no NOTICE below), whatever the fix (security
-- barrier views, set-returning functions, ...).
-- Another tenant's queue (the superuser's here) with a dead letter, an
-- archived message and a subscription with a filter:
SELECT mq.create_queue('pr_secret', max_attempts => 1, retention => '1 hour');
SELECT mq.send('pr_secret', '{"card": "4111-dead"}', priority => 1) > 0 AS sent,
       mq.send('pr_secret', '{"card": "4111-archived"}') > 0 AS sent;
SELECT count(*) FROM mq.receive('pr_secret', 2, '1 hour');
SELECT mq.nack('pr_secret', id) FROM mq.w_pr_secret WHERE message->>'card' = '4111-dead';
SELECT mq.ack('pr_secret', id) FROM mq.w_pr_secret WHERE message->>'card' = '4111-archived';
SELECT mq.subscribe('pr_secret', 'privtest.secret', '{"tenant": "acme"}');
SELECT (SELECT count(*) FROM mq.dead_letters WHERE queue = 'pr_secret') AS dead,
       (SELECT count(*) FROM mq.archive WHERE queue = 'pr_secret') AS archived;
SET ROLE regress_mq_plain;
CREATE FUNCTION pg_temp.peek(v anyelement) RETURNS boolean
LANGUAGE plpgsql COST 0.0000001 AS $$
BEGIN RAISE NOTICE 'peek saw: %', v; RETURN true; END $$;
SELECT count(*) FROM mq.dead_letters WHERE pg_temp.peek(message);
SELECT count(*) FROM mq.archive WHERE pg_temp.peek(message);
SELECT count(*) FROM mq.subscriptions WHERE pg_temp.peek(filter);
SELECT count(*) FROM mq.queues WHERE pg_temp.peek(queue);
SELECT count(*) FROM mq.queue_privileges WHERE pg_temp.peek(privilege);
DROP FUNCTION pg_temp.peek(anyelement);
RESET ROLE;

-- ===== SECURITY HOLE B: DROP ROLE leaves dangling grants ==================
-- FAILS ON TODAY'S CODE.  mq stores roles as regrole OIDs without a
-- dependency: DROP ROLE succeeds and leaves the role's queue grants,
-- creator right, topic rights and queue ownership behind.  A role created
-- later that gets the same OID (OIDs wrap around) inherits them silently,
-- and pg_dump writes a dangling regrole as a bare number, which a restore
-- gives to whichever role has that OID there.  PostgreSQL refuses DROP ROLE
-- while the role holds privileges (pg_shdepend); mq may refuse it too, or
-- remove the role's grants.  Correct: either way, no mq catalog row refers
-- to a role that does not exist.
CREATE ROLE regress_mq_gone;
SELECT mq.grant_create('regress_mq_gone');
SELECT mq.grant_topic('privtest', 'regress_mq_gone', '{publish}');
SELECT mq.grant('pr', 'regress_mq_gone', '{send,observe}');
SELECT (pg_temp.try('regress_mq_gone', $$SELECT mq.create_queue('pr_gone')$$)).res;
DO $$
BEGIN
    DROP ROLE regress_mq_gone;
EXCEPTION WHEN OTHERS THEN
    NULL;   -- refusing is a correct fix too
END $$;
SELECT 'mq.queue_catalog.owner' AS catalog, count(*) AS dangling
  FROM mq.queue_catalog WHERE owner::oid NOT IN (SELECT oid FROM pg_roles)
UNION ALL
SELECT 'mq.privilege_catalog', count(*)
  FROM mq.privilege_catalog WHERE grantee::oid NOT IN (SELECT oid FROM pg_roles)
UNION ALL
SELECT 'mq.creator_catalog', count(*)
  FROM mq.creator_catalog WHERE grantee::oid NOT IN (SELECT oid FROM pg_roles)
UNION ALL
SELECT 'mq.topic_privilege_catalog', count(*)
  FROM mq.topic_privilege_catalog WHERE grantee::oid NOT IN (SELECT oid FROM pg_roles);
-- clean up after either fix (and after today's code)
SELECT mq.drop_queue('pr_gone');
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'regress_mq_gone') THEN
        PERFORM mq.revoke_create('regress_mq_gone');
        PERFORM mq.revoke_topic('privtest', 'regress_mq_gone', '{publish}');
        PERFORM mq.revoke('pr', 'regress_mq_gone', '{send,observe}');
        DROP ROLE regress_mq_gone;
    END IF;
    DELETE FROM mq.creator_catalog WHERE grantee::oid NOT IN (SELECT oid FROM pg_roles);
    DELETE FROM mq.topic_privilege_catalog WHERE grantee::oid NOT IN (SELECT oid FROM pg_roles);
    DELETE FROM mq.privilege_catalog WHERE grantee::oid NOT IN (SELECT oid FROM pg_roles);
END $$;

-- ===== default privileges of the extension's owner ========================
-- A queue's tables never keep grants that the owner's default privileges
-- would give them.
ALTER DEFAULT PRIVILEGES GRANT SELECT, DELETE ON TABLES TO regress_mq_plain;
SELECT mq.create_queue('pr_defacl');
SELECT relname, relacl IS NULL OR NOT EXISTS (
         SELECT FROM aclexplode(relacl) a WHERE a.grantee <> relowner) AS owner_only
  FROM pg_class WHERE relname IN ('q_pr_defacl', 'w_pr_defacl') ORDER BY 1;
SELECT pg_temp.try('regress_mq_plain', 'SELECT count(*) FROM mq.q_pr_defacl');
ALTER DEFAULT PRIVILEGES REVOKE SELECT, DELETE ON TABLES FROM regress_mq_plain;

-- ===== clean up ===========================================================
SELECT queue, mq.drop_queue(queue) FROM mq.queue_catalog WHERE queue LIKE 'pr%' ORDER BY queue;
SELECT count(mq.revoke_topic('privtest', oid::regrole, '{publish,subscribe}'))
  FROM pg_roles WHERE rolname LIKE 'regress_mq_%';
SELECT count(*) FROM mq.privilege_catalog;
SELECT count(*) FROM mq.creator_catalog;
SELECT count(*) FROM mq.topic_privilege_catalog;
SELECT count(*) FROM mq.subscription_catalog;
DROP ROLE regress_mq_grandchild, regress_mq_creator_member, regress_mq_member,
          regress_mq_noinherit, regress_mq_group, regress_mq_creator, regress_mq_s,
          regress_mq_r, regress_mq_o, regress_mq_m, regress_mq_plain;
