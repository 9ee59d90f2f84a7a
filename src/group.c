/*-------------------------------------------------------------------------
 *
 * group.c
 *	  Message groups: when the current message of a group leaves the queue
 *	  (acked, popped, dead-lettered, or the last one of a run of them), the
 *	  next message of the group's backlog becomes the group's current one,
 *	  ready (or delayed, if its delay has not passed); when the backlog is
 *	  empty the group's row goes, and the next send to the group starts it
 *	  again (src/insert.c).
 *
 * A group has at most one current message (or one run, src/take.c) in the
 * ready and wait tables; the rest wait in the backlog, mq.b_<queue>, in the
 * order their sends took the group's lock (gseq).  The row of the group in
 * mq.g_<queue> exists while the group has messages; sends lock it, so that
 * the visible part of a group's backlog is always a prefix of it in gseq
 * order.  Moving the next message up needs no lock therefore, as long as
 * there is one: only the settling of the group's only current message can
 * run, and sends only append after it.  Finding none, the settler locks the
 * group (waiting for a send in progress) and looks again before it removes
 * the group's row.  The messages of a run have a row each in the run table,
 * mq.r_<queue>, while they are in the queue (retries included); they can be
 * settled concurrently: they lock the group first, so that the last one to
 * go sees the others' rows gone.
 *
 * What the settler reads after it locked the group must be what the
 * transaction that held the lock committed: in REPEATABLE READ and
 * SERIALIZABLE the transaction's snapshot may be older than the lock (taken
 * when the ack began, or before), and a decision on it would keep the group
 * held for ever (the other messages of the run look present) or remove the
 * group's row under a message just sent to it.  So these statements run
 * with the latest snapshot (src/util.c: mq_exec_plan_latest).
 *
 * The backlog is searched from just past the message that left (gseq >
 * its gseq), so the index entries of the group's earlier messages, dead
 * but kept while the xmin horizon is held, are never read again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "utils/jsonb.h"

#include "util.h"
#include "shmem.h"
#include "catalog.h"
#include "xact.h"
#include "plans.h"
#include "insert.h"
#include "group.h"

/*
 * Message id leaves the run that began at run_start: whether another
 * message of the run is still in the queue.
 */
static bool
mqg_run_leave(MqQueue *q, int64 run_start, int64 id)
{
	Datum		args[2] = {Int64GetDatum(run_start), Int64GetDatum(id)};

	if (mq_plan_run_latest(q, MQP_RUN_LEAVE, args, NULL, 1) != SPI_OK_SELECT)
		elog(ERROR, "mq: could not read the run of a group of queue \"%s\"", q->name);
	return SPI_processed > 0;
}

/* mq_delete_first's visitor: the backlog row taken, copied */
typedef struct MqgNext
{
	MqOutMessage m;
	TimestampTz visible_at;
	text	   *key;			/* mq_delete_tid's filter: the row wanted */
	int64		gseq;
} MqgNext;

static void
mqg_backlog_row(const Datum *values, const bool *isnull, void *arg)
{
	MqgNext    *next = arg;
	MqOutMessage *m = &next->m;

	memset(m, 0, sizeof(*m));
	m->group_key = DatumGetTextPCopy(values[MQB_GROUP_KEY]);
	m->gseq = DatumGetInt64(values[MQB_GSEQ]);
	next->visible_at = DatumGetTimestampTz(values[MQB_VT]);
	m->id = DatumGetInt64(values[MQB_ID]);
	m->priority = DatumGetInt32(values[MQB_PRIORITY]);
	m->attempt = DatumGetInt32(values[MQB_ATTEMPT]);
	m->enqueued_at = DatumGetTimestampTz(values[MQB_ENQUEUED_AT]);
	m->message = DatumGetJsonbPCopy(values[MQB_MESSAGE]);
	m->headers = isnull[MQB_HEADERS] ? NULL : DatumGetJsonbPCopy(values[MQB_HEADERS]);
	m->dedup_key = isnull[MQB_DEDUP_KEY] ? NULL : DatumGetTextPCopy(values[MQB_DEDUP_KEY]);
	m->last_error = isnull[MQB_LAST_ERROR] ? NULL : DatumGetTextPCopy(values[MQB_LAST_ERROR]);
}

/* mq_delete_tid's filter: the row at the TID is still the one the trail saw */
static bool
mqg_is_wanted(const Datum *values, const bool *isnull, void *arg)
{
	MqgNext    *next = arg;
	text	   *key = DatumGetTextPP(values[MQB_GROUP_KEY]);

	return DatumGetInt64(values[MQB_GSEQ]) == next->gseq &&
		VARSIZE_ANY_EXHDR(key) == VARSIZE_ANY_EXHDR(next->key) &&
		memcmp(VARDATA_ANY(key), VARDATA_ANY(next->key), VARSIZE_ANY_EXHDR(key)) == 0;
}

/*
 * Take the first message of key's backlog after gseq, as this statement
 * sees it: without a plan (the backlog's index range, the latest
 * snapshot), or with MQP_BACKLOG_NEXT where the table was altered by hand.
 *
 * The btree reads every entry of the group left on the index page for a
 * scan that takes one, so a group with a deep backlog would cost a page
 * of comparisons per message.  The scan looks first up to four times the
 * mean gap between a group's messages that the queue's settles saw (gseqs
 * come from mq.message_id_seq, which every queue's sends use, so the gap
 * follows the database's traffic, alike for a queue's groups), and
 * past that only if it finds nothing: the first message is the same
 * either way.  A settle that finds none (groups that empty) turns the
 * guess off until one finds a message again.
 *
 * The scan also notes the group's entries that follow the one it took
 * (its trail, kept in shared memory), so that the next settles of the
 * group go straight to the row.  The entry right after gseq's in the
 * index is the group's next message once it is visible: a message with a
 * gseq between the two would have taken the group's lock, and its gseq,
 * before the later one's sender could, and so would have had its entry in
 * the index already.  The row is checked before it is taken: visible to
 * the latest snapshot, of this group and at that gseq (a TID can be
 * reused).  Any doubt, and the scan decides.
 */
static bool
mqg_backlog_next(MqQueue *q, MqQueueShared *qs, text *key, int64 gseq, MqgNext *next)
{
	MqRowDelete *d = mq_delete_begin_ordered(q->backlog_relid, mq_backlog_cols, MQB_NCOLS,
											 "group_key", "gseq", false);
	Datum		args[2] = {PointerGetDatum(key), Int64GetDatum(gseq)};
	bool		isnull;

	if (d != NULL)
	{
		uint64		gap = qs ? pg_atomic_read_u64(&qs->group_gap) : 0;
		uint64		mean = 0;
		int			n = 0;
		uint32		keyhash;
		ItemPointerData tid;
		MqIndexTrail trail;

		key = pg_detoast_datum_packed(key);
		keyhash = hash_any((unsigned char *) VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key));
		next->key = key;
		if (mq_trail_next(q->backlog_relid, keyhash, gseq, &next->gseq, &tid) &&
			mq_delete_tid(d, &tid, MQ_DELETE_LATEST, mqg_is_wanted, mqg_backlog_row, next))
			n = 1;
		else
		{
			if (gap > 0 && gap <= (uint64) (PG_INT64_MAX - gseq) / 4)
				n = mq_delete_first(d, PointerGetDatum(key), gseq, gseq + (int64) (4 * gap), 1,
									MQ_DELETE_AFTER | MQ_DELETE_LATEST, mqg_backlog_row, next,
									&trail);
			if (n == 0)
				n = mq_delete_first(d, PointerGetDatum(key), gseq, PG_INT64_MAX, 1,
									MQ_DELETE_AFTER | MQ_DELETE_LATEST, mqg_backlog_row, next,
									&trail);
			StaticAssertStmt(MQ_INDEX_TRAIL_LEN <= MQ_TRAIL_LEN, "a trail fits its slot");
			if (n > 0)
				mq_trail_put(q->backlog_relid, keyhash, next->m.gseq, trail.n, trail.next, trail.tid);
		}
		mq_delete_end(d);
		if (n > 0)
		{
			uint64		seen = (uint64) (next->m.gseq - gseq);

			/* a moving mean over about 8 settles; a lost update is no harm */
			mean = gap == 0 ? seen : gap - gap / 8 + seen / 8;
		}
		if (qs && mean != gap)
			pg_atomic_write_u64(&qs->group_gap, mean);
		return n > 0;
	}
	if (mq_plan_run_latest(q, MQP_BACKLOG_NEXT, args, NULL, 0) != SPI_OK_DELETE_RETURNING)
		elog(ERROR, "mq: could not read the backlog of queue \"%s\"", q->name);
	if (SPI_processed == 0)
		return false;
	mq_read_message_row(SPI_tuptable, 0, &next->m);
	next->visible_at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
														 SPI_tuptable->tupdesc, 12, &isnull));
	return true;
}

/*
 * Move the first message of key's backlog after gseq up: it becomes the
 * group's current message.  False if the backlog (as this statement sees
 * it) has none.
 */
static bool
mqg_promote_next(MqQueue *q, MqQueueShared *qs, text *key, int64 gseq)
{
	MqgNext		next;

	if (!mqg_backlog_next(q, qs, key, gseq, &next))
		return false;
	next.m.run_start = 0;
	mq_xact_count(qs, MQC_BACKLOG, -1);
	mq_insert_head(q, qs, &next.m, next.visible_at);
	return true;
}

/*
 * A message of group key (its place gseq, its run run_start or 0, its id)
 * has just left q's ready or wait table in this transaction: let the group
 * go on.
 */
void
mq_group_settled(MqQueue *q, MqQueueShared *qs, text *key, int64 gseq, int64 run_start,
				 int64 id)
{
	ItemPointerData tid;
	bool		locked = false;

	if (run_start != 0)
	{
		/* the run's messages settle one by one: the last one moves on */
		locked = mq_group_lock(q, qs, key, false, &tid);
		if (mqg_run_leave(q, run_start, id))
			return;
	}
	if (mqg_promote_next(q, qs, key, gseq))
		return;
	/* nothing visible: a send in progress may be adding; wait for it */
	if (!locked)
	{
		locked = mq_group_lock(q, qs, key, false, &tid);
		if (mqg_promote_next(q, qs, key, gseq))
			return;
	}
	if (!locked)
		return;					/* no row (purged meanwhile): nothing to remove */
	{
		Datum		arg = PointerGetDatum(&tid);

		if (mq_plan_run_latest(q, MQP_GROUP_DELETE, &arg, NULL, 0) != SPI_OK_DELETE)
			elog(ERROR, "mq: could not remove a group of queue \"%s\"", q->name);
		mq_xact_count(qs, MQC_GROUPS, -(int64) SPI_processed);
	}
}
