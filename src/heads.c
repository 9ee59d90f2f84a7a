/*-------------------------------------------------------------------------
 *
 * heads.c
 *	  Lanes and heads of the ready tables.  A lane is one priority of one
 *	  queue; its head is a seq below which the lane holds no live row, so
 *	  a dequeue scan starts there instead of walking the dead index entries
 *	  of everything consumed before (which vacuum cannot remove while any
 *	  snapshot holds the xmin horizon back).
 *
 * Heads move forward only at the commit of a consumer (src/mq.c says when
 * that is safe) and back at the abort of anyone who deleted ready rows.
 * Lanes are registered by producers before they insert, and discovered
 * from the table after a restart.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"

#include "mq.h"

/* A producer is about to insert a ready row of this priority. */
void
mq_ready_registered(MqQueue *q, MqQueueShared *qs, int32 priority)
{
	int			i;

	if (qs == NULL)
		return;
	SpinLockAcquire(&qs->mutex);
	if (!qs->lanes_overflow)
	{
		for (i = 0; i < qs->nlanes; i++)
			if (qs->lanes[i].priority <= priority)
				break;
		if (i >= qs->nlanes || qs->lanes[i].priority != priority)
		{
			if (qs->nlanes >= MQ_MAX_LANES)
				qs->lanes_overflow = true;
			else
			{
				memmove(&qs->lanes[i + 1], &qs->lanes[i],
						(qs->nlanes - i) * sizeof(MqLane));
				qs->lanes[i].priority = priority;
				qs->lanes[i].head = 0;
				qs->lanes[i].generation = 0;
				qs->nlanes++;
			}
		}
	}
	SpinLockRelease(&qs->mutex);
}

/*
 * After a restart the shared entry is new: find the priorities present in
 * the ready table (a loose index scan, one probe per priority), and the
 * highest seq handed out so far.
 */
static void
mq_ensure_lanes(MqQueue *q, MqQueueShared *qs)
{
	static SPIPlanPtr seq_plan = NULL;
	SPIPlanPtr	plan;
	int64		below = PG_INT64_MAX;

	if (qs == NULL || qs->lanes_known)
		return;

	if (seq_plan == NULL)
		seq_plan = mq_prepare("SELECT last_value FROM mq.message_id_seq", 0, NULL);
	if (mq_exec_plan(seq_plan, NULL, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "mq: could not read mq.message_id_seq");
	{
		uint64		last = (uint64) mq_spi_int8(0, 1);
		uint64		cur = pg_atomic_read_u64(&qs->max_seq);

		while (last > cur &&
			   !pg_atomic_compare_exchange_u64(&qs->max_seq, &cur, last))
			;
	}

	plan = mq_queue_plan(q, MQP_LANES);
	for (int n = 0; n <= MQ_MAX_LANES; n++)
	{
		Datum		arg = Int64GetDatum(below);
		int32		priority;
		bool		isnull;

		if (mq_exec_plan(plan, &arg, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "mq: could not read the lanes of queue \"%s\"", q->name);
		if (SPI_processed == 0)
			break;
		priority = DatumGetInt32(mq_spi_get(0, 1, &isnull));
		mq_ready_registered(q, qs, priority);
		below = priority;
	}
	SpinLockAcquire(&qs->mutex);
	qs->lanes_known = true;
	SpinLockRelease(&qs->mutex);
}

/*
 * A consistent copy of the lanes, for one dequeue.  Returns false when the
 * lanes cannot be used (no shared memory, too many priorities, a
 * transaction snapshot that is older than the bounds read here).
 */
bool
mq_copy_lanes(MqQueue *q, MqQueueShared *qs, MqLane *lanes, int *nlanes)
{
	bool		usable;

	if (qs == NULL)
		return false;
	mq_ensure_lanes(q, qs);
	SpinLockAcquire(&qs->mutex);
	usable = qs->lanes_known && !qs->lanes_overflow;
	*nlanes = qs->nlanes;
	memcpy(lanes, qs->lanes, qs->nlanes * sizeof(MqLane));
	SpinLockRelease(&qs->mutex);
	return usable;
}

/*
 * How far heads may move after this dequeue: not past a seq some open
 * transaction may still insert, nor past anything handed out after now.
 * max_seq must be read before the slots (src/shmem.c says why).
 */
uint64
mq_head_cap(MqQueueShared *qs)
{
	uint64		cap = pg_atomic_read_u64(&qs->max_seq) + 1;
	uint64		pending;

	pg_memory_barrier();
	pending = mq_slots_min_seq(qs);
	return Min(cap, pending);
}
