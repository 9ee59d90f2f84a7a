/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The per-database background worker, started by the launcher
 *	  (src/launcher.c): it sends the coalesced notifications (src/notify.c)
 *	  and runs the maintenance pass (src/maintain.c: promotions, dead
 *	  letters, retention, totals), one short transaction per queue.
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
#include "catalog.h"
#include "launcher.h"
#include "notify.h"
#include "counters.h"
#include "maintain.h"
#include "worker.h"

PGDLLEXPORT void mq_worker_main(Datum arg);

#define MQW_NOTIFY_GAP_MS	5		/* at most one notification pass per gap */

int			mq_worker_naptime = 1000;

/*
 * The queues whose maintenance failed in the last maintenance pass, and
 * how: a failure is logged when it is new (a queue that did not fail, or
 * failed otherwise, last time), not at every pass.  In TopMemoryContext.
 */
typedef struct MqwFailure
{
	char	   *queue;
	char	   *message;
} MqwFailure;

static MqwFailure *mqw_failures = NULL;
static int	mqw_nfailures = 0;
static char *mqw_pass_error = NULL; /* of the last pass that failed as a whole */

static bool
mqw_failed_before(const char *queue, const char *message)
{
	for (int i = 0; i < mqw_nfailures; i++)
		if (strcmp(mqw_failures[i].queue, queue) == 0 &&
			strcmp(mqw_failures[i].message, message) == 0)
			return true;
	return false;
}

/* This pass's failures (a List of MqwFailure *) become the last ones. */
static void
mqw_remember_failures(List *failures)
{
	ListCell   *lc;
	int			i = 0;

	for (int j = 0; j < mqw_nfailures; j++)
	{
		pfree(mqw_failures[j].queue);
		pfree(mqw_failures[j].message);
	}
	if (mqw_failures)
		pfree(mqw_failures);
	mqw_failures = NULL;
	mqw_nfailures = list_length(failures);
	if (mqw_nfailures == 0)
		return;
	mqw_failures = MemoryContextAlloc(TopMemoryContext, sizeof(MqwFailure) * mqw_nfailures);
	foreach(lc, failures)
	{
		MqwFailure *f = lfirst(lc);

		mqw_failures[i].queue = MemoryContextStrdup(TopMemoryContext, f->queue);
		mqw_failures[i].message = MemoryContextStrdup(TopMemoryContext, f->message);
		i++;
	}
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
 * One pass: notifications first (they are what someone waits for), then,
 * when it is time, maintenance with one short transaction per queue, so
 * that what a promotion makes ready becomes visible at once.  A queue whose
 * transaction fails is rolled back alone: the pass goes on with the next
 * one, the failure is logged if it is new, and *error says the first one
 * ("queue \"x\": message"), NULL when every queue succeeded.  Returns rows
 * handled.
 */
static int64
mqw_pass(bool maintain, MemoryContext pass_cxt, char **error)
{
	volatile int64 handled = 0;
	List	   *names = NIL;
	List	   *failures = NIL;

	if (!mqw_begin("mq: notifications"))
	{
		mqw_skip();
		pgstat_report_activity(STATE_IDLE, NULL);
		return 0;
	}
	mq_notify_send_pending();
	if (maintain)
	{
		List	   *spi_names = mq_all_queue_names();	/* in SPI memory */
		ListCell   *lc;
		MemoryContext old = MemoryContextSwitchTo(pass_cxt);

		foreach(lc, spi_names)
			names = lappend(names, pstrdup(lfirst(lc)));
		MemoryContextSwitchTo(old);
	}
	mqw_commit();

	if (maintain)
	{
		bool		full = mq_maintain_full_pass();
		ListCell   *lc;

		foreach(lc, names)
		{
			const char *name = lfirst(lc);

			PG_TRY();
			{
				if (mqw_begin("mq: maintenance"))
				{
					handled += mq_maintain_queue(name, full, mqw_call.caller);
					mqw_commit();
				}
				else
					mqw_skip();
			}
			PG_CATCH();
			{
				ErrorData  *edata;
				MqwFailure *f;

				MemoryContextSwitchTo(pass_cxt);
				edata = CopyErrorData();
				FlushErrorState();
				AbortCurrentTransaction();
				MemoryContextSwitchTo(pass_cxt);
				if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
					ReThrowError(edata);
				if (!mqw_failed_before(name, edata->message))
					ereport(WARNING,
							(errcode(edata->sqlerrcode),
							 errmsg("mq worker: maintenance of queue \"%s\" failed: %s",
									name, edata->message),
							 edata->hint ? errhint("%s", edata->hint) : 0,
							 errdetail("The other queues are maintained; this is logged again only when the error changes, and mq.workers.last_error shows it while it lasts.")));
				f = palloc(sizeof(MqwFailure));
				f->queue = pstrdup(name);
				f->message = pstrdup(edata->message);
				failures = lappend(failures, f);
				if (*error == NULL)
					*error = psprintf("queue \"%s\": %s", name, edata->message);
			}
			PG_END_TRY();
			CHECK_FOR_INTERRUPTS();
		}
		mqw_remember_failures(failures);
		if (mqw_begin("mq: saving totals"))
		{
			mq_flush_totals();
			mq_notify_send_pending();	/* what the promotions made ready */
			mqw_commit();
		}
		else
			mqw_skip();
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
