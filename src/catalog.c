/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  The queue catalog as each backend sees it: name validation, a cache
 *	  of queue options and relation ids, and the SPI plans of each queue,
 *	  prepared on first use and kept until the queue changes.
 *
 * A change to a queue (create, alter, drop) sends a relcache invalidation
 * for mq.queue_catalog at commit; every backend's callback then marks its
 * cached queues stale, and the next call reloads them and prepares new
 * plans.  All SQL here is schema-qualified, operators included, so the
 * caller's search_path cannot redirect anything.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "optimizer/cost.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "mq.h"

#define OP(x) " OPERATOR(pg_catalog." x ") "

#if PG_VERSION_NUM >= 140000
#define MQ_HASH_STRINGS HASH_STRINGS
#else
#define MQ_HASH_STRINGS 0		/* string keys were the default */
#endif

static HTAB *mqc_queues = NULL;
static Oid	mqc_catalog_relid = InvalidOid;
static Oid	mqc_sequence_relid = InvalidOid;
static SPIPlanPtr mqc_load_plan = NULL;
static bool mqc_callback_registered = false;

/*
 * Relcache callback.  Only an invalidation of the catalog itself (sent by
 * every queue change) or a full reset makes cached queues stale; plans that
 * merely need replanning after a vacuum are the plan cache's business.
 */
static void
mqc_invalidate(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	MqQueue    *q;

	if (relid != InvalidOid && relid != mqc_catalog_relid)
		return;
	mqc_catalog_relid = InvalidOid;
	mqc_sequence_relid = InvalidOid;
	if (mqc_queues == NULL)
		return;
	hash_seq_init(&status, mqc_queues);
	while ((q = hash_seq_search(&status)) != NULL)
		q->valid = false;
}

static void
mqc_init(void)
{
	HASHCTL		ctl;

	if (mqc_queues)
		return;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = sizeof(MqQueue);
	ctl.hcxt = CacheMemoryContext;
	mqc_queues = hash_create("mq queues", 64, &ctl,
							 HASH_ELEM | MQ_HASH_STRINGS | HASH_CONTEXT);
	if (!mqc_callback_registered)
	{
		CacheRegisterRelcacheCallback(mqc_invalidate, (Datum) 0);
		mqc_callback_registered = true;
	}
}

static Oid
mqc_namespace(void)
{
	return get_namespace_oid("mq", false);
}

Oid
mq_catalog_relid(void)
{
	if (!OidIsValid(mqc_catalog_relid))
	{
		mqc_catalog_relid = get_relname_relid("queue_catalog", mqc_namespace());
		if (!OidIsValid(mqc_catalog_relid))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("extension \"mq\" is not installed in this database")));
	}
	return mqc_catalog_relid;
}

Oid
mq_sequence_relid(void)
{
	if (!OidIsValid(mqc_sequence_relid))
		mqc_sequence_relid = get_relname_relid("message_id_seq", mqc_namespace());
	return mqc_sequence_relid;
}

/* Tell every backend, at commit, that the queue catalog changed. */
void
mq_catalog_changed(void)
{
	CacheInvalidateRelcacheByRelid(mq_catalog_relid());
}

void
mq_queue_cache_flush(void)
{
	mqc_invalidate((Datum) 0, InvalidOid);
}

/* ---- names ---------------------------------------------------------- */

void
mq_check_queue_name(const char *name)
{
	size_t		len = strlen(name);
	bool		ok = len >= 1 && len <= MQ_QUEUE_NAME_MAX;

	for (size_t i = 0; ok && i < len; i++)
	{
		char		c = name[i];

		if (!((c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9')))
			ok = false;
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid queue name \"%s\"", name),
				 errdetail("A queue name has 1 to %d characters: lower-case letters, digits and underscores, and does not start with a digit.",
						   MQ_QUEUE_NAME_MAX)));
}

char *
mq_text_to_queue_name(text *t)
{
	char	   *name = text_to_cstring(t);

	mq_check_queue_name(name);
	return name;
}

/* The queue name of argument argno, checked; NULL is an error. */
char *
mq_queue_name_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("queue name must not be null")));
	return mq_text_to_queue_name(PG_GETARG_TEXT_PP(argno));
}

/* ---- SPI ------------------------------------------------------------ */

void
mq_connect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "mq: SPI_connect failed");
}

void
mq_finish(void)
{
	SPI_finish();
}

/*
 * Prepare and keep a plan.  Plans are generic: a queue's statements have
 * the same best plan whatever the parameters, and replanning them on every
 * call (which the plan cache would otherwise do for the LIMIT $n scans)
 * costs more than running them.
 */
SPIPlanPtr
mq_prepare(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);

	if (plan == NULL)
		elog(ERROR, "mq: could not prepare \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "mq: could not keep plan");
	return plan;
}

/*
 * Execute a kept plan with sequential and bitmap scans off.  Every mq
 * statement is an index (or TID) scan by design; but a plan made while a
 * queue table looked empty (just after a vacuum) would scan it in full,
 * and stay cached while the table grows.  The planner reads these
 * variables when the plan cache (re)plans, which happens inside execution.
 */
int
mq_exec_plan(SPIPlanPtr plan, Datum *values, const char *nulls, bool read_only, long count)
{
	bool		save_seqscan = enable_seqscan;
	bool		save_bitmapscan = enable_bitmapscan;
	int			rc;

	enable_seqscan = false;
	enable_bitmapscan = false;
	PG_TRY();
	{
		rc = SPI_execute_plan(plan, values, nulls, read_only, count);
	}
	PG_FINALLY();
	{
		enable_seqscan = save_seqscan;
		enable_bitmapscan = save_bitmapscan;
	}
	PG_END_TRY();
	return rc;
}

/* ---- cache ---------------------------------------------------------- */

static void
mqc_free_plans(MqQueue *q)
{
	for (int i = 0; i < MQP_NUM; i++)
	{
		if (q->plans[i])
			SPI_freeplan(q->plans[i]);
		q->plans[i] = NULL;
	}
	if (q->ready_table)
		pfree(q->ready_table);
	if (q->wait_table)
		pfree(q->wait_table);
	q->ready_table = q->wait_table = NULL;
}

static char *
mqc_table_name(const char *prefix, const char *name)
{
	char		rel[NAMEDATALEN];

	snprintf(rel, sizeof(rel), "%s%s", prefix, name);
	return MemoryContextStrdup(CacheMemoryContext,
							   quote_qualified_identifier("mq", rel));
}

/* Read one queue's row from the catalog into q; false if there is none. */
static bool
mqc_load(MqQueue *q, const char *name)
{
	Datum		arg = CStringGetTextDatum(name);
	bool		isnull;
	char		rel[NAMEDATALEN];
	Oid			nsp;

	if (mqc_load_plan == NULL)
	{
		Oid			types[1] = {TEXTOID};

		mqc_load_plan = mq_prepare(
			"SELECT max_attempts, visibility_timeout, retry_delay, retry_delay_max,"
			" dead_letter_queue, retention, unlogged"
			" FROM mq.queue_catalog WHERE queue" OP("=") "$1", 1, types);
	}
	/*
	 * Not read-only: a fresh snapshot, so that a queue dropped while we
	 * waited for its lock is seen as gone.
	 */
	if (mq_exec_plan(mqc_load_plan, &arg, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "mq: could not read the queue catalog");
	if (SPI_processed == 0)
		return false;

	q->max_attempts = DatumGetInt32(mq_spi_get(0, 1, &isnull));
	q->visibility_timeout = *DatumGetIntervalP(mq_spi_get(0, 2, &isnull));
	q->retry_delay = *DatumGetIntervalP(mq_spi_get(0, 3, &isnull));
	q->retry_delay_max = *DatumGetIntervalP(mq_spi_get(0, 4, &isnull));
	{
		Datum		d = mq_spi_get(0, 5, &isnull);

		q->has_dlq = !isnull;
		if (!isnull)
			text_to_cstring_buffer(DatumGetTextPP(d), q->dlq, NAMEDATALEN);
	}
	{
		Datum		d = mq_spi_get(0, 6, &isnull);

		q->has_retention = !isnull;
		if (!isnull)
			q->retention = *DatumGetIntervalP(d);
	}
	q->is_unlogged = DatumGetBool(mq_spi_get(0, 7, &isnull));

	nsp = mqc_namespace();
	snprintf(rel, sizeof(rel), "q_%s", name);
	q->ready_relid = get_relname_relid(rel, nsp);
	snprintf(rel, sizeof(rel), "w_%s", name);
	q->wait_relid = get_relname_relid(rel, nsp);
	if (!OidIsValid(q->ready_relid) || !OidIsValid(q->wait_relid))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("tables of queue \"%s\" are missing", name),
				 errhint("Drop the queue with mq.drop_queue and create it again.")));
	q->ready_table = mqc_table_name("q_", name);
	q->wait_table = mqc_table_name("w_", name);
	return true;
}

/*
 * The cached queue of that name, locked against a concurrent drop.  Must be
 * called inside SPI.  Raises 42P01 when the queue does not exist, unless
 * missing_ok.
 */
MqQueue *
mq_queue_lookup(const char *name, bool missing_ok)
{
	MqQueue    *q;
	bool		found;

	mqc_init();
	(void) mq_catalog_relid();
	q = hash_search(mqc_queues, name, HASH_ENTER, &found);
	if (!found)
	{
		memset(((char *) q) + NAMEDATALEN, 0, sizeof(MqQueue) - NAMEDATALEN);
		q->valid = false;
	}
	for (int tries = 0;; tries++)
	{
		if (!q->valid)
		{
			mqc_free_plans(q);
			q->ready_relid = q->wait_relid = InvalidOid;
			if (!mqc_load(q, name))
			{
				hash_search(mqc_queues, name, HASH_REMOVE, NULL);
				if (missing_ok)
					return NULL;
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_TABLE),
						 errmsg("queue \"%s\" does not exist", name)));
			}
			q->valid = true;
		}
		/* keeps the tables from being dropped while we use them */
		LockRelationOid(q->ready_relid, AccessShareLock);
		if (q->valid || tries > 2)
			break;
	}
	return q;
}

/* Names of all queues, in order. */
List *
mq_all_queue_names(void)
{
	List	   *names = NIL;

	if (SPI_execute("SELECT queue FROM mq.queue_catalog ORDER BY queue", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "mq: could not list queues");
	for (uint64 i = 0; i < SPI_processed; i++)
		names = lappend(names, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	return names;
}

/* ---- plans ---------------------------------------------------------- */

#define READY_COLS "seq, id, priority, attempt, enqueued_at, message, headers, dedup_key, last_error"

static const char *
mqc_plan_sql(MqQueue *q, MqPlanKind kind, int *nargs, Oid *types)
{
	StringInfoData sql;
	const char *R = q->ready_table;
	const char *W = q->wait_table;
	char	   *qname = quote_literal_cstr(q->name);

	initStringInfo(&sql);
	switch (kind)
	{
		case MQP_INSERT_READY:
		case MQP_INSERT_WAIT:
			if (kind == MQP_INSERT_READY)
				appendStringInfo(&sql,
								 "INSERT INTO %s (" READY_COLS ")"
								 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", R);
			else
				appendStringInfo(&sql,
								 "INSERT INTO %s (vt, leased, " READY_COLS ")"
								 " VALUES ($10, false, $1, $2, $3, $4, $5, $6, $7, $8, $9)", W);
			*nargs = (kind == MQP_INSERT_READY) ? 9 : 10;
			types[0] = INT8OID;
			types[1] = INT8OID;
			types[2] = INT4OID;
			types[3] = INT4OID;
			types[4] = TIMESTAMPTZOID;
			types[5] = JSONBOID;
			types[6] = JSONBOID;
			types[7] = TEXTOID;
			types[8] = TEXTOID;
			types[9] = TIMESTAMPTZOID;
			break;
		case MQP_INSERT_READY_BATCH:
		case MQP_INSERT_WAIT_BATCH:
			/* one statement for a whole send_batch, rows in input order */
			if (kind == MQP_INSERT_READY_BATCH)
				appendStringInfo(&sql,
								 "INSERT INTO %s (seq, id, priority, attempt, enqueued_at, message, headers)"
								 " SELECT u.s, u.s, $3, 0, $4, u.m, u.h", R);
			else
				appendStringInfo(&sql,
								 "INSERT INTO %s (vt, leased, seq, id, priority, attempt, enqueued_at,"
								 " message, headers) SELECT $6, false, u.s, u.s, $3, 0, $4, u.m, u.h", W);
			appendStringInfoString(&sql, " FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
								   " pg_catalog.unnest($5)) AS u(s, m, h)");
			*nargs = (kind == MQP_INSERT_READY_BATCH) ? 5 : 6;
			types[0] = INT8ARRAYOID;
			types[1] = JSONBARRAYOID;
			types[2] = INT4OID;
			types[3] = TIMESTAMPTZOID;
			types[4] = JSONBARRAYOID;
			types[5] = TIMESTAMPTZOID;
			break;
		case MQP_LEASE_LANE:
		case MQP_LEASE_ANY:
		case MQP_POP_LANE:
		case MQP_POP_ANY:
			{
				bool		lane = (kind == MQP_LEASE_LANE || kind == MQP_POP_LANE);
				bool		lease = (kind == MQP_LEASE_LANE || kind == MQP_LEASE_ANY);

				/*
				 * Take rows in dequeue order, skipping those another
				 * consumer holds (the TID array keeps the delete a TID
				 * scan); a lease moves them to the wait table, a pop
				 * releases their dedup keys (and archives them).
				 */
				appendStringInfo(&sql,
								 "WITH moved AS (DELETE FROM %s WHERE ctid" OP("=") "ANY (ARRAY("
								 "SELECT r.ctid FROM %s r", R, R);
				if (lane)
					appendStringInfoString(&sql,
										   " WHERE r.priority" OP("=") "$3 AND r.seq" OP(">=") "$4"
										   " ORDER BY r.seq");
				else
					appendStringInfoString(&sql, " ORDER BY r.priority DESC, r.seq");
				appendStringInfoString(&sql,
									   " LIMIT $1 FOR UPDATE SKIP LOCKED)) RETURNING " READY_COLS ")");
				if (lease)
					appendStringInfo(&sql,
									 " INSERT INTO %s (vt, leased, " READY_COLS ")"
									 " SELECT $2, true, seq, id, priority, attempt" OP("+") "1,"
									 " enqueued_at, message, headers, dedup_key, last_error FROM moved"
									 " RETURNING id, message, headers, attempt, enqueued_at, vt, priority, seq,"
									 " dedup_key, last_error", W);
				else
				{
					appendStringInfo(&sql,
									 ", keys AS (DELETE FROM mq.dedup_keys k USING moved m"
									 " WHERE k.queue" OP("=") "%s AND k.dedup_key" OP("=") "m.dedup_key"
									 " AND k.id" OP("=") "m.id)", qname);
					if (q->has_retention)
						appendStringInfo(&sql,
										 ", arch AS (INSERT INTO mq.archive (queue, id, message, headers, attempts, enqueued_at)"
										 " SELECT %s, id, message, headers, attempt" OP("+") "1, enqueued_at FROM moved)",
										 qname);
					appendStringInfoString(&sql,
										   " SELECT id, message, headers, attempt" OP("+") "1, enqueued_at, $2,"
										   " priority, seq, dedup_key, last_error FROM moved");
				}
				*nargs = lane ? 4 : 2;
				types[0] = INT4OID;
				types[1] = TIMESTAMPTZOID;
				types[2] = INT4OID;
				types[3] = INT8OID;
				break;
			}
		case MQP_ACK:
		case MQP_ACK_MANY:
			appendStringInfo(&sql,
							 "WITH gone AS (DELETE FROM %s WHERE id" OP("=") "%s"
							 " RETURNING id, leased, message, headers, attempt, enqueued_at, dedup_key),"
							 " keys AS (DELETE FROM mq.dedup_keys k USING gone g"
							 " WHERE k.queue" OP("=") "%s AND k.dedup_key" OP("=") "g.dedup_key"
							 " AND k.id" OP("=") "g.id)",
							 W, kind == MQP_ACK ? "$1" : "ANY ($1)", qname);
			if (q->has_retention)
				appendStringInfo(&sql,
								 ", arch AS (INSERT INTO mq.archive (queue, id, message, headers, attempts, enqueued_at)"
								 " SELECT %s, id, message, headers, attempt, enqueued_at FROM gone)",
								 qname);
			appendStringInfoString(&sql, " SELECT leased FROM gone");
			*nargs = 1;
			types[0] = kind == MQP_ACK ? INT8OID : INT8ARRAYOID;
			break;
		case MQP_NACK_LOCK:
			appendStringInfo(&sql,
							 "SELECT attempt, leased FROM %s WHERE id" OP("=") "$1 FOR UPDATE", W);
			*nargs = 1;
			types[0] = INT8OID;
			break;
		case MQP_RETRY:
			appendStringInfo(&sql,
							 "UPDATE %s SET leased = false, vt = $2,"
							 " last_error = COALESCE($3, last_error) WHERE id" OP("=") "$1", W);
			*nargs = 3;
			types[0] = INT8OID;
			types[1] = TIMESTAMPTZOID;
			types[2] = TEXTOID;
			break;
		case MQP_EXTEND:
			appendStringInfo(&sql,
							 "UPDATE %s SET vt = $2 WHERE id" OP("=") "$1 AND leased RETURNING vt", W);
			*nargs = 2;
			types[0] = INT8OID;
			types[1] = TIMESTAMPTZOID;
			break;
		case MQP_DEAD_TAKE:
			appendStringInfo(&sql,
							 "DELETE FROM %s WHERE id" OP("=") "$1"
							 " RETURNING id, priority, attempt, enqueued_at, message, headers,"
							 " dedup_key, COALESCE($2, last_error)", W);
			*nargs = 2;
			types[0] = INT8OID;
			types[1] = TEXTOID;
			break;
		case MQP_DEDUP_CLAIM:
			appendStringInfo(&sql,
							 "INSERT INTO mq.dedup_keys (queue, dedup_key, id) VALUES (%s, $1, $2)"
							 " ON CONFLICT (queue, dedup_key) DO NOTHING RETURNING id", qname);
			*nargs = 2;
			types[0] = TEXTOID;
			types[1] = INT8OID;
			break;
		case MQP_DEDUP_FIND:
			appendStringInfo(&sql,
							 "SELECT id FROM mq.dedup_keys WHERE queue" OP("=") "%s"
							 " AND dedup_key" OP("=") "$1", qname);
			*nargs = 1;
			types[0] = TEXTOID;
			break;
		case MQP_DUE_EXPIRED:
			appendStringInfo(&sql,
							 "SELECT id, attempt, vt FROM %s WHERE vt" OP(">=") "$1 AND vt" OP("<=") "$2"
							 " AND leased ORDER BY vt LIMIT 1000 FOR UPDATE SKIP LOCKED", W);
			*nargs = 2;
			types[0] = TIMESTAMPTZOID;
			types[1] = TIMESTAMPTZOID;
			break;
		case MQP_DUE_READY:
			appendStringInfo(&sql,
							 "DELETE FROM %s WHERE ctid" OP("=") "ANY (ARRAY("
							 "SELECT w.ctid FROM %s w WHERE w.vt" OP(">=") "$1 AND w.vt" OP("<=") "$2"
							 " AND NOT w.leased ORDER BY w.vt LIMIT 1000 FOR UPDATE SKIP LOCKED))"
							 " RETURNING id, priority, attempt, enqueued_at, message, headers,"
							 " dedup_key, last_error", W, W);
			*nargs = 2;
			types[0] = TIMESTAMPTZOID;
			types[1] = TIMESTAMPTZOID;
			break;
		case MQP_NEXT_DUE:
			appendStringInfo(&sql,
							 "SELECT vt FROM %s WHERE vt" OP(">=") "$1 AND vt" OP("<=") "$2"
							 " ORDER BY vt LIMIT 1", W);
			*nargs = 2;
			types[0] = TIMESTAMPTZOID;
			types[1] = TIMESTAMPTZOID;
			break;
		case MQP_LANES:
			appendStringInfo(&sql,
							 "SELECT priority FROM %s WHERE priority" OP("<") "$1"
							 " ORDER BY priority DESC LIMIT 1", R);
			*nargs = 1;
			types[0] = INT8OID;
			break;
		case MQP_NUM:
			elog(ERROR, "mq: bad plan kind");
	}
	return sql.data;
}

SPIPlanPtr
mq_queue_plan(MqQueue *q, MqPlanKind kind)
{
	if (q->plans[kind] == NULL)
	{
		int			nargs = 0;
		Oid			types[16];
		const char *sql = mqc_plan_sql(q, kind, &nargs, types);

		q->plans[kind] = mq_prepare(sql, nargs, types);
	}
	return q->plans[kind];
}
