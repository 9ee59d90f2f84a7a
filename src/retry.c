/*-------------------------------------------------------------------------
 *
 * retry.c
 *	  What a failed attempt leads to: the backoff before the next one
 *	  (exponential, capped, with jitter), or, once the attempts are used
 *	  up, a dead letter: into the queue's dead_letter_queue, or into
 *	  mq.dead_letters.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#if PG_VERSION_NUM >= 150000
#include "common/pg_prng.h"
#endif
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "util.h"
#include "shmem.h"
#include "catalog.h"
#include "xact.h"
#include "plans.h"
#include "insert.h"
#include "retry.h"

/* Uniform in [0, 1). */
static float8
mqy_random(void)
{
#if PG_VERSION_NUM >= 150000
	return pg_prng_double(&pg_global_prng_state);
#else
	return (float8) random() / ((float8) MAX_RANDOM_VALUE + 1);
#endif
}

/*
 * The queue's backoff before retry number attempt + 1:
 * min(retry_delay * 2^(attempt-1), retry_delay_max), then a uniform jitter
 * that keeps between half and all of it, so that consumers failing
 * together do not retry together.
 */
Interval *
mq_backoff(MqQueue *q, int32 attempt)
{
	Interval   *delay = &q->retry_delay;
	float8		factor = 1.0;

	for (int i = 1; i < attempt && factor < 1e9; i++)
		factor *= 2.0;
	delay = DatumGetIntervalP(DirectFunctionCall2(interval_mul,
												  PointerGetDatum(delay),
												  Float8GetDatum(factor)));
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp,
										  PointerGetDatum(delay),
										  PointerGetDatum(&q->retry_delay_max))) > 0)
		delay = &q->retry_delay_max;
	return DatumGetIntervalP(DirectFunctionCall2(interval_mul,
												 PointerGetDatum(delay),
												 Float8GetDatum(0.5 + 0.5 * mqy_random())));
}

/* Headers of the copy sent to a dead-letter queue: what happened, and where. */
static Jsonb *
mqy_dead_headers(MqQueue *q, MqOutMessage *m)
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
		copy.headers = mqy_dead_headers(q, m);
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
			"INSERT INTO mq.dead_letter_store (queue, id, message, headers, attempts,"
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

/*
 * Dead-letter a message of q's wait table that is in flight (its lease
 * ended with its last attempt, or it was nacked then), with error as its
 * last error if not NULL.  just_leased: the lease was taken by the current
 * statement and never handed out, so it is not an attempt.
 */
void
mq_dead_letter_leased(MqQueue *q, int64 id, text *error, bool just_leased,
					  TimestampTz dead_at)
{
	Datum		args[2] = {Int64GetDatum(id), PointerGetDatum(error)};
	char		nulls[2] = {' ', error ? ' ' : 'n'};
	MqOutMessage m;

	if (mq_plan_run(q, MQP_DEAD_TAKE, args, nulls, false, 1) !=
		SPI_OK_DELETE_RETURNING || SPI_processed != 1)
		elog(ERROR, "mq: could not dead-letter message " INT64_FORMAT, id);
	mq_read_message_row(SPI_tuptable, 0, &m);
	if (just_leased)
		m.attempt--;
	mq_xact_count(mq_queue_shared(q), MQC_IN_FLIGHT, -1);
	mq_dead_letter(q, &m, dead_at);
}
