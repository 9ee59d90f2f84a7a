/*-------------------------------------------------------------------------
 *
 * receive.c
 *	  Consuming: mq.receive leases messages (moves them from the ready
 *	  table to the wait table with a lease end), mq.pop takes and deletes
 *	  them at once.
 *
 * Both first promote whatever is due in the wait table (expired leases,
 * delayed messages, retries: src/promote.c), so they are correct without
 * the worker; then they take rows from the ready table (src/take.c).  A
 * message past max_attempts is dead-lettered here instead of being handed
 * out.  A receive with a wait sleeps until a commit makes messages ready
 * (src/wait.c).  A message with a group is handed out only as the current
 * message of its group (src/group.c); with per_group > 1 a receive leases
 * a run of the group's next messages with it (src/take.c), and a pop lets
 * the group go on at once.
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

#include "util.h"
#include "shmem.h"
#include "catalog.h"
#include "wait.h"
#include "xact.h"
#include "plans.h"
#include "take.h"
#include "deliveries.h"
#include "retry.h"
#include "promote.h"
#include "group.h"

PG_FUNCTION_INFO_V1(mq_receive);
PG_FUNCTION_INFO_V1(mq_pop);

/*
 * A message may reach the ready table with attempts used up (max_attempts
 * lowered by alter_queue): it is dead-lettered, never delivered.
 */
static void
mqr_enforce_max_attempts(MqQueue *q, bool lease, MqTaken *taken, int n)
{
	MqQueueShared *qs = mq_queue_shared(q);
	MqDeadTarget to = {0};

	for (int i = 0; i < n; i++)
	{
		MqOutMessage m;

		if (taken[i].attempt <= q->max_attempts)
			continue;
		taken[i].dead = true;
		if (lease)
		{
			mq_dead_letter_leased(q, qs, &to, taken[i].id, NULL, true, mq_now());
			continue;
		}
		memset(&m, 0, sizeof(m));
		m.id = taken[i].id;
		m.priority = taken[i].priority;
		m.enqueued_at = taken[i].enqueued_at;
		m.message = DatumGetJsonbP(taken[i].message);
		m.headers = taken[i].headers_null ? NULL : DatumGetJsonbP(taken[i].headers);
		m.attempt = taken[i].attempt - 1;
		m.group_key = taken[i].group_key;
		m.gseq = taken[i].gseq;
		m.run_start = taken[i].run_start;
		mq_xact_count(qs, MQC_TOTAL_ACKED, -1);
		mq_dead_letter(q, qs, &to, &m, mq_now());
	}
}

/*
 * A delivery of one of these messages that ended in an abort (src/deliveries.c)
 * was an attempt too: this one counts after it.
 */
static void
mqr_count_aborted_deliveries(MqQueue *q, MqTaken *taken, int n)
{
	for (int i = 0; i < n; i++)
	{
		int32		aborted = mq_deliveries_take(q->ready_relid, taken[i].id);
		Datum		args[2];

		if (aborted < taken[i].attempt)
			continue;
		taken[i].attempt = aborted + 1;
		args[0] = Int64GetDatum(taken[i].id);
		args[1] = Int32GetDatum(taken[i].attempt);
		if (mq_plan_run(q, MQP_SET_ATTEMPT, args, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "mq: could not count the attempts of message " INT64_FORMAT, taken[i].id);
	}
}

static void
mqr_emit(FunctionCallInfo fcinfo, MqTaken *taken, int n)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	for (int i = 0; i < n; i++)
	{
		Datum		values[9];
		bool		nulls[9] = {false, false, false, false, false, false, false, false, false};

		values[0] = Int64GetDatum(taken[i].id);
		values[1] = taken[i].message;
		values[2] = taken[i].headers;
		nulls[2] = taken[i].headers_null;
		values[3] = Int32GetDatum(taken[i].attempt);
		values[4] = TimestampTzGetDatum(taken[i].enqueued_at);
		values[5] = TimestampTzGetDatum(taken[i].visible_at);
		values[6] = Int32GetDatum(taken[i].priority);
		nulls[7] = taken[i].receipt_null;
		values[7] = nulls[7] ? (Datum) 0 : PointerGetDatum(mq_receipt_text(taken[i].receipt));
		nulls[8] = taken[i].group_key == NULL;
		values[8] = nulls[8] ? (Datum) 0 : PointerGetDatum(taken[i].group_key);
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

/*
 * Rows just taken: deliveries that rolled back count, a message past its
 * attempts is dead-lettered instead (marked dead), leases are noted in the
 * journal of deliveries.  Returns how many are kept, compacted at the start.
 */
static int
mqr_settle_taken(MqQueue *q, bool lease, MqTaken *taken, int got)
{
	int			kept = 0;

	if (lease)
		mqr_count_aborted_deliveries(q, taken, got);
	mqr_enforce_max_attempts(q, lease, taken, got);
	for (int i = 0; i < got; i++)
	{
		if (taken[i].dead)
			continue;
		if (lease)
			mq_deliveries_note(q->ready_relid, taken[i].id, taken[i].attempt);
		taken[kept++] = taken[i];
	}
	return kept;
}

/*
 * per_group > 1: after each grouped message leased (the current one of its
 * group), a run of the group's next messages, as many as per_group - 1 and
 * the quantity leave room for.  The runs follow their heads in taken.
 */
static int
mqr_take_runs(MqQueue *q, int quantity, int per_group, TimestampTz visible_at,
			  MqTaken *taken, int n, MemoryContext mcxt)
{
	MqTaken    *out = MemoryContextAlloc(mcxt, sizeof(MqTaken) * quantity);
	int			k = 0;

	for (int i = 0; i < n; i++)
	{
		int			room;

		out[k++] = taken[i];
		room = Min(per_group - 1, quantity - k - (n - i - 1));
		if (taken[i].group_key != NULL && room > 0)
		{
			int			got = mq_take_run(q, &out[k - 1], room, visible_at, out + k, mcxt);

			k += mqr_settle_taken(q, true, out + k, got);
		}
	}
	memcpy(taken, out, sizeof(MqTaken) * k);
	pfree(out);
	return k;
}

/*
 * One look: promote what is due, then take up to quantity messages (far:
 * the promotion looks past its window for the next due time, see
 * src/promote.c; for a waiter's looks after the first).  A
 * message past its attempts is dead-lettered, not delivered, and the look
 * takes the next one in its place (a few times at most), so that a poison
 * message does not hide the messages behind it.  A popped message of a
 * group lets its group go on.
 */
static int
mqr_take_once(MqQueue *q, bool lease, int quantity, int per_group, Interval *vt, bool far,
			  MqTaken *taken, MemoryContext mcxt)
{
	MqQueueShared *qs = mq_queue_shared(q);
	int			n = 0;
	TimestampTz lease_end = 0;

	mq_promote_due(q, qs, quantity, far);
	for (int round = 0; round < 4 && n < quantity; round++)
	{
		TimestampTz now;
		int			got;
		int			kept = 0;

		/* leases are wait rows: publish the clock before computing their vt */
		if (lease)
			(void) mq_slot_note_wait(qs);
		now = mq_now();
		lease_end = lease ? mq_add_interval(now, vt ? vt : &q->visibility_timeout) : now;
		got = mq_take_ready(q, lease, quantity - n, lease_end, taken + n, mcxt);
		kept = mqr_settle_taken(q, lease, taken + n, got);
		if (!lease)
			for (int i = n; i < n + kept; i++)
				if (taken[i].group_key != NULL)
					mq_group_settled(q, qs, taken[i].group_key, taken[i].gseq,
									 taken[i].run_start, taken[i].id);
		n += kept;
		if (kept == got)
			break;				/* nothing was dead-lettered: that was all */
	}
	if (lease && per_group > 1 && n > 0 && n < quantity)
		n = mqr_take_runs(q, quantity, per_group, lease_end, taken, n, mcxt);
	return n;
}

static Datum
mqr_dequeue(FunctionCallInfo fcinfo, bool lease)
{
	char	   *name = mq_queue_name_arg(fcinfo, 0);
	int			quantity = mqr_quantity_arg(fcinfo);
	Interval   *vt = NULL;
	Interval   *wait = NULL;
	int			per_group = 1;
	MqQueue    *q;
	MqTaken    *taken;
	volatile int n = 0;
	MemoryContext mcxt = CurrentMemoryContext;
	MqCall		call;

	if (lease)
	{
		vt = PG_ARGISNULL(2) ? NULL : PG_GETARG_INTERVAL_P(2);
		if (vt && !mq_interval_positive(vt))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("visibility_timeout must be positive")));
		if (vt)
			mq_check_interval_max("visibility_timeout", vt);
		if (!PG_ARGISNULL(3))
		{
			wait = PG_GETARG_INTERVAL_P(3);
			if (mq_interval_negative(wait))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("wait must not be negative")));
			mq_check_interval_max("wait", wait);
			if (!mq_interval_positive(wait))
				wait = NULL;
		}
		if (PG_NARGS() > 4 && !PG_ARGISNULL(4))
		{
			per_group = PG_GETARG_INT32(4);
			if (per_group < 1 || per_group > MQ_MAX_QUANTITY)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("per_group %d is out of range", per_group),
						 errdetail("per_group must be between 1 and %d.", MQ_MAX_QUANTITY)));
		}
	}

	mq_srf_materialize(fcinfo);
	mq_require_primary(fcinfo);
	mq_call_begin(&call);
	q = mq_queue_lookup(name, false);
	mq_require_privilege(q, call.caller, MQ_PRIV_RECEIVE);
	taken = MemoryContextAlloc(mcxt, sizeof(MqTaken) * quantity);

	if (wait == NULL)
		n = mqr_take_once(q, lease, quantity, per_group, vt, false, taken, mcxt);
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
			for (int looks = 0;; looks++)
			{
				uint64		generation = mq_wait_generation(qs);

				n = mqr_take_once(q, lease, quantity, per_group, vt, looks > 0, taken, mcxt);
				if (n > 0 || mq_now() >= deadline)
					break;
				/* what the empty look left in SPI's memory goes, or a long wait grows */
				mq_spi_reset();
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
	mq_call_end(&call);
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
