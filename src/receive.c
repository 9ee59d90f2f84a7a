/*-------------------------------------------------------------------------
 *
 * receive.c
 *	  Consuming: mq.receive leases messages (moves them from the ready
 *	  table to the wait table with a lease end), mq.pop takes and deletes
 *	  them at once.
 *
 * Both first promote whatever is due in the wait table (expired leases,
 * delayed messages, retries), so they are correct without the worker;
 * then they scan the ready table lane by lane, each from its head, with
 * FOR UPDATE SKIP LOCKED.  A leased message past max_attempts is
 * dead-lettered here instead of being handed out.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "mq.h"

PG_FUNCTION_INFO_V1(mq_receive);
PG_FUNCTION_INFO_V1(mq_pop);

/* One row taken from the ready table. */
typedef struct MqTaken
{
	int64		id;
	Datum		message;
	Datum		headers;
	bool		headers_null;
	int32		attempt;
	TimestampTz enqueued_at;
	TimestampTz visible_at;
	int32		priority;
	int64		seq;
	bool		dead;			/* past max_attempts: dead-lettered instead */
} MqTaken;

static int
mqr_cmp(const void *a, const void *b)
{
	const MqTaken *x = a;
	const MqTaken *y = b;

	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return 0;
}

/* Copy SPI result rows into taken[], in the caller's memory context. */
static int
mqr_collect(MqTaken *taken, int n, MemoryContext mcxt)
{
	MemoryContext old = MemoryContextSwitchTo(mcxt);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		MqTaken    *t = &taken[n++];
		bool		isnull;

		t->id = mq_spi_int8(i, 1);
		t->message = PointerGetDatum(DatumGetJsonbPCopy(mq_spi_get(i, 2, &isnull)));
		t->headers = mq_spi_get(i, 3, &t->headers_null);
		if (!t->headers_null)
			t->headers = PointerGetDatum(DatumGetJsonbPCopy(t->headers));
		t->attempt = DatumGetInt32(mq_spi_get(i, 4, &isnull));
		t->enqueued_at = DatumGetTimestampTz(mq_spi_get(i, 5, &isnull));
		t->visible_at = DatumGetTimestampTz(mq_spi_get(i, 6, &isnull));
		t->priority = DatumGetInt32(mq_spi_get(i, 7, &isnull));
		t->seq = mq_spi_int8(i, 8);
		t->dead = false;
	}
	MemoryContextSwitchTo(old);
	return n;
}

/*
 * Take up to quantity rows from the ready table, lane by lane from the
 * heads when the lanes are usable, else in one ordered scan.
 */
static int
mqr_take(MqQueue *q, bool lease, int quantity, TimestampTz visible_at,
		 MqTaken *taken, MemoryContext mcxt)
{
	MqQueueShared *qs = mq_queue_shared(q);
	MqLane		lanes[MQ_MAX_LANES];
	int			nlanes = 0;
	int			n = 0;
	bool		use_lanes;

	use_lanes = mq_copy_lanes(q, qs, lanes, &nlanes) && !IsolationUsesXactSnapshot();
	if (use_lanes)
	{
		uint64		cap = mq_head_cap(qs);
		SPIPlanPtr	plan = mq_queue_plan(q, lease ? MQP_LEASE_LANE : MQP_POP_LANE);

		for (int i = 0; i < nlanes && n < quantity; i++)
		{
			Datum		args[4];
			int			rc;
			int			first = n;
			uint64		max_seq = 0;

			args[0] = Int32GetDatum(quantity - n);
			args[1] = TimestampTzGetDatum(visible_at);
			args[2] = Int32GetDatum(lanes[i].priority);
			args[3] = Int64GetDatum((int64) lanes[i].head);
			mq_xact_lane_scan_begin(qs, lanes[i].priority, lanes[i].head,
									lanes[i].generation, cap);
			rc = mq_exec_plan(plan, args, NULL, false, 0);
			if (rc != SPI_OK_INSERT_RETURNING && rc != SPI_OK_SELECT)
				elog(ERROR, "mq: dequeue from \"%s\" failed: %s", q->name,
					 SPI_result_code_string(rc));
			if (SPI_processed == 0)
				continue;
			n = mqr_collect(taken, n, mcxt);
			for (int j = first; j < n; j++)
				max_seq = Max(max_seq, (uint64) taken[j].seq);
			mq_xact_lane_scan_end(qs, lanes[i].priority, max_seq);
		}
	}
	else
	{
		Datum		args[2];
		int			rc;

		args[0] = Int32GetDatum(quantity);
		args[1] = TimestampTzGetDatum(visible_at);
		/* no heads to keep: any abort sends every lane back to the start */
		mq_xact_all_lanes_back(qs);
		rc = mq_exec_plan(mq_queue_plan(q, lease ? MQP_LEASE_ANY : MQP_POP_ANY),
							  args, NULL, false, 0);
		if (rc != SPI_OK_INSERT_RETURNING && rc != SPI_OK_SELECT)
			elog(ERROR, "mq: dequeue from \"%s\" failed: %s", q->name,
				 SPI_result_code_string(rc));
		n = mqr_collect(taken, 0, mcxt);
	}

	mq_xact_count(qs, MQC_READY, -n);
	if (lease)
	{
		mq_xact_count(qs, MQC_IN_FLIGHT, n);
		if (n > 0)
			mq_note_due(q, qs, visible_at);
	}
	else
		mq_xact_count(qs, MQC_TOTAL_ACKED, n);
	if (n > 1)
		qsort(taken, n, sizeof(MqTaken), mqr_cmp);
	return n;
}

/*
 * A message may reach the ready table with attempts used up (max_attempts
 * lowered by alter_queue): it is dead-lettered, never delivered.
 */
static void
mqr_enforce_max_attempts(MqQueue *q, bool lease, MqTaken *taken, int n)
{
	MqQueueShared *qs = mq_queue_shared(q);

	for (int i = 0; i < n; i++)
	{
		MqOutMessage m;

		if (taken[i].attempt <= q->max_attempts)
			continue;
		taken[i].dead = true;
		memset(&m, 0, sizeof(m));
		if (lease)
		{
			Datum		args[2] = {Int64GetDatum(taken[i].id), (Datum) 0};
			char		nulls[2] = {' ', 'n'};

			if (mq_exec_plan(mq_queue_plan(q, MQP_DEAD_TAKE), args, nulls, false, 1) !=
				SPI_OK_DELETE_RETURNING || SPI_processed != 1)
				elog(ERROR, "mq: could not dead-letter message " INT64_FORMAT, taken[i].id);
			mq_read_dead_row(&m);
			mq_xact_count(qs, MQC_IN_FLIGHT, -1);
		}
		else
		{
			m.id = taken[i].id;
			m.priority = taken[i].priority;
			m.enqueued_at = taken[i].enqueued_at;
			m.message = DatumGetJsonbP(taken[i].message);
			m.headers = taken[i].headers_null ? NULL : DatumGetJsonbP(taken[i].headers);
			mq_xact_count(qs, MQC_TOTAL_ACKED, -1);
		}
		m.attempt = taken[i].attempt - 1;
		mq_dead_letter(q, &m, mq_now());
	}
}

static void
mqr_emit(FunctionCallInfo fcinfo, MqTaken *taken, int n)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	for (int i = 0; i < n; i++)
	{
		Datum		values[7];
		bool		nulls[7] = {false, false, false, false, false, false, false};

		if (taken[i].dead)
			continue;
		values[0] = Int64GetDatum(taken[i].id);
		values[1] = taken[i].message;
		values[2] = taken[i].headers;
		nulls[2] = taken[i].headers_null;
		values[3] = Int32GetDatum(taken[i].attempt);
		values[4] = TimestampTzGetDatum(taken[i].enqueued_at);
		values[5] = TimestampTzGetDatum(taken[i].visible_at);
		values[6] = Int32GetDatum(taken[i].priority);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

static int
mqr_quantity_arg(FunctionCallInfo fcinfo)
{
	int32		quantity;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("quantity must not be null")));
	quantity = PG_GETARG_INT32(1);
	if (quantity < 1 || quantity > MQ_MAX_QUANTITY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("quantity %d is out of range", quantity),
				 errdetail("Quantity must be between 1 and %d.", MQ_MAX_QUANTITY)));
	return quantity;
}

/* One look: promote what is due, then take up to quantity messages. */
static int
mqr_take_once(MqQueue *q, bool lease, int quantity, Interval *vt,
			  MqTaken *taken, MemoryContext mcxt)
{
	TimestampTz now;
	int			n;

	mq_promote_due(q, false);

	/* leases are wait rows: publish the clock before computing their vt */
	if (lease)
		(void) mq_slot_note_wait(mq_queue_shared(q));
	now = mq_now();
	n = mqr_take(q, lease, quantity,
				 lease ? mq_add_interval(now, vt ? vt : &q->visibility_timeout) : now,
				 taken, mcxt);
	mqr_enforce_max_attempts(q, lease, taken, n);
	return n;
}

static int
mqr_delivered(MqTaken *taken, int n)
{
	int			k = 0;

	for (int i = 0; i < n; i++)
		if (!taken[i].dead)
			k++;
	return k;
}

static Datum
mqr_dequeue(FunctionCallInfo fcinfo, bool lease)
{
	char	   *name = mq_queue_name_arg(fcinfo, 0);
	int			quantity = mqr_quantity_arg(fcinfo);
	Interval   *vt = NULL;
	Interval   *wait = NULL;
	MqQueue    *q;
	MqTaken    *taken;
	volatile int n = 0;
	MemoryContext mcxt = CurrentMemoryContext;

	if (lease)
	{
		vt = PG_ARGISNULL(2) ? NULL : PG_GETARG_INTERVAL_P(2);
		if (vt && !mq_interval_positive(vt))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("visibility_timeout must be positive")));
		if (!PG_ARGISNULL(3))
		{
			wait = PG_GETARG_INTERVAL_P(3);
			if (mq_interval_negative(wait))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("wait must not be negative")));
			if (!mq_interval_positive(wait))
				wait = NULL;
		}
	}

	mq_srf_materialize(fcinfo);
	mq_connect();
	q = mq_queue_lookup(name, false);
	taken = MemoryContextAlloc(mcxt, sizeof(MqTaken) * quantity);

	if (wait == NULL)
		n = mqr_take_once(q, lease, quantity, vt, taken, mcxt);
	else
	{
		MqQueueShared *qs = mq_queue_shared(q);
		TimestampTz deadline = mq_add_interval(mq_now(), wait);

		/*
		 * Look, and sleep until a commit makes messages ready (or one comes
		 * due) if there were none; src/wait.c says why no wake-up is lost.
		 */
		mq_wait_register(qs);
		PG_TRY();
		{
			for (;;)
			{
				uint64		generation = mq_wait_generation(qs);

				n = mqr_take_once(q, lease, quantity, vt, taken, mcxt);
				if (mqr_delivered(taken, n) > 0 || mq_now() >= deadline)
					break;
				pgstat_report_wait_start(PG_WAIT_EXTENSION);
				mq_wait_sleep(qs, generation, deadline);
				pgstat_report_wait_end();
			}
		}
		PG_FINALLY();
		{
			mq_wait_unregister(qs);
		}
		PG_END_TRY();
	}
	mq_finish();
	mqr_emit(fcinfo, taken, n);
	return (Datum) 0;
}

Datum
mq_receive(PG_FUNCTION_ARGS)
{
	return mqr_dequeue(fcinfo, true);
}

Datum
mq_pop(PG_FUNCTION_ARGS)
{
	return mqr_dequeue(fcinfo, false);
}
