/*-------------------------------------------------------------------------
 *
 * send.c
 *	  Producing: mq.send and mq.send_batch, and the one insert path every
 *	  message takes into a queue (sends, retries coming due, redrives,
 *	  dead letters routed to another queue).
 *
 * A message ready now goes to the ready table with a fresh seq; a delayed
 * one goes to the wait table.  Both happen in the caller's transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "mq.h"

PG_FUNCTION_INFO_V1(mq_send);
PG_FUNCTION_INFO_V1(mq_send_batch);

MqQueueShared *
mq_queue_shared(MqQueue *q)
{
	return mq_shared_queue(q->ready_relid, q->name);
}

/*
 * A wait row with this vt exists (or will at commit): promotion must look
 * by then.  Noted now and again at commit (src/mq.c).
 */
void
mq_note_due(MqQueue *q, MqQueueShared *qs, TimestampTz vt)
{
	uint64		target = MQ_TS_ENCODE(vt);
	uint64		cur;

	if (qs == NULL)
		return;
	if (q != NULL)
		mq_xact_note_due(qs, vt);
	cur = pg_atomic_read_u64(&qs->next_due);
	while (target < cur &&
		   !pg_atomic_compare_exchange_u64(&qs->next_due, &cur, target))
		;
}

void
mq_check_headers(Jsonb *headers)
{
	if (headers != NULL && !JB_ROOT_IS_OBJECT(headers))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("headers must be a JSON object"),
				 errdetail("Headers are matched as key/value pairs, so arrays and scalars are not accepted.")));
}

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
}

static uint64
mq_next_seq(MqQueueShared *qs)
{
	int64		seq = nextval_internal(mq_sequence_relid(), false);

	if (qs)
	{
		uint64		cur = pg_atomic_read_u64(&qs->max_seq);

		while ((uint64) seq > cur &&
			   !pg_atomic_compare_exchange_u64(&qs->max_seq, &cur, (uint64) seq))
			;
	}
	return (uint64) seq;
}

/*
 * Insert one message.  m->id is used when fresh_id is false (retries,
 * redrives keep their id); otherwise a new id is taken.  With a dedup key
 * and a fresh id, an existing live message with that key wins and its id
 * is returned with *duplicate set.
 */
int64
mq_insert_message(MqQueue *q, MqOutMessage *m, TimestampTz visible_at, bool fresh_id)
{
	return mq_insert_message_dedup(q, m, visible_at, fresh_id, NULL);
}

int64
mq_insert_message_dedup(MqQueue *q, MqOutMessage *m, TimestampTz visible_at,
						bool fresh_id, bool *duplicate)
{
	MqQueueShared *qs = mq_queue_shared(q);
	TimestampTz now = mq_now();
	bool		ready = visible_at <= now;
	uint64		seq;
	Datum		values[10];
	char		nulls[10];
	int			rc;

	if (duplicate)
		*duplicate = false;

	/*
	 * Publish what we are about to insert before it exists: a lower bound of
	 * its seq, or of its vt.  A delay that ends before the clock we publish
	 * makes the message ready now.
	 */
	if (!ready && visible_at <= mq_slot_note_wait(qs))
		ready = true;
	if (ready)
		mq_slot_note_insert(qs);
	seq = mq_next_seq(ready ? qs : NULL);
	if (fresh_id)
		m->id = (int64) seq;

	if (fresh_id && m->dedup_key != NULL)
	{
		Datum		args[2] = {PointerGetDatum(m->dedup_key), Int64GetDatum(m->id)};

		for (;;)
		{
			rc = mq_exec_plan(mq_queue_plan(q, MQP_DEDUP_CLAIM), args, NULL, false, 1);
			if (rc != SPI_OK_INSERT_RETURNING)
				elog(ERROR, "mq: dedup claim failed: %s", SPI_result_code_string(rc));
			if (SPI_processed == 1)
				break;
			rc = mq_exec_plan(mq_queue_plan(q, MQP_DEDUP_FIND), args, NULL, false, 1);
			if (rc != SPI_OK_SELECT)
				elog(ERROR, "mq: dedup lookup failed: %s", SPI_result_code_string(rc));
			if (SPI_processed == 1)
			{
				if (duplicate)
					*duplicate = true;
				return mq_spi_int8(0, 1);
			}
			/* the holder was acked meanwhile: claim again */
		}
	}

	values[0] = Int64GetDatum((int64) seq);
	values[1] = Int64GetDatum(m->id);
	values[2] = Int32GetDatum(m->priority);
	values[3] = Int32GetDatum(m->attempt);
	values[4] = TimestampTzGetDatum(m->enqueued_at);
	values[5] = JsonbPGetDatum(m->message);
	values[6] = m->headers ? JsonbPGetDatum(m->headers) : (Datum) 0;
	values[7] = m->dedup_key ? PointerGetDatum(m->dedup_key) : (Datum) 0;
	values[8] = m->last_error ? PointerGetDatum(m->last_error) : (Datum) 0;
	values[9] = TimestampTzGetDatum(visible_at);
	memset(nulls, ' ', sizeof(nulls));
	if (!m->headers)
		nulls[6] = 'n';
	if (!m->dedup_key)
		nulls[7] = 'n';
	if (!m->last_error)
		nulls[8] = 'n';

	if (ready)
	{
		mq_ready_registered(q, qs, m->priority);
		rc = mq_exec_plan(mq_queue_plan(q, MQP_INSERT_READY), values, nulls, false, 0);
		mq_xact_count(qs, MQC_READY, 1);
	}
	else
	{
		rc = mq_exec_plan(mq_queue_plan(q, MQP_INSERT_WAIT), values, nulls, false, 0);
		mq_note_due(q, qs, visible_at);
		mq_xact_count(qs, MQC_DELAYED, 1);
	}
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "mq: insert into queue \"%s\" failed: %s", q->name,
			 SPI_result_code_string(rc));
	return m->id;
}

/*
 * Insert a batch of fresh messages with one statement; their ids go to
 * ids[], in input order.  headers may be NULL (no headers at all).
 */
static void
mq_insert_batch(MqQueue *q, int n, Datum *messages, ArrayType *headers,
				int32 priority, TimestampTz enqueued_at, TimestampTz visible_at,
				int64 *ids)
{
	MqQueueShared *qs = mq_queue_shared(q);
	bool		ready = visible_at <= mq_now();
	Datum	   *seqs = palloc(sizeof(Datum) * n);
	Datum		args[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	int			rc;

	/* as in mq_insert_message_dedup: publish before allocating */
	if (!ready && visible_at <= mq_slot_note_wait(qs))
		ready = true;
	if (ready)
		mq_slot_note_insert(qs);
	for (int i = 0; i < n; i++)
	{
		ids[i] = (int64) mq_next_seq(ready ? qs : NULL);
		seqs[i] = Int64GetDatum(ids[i]);
	}
	args[0] = PointerGetDatum(construct_array(seqs, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[1] = PointerGetDatum(construct_array(messages, n, JSONBOID, -1, false, TYPALIGN_INT));
	args[2] = Int32GetDatum(priority);
	args[3] = TimestampTzGetDatum(enqueued_at);
	args[4] = PointerGetDatum(headers);
	nulls[4] = headers ? ' ' : 'n';
	args[5] = TimestampTzGetDatum(visible_at);
	if (ready)
	{
		mq_ready_registered(q, qs, priority);
		rc = mq_exec_plan(mq_queue_plan(q, MQP_INSERT_READY_BATCH), args, nulls, false, 0);
		mq_xact_count(qs, MQC_READY, n);
	}
	else
	{
		rc = mq_exec_plan(mq_queue_plan(q, MQP_INSERT_WAIT_BATCH), args, nulls, false, 0);
		mq_note_due(q, qs, visible_at);
		mq_xact_count(qs, MQC_DELAYED, n);
	}
	if (rc != SPI_OK_INSERT || SPI_processed != (uint64) n)
		elog(ERROR, "mq: batch insert into queue \"%s\" failed: %s", q->name,
			 SPI_result_code_string(rc));
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

	memset(&m, 0, sizeof(m));
	m.message = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	m.headers = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	m.priority = PG_ARGISNULL(4) ? 0 : PG_GETARG_INT32(4);
	m.dedup_key = PG_ARGISNULL(5) ? NULL : PG_GETARG_TEXT_PP(5);
	mq_check_message(m.message);
	mq_check_headers(m.headers);
	mq_check_delay(delay);

	mq_connect();
	q = mq_queue_lookup(name, false);
	now = mq_now();
	m.enqueued_at = now;
	id = mq_insert_message_dedup(q, &m, delay ? mq_add_interval(now, delay) : now,
								 true, &duplicate);
	if (!duplicate)
		mq_xact_count(mq_queue_shared(q), MQC_TOTAL_SENT, 1);
	mq_finish();
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
	MqQueueShared *qs;

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
			mq_check_headers(DatumGetJsonbP(hvals[i]));
	}
	if (nmsg > MQ_MAX_QUANTITY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a batch holds at most %d messages", MQ_MAX_QUANTITY)));
	mq_check_delay(delay);

	mq_srf_materialize(fcinfo);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	mq_connect();
	q = mq_queue_lookup(name, false);
	qs = mq_queue_shared(q);
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
	mq_xact_count(qs, MQC_TOTAL_SENT, nmsg);
	mq_finish();
	return (Datum) 0;
}
