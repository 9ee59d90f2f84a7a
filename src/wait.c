/*-------------------------------------------------------------------------
 *
 * wait.c
 *	  Blocking receive: sleep on the queue's condition variable until a
 *	  commit makes messages ready, or a delayed one comes due, or the wait
 *	  ends.
 *
 * A committing transaction that made k messages ready in a queue signals
 * at most k sleepers (one each), not all of them, and bumps the queue's
 * ready generation.  A receiver reads the generation before it looks for
 * messages and goes to sleep only if it is unchanged after preparing to
 * sleep, so a commit between its look and its sleep is never missed.  A
 * sleeper also wakes when the queue's next due time comes, and then
 * promotes what is due itself: no worker is needed for that.
 *
 * Waking is cheap and rare: a sleeper reads the queue's next due time
 * again about once a second (no SQL, no snapshot) and goes on sleeping
 * while nothing is due; one sleeper only (the one that claims wait_look)
 * times its wake-up to the due time itself, and a sleeper that finds the
 * due time passed goes on sleeping if a promotion is already running.  So
 * a pool of idle consumers costs a few atomic reads per second each, and
 * a due time wakes one of them, not all.
 *
 * While it sleeps, a receive that is the whole statement (no table read by
 * the query around it, no other snapshot in the transaction, READ
 * COMMITTED) withdraws its xmin, so that a pool of waiting consumers does
 * not hold back vacuum: nothing will read with the statement's snapshot
 * again, and each look after waking takes a snapshot of its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/execdesc.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/pquery.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "shmem.h"
#include "wait.h"

#define MQ_WAIT_POLL_MS 50		/* without shared memory: how often to look */
#define MQ_WAIT_RECHECK_MS 1000	/* how often a sleeper reads the due time */

/* At commit: k messages became ready in this queue. */
void
mq_wait_wake(MqQueueShared *qs, int64 k)
{
	uint32		waiters;

	if (qs == NULL || k <= 0)
		return;
	waiters = pg_atomic_read_u32(&qs->waiters);
	if (waiters == 0)
		return;
	pg_atomic_fetch_add_u64(&qs->ready_generation, 1);
	for (int64 i = 0; i < Min(k, (int64) waiters); i++)
		ConditionVariableSignal(&qs->ready_cv);
}

uint64
mq_wait_generation(MqQueueShared *qs)
{
	return qs ? pg_atomic_read_u64(&qs->ready_generation) : 0;
}

void
mq_wait_register(MqQueueShared *qs)
{
	if (qs)
		pg_atomic_fetch_add_u32(&qs->waiters, 1);
}

void
mq_wait_unregister(MqQueueShared *qs)
{
	if (qs)
		pg_atomic_fetch_sub_u32(&qs->waiters, 1);
}

/*
 * Withdraw this backend's xmin for the sleep, when that is safe: the
 * statement's snapshot is the only one registered, it is the active one
 * (so we are not nested in a function with snapshots of its own), and the
 * statement reads no table with it after we return.
 */
static void
mq_wait_release_xmin(void)
{
	QueryDesc  *qd;
	ListCell   *lc;

	if (IsolationUsesXactSnapshot())
		return;
	InvalidateCatalogSnapshot();
	if (ActivePortal == NULL || ActivePortal->strategy != PORTAL_ONE_SELECT ||
		(qd = ActivePortal->queryDesc) == NULL || qd->plannedstmt == NULL)
		return;
	if (!ActiveSnapshotSet() || GetActiveSnapshot() != qd->snapshot)
		return;
	if (!ThereAreNoPriorRegisteredSnapshots())
		return;
	foreach(lc, qd->plannedstmt->rtable)
		if (((RangeTblEntry *) lfirst(lc))->rtekind == RTE_RELATION)
			return;
	/* what SnapshotResetXmin does when no snapshot is left */
	MyProc->xmin = InvalidTransactionId;
}

/*
 * How long this sleeper sleeps before it looks at the due time again:
 * about a second, spread so that sleepers that went to sleep together do
 * not look together.
 */
static long
mq_wait_slice_ms(void)
{
	return MQ_WAIT_RECHECK_MS - MQ_WAIT_RECHECK_MS / 10 + (long) (random() % (MQ_WAIT_RECHECK_MS / 5));
}

/*
 * Sleep until woken, the queue's next due time, or deadline.  generation is
 * what the caller read before it looked for messages.  Returns at once if a
 * commit happened since.  Cancel and statement_timeout interrupt it.
 */
void
mq_wait_sleep(MqQueueShared *qs, uint64 generation, TimestampTz deadline)
{
	TimestampTz now = GetCurrentTimestamp();

	if (deadline <= now)
		return;
	mq_wait_release_xmin();
	if (qs == NULL)
	{
		long		ms = (long) ((deadline - now + 999) / 1000);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(ms, MQ_WAIT_POLL_MS), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		return;
	}

	ConditionVariablePrepareToSleep(&qs->ready_cv);
	for (;;)
	{
		TimestampTz due = MQ_TS_DECODE(pg_atomic_read_u64(&qs->next_due));
		TimestampTz until;

		now = GetCurrentTimestamp();
		if (pg_atomic_read_u64(&qs->ready_generation) != generation || now >= deadline)
			break;
		/* due rows: look, unless a promotion is at them already */
		if (due <= now &&
			MQ_TS_DECODE(pg_atomic_read_u64(&qs->promote_until)) <= now)
			break;
		until = Min(deadline, TimestampTzPlusMilliseconds(now, mq_wait_slice_ms()));

		/* due before then: one sleeper claims to wake at the due time */
		if (due > now && due < until)
		{
			uint64		look = pg_atomic_read_u64(&qs->wait_look);

			if ((look > MQ_TS_ENCODE(due) || look <= MQ_TS_ENCODE(now)) &&
				pg_atomic_compare_exchange_u64(&qs->wait_look, &look, MQ_TS_ENCODE(due)))
				until = due;
		}
		if (!ConditionVariableTimedSleep(&qs->ready_cv, (long) ((until - now + 999) / 1000),
										 PG_WAIT_EXTENSION))
			break;				/* signalled */
	}
	ConditionVariableCancelSleep();
	CHECK_FOR_INTERRUPTS();
}
