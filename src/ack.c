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

/* A grouped message an ack removed: its group goes on after it. */
typedef struct MqaSettled
{
	text	   *key;
	int64		gseq;
	int64		run_start;
	int64		id;
} MqaSettled;

static int
mqa_settled_cmp(const void *a, const void *b)
{
	const MqaSettled *x = a;
	const MqaSettled *y = b;
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
 * Count what an ack plan deleted, and let the groups of grouped messages
 * go on (in group-key order, so that two acks of many lock groups in one
 * order); returns the number of rows.
 */
static int64
mqa_count_acked(MqQueue *q)
{
	MqQueueShared *qs = mq_queue_shared(q);
	int64		leased = 0;
	int64		grouped_leased = 0;
	uint64		n = SPI_processed;
	MqaSettled *settled = NULL;
	int			nsettled = 0;

	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		bool		was_leased = DatumGetBool(mq_spi_get(i, 1, &isnull));
		Datum		key = mq_spi_get(i, 2, &isnull);

		if (was_leased)
			leased++;
		if (isnull)
			continue;
		if (was_leased)
			grouped_leased++;
		if (settled == NULL)
			settled = palloc(sizeof(MqaSettled) * n);
		settled[nsettled].key = DatumGetTextPP(key);
		settled[nsettled].gseq = DatumGetInt64(mq_spi_get(i, 3, &isnull));
		settled[nsettled].run_start = DatumGetInt64(mq_spi_get(i, 4, &isnull));
		if (isnull)
			settled[nsettled].run_start = 0;
		settled[nsettled].id = mq_spi_int8(i, 5);
		nsettled++;
	}
	mq_xact_count(qs, MQC_IN_FLIGHT, -leased);
	mq_xact_count(qs, MQC_GROUPS_IN_FLIGHT, -grouped_leased);
	mq_xact_count(qs, MQC_DELAYED, -((int64) n - leased));
	mq_xact_count(qs, MQC_TOTAL_ACKED, (int64) n);
	if (nsettled > 1)
		qsort(settled, nsettled, sizeof(MqaSettled), mqa_settled_cmp);
	for (int i = 0; i < nsettled; i++)
		mq_group_settled(q, qs, settled[i].key, settled[i].gseq, settled[i].run_start,
						 settled[i].id);
	return (int64) n;
}

Datum
mq_ack(PG_FUNCTION_ARGS)
{
	char	   *name = mq_queue_name_arg(fcinfo, 0);
	int64		receipt = 0;
	Datum		args[2] = {Int64GetDatum(mqa_id_arg(fcinfo)), 0};
	bool		fenced = mqa_receipt_arg(fcinfo, 2, &receipt);
	MqQueue    *q;
	MqCall		call;
	int64		n;
	int			rc;

	args[1] = Int64GetDatum(receipt);
	mq_require_primary(fcinfo);
	mq_call_begin(&call);
	q = mq_queue_lookup(name, false);
	mq_require_privilege(q, call.caller, MQ_PRIV_RECEIVE);
	rc = mq_plan_run(q, fenced ? MQP_ACK_RECEIPT : MQP_ACK, args, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "mq: ack failed: %s", SPI_result_code_string(rc));
	n = mqa_count_acked(q);
	mq_call_end(&call);
	PG_RETURN_BOOL(n > 0);
}

Datum
mq_ack_many(PG_FUNCTION_ARGS)
{
	char	   *name = mq_queue_name_arg(fcinfo, 0);
	Datum		args[2];
	bool		fenced = false;
	MqQueue    *q;
	MqCall		call;
	int64		n;
	int			rc;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("message ids must not be null")));
	args[0] = PG_GETARG_DATUM(1);
	if (ARR_NDIM(DatumGetArrayTypeP(args[0])) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("message ids must be a one-dimensional array")));
	if (array_contains_nulls(DatumGetArrayTypeP(args[0])))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("message ids must not contain nulls")));
	if (PG_NARGS() > 2 && !PG_ARGISNULL(2))
	{
		args[1] = PointerGetDatum(mqa_receipts_arg(PG_GETARG_ARRAYTYPE_P(2),
												   ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(args[0])),
																  ARR_DIMS(DatumGetArrayTypeP(args[0])))));
		fenced = true;
	}

	mq_require_primary(fcinfo);
	mq_call_begin(&call);
	q = mq_queue_lookup(name, false);
	mq_require_privilege(q, call.caller, MQ_PRIV_RECEIVE);
	rc = mq_plan_run(q, fenced ? MQP_ACK_MANY_RECEIPT : MQP_ACK_MANY, args, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "mq: ack failed: %s", SPI_result_code_string(rc));
	n = mqa_count_acked(q);
	mq_call_end(&call);
	PG_RETURN_INT64(n);
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
