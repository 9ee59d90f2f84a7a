-- mq 0.2: catalog, shared tables, types and the SQL entry points.
-- Per-queue tables are created by mq.create_queue (src/queues.c).
--
-- mq owns its storage: every table here and every queue table belongs to
-- the extension's owner; applications get privileges on queues (mq.grant),
-- never on tables, and the C functions run their SQL as the extension owner
-- (src/catalog.c, mq_call_begin).

\echo Use "CREATE EXTENSION mq" to load this file. \quit

-- A schema mq made beforehand by someone else would let its owner replace
-- mq's tables: refuse it.
DO $$
DECLARE
    owner name;
BEGIN
    SELECT r.rolname INTO owner
      FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
     WHERE n.nspname OPERATOR(pg_catalog.=) 'mq';
    IF owner IS NOT NULL AND owner OPERATOR(pg_catalog.<>) CURRENT_USER THEN
        RAISE EXCEPTION 'schema "mq" already exists and is owned by role "%"', owner
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Drop the schema, or make the role that creates the extension its owner, then create the extension again.';
    END IF;
END
$$;

-- Message ids and dequeue positions come from one sequence.  CACHE 1 keeps
-- values increasing across backends, which the head protocol of
-- src/head.c relies on.
CREATE SEQUENCE mq.message_id_seq AS bigint CACHE 1;

CREATE TABLE mq.queue_catalog (
    queue               text PRIMARY KEY
                        CHECK (queue OPERATOR(pg_catalog.~) '^[a-z_][a-z0-9_]{0,47}$'),
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    max_attempts        integer NOT NULL CHECK (max_attempts OPERATOR(pg_catalog.>=) 1),
    visibility_timeout  interval NOT NULL,
    retry_delay         interval NOT NULL,
    retry_delay_max     interval NOT NULL,
    dead_letter_queue   text,
    retention           interval,
    unlogged            boolean NOT NULL DEFAULT false,
    owner               regrole NOT NULL    -- who created it: holds every privilege
);

-- Dead letters of queues that have no dead_letter_queue (read through the
-- view mq.dead_letters).
CREATE TABLE mq.dead_letter_store (
    queue       text NOT NULL,
    id          bigint NOT NULL,
    message     jsonb NOT NULL,
    headers     jsonb,
    attempts    integer NOT NULL,
    last_error  text,
    enqueued_at timestamptz NOT NULL,
    dead_at     timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    priority    integer NOT NULL DEFAULT 0,
    group_key   text,       -- its message group: a redrive sends it back into it
    PRIMARY KEY (queue, id)
);
CREATE INDEX dead_letters_queue_dead_at ON mq.dead_letter_store (queue, dead_at);

-- Acked messages of queues with a retention period (view mq.archive).
CREATE TABLE mq.archive_store (
    queue       text NOT NULL,
    id          bigint NOT NULL,
    message     jsonb NOT NULL,
    headers     jsonb,
    attempts    integer NOT NULL,
    enqueued_at timestamptz NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
CREATE INDEX archive_queue_archived_at ON mq.archive_store (queue, archived_at);

-- Live dedup keys: a row exists while its message is ready, delayed or in
-- flight.  The primary key makes concurrent sends with one key wait for each
-- other and agree on one message.
CREATE TABLE mq.dedup_keys (
    queue     text NOT NULL,
    dedup_key text NOT NULL,
    id        bigint NOT NULL,
    PRIMARY KEY (queue, dedup_key)
);

-- Cumulative totals, flushed from shared memory by mq.maintain() and the
-- worker; live values are in shared memory.
CREATE TABLE mq.queue_totals (
    queue               text PRIMARY KEY,
    total_sent          bigint NOT NULL DEFAULT 0,
    total_acked         bigint NOT NULL DEFAULT 0,
    total_dead_lettered bigint NOT NULL DEFAULT 0
);

SELECT pg_catalog.pg_extension_config_dump('mq.queue_catalog', '');
SELECT pg_catalog.pg_extension_config_dump('mq.dead_letter_store', '');
SELECT pg_catalog.pg_extension_config_dump('mq.archive_store', '');
SELECT pg_catalog.pg_extension_config_dump('mq.dedup_keys', '');
SELECT pg_catalog.pg_extension_config_dump('mq.queue_totals', '');
SELECT pg_catalog.pg_extension_config_dump('mq.message_id_seq', '');

CREATE TYPE mq.message AS (
    id          bigint,
    message     jsonb,
    headers     jsonb,
    attempt     integer,
    enqueued_at timestamptz,
    visible_at  timestamptz,
    priority    integer,
    receipt     text,       -- names this delivery: ack, nack, extend take it
    group_key   text        -- its message group (mq.send's group_key), or NULL
);

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

CREATE VIEW mq.queues WITH (security_barrier) AS
    SELECT queue, created_at, max_attempts, visibility_timeout, retry_delay,
           retry_delay_max, dead_letter_queue, retention, unlogged, owner,
           mq._queue_grouped(queue) AS grouped
      FROM mq.queue_catalog
     WHERE mq._may_observe(queue);

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

-- Queues ------------------------------------------------------------------

CREATE FUNCTION mq.create_queue(
    queue text,
    max_attempts integer DEFAULT 5,
    visibility_timeout interval DEFAULT '30 seconds',
    retry_delay interval DEFAULT '1 second',
    retry_delay_max interval DEFAULT '1 hour',
    dead_letter_queue text DEFAULT NULL,
    retention interval DEFAULT NULL,
    unlogged boolean DEFAULT false)
RETURNS boolean
AS 'MODULE_PATHNAME', 'mq_create_queue' LANGUAGE C VOLATILE;

CREATE FUNCTION mq.alter_queue(
    queue text,
    max_attempts integer DEFAULT NULL,
    visibility_timeout interval DEFAULT NULL,
    retry_delay interval DEFAULT NULL,
    retry_delay_max interval DEFAULT NULL,
    dead_letter_queue text DEFAULT NULL,
    retention interval DEFAULT NULL,
    unlogged boolean DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'mq_alter_queue' LANGUAGE C VOLATILE;

CREATE FUNCTION mq.drop_queue(queue text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'mq_drop_queue' LANGUAGE C VOLATILE STRICT;

CREATE FUNCTION mq.purge_queue(queue text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mq_purge_queue' LANGUAGE C VOLATILE STRICT;

-- Producing ---------------------------------------------------------------

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

-- Consuming ---------------------------------------------------------------

CREATE FUNCTION mq.receive(
    queue text,
    quantity integer DEFAULT 1,
    visibility_timeout interval DEFAULT NULL,
    wait interval DEFAULT '0',
    per_group integer DEFAULT 1)
RETURNS SETOF mq.message
AS 'MODULE_PATHNAME', 'mq_receive' LANGUAGE C VOLATILE ROWS 10;

CREATE FUNCTION mq.ack(queue text, id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'mq_ack' LANGUAGE C VOLATILE;

CREATE FUNCTION mq.ack(queue text, ids bigint[])
RETURNS bigint
AS 'MODULE_PATHNAME', 'mq_ack_many' LANGUAGE C VOLATILE;

-- Fenced: only while that delivery still holds the lease.
CREATE FUNCTION mq.ack(queue text, id bigint, receipt text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'mq_ack' LANGUAGE C VOLATILE;

CREATE FUNCTION mq.ack(queue text, ids bigint[], receipts text[])
RETURNS bigint
AS 'MODULE_PATHNAME', 'mq_ack_many' LANGUAGE C VOLATILE;

CREATE FUNCTION mq.nack(
    queue text,
    id bigint,
    delay interval DEFAULT NULL,
    error text DEFAULT NULL,
    receipt text DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'mq_nack' LANGUAGE C VOLATILE;

CREATE FUNCTION mq.extend(queue text, id bigint, visibility_timeout interval,
                          receipt text DEFAULT NULL)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'mq_extend' LANGUAGE C VOLATILE;

CREATE FUNCTION mq.pop(queue text, quantity integer DEFAULT 1)
RETURNS SETOF mq.message
AS 'MODULE_PATHNAME', 'mq_pop' LANGUAGE C VOLATILE ROWS 10;

-- Dead letters ------------------------------------------------------------

CREATE FUNCTION mq.redrive(queue text, max_messages integer DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mq_redrive' LANGUAGE C VOLATILE;

-- Observability -----------------------------------------------------------

CREATE TYPE mq.queue_metrics AS (
    queue               text,
    ready               bigint,
    in_flight           bigint,
    delayed             bigint,
    dead                bigint,
    oldest_ready_age    interval,
    total_sent          bigint,
    total_acked         bigint,
    total_dead_lettered bigint,
    groups              bigint,     -- message groups that have messages
    groups_ready        bigint,     -- of those, groups whose next message is ready
    groups_in_flight    bigint      -- groups with a message in flight
);

CREATE FUNCTION mq.metrics(queue text)
RETURNS SETOF mq.queue_metrics
AS 'MODULE_PATHNAME', 'mq_metrics' LANGUAGE C VOLATILE;

CREATE FUNCTION mq.metrics()
RETURNS SETOF mq.queue_metrics
AS 'MODULE_PATHNAME', 'mq_metrics' LANGUAGE C VOLATILE;

CREATE FUNCTION mq.metrics_prometheus()
RETURNS text
AS 'MODULE_PATHNAME', 'mq_metrics_prometheus' LANGUAGE C VOLATILE;

CREATE FUNCTION mq.maintain()
RETURNS bigint
AS 'MODULE_PATHNAME', 'mq_maintain' LANGUAGE C VOLATILE;

-- Background workers --------------------------------------------------------

CREATE FUNCTION mq._workers(
    OUT database text, OUT pid integer, OUT started_at timestamptz,
    OUT last_run timestamptz, OUT passes bigint, OUT handled bigint,
    OUT last_error text, OUT state text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'mq_workers' LANGUAGE C VOLATILE;

-- state: 'running', or 'cannot start: …' for a database whose worker
-- cannot start (no free background worker, no free slot).
CREATE VIEW mq.workers AS
    SELECT database, pid, started_at, last_run, passes, handled, last_error, state
      FROM mq._workers();

-- Starts this database's worker now rather than at the launcher's next look.
CREATE FUNCTION mq._worker_wanted()
RETURNS boolean
AS 'MODULE_PATHNAME', 'mq_worker_wanted' LANGUAGE C VOLATILE;

SELECT mq._worker_wanted();

-- Topics (src/topics.c) -----------------------------------------------------

-- A subscription binds a queue to a topic pattern.  Dropping the queue
-- (mq.drop_queue deletes its catalog row) drops its subscriptions.  The
-- checks repeat what mq.subscribe validates, so that rows restored or
-- written by hand are well-formed too.
CREATE TABLE mq.subscription_catalog (
    queue       text NOT NULL
                REFERENCES mq.queue_catalog (queue) ON DELETE CASCADE,
    pattern     text NOT NULL
                CHECK (pattern OPERATOR(pg_catalog.~) '^([^.*#]+|[*#])([.]([^.*#]+|[*#]))*$'
                       AND pg_catalog.octet_length(pattern) OPERATOR(pg_catalog.<=) 255),
    filter      jsonb
                CHECK (pg_catalog.jsonb_typeof(filter) OPERATOR(pg_catalog.=) 'object'),
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (queue, pattern)
);

SELECT pg_catalog.pg_extension_config_dump('mq.subscription_catalog', '');

CREATE VIEW mq.subscriptions WITH (security_barrier) AS
    SELECT queue, pattern, filter, created_at
      FROM mq.subscription_catalog
     WHERE mq._may_observe(queue);

CREATE FUNCTION mq.subscribe(queue text, pattern text, filter jsonb DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'mq_subscribe' LANGUAGE C VOLATILE;

CREATE FUNCTION mq.unsubscribe(queue text, pattern text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'mq_unsubscribe' LANGUAGE C VOLATILE;

CREATE FUNCTION mq.publish(
    topic text,
    message jsonb,
    headers jsonb DEFAULT NULL,
    delay interval DEFAULT '0',
    group_key text DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'mq_publish' LANGUAGE C VOLATILE;

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
