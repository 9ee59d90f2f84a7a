/*-------------------------------------------------------------------------
 *
 * take.c
 *	  Taking rows out of a queue's ready table: lane by lane from the
 *	  heads when the lanes are known, else in one ordered scan, skipping
 *	  rows others hold; a lease moves the rows to the wait table (lane by
 *	  lane without a plan), a pop deletes them.  Also the discovery of a queue's lanes after a
 *	  restart (a loose index scan, one probe per priority), and the runs
 *	  of receive's per_group: the messages of a group's backlog leased
 *	  with its current one.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "utils/jsonb.h"

#include "util.h"
#include "shmem.h"
#include "catalog.h"
#include "xact.h"
#include "plans.h"
#include "take.h"

/*
 * After a restart the shared entry is new: find the priorities present in
 * the ready table (a loose index scan, one probe per priority).
 */
static void
mq_ensure_lanes(MqQueue *q, MqQueueShared *qs)
{
	int64		below = PG_INT64_MAX;

	if (qs == NULL || qs->lanes_known)
		return;

	/*
	 * Let heads pass the rows already there: the seqs handed out before
	 * this entry existed were at most the clock (or a little above it, and
	 * a head stops below those until max_seq passes them).  Raising max_seq
	 * is always safe: fresh seqs are taken above it.
	 */
	mq_atomic_raise_u64(&qs->max_seq, MQ_SEQ_OF(GetCurrentTimestamp()));

	/*
	 * Not read-only: each probe takes a fresh snapshot, so that no row
	 * committed before now is missed (the caller's snapshot may be older
	 * than a producer that registered its lane in an entry since removed).
	 */

	for (int n = 0; n <= MQ_MAX_LANES; n++)
	{
		Datum		arg = Int64GetDatum(below);
		int32		priority;
		bool		isnull;

		if (mq_plan_run(q, MQP_LANES, &arg, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "mq: could not read the lanes of queue \"%s\"", q->name);
		if (SPI_processed == 0)
			break;
		priority = DatumGetInt32(mq_spi_get(0, 1, &isnull));
		mq_lane_register(qs, priority);
		below = priority;
	}
	/*
	 * On a standby rows arrive by replay, registering no lane; under
	 * REPEATABLE READ the probes saw an old snapshot: look again next time.
	 */
	if (RecoveryInProgress() || IsolationUsesXactSnapshot())
		return;
	SpinLockAcquire(&qs->mutex);
	qs->lanes_known = true;
	SpinLockRelease(&qs->mutex);
}

/*
 * The lanes of q, for one dequeue (discovered first if need be).  Returns
 * false when the lanes cannot be used (no shared memory, too many
 * priorities).
 */
bool
mq_queue_lanes(MqQueue *q, MqQueueShared *qs, MqLane *lanes, int *nlanes)
{
	if (qs == NULL)
		return false;
	mq_ensure_lanes(q, qs);
	return mq_lanes_copy(qs, lanes, nlanes);
}

static int
mqt_cmp(const void *a, const void *b)
{
	const MqTaken *x = a;
	const MqTaken *y = b;

	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return 0;
}

/*
 * Fill t from a wait row's columns (MQW_*), copying what it points to into
 * the current memory context.
 */
static void
mqt_fill(MqTaken *t, const Datum *row, const bool *isnull)
{
	t->id = DatumGetInt64(row[MQW_ID]);
	t->message = PointerGetDatum(DatumGetJsonbPCopy(row[MQW_MESSAGE]));
	t->headers_null = isnull[MQW_HEADERS];
	t->headers = t->headers_null ? (Datum) 0 :
		PointerGetDatum(DatumGetJsonbPCopy(row[MQW_HEADERS]));
	t->attempt = DatumGetInt32(row[MQW_ATTEMPT]);
	t->enqueued_at = DatumGetTimestampTz(row[MQW_ENQUEUED_AT]);
	t->visible_at = DatumGetTimestampTz(row[MQW_VT]);
	t->priority = DatumGetInt32(row[MQW_PRIORITY]);
	t->seq = DatumGetInt64(row[MQW_SEQ]);
	t->receipt_null = isnull[MQW_RECEIPT];
	t->receipt = t->receipt_null ? 0 : DatumGetInt64(row[MQW_RECEIPT]);
	t->dead = false;
	t->group_key = isnull[MQW_GROUP_KEY] ? NULL : DatumGetTextPCopy(row[MQW_GROUP_KEY]);
	t->gseq = isnull[MQW_GSEQ] ? 0 : DatumGetInt64(row[MQW_GSEQ]);
	t->run_start = isnull[MQW_RUN_START] ? 0 : DatumGetInt64(row[MQW_RUN_START]);
}

/*
 * Where the statements that take rows (src/plans.c: MQP_LEASE and the
 * others) return each column of a wait row, from 1; 0: not returned.
 */
static const int mqt_returned[MQW_NCOLS] = {
	[MQW_ID] = 1, [MQW_MESSAGE] = 2, [MQW_HEADERS] = 3, [MQW_ATTEMPT] = 4,
	[MQW_ENQUEUED_AT] = 5, [MQW_VT] = 6, [MQW_PRIORITY] = 7, [MQW_SEQ] = 8,
	[MQW_DEDUP_KEY] = 9, [MQW_LAST_ERROR] = 10, [MQW_RECEIPT] = 11,
	[MQW_GROUP_KEY] = 12, [MQW_GSEQ] = 13, [MQW_RUN_START] = 14
};

/* Copy SPI result rows into taken[], in the caller's memory context. */
static int
mqt_collect(MqTaken *taken, int n, MemoryContext mcxt)
{
	MemoryContext old = MemoryContextSwitchTo(mcxt);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		Datum		row[MQW_NCOLS];
		bool		isnull[MQW_NCOLS];

		for (int c = 0; c < MQW_NCOLS; c++)
		{
			isnull[c] = true;
			row[c] = mqt_returned[c] > 0 ? mq_spi_get(i, mqt_returned[c], &isnull[c]) : (Datum) 0;
		}
		mqt_fill(&taken[n++], row, isnull);
	}
	MemoryContextSwitchTo(old);
	return n;
}

/*
 * A lease without a plan, lane by lane: the ready rows deleted in lane
 * order (skipping those others hold) and written to the wait table as
 * leased, as MQP_LEASE_LANE does; starting that statement's plan cost more
 * than moving one row.
 */
typedef struct MqtLease
{
	MqRowInsert *wait;
	TimestampTz visible_at;
	int64		receipt_base;
	MqTaken    *taken;			/* where the next row goes */
	MemoryContext mcxt;
} MqtLease;

/* mq_delete_first's visitor: one ready row becomes a leased wait row */
static void
mqt_lease_row(const Datum *ready, const bool *ready_null, void *arg)
{
	MqtLease   *l = arg;
	MqTaken    *t = l->taken++;
	Datum		row[MQW_NCOLS];
	bool		isnull[MQW_NCOLS];
	int64		seq = DatumGetInt64(ready[MQW_SEQ - MQW_SEQ]);
	int32		attempt = DatumGetInt32(ready[MQW_ATTEMPT - MQW_SEQ]) + 1;
	MemoryContext old;

	memcpy(row + MQW_SEQ, ready, sizeof(Datum) * MQW_READY_NCOLS);
	memcpy(isnull + MQW_SEQ, ready_null, sizeof(bool) * MQW_READY_NCOLS);
	row[MQW_VT] = TimestampTzGetDatum(l->visible_at);
	row[MQW_LEASED] = BoolGetDatum(true);
	row[MQW_RECEIPT] = Int64GetDatum(l->receipt_base ^ seq);
	row[MQW_ATTEMPT] = Int32GetDatum(attempt);
	isnull[MQW_VT] = isnull[MQW_LEASED] = isnull[MQW_RECEIPT] = false;
	mq_insert_next(l->wait, row, isnull);

	old = MemoryContextSwitchTo(l->mcxt);
	mqt_fill(t, row, isnull);
	MemoryContextSwitchTo(old);
}

/*
 * Take up to quantity rows from the ready table, lane by lane from the
 * heads when the lanes are usable, else in one ordered scan.
 */
int
mq_take_ready(MqQueue *q, bool lease, int quantity, TimestampTz visible_at,
		 MqTaken *taken, MemoryContext mcxt)
{
	MqQueueShared *qs = mq_queue_shared(q);
	MqLane		lanes[MQ_MAX_LANES];
	int			nlanes = 0;
	int			n = 0;
	bool		use_lanes;
	Datum		receipt_base = Int64GetDatum((int64) mq_random_u64());

	use_lanes = mq_queue_lanes(q, qs, lanes, &nlanes) && !IsolationUsesXactSnapshot();
	if (use_lanes)
	{
		uint64		cap = mq_head_cap(qs);
		MqPlanKind	kind = lease ? MQP_LEASE_LANE : MQP_POP_LANE;
		MqRowDelete *ready = NULL;
		MqtLease	l;

		/* a lease moves its rows without a plan, unless a table was altered */
		if (lease &&
			(ready = mq_delete_begin_ordered(q->ready_relid, mq_wait_cols + MQW_SEQ,
											 MQW_READY_NCOLS, "priority", "seq", true)) != NULL &&
			(l.wait = mq_insert_begin(q->wait_relid, mq_wait_cols, MQW_NCOLS)) == NULL)
		{
			mq_delete_end(ready);
			ready = NULL;
		}
		l.visible_at = visible_at;
		l.receipt_base = DatumGetInt64(receipt_base);
		l.mcxt = mcxt;

		for (int i = 0; i < nlanes && n < quantity; i++)
		{
			Datum		args[5];
			int			rc;
			int			first = n;
			uint64		max_seq = 0;
			/* rows this transaction promoted may be behind the head */
			uint64		due_floor = mq_xact_due_floor(qs, lanes[i].priority);
			uint64		head = Min(lanes[i].head, due_floor);

			args[0] = Int32GetDatum(quantity - n);
			args[1] = TimestampTzGetDatum(visible_at);
			args[2] = Int32GetDatum(lanes[i].priority);
			args[3] = Int64GetDatum((int64) head);
			args[4] = receipt_base;
			mq_xact_lane_scan_begin(qs, lanes[i].priority, head,
									lanes[i].generation, cap);
			if (ready != NULL)
			{
				l.taken = taken + n;
				n += mq_delete_first(ready, Int32GetDatum(lanes[i].priority), (int64) head,
									 PG_INT64_MAX, quantity - n, MQ_DELETE_SKIP_LOCKED, mqt_lease_row, &l,
									 NULL);
			}
			else
			{
				rc = mq_plan_run(q, kind, args, NULL, false, 0);
				if (rc != SPI_OK_INSERT_RETURNING && rc != SPI_OK_SELECT)
					elog(ERROR, "mq: dequeue from \"%s\" failed: %s", q->name,
						 SPI_result_code_string(rc));
				n = mqt_collect(taken, n, mcxt);
			}
			if (n == first)
			{
				mq_xact_lane_scan_empty(qs, lanes[i].priority);
				continue;
			}
			for (int j = first; j < n; j++)
			{
				max_seq = Max(max_seq, (uint64) taken[j].seq);
				if (due_floor != PG_UINT64_MAX)
					mq_xact_due_taken(qs, lanes[i].priority, taken[j].id);
			}
			mq_xact_lane_scan_end(qs, lanes[i].priority, max_seq);
		}
		if (ready != NULL)
		{
			mq_insert_end(l.wait);
			mq_delete_end(ready);
		}
	}
	else
	{
		Datum		args[5] = {0, 0, 0, 0, 0};
		int			rc;

		args[0] = Int32GetDatum(quantity);
		args[1] = TimestampTzGetDatum(visible_at);
		args[4] = receipt_base;
		/* no heads to keep: any abort sends every lane back to the start */
		mq_xact_all_lanes_back(qs);
		rc = mq_plan_run(q, lease ? MQP_LEASE_ANY : MQP_POP_ANY, args, NULL, false, 0);
		if (rc != SPI_OK_INSERT_RETURNING && rc != SPI_OK_SELECT)
			elog(ERROR, "mq: dequeue from \"%s\" failed: %s", q->name,
				 SPI_result_code_string(rc));
		n = mqt_collect(taken, 0, mcxt);
	}

	{
		int			grouped = 0;

		for (int j = 0; j < n; j++)
			if (taken[j].group_key != NULL)
				grouped++;
		mq_xact_count(qs, MQC_GROUPS_READY, -grouped);
		if (lease)
			mq_xact_count(qs, MQC_GROUPS_IN_FLIGHT, grouped);
	}
	mq_xact_count(qs, MQC_READY, -n);
	if (lease)
	{
		mq_xact_count(qs, MQC_IN_FLIGHT, n);
		if (n > 0)
			mq_xact_note_due(qs, visible_at);
	}
	else
		mq_xact_count(qs, MQC_TOTAL_ACKED, n);
	if (n > 1)
		qsort(taken, n, sizeof(MqTaken), mqt_cmp);
	return n;
}

static int
mqt_gseq_cmp(const void *a, const void *b)
{
	const MqTaken *x = a;
	const MqTaken *y = b;

	return x->gseq < y->gseq ? -1 : x->gseq > y->gseq ? 1 : 0;
}

/*
 * receive's per_group: lease with head, the current message of its group
 * just leased by this transaction, up to max of the messages after it in
 * the group's backlog, in order, stopping before one whose delay has not
 * passed.  They and the head form a run (run_start = the head's gseq),
 * which holds the group until every one of them has left (src/group.c).
 * A head that belongs to a run already (a retry of one) gets none.  No
 * lock is needed: the visible backlog of a group is a prefix of it in
 * gseq order (sends hold the group's lock until they end).  Returns the
 * rows leased, in group order, into taken.
 */
int
mq_take_run(MqQueue *q, MqTaken *head, int max, TimestampTz visible_at,
			MqTaken *taken, MemoryContext mcxt)
{
	MqQueueShared *qs = mq_queue_shared(q);
	TimestampTz now = mq_now();
	Datum		args[5];
	int64		end = 0;
	int			n;

	if (head->group_key == NULL || head->run_start != 0 || max <= 0)
		return 0;
	args[0] = PointerGetDatum(head->group_key);
	args[1] = Int64GetDatum(head->gseq);
	args[2] = Int32GetDatum(max);
	if (mq_plan_run(q, MQP_BACKLOG_PEEK, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "mq: could not read the backlog of queue \"%s\"", q->name);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		if (DatumGetTimestampTz(mq_spi_get(i, 2, &isnull)) > now)
			break;
		end = mq_spi_int8(i, 1);
	}
	if (end == 0)
		return 0;

	/* the head is the run's first message */
	args[0] = Int64GetDatum(head->id);
	if (mq_plan_run(q, MQP_RUN_MARK, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "mq: could not mark a run of queue \"%s\"", q->name);
	head->run_start = head->gseq;

	args[0] = PointerGetDatum(head->group_key);
	args[1] = Int64GetDatum(head->gseq);
	args[2] = Int64GetDatum(end);
	args[3] = TimestampTzGetDatum(visible_at);
	args[4] = Int64GetDatum((int64) mq_random_u64());
	if (mq_plan_run(q, MQP_BACKLOG_RUN, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "mq: could not lease a run of queue \"%s\"", q->name);
	n = mqt_collect(taken, 0, mcxt);
	if (n > 1)
		qsort(taken, n, sizeof(MqTaken), mqt_gseq_cmp);
	mq_xact_count(qs, MQC_BACKLOG, -n);
	mq_xact_count(qs, MQC_IN_FLIGHT, n);
	mq_xact_count(qs, MQC_GROUPS_IN_FLIGHT, n);
	return n;
}
