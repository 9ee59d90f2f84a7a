-- mq 0.1 -> 0.2: mq owns its storage, privileges per queue (README,
-- "Privileges").  Queue tables move to the extension's owner; whoever
-- created a queue keeps every privilege on it.

\echo Use "ALTER EXTENSION mq UPDATE TO '0.2'" to load this file. \quit

-- A queue table that runs code of its own (a trigger, a rule, a policy) or
-- has a column of a type outside pg_catalog (a domain put first on someone's
-- search_path when the queue was made) would run that code as the
-- extension's owner from now on: refuse to update until it is removed.
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
            OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type ty ON ty.oid OPERATOR(pg_catalog.=) a.atttypid
                        WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0
                          AND ty.typnamespace OPERATOR(pg_catalog.<>) 'pg_catalog'::pg_catalog.regnamespace));
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'queue tables % have triggers, rules, policies or column types of their own', bad
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Remove them (or drop and recreate those queues), then update again.';
    END IF;
END
$$;

ALTER TABLE mq.dead_letters RENAME TO dead_letter_store;
ALTER TABLE mq.archive RENAME TO archive_store;

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

DROP VIEW mq.queues;
CREATE VIEW mq.queues WITH (security_barrier) AS
    SELECT queue, created_at, max_attempts, visibility_timeout, retry_delay,
           retry_delay_max, dead_letter_queue, retention, unlogged, owner
      FROM mq.queue_catalog
     WHERE mq._may_observe(queue);

CREATE VIEW mq.queue_privileges WITH (security_barrier) AS
    SELECT queue, grantee, privilege
      FROM mq.privilege_catalog
     WHERE mq._may_observe(queue);

CREATE VIEW mq.dead_letters WITH (security_barrier) AS
    SELECT queue, id, message, headers, attempts, last_error, enqueued_at,
           dead_at, priority
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


DROP VIEW mq.subscriptions;
CREATE VIEW mq.subscriptions WITH (security_barrier) AS
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
    mq.send(text, jsonb, jsonb, interval, integer, text),
    mq.send_batch(text, jsonb[], jsonb[], interval, integer),
    mq.receive(text, integer, interval, interval),
    mq.ack(text, bigint), mq.ack(text, bigint[]),
    mq.ack(text, bigint, text), mq.ack(text, bigint[], text[]),
    mq.nack(text, bigint, interval, text, text),
    mq.extend(text, bigint, interval, text),
    mq.pop(text, integer),
    mq.redrive(text, integer),
    mq.metrics(text), mq.metrics(), mq.metrics_prometheus(), mq.maintain(),
    mq.subscribe(text, text, jsonb), mq.unsubscribe(text, text),
    mq.publish(text, jsonb, jsonb, interval),
    mq.grant(text, regrole, text[]), mq.revoke(text, regrole, text[]),
    mq.grant_create(regrole), mq.revoke_create(regrole),
    mq.grant_topic(text, regrole, text[]), mq.revoke_topic(text, regrole, text[]),
    mq._may_observe(text)
    TO PUBLIC;
