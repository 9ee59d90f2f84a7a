/*-------------------------------------------------------------------------
 *
 * queues.c
 *	  Queue life cycle: mq.create_queue, mq.alter_queue, mq.drop_queue and
 *	  mq.purge_queue.  A queue is a row of mq.queue_catalog plus its ready
 *	  table mq.q_<name>, its wait table mq.w_<name>, and for message groups
 *	  its group table mq.g_<name> and backlog mq.b_<name> (src/group.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "utils/lsyscache.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/snapmgr.h"
#include "lib/stringinfo.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "util.h"
#include "shmem.h"
#include "catalog.h"
#include "xact.h"

PG_FUNCTION_INFO_V1(mq_create_queue);
PG_FUNCTION_INFO_V1(mq_alter_queue);
PG_FUNCTION_INFO_V1(mq_drop_queue);
PG_FUNCTION_INFO_V1(mq_purge_queue);

#define MQ_MAX_ATTEMPTS 1000

static void
mqq_exec(const char *sql, int expected)
{
	int			rc = mq_exec_sql(sql, false, 0);

	if (rc != expected)
		elog(ERROR, "mq: \"%s\" failed: %s", sql, SPI_result_code_string(rc));
}

/* Options are checked the same way by create and alter. */
static void
mqq_check_options(const char *name, FunctionCallInfo fcinfo)
{
	if (!PG_ARGISNULL(1) && PG_GETARG_INT32(1) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_attempts must be at least 1")));
	if (!PG_ARGISNULL(1) && PG_GETARG_INT32(1) > MQ_MAX_ATTEMPTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_attempts must be at most %d", MQ_MAX_ATTEMPTS)));
	if (!PG_ARGISNULL(2) && !mq_interval_positive(PG_GETARG_INTERVAL_P(2)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("visibility_timeout must be positive")));
	if (!PG_ARGISNULL(2))
		mq_check_interval_max("visibility_timeout", PG_GETARG_INTERVAL_P(2));
	if (!PG_ARGISNULL(3) && mq_interval_negative(PG_GETARG_INTERVAL_P(3)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("retry_delay must not be negative")));
	if (!PG_ARGISNULL(3))
		mq_check_interval_max("retry_delay", PG_GETARG_INTERVAL_P(3));
	if (!PG_ARGISNULL(4) && mq_interval_negative(PG_GETARG_INTERVAL_P(4)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("retry_delay_max must not be negative")));
	if (!PG_ARGISNULL(4))
		mq_check_interval_max("retry_delay_max", PG_GETARG_INTERVAL_P(4));
	if (!PG_ARGISNULL(5))
	{
		char	   *dlq = text_to_cstring(PG_GETARG_TEXT_PP(5));

		/* alter_queue takes '' to remove the dead-letter queue */
		if (dlq[0] != '\0')
		{
			mq_check_queue_name(dlq);
			if (strcmp(dlq, name) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("queue \"%s\" cannot be its own dead-letter queue", name)));
		}
	}
	if (!PG_ARGISNULL(6) && mq_interval_negative(PG_GETARG_INTERVAL_P(6)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("retention must not be negative")));
	if (!PG_ARGISNULL(6))
		mq_check_interval_max("retention", PG_GETARG_INTERVAL_P(6));
}

/* The backoff grows from retry_delay up to retry_delay_max. */
static void
mqq_check_backoff(Interval *retry_delay, Interval *retry_delay_max)
{
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp, PointerGetDatum(retry_delay),
										  PointerGetDatum(retry_delay_max))) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("retry_delay_max must be at least retry_delay"),
				 errdetail("retry_delay would be %s, retry_delay_max %s.",
						   DatumGetCString(DirectFunctionCall1(interval_out, PointerGetDatum(retry_delay))),
						   DatumGetCString(DirectFunctionCall1(interval_out, PointerGetDatum(retry_delay_max))))));
}

/*
 * Refuse a dead-letter queue that would close a cycle of dead-letter
 * queues: the chain that starts at dlq must not lead back to name.
 * Changes of dead-letter queues are serialized (a lock held until commit)
 * and the chain is read with the latest snapshot, so that two concurrent
 * changes cannot close a cycle between them.
 */
static void
mqq_check_dlq_cycle(const char *name, const char *dlq)
{
	static SPIPlanPtr plan = NULL;
	StringInfoData path;
	List	   *seen = NIL;
	char	   *cur = pstrdup(dlq);
	bool		cycle = false;
	Snapshot	snap;

	LockDatabaseObject(RelationRelationId, mq_catalog_relid(), 0, ExclusiveLock);
	if (plan == NULL)
	{
		Oid			types[1] = {TEXTOID};

		plan = mq_prepare("SELECT dead_letter_queue FROM mq.queue_catalog"
						  " WHERE queue" OP("=") "$1", 1, types);
	}
	initStringInfo(&path);
	appendStringInfo(&path, "%s -> %s", name, dlq);
	snap = RegisterSnapshot(GetLatestSnapshot());
	for (;;)
	{
		Datum		arg = CStringGetTextDatum(cur);
		bool		isnull;
		Datum		d;
		ListCell   *lc;
		bool		again = false;

		if (strcmp(cur, name) == 0)
		{
			cycle = true;
			break;
		}
		/* a cycle that does not pass through name (made behind mq's back) */
		foreach(lc, seen)
			if (strcmp(lfirst(lc), cur) == 0)
				again = true;
		if (again)
			break;
		seen = lappend(seen, cur);
		if (SPI_execute_snapshot(plan, &arg, NULL, snap, InvalidSnapshot, true, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "mq: could not read the queue catalog");
		if (SPI_processed == 0)
			break;
		d = mq_spi_get(0, 1, &isnull);
		if (isnull)
			break;
		cur = TextDatumGetCString(d);
		appendStringInfo(&path, " -> %s", cur);
	}
	UnregisterSnapshot(snap);
	if (cycle)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dead-letter queues would form a cycle: %s", path.data),
				 errdetail("A message would be dead-lettered from queue to queue forever.")));
}

/* The dead-letter queue named must exist, and the caller may send to it. */
static void
mqq_check_dlq(FunctionCallInfo fcinfo, Oid caller)
{
	char	   *dlq;

	if (PG_ARGISNULL(5))
		return;
	dlq = text_to_cstring(PG_GETARG_TEXT_PP(5));
	if (dlq[0] != '\0')
		mq_require_privilege(mq_queue_lookup(dlq, false), caller, MQ_PRIV_SEND);
}

/* Creating queues: administrators, and roles of mq.creator_catalog. */
static void
mqq_require_create(Oid caller)
{
	if (mq_is_admin(caller))
		return;
	if (mq_exec_sql("SELECT grantee FROM mq.creator_catalog", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "mq: could not read mq.creator_catalog");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			role = DatumGetObjectId(mq_spi_get(i, 1, &isnull));

		if (has_privs_of_role(caller, role))
			return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to create queues"),
			 errhint("An administrator can allow it with mq.grant_create.")));
}

/*
 * Queue tables are not members of the extension, so that pg_dump dumps them
 * with their data; an automatic dependency still lets DROP EXTENSION mq
 * remove them without CASCADE.
 */
static void
mqq_depend_on_extension(const char *prefix, const char *name)
{
	ObjectAddress table;
	ObjectAddress ext;
	char		rel[NAMEDATALEN];

	snprintf(rel, sizeof(rel), "%s%s", prefix, name);
	ObjectAddressSet(table, RelationRelationId,
					 get_relname_relid(rel, get_namespace_oid("mq", false)));
	ObjectAddressSet(ext, ExtensionRelationId, get_extension_oid("mq", false));
	recordDependencyOn(&table, &ext, DEPENDENCY_AUTO);
}

/*
 * A new table gets the grants of its owner's default privileges (ALTER
 * DEFAULT PRIVILEGES without IN SCHEMA): mq's tables are for its owner
 * alone, so take them back.
 */
static void
mqq_revoke_default_grants(const char *table)
{
	char	   *sql = psprintf("SELECT DISTINCT a.grantee FROM pg_catalog.pg_class c,"
							   " pg_catalog.aclexplode(c.relacl) a"
							   " WHERE c.oid" OP("=") "%s::pg_catalog.regclass"
							   " AND a.grantee" OP("<>") "c.relowner",
							   quote_literal_cstr(table));
	List	   *grantees = NIL;
	ListCell   *lc;

	mqq_exec(sql, SPI_OK_SELECT);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		grantees = lappend_oid(grantees, DatumGetObjectId(mq_spi_get(i, 1, &isnull)));
	}
	foreach(lc, grantees)
	{
		Oid			role = lfirst_oid(lc);

		mqq_exec(psprintf("REVOKE ALL ON %s FROM %s", table,
						  role == InvalidOid ? "PUBLIC" :
						  quote_identifier(GetUserNameFromId(role, false))),
				 SPI_OK_UTILITY);
	}
}

static void
mqq_create_tables(const char *name, bool is_unlogged)
{
	StringInfoData sql;
	char		rel[NAMEDATALEN];
	char	   *R,
			   *W,
			   *G,
			   *B,
			   *U;
	const char *kind = is_unlogged ? "UNLOGGED " : "";
	/*
	 * group_key, gseq, run_start: NULL unless the message has a group.  A
	 * group key compares byte by byte (collation "C") in every table: it is
	 * an identifier, never sorted for people, and the btree probes of the
	 * group and backlog tables would otherwise call the database's
	 * collation (strcoll) at every step.
	 */
	const char *cols =
		"seq pg_catalog.int8 NOT NULL, id pg_catalog.int8 NOT NULL,"
		" priority pg_catalog.int4 NOT NULL, attempt pg_catalog.int4 NOT NULL,"
		" enqueued_at pg_catalog.timestamptz NOT NULL, message pg_catalog.jsonb NOT NULL,"
		" headers pg_catalog.jsonb, dedup_key pg_catalog.text, last_error pg_catalog.text,"
		" group_key pg_catalog.text COLLATE pg_catalog.\"C\", gseq pg_catalog.int8,"
		" run_start pg_catalog.int8";

	snprintf(rel, sizeof(rel), "q_%s", name);
	R = pstrdup(quote_qualified_identifier("mq", rel));
	snprintf(rel, sizeof(rel), "w_%s", name);
	W = pstrdup(quote_qualified_identifier("mq", rel));
	snprintf(rel, sizeof(rel), "g_%s", name);
	G = pstrdup(quote_qualified_identifier("mq", rel));
	snprintf(rel, sizeof(rel), "b_%s", name);
	B = pstrdup(quote_qualified_identifier("mq", rel));
	snprintf(rel, sizeof(rel), "r_%s", name);
	U = pstrdup(quote_qualified_identifier("mq", rel));

	initStringInfo(&sql);

	/*
	 * Ready rows are only inserted and deleted, in (priority DESC, seq)
	 * order; the index is the dequeue order itself.  The objects of queue
	 * x are q_x, w_x, g_x, b_x, r_x (tables), qi_x, wi_x, wk_x, gk_x,
	 * bi_x, rk_x (indexes): no two valid queue names can give one name
	 * twice (the second letter tells them apart: "_", "i" or "k").
	 */
	appendStringInfo(&sql,
					 "CREATE %sTABLE %s (%s)"
					 " WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000);"
					 "CREATE INDEX %s ON %s (priority DESC, seq);",
					 kind, R, cols,
					 quote_identifier(psprintf("qi_%s", name)), R);

	/*
	 * Wait rows: leases and delays.  Found by id (ack, nack, extend) and
	 * by vt (promotion).
	 */
	appendStringInfo(&sql,
					 "CREATE %sTABLE %s (vt pg_catalog.timestamptz NOT NULL, leased pg_catalog.bool NOT NULL,"
					 " receipt pg_catalog.int8, %s,"
					 " CONSTRAINT %s PRIMARY KEY (id))"
					 " WITH (fillfactor = 90, autovacuum_vacuum_scale_factor = 0.02,"
					 " autovacuum_vacuum_threshold = 1000);"
					 "CREATE INDEX %s ON %s (vt);",
					 kind, W, cols, quote_identifier(psprintf("wk_%s", name)),
					 quote_identifier(psprintf("wi_%s", name)), W);

	/*
	 * Message groups (src/group.c): one row per group that has messages,
	 * locked by whoever changes what the group has; and the backlog, the
	 * messages of groups behind their group's current one, in send order.
	 */
	appendStringInfo(&sql,
					 "CREATE %sTABLE %s (group_key pg_catalog.text COLLATE pg_catalog.\"C\" NOT NULL,"
					 " CONSTRAINT %s PRIMARY KEY (group_key))"
					 " WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000);"
					 "CREATE %sTABLE %s (group_key pg_catalog.text COLLATE pg_catalog.\"C\" NOT NULL,"
					 " gseq pg_catalog.int8 NOT NULL,"
					 " vt pg_catalog.timestamptz NOT NULL, id pg_catalog.int8 NOT NULL,"
					 " priority pg_catalog.int4 NOT NULL, attempt pg_catalog.int4 NOT NULL,"
					 " enqueued_at pg_catalog.timestamptz NOT NULL, message pg_catalog.jsonb NOT NULL,"
					 " headers pg_catalog.jsonb, dedup_key pg_catalog.text, last_error pg_catalog.text)"
					 " WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000);"
					 "CREATE INDEX %s ON %s (group_key, gseq);",
					 kind, G, quote_identifier(psprintf("gk_%s", name)),
					 kind, B, quote_identifier(psprintf("bi_%s", name)), B);

	/*
	 * Runs (receive's per_group): one row per message of a run still in
	 * the queue, keyed by the run's first gseq, so that the last one to
	 * leave lets its group go on.  Kept apart from the ready and wait
	 * tables, whose every insert would otherwise pay for an index on them.
	 */
	appendStringInfo(&sql,
					 "CREATE %sTABLE %s (run_start pg_catalog.int8 NOT NULL, id pg_catalog.int8 NOT NULL,"
					 " CONSTRAINT %s PRIMARY KEY (run_start, id))"
					 " WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000);",
					 kind, U, quote_identifier(psprintf("rk_%s", name)));
	mqq_exec(sql.data, SPI_OK_UTILITY);
	CommandCounterIncrement();
	mqq_depend_on_extension("q_", name);
	mqq_depend_on_extension("w_", name);
	mqq_depend_on_extension("g_", name);
	mqq_depend_on_extension("b_", name);
	mqq_depend_on_extension("r_", name);
	snprintf(rel, sizeof(rel), "q_%s", name);
	mq_xact_created_queue(get_relname_relid(rel, get_namespace_oid("mq", false)));
	mqq_revoke_default_grants(R);
	mqq_revoke_default_grants(W);
	mqq_revoke_default_grants(G);
	mqq_revoke_default_grants(B);
	mqq_revoke_default_grants(U);
}

Datum
mq_create_queue(PG_FUNCTION_ARGS)
{
	char	   *name = mq_queue_name_arg(fcinfo, 0);
	static SPIPlanPtr plan = NULL;
	Datum		args[9];
	char		nulls[9];
	bool		is_unlogged;
	bool		created;
	MqCall		call;

	static const char *const required[] = {NULL, "max_attempts", "visibility_timeout",
	"retry_delay", "retry_delay_max"};

	for (int i = 1; i <= 4; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be null", required[i]),
					 errhint("Leave an option out to get its default.")));
	mqq_check_options(name, fcinfo);
	mqq_check_backoff(PG_GETARG_INTERVAL_P(3), PG_GETARG_INTERVAL_P(4));
	if (!PG_ARGISNULL(5) && PG_GETARG_TEXT_PP(5) != NULL &&
		VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(5)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid queue name \"\"")));
	is_unlogged = PG_ARGISNULL(7) ? false : PG_GETARG_BOOL(7);

	mq_require_primary(fcinfo);
	mq_call_begin(&call);
	(void) mq_catalog_relid();
	mqq_require_create(call.caller);
	mqq_check_dlq(fcinfo, call.caller);
	if (plan == NULL)
	{
		Oid			types[9] = {TEXTOID, INT4OID, INTERVALOID, INTERVALOID, INTERVALOID,
		TEXTOID, INTERVALOID, BOOLOID, REGROLEOID};

		plan = mq_prepare(
			"INSERT INTO mq.queue_catalog (queue, max_attempts, visibility_timeout,"
			" retry_delay, retry_delay_max, dead_letter_queue, retention, unlogged, owner)"
			" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
			" ON CONFLICT (queue) DO NOTHING RETURNING queue", 9, types);
	}
	args[0] = CStringGetTextDatum(name);
	for (int i = 1; i < 8; i++)
	{
		args[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
	}
	nulls[0] = ' ';
	nulls[7] = ' ';
	args[7] = BoolGetDatum(is_unlogged);
	args[8] = ObjectIdGetDatum(call.caller);
	nulls[8] = ' ';
	/* a zero retention is none, as in alter_queue */
	if (!PG_ARGISNULL(6) && !mq_interval_positive(PG_GETARG_INTERVAL_P(6)))
		nulls[6] = 'n';
	if (mq_exec_plan(plan, args, nulls, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "mq: could not insert into the queue catalog");
	created = (SPI_processed == 1);
	if (created)
	{
		if (!PG_ARGISNULL(5))
			mqq_check_dlq_cycle(name, text_to_cstring(PG_GETARG_TEXT_PP(5)));
		mqq_create_tables(name, is_unlogged);
		mq_catalog_changed();
	}
	mq_call_end(&call);
	PG_RETURN_BOOL(created);
}

Datum
mq_alter_queue(PG_FUNCTION_ARGS)
{
	char	   *name = mq_queue_name_arg(fcinfo, 0);
	static SPIPlanPtr plan = NULL;
	Datum		args[8];
	char		nulls[8];
	MqQueue    *q;
	bool		was_unlogged;
	MqCall		call;

	mqq_check_options(name, fcinfo);
	mq_require_primary(fcinfo);
	mq_call_begin(&call);
	q = mq_queue_lookup(name, false);
	mq_require_privilege(q, call.caller, MQ_PRIV_MANAGE);
	was_unlogged = q->is_unlogged;
	mqq_check_backoff(PG_ARGISNULL(3) ? &q->retry_delay : PG_GETARG_INTERVAL_P(3),
					  PG_ARGISNULL(4) ? &q->retry_delay_max : PG_GETARG_INTERVAL_P(4));
	mqq_check_dlq(fcinfo, call.caller);
	if (!PG_ARGISNULL(5) && VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(5)) > 0)
		mqq_check_dlq_cycle(name, text_to_cstring(PG_GETARG_TEXT_PP(5)));

	/*
	 * NULL leaves an option as it is; '' removes the dead-letter queue and
	 * '0' the retention.
	 */
	if (plan == NULL)
	{
		Oid			types[8] = {TEXTOID, INT4OID, INTERVALOID, INTERVALOID, INTERVALOID,
		TEXTOID, INTERVALOID, BOOLOID};

		plan = mq_prepare(
			"UPDATE mq.queue_catalog SET"
			" max_attempts = COALESCE($2, max_attempts),"
			" visibility_timeout = COALESCE($3, visibility_timeout),"
			" retry_delay = COALESCE($4, retry_delay),"
			" retry_delay_max = COALESCE($5, retry_delay_max),"
			" dead_letter_queue = CASE WHEN $6 IS NULL THEN dead_letter_queue"
			"   WHEN $6" OP("=") "'' THEN NULL ELSE $6 END,"
			" retention = CASE WHEN $7 IS NULL THEN retention"
			"   WHEN $7" OP("=") "'0'::pg_catalog.interval THEN NULL ELSE $7 END,"
			" unlogged = COALESCE($8, unlogged)"
			" WHERE queue" OP("=") "$1", 8, types);
	}
	args[0] = CStringGetTextDatum(name);
	nulls[0] = ' ';
	for (int i = 1; i < 8; i++)
	{
		args[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
	}
	if (mq_exec_plan(plan, args, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "mq: could not update the queue catalog");
	if (!PG_ARGISNULL(6))
		mq_xact_retention_changed(mq_shared_find(MyDatabaseId, q->ready_relid));

	if (!PG_ARGISNULL(7) && PG_GETARG_BOOL(7) != was_unlogged)
	{
		const char *to = PG_GETARG_BOOL(7) ? "UNLOGGED" : "LOGGED";

		mqq_exec(psprintf("ALTER TABLE %s SET %s; ALTER TABLE %s SET %s;"
						  " ALTER TABLE %s SET %s; ALTER TABLE %s SET %s; ALTER TABLE %s SET %s",
						  q->ready_table, to, q->wait_table, to,
						  q->group_table, to, q->backlog_table, to, q->run_table, to),
				 SPI_OK_UTILITY);
	}
	mq_catalog_changed();
	mq_queue_cache_flush();
	mq_call_end(&call);
	PG_RETURN_VOID();
}

/* The tables of a damaged queue that are still there (its row has no cache entry). */
static void
mqq_drop_remaining_tables(const char *name)
{
	const char *const prefixes[5] = {"q_", "w_", "g_", "b_", "r_"};

	for (int i = 0; i < lengthof(prefixes); i++)
	{
		char		rel[NAMEDATALEN];

		snprintf(rel, sizeof(rel), "%s%s", prefixes[i], name);
		if (OidIsValid(get_relname_relid(rel, get_namespace_oid("mq", false))))
			mqq_exec(psprintf("DROP TABLE %s", quote_qualified_identifier("mq", rel)),
					 SPI_OK_UTILITY);
	}
}

Datum
mq_drop_queue(PG_FUNCTION_ARGS)
{
	char	   *name = mq_queue_name_arg(fcinfo, 0);
	MqQueue    *q;
	char	   *lit;
	MqCall		call;
	bool		damaged;

	mq_require_primary(fcinfo);
	mq_call_begin(&call);
	q = mq_queue_lookup_intact(name, &damaged);
	if (q == NULL && !damaged)
	{
		mq_call_end(&call);
		PG_RETURN_BOOL(false);
	}
	if (q != NULL)
		mq_require_privilege(q, call.caller, MQ_PRIV_MANAGE);
	else if (!mq_is_admin(call.caller))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for queue \"%s\"", name),
				 errdetail("Its tables are missing: only superusers and the owner of extension \"mq\" drop it.")));
	lit = quote_literal_cstr(name);
	if (q != NULL)
		mqq_exec(psprintf("DROP TABLE %s, %s, %s, %s, %s", q->ready_table, q->wait_table,
						  q->group_table, q->backlog_table, q->run_table), SPI_OK_UTILITY);
	else
		mqq_drop_remaining_tables(name);	/* a catalog row without (all) its tables */
	mqq_exec(psprintf("DELETE FROM mq.queue_catalog WHERE queue" OP("=") "%s", lit), SPI_OK_DELETE);
	mqq_exec(psprintf("DELETE FROM mq.dedup_keys WHERE queue" OP("=") "%s", lit), SPI_OK_DELETE);
	mqq_exec(psprintf("DELETE FROM mq.dead_letter_store WHERE queue" OP("=") "%s", lit), SPI_OK_DELETE);
	mqq_exec(psprintf("DELETE FROM mq.archive_store WHERE queue" OP("=") "%s", lit), SPI_OK_DELETE);
	mqq_exec(psprintf("DELETE FROM mq.queue_totals WHERE queue" OP("=") "%s", lit), SPI_OK_DELETE);
	/* queues that dead-lettered into this one fall back to mq.dead_letters */
	mqq_exec(psprintf("UPDATE mq.queue_catalog SET dead_letter_queue = NULL"
					  " WHERE dead_letter_queue" OP("=") "%s", lit), SPI_OK_UPDATE);
	/* its shared entry goes at commit (src/ddl.c saw the DROP TABLE) */
	mq_catalog_changed();
	mq_queue_cache_flush();
	mq_call_end(&call);
	PG_RETURN_BOOL(true);
}

Datum
mq_purge_queue(PG_FUNCTION_ARGS)
{
	char	   *name = mq_queue_name_arg(fcinfo, 0);
	MqQueue    *q;
	MqQueueShared *qs;
	int64		ready,
				leased = 0,
				waiting,
				backlog,
				groups,
				groups_ready = 0,
				groups_in_flight = 0;
	MqCall		call;

	mq_require_primary(fcinfo);
	mq_call_begin(&call);
	q = mq_queue_lookup(name, false);
	mq_require_privilege(q, call.caller, MQ_PRIV_MANAGE);
	qs = mq_shared_queue(q->ready_relid, q->name, true);
	mq_xact_all_lanes_back(qs);
	mq_xact_purged(qs);
	/*
	 * Groups first: deleting their rows waits for the sends in progress
	 * (they hold them locked), whose backlog rows the next statement then
	 * sees; the backlog before the ready table, so that a message an ack
	 * moves up meanwhile is waited for and deleted in the ready table.
	 */
	mqq_exec(psprintf("DELETE FROM %s", q->group_table), SPI_OK_DELETE);
	groups = (int64) SPI_processed;
	mqq_exec(psprintf("DELETE FROM %s", q->backlog_table), SPI_OK_DELETE);
	backlog = (int64) SPI_processed;
	mqq_exec(psprintf("DELETE FROM %s RETURNING group_key IS NOT NULL", q->ready_table),
			 SPI_OK_DELETE_RETURNING);
	ready = (int64) SPI_processed;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		if (DatumGetBool(mq_spi_get(i, 1, &isnull)))
			groups_ready++;
	}
	mqq_exec(psprintf("DELETE FROM %s RETURNING leased, leased AND group_key IS NOT NULL",
					  q->wait_table), SPI_OK_DELETE_RETURNING);
	waiting = (int64) SPI_processed;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		if (DatumGetBool(mq_spi_get(i, 1, &isnull)))
			leased++;
		if (DatumGetBool(mq_spi_get(i, 2, &isnull)))
			groups_in_flight++;
	}
	mqq_exec(psprintf("DELETE FROM %s", q->run_table), SPI_OK_DELETE);
	mqq_exec(psprintf("DELETE FROM mq.dedup_keys WHERE queue" OP("=") "%s",
					  quote_literal_cstr(name)), SPI_OK_DELETE);
	/* exactly what left: the gauges stay exact without a recount */
	mq_xact_count(qs, MQC_READY, -ready);
	mq_xact_count(qs, MQC_IN_FLIGHT, -leased);
	mq_xact_count(qs, MQC_DELAYED, -(waiting - leased));
	mq_xact_count(qs, MQC_BACKLOG, -backlog);
	mq_xact_count(qs, MQC_GROUPS, -groups);
	mq_xact_count(qs, MQC_GROUPS_READY, -groups_ready);
	mq_xact_count(qs, MQC_GROUPS_IN_FLIGHT, -groups_in_flight);
	mq_call_end(&call);
	PG_RETURN_INT64(ready + waiting + backlog);
}
