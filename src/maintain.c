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

PG_FUNCTION_INFO_V1(mq_maintain);

/*
 * When q's archive next holds a row past retention: its oldest row's time
 * plus the retention, or, when it is empty, now plus the retention (a row
 * archived from now on is due later).  A transaction archiving a row while
 * this runs, and committing after it, may make that row due a little
 * earlier (by its own duration): it is deleted that much later.
 */
static TimestampTz
mqn_retention_due(MqQueue *q, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	Datum		arg;
	bool		isnull;
	TimestampTz oldest = now;

	if (!q->has_retention)
		return DT_NOEND;
	if (plan == NULL)
	{
		Oid			types[1] = {TEXTOID};

		plan = mq_prepare("SELECT pg_catalog.min(archived_at) FROM mq.archive_store"
						  " WHERE queue" OP("=") "$1", 1, types);
	}
	arg = CStringGetTextDatum(q->name);
	if (mq_exec_plan(plan, &arg, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "mq: could not read the archive of \"%s\"", q->name);
	{
		Datum		d = mq_spi_get(0, 1, &isnull);

		if (!isnull)
			oldest = DatumGetTimestampTz(d);
	}
	return mq_add_interval(oldest, &q->retention);
}

/*
 * Delete q's archived messages past its retention, in batches, then note
 * in its shared entry when the next ones will be: the worker comes back
 * then, not before.
 */
static int64
mqn_retention(MqQueue *q, MqQueueShared *qs)
{
	static SPIPlanPtr plan = NULL;
	Datum		args[2];
	int64		total = 0;
	TimestampTz now = mq_now();

	if (q->has_retention)
	{
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
																			  TimestampTzGetDatum(now),
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
	}
	if (qs)
		pg_atomic_write_u64(&qs->retention_due, MQ_TS_ENCODE(mqn_retention_due(q, now)));
	return total;
}

/*
 * Maintenance of one queue: promotions, then retention (unless not due).
 * ready_relid, if
 * valid, is the queue's table as the caller knew it: a queue of that name
 * created since is not the one meant, and is left alone.
 */
int64
mq_maintain_queue(const char *name, Oid ready_relid, bool retention, Oid caller)
{
	MqQueue    *q = mq_queue_lookup(name, true);
	MqQueueShared *qs;
	int64		n;

	/* dropped meanwhile, or not the caller's to maintain */
	if (q == NULL || (OidIsValid(ready_relid) && q->ready_relid != ready_relid) ||
		!mq_has_privilege(q, caller, MQ_PRIV_MANAGE))
		return 0;
	qs = mq_queue_shared(q);
	n = mq_promote_due(q, qs, 0, true);
	if (retention)
		n += mqn_retention(q, qs);
	return n;
}

/*
 * Maintenance of one queue in a subtransaction of its own (as a PL/pgSQL
 * exception block does): a queue that fails is rolled back alone and
 * reported with a WARNING, and the pass goes on with the next one.  A
 * cancel is not a queue's failure: it ends the pass.
 */
static int64
mqn_maintain_queue_isolated(const char *name, Oid caller)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile int64 touched = 0;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		touched = mq_maintain_queue(name, InvalidOid, true, caller);
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

	names = mq_all_queue_names();
	foreach(lc, names)
	{
		touched += mqn_maintain_queue_isolated(lfirst(lc), caller);
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
