/*-------------------------------------------------------------------------
 *
 * util.c
 *	  The bottom of mq: clock and interval helpers, SPI helpers (kept plans
 *	  run with sequential scans off), row inserts and deletes without a
 *	  plan, set-returning function set-up, and the checks of a queue-name
 *	  argument.  Calls nothing else of mq.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#if PG_VERSION_NUM >= 150000
#include "common/pg_prng.h"
#endif
#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "utils/fmgroids.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/cost.h"
#include "storage/bufmgr.h"
#if PG_VERSION_NUM >= 160000
#include "parser/parse_relation.h"
#endif
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "util.h"

/* ---- time ------------------------------------------------------------ */

TimestampTz
mq_now(void)
{
	return GetCurrentTimestamp();
}

TimestampTz
mq_add_interval(TimestampTz t, const Interval *iv)
{
	return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
												   TimestampTzGetDatum(t),
												   PointerGetDatum(iv)));
}

static int
mq_interval_sign(const Interval *iv)
{
	Interval	zero;

	memset(&zero, 0, sizeof(zero));
	return DatumGetInt32(DirectFunctionCall2(interval_cmp,
											 PointerGetDatum(iv),
											 PointerGetDatum(&zero)));
}

bool
mq_interval_negative(const Interval *iv)
{
	return mq_interval_sign(iv) < 0;
}

bool
mq_interval_positive(const Interval *iv)
{
	return mq_interval_sign(iv) > 0;
}

/*
 * Every interval argument is at most MQ_INTERVAL_MAX_YEARS, and so is each
 * of its parts on its own (a mixed-sign interval can compare as small
 * while one part alone is far out of range).  Then every time mq computes
 * from them (a time plus at most two such intervals) stays in range.
 */
void
mq_check_interval_max(const char *what, const Interval *iv)
{
	Interval	max;
	int64		max_days = (int64) MQ_INTERVAL_MAX_YEARS * 366;
	int64		max_time = max_days * USECS_PER_DAY;

	memset(&max, 0, sizeof(max));
	max.month = MQ_INTERVAL_MAX_YEARS * MONTHS_PER_YEAR;
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp, PointerGetDatum(iv),
										  PointerGetDatum(&max))) > 0 ||
		(int64) iv->month > max.month || (int64) iv->month < -(int64) max.month ||
		(int64) iv->day > max_days || (int64) iv->day < -max_days ||
		iv->time > max_time || iv->time < -max_time)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be at most %d years", what, MQ_INTERVAL_MAX_YEARS),
				 errdetail("Intervals are bounded so that every time mq computes from them stays in range.")));
}

/* ---- SPI -------------------------------------------------------------- */

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
/*
 * Run SPI work with search_path pinned to pg_catalog alone (no pg_temp):
 * parse analysis then resolves nothing the caller set up, and a kept plan
 * remembers this path when the plan cache re-analyzes it.  Every name mq
 * writes is qualified anyway; this is the second lock on the door.
 */
typedef struct MqPinned
{
#if PG_VERSION_NUM >= 170000
	int			nestlevel;
#else
	int			dummy;
#endif
} MqPinned;

static void
mq_pin_search_path(MqPinned *pin)
{
#if PG_VERSION_NUM >= 170000
	pin->nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
#else
	OverrideSearchPath *path = GetOverrideSearchPath(CurrentMemoryContext);

	path->schemas = NIL;
	path->addCatalog = true;
	path->addTemp = false;
	PushOverrideSearchPath(path);
#endif
}

static void
mq_unpin_search_path(MqPinned *pin)
{
#if PG_VERSION_NUM >= 170000
	AtEOXact_GUC(true, pin->nestlevel);
#else
	PopOverrideSearchPath();
#endif
}

/* Free everything SPI holds (tuple tables of statements run so far). */
void
mq_spi_reset(void)
{
	SPI_finish();
	mq_connect();
}

SPIPlanPtr
mq_prepare(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan;
	MqPinned	pin;

	mq_pin_search_path(&pin);
	PG_TRY();
	{
		plan = SPI_prepare_cursor(sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);
	}
	PG_FINALLY();
	{
		mq_unpin_search_path(&pin);
	}
	PG_END_TRY();
	if (plan == NULL)
		elog(ERROR, "mq: could not prepare \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "mq: could not keep plan");
	return plan;
}

/* SPI_execute of a statement mq wrote, with the search_path pinned. */
int
mq_exec_sql(const char *sql, bool read_only, long count)
{
	MqPinned	pin;
	int			rc;

	mq_pin_search_path(&pin);
	PG_TRY();
	{
		rc = SPI_execute(sql, read_only, count);
	}
	PG_FINALLY();
	{
		mq_unpin_search_path(&pin);
	}
	PG_END_TRY();
	return rc;
}

/*
 * Execute a kept plan with sequential and bitmap scans off.  Every mq
 * statement is an index (or TID) scan by design; but a plan made while a
 * queue table looked empty (just after a vacuum) would scan it in full,
 * and stay cached while the table grows.  The planner reads these
 * variables when the plan cache (re)plans, which happens inside execution.
 */
static int
mq_exec_plan_with(SPIPlanPtr plan, Datum *values, const char *nulls, bool read_only,
				  bool latest, long count)
{
	bool		save_seqscan = enable_seqscan;
	bool		save_bitmapscan = enable_bitmapscan;
	int			rc;

	enable_seqscan = false;
	enable_bitmapscan = false;
	PG_TRY();
	{
		if (latest)
			rc = SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(),
									  InvalidSnapshot, read_only, true, count);
		else
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

int
mq_exec_plan(SPIPlanPtr plan, Datum *values, const char *nulls, bool read_only, long count)
{
	return mq_exec_plan_with(plan, values, nulls, read_only, false, count);
}

/*
 * Execute a kept plan that must see every row committed so far, also in a
 * REPEATABLE READ or SERIALIZABLE transaction, whose statements would see
 * the rows of its snapshot, perhaps taken before a lock it waited for was
 * released (src/group.c).  In READ COMMITTED every statement takes a fresh
 * snapshot anyway.  A row that changed after the transaction's snapshot is
 * still written as in READ COMMITTED's updates (the executor waits for and
 * rechecks it, or fails with a serialization error).
 */
int
mq_exec_plan_latest(SPIPlanPtr plan, Datum *values, const char *nulls, long count)
{
	return mq_exec_plan_with(plan, values, nulls, false, IsolationUsesXactSnapshot(), count);
}

Datum
mq_spi_get(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

int64
mq_spi_int8(int row, int col)
{
	bool		isnull;
	Datum		d = mq_spi_get(row, col, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

/*
 * Set up a materialized result set: tuple store and descriptor in the
 * per-query context (what InitMaterializedSRF does on 16+).
 */
void
mq_srf_materialize(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old;
	TupleDesc	tupdesc;
	Oid			rettype;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	switch (get_call_result_type(fcinfo, &rettype, &tupdesc))
	{
		case TYPEFUNC_COMPOSITE:
			tupdesc = CreateTupleDescCopy(tupdesc);
			break;
		case TYPEFUNC_SCALAR:
			tupdesc = CreateTemplateTupleDesc(1);
			TupleDescInitEntry(tupdesc, 1, "value", rettype, -1, 0);
			break;
		default:
			elog(ERROR, "mq: unexpected result type");
	}
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->setDesc = BlessTupleDesc(tupdesc);
	MemoryContextSwitchTo(old);
}

/* ---- rows without a plan ---------------------------------------------- */

/*
 * Whether rel is a plain table of columns cols[0..ncols-1] (names and
 * types), in that order, with nothing a statement on it would run besides
 * (triggers, rules, row security): what the one-row helpers below may
 * write without a plan.
 */
static bool
mqu_plain_table(Relation rel, const MqColumn *cols, int ncols)
{
	TupleDesc	desc = RelationGetDescr(rel);

	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->trigdesc != NULL ||
		rel->rd_rules != NULL || rel->rd_rel->relrowsecurity || desc->natts != ncols)
		return false;
	for (int i = 0; i < ncols; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->attgenerated || att->atttypid != cols[i].type ||
			strcmp(NameStr(att->attname), cols[i].name) != 0)
			return false;
	}
	return true;
}

/* Inserting rows without a plan: mq_insert_row's, several with one set-up. */
struct MqRowInsert
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	int			ncols;
};

/*
 * Begin inserting rows into table relid (see mq_insert_row); NULL, having
 * done nothing, where mq_insert_row would return false.
 */
MqRowInsert *
mq_insert_begin(Oid relid, const MqColumn *cols, int ncols)
{
	Relation	rel;
	MqRowInsert *ins;
	RangeTblEntry *rte;
	MemoryContext old;
#if PG_VERSION_NUM >= 160000
	List	   *perminfos = NIL;
#endif

	/* the executor's check of an INSERT (ExecCheckXactReadOnly) */
	PreventCommandIfReadOnly("INSERT");
	rel = table_open(relid, RowExclusiveLock);
	if (!mqu_plain_table(rel, cols, ncols))
	{
		table_close(rel, NoLock);
		return NULL;
	}
	ins = palloc(sizeof(MqRowInsert));
	ins->rel = rel;
	ins->ncols = ncols;
	ins->estate = CreateExecutorState();

	/*
	 * The range table, the result relation, its index descriptions and the
	 * slot in the executor state's memory, which mq_insert_end frees: in
	 * the caller's, each set-up stayed until the caller's call ended (an
	 * ack of many grouped messages writes a ready row per group).
	 */
	old = MemoryContextSwitchTo(ins->estate->es_query_cxt);
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = relid;
	rte->relkind = RELKIND_RELATION;
	rte->rellockmode = RowExclusiveLock;
#if PG_VERSION_NUM >= 160000
	/* as logical replication's apply: ExecConstraints' messages look it up */
	addRTEPermissionInfo(&perminfos, rte);
	ExecInitRangeTable(ins->estate, list_make1(rte), perminfos);
#else
	ExecInitRangeTable(ins->estate, list_make1(rte));
#endif
	ins->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(ins->rri, rel, 1, NULL, 0);
#if PG_VERSION_NUM < 140000
	ins->estate->es_result_relations = ins->rri;
	ins->estate->es_num_result_relations = 1;
	ins->estate->es_result_relation_info = ins->rri;
#endif
	ins->estate->es_output_cid = GetCurrentCommandId(true);
	ExecOpenIndices(ins->rri, false);
	ins->slot = ExecInitExtraTupleSlot(ins->estate, RelationGetDescr(rel), &TTSOpsVirtual);
	MemoryContextSwitchTo(old);
	return ins;
}

void
mq_insert_next(MqRowInsert *ins, const Datum *values, const bool *isnull)
{
	ExecClearTuple(ins->slot);
	memcpy(ins->slot->tts_values, values, sizeof(Datum) * ins->ncols);
	memcpy(ins->slot->tts_isnull, isnull, sizeof(bool) * ins->ncols);
	ExecStoreVirtualTuple(ins->slot);
	ins->estate->es_output_cid = GetCurrentCommandId(true);
#if PG_VERSION_NUM >= 140000
	ExecSimpleRelationInsert(ins->rri, ins->estate, ins->slot);
#else
	ExecSimpleRelationInsert(ins->estate, ins->slot);
#endif
	ResetPerTupleExprContext(ins->estate);
}

void
mq_insert_end(MqRowInsert *ins)
{
	ExecCloseIndices(ins->rri);
	ExecResetTupleTable(ins->estate->es_tupleTable, false);
	FreeExecutorState(ins->estate);
	table_close(ins->rel, NoLock);
	pfree(ins);
}

/*
 * Insert one row into table relid, whose columns must be cols[0..ncols-1]
 * in that order, as logical replication's apply does: the heap insert, the
 * NOT NULL checks and the index entries, without planning or starting a
 * plan.  (Starting the plan of a one-row INSERT builds its projections and
 * tuple descriptors column by column every time: half of what a send cost.)
 * The caller owns the table, so there is no privilege to check.  Returns
 * false, having done nothing, when the table is not laid out so (altered by
 * hand) or has triggers, rules or row security: the caller then runs its
 * INSERT statement.
 */
bool
mq_insert_row(Oid relid, const MqColumn *cols, int ncols, Datum *values,
			  const bool *isnull)
{
	MqRowInsert *ins = mq_insert_begin(relid, cols, ncols);

	if (ins == NULL)
		return false;
	mq_insert_next(ins, values, isnull);
	mq_insert_end(ins);
	return true;
}

/*
 * Deleting rows by key without a plan, as "DELETE FROM t WHERE id = $1
 * [AND ...] RETURNING *" run by SPI would, for the acks: starting that
 * statement's plan (a CTE, its projections) cost more than the delete.
 * The rows are found by the table's primary key, one int8 column, under a
 * snapshot taken after the commands before (as SPI takes one); a row that
 * another transaction changed meanwhile is, under READ COMMITTED, checked
 * again in its latest version (what the executor's EvalPlanQual does), and
 * otherwise a serialization failure, as for the statement.
 */
struct MqRowDelete
{
	Relation	rel;
	Relation	index;
	Snapshot	snapshot;
	TupleTableSlot *slot;
	ScanKeyData keys[4];		/* the first key; the second, >=, > and <= */
	int			key_att;		/* the first key's column, from 0 */
};

/*
 * Start a statement of its own, as SPI does for each: it sees what the
 * commands before it did, under a fresh snapshot (the latest, also in
 * REPEATABLE READ, if latest).
 */
static void
mqu_delete_statement(MqRowDelete *d, bool latest)
{
	CommandCounterIncrement();
	if (d->snapshot != NULL)
		UnregisterSnapshot(d->snapshot);
	d->snapshot = RegisterSnapshot(latest ? GetLatestSnapshot() : GetTransactionSnapshot());
}

/*
 * A row changed by a transaction that committed after this statement's
 * snapshot: under REPEATABLE READ and SERIALIZABLE the error the executor
 * raises for it.
 */
static void
mqu_check_serializable(TM_Result result)
{
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to concurrent %s",
						result == TM_Updated ? "update" : "delete")));
}

/*
 * Whether index (of rel) has exactly the key columns index_cols[0..n-1],
 * of types int4 or int8 in the integer btree family (the first may be a
 * text), all ascending but the first when first_desc, and is valid and not
 * partial: one mq made.
 */
static bool
mqu_index_is(Relation rel, Relation index, const char *const *index_cols, int n,
			 bool first_desc)
{
	Form_pg_index form = index->rd_index;

	if (form->indnkeyatts != n || !form->indisvalid || index->rd_rel->relam != BTREE_AM_OID ||
		!heap_attisnull(index->rd_indextuple, Anum_pg_index_indpred, NULL) ||
		!heap_attisnull(index->rd_indextuple, Anum_pg_index_indexprs, NULL))
		return false;
	for (int i = 0; i < n; i++)
	{
		AttrNumber	att = form->indkey.values[i];
		Form_pg_attribute attr;

		if (att <= 0)
			return false;
		attr = TupleDescAttr(RelationGetDescr(rel), att - 1);
		if (strcmp(NameStr(attr->attname), index_cols[i]) != 0 ||
			!((attr->atttypid == INT4OID || attr->atttypid == INT8OID) ?
			  index->rd_opfamily[i] == INTEGER_BTREE_FAM_OID :
			  (attr->atttypid == TEXTOID && i == 0 &&
			   index->rd_opfamily[i] == TEXT_BTREE_FAM_OID)) ||
			((index->rd_indoption[i] & INDOPTION_DESC) != 0) != (first_desc && i == 0))
			return false;
	}
	return true;
}

/*
 * Begin deleting from table relid, whose columns must be cols[0..ncols-1],
 * through its index on index_cols[0..nindex-1] (see mqu_index_is; unique if
 * asked); NULL, having done nothing, where mq_insert_row would return false
 * or there is no such index: the caller then runs its statement.
 */
static MqRowDelete *
mqu_delete_begin(Oid relid, const MqColumn *cols, int ncols,
				 const char *const *index_cols, int nindex, bool first_desc, bool unique)
{
	Relation	rel;
	Relation	index = NULL;
	MqRowDelete *d;
	List	   *indexes;
	ListCell   *lc;

	/* the executor's check of a DELETE (ExecCheckXactReadOnly) */
	PreventCommandIfReadOnly("DELETE");
	rel = table_open(relid, RowExclusiveLock);
	if (!mqu_plain_table(rel, cols, ncols))
	{
		table_close(rel, NoLock);
		return NULL;
	}
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		Relation	candidate = index_open(lfirst_oid(lc), RowExclusiveLock);

		if ((!unique || candidate->rd_index->indisunique) &&
			mqu_index_is(rel, candidate, index_cols, nindex, first_desc))
		{
			index = candidate;
			break;
		}
		index_close(candidate, NoLock);
	}
	list_free(indexes);
	if (index == NULL)
	{
		table_close(rel, NoLock);
		return NULL;
	}
	CheckCmdReplicaIdentity(rel, CMD_DELETE);
	d = palloc(sizeof(MqRowDelete));
	d->rel = rel;
	d->index = index;
	d->key_att = index->rd_index->indkey.values[0] - 1;
	d->snapshot = NULL;			/* each statement takes one */
	d->slot = table_slot_create(rel, NULL);
	return d;
}

/*
 * Begin deleting rows of table relid by key: its unique index on key_col,
 * an int8.  See mqu_delete_begin.
 */
MqRowDelete *
mq_delete_begin(Oid relid, const MqColumn *cols, int ncols, const char *key_col)
{
	MqRowDelete *d = mqu_delete_begin(relid, cols, ncols, &key_col, 1, false, true);

	if (d != NULL)
	{
		ScanKeyInit(&d->keys[0], 1, BTEqualStrategyNumber, F_INT8EQ, (Datum) 0);
		mqu_delete_statement(d, false);	/* all its keys: one statement */
	}
	return d;
}

/*
 * Begin deleting rows of table relid in the order of its index on (lead,
 * next), lead descending if lead_desc: an int4 or a text, and an int8.
 * See mqu_delete_begin.
 */
MqRowDelete *
mq_delete_begin_ordered(Oid relid, const MqColumn *cols, int ncols, const char *lead,
						const char *next, bool lead_desc)
{
	const char *const index_cols[2] = {lead, next};
	MqRowDelete *d = mqu_delete_begin(relid, cols, ncols, index_cols, 2, lead_desc, false);
	Form_pg_attribute lead_att;

	if (d == NULL)
		return NULL;
	lead_att = TupleDescAttr(RelationGetDescr(d->rel), d->key_att);
	if (lead_att->atttypid == TEXTOID)
		ScanKeyEntryInitialize(&d->keys[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
							   d->index->rd_indcollation[0], F_TEXTEQ, (Datum) 0);
	else
		ScanKeyInit(&d->keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, (Datum) 0);
	ScanKeyInit(&d->keys[1], 2, BTGreaterEqualStrategyNumber, F_INT8GE, (Datum) 0);
	ScanKeyInit(&d->keys[2], 2, BTGreaterStrategyNumber, F_INT8GT, (Datum) 0);
	ScanKeyInit(&d->keys[3], 2, BTLessEqualStrategyNumber, F_INT8LE, (Datum) 0);
	return d;
}

/*
 * Delete up to limit rows, in index order from (lead, from) on among those
 * of lead (past from with MQ_DELETE_AFTER), up to (lead, upto) if upto is
 * below PG_INT64_MAX, each(values, isnull, arg) seeing each row deleted
 * (the values as mq_delete_key's).  A statement of its own: it sees what
 * was done before it, under a fresh snapshot (the latest, also in
 * REPEATABLE READ, with MQ_DELETE_LATEST).  With MQ_DELETE_SKIP_LOCKED it
 * skips the rows another transaction is deleting or holds, as FOR UPDATE
 * SKIP LOCKED does (the delete itself does not wait, so no lock is written
 * first); else it waits for such a row and stops there if it changed or
 * is gone (a serialization failure in REPEATABLE READ), as a DELETE of the
 * rows a subquery found does.  Returns how many rows it deleted.
 *
 * With a trail, once limit rows are deleted, the scan goes on through the
 * index entries that follow (within the bounds, up to MQ_INDEX_TRAIL_LEN):
 * their next column and heap TID, whatever their rows' visibility, without
 * reading the rows.  Each is the entry right after the one before it in
 * the index at this moment (entries marked dead are skipped: they stay
 * dead).
 */
int
mq_delete_first(MqRowDelete *d, Datum lead, int64 from, int64 upto, int limit, int flags,
				MqRowVisitor each, void *arg, MqIndexTrail *trail)
{
	TupleTableSlot *slot = d->slot;
	bool		skip = (flags & MQ_DELETE_SKIP_LOCKED) != 0;
	ScanKeyData keys[3];
	int			nkeys = 2;
	IndexScanDesc scan;
	int			n = 0;

	mqu_delete_statement(d, (flags & MQ_DELETE_LATEST) != 0);
	keys[0] = d->keys[0];
	keys[1] = d->keys[(flags & MQ_DELETE_AFTER) ? 2 : 1];
	keys[0].sk_argument = lead;
	keys[1].sk_argument = Int64GetDatum(from);

	/*
	 * A bound stops the scan at the first entry past it; without one, the
	 * btree reads every entry of lead left on the page, however few rows
	 * are wanted.
	 */
	if (upto < PG_INT64_MAX)
	{
		keys[nkeys] = d->keys[3];
		keys[nkeys++].sk_argument = Int64GetDatum(upto);
	}
	scan = index_beginscan(d->rel, d->index, d->snapshot, nkeys, 0);
	scan->xs_want_itup = (trail != NULL);
	index_rescan(scan, keys, nkeys, NULL, 0);
	while (n < limit && index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		TM_FailureData tmfd;
		TM_Result	result;

		result = table_tuple_delete(d->rel, &slot->tts_tid, GetCurrentCommandId(true),
									d->snapshot, InvalidSnapshot, !skip, &tmfd, false);
		if (result == TM_Invisible)
			elog(ERROR, "mq: attempted to delete an invisible row");
		if (result != TM_Ok)
		{
			if (skip)
				continue;		/* another transaction's, or gone */
			if (result != TM_SelfModified)
				mqu_check_serializable(result);
			break;
		}
		slot_getallattrs(slot);
		each(slot->tts_values, slot->tts_isnull, arg);
		n++;
	}
	if (trail != NULL)
	{
		ItemPointer tid;

		trail->n = 0;
		while (n == limit && trail->n < MQ_INDEX_TRAIL_LEN &&
			   (tid = index_getnext_tid(scan, ForwardScanDirection)) != NULL)
		{
			bool		isnull;

			trail->next[trail->n] = DatumGetInt64(index_getattr(scan->xs_itup, 2,
																scan->xs_itupdesc, &isnull));
			trail->tid[trail->n++] = *tid;
		}
	}
	index_endscan(scan);
	ExecClearTuple(slot);
	return n;
}

/*
 * Delete the row at tid if this statement (as mq_delete_first's, with its
 * flags but MQ_DELETE_SKIP_LOCKED) sees it there and accept takes its
 * columns; each sees them.  A TID may come from an index entry read in an
 * earlier transaction: its block may be gone (the table truncated by
 * VACUUM since), or hold another row now.  Returns whether it deleted.
 */
bool
mq_delete_tid(MqRowDelete *d, ItemPointer tid, int flags, MqRowFilter accept,
			  MqRowVisitor each, void *arg)
{
	TupleTableSlot *slot = d->slot;
	TM_FailureData tmfd;
	TM_Result	result;
	bool		deleted = false;

	Assert((flags & MQ_DELETE_SKIP_LOCKED) == 0);
	if (!ItemPointerIsValid(tid) ||
		ItemPointerGetBlockNumber(tid) >= RelationGetNumberOfBlocks(d->rel))
		return false;
	mqu_delete_statement(d, (flags & MQ_DELETE_LATEST) != 0);
	if (!table_tuple_fetch_row_version(d->rel, tid, d->snapshot, slot))
		return false;
	slot_getallattrs(slot);
	if (accept(slot->tts_values, slot->tts_isnull, arg))
	{
		result = table_tuple_delete(d->rel, tid, GetCurrentCommandId(true), d->snapshot,
									InvalidSnapshot, true, &tmfd, false);
		if (result == TM_Ok)
		{
			each(slot->tts_values, slot->tts_isnull, arg);
			deleted = true;
		}
		else if (result != TM_SelfModified)
			mqu_check_serializable(result);
	}
	ExecClearTuple(slot);
	return deleted;
}

/*
 * Delete the row of key, if there is one and accept (when given) takes its
 * columns, and point values/isnull at its columns: valid until the next
 * call (the row stays pinned).  Those stored out of line (a big message)
 * are toast pointers to what was just deleted, not to be read.  Returns
 * whether it deleted.
 */
bool
mq_delete_key(MqRowDelete *d, int64 key, MqRowFilter accept, void *arg,
			  Datum **values, bool **isnull)
{
	TupleTableSlot *slot = d->slot;
	IndexScanDesc scan;
	bool		found;

	ExecClearTuple(slot);
	d->keys[0].sk_argument = Int64GetDatum(key);
	scan = index_beginscan(d->rel, d->index, d->snapshot, 1, 0);
	index_rescan(scan, d->keys, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	index_endscan(scan);
	if (!found)
		return false;
	for (;;)
	{
		TM_FailureData tmfd;
		TM_Result	result;
		ItemPointerData tid;

		slot_getallattrs(slot);
		if (DatumGetInt64(slot->tts_values[d->key_att]) != key ||
			(accept != NULL && !accept(slot->tts_values, slot->tts_isnull, arg)))
			return false;
		result = table_tuple_delete(d->rel, &slot->tts_tid, GetCurrentCommandId(true),
									d->snapshot, InvalidSnapshot, true, &tmfd, false);
		if (result == TM_Ok)
		{
			*values = slot->tts_values;
			*isnull = slot->tts_isnull;
			return true;
		}
		if (result == TM_SelfModified)
			return false;		/* deleted already, by this call (a key given twice) */
		if (result != TM_Updated && result != TM_Deleted)
			elog(ERROR, "mq: unexpected result %d of a delete", (int) result);
		mqu_check_serializable(result);
		if (result == TM_Deleted)
			return false;

		/*
		 * Updated by a transaction that has committed since: lock the
		 * row's latest version and check it again, as EvalPlanQual does.
		 * A row that was deleted at the end of its chain is gone, even if
		 * another one of the same key exists now.
		 */
		tid = slot->tts_tid;
		result = table_tuple_lock(d->rel, &tid, d->snapshot, slot, GetCurrentCommandId(true),
								  LockTupleExclusive, LockWaitBlock,
								  TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
		if (result == TM_Deleted)
			return false;
		if (result != TM_Ok)
			elog(ERROR, "mq: unexpected result %d of a row lock", (int) result);
	}
}

void
mq_delete_end(MqRowDelete *d)
{
	ExecDropSingleTupleTableSlot(d->slot);
	if (d->snapshot != NULL)
		UnregisterSnapshot(d->snapshot);
	index_close(d->index, NoLock);
	table_close(d->rel, NoLock);
	pfree(d);
}

/* ---- queue names ------------------------------------------------------ */

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

/*
 * Functions that change queues refuse to run on a standby, saying so
 * (rather than failing later on the first write with a less helpful
 * message).
 */
void
mq_require_primary(FunctionCallInfo fcinfo)
{
	char	   *name;

	if (!RecoveryInProgress())
		return;
	name = get_func_name(fcinfo->flinfo->fn_oid);
	ereport(ERROR,
			(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
			 errmsg("cannot run mq.%s on a standby", name ? name : "function"),
			 errdetail("This server is in recovery: queues can be read (mq.metrics, the views) but not changed."),
			 errhint("Connect to the primary, for instance with target_session_attrs=read-write.")));
}

/* Uniform over 64 bits. */
uint64
mq_random_u64(void)
{
#if PG_VERSION_NUM >= 150000
	return pg_prng_uint64(&pg_global_prng_state);
#else
	return ((uint64) random() << 42) ^ ((uint64) random() << 21) ^ (uint64) random();
#endif
}

/* ---- receipts ----------------------------------------------------------- */

/*
 * A receipt names one delivery of a message (src/plans.c makes it): shown
 * as 16 hexadecimal digits, opaque to users.
 */
text *
mq_receipt_text(int64 receipt)
{
	char		buf[17];

	snprintf(buf, sizeof(buf), "%016" INT64_MODIFIER "x", (uint64) receipt);
	return cstring_to_text(buf);
}

int64
mq_receipt_parse(text *t)
{
	char	   *s = text_to_cstring(t);
	uint64		v = 0;
	size_t		len = strlen(s);

	if (len != 16 || strspn(s, "0123456789abcdef") != 16)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid receipt \"%s\"", s),
				 errdetail("A receipt is the value mq.receive returned in the column receipt.")));
	for (size_t i = 0; i < len; i++)
		v = (v << 4) | (uint64) (s[i] <= '9' ? s[i] - '0' : s[i] - 'a' + 10);
	return (int64) v;
}

/* A regrole argument that names a role (regrole takes any number). */
Oid
mq_role_arg(FunctionCallInfo fcinfo, int argno)
{
	Oid			role;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("role must not be null")));
	role = PG_GETARG_OID(argno);
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(role)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role with OID %u does not exist", role)));
	return role;
}

/*
 * headers (an object, or NULL: none) with key set to value (a scalar, or
 * a jbvBinary container), in place of the value it had.
 */
Jsonb *
mq_headers_set(Jsonb *headers, const char *key, JsonbValue *value)
{
	JsonbParseState *state = NULL;
	JsonbValue	v;
	int			keylen = strlen(key);

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	if (headers != NULL)
	{
		JsonbIterator *it = JsonbIteratorInit(&headers->root);
		JsonbIteratorToken r;
		bool		skip = false;

		while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (r == WJB_KEY)
				skip = (v.val.string.len == keylen && memcmp(v.val.string.val, key, keylen) == 0);
			if ((r == WJB_KEY || r == WJB_VALUE) && !skip)
				pushJsonbValue(&state, r, &v);
		}
	}
	v.type = jbvString;
	v.val.string.val = (char *) key;
	v.val.string.len = keylen;
	pushJsonbValue(&state, WJB_KEY, &v);
	pushJsonbValue(&state, WJB_VALUE, value);
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}
