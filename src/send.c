/*-------------------------------------------------------------------------
 *
 * send.c
 *	  Producing: mq.send and mq.send_batch.  Both insert through
 *	  src/insert.c, in the caller's transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "util.h"
#include "shmem.h"
#include "catalog.h"
#include "xact.h"
#include "plans.h"
#include "insert.h"

PG_FUNCTION_INFO_V1(mq_send);
PG_FUNCTION_INFO_V1(mq_send_batch);

static void
mq_check_message(Jsonb *message)
{
	if (message == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("message must not be null")));
}

static void
mq_check_delay(Interval *delay)
{
	if (delay != NULL && mq_interval_negative(delay))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("delay must not be negative")));
	if (delay != NULL)
		mq_check_interval_max("delay", delay);
}

Datum
mq_send(PG_FUNCTION_ARGS)
{
	char	   *name = mq_queue_name_arg(fcinfo, 0);
	MqOutMessage m;
	Interval   *delay = PG_ARGISNULL(3) ? NULL : PG_GETARG_INTERVAL_P(3);
	TimestampTz now;
	MqQueue    *q;
	int64		id;
	bool		duplicate;
	MqCall		call;

	memset(&m, 0, sizeof(m));
	m.message = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	m.headers = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	m.priority = PG_ARGISNULL(4) ? 0 : PG_GETARG_INT32(4);
	m.dedup_key = PG_ARGISNULL(5) ? NULL : PG_GETARG_TEXT_PP(5);
	mq_check_message(m.message);
	mq_check_headers(m.headers, false);
	mq_check_delay(delay);
	if (m.dedup_key != NULL && VARSIZE_ANY_EXHDR(m.dedup_key) > MQ_DEDUP_KEY_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dedup_key is too long"),
				 errdetail("A dedup key has at most %d bytes; this one has %zu.",
						   MQ_DEDUP_KEY_MAX, (size_t) VARSIZE_ANY_EXHDR(m.dedup_key))));

	mq_require_primary(fcinfo);
	mq_call_begin(&call);
	q = mq_queue_lookup(name, false);
	mq_require_privilege(q, call.caller, MQ_PRIV_SEND);
	now = mq_now();
	m.enqueued_at = now;
	id = mq_insert_message_dedup(q, &m, delay ? mq_add_interval(now, delay) : now,
								 true, &duplicate);
	mq_call_end(&call);
	PG_RETURN_INT64(id);
}

Datum
mq_send_batch(PG_FUNCTION_ARGS)
{
	char	   *name = mq_queue_name_arg(fcinfo, 0);
	ArrayType  *messages;
	ArrayType  *headers = PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2);
	Interval   *delay = PG_ARGISNULL(3) ? NULL : PG_GETARG_INTERVAL_P(3);
	int32		priority = PG_ARGISNULL(4) ? 0 : PG_GETARG_INT32(4);
	Datum	   *mvals,
			   *hvals = NULL;
	bool	   *mnulls,
			   *hnulls = NULL;
	int			nmsg,
				nhdr = 0;
	ReturnSetInfo *rsinfo;
	MqQueue    *q;
	TimestampTz now,
				visible_at;
	MqCall		call;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("messages must not be null")));
	messages = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(messages) > 1 || (headers && ARR_NDIM(headers) > 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("messages and headers must be one-dimensional arrays")));
	deconstruct_array(messages, JSONBOID, -1, false, TYPALIGN_INT, &mvals, &mnulls, &nmsg);
	if (headers)
	{
		deconstruct_array(headers, JSONBOID, -1, false, TYPALIGN_INT, &hvals, &hnulls, &nhdr);
		if (nhdr != nmsg)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("messages and headers arrays have different lengths"),
					 errdetail("There are %d messages and %d headers.", nmsg, nhdr)));
	}
	for (int i = 0; i < nmsg; i++)
	{
		if (mnulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("message %d of the batch is null", i + 1)));
		if (hvals && !hnulls[i])
			mq_check_headers(DatumGetJsonbP(hvals[i]), false);
	}
	if (nmsg > MQ_MAX_QUANTITY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a batch holds at most %d messages", MQ_MAX_QUANTITY)));
	mq_check_delay(delay);

	mq_srf_materialize(fcinfo);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	mq_require_primary(fcinfo);
	mq_call_begin(&call);
	q = mq_queue_lookup(name, false);
	mq_require_privilege(q, call.caller, MQ_PRIV_SEND);
	now = mq_now();
	visible_at = delay ? mq_add_interval(now, delay) : now;
	if (nmsg > 0)
	{
		int64	   *ids = palloc(sizeof(int64) * nmsg);

		mq_insert_batch(q, nmsg, mvals, headers, priority, now, visible_at, ids);
		for (int i = 0; i < nmsg; i++)
		{
			Datum		id = Int64GetDatum(ids[i]);
			bool		isnull = false;

			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &id, &isnull);
		}
	}
	mq_call_end(&call);
	return (Datum) 0;
}
