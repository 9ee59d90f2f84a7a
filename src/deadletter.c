/*-------------------------------------------------------------------------
 *
 * deadletter.c
 *	  Dead letters: where a message goes once its attempts are used up
 *	  (its queue's dead_letter_queue, or mq.dead_letters), and mq.redrive,
 *	  which moves dead letters back into their queue.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "mq.h"

#define OP(x) " OPERATOR(pg_catalog." x ") "

PG_FUNCTION_INFO_V1(mq_redrive);

/*
 * Read a message row as DEAD_TAKE and DUE_READY return it: (id, priority,
 * attempt, enqueued_at, message, headers, dedup_key, last_error).
 */
void
mq_read_message_row(SPITupleTable *rows, uint64 row, MqOutMessage *m)
{
	HeapTuple	tup = rows->vals[row];
	TupleDesc	desc = rows->tupdesc;
	bool		isnull;
	Datum		d;

	memset(m, 0, sizeof(*m));
	m->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	m->priority = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
	m->attempt = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
	m->enqueued_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 4, &isnull));
	m->message = DatumGetJsonbP(SPI_getbinval(tup, desc, 5, &isnull));
	d = SPI_getbinval(tup, desc, 6, &isnull);
	m->headers = isnull ? NULL : DatumGetJsonbP(d);
	d = SPI_getbinval(tup, desc, 7, &isnull);
	m->dedup_key = isnull ? NULL : DatumGetTextPP(d);
	d = SPI_getbinval(tup, desc, 8, &isnull);
	m->last_error = isnull ? NULL : DatumGetTextPP(d);
}

/* The single row a DEAD_TAKE plan just returned. */
void
mq_read_dead_row(MqOutMessage *m)
{
	mq_read_message_row(SPI_tuptable, 0, m);
}

/* Headers of the copy sent to a dead-letter queue: what happened, and where. */
static Jsonb *
mqd_dead_headers(MqQueue *q, MqOutMessage *m)
{
	static SPIPlanPtr plan = NULL;
	Datum		args[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	bool		isnull;

	if (plan == NULL)
	{
		Oid			types[5] = {JSONBOID, TEXTOID, INT8OID, INT4OID, TEXTOID};

		plan = mq_prepare(
			"SELECT COALESCE($1, '{}'::pg_catalog.jsonb)" OP("||")
			" pg_catalog.jsonb_build_object('mq_dead_letter', pg_catalog.jsonb_build_object("
			"'queue', $2, 'id', $3, 'attempts', $4, 'last_error', $5))", 5, types);
	}
	args[0] = m->headers ? JsonbPGetDatum(m->headers) : (Datum) 0;
	nulls[0] = m->headers ? ' ' : 'n';
	args[1] = CStringGetTextDatum(q->name);
	args[2] = Int64GetDatum(m->id);
	args[3] = Int32GetDatum(m->attempt);
	args[4] = m->last_error ? PointerGetDatum(m->last_error) : (Datum) 0;
	nulls[4] = m->last_error ? ' ' : 'n';
	if (mq_exec_plan(plan, args, nulls, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "mq: could not build dead-letter headers");
	return DatumGetJsonbP(mq_spi_get(0, 1, &isnull));
}

/*
 * Dead-letter a message already removed from its queue's tables.  Its
 * dedup key is released: the message is no longer in the queue.
 */
void
mq_dead_letter(MqQueue *q, MqOutMessage *m, TimestampTz dead_at)
{
	static SPIPlanPtr release_plan = NULL;
	static SPIPlanPtr insert_plan = NULL;
	MqQueueShared *qs = mq_queue_shared(q);
	MqQueue    *dlq = NULL;

	if (m->dedup_key)
	{
		Datum		args[3] = {CStringGetTextDatum(q->name), PointerGetDatum(m->dedup_key),
		Int64GetDatum(m->id)};

		if (release_plan == NULL)
		{
			Oid			types[3] = {TEXTOID, TEXTOID, INT8OID};

			release_plan = mq_prepare(
				"DELETE FROM mq.dedup_keys WHERE queue" OP("=") "$1"
				" AND dedup_key" OP("=") "$2 AND id" OP("=") "$3", 3, types);
		}
		if (mq_exec_plan(release_plan, args, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "mq: could not release dedup key");
	}

	mq_xact_count(qs, MQC_TOTAL_DEAD_LETTERED, 1);

	/* a dead-letter queue that was dropped meanwhile falls back to the table */
	if (q->has_dlq && strcmp(q->dlq, q->name) != 0)
		dlq = mq_queue_lookup(q->dlq, true);
	if (dlq)
	{
		MqOutMessage copy;
		char		dlq_name[NAMEDATALEN];

		strlcpy(dlq_name, q->dlq, NAMEDATALEN);
		memset(&copy, 0, sizeof(copy));
		copy.message = m->message;
		copy.headers = mqd_dead_headers(q, m);
		copy.priority = m->priority;
		copy.enqueued_at = dead_at;
		mq_insert_message(dlq, &copy, dead_at, true);
		mq_xact_count(mq_queue_shared(dlq), MQC_TOTAL_SENT, 1);
		return;
	}

	if (insert_plan == NULL)
	{
		Oid			types[9] = {TEXTOID, INT8OID, JSONBOID, JSONBOID, INT4OID, TEXTOID,
		TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID};

		insert_plan = mq_prepare(
			"INSERT INTO mq.dead_letters (queue, id, message, headers, attempts,"
			" last_error, enqueued_at, dead_at, priority)"
			" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", 9, types);
	}
	{
		Datum		args[9];
		char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

		args[0] = CStringGetTextDatum(q->name);
		args[1] = Int64GetDatum(m->id);
		args[2] = JsonbPGetDatum(m->message);
		args[3] = m->headers ? JsonbPGetDatum(m->headers) : (Datum) 0;
		nulls[3] = m->headers ? ' ' : 'n';
		args[4] = Int32GetDatum(m->attempt);
		args[5] = m->last_error ? PointerGetDatum(m->last_error) : (Datum) 0;
		nulls[5] = m->last_error ? ' ' : 'n';
		args[6] = TimestampTzGetDatum(m->enqueued_at);
		args[7] = TimestampTzGetDatum(dead_at);
		args[8] = Int32GetDatum(m->priority);
		if (mq_exec_plan(insert_plan, args, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "mq: could not insert dead letter");
	}
	mq_xact_count(qs, MQC_DEAD, 1);
}

Datum
mq_redrive(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr take_plan = NULL;
	char	   *name;
	int32		max_messages;
	MqQueue    *q;
	MqQueueShared *qs;
	Datum		args[2];
	TimestampTz now;
	uint64		n;
	SPITupleTable *rows;

	name = mq_queue_name_arg(fcinfo, 0);
	max_messages = PG_ARGISNULL(1) ? PG_INT32_MAX : PG_GETARG_INT32(1);
	if (max_messages < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_messages must be positive")));

	mq_connect();
	q = mq_queue_lookup(name, false);
	qs = mq_queue_shared(q);
	if (take_plan == NULL)
	{
		Oid			types[2] = {TEXTOID, INT4OID};

		take_plan = mq_prepare(
			"DELETE FROM mq.dead_letters WHERE ctid" OP("=") "ANY (ARRAY("
			"SELECT d.ctid FROM mq.dead_letters d WHERE d.queue" OP("=") "$1"
			" ORDER BY d.dead_at, d.id LIMIT $2 FOR UPDATE SKIP LOCKED))"
			" RETURNING id, priority, enqueued_at, message, headers", 2, types);
	}
	args[0] = CStringGetTextDatum(name);
	args[1] = Int32GetDatum(max_messages);
	if (mq_exec_plan(take_plan, args, NULL, false, 0) != SPI_OK_DELETE_RETURNING)
		elog(ERROR, "mq: redrive failed");
	rows = SPI_tuptable;
	n = SPI_processed;
	now = mq_now();
	for (uint64 i = 0; i < n; i++)
	{
		MqOutMessage m;
		bool		isnull;
		Datum		d;
		HeapTuple	tup = rows->vals[i];

		memset(&m, 0, sizeof(m));
		m.id = DatumGetInt64(SPI_getbinval(tup, rows->tupdesc, 1, &isnull));
		m.priority = DatumGetInt32(SPI_getbinval(tup, rows->tupdesc, 2, &isnull));
		m.enqueued_at = DatumGetTimestampTz(SPI_getbinval(tup, rows->tupdesc, 3, &isnull));
		m.message = DatumGetJsonbP(SPI_getbinval(tup, rows->tupdesc, 4, &isnull));
		d = SPI_getbinval(tup, rows->tupdesc, 5, &isnull);
		m.headers = isnull ? NULL : DatumGetJsonbP(d);
		m.attempt = 0;
		mq_insert_message(q, &m, now, false);
	}
	mq_xact_count(qs, MQC_DEAD, -(int64) n);
	mq_finish();
	PG_RETURN_INT64((int64) n);
}
