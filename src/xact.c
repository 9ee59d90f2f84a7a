/*-------------------------------------------------------------------------
 *
 * xact.c
 *	  What mq remembers about the current transaction until it ends:
 *	  counter deltas, lane heads to move at commit, heads to move back at
 *	  abort, due times and low marks of wait tables.  The storage layer
 *	  records here what it did; the end-of-transaction callbacks apply it
 *	  to shared memory and wake waiters, the worker and listeners, calling
 *	  only downwards.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "shmem.h"
#include "wait.h"
#include "launcher.h"
#include "notify.h"
#include "deliveries.h"
#include "xact.h"

/* What one transaction did to one queue. */
typedef struct MqXactLease
{
	int32		priority;
	uint64		min_seq;		/* smallest seq leased (or deleted) */
	uint64		max_seq;		/* largest seq leased */
	uint64		generation;		/* lane generation read before the scan */
	uint64		cap;			/* head may not pass this */
	int			nscans;			/* lane scans begun in this transaction */
	bool		advance;		/* move the head at commit */
	struct						/* as it was before the last scan began */
	{
		uint64		min_seq;
		uint64		generation;
		uint64		cap;
		bool		advance;
	}			before;
} MqXactLease;

/*
 * Rows this transaction promoted into one lane of the ready table.  Their
 * seqs are their due times, possibly behind the lane's head: unless the
 * transaction took them all itself, its commit moves the head back to them.
 */
#define MQX_DUE_IDS 64

typedef struct MqXactDue
{
	int32		priority;
	uint64		min_seq;		/* smallest seq promoted into the lane */
	int			nrows;			/* rows promoted (the first MQX_DUE_IDS in ids) */
	int			ntaken;			/* of those in ids, taken by this transaction */
	int64		ids[MQX_DUE_IDS];
	bool		taken[MQX_DUE_IDS];
} MqXactDue;

typedef struct MqXactQueue
{
	MqQueueShared *qs;
	int64		deltas[MQC_NUM];
	bool		purged;			/* no low mark moves at commit */
	bool		retention_changed;	/* the worker looks at its archive again */
	uint32		gauges_epoch;	/* of the queue's gauges, read before commit */
	bool		promoted;
	bool		wrote_wait;		/* wrote wait rows: note due_min at commit */
	TimestampTz due_min;
	TimestampTz wait_low;		/* move the wait table's low mark at commit */
	bool		deleted_ready;
	bool		all_lanes_back; /* at abort, every lane head goes to zero */
	int			nleases;
	MqXactLease leases[MQ_MAX_LANES + 1];
	MqXactDue  *dues;			/* MQ_MAX_LANES + 1 of them, once promoting */
	int			ndues;
	uint64		dues_min_seq;	/* smallest seq promoted, into any lane */
	bool		dues_overflow;	/* more lanes than dues[]: all heads go back */
	bool		dues_unsure;	/* a rolled-back subtransaction may have given
								 * taken rows back: every head goes back */
} MqXactQueue;

static List *mqx_queues = NIL;	/* of MqXactQueue *, in TopTransactionContext */

/*
 * Queue tables this transaction created or dropped.  Shared entries follow
 * DDL only when it is final: the entry of a dropped queue goes at commit,
 * that of a queue created by a transaction (or subtransaction) that rolls
 * back goes at the end.
 */
typedef struct MqXactDdl
{
	Oid			ready_relid;
	bool		created;		/* else dropped */
	SubTransactionId subid;		/* the (sub)transaction that did it */
	bool		undone;			/* that subtransaction rolled back */
} MqXactDdl;

static List *mqx_ddl = NIL;		/* of MqXactDdl *, in TopTransactionContext */
static TransactionId mqx_xid = InvalidTransactionId;	/* read before commit */

/*
 * Counter deltas as they stood when a subtransaction began, so that its
 * rollback can restore them.  Queues first touched inside it (index >=
 * nqueues) go back to zero.
 */
typedef struct MqSubSave
{
	SubTransactionId subid;
	uint32		delivery_mark;	/* where the journal of deliveries stood */
	int			nqueues;
	int64	   *deltas;			/* nqueues * MQC_NUM */
} MqSubSave;

static List *mqx_subsaves = NIL;	/* stack, innermost last */

/* What this transaction did to the queue of qs, or NULL: nothing yet. */
static MqXactQueue *
mqx_find(MqQueueShared *qs)
{
	ListCell   *lc;

	foreach(lc, mqx_queues)
	{
		MqXactQueue *xq = lfirst(lc);

		if (xq->qs == qs)
			return xq;
	}
	return NULL;
}

static MqXactQueue *
mqx_entry(MqQueueShared *qs)
{
	MqXactQueue *xq = mqx_find(qs);
	MemoryContext old;

	if (xq)
		return xq;
	old = MemoryContextSwitchTo(TopTransactionContext);
	xq = palloc0(sizeof(MqXactQueue));
	xq->qs = qs;
	mqx_queues = lappend(mqx_queues, xq);
	MemoryContextSwitchTo(old);
	return xq;
}

void
mq_xact_count(MqQueueShared *qs, MqCounter c, int64 delta)
{
	if (qs == NULL || delta == 0)
		return;
	mqx_entry(qs)->deltas[c] += delta;
}

static MqXactLease *
mqx_lease(MqXactQueue *xq, int32 priority)
{
	for (int i = 0; i < xq->nleases; i++)
		if (xq->leases[i].priority == priority)
			return &xq->leases[i];
	if (xq->nleases >= lengthof(xq->leases))
		return NULL;
	xq->leases[xq->nleases].priority = priority;
	xq->leases[xq->nleases].min_seq = PG_UINT64_MAX;
	xq->leases[xq->nleases].max_seq = 0;
	xq->leases[xq->nleases].nscans = 0;
	xq->leases[xq->nleases].advance = false;
	return &xq->leases[xq->nleases++];
}

/*
 * A scan of one lane from its head is about to delete ready rows.  This is
 * recorded before the scan runs: should the statement fail after locking
 * rows (a cancel, a deadlock, a unique violation), the abort must still move
 * the head back to where the scan began.
 */
void
mq_xact_lane_scan_begin(MqQueueShared *qs, int32 priority, uint64 head,
						uint64 generation, uint64 cap)
{
	MqXactQueue *xq;
	MqXactLease *l;

	if (qs == NULL)
		return;
	xq = mqx_entry(qs);
	xq->deleted_ready = true;
	l = xq->all_lanes_back ? NULL : mqx_lease(xq, priority);
	if (l == NULL)
	{
		mq_xact_all_lanes_back(qs);	/* too many lanes in one transaction */
		return;
	}
	l->before.min_seq = l->min_seq;
	l->before.generation = l->generation;
	l->before.cap = l->cap;
	l->before.advance = l->advance;
	l->min_seq = Min(l->min_seq, head);
	if (++l->nscans == 1)
	{
		l->generation = generation;
		l->cap = cap;
	}
	l->advance = false;
}

/*
 * The scan begun above took rows up to max_seq.  Only the first scan of a
 * lane in a transaction may move its head at commit: a later one did not
 * see the rows the earlier one deleted, which are not dead before commit.
 */
void
mq_xact_lane_scan_end(MqQueueShared *qs, int32 priority, uint64 max_seq)
{
	MqXactQueue *xq;
	MqXactLease *l;

	if (qs == NULL)
		return;
	xq = mqx_entry(qs);
	if (xq->all_lanes_back || (l = mqx_lease(xq, priority)) == NULL)
		return;
	l->max_seq = Max(l->max_seq, max_seq);
	l->advance = (l->nscans == 1);
}

/*
 * The scan begun above took nothing: as if it never ran (it deleted
 * nothing), so that a later scan that takes rows may still be the first
 * one and move the head.  A blocking receive looks many times before it
 * finds something.
 */
void
mq_xact_lane_scan_empty(MqQueueShared *qs, int32 priority)
{
	MqXactQueue *xq;
	MqXactLease *l;

	if (qs == NULL)
		return;
	xq = mqx_entry(qs);
	if (xq->all_lanes_back || (l = mqx_lease(xq, priority)) == NULL || l->nscans == 0)
		return;
	l->nscans--;
	l->min_seq = l->before.min_seq;
	l->generation = l->before.generation;
	l->cap = l->before.cap;
	l->advance = l->before.advance;
}

/*
 * Rows left the ready table other than by a lane scan (purge, scans over all
 * lanes, more lanes than one transaction tracks): at abort every lane head
 * goes back to zero, and no head moves at commit.
 */
void
mq_xact_all_lanes_back(MqQueueShared *qs)
{
	MqXactQueue *xq;

	if (qs == NULL)
		return;
	xq = mqx_entry(qs);
	xq->deleted_ready = true;
	xq->all_lanes_back = true;
	for (int i = 0; i < xq->nleases; i++)
		xq->leases[i].advance = false;
}

/* purge_queue emptied the queue's tables in this transaction. */
void
mq_xact_purged(MqQueueShared *qs)
{
	if (qs == NULL)
		return;
	mqx_entry(qs)->purged = true;
}

/*
 * alter_queue changed the queue's retention: at commit the worker's
 * deadline for it is unknown again (it looks at once, with the new
 * retention).
 */
void
mq_xact_retention_changed(MqQueueShared *qs)
{
	if (qs == NULL)
		return;
	mqx_entry(qs)->retention_changed = true;
}

/* The gauge deltas of this transaction so far (src/counters.c). */
void
mq_xact_gauge_deltas(MqQueueShared *qs, int64 *deltas)
{
	MqXactQueue *xq = qs ? mqx_find(qs) : NULL;

	for (int i = 0; i < MQ_NUM_GAUGES; i++)
		deltas[i] = xq ? xq->deltas[i] : 0;
}

static void
mqx_ddl_note(Oid ready_relid, bool created)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	MqXactDdl  *d = palloc0(sizeof(MqXactDdl));

	d->ready_relid = ready_relid;
	d->created = created;
	d->subid = GetCurrentSubTransactionId();
	mqx_ddl = lappend(mqx_ddl, d);
	MemoryContextSwitchTo(old);
}

/* The tables of queue ready_relid were created by this transaction. */
void
mq_xact_created_queue(Oid ready_relid)
{
	mqx_ddl_note(ready_relid, true);
}

/*
 * The tables of queue ready_relid are being dropped by this transaction
 * (drop_queue, DROP EXTENSION, DROP TABLE): its shared entry goes when the
 * transaction commits, not before.
 */
void
mq_xact_dropped_queue(Oid ready_relid)
{
	mqx_ddl_note(ready_relid, false);
}

/*
 * At the end of the transaction: forget the entries of queues whose tables
 * are gone, after everything else (the bookkeeping above may still point
 * at them).
 */
static void
mqx_ddl_end(bool committed)
{
	ListCell   *lc;

	foreach(lc, mqx_ddl)
	{
		MqXactDdl  *d = lfirst(lc);
		bool		gone;

		if (d->created)
			gone = !committed || d->undone;
		else
			gone = committed && !d->undone;
		if (gone)
			mq_shared_forget_queue(MyDatabaseId, d->ready_relid);
	}
	mqx_ddl = NIL;
}

/*
 * A wait row with this vt was written: next_due must not stay later, now
 * and again at commit (a promotion that runs meanwhile does not see the
 * row yet).
 */
void
mq_xact_note_due(MqQueueShared *qs, TimestampTz vt)
{
	MqXactQueue *xq;

	if (qs == NULL)
		return;
	xq = mqx_entry(qs);
	if (!xq->wrote_wait || vt < xq->due_min)
		xq->due_min = vt;
	xq->wrote_wait = true;
	mq_shared_note_due(qs, vt);
}

void
mq_xact_promoted(MqQueueShared *qs, TimestampTz wait_low)
{
	MqXactQueue *xq;

	if (qs == NULL)
		return;
	xq = mqx_entry(qs);
	if (!xq->promoted || wait_low < xq->wait_low)
		xq->wait_low = wait_low;
	xq->promoted = true;
}

static MqXactDue *
mqx_due(MqXactQueue *xq, int32 priority, bool create)
{
	MqXactDue  *d;

	for (int i = 0; i < xq->ndues; i++)
		if (xq->dues[i].priority == priority)
			return &xq->dues[i];
	if (!create)
		return NULL;
	if (xq->dues == NULL)
		xq->dues = MemoryContextAllocZero(TopTransactionContext,
										  sizeof(MqXactDue) * (MQ_MAX_LANES + 1));
	if (xq->ndues >= MQ_MAX_LANES + 1)
		return NULL;
	d = &xq->dues[xq->ndues++];
	d->priority = priority;
	d->min_seq = PG_UINT64_MAX;
	return d;
}

/* A wait row that came due was inserted into the ready table with seq. */
void
mq_xact_promoted_row(MqQueueShared *qs, int32 priority, uint64 seq, int64 id)
{
	MqXactQueue *xq;
	MqXactDue  *d;

	if (qs == NULL)
		return;
	xq = mqx_entry(qs);
	if (xq->ndues == 0 || seq < xq->dues_min_seq)
		xq->dues_min_seq = seq;
	d = mqx_due(xq, priority, true);
	if (d == NULL)
	{
		xq->dues_overflow = true;
		return;
	}
	d->min_seq = Min(d->min_seq, seq);
	if (d->nrows < MQX_DUE_IDS)
		d->ids[d->nrows] = id;
	d->nrows++;
}

/*
 * Where this transaction's scans of a lane must start at the latest: at
 * the rows it promoted into it (PG_UINT64_MAX: none).
 */
uint64
mq_xact_due_floor(MqQueueShared *qs, int32 priority)
{
	MqXactQueue *xq;
	MqXactDue  *d;

	if (qs == NULL || (xq = mqx_find(qs)) == NULL || xq->ndues == 0)
		return PG_UINT64_MAX;
	if (xq->dues_overflow)
		return xq->dues_min_seq;
	d = mqx_due(xq, priority, false);
	return d ? d->min_seq : PG_UINT64_MAX;
}

/* A lane scan took the row id: if this transaction promoted it, note that. */
void
mq_xact_due_taken(MqQueueShared *qs, int32 priority, int64 id)
{
	MqXactQueue *xq;
	MqXactDue  *d;

	if (qs == NULL || (xq = mqx_find(qs)) == NULL || xq->ndues == 0 ||
		(d = mqx_due(xq, priority, false)) == NULL)
		return;
	for (int i = 0; i < Min(d->nrows, MQX_DUE_IDS); i++)
		if (d->ids[i] == id && !d->taken[i])
		{
			d->taken[i] = true;
			d->ntaken++;
			return;
		}
}

/*
 * At commit, with the lane mutex held: the rows this transaction promoted
 * and left in the ready table are visible now, perhaps behind a head that
 * moved past their seqs meanwhile.  The head goes back to them, and the
 * generation changes, so that no advance computed by a scan that could not
 * see them passes them later.
 */
static void
mqx_dues_back(MqXactQueue *xq)
{
	MqQueueShared *qs = xq->qs;

	for (int i = 0; i < qs->nlanes; i++)
	{
		MqLane	   *lane = &qs->lanes[i];
		uint64		back = PG_UINT64_MAX;

		if (xq->dues_overflow)
			back = xq->dues_min_seq;
		else
		{
			MqXactDue  *d = mqx_due(xq, lane->priority, false);

			if (d != NULL &&
				(xq->dues_unsure || d->nrows > MQX_DUE_IDS || d->ntaken < d->nrows))
				back = d->min_seq;
		}
		if (back == PG_UINT64_MAX)
			continue;
		if (back < lane->head)
			lane->head = back;
		lane->generation++;
	}
}

static void
mqx_move_heads_back(MqXactQueue *xq)
{
	MqQueueShared *qs = xq->qs;
	bool		all = xq->all_lanes_back;

	SpinLockAcquire(&qs->mutex);
	for (int i = 0; i < qs->nlanes; i++)
	{
		MqLane	   *lane = &qs->lanes[i];
		uint64		back = PG_UINT64_MAX;

		if (all)
			back = 0;
		else
			for (int j = 0; j < xq->nleases; j++)
				if (xq->leases[j].priority == lane->priority)
					back = Min(back, xq->leases[j].min_seq);
		if (back == PG_UINT64_MAX)
			continue;
		if (back < lane->head)
			lane->head = back;
		lane->generation++;
	}
	SpinLockRelease(&qs->mutex);
}

static void
mqx_commit(MqXactQueue *xq)
{
	MqQueueShared *qs = xq->qs;

	mq_gauges_commit(qs, mqx_xid, xq->gauges_epoch, xq->deltas);
	for (int i = MQC_FIRST_TOTAL; i < MQC_NUM; i++)
		if (xq->deltas[i] != 0)
			pg_atomic_fetch_add_u64(&qs->counters[i], (uint64) xq->deltas[i]);

	/*
	 * Every row of the lane before max_seq that this scan did not take was
	 * dead, locked by another transaction (which moves the head back should
	 * it roll back, bumping the generation), or not yet committed (then its
	 * seq is at least cap).  So the head may move to min(max_seq, cap)
	 * unless the generation changed meanwhile: not past max_seq, which
	 * another row may share (rows promoted with the same due time).
	 */
	SpinLockAcquire(&qs->mutex);
	for (int j = 0; j < xq->nleases; j++)
	{
		MqXactLease *l = &xq->leases[j];

		if (!l->advance)
			continue;
		for (int i = 0; i < qs->nlanes; i++)
		{
			MqLane	   *lane = &qs->lanes[i];
			uint64		target;

			if (lane->priority != l->priority)
				continue;
			if (lane->generation != l->generation)
				break;
			target = Min(l->max_seq, l->cap);
			if (target > lane->head)
				lane->head = target;
			break;
		}
	}
	if (xq->ndues > 0)
		mqx_dues_back(xq);
	SpinLockRelease(&qs->mutex);

	/*
	 * Messages became ready: wake blocked receivers, owe a NOTIFY (the
	 * first one owed since the worker's last pass wakes the worker).
	 */
	if (xq->deltas[MQC_READY] > 0)
		mq_wait_wake(qs, xq->deltas[MQC_READY]);
	if ((xq->deltas[MQC_READY] > 0 || xq->deltas[MQC_TOTAL_SENT] > 0) &&
		mq_notify_mark(qs))
		mq_worker_wake(qs->key.dboid);

	/*
	 * A promotion that ran while our wait rows were invisible to it may
	 * have set next_due later than them; now they are visible.
	 */
	if (xq->wrote_wait)
		mq_shared_note_due(qs, xq->due_min);

	if (xq->retention_changed)
		pg_atomic_write_u64(&qs->retention_due, 0);

	if (xq->promoted && !xq->purged)
		mq_atomic_raise_u64(&qs->wait_low, MQ_TS_ENCODE(xq->wait_low));
}

static void
mqx_abort(MqXactQueue *xq)
{
	if (xq->deleted_ready)
		mqx_move_heads_back(xq);
	if (xq->promoted)
		pg_atomic_write_u64(&xq->qs->next_due, 0);
	/* counter deltas of an aborted transaction are simply dropped */
}

static void
mqx_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			/* a prepared transaction would outlive this backend's records */
			if (mqx_queues != NIL || mqx_ddl != NIL || mq_slot_in_use())
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that used mq queues")));
			break;
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			/* before the transaction becomes visible (src/shmem.c says why) */
			mqx_xid = GetTopTransactionIdIfAny();
			foreach(lc, mqx_queues)
			{
				MqXactQueue *xq = lfirst(lc);

				xq->gauges_epoch = mq_gauges_epoch(xq->qs);
			}
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			foreach(lc, mqx_queues)
				mqx_commit(lfirst(lc));
			mqx_queues = NIL;
			mqx_subsaves = NIL;
			mqx_ddl_end(true);
			mq_deliveries_end(0, false);
			mq_slot_clear();
			mq_worker_at_commit(true);
			mqx_xid = InvalidTransactionId;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			foreach(lc, mqx_queues)
				mqx_abort(lfirst(lc));
			mqx_queues = NIL;
			mqx_subsaves = NIL;
			mqx_ddl_end(false);
			mq_deliveries_end(0, true);
			mq_slot_clear();
			mq_worker_at_commit(false);
			mqx_xid = InvalidTransactionId;
			break;
		default:
			break;
	}
}

static void
mqx_sub_start(SubTransactionId subid)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	MqSubSave  *save = palloc(sizeof(MqSubSave));
	ListCell   *lc;
	int			i = 0;

	save->subid = subid;
	save->delivery_mark = mq_deliveries_mark();
	save->nqueues = list_length(mqx_queues);
	save->deltas = save->nqueues ? palloc(sizeof(int64) * MQC_NUM * save->nqueues) : NULL;
	foreach(lc, mqx_queues)
	{
		MqXactQueue *xq = lfirst(lc);

		memcpy(&save->deltas[MQC_NUM * i++], xq->deltas, sizeof(xq->deltas));
	}
	mqx_subsaves = lappend(mqx_subsaves, save);
	MemoryContextSwitchTo(old);
}

/* Pop the save of subid (and any inner ones left by an error). */
static MqSubSave *
mqx_sub_pop(SubTransactionId subid)
{
	while (mqx_subsaves != NIL)
	{
		MqSubSave  *save = llast(mqx_subsaves);

		mqx_subsaves = list_delete_last(mqx_subsaves);
		if (save->subid == subid)
			return save;
	}
	return NULL;
}

/*
 * A rolled-back subtransaction brings back rows it deleted and undoes what
 * it counted.  Heads move back now, and no head moves at commit: the lane
 * scans recorded may have seen rows that are live again.
 */
static void
mqx_sub_abort(SubTransactionId subid)
{
	MqSubSave  *save = mqx_sub_pop(subid);
	ListCell   *lc;
	int			i = 0;

	/* what it delivered comes back: those deliveries were attempts */
	if (save)
		mq_deliveries_end(save->delivery_mark, true);

	foreach(lc, mqx_queues)
	{
		MqXactQueue *xq = lfirst(lc);

		if (save && i < save->nqueues)
			memcpy(xq->deltas, &save->deltas[MQC_NUM * i], sizeof(xq->deltas));
		else
			memset(xq->deltas, 0, sizeof(xq->deltas));
		i++;
		if (xq->deleted_ready)
			mqx_move_heads_back(xq);
		for (int j = 0; j < xq->nleases; j++)
			xq->leases[j].advance = false;
		xq->dues_unsure = true;
		if (xq->promoted)
		{
			pg_atomic_write_u64(&xq->qs->next_due, 0);
			xq->wait_low = DT_NOBEGIN;	/* no advance at commit */
		}
	}
}

/* DDL of a subtransaction belongs to its parent, or is undone with it. */
static void
mqx_sub_ddl_end(SubTransactionId subid, SubTransactionId parent, bool committed)
{
	ListCell   *lc;

	foreach(lc, mqx_ddl)
	{
		MqXactDdl  *d = lfirst(lc);

		if (d->subid != subid)
			continue;
		if (committed)
			d->subid = parent;
		else
			d->undone = true;
	}
}

static void
mqx_subcallback(SubXactEvent event, SubTransactionId mySubid,
				SubTransactionId parentSubid, void *arg)
{
	switch (event)
	{
		case SUBXACT_EVENT_START_SUB:
			mqx_sub_start(mySubid);
			break;
		case SUBXACT_EVENT_COMMIT_SUB:
			(void) mqx_sub_pop(mySubid);
			mqx_sub_ddl_end(mySubid, parentSubid, true);
			break;
		case SUBXACT_EVENT_ABORT_SUB:
			mqx_sub_abort(mySubid);
			mqx_sub_ddl_end(mySubid, parentSubid, false);
			break;
		default:
			break;
	}
}

/* Called from _PG_init. */
void
mq_xact_init(void)
{
	RegisterXactCallback(mqx_callback, NULL);
	RegisterSubXactCallback(mqx_subcallback, NULL);
}
