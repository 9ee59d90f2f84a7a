/*-------------------------------------------------------------------------
 *
 * promote.c
 *	  Promotion of due wait rows: an expired lease is a failed attempt
 *	  (backoff, or dead letter past max_attempts: src/retry.c); a delayed
 *	  message or a retry whose time has come moves to the ready table,
 *	  in its place by due time (src/insert.c).
 *
 * Receive runs this before it dequeues, so delivery is right without the
 * worker; the shared next_due time makes that free while nothing is due.
 * Every scan of the vt index is bounded on both sides: below by the wait
 * table's low mark (moved forward at commit under the same kind of rule as
 * the ready heads, src/shmem.c), above by now plus a short window.  So no
 * scan walks the dead entries of leases acked long ago, nor those of
 * leases that would only end far in the future.  Only a look that may
 * take its time (maintenance, a receiver about to sleep: "far") probes
 * past the window for the next due time, so that a queue with nothing
 * due soon is left alone until then (or for good, if its wait table is
 * empty) instead of being looked at again at the window's end.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "util.h"
#include "shmem.h"
#include "catalog.h"
#include "xact.h"
#include "plans.h"
#include "insert.h"
#include "retry.h"
#include "promote.h"

#define MQ_PROMOTE_BATCH 1000
#define MQ_BUSY_RETRY_MS 100		/* a due row is locked: look again then */
#define MQ_PROMOTE_CLAIM_MS 10000	/* a promoter that died lets go by then */
#define MQ_PROMOTE_WINDOW_MS 1000	/* how far ahead a promotion looks */

/*
 * Promote what is due in q's wait table.  It returns at once when the
 * shared next_due says nothing is due, or another backend is at it.  The
 * scan starts at the wait table's low mark: no row is below it, also when
 * the system clock steps back, because writers never use a clock below the
 * one a promoter used (mq_slot_note_wait).  A budget > 0
 * (a receive: its quantity) promotes at most that many rows of each kind,
 * highest priority first, and leaves the rest to whoever looks next, at
 * once: rows a transaction promotes stay invisible to others until it
 * commits, so it promotes no more than it can take.
 */
int64
mq_promote_due(MqQueue *q, MqQueueShared *qs, int budget, bool far)
{
	int			limit = budget > 0 ? Min(budget, MQ_PROMOTE_BATCH) : MQ_PROMOTE_BATCH;
	bool		cut = false;		/* stopped at the budget: more may be due */
	TimestampTz now = mq_now();
	TimestampTz low = DT_NOBEGIN;
	TimestampTz next = DT_NOEND;
	int64		handled = 0;
	bool		more;

	if (qs)
	{
		if (now < MQ_TS_DECODE(pg_atomic_read_u64(&qs->next_due)))
			return 0;
		/* one promoter at a time; the claim expires should it die */
		{
			uint64		cur = pg_atomic_read_u64(&qs->promote_until);

			if (cur > MQ_TS_ENCODE(now) ||
				!pg_atomic_compare_exchange_u64(&qs->promote_until, &cur,
												MQ_TS_ENCODE(TimestampTzPlusMilliseconds(now, MQ_PROMOTE_CLAIM_MS))))
				return 0;
		}
		low = MQ_TS_DECODE(pg_atomic_read_u64(&qs->wait_low));
		/* before the slots are read: see mq_slot_note_wait */
		mq_shared_clock_used(qs, now);
		/* an abort from here on makes next_due "now" again */
		mq_xact_promoted(qs, DT_NOEND);
		/* writers from now on lower it again for their own rows */
		pg_atomic_write_u64(&qs->next_due, MQ_TS_ENCODE(DT_NOEND));
	}

	PG_TRY();
	{
		bool		more_ready;
		TimestampTz pending;
		TimestampTz horizon;
		Datum		args[2];
		bool		isnull;

		do
			handled += mq_leases_expired(q, qs, low, now, limit, &more);
		while (more && budget <= 0);
		do
			handled += mq_insert_due(q, qs, low, now, limit, &more_ready);
		while (more_ready && budget <= 0);
		cut = budget > 0 && (more || more_ready);

		/*
		 * The first wait row at or after the low mark, up to the window's
		 * end, locked or not.  The slots must be read before the probe takes
		 * its snapshot.
		 */
		horizon = far ? DT_NOEND : TimestampTzPlusMilliseconds(now, MQ_PROMOTE_WINDOW_MS);
		pending = qs ? mq_slots_min_vt(qs) : DT_NOEND;
		args[0] = TimestampTzGetDatum(low);
		args[1] = TimestampTzGetDatum(horizon);
		if (mq_plan_run(q, MQP_NEXT_DUE, args, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "mq: could not read the next due time of \"%s\"", q->name);
		if (SPI_processed == 1)
			next = DatumGetTimestampTz(mq_spi_get(0, 1, &isnull));

		if (qs)
		{
			TimestampTz due;

			/*
			 * Look again at the first row, at the window's end if there is
			 * none, or soon if a due row was locked by someone else (an ack
			 * in progress, most likely).  Rows written by transactions still
			 * open lower next_due themselves when they commit.
			 */
			if (next == DT_NOEND)
				due = horizon;
			else if (next <= now && cut)
				due = now;		/* left for the next look: at once */
			else if (next <= now)
				due = TimestampTzPlusMilliseconds(now, MQ_BUSY_RETRY_MS);
			else
				due = next;
			mq_shared_note_due(qs, due);
			if (!IsolationUsesXactSnapshot())
				mq_xact_promoted(qs, Min(Min(next, now), pending));
			else
				mq_xact_promoted(qs, low);
		}
	}
	PG_FINALLY();
	{
		if (qs)
			pg_atomic_write_u64(&qs->promote_until, 0);
	}
	PG_END_TRY();
	return handled;
}
