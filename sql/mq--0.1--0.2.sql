-- mq 0.1 -> 0.2: mq owns its storage, privileges per queue (README,
-- "Privileges").  Queue tables move to the extension's owner; whoever
-- created a queue keeps every privilege on it.

\echo Use "ALTER EXTENSION mq UPDATE TO '0.2'" to load this file. \quit

-- A queue table that runs code of its own (a trigger, a rule, a policy, a
-- CHECK or foreign-key constraint, a column default or generated column, an
-- index or statistics expression, a child table, which all run as whoever
-- writes or analyzes the table) or has a column of a type outside
-- pg_catalog (a domain put first on someone's search_path when the queue
-- was made) would run that code as the extension's owner from now on: 0.1
-- queue tables belong to the roles that created them, who could attach all
-- of that.  Refuse to update until it is removed.  Likewise for objects
-- other roles made in schema mq (0.1 gave queue creators CREATE on it): a
-- function there can capture calls of mq's functions (mq.grant(text, text,
-- text[]) beats mq.grant(text, regrole, text[]) for quoted literals).
DO $$
DECLARE
    bad text;
BEGIN
    SELECT pg_catalog.string_agg(DISTINCT c.relname, ', ') INTO bad
      FROM pg_catalog.pg_class c
      JOIN mq.queue_catalog q
        ON c.relname OPERATOR(pg_catalog.=) ANY (ARRAY['q_' OPERATOR(pg_catalog.||) q.queue, 'w_' OPERATOR(pg_catalog.||) q.queue])
     WHERE c.relnamespace OPERATOR(pg_catalog.=) 'mq'::pg_catalog.regnamespace
       AND (EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid OPERATOR(pg_catalog.=) c.oid AND NOT t.tgisinternal)
            OR EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite r WHERE r.ev_class OPERATOR(pg_catalog.=) c.oid)
            OR EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid OPERATOR(pg_catalog.=) c.oid)
            OR EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k
                        WHERE (k.conrelid OPERATOR(pg_catalog.=) c.oid AND k.contype OPERATOR(pg_catalog.<>) 'p')
                           OR k.confrelid OPERATOR(pg_catalog.=) c.oid)
            OR EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                        WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid
                          AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL))
            OR EXISTS (SELECT 1 FROM pg_catalog.pg_statistic_ext x WHERE x.stxrelid OPERATOR(pg_catalog.=) c.oid)
            OR EXISTS (SELECT 1 FROM pg_catalog.pg_inherits h
                        WHERE h.inhparent OPERATOR(pg_catalog.=) c.oid OR h.inhrelid OPERATOR(pg_catalog.=) c.oid)
            OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type ty ON ty.oid OPERATOR(pg_catalog.=) a.atttypid
                        WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0
                          AND NOT a.attisdropped
                          AND (ty.typnamespace OPERATOR(pg_catalog.<>) 'pg_catalog'::pg_catalog.regnamespace
                               OR a.atthasdef OR a.attgenerated OPERATOR(pg_catalog.<>) '')));
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'queue tables % have triggers, rules, policies, constraints, defaults, expression indexes, statistics, child tables or column types of their own', bad
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Remove them (or drop and recreate those queues), then update again.';
    END IF;

    -- Objects in schema mq that are neither part of the extension nor a
    -- queue table (or one of its indexes), owned by roles that are neither
    -- superusers nor the extension's owner.
    WITH queue_tables AS (
        SELECT c.oid FROM pg_catalog.pg_class c JOIN mq.queue_catalog q
            ON c.relname OPERATOR(pg_catalog.=) ANY (ARRAY['q_' OPERATOR(pg_catalog.||) q.queue, 'w_' OPERATOR(pg_catalog.||) q.queue])
         WHERE c.relnamespace OPERATOR(pg_catalog.=) 'mq'::pg_catalog.regnamespace),
    objects (classid, objid, owner) AS (
        SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, c.oid, c.relowner FROM pg_catalog.pg_class c
         WHERE c.relnamespace OPERATOR(pg_catalog.=) 'mq'::pg_catalog.regnamespace
           AND c.oid OPERATOR(pg_catalog.<>) ALL (SELECT oid FROM queue_tables)
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                            WHERE i.indexrelid OPERATOR(pg_catalog.=) c.oid
                              AND i.indrelid OPERATOR(pg_catalog.=) ANY (SELECT oid FROM queue_tables))
        UNION ALL
        SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, p.oid, p.proowner FROM pg_catalog.pg_proc p
         WHERE p.pronamespace OPERATOR(pg_catalog.=) 'mq'::pg_catalog.regnamespace
        UNION ALL
        SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, t.oid, t.typowner FROM pg_catalog.pg_type t
         WHERE t.typnamespace OPERATOR(pg_catalog.=) 'mq'::pg_catalog.regnamespace
           AND t.typrelid OPERATOR(pg_catalog.=) 0 AND t.typcategory OPERATOR(pg_catalog.<>) 'A'
        UNION ALL
        SELECT 'pg_catalog.pg_operator'::pg_catalog.regclass, o.oid, o.oprowner FROM pg_catalog.pg_operator o
         WHERE o.oprnamespace OPERATOR(pg_catalog.=) 'mq'::pg_catalog.regnamespace
        UNION ALL
        SELECT 'pg_catalog.pg_collation'::pg_catalog.regclass, l.oid, l.collowner FROM pg_catalog.pg_collation l
         WHERE l.collnamespace OPERATOR(pg_catalog.=) 'mq'::pg_catalog.regnamespace
        UNION ALL
        SELECT 'pg_catalog.pg_conversion'::pg_catalog.regclass, v.oid, v.conowner FROM pg_catalog.pg_conversion v
         WHERE v.connamespace OPERATOR(pg_catalog.=) 'mq'::pg_catalog.regnamespace
        UNION ALL
        SELECT 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass, x.oid, x.stxowner FROM pg_catalog.pg_statistic_ext x
         WHERE x.stxnamespace OPERATOR(pg_catalog.=) 'mq'::pg_catalog.regnamespace
        UNION ALL
        SELECT 'pg_catalog.pg_ts_config'::pg_catalog.regclass, f.oid, f.cfgowner FROM pg_catalog.pg_ts_config f
         WHERE f.cfgnamespace OPERATOR(pg_catalog.=) 'mq'::pg_catalog.regnamespace
        UNION ALL
        SELECT 'pg_catalog.pg_ts_dict'::pg_catalog.regclass, d.oid, d.dictowner FROM pg_catalog.pg_ts_dict d
         WHERE d.dictnamespace OPERATOR(pg_catalog.=) 'mq'::pg_catalog.regnamespace)
    SELECT pg_catalog.string_agg(pg_catalog.pg_describe_object(o.classid, o.objid, 0)
                                 OPERATOR(pg_catalog.||) ' (owner ' OPERATOR(pg_catalog.||) r.rolname::pg_catalog.text
                                 OPERATOR(pg_catalog.||) ')', ', ') INTO bad
      FROM objects o JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) o.owner
     WHERE NOT r.rolsuper
       AND r.oid OPERATOR(pg_catalog.<>) (SELECT x.extowner FROM pg_catalog.pg_extension x
                                            WHERE x.extname OPERATOR(pg_catalog.=) 'mq')
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                        WHERE e.classid OPERATOR(pg_catalog.=) o.classid AND e.objid OPERATOR(pg_catalog.=) o.objid
                          AND e.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
                          AND e.deptype OPERATOR(pg_catalog.=) 'e');
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'schema "mq" holds objects of other roles: %', bad
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Move them to another schema or drop them, then update again: from 0.2 on, schema mq holds only what mq makes.';
    END IF;
END
$$;

ALTER TABLE mq.dead_letters RENAME TO dead_letter_store;
ALTER TABLE mq.archive RENAME TO archive_store;
-- message groups: a dead letter keeps its group (as in mq--0.2.sql)
ALTER TABLE mq.dead_letter_store ADD COLUMN group_key text;

-- The creator of each queue (today the owner of its tables) keeps every
-- privilege; the tables go to the extension's owner.
ALTER TABLE mq.queue_catalog ADD COLUMN owner regrole;
DO $$
DECLARE
    q record;
    ext_owner name := (SELECT r.rolname FROM pg_catalog.pg_extension e
                         JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) e.extowner
                        WHERE e.extname OPERATOR(pg_catalog.=) 'mq');
BEGIN
    FOR q IN SELECT queue FROM mq.queue_catalog LOOP
        UPDATE mq.queue_catalog SET owner = (
            SELECT c.relowner::pg_catalog.regrole FROM pg_catalog.pg_class c
             WHERE c.relnamespace OPERATOR(pg_catalog.=) 'mq'::pg_catalog.regnamespace
               AND c.relname OPERATOR(pg_catalog.=) ('q_' OPERATOR(pg_catalog.||) q.queue))
         WHERE queue OPERATOR(pg_catalog.=) q.queue;
        EXECUTE pg_catalog.format('ALTER TABLE mq.%I OWNER TO %I', 'q_' OPERATOR(pg_catalog.||) q.queue, ext_owner);
        EXECUTE pg_catalog.format('ALTER TABLE mq.%I OWNER TO %I', 'w_' OPERATOR(pg_catalog.||) q.queue, ext_owner);
        EXECUTE pg_catalog.format('REVOKE ALL ON mq.%I, mq.%I FROM PUBLIC',
                                  'q_' OPERATOR(pg_catalog.||) q.queue, 'w_' OPERATOR(pg_catalog.||) q.queue);
    END LOOP;
    UPDATE mq.queue_catalog SET owner = ext_owner::pg_catalog.regrole WHERE owner IS NULL;
END
$$;
ALTER TABLE mq.queue_catalog ALTER COLUMN owner SET NOT NULL;

-- Privileges --------------------------------------------------------------

-- Per queue: send, receive, observe, manage (src/catalog.c checks them).
CREATE TABLE mq.privilege_catalog (
    queue       text NOT NULL
                REFERENCES mq.queue_catalog (queue) ON DELETE CASCADE,
    grantee     regrole NOT NULL,
    privilege   text NOT NULL
                CHECK (privilege OPERATOR(pg_catalog.=) ANY ('{send,receive,observe,manage}'::pg_catalog.text[])),
    PRIMARY KEY (queue, grantee, privilege)
);

-- Roles that may create queues.
CREATE TABLE mq.creator_catalog (
    grantee     regrole PRIMARY KEY
);

-- Topic rights, per first word of a topic (src/topics.c).
CREATE TABLE mq.topic_privilege_catalog (
    prefix      text NOT NULL
                CHECK (prefix OPERATOR(pg_catalog.~) '^[^.*#]+$'),
    grantee     regrole NOT NULL,
    privilege   text NOT NULL
                CHECK (privilege OPERATOR(pg_catalog.=) ANY ('{publish,subscribe}'::pg_catalog.text[])),
    PRIMARY KEY (prefix, grantee, privilege)
);

SELECT pg_catalog.pg_extension_config_dump('mq.privilege_catalog', '');
SELECT pg_catalog.pg_extension_config_dump('mq.creator_catalog', '');
SELECT pg_catalog.pg_extension_config_dump('mq.topic_privilege_catalog', '');

-- Whether the current role may observe a queue (the views' filter).
CREATE FUNCTION mq._may_observe(queue text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'mq_may_observe' LANGUAGE C STABLE STRICT;

-- Whether a queue holds messages with a group key (mq.queues.grouped).
CREATE FUNCTION mq._queue_grouped(queue text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'mq_queue_grouped' LANGUAGE C VOLATILE STRICT;

-- CREATE OR REPLACE (not DROP): views of users may be built on these.
CREATE OR REPLACE VIEW mq.queues WITH (security_barrier) AS
    SELECT queue, created_at, max_attempts, visibility_timeout, retry_delay,
           retry_delay_max, dead_letter_queue, retention, unlogged, owner,
           mq._queue_grouped(queue) AS grouped
      FROM mq.queue_catalog
     WHERE mq._may_observe(queue);

-- mq.workers gains state: 'running', or 'cannot start: …' for a database
-- whose worker cannot start (as in mq--0.2.sql).
CREATE OR REPLACE VIEW mq.workers AS
    SELECT database, pid, started_at, last_run, passes, handled, last_error, state
      FROM mq._workers();

CREATE VIEW mq.queue_privileges WITH (security_barrier) AS
    SELECT queue, grantee, privilege
      FROM mq.privilege_catalog
     WHERE mq._may_observe(queue);

CREATE VIEW mq.dead_letters WITH (security_barrier) AS
    SELECT queue, id, message, headers, attempts, last_error, enqueued_at,
           dead_at, priority, group_key
      FROM mq.dead_letter_store
     WHERE mq._may_observe(queue);

CREATE VIEW mq.archive WITH (security_barrier) AS
    SELECT queue, id, message, headers, attempts, enqueued_at, archived_at
      FROM mq.archive_store
     WHERE mq._may_observe(queue);

CREATE FUNCTION mq.grant(queue text, role regrole, privileges text[])
RETURNS void
AS 'MODULE_PATHNAME', 'mq_grant' LANGUAGE C VOLATILE;

CREATE FUNCTION mq.revoke(queue text, role regrole, privileges text[])
RETURNS void
AS 'MODULE_PATHNAME', 'mq_revoke' LANGUAGE C VOLATILE;

CREATE FUNCTION mq.grant_create(role regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'mq_grant_create' LANGUAGE C VOLATILE;

CREATE FUNCTION mq.revoke_create(role regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'mq_revoke_create' LANGUAGE C VOLATILE;

CREATE FUNCTION mq.grant_topic(prefix text, role regrole, privileges text[])
RETURNS void
AS 'MODULE_PATHNAME', 'mq_grant_topic' LANGUAGE C VOLATILE;

CREATE FUNCTION mq.revoke_topic(prefix text, role regrole, privileges text[])
RETURNS void
AS 'MODULE_PATHNAME', 'mq_revoke_topic' LANGUAGE C VOLATILE;

CREATE VIEW mq.topic_privileges AS
    SELECT prefix, grantee, privilege
      FROM mq.topic_privilege_catalog;


CREATE OR REPLACE VIEW mq.subscriptions WITH (security_barrier) AS
    SELECT queue, pattern, filter, created_at
      FROM mq.subscription_catalog
     WHERE mq._may_observe(queue);

-- Roles that were granted table privileges by the 0.1 recipe lose them.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT DISTINCT grantee FROM information_schema.role_table_grants
              WHERE table_schema OPERATOR(pg_catalog.=) 'mq'
                AND grantee OPERATOR(pg_catalog.<>) CURRENT_USER
                AND grantee OPERATOR(pg_catalog.<>) 'PUBLIC' LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON ALL TABLES IN SCHEMA mq FROM %I', r.grantee);
        EXECUTE pg_catalog.format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA mq FROM %I', r.grantee);
    END LOOP;
END
$$;

-- 0.1 needed CREATE on schema mq to create queues, and administrators gave
-- grants on queues made later through default privileges in schema mq:
-- from now on mq alone creates objects there, and grants nothing by default.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT a.grantee FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
              WHERE n.nspname OPERATOR(pg_catalog.=) 'mq'
                AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
                AND a.grantee OPERATOR(pg_catalog.<>) n.nspowner LOOP
        EXECUTE pg_catalog.format('REVOKE CREATE ON SCHEMA mq FROM %s CASCADE',
            CASE WHEN r.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                 ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r.grantee)) END);
    END LOOP;
    FOR r IN SELECT pg_catalog.pg_get_userbyid(d.defaclrole) AS owner, d.defaclobjtype AS kind, a.grantee
               FROM pg_catalog.pg_default_acl d, pg_catalog.aclexplode(d.defaclacl) a
              WHERE d.defaclnamespace OPERATOR(pg_catalog.=) 'mq'::pg_catalog.regnamespace LOOP
        EXECUTE pg_catalog.format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA mq REVOKE ALL ON %s FROM %s CASCADE',
            r.owner,
            CASE r.kind WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS'
                        WHEN 'T' THEN 'TYPES' END,
            CASE WHEN r.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                 ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r.grantee)) END);
    END LOOP;
END
$$;

-- Receipts (fenced ack, nack, extend): a column of every wait table, of
-- mq.message, and the functions that take one.
DO $$
DECLARE
    q record;
BEGIN
    FOR q IN SELECT queue FROM mq.queue_catalog LOOP
        EXECUTE pg_catalog.format('ALTER TABLE mq.%I ADD COLUMN receipt pg_catalog.int8',
                                  'w_' OPERATOR(pg_catalog.||) q.queue);
    END LOOP;
END
$$;
ALTER TYPE mq.message ADD ATTRIBUTE receipt text;

-- Index names that no two queue names can share: qi_x, wi_x, wk_x (0.1
-- named them q_x_order, w_x_vt, w_x_pkey, so that queue "a" kept queue
-- "a_order" from being created).
DO $$
DECLARE
    q record;
BEGIN
    FOR q IN SELECT queue FROM mq.queue_catalog LOOP
        EXECUTE pg_catalog.format('ALTER INDEX IF EXISTS mq.%I RENAME TO %I',
                                  'q_' OPERATOR(pg_catalog.||) q.queue OPERATOR(pg_catalog.||) '_order',
                                  'qi_' OPERATOR(pg_catalog.||) q.queue);
        EXECUTE pg_catalog.format('ALTER INDEX IF EXISTS mq.%I RENAME TO %I',
                                  'w_' OPERATOR(pg_catalog.||) q.queue OPERATOR(pg_catalog.||) '_vt',
                                  'wi_' OPERATOR(pg_catalog.||) q.queue);
        EXECUTE pg_catalog.format('ALTER INDEX IF EXISTS mq.%I RENAME TO %I',
                                  'w_' OPERATOR(pg_catalog.||) q.queue OPERATOR(pg_catalog.||) '_pkey',
                                  'wk_' OPERATOR(pg_catalog.||) q.queue);
    END LOOP;
END
$$;

-- Message groups (README, "Message groups"): the columns of the ready and
-- wait tables, the group table, the backlog and the run table of every
-- queue, made as mq.create_queue makes them (src/queues.c).
-- Tables made by an extension script would be members of the extension,
-- and pg_dump would leave their rows out: they leave it, and a queue
-- table's first use records its dependency on the extension instead, as
-- for every queue table (src/catalog.c).
DO $$
DECLARE
    q record;
    r record;
    kind text;
    opts constant text := ' WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000)';
BEGIN
    FOR q IN SELECT queue, unlogged FROM mq.queue_catalog LOOP
        kind := CASE WHEN q.unlogged THEN 'UNLOGGED ' ELSE '' END;
        EXECUTE pg_catalog.format('ALTER TABLE mq.%I ADD COLUMN group_key pg_catalog.text COLLATE pg_catalog."C",'
                                  ' ADD COLUMN gseq pg_catalog.int8, ADD COLUMN run_start pg_catalog.int8',
                                  'q_' OPERATOR(pg_catalog.||) q.queue);
        EXECUTE pg_catalog.format('ALTER TABLE mq.%I ADD COLUMN group_key pg_catalog.text COLLATE pg_catalog."C",'
                                  ' ADD COLUMN gseq pg_catalog.int8, ADD COLUMN run_start pg_catalog.int8',
                                  'w_' OPERATOR(pg_catalog.||) q.queue);
        EXECUTE pg_catalog.format('CREATE %sTABLE mq.%I (group_key pg_catalog.text COLLATE pg_catalog."C" NOT NULL,'
                                  ' CONSTRAINT %I PRIMARY KEY (group_key))%s',
                                  kind, 'g_' OPERATOR(pg_catalog.||) q.queue,
                                  'gk_' OPERATOR(pg_catalog.||) q.queue, opts);
        EXECUTE pg_catalog.format('CREATE %sTABLE mq.%I (group_key pg_catalog.text COLLATE pg_catalog."C" NOT NULL,'
                                  ' gseq pg_catalog.int8 NOT NULL, vt pg_catalog.timestamptz NOT NULL,'
                                  ' id pg_catalog.int8 NOT NULL, priority pg_catalog.int4 NOT NULL,'
                                  ' attempt pg_catalog.int4 NOT NULL, enqueued_at pg_catalog.timestamptz NOT NULL,'
                                  ' message pg_catalog.jsonb NOT NULL, headers pg_catalog.jsonb,'
                                  ' dedup_key pg_catalog.text, last_error pg_catalog.text)%s',
                                  kind, 'b_' OPERATOR(pg_catalog.||) q.queue, opts);
        EXECUTE pg_catalog.format('CREATE INDEX %I ON mq.%I (group_key, gseq)',
                                  'bi_' OPERATOR(pg_catalog.||) q.queue, 'b_' OPERATOR(pg_catalog.||) q.queue);
        EXECUTE pg_catalog.format('CREATE %sTABLE mq.%I (run_start pg_catalog.int8 NOT NULL,'
                                  ' id pg_catalog.int8 NOT NULL, CONSTRAINT %I PRIMARY KEY (run_start, id))%s',
                                  kind, 'r_' OPERATOR(pg_catalog.||) q.queue,
                                  'rk_' OPERATOR(pg_catalog.||) q.queue, opts);
        EXECUTE pg_catalog.format('ALTER EXTENSION mq DROP TABLE mq.%I', 'g_' OPERATOR(pg_catalog.||) q.queue);
        EXECUTE pg_catalog.format('ALTER EXTENSION mq DROP TABLE mq.%I', 'b_' OPERATOR(pg_catalog.||) q.queue);
        EXECUTE pg_catalog.format('ALTER EXTENSION mq DROP TABLE mq.%I', 'r_' OPERATOR(pg_catalog.||) q.queue);
        -- grants of default privileges, as create_queue takes them back
        FOR r IN SELECT DISTINCT c.relname, a.grantee FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
                  WHERE c.relnamespace OPERATOR(pg_catalog.=) 'mq'::pg_catalog.regnamespace
                    AND c.relname OPERATOR(pg_catalog.=) ANY (ARRAY['g_' OPERATOR(pg_catalog.||) q.queue,
                                                                    'b_' OPERATOR(pg_catalog.||) q.queue,
                                                                    'r_' OPERATOR(pg_catalog.||) q.queue])
                    AND a.grantee OPERATOR(pg_catalog.<>) c.relowner LOOP
            EXECUTE pg_catalog.format('REVOKE ALL ON mq.%I FROM %s', r.relname,
                CASE WHEN r.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                     ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r.grantee)) END);
        END LOOP;
    END LOOP;
END
$$;
ALTER TYPE mq.message ADD ATTRIBUTE group_key text;
ALTER TYPE mq.queue_metrics ADD ATTRIBUTE groups bigint;
ALTER TYPE mq.queue_metrics ADD ATTRIBUTE groups_ready bigint;
ALTER TYPE mq.queue_metrics ADD ATTRIBUTE groups_in_flight bigint;

DROP FUNCTION mq.send(text, jsonb, jsonb, interval, integer, text);
CREATE FUNCTION mq.send(
    queue text,
    message jsonb,
    headers jsonb DEFAULT NULL,
    delay interval DEFAULT '0',
    priority integer DEFAULT 0,
    dedup_key text DEFAULT NULL,
    group_key text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mq_send' LANGUAGE C VOLATILE;

DROP FUNCTION mq.send_batch(text, jsonb[], jsonb[], interval, integer);
CREATE FUNCTION mq.send_batch(
    queue text,
    messages jsonb[],
    headers jsonb[] DEFAULT NULL,
    delay interval DEFAULT '0',
    priority integer DEFAULT 0,
    group_key text DEFAULT NULL,
    group_keys text[] DEFAULT NULL)
RETURNS SETOF bigint
AS 'MODULE_PATHNAME', 'mq_send_batch' LANGUAGE C VOLATILE ROWS 100;

DROP FUNCTION mq.receive(text, integer, interval, interval);
CREATE FUNCTION mq.receive(
    queue text,
    quantity integer DEFAULT 1,
    visibility_timeout interval DEFAULT NULL,
    wait interval DEFAULT '0',
    per_group integer DEFAULT 1)
RETURNS SETOF mq.message
AS 'MODULE_PATHNAME', 'mq_receive' LANGUAGE C VOLATILE ROWS 10;

DROP FUNCTION mq.publish(text, jsonb, jsonb, interval);
CREATE FUNCTION mq.publish(
    topic text,
    message jsonb,
    headers jsonb DEFAULT NULL,
    delay interval DEFAULT '0',
    group_key text DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'mq_publish' LANGUAGE C VOLATILE;

CREATE FUNCTION mq.ack(queue text, id bigint, receipt text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'mq_ack' LANGUAGE C VOLATILE;

CREATE FUNCTION mq.ack(queue text, ids bigint[], receipts text[])
RETURNS bigint
AS 'MODULE_PATHNAME', 'mq_ack_many' LANGUAGE C VOLATILE;

DROP FUNCTION mq.nack(text, bigint, interval, text);
CREATE FUNCTION mq.nack(
    queue text,
    id bigint,
    delay interval DEFAULT NULL,
    error text DEFAULT NULL,
    receipt text DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'mq_nack' LANGUAGE C VOLATILE;

DROP FUNCTION mq.extend(text, bigint, interval);
CREATE FUNCTION mq.extend(queue text, id bigint, visibility_timeout interval,
                          receipt text DEFAULT NULL)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'mq_extend' LANGUAGE C VOLATILE;

-- Every function checks the caller's privileges on the queue it touches
-- (mq.grant); the tables are for the extension's owner alone.
REVOKE ALL ON ALL TABLES IN SCHEMA mq FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA mq FROM PUBLIC;
GRANT USAGE ON SCHEMA mq TO PUBLIC;
GRANT SELECT ON mq.queues, mq.queue_privileges, mq.dead_letters, mq.archive,
    mq.subscriptions, mq.topic_privileges TO PUBLIC;
GRANT EXECUTE ON FUNCTION
    mq.create_queue(text, integer, interval, interval, interval, text, interval, boolean),
    mq.alter_queue(text, integer, interval, interval, interval, text, interval, boolean),
    mq.drop_queue(text), mq.purge_queue(text),
    mq.send(text, jsonb, jsonb, interval, integer, text, text),
    mq.send_batch(text, jsonb[], jsonb[], interval, integer, text, text[]),
    mq.receive(text, integer, interval, interval, integer),
    mq.ack(text, bigint), mq.ack(text, bigint[]),
    mq.ack(text, bigint, text), mq.ack(text, bigint[], text[]),
    mq.nack(text, bigint, interval, text, text),
    mq.extend(text, bigint, interval, text),
    mq.pop(text, integer),
    mq.redrive(text, integer),
    mq.metrics(text), mq.metrics(), mq.metrics_prometheus(), mq.maintain(),
    mq.subscribe(text, text, jsonb), mq.unsubscribe(text, text),
    mq.publish(text, jsonb, jsonb, interval, text),
    mq.grant(text, regrole, text[]), mq.revoke(text, regrole, text[]),
    mq.grant_create(regrole), mq.revoke_create(regrole),
    mq.grant_topic(text, regrole, text[]), mq.revoke_topic(text, regrole, text[]),
    mq._may_observe(text), mq._queue_grouped(text)
    TO PUBLIC;
