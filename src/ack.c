/*-------------------------------------------------------------------------
 *
 * ack.c
 *	  Settling leased messages: mq.ack (one id or an array), mq.nack
 *	  (a retry after the backoff, or a dead letter on the last attempt:
 *	  src/retry.c), and mq.extend, the heartbeat that moves a lease end.
 *	  An acked message of a group lets its group go on (src/group.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "util.h"
#include "shmem.h"
#include "catalog.h"
#include "xact.h"
#include "plans.h"
#include "retry.h"
#include "group.h"

PG_FUNCTION_INFO_V1(mq_ack);
PG_FUNCTION_INFO_V1(mq_ack_many);
PG_FUNCTION_INFO_V1(mq_nack);
PG_FUNCTION_INFO_V1(mq_extend);

static int64
mqa_id_arg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("message id must not be null")));
	return PG_GETARG_INT64(1);
}

/* The optional receipt of argument argno; false if absent or NULL. */
static bool
mqa_receipt_arg(FunctionCallInfo fcinfo, int argno, int64 *receipt)
{
	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return false;
	*receipt = mq_receipt_parse(PG_GETARG_TEXT_PP(argno));
	return true;
}

/* Receipts (text[]) as an int8[] of as many elements as there are ids. */
static ArrayType *
mqa_receipts_arg(ArrayType *receipts, int nids)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	deconstruct_array(receipts, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n != nids || ARR_NDIM(receipts) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ids and receipts arrays have different lengths"),
				 errdetail("There are %d ids and %d receipts.", nids, n)));
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("receipts must not contain null")));
		elems[i] = Int64GetDatum(mq_receipt_parse(DatumGetTextPP(elems[i])));
	}
	return construct_array(elems, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/* A message an ack deleted: what the counters and its group need. */
typedef struct MqaAcked
{
	bool		leased;
	text	   *key;			/* its group's, or NULL */
	int64		gseq;
	int64		run_start;		/* 0: not in a run */
	int64		id;
} MqaAcked;

static int
mqa_settled_cmp(const void *a, const void *b)
{
	const MqaAcked *x = a;
	const MqaAcked *y = b;
	int			lx = VARSIZE_ANY_EXHDR(x->key);
	int			ly = VARSIZE_ANY_EXHDR(y->key);
	int			c = memcmp(VARDATA_ANY(x->key), VARDATA_ANY(y->key), Min(lx, ly));

	if (c != 0)
		return c;
	if (lx != ly)
		return lx < ly ? -1 : 1;
	return x->gseq < y->gseq ? -1 : x->gseq > y->gseq ? 1 : 0;
}

/*
 * Count n acked messages, and let the groups of grouped ones go on (in
 * group-key order, so that two acks of many lock groups in one order).
 */
static void
mqa_settle(MqQueue *q, MqaAcked *acked, int64 n)
{
	MqQueueShared *qs = mq_queue_shared(q);
	int64		leased = 0;
	int64		grouped_leased = 0;
	MqaAcked   *settled = NULL;
	int			nsettled = 0;

	for (int64 i = 0; i < n; i++)
	{
		if (acked[i].leased)
			leased++;
		if (acked[i].key == NULL)
			continue;
		if (acked[i].leased)
			grouped_leased++;
		if (settled == NULL)
			settled = palloc(sizeof(MqaAcked) * n);
		settled[nsettled++] = acked[i];
	}
	mq_xact_count(qs, MQC_IN_FLIGHT, -leased);
	mq_xact_count(qs, MQC_GROUPS_IN_FLIGHT, -grouped_leased);
	mq_xact_count(qs, MQC_DELAYED, -(n - leased));
	mq_xact_count(qs, MQC_TOTAL_ACKED, n);
	if (nsettled > 1)
		qsort(settled, nsettled, sizeof(MqaAcked), mqa_settled_cmp);
	for (int i = 0; i < nsettled; i++)
		mq_group_settled(q, qs, settled[i].key, settled[i].gseq, settled[i].run_start,
						 settled[i].id);
}

/* The rows an ack statement returned (leased, group_key, gseq, run_start, id). */
static MqaAcked *
mqa_acked_from_spi(void)
{
	MqaAcked   *acked = palloc(sizeof(MqaAcked) * Max(SPI_processed, 1));

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		key;

		acked[i].leased = DatumGetBool(mq_spi_get(i, 1, &isnull));
		key = mq_spi_get(i, 2, &isnull);
		acked[i].key = isnull ? NULL : DatumGetTextPP(key);
		acked[i].gseq = mq_spi_int8(i, 3);
		acked[i].run_start = mq_spi_int8(i, 4);
		acked[i].id = mq_spi_int8(i, 5);
	}
	return acked;
}

/* An id to ack, with the receipt its lease must have (fenced acks). */
typedef struct MqaTarget
{
	int64		id;
	int64		receipt;
} MqaTarget;

static int
mqa_target_cmp(const void *a, const void *b)
{
	const MqaTarget *x = a;
	const MqaTarget *y = b;

	return x->id < y->id ? -1 : x->id > y->id ? 1 : 0;
}

/* mq_delete_key's filter of a fenced ack: leased, with this receipt */
static bool
mqa_receipt_matches(const Datum *values, const bool *isnull, void *arg)
{
	return DatumGetBool(values[MQW_LEASED]) && !isnull[MQW_RECEIPT] &&
		DatumGetInt64(values[MQW_RECEIPT]) == *(int64 *) arg;
}

/*
 * Delete the wait rows of n targets (sorted by id: two acks of many lock
 * rows in one order, as the statement's index scan does) without a plan,
 * then release their dedup keys; -1, having done nothing, if the wait
 * table was altered by hand or the queue archives what it acks (the
 * archive reads the messages, which may be stored out of line): the
 * caller runs the statement.
 */
static int64
mqa_delete(MqQueue *q, MqaTarget *targets, int n, bool fenced, MqaAcked *acked)
{
	MqRowDelete *d;
	text	  **dedup_keys = NULL;
	int64		nacked = 0;

	if (q->has_retention ||
		(d = mq_delete_begin(q->wait_relid, mq_wait_cols, MQW_NCOLS, "id")) == NULL)
		return -1;
	for (int i = 0; i < n; i++)
	{
		Datum	   *values;
		bool	   *isnull;
		MqaAcked   *a = &acked[nacked];

		if (i > 0 && targets[i].id == targets[i - 1].id &&
			nacked > 0 && acked[nacked - 1].id == targets[i].id)
			continue;			/* acked already, under another receipt */
		if (!mq_delete_key(d, targets[i].id, fenced ? mqa_receipt_matches : NULL,
						   &targets[i].receipt, &values, &isnull))
			continue;
		a->leased = DatumGetBool(values[MQW_LEASED]);
		a->key = isnull[MQW_GROUP_KEY] ? NULL :
			DatumGetTextPCopy(values[MQW_GROUP_KEY]);
		a->gseq = isnull[MQW_GSEQ] ? 0 : DatumGetInt64(values[MQW_GSEQ]);
		a->run_start = isnull[MQW_RUN_START] ? 0 : DatumGetInt64(values[MQW_RUN_START]);
		a->id = targets[i].id;
		if (!isnull[MQW_DEDUP_KEY])
		{
			if (dedup_keys == NULL)
				dedup_keys = palloc0(sizeof(text *) * n);
			dedup_keys[nacked] = DatumGetTextPCopy(values[MQW_DEDUP_KEY]);
		}
		nacked++;
	}
	mq_delete_end(d);
	for (int64 i = 0; dedup_keys != NULL && i < nacked; i++)
	{
		Datum		args[2];

		if (dedup_keys[i] == NULL)
			continue;
		args[0] = PointerGetDatum(dedup_keys[i]);
		args[1] = Int64GetDatum(acked[i].id);
		if (mq_plan_run(q, MQP_DEDUP_RELEASE, args, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "mq: could not release a dedup key of queue \"%s\"", q->name);
	}
	return nacked;
}

/*
 * Ack n targets of q (n > 1: sorted by id) and settle them; the number
 * acked.  args are the statement's, for a queue mqa_delete cannot serve.
 */
static int64
mqa_ack(MqQueue *q, MqaTarget *targets, int n, bool fenced, MqPlanKind kind, Datum *args)
{
	MqaAcked   *acked = palloc(sizeof(MqaAcked) * Max(n, 1));
	int64		nacked = mqa_delete(q, targets, n, fenced, acked);

	if (nacked < 0)
	{
		int			rc = mq_plan_run(q, kind, args, NULL, false, 0);

		if (rc != SPI_OK_SELECT)
			elog(ERROR, "mq: ack failed: %s", SPI_result_code_string(rc));
		acked = mqa_acked_from_spi();
		nacked = (int64) SPI_processed;
	}
	mqa_settle(q, acked, nacked);
	return nacked;
}

Datum
mq_ack(PG_FUNCTION_ARGS)
{
	char	   *name = mq_queue_name_arg(fcinfo, 0);
	MqaTarget	target = {mqa_id_arg(fcinfo), 0};
	bool		fenced = mqa_receipt_arg(fcinfo, 2, &target.receipt);
	Datum		args[2] = {Int64GetDatum(target.id), Int64GetDatum(target.receipt)};
	MqQueue    *q;
	MqCall		call;
	int64		n;

	mq_require_primary(fcinfo);
	mq_call_begin(&call);
	q = mq_queue_lookup(name, false);
	mq_require_privilege(q, call.caller, MQ_PRIV_RECEIVE);
	n = mqa_ack(q, &target, 1, fenced, fenced ? MQP_ACK_RECEIPT : MQP_ACK, args);
	mq_call_end(&call);
	PG_RETURN_BOOL(n > 0);
}

Datum
mq_ack_many(PG_FUNCTION_ARGS)
{
	char	   *name = mq_queue_name_arg(fcinfo, 0);
	Datum		args[2];
	ArrayType  *ids;
	ArrayType  *receipts = NULL;
	MqaTarget  *targets;
	int			n;
	MqQueue    *q;
	MqCall		call;
	int64		nacked;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("message ids must not be null")));
	ids = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(ids) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("message ids must be a one-dimensional array")));
	if (array_contains_nulls(ids))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("message ids must not contain nulls")));
	n = ArrayGetNItems(ARR_NDIM(ids), ARR_DIMS(ids));
	if (PG_NARGS() > 2 && !PG_ARGISNULL(2))
		receipts = mqa_receipts_arg(PG_GETARG_ARRAYTYPE_P(2), n);
	targets = palloc(sizeof(MqaTarget) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		targets[i].id = ((int64 *) ARR_DATA_PTR(ids))[i];
		targets[i].receipt = receipts ? ((int64 *) ARR_DATA_PTR(receipts))[i] : 0;
	}
	if (n > 1)
		qsort(targets, n, sizeof(MqaTarget), mqa_target_cmp);
	args[0] = PointerGetDatum(ids);
	args[1] = PointerGetDatum(receipts);

	mq_require_primary(fcinfo);
	mq_call_begin(&call);
	q = mq_queue_lookup(name, false);
	mq_require_privilege(q, call.caller, MQ_PRIV_RECEIVE);
	nacked = mqa_ack(q, targets, n, receipts != NULL,
					 receipts ? MQP_ACK_MANY_RECEIPT : MQP_ACK_MANY, args);
	mq_call_end(&call);
	PG_RETURN_INT64(nacked);
}

Datum
mq_nack(PG_FUNCTION_ARGS)
{
	char	   *name = mq_queue_name_arg(fcinfo, 0);
	int64		id = mqa_id_arg(fcinfo);
	Interval   *delay = PG_ARGISNULL(2) ? NULL : PG_GETARG_INTERVAL_P(2);
	text	   *error = PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_PP(3);
	MqQueue    *q;
	MqCall		call;
	MqQueueShared *qs;
	int64		receipt = 0;
	bool		fenced = mqa_receipt_arg(fcinfo, 4, &receipt);
	Datum		args[2] = {Int64GetDatum(id), Int64GetDatum(fenced ? receipt : 0)};
	char		nulls[2] = {' ', fenced ? ' ' : 'n'};
	int32		attempt;
	bool		isnull;
	bool		leased;
	bool		grouped;

	if (delay && mq_interval_negative(delay))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("delay must not be negative")));
	if (delay)
		mq_check_interval_max("delay", delay);

	mq_require_primary(fcinfo);
	mq_call_begin(&call);
	q = mq_queue_lookup(name, false);
	mq_require_privilege(q, call.caller, MQ_PRIV_RECEIVE);
	qs = mq_queue_shared(q);
	if (mq_plan_run(q, MQP_NACK_LOCK, args, nulls, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "mq: nack lookup failed");
	if (SPI_processed == 0)
	{
		mq_call_end(&call);
		PG_RETURN_BOOL(false);
	}
	attempt = DatumGetInt32(mq_spi_get(0, 1, &isnull));
	leased = DatumGetBool(mq_spi_get(0, 2, &isnull));
	grouped = DatumGetBool(mq_spi_get(0, 3, &isnull));
	if (!leased)
	{
		mq_call_end(&call);
		PG_RETURN_BOOL(false);
	}

	/* a retry is a wait row: publish the clock its time counts from */
	mq_attempt_failed(q, qs, id, attempt, mq_slot_note_wait(qs), delay, error, grouped,
					  mq_now());
	mq_call_end(&call);
	PG_RETURN_BOOL(true);
}

Datum
mq_extend(PG_FUNCTION_ARGS)
{
	char	   *name = mq_queue_name_arg(fcinfo, 0);
	int64		id = mqa_id_arg(fcinfo);
	Interval   *vt;
	MqQueue    *q;
	MqCall		call;
	int64		receipt = 0;
	bool		fenced = mqa_receipt_arg(fcinfo, 3, &receipt);
	Datum		args[3];
	char		nulls[3] = {' ', ' ', fenced ? ' ' : 'n'};
	TimestampTz until;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("visibility_timeout must not be null")));
	if (!mq_interval_positive(PG_GETARG_INTERVAL_P(2)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("visibility_timeout must be positive")));
	vt = PG_GETARG_INTERVAL_P(2);
	mq_check_interval_max("visibility_timeout", vt);

	mq_require_primary(fcinfo);
	mq_call_begin(&call);
	q = mq_queue_lookup(name, false);
	mq_require_privilege(q, call.caller, MQ_PRIV_RECEIVE);
	until = mq_add_interval(mq_slot_note_wait(mq_queue_shared(q)), vt);
	args[0] = Int64GetDatum(id);
	args[1] = TimestampTzGetDatum(until);
	args[2] = Int64GetDatum(fenced ? receipt : 0);
	if (mq_plan_run(q, MQP_EXTEND, args, nulls, false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "mq: extend failed");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("message " INT64_FORMAT " of queue \"%s\" is not in flight", id, name),
				 fenced ?
				 errdetail("Its lease ended, or it was acked, or it was never received, or the receipt is not that of its current lease.") :
				 errdetail("Its lease ended, or it was acked, or it was never received.")));
	mq_call_end(&call);
	PG_RETURN_TIMESTAMPTZ(until);
}
