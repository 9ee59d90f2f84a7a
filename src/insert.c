/*-------------------------------------------------------------------------
 *
 * insert.c
 *	  The one way into a queue: every message (sends, publishes, retries
 *	  coming due, redrives, dead letters routed to another queue) is
 *	  inserted here, ready now into the ready table with a fresh seq, or
 *	  delayed into the wait table, in the caller's transaction; a wait row
 *	  that came due joins the ready table in its place by due time.  A
 *	  message with a group key takes its group's lock first: it is the
 *	  group's current message (ready or delayed, as any message) if the
 *	  group had none, else it joins the group's backlog (src/group.c moves
 *	  it up when its turn comes).
 *
 * Before a fresh ready row exists, the bound of what it will be is
 * published in this backend's slot (src/shmem.c), so that no head moves
 * past it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "access/htup_details.h"
#include "catalog/pg_sequence.h"
#include "commands/sequence.h"
#include "utils/inval.h"
#include "utils/syscache.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "miscadmin.h"
#include "storage/itemptr.h"

#include "util.h"
#include "shmem.h"
#include "catalog.h"
#include "xact.h"
#include "plans.h"
#include "insert.h"

/*
 * Headers given by a sender: an object, without the keys mq sets itself
 * ("topic", set by publish, and every key beginning with "mq_", such as
 * "mq_dead_letter"), so that a consumer can trust them.  publish passes
 * topic_ok: it replaces a "topic" key with the real topic.
 */
void
mq_check_headers(Jsonb *headers, bool topic_ok)
{
	JsonbIterator *it;
	JsonbIteratorToken r;
	JsonbValue	v;

	if (headers != NULL && !JB_ROOT_IS_OBJECT(headers))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("headers must be a JSON object"),
				 errdetail("Headers are matched as key/value pairs, so arrays and scalars are not accepted.")));
	if (headers == NULL)
		return;
	it = JsonbIteratorInit(&headers->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (r != WJB_KEY)
			continue;
		if ((v.val.string.len >= 3 && memcmp(v.val.string.val, "mq_", 3) == 0) ||
			(!topic_ok && v.val.string.len == 5 && memcmp(v.val.string.val, "topic", 5) == 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("header \"%s\" is reserved",
							pnstrdup(v.val.string.val, v.val.string.len)),
					 errdetail("mq sets \"topic\" (publish) and the headers whose names begin with \"mq_\" (such as \"mq_dead_letter\") itself.")));
	}
}

/* A group key given by a sender: NULL (no group), or 1 to 512 bytes. */
void
mq_check_group_key(text *key)
{
	if (key == NULL)
		return;
	if (VARSIZE_ANY_EXHDR(key) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("group_key must not be empty"),
				 errhint("Pass NULL for a message without a group.")));
	if (VARSIZE_ANY_EXHDR(key) > MQ_GROUP_KEY_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("group_key is too long"),
				 errdetail("A group key has at most %d bytes; this one has %zu.",
						   MQ_GROUP_KEY_MAX, (size_t) VARSIZE_ANY_EXHDR(key))));
}

/*
 * Message ids increase in send order across sessions, which a sequence
 * cache would break.  ALTER SEQUENCE of it is refused (src/ddl.c); this
 * catches a change made without mq loaded.
 */
static void
mqi_sequence_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	*(Oid *) DatumGetPointer(arg) = InvalidOid;
}

static void
mqi_check_sequence(Oid seqrelid)
{
	static Oid	checked = InvalidOid;	/* reset when pg_sequence changes */
	static bool callback_registered = false;
	HeapTuple	tup;
	int64		cache;

	if (seqrelid == checked)
		return;
	if (!callback_registered)
	{
		CacheRegisterSyscacheCallback(SEQRELID, mqi_sequence_changed, PointerGetDatum(&checked));
		callback_registered = true;
	}
	tup = SearchSysCache1(SEQRELID, ObjectIdGetDatum(seqrelid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "mq: sequence %u not found", seqrelid);
	cache = ((Form_pg_sequence) GETSTRUCT(tup))->seqcache;
	ReleaseSysCache(tup);
	if (cache != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("sequence \"mq.message_id_seq\" has CACHE " INT64_FORMAT ", mq needs CACHE 1", cache),
				 errhint("Run ALTER SEQUENCE mq.message_id_seq CACHE 1.")));
	checked = seqrelid;
}

/* A fresh message id (ids are not the dequeue order: seq is). */
static int64
mq_next_id(void)
{
	Oid			seqrelid = mq_sequence_relid();

	mqi_check_sequence(seqrelid);
	return nextval_internal(seqrelid, false);
}

int64
mq_new_message_id(void)
{
	return mq_next_id();
}

/*
 * The seqs of n rows that are ready now: the first is the clock
 * (MQ_SEQ_OF), but above every seq handed out for this queue before, and
 * the rest follow it, so that seqs of ready inserts only grow, whatever the
 * clock does, and a published bound (max_seq read before) stays below them.
 * A batch takes its n with one exchange.  Without a shared entry, the clock
 * alone.
 */
static uint64
mq_ready_seq(MqQueueShared *qs, int n)
{
	uint64		seq = MQ_SEQ_OF(GetCurrentTimestamp());
	uint64		cur;

	Assert(n >= 1);
	if (qs == NULL)
		return seq;
	cur = pg_atomic_read_u64(&qs->max_seq);
	for (;;)
	{
		uint64		first = Max(seq, cur + 1);

		if (pg_atomic_compare_exchange_u64(&qs->max_seq, &cur, first + n - 1))
			return first;
	}
}

/*
 * Publish what a row is about to be, before it exists: a lower bound of its
 * seq if it is ready now, else of its vt (src/shmem.c).  A delay that ends
 * before the clock published makes the message ready now.  Returns whether
 * it goes into the ready table.
 */
static bool
mqi_publish(MqQueueShared *qs, TimestampTz visible_at)
{
	bool		ready = visible_at <= mq_now();

	if (!ready && visible_at <= mq_slot_note_wait(qs))
		ready = true;
	if (ready)
		mq_slot_note_insert(qs);
	return ready;
}

#define MQI_READY_NCOLS MQW_READY_NCOLS

/* mqi_write_row's statement: $1..$12 the ready columns, $13 vt. */
static void
mqi_write_row_planned(MqQueue *q, Datum *values, bool *isnull, TimestampTz visible_at,
					  MqPlanKind kind)
{
	Datum		args[MQI_READY_NCOLS + 1];
	char		nulls[MQI_READY_NCOLS + 1];
	int			rc;

	for (int i = 0; i < MQI_READY_NCOLS; i++)
	{
		args[i] = values[i];
		nulls[i] = isnull[i] ? 'n' : ' ';
	}
	args[MQI_READY_NCOLS] = TimestampTzGetDatum(visible_at);
	nulls[MQI_READY_NCOLS] = ' ';
	rc = mq_plan_run(q, kind, args, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "mq: insert into queue \"%s\" failed: %s", q->name,
			 SPI_result_code_string(rc));
}

/*
 * Write one row: into the ready table with seq, or the wait table.  Without
 * a plan (mq_insert_row) unless the table was altered by hand; the plans
 * take their arguments in the ready table's order, vt last.
 */
static void
mqi_write_row(MqQueue *q, MqQueueShared *qs, MqOutMessage *m, uint64 seq,
			  TimestampTz visible_at, bool ready)
{
	Datum		row[3 + MQI_READY_NCOLS];	/* a wait row; a ready row from [3] */
	bool		isnull[3 + MQI_READY_NCOLS];
	Datum	   *values = row + 3;
	bool	   *nulls = isnull + 3;

	memset(isnull, 0, sizeof(isnull));
	row[0] = TimestampTzGetDatum(visible_at);
	row[1] = BoolGetDatum(false);
	row[2] = (Datum) 0;
	isnull[2] = true;			/* receipt: not leased */
	values[0] = Int64GetDatum((int64) seq);
	values[1] = Int64GetDatum(m->id);
	values[2] = Int32GetDatum(m->priority);
	values[3] = Int32GetDatum(m->attempt);
	values[4] = TimestampTzGetDatum(m->enqueued_at);
	values[5] = JsonbPGetDatum(m->message);
	values[6] = m->headers ? JsonbPGetDatum(m->headers) : (Datum) 0;
	values[7] = m->dedup_key ? PointerGetDatum(m->dedup_key) : (Datum) 0;
	values[8] = m->last_error ? PointerGetDatum(m->last_error) : (Datum) 0;
	values[9] = m->group_key ? PointerGetDatum(m->group_key) : (Datum) 0;
	values[10] = Int64GetDatum(m->gseq);
	values[11] = Int64GetDatum(m->run_start);
	nulls[6] = !m->headers;
	nulls[7] = !m->dedup_key;
	nulls[8] = !m->last_error;
	nulls[9] = nulls[10] = !m->group_key;
	nulls[11] = (m->run_start == 0);

	if (ready)
		mq_lane_register(qs, m->priority);
	/* a ready row is a wait row without its first three columns */
	if (!mq_insert_row(ready ? q->ready_relid : q->wait_relid,
					   ready ? mq_wait_cols + MQW_SEQ : mq_wait_cols,
					   ready ? MQI_READY_NCOLS : 3 + MQI_READY_NCOLS,
					   ready ? values : row, ready ? nulls : isnull))
		mqi_write_row_planned(q, values, nulls, visible_at,
							  ready ? MQP_INSERT_READY : MQP_INSERT_WAIT);
	if (ready)
	{
		mq_xact_count(qs, MQC_READY, 1);
		if (m->group_key)
			mq_xact_count(qs, MQC_GROUPS_READY, 1);
	}
	else
	{
		mq_xact_note_due(qs, visible_at);
		mq_xact_count(qs, MQC_DELAYED, 1);
	}
}

/*
 * Lock the row of group key in q's group table, creating it if there is
 * none and create is set; the lock is held until the transaction ends.
 * Returns whether the row existed (the group has messages); *tid gets the
 * row's place.  A send waits here for the transaction of an earlier send to
 * the same group, so a group's messages are in the order their sends took
 * this lock.
 */
bool
mq_group_lock(MqQueue *q, MqQueueShared *qs, text *key, bool create, ItemPointerData *tid)
{
	Datum		arg = PointerGetDatum(key);
	bool		isnull;

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (mq_plan_run(q, MQP_GROUP_LOCK, &arg, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "mq: could not lock a group of queue \"%s\"", q->name);
		if (SPI_processed == 1)
		{
			*tid = *(ItemPointer) DatumGetPointer(mq_spi_get(0, 1, &isnull));
			return true;
		}
		if (!create)
			return false;

		/*
		 * A concurrent first send to the group makes this wait for its
		 * transaction; if that commits, the row is there to lock.
		 */
		if (mq_plan_run(q, MQP_GROUP_CREATE, &arg, NULL, false, 1) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "mq: could not create a group of queue \"%s\"", q->name);
		if (SPI_processed == 1)
		{
			*tid = *(ItemPointer) DatumGetPointer(mq_spi_get(0, 1, &isnull));
			mq_xact_count(qs, MQC_GROUPS, 1);
			return false;
		}
	}
}

/*
 * Put m in as the current message of its group (or as any message without
 * a group): ready now into the ready table with a fresh seq, else delayed
 * into the wait table.
 */
void
mq_insert_head(MqQueue *q, MqQueueShared *qs, MqOutMessage *m, TimestampTz visible_at)
{
	bool		ready = mqi_publish(qs, visible_at);
	uint64		seq = ready ? mq_ready_seq(qs, 1) : MQ_SEQ_OF(visible_at);

	mqi_write_row(q, qs, m, seq, visible_at, ready);
}

/* Put m at the end of its group's backlog (the group's lock is held). */
static void
mqi_write_backlog(MqQueue *q, MqQueueShared *qs, MqOutMessage *m, TimestampTz visible_at)
{
	Datum		values[11];
	char		nulls[11];

	values[0] = PointerGetDatum(m->group_key);
	values[1] = Int64GetDatum(m->gseq);
	values[2] = TimestampTzGetDatum(visible_at);
	values[3] = Int64GetDatum(m->id);
	values[4] = Int32GetDatum(m->priority);
	values[5] = Int32GetDatum(m->attempt);
	values[6] = TimestampTzGetDatum(m->enqueued_at);
	values[7] = JsonbPGetDatum(m->message);
	values[8] = m->headers ? JsonbPGetDatum(m->headers) : (Datum) 0;
	values[9] = m->dedup_key ? PointerGetDatum(m->dedup_key) : (Datum) 0;
	values[10] = m->last_error ? PointerGetDatum(m->last_error) : (Datum) 0;
	memset(nulls, ' ', sizeof(nulls));
	if (!m->headers)
		nulls[8] = 'n';
	if (!m->dedup_key)
		nulls[9] = 'n';
	if (!m->last_error)
		nulls[10] = 'n';
	if (mq_plan_run(q, MQP_BACKLOG_INSERT, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "mq: insert into the backlog of queue \"%s\" failed", q->name);
	mq_xact_count(qs, MQC_BACKLOG, 1);
}

/*
 * A message of a group whose lock this transaction holds: the group's
 * current message if head (the group had none), else the last of its
 * backlog.  Its place in the group (gseq) is taken now, under the lock.
 */
void
mq_insert_grouped_locked(MqQueue *q, MqQueueShared *qs, MqOutMessage *m,
						 TimestampTz visible_at, bool head)
{
	m->gseq = mq_next_id();
	m->run_start = 0;
	if (head)
		mq_insert_head(q, qs, m, visible_at);
	else
		mqi_write_backlog(q, qs, m, visible_at);
}

/*
 * Where a message without a group goes, published before anything is
 * allocated for it: ready now (*seq a fresh seq) or delayed.  A grouped
 * message publishes once it knows where it goes (mq_insert_head).
 */
static bool
mqi_publish_ungrouped(MqQueueShared *qs, MqOutMessage *m, TimestampTz visible_at, uint64 *seq)
{
	bool		ready = false;

	*seq = 0;
	if (m->group_key == NULL)
	{
		ready = mqi_publish(qs, visible_at);
		*seq = ready ? mq_ready_seq(qs, 1) : MQ_SEQ_OF(visible_at);
	}
	return ready;
}

/*
 * Write m, its id taken: without a group as mqi_publish_ungrouped placed
 * it, else under its group's lock, as the group's current message or at
 * the end of its backlog.
 */
static void
mqi_place(MqQueue *q, MqQueueShared *qs, MqOutMessage *m, TimestampTz visible_at,
		  uint64 seq, bool ready, bool fresh_id)
{
	if (m->group_key != NULL)
	{
		ItemPointerData tid;
		bool		busy = mq_group_lock(q, qs, m->group_key, true, &tid);

		mq_insert_grouped_locked(q, qs, m, visible_at, !busy);
	}
	else
		mqi_write_row(q, qs, m, seq, visible_at, ready);
	if (fresh_id)
		mq_xact_count(qs, MQC_TOTAL_SENT, 1);
}

/*
 * Insert one message without a dedup key (only mq.send claims one:
 * mq_send_message).  m->id is used when fresh_id is false (redrives keep
 * their id); otherwise a new id is taken, and the message counts as sent.
 */
int64
mq_insert_message(MqQueue *q, MqQueueShared *qs, MqOutMessage *m, TimestampTz visible_at,
				  bool fresh_id)
{
	uint64		seq;
	bool		ready = mqi_publish_ungrouped(qs, m, visible_at, &seq);

	Assert(m->dedup_key == NULL || !fresh_id);
	if (fresh_id)
		m->id = mq_next_id();
	mqi_place(q, qs, m, visible_at, seq, ready, fresh_id);
	return m->id;
}

/*
 * The live message of q that holds dedup key m->dedup_key, or 0 once m
 * (its id taken) holds it.  A claim that conflicts waits for the
 * transaction of the concurrent one.
 */
static int64
mqi_claim_dedup(MqQueue *q, MqOutMessage *m)
{
	Datum		args[2] = {PointerGetDatum(m->dedup_key), Int64GetDatum(m->id)};
	int			rc;

	for (;;)
	{
		rc = mq_plan_run(q, MQP_DEDUP_CLAIM, args, NULL, false, 1);
		if (rc != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "mq: dedup claim failed: %s", SPI_result_code_string(rc));
		if (SPI_processed == 1)
			return 0;
		rc = mq_plan_run(q, MQP_DEDUP_FIND, args, NULL, false, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "mq: dedup lookup failed: %s", SPI_result_code_string(rc));
		if (SPI_processed == 1)
			return mq_spi_int8(0, 1);
		/* the holder was acked meanwhile: claim again */
	}
}

/*
 * Send one fresh message (mq.send).  With a dedup key, an existing live
 * message with that key wins: its id is returned with *duplicate set.
 */
int64
mq_send_message(MqQueue *q, MqQueueShared *qs, MqOutMessage *m, TimestampTz visible_at,
				bool *duplicate)
{
	uint64		seq;
	bool		ready = mqi_publish_ungrouped(qs, m, visible_at, &seq);
	int64		holder;

	*duplicate = false;
	m->id = mq_next_id();
	if (m->dedup_key != NULL && (holder = mqi_claim_dedup(q, m)) != 0)
	{
		*duplicate = true;
		return holder;
	}
	mqi_place(q, qs, m, visible_at, seq, ready, true);
	return m->id;
}

/*
 * Delayed messages and retries that are due (vt between low and now; the
 * first limit of them, highest priority first, *more set if there may be
 * others) leave the wait table with one statement, MQP_DUE_READY, and
 * join the ready table, each in its place by due time: its seq is that of
 * its due time, below the seqs of messages sent after it came due, so it
 * may be behind a lane head.  No bound is published for them: the
 * transaction records each row, its own lane scans start at it
 * (src/take.c), and its commit moves the head back to it unless it took
 * the row itself (src/xact.c).  Each row is written as a send's is,
 * without a plan.  Returns how many rows moved.
 */
int64
mq_insert_due(MqQueue *q, MqQueueShared *qs, TimestampTz low, TimestampTz now, int limit,
			  bool *more)
{
	Datum		args[3] = {TimestampTzGetDatum(low), TimestampTzGetDatum(now), Int32GetDatum(limit)};
	SPITupleTable *rows;
	uint64		n;

	if (mq_plan_run(q, MQP_DUE_READY, args, NULL, false, 0) != SPI_OK_DELETE_RETURNING)
		elog(ERROR, "mq: could not scan due messages of \"%s\"", q->name);
	rows = SPI_tuptable;
	n = SPI_processed;
	*more = (n >= limit);
	for (uint64 i = 0; i < n; i++)
	{
		MqOutMessage m;
		bool		isnull;
		TimestampTz due = DatumGetTimestampTz(SPI_getbinval(rows->vals[i], rows->tupdesc, 12, &isnull));
		uint64		seq = MQ_SEQ_OF(due);

		mq_read_message_row(rows, i, &m);
		mqi_write_row(q, qs, &m, seq, due, true);
		mq_xact_promoted_row(qs, m.priority, seq, m.id);
	}
	mq_xact_count(qs, MQC_DELAYED, -(int64) n);
	return (int64) n;
}

/*
 * Insert a batch of fresh messages with one statement; their ids go to
 * ids[], in input order.  messages holds n messages, no nulls (checked by
 * the caller); headers may be NULL (no headers at all).
 */
void
mq_insert_batch(MqQueue *q, MqQueueShared *qs, int n, ArrayType *messages, ArrayType *headers,
				int32 priority, TimestampTz enqueued_at, TimestampTz visible_at,
				int64 *ids)
{
	bool		ready = mqi_publish(qs, visible_at);	/* before allocating */
	Datum	   *idds = palloc(sizeof(Datum) * n);
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int			rc;

	for (int i = 0; i < n; i++)
	{
		ids[i] = mq_next_id();
		idds[i] = Int64GetDatum(ids[i]);
	}
	/* ready: the seq before n consecutive ones; delayed: the due time's */
	args[0] = Int64GetDatum((int64) (ready ? mq_ready_seq(qs, n) - 1 : MQ_SEQ_OF(visible_at)));
	args[1] = PointerGetDatum(messages);
	args[2] = Int32GetDatum(priority);
	args[3] = TimestampTzGetDatum(enqueued_at);
	args[4] = PointerGetDatum(headers);
	nulls[4] = headers ? ' ' : 'n';
	args[5] = TimestampTzGetDatum(visible_at);
	args[6] = PointerGetDatum(construct_array(idds, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	if (ready)
	{
		mq_lane_register(qs, priority);
		rc = mq_plan_run(q, MQP_INSERT_READY_BATCH, args, nulls, false, 0);
		mq_xact_count(qs, MQC_READY, n);
	}
	else
	{
		rc = mq_plan_run(q, MQP_INSERT_WAIT_BATCH, args, nulls, false, 0);
		mq_xact_note_due(qs, visible_at);
		mq_xact_count(qs, MQC_DELAYED, n);
	}
	mq_xact_count(qs, MQC_TOTAL_SENT, n);
	if (rc != SPI_OK_INSERT || SPI_processed != (uint64) n)
		elog(ERROR, "mq: batch insert into queue \"%s\" failed: %s", q->name,
			 SPI_result_code_string(rc));
}
