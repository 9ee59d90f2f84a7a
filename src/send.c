/*-------------------------------------------------------------------------
 *
 * send.c
 *	  Producing: mq.send and mq.send_batch.  Both insert through
 *	  src/insert.c, in the caller's transaction.  A batch with group keys
 *	  locks its groups first, in key order, so that two batches never
 *	  wait for each other in a cycle, then inserts in input order.
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
	m.group_key = PG_NARGS() > 6 && !PG_ARGISNULL(6) ? PG_GETARG_TEXT_PP(6) : NULL;
	mq_check_message(m.message);
	mq_check_group_key(m.group_key);
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
	id = mq_send_message(q, mq_queue_shared(q), &m,
						 delay ? mq_add_interval(now, delay) : now, &duplicate);
	mq_call_end(&call);
	PG_RETURN_INT64(id);
}

typedef struct MqsGroup
{
	text	   *key;
	bool		head;			/* no message yet: the first one is its current one */
} MqsGroup;

static int
mqs_key_cmp(const void *a, const void *b)
{
	text	   *x = ((const MqsGroup *) a)->key;
	text	   *y = ((const MqsGroup *) b)->key;
	int			lx = VARSIZE_ANY_EXHDR(x);
	int			ly = VARSIZE_ANY_EXHDR(y);
	int			c = memcmp(VARDATA_ANY(x), VARDATA_ANY(y), Min(lx, ly));

	return c != 0 ? c : (lx < ly ? -1 : lx > ly ? 1 : 0);
}

/*
 * A batch with group keys (keys[i] NULL: no group), one message at a time:
 * every group is locked first, in key order; then each message goes in, in
 * input order, as its group's current message if the group had none yet.
 */
static void
mqs_insert_grouped_batch(MqQueue *q, MqQueueShared *qs, int n, Datum *messages, Datum *headers,
						 bool *hnulls, int32 priority, TimestampTz now,
						 TimestampTz visible_at, text **keys, int64 *ids)
{
	int			grouped = 0;	/* messages inserted here, not by mq_insert_message */
	MqsGroup   *groups = palloc(sizeof(MqsGroup) * n);
	int			ngroups = 0;

	for (int i = 0; i < n; i++)
		if (keys[i] != NULL)
			groups[ngroups++].key = keys[i];
	if (ngroups > 1)
		qsort(groups, ngroups, sizeof(MqsGroup), mqs_key_cmp);
	{
		int			j = 0;

		for (int i = 0; i < ngroups; i++)
		{
			ItemPointerData tid;

			if (j > 0 && mqs_key_cmp(&groups[j - 1], &groups[i]) == 0)
				continue;
			groups[j].key = groups[i].key;
			groups[j].head = !mq_group_lock(q, qs, groups[j].key, true, &tid);
			j++;
		}
		ngroups = j;
	}
	for (int i = 0; i < n; i++)
	{
		MqOutMessage m;

		memset(&m, 0, sizeof(m));
		m.message = DatumGetJsonbP(messages[i]);
		m.headers = (headers && !hnulls[i]) ? DatumGetJsonbP(headers[i]) : NULL;
		m.priority = priority;
		m.enqueued_at = now;
		m.group_key = keys[i];
		if (keys[i] == NULL)
		{
			ids[i] = mq_insert_message(q, qs, &m, visible_at, true);
			continue;
		}
		{
			MqsGroup	probe = {keys[i], false};
			MqsGroup   *g = bsearch(&probe, groups, ngroups, sizeof(MqsGroup), mqs_key_cmp);

			m.id = ids[i] = mq_new_message_id();
			mq_insert_grouped_locked(q, qs, &m, visible_at, g->head);
			g->head = false;
			grouped++;
		}
	}
	/* mq_insert_message counted the others */
	mq_xact_count(qs, MQC_TOTAL_SENT, grouped);
}

Datum
mq_send_batch(PG_FUNCTION_ARGS)
{
	char	   *name = mq_queue_name_arg(fcinfo, 0);
	ArrayType  *messages;
	ArrayType  *headers = PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2);
	Interval   *delay = PG_ARGISNULL(3) ? NULL : PG_GETARG_INTERVAL_P(3);
	int32		priority = PG_ARGISNULL(4) ? 0 : PG_GETARG_INT32(4);
	text	   *group_key = PG_NARGS() > 5 && !PG_ARGISNULL(5) ? PG_GETARG_TEXT_PP(5) : NULL;
	ArrayType  *group_keys = PG_NARGS() > 6 && !PG_ARGISNULL(6) ? PG_GETARG_ARRAYTYPE_P(6) : NULL;
	text	  **keys = NULL;
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
	if (group_key != NULL && group_keys != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("group_key and group_keys cannot both be given"),
				 errhint("Use group_key for one group for the whole batch, group_keys for one per message.")));
	mq_check_group_key(group_key);
	if (group_key != NULL)
	{
		keys = palloc(sizeof(text *) * Max(nmsg, 1));
		for (int i = 0; i < nmsg; i++)
			keys[i] = group_key;
	}
	else if (group_keys != NULL)
	{
		Datum	   *kvals;
		bool	   *knulls;
		int			nkeys;

		if (ARR_NDIM(group_keys) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("group_keys must be a one-dimensional array")));
		deconstruct_array(group_keys, TEXTOID, -1, false, TYPALIGN_INT, &kvals, &knulls, &nkeys);
		if (nkeys != nmsg)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("messages and group_keys arrays have different lengths"),
					 errdetail("There are %d messages and %d group keys.", nmsg, nkeys)));
		keys = palloc(sizeof(text *) * Max(nmsg, 1));
		for (int i = 0; i < nmsg; i++)
		{
			keys[i] = knulls[i] ? NULL : DatumGetTextPP(kvals[i]);
			mq_check_group_key(keys[i]);
		}
	}

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
		MqQueueShared *qs = mq_queue_shared(q);

		if (keys != NULL)
			mqs_insert_grouped_batch(q, qs, nmsg, mvals, hvals, hnulls, priority, now,
									 visible_at, keys, ids);
		else
			mq_insert_batch(q, qs, nmsg, messages, headers, priority, now, visible_at, ids);
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
