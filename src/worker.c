/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The per-database background worker, started by the launcher
 *	  (src/launcher.c): it sends the coalesced notifications (src/notify.c)
 *	  and runs the maintenance pass (src/maintain.c: promotions, dead
 *	  letters, retention, totals), one short transaction per queue that
 *	  has something due, found in shared memory (src/shmem.c).
 *
 * Workers never keep a transaction or snapshot open between passes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "util.h"
#include "shmem.h"
#include "catalog.h"
#include "launcher.h"
#include "notify.h"
#include "counters.h"
#include "maintain.h"
#include "worker.h"

PGDLLEXPORT void mq_worker_main(Datum arg);

#define MQW_NOTIFY_GAP_MS	5		/* at most one notification pass per gap */
#define MQW_SWEEP_EVERY		60		/* passes between looks for queues without an entry */

int			mq_worker_naptime = 1000;

/*
 * The queues whose maintenance failed, and how: a failure is logged when it
 * is new (a queue that did not fail, or failed otherwise, last time it was
 * maintained), not at every pass.  A queue's failure is kept until its
 * maintenance succeeds or the queue is gone; mq.workers.last_error shows
 * the first one.  In TopMemoryContext.
 */
typedef struct MqwFailure
{
	char	   *queue;
	char	   *message;
} MqwFailure;

static List *mqw_failures = NIL;	/* of MqwFailure * */
static char *mqw_pass_error = NULL; /* of the last pass that failed as a whole */

static MqwFailure *
mqw_failure_of(const char *queue)
{
	ListCell   *lc;

	foreach(lc, mqw_failures)
	{
		MqwFailure *f = lfirst(lc);

		if (strcmp(f->queue, queue) == 0)
			return f;
	}
	return NULL;
}

static void
mqw_failure_forget(MqwFailure *f)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	mqw_failures = list_delete_ptr(mqw_failures, f);
	MemoryContextSwitchTo(old);
	pfree(f->queue);
	pfree(f->message);
	pfree(f);
}

/* The maintenance of queue failed with message; true if that is new. */
static bool
mqw_failure_note(const char *queue, const char *message)
{
	MqwFailure *f = mqw_failure_of(queue);
	MemoryContext old;

	if (f && strcmp(f->message, message) == 0)
		return false;
	if (f)
		mqw_failure_forget(f);
	old = MemoryContextSwitchTo(TopMemoryContext);
	f = palloc(sizeof(MqwFailure));
	f->queue = pstrdup(queue);
	f->message = pstrdup(message);
	mqw_failures = lappend(mqw_failures, f);
	MemoryContextSwitchTo(old);
	return true;
}

/* Failures of queues no longer in the catalog (names: those that are) go. */
static void
mqw_failures_keep_only(List *names)
{
	ListCell   *lc;
	List	   *gone = NIL;

	foreach(lc, mqw_failures)
	{
		MqwFailure *f = lfirst(lc);
		ListCell   *ln;
		bool		found = false;

		foreach(ln, names)
			if (strcmp(lfirst(ln), f->queue) == 0)
			{
				found = true;
				break;
			}
		if (!found)
			gone = lappend(gone, f);
	}
	foreach(lc, gone)
		mqw_failure_forget(lfirst(lc));
	list_free(gone);
}

static MqCall mqw_call;			/* the worker's work runs as the extension owner */

/* Start a transaction for some work; false: nothing to do in this database yet. */
static bool
mqw_begin(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (!OidIsValid(get_extension_oid("mq", true)))
	{
		PopActiveSnapshot();
		CommitTransactionCommand();
		mq_worker_leave_no_extension();
	}
	pgstat_report_activity(STATE_RUNNING, activity);
	if (!mq_schema_current())
		return false;			/* until ALTER EXTENSION mq UPDATE */
	mq_call_begin(&mqw_call);
	return true;
}

static void
mqw_skip(void)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
}

static void
mqw_commit(void)
{
	mq_call_end(&mqw_call);
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * Maintenance of one queue in a transaction of its own, so that what a
 * promotion makes ready becomes visible at once.  A queue whose
 * transaction fails is rolled back alone: the pass goes on with the next
 * one, and the failure is logged if it is new.
 */
static int64
mqw_maintain_one(const char *name, Oid ready_relid, bool retention,
				 MemoryContext pass_cxt)
{
	volatile int64 handled = 0;

	PG_TRY();
	{
		if (mqw_begin("mq: maintenance"))
		{
			MqwFailure *f;

			handled = mq_maintain_queue(name, ready_relid, retention, mqw_call.caller);
			mqw_commit();
			if ((f = mqw_failure_of(name)) != NULL)
				mqw_failure_forget(f);
		}
		else
			mqw_skip();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(pass_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(pass_cxt);
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(edata);
		if (mqw_failure_note(name, edata->message))
			ereport(WARNING,
					(errcode(edata->sqlerrcode),
					 errmsg("mq worker: maintenance of queue \"%s\" failed: %s",
							name, edata->message),
					 edata->hint ? errhint("%s", edata->hint) : 0,
					 errdetail("The other queues are maintained; this is logged again only when the error changes, and mq.workers.last_error shows it while it lasts.")));
	}
	PG_END_TRY();
	CHECK_FOR_INTERRUPTS();
	return handled;
}

/*
 * Save the totals that changed since the last save (shared memory says
 * which), in one transaction; after its commit, note them saved.
 */
static void
mqw_save_totals(MemoryContext pass_cxt)
{
	List	   *work;
	List	   *saved = NIL;
	ListCell   *lc;
	bool		any = false;

	/* nothing to save: no transaction (what promotions made ready wakes us) */
	MemoryContextSwitchTo(pass_cxt);
	work = mq_shared_work(MyDatabaseId, GetCurrentTimestamp());
	foreach(lc, work)
		any |= (((MqQueueWork *) lfirst(lc))->what & MQW_TOTALS) != 0;
	if (!any)
		return;
	if (!mqw_begin("mq: saving totals"))
	{
		mqw_skip();
		return;
	}
	foreach(lc, work)
	{
		MqQueueWork *w = lfirst(lc);
		bool		damaged;
		MqQueue    *q;
		MqQueueShared *qs;

		if (!(w->what & MQW_TOTALS))
			continue;
		q = mq_queue_lookup_intact(w->name, &damaged);
		if (q == NULL || q->ready_relid != w->ready_relid ||
			(qs = mq_shared_find(MyDatabaseId, q->ready_relid)) == NULL)
			continue;
		if (mq_save_totals(q, qs, w->totals))
		{
			MemoryContext old = MemoryContextSwitchTo(pass_cxt);
			MqQueueWork *copy = palloc(sizeof(MqQueueWork));

			memcpy(copy, w, sizeof(MqQueueWork));
			saved = lappend(saved, copy);
			MemoryContextSwitchTo(old);
		}
	}
	mq_notify_send_pending();	/* what the promotions made ready */
	mqw_commit();
	foreach(lc, saved)
	{
		MqQueueWork *w = lfirst(lc);

		mq_shared_totals_saved(MyDatabaseId, w->ready_relid, w->totals);
	}
}

/*
 * One pass: notifications first (they are what someone waits for), then,
 * when it is time, maintenance of the queues that have some, found in
 * shared memory (src/shmem.c: mq_shared_work): a due time that has come,
 * totals not saved.  A queue with nothing due costs nothing here.  Queues
 * without a shared entry (all of them after a restart; one whose tables
 * were restored) are found in the catalog at the first pass, when the
 * catalog changed, and every MQW_SWEEP_EVERY passes; their maintenance
 * makes their entry, which keeps their due times from then on.  *error
 * says the first failure still standing ("queue \"x\": message"), NULL
 * when there is none.  Returns rows handled.
 */
static int64
mqw_pass(bool maintain, MemoryContext pass_cxt, char **error)
{
	static uint64 passes = 0;
	static uint64 seen_generation = 0;
	volatile int64 handled = 0;
	List	   *missing = NIL;
	List	   *work = NIL;
	ListCell   *lc;

	if (!mqw_begin("mq: notifications"))
	{
		mqw_skip();
		pgstat_report_activity(STATE_IDLE, NULL);
		return 0;
	}
	mq_notify_send_pending();
	if (maintain)
	{
		MemoryContext old;

		if (passes++ % MQW_SWEEP_EVERY == 0 || mq_catalog_generation() != seen_generation)
		{
			List	   *names;
			List	   *all;

			seen_generation = mq_catalog_generation();
			names = mq_queues_without_entry();	/* in SPI memory */
			all = mq_all_queue_names();
			old = MemoryContextSwitchTo(pass_cxt);
			foreach(lc, names)
				missing = lappend(missing, pstrdup(lfirst(lc)));
			MemoryContextSwitchTo(old);
			mqw_failures_keep_only(all);
			/* the invalidations this transaction saw are in the list */
			seen_generation = mq_catalog_generation();
		}
		old = MemoryContextSwitchTo(pass_cxt);
		work = mq_shared_work(MyDatabaseId, GetCurrentTimestamp());
		MemoryContextSwitchTo(old);
	}
	mqw_commit();

	if (maintain)
	{
		foreach(lc, missing)
			handled += mqw_maintain_one(lfirst(lc), InvalidOid, true, pass_cxt);
		foreach(lc, work)
		{
			MqQueueWork *w = lfirst(lc);

			if (w->what & (MQW_PROMOTE | MQW_RETENTION))
				handled += mqw_maintain_one(w->name, w->ready_relid,
											(w->what & MQW_RETENTION) != 0, pass_cxt);
		}
		mqw_save_totals(pass_cxt);
		MemoryContextSwitchTo(pass_cxt);
		if (mqw_failures != NIL)
		{
			MqwFailure *f = linitial(mqw_failures);

			*error = psprintf("queue \"%s\": %s", f->queue, f->message);
		}
	}
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return handled;
}

void
mq_worker_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	TimestampTz next_maintain = 0;
	TimestampTz last_pass = 0;
	MemoryContext pass_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	if (!mq_worker_attach(dboid))
		proc_exit(0);

	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("mq worker");

	/* is mq installed here? */
	StartTransactionCommand();
	if (!OidIsValid(get_extension_oid("mq", true)))
	{
		CommitTransactionCommand();
		mq_worker_leave_no_extension();
	}
	ereport(LOG, (errmsg("mq worker started for database \"%s\"", get_database_name(dboid))));
	CommitTransactionCommand();

	if (!mq_worker_set_running())
		proc_exit(0);

	pass_cxt = AllocSetContextCreate(TopMemoryContext, "mq worker pass", ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		TimestampTz now;
		bool		maintain;
		long		timeout;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!mq_worker_enabled)
			proc_exit(0);		/* the launcher starts none while disabled */

		now = GetCurrentTimestamp();
		maintain = (now >= next_maintain);

		/*
		 * Woken for notifications right after a pass: let a few more
		 * commits gather first, so that a busy queue costs a few
		 * notifications per second, not one per commit.
		 */
		if (!maintain && !TimestampDifferenceExceeds(last_pass, now, MQW_NOTIFY_GAP_MS))
		{
			(void) WaitLatch(NULL, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 MQW_NOTIFY_GAP_MS, PG_WAIT_EXTENSION);
			CHECK_FOR_INTERRUPTS();
		}
		MemoryContextSwitchTo(pass_cxt);
		PG_TRY();
		{
			char	   *error = NULL;
			int64		handled = mqw_pass(maintain, pass_cxt, &error);

			/* a maintenance pass sets last_error, or clears it (NULL) */
			if (maintain)
				mq_worker_pass_failed(error);
			mq_worker_pass_done(handled);
			if (mqw_pass_error)
				pfree(mqw_pass_error);
			mqw_pass_error = NULL;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			/*
			 * Log it (unless the last pass failed the same way), remember
			 * it, and try again next time.
			 */
			MemoryContextSwitchTo(pass_cxt);
			edata = CopyErrorData();
			if (mqw_pass_error == NULL || strcmp(mqw_pass_error, edata->message) != 0)
				EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
			mq_worker_pass_failed(edata->message);
			if (mqw_pass_error)
				pfree(mqw_pass_error);
			mqw_pass_error = MemoryContextStrdup(TopMemoryContext, edata->message);
			pgstat_report_activity(STATE_IDLE, NULL);
		}
		PG_END_TRY();
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(pass_cxt);
		last_pass = GetCurrentTimestamp();

		if (maintain)
			next_maintain = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), mq_worker_naptime);
		timeout = Max(1, (long) ((next_maintain - GetCurrentTimestamp()) / 1000));

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
