/*-------------------------------------------------------------------------
 *
 * maintain.c
 *	  One pass of housekeeping over every queue of the database: promote
 *	  what is due (expired leases, delays, retries), delete archived
 *	  messages past their retention in bounded batches, and save the
 *	  shared totals to mq.queue_totals.  mq.maintain() runs it by hand;
 *	  the background worker runs the same pass.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/resowner.h"

#include "util.h"
#include "catalog.h"
#include "promote.h"
#include "counters.h"
#include "maintain.h"

#define MQ_RETENTION_BATCH 10000
#define MQ_FULL_SCAN_EVERY 60	/* passes between promotions from the start */

PG_FUNCTION_INFO_V1(mq_maintain);

static int64
mqn_retention(MqQueue *q)
{
	static SPIPlanPtr plan = NULL;
	Datum		args[2];
	int64		total = 0;

	if (!q->has_retention)
		return 0;
	if (plan == NULL)
	{
		Oid			types[2] = {TEXTOID, TIMESTAMPTZOID};

		plan = mq_prepare(
			"DELETE FROM mq.archive_store WHERE ctid" OP("=") "ANY (ARRAY("
			"SELECT a.ctid FROM mq.archive_store a WHERE a.queue" OP("=") "$1"
			" AND a.archived_at" OP("<") "$2 LIMIT 10000))", 2, types);
	}
	args[0] = CStringGetTextDatum(q->name);
	args[1] = TimestampTzGetDatum(DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
																		  TimestampTzGetDatum(mq_now()),
																		  PointerGetDatum(&q->retention))));
	for (;;)
	{
		if (mq_exec_plan(plan, args, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "mq: retention of \"%s\" failed", q->name);
		total += (int64) SPI_processed;
		if (SPI_processed < MQ_RETENTION_BATCH)
			break;
		CHECK_FOR_INTERRUPTS();
	}
	return total;
}

/*
 * Maintenance of one queue: promotions, then retention.  Every
 * MQ_FULL_SCAN_EVERY passes the promotion looks at the whole wait table.
 */
int64
mq_maintain_queue(const char *name, bool full, Oid caller)
{
	MqQueue    *q = mq_queue_lookup(name, true);

	/* dropped meanwhile, or not the caller's to maintain */
	if (q == NULL || !mq_has_privilege(q, caller, MQ_PRIV_MANAGE))
		return 0;
	return mq_promote_due(q, mq_queue_shared(q), full, 0) + mqn_retention(q);
}

/* Whether this pass is one of the full ones. */
bool
mq_maintain_full_pass(void)
{
	static uint64 passes = 0;

	return (passes++ % MQ_FULL_SCAN_EVERY) == 0;
}

/*
 * Maintenance of one queue in a subtransaction of its own (as a PL/pgSQL
 * exception block does): a queue that fails is rolled back alone and
 * reported with a WARNING, and the pass goes on with the next one.  A
 * cancel is not a queue's failure: it ends the pass.
 */
static int64
mqn_maintain_queue_isolated(const char *name, bool full, Oid caller)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile int64 touched = 0;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		touched = mq_maintain_queue(name, full, caller);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(edata);
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("maintenance of queue \"%s\" failed: %s", name, edata->message),
				 edata->hint ? errhint("%s", edata->hint) : 0,
				 errdetail("The other queues were maintained.")));
		FreeErrorData(edata);
		touched = 0;
	}
	PG_END_TRY();
	return touched;
}

/* One pass over all queues of the database; returns rows touched. */
static int64
mq_maintain_pass(Oid caller)
{
	List	   *names;
	ListCell   *lc;
	int64		touched = 0;
	bool		full = mq_maintain_full_pass();

	names = mq_all_queue_names();
	foreach(lc, names)
	{
		touched += mqn_maintain_queue_isolated(lfirst(lc), full, caller);
		CHECK_FOR_INTERRUPTS();
	}
	mq_flush_totals();
	return touched;
}

Datum
mq_maintain(PG_FUNCTION_ARGS)
{
	int64		touched;
	MqCall		call;

	mq_require_primary(fcinfo);
	mq_call_begin(&call);
	touched = mq_maintain_pass(call.caller);
	mq_call_end(&call);
	PG_RETURN_INT64(touched);
}
