/*-------------------------------------------------------------------------
 *
 * retry.c
 *	  What a failed attempt leads to (a nack, a lease that ran out): a
 *	  retry after the backoff (exponential, capped, with jitter), or, once
 *	  the attempts are used up, a dead letter: into the queue's
 *	  dead_letter_queue, or into mq.dead_letters.  A dead letter of a group
 *	  lets the group go on (src/group.c); it keeps its group key, in the
 *	  dead-letter queue (as a message of the group of that name there) and
 *	  in mq.dead_letters (a redrive sends it back into its group).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "util.h"
#include "shmem.h"
#include "catalog.h"
#include "xact.h"
#include "plans.h"
#include "insert.h"
#include "group.h"
#include "retry.h"

/* An interval in microseconds, a month counting 30 days and a day 24 hours. */
static float8
mqy_usecs(const Interval *iv)
{
	return (float8) iv->time + ((float8) iv->day +
								(float8) iv->month * DAYS_PER_MONTH) * USECS_PER_DAY;
}

/*
 * The queue's backoff as MQP_RETRY and MQP_LEASES_EXPIRED take it: its two
 * delays in microseconds (a month counting 30 days, as intervals compare).
 * False, with zeros, if the backoff would reach retry_delay_max out of
 * range (a catalog edited by hand): no retry can be made then.
 */
static bool
mqy_backoff_args(MqQueue *q, Datum *delay_us, Datum *max_us)
{
	float8		d = mqy_usecs(&q->retry_delay);
	float8		m = mqy_usecs(&q->retry_delay_max);
	bool		in_range = !(d > 0 && m >= (float8) PG_INT64_MAX);

	*delay_us = Float8GetDatum(in_range ? d : 0);
	*max_us = Float8GetDatum(in_range ? m : 0);
	return in_range;
}

static void
mqy_backoff_out_of_range(MqQueue *q)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
			 errmsg("retry delay of queue \"%s\" is out of range", q->name)));
}

/* pushJsonbValue of a key, or of a string value (NULL: null) */
static void
mqy_push_string(JsonbParseState **st, JsonbIteratorToken token, const char *str, int len)
{
	JsonbValue	v;

	if (str == NULL)
		v.type = jbvNull;
	else
	{
		v.type = jbvString;
		v.val.string.val = (char *) str;
		v.val.string.len = len;
	}
	pushJsonbValue(st, token, &v);
}

static void
mqy_push_number(JsonbParseState **st, int64 n)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = DatumGetNumeric(DirectFunctionCall1(int8_numeric, Int64GetDatum(n)));
	pushJsonbValue(st, WJB_VALUE, &v);
}

/*
 * How many times a message was dead-lettered into a queue before: the
 * "hops" of its mq_dead_letter header (mq writes it; a send cannot), kept
 * between 0 and a million; 1 if the header has no number there.
 */
static int32
mqy_prior_hops(Jsonb *headers)
{
	JsonbValue *dead;
	JsonbValue *hops;
	float8		n;

	if (headers == NULL || !JB_ROOT_IS_OBJECT(headers) ||
		(dead = getKeyJsonValueFromContainer(&headers->root, "mq_dead_letter", 14, NULL)) == NULL)
		return 0;
	if (dead->type != jbvBinary || !JsonContainerIsObject(dead->val.binary.data) ||
		(hops = getKeyJsonValueFromContainer(dead->val.binary.data, "hops", 4, NULL)) == NULL ||
		hops->type != jbvNumeric)
		return 1;
	n = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(hops->val.numeric)));
	return (int32) round(Min(Max(n, 0), 1000000));
}

/*
 * Headers of the copy sent to a dead-letter queue: the message's own, and
 * mq_dead_letter saying what happened, and where, and in "hops" how many
 * times the message has been dead-lettered into a queue, this time
 * included (*hops).
 */
static Jsonb *
mqy_dead_headers(MqQueue *q, MqOutMessage *m, int32 *hops)
{
	JsonbParseState *st = NULL;
	Jsonb	   *dead;
	JsonbValue	v;

	*hops = mqy_prior_hops(m->headers) + 1;
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	mqy_push_string(&st, WJB_KEY, "queue", 5);
	mqy_push_string(&st, WJB_VALUE, q->name, strlen(q->name));
	mqy_push_string(&st, WJB_KEY, "id", 2);
	mqy_push_number(&st, m->id);
	mqy_push_string(&st, WJB_KEY, "attempts", 8);
	mqy_push_number(&st, m->attempt);
	mqy_push_string(&st, WJB_KEY, "last_error", 10);
	mqy_push_string(&st, WJB_VALUE, m->last_error ? VARDATA_ANY(m->last_error) : NULL,
					m->last_error ? VARSIZE_ANY_EXHDR(m->last_error) : 0);
	mqy_push_string(&st, WJB_KEY, "hops", 4);
	mqy_push_number(&st, *hops);
	dead = JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
	v.type = jbvBinary;
	v.val.binary.data = &dead->root;
	v.val.binary.len = VARSIZE(dead) - VARHDRSZ;
	return mq_headers_set(m->headers, "mq_dead_letter", &v);
}

/*
 * The dead-letter queue of q, with its shared entry, looked up at the first
 * dead letter of a phase and kept for the rest of it: a dead-letter queue
 * that was dropped meanwhile (or none) sends them to the table.
 */
static MqQueue *
mqy_target(MqQueue *q, MqDeadTarget *to)
{
	if (!to->resolved && q->has_dlq && strcmp(q->dlq, q->name) != 0)
	{
		to->dlq = mq_queue_lookup(q->dlq, true);
		if (to->dlq)
			to->dqs = mq_queue_shared(to->dlq);
	}
	to->resolved = true;
	return to->dlq;
}

static void mqy_route_dead_letter(MqQueue *q, MqQueueShared *qs, MqDeadTarget *to,
								  MqOutMessage *m, TimestampTz dead_at);

/*
 * Dead-letter a message already removed from its queue's tables, its dedup
 * key released (the statement that removed it did that): its group goes
 * on without it.
 */
void
mq_dead_letter(MqQueue *q, MqQueueShared *qs, MqDeadTarget *to, MqOutMessage *m,
			   TimestampTz dead_at)
{
	mqy_route_dead_letter(q, qs, to, m, dead_at);
	if (m->group_key != NULL)
		mq_group_settled(q, qs, m->group_key, m->gseq, m->run_start, m->id);
}

static void
mqy_route_dead_letter(MqQueue *q, MqQueueShared *qs, MqDeadTarget *to, MqOutMessage *m,
					  TimestampTz dead_at)
{
	static SPIPlanPtr insert_plan = NULL;
	MqQueue    *dlq;

	mq_xact_count(qs, MQC_TOTAL_DEAD_LETTERED, 1);

	dlq = mqy_target(q, to);
	if (dlq)
	{
		MqOutMessage copy;
		int32		hops;

		memset(&copy, 0, sizeof(copy));
		copy.message = m->message;
		copy.headers = mqy_dead_headers(q, m, &hops);
		copy.priority = m->priority;
		copy.enqueued_at = dead_at;
		copy.group_key = m->group_key;
		/* past the last hop it goes to the table: no cycle of queues is endless */
		if (hops <= MQ_MAX_DEAD_LETTER_HOPS)
		{
			mq_insert_message(dlq, to->dqs, &copy, dead_at, true);
			return;
		}
	}

	if (insert_plan == NULL)
	{
		Oid			types[10] = {TEXTOID, INT8OID, JSONBOID, JSONBOID, INT4OID, TEXTOID,
		TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID, TEXTOID};

		insert_plan = mq_prepare(
			"INSERT INTO mq.dead_letter_store (queue, id, message, headers, attempts,"
			" last_error, enqueued_at, dead_at, priority, group_key)"
			" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)", 10, types);
	}
	{
		Datum		args[10];
		char		nulls[10] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

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
		args[9] = m->group_key ? PointerGetDatum(m->group_key) : (Datum) 0;
		nulls[9] = m->group_key ? ' ' : 'n';
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
mq_dead_letter_leased(MqQueue *q, MqQueueShared *qs, MqDeadTarget *to, int64 id, text *error,
					  bool just_leased, TimestampTz dead_at)
{
	Datum		args[2] = {Int64GetDatum(id), PointerGetDatum(error)};
	char		nulls[2] = {' ', error ? ' ' : 'n'};
	MqOutMessage m;

	if (mq_plan_run(q, MQP_DEAD_TAKE, args, nulls, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "mq: could not dead-letter message " INT64_FORMAT, id);
	mq_read_message_row(SPI_tuptable, 0, &m);
	if (just_leased)
		m.attempt--;
	mq_xact_count(qs, MQC_IN_FLIGHT, -1);
	if (m.group_key != NULL)
		mq_xact_count(qs, MQC_GROUPS_IN_FLIGHT, -1);
	mq_dead_letter(q, qs, to, &m, dead_at);
}

/*
 * Leases ids[] of q (n of them, ngrouped of groups) are due again, with
 * error as their last error if not NULL: at *base (NULL: the end of each
 * lease, so that an expired lease's backoff counts from when it ended)
 * plus delay, or plus the queue's backoff when delay is NULL:
 * min(retry_delay * 2^(attempt-1), retry_delay_max), then a uniform jitter
 * that keeps between half and all of it, so that consumers failing
 * together do not retry together.  One statement computes it row by row
 * (MQP_RETRY), from the two delays in microseconds (a month counting 30
 * days, as intervals compare); what the transaction records, once.
 * Returns the first due time.
 */
static TimestampTz
mqy_schedule_retries(MqQueue *q, MqQueueShared *qs, int n, Datum *ids, const TimestampTz *base,
					 Interval *delay, text *error, int ngrouped)
{
	Datum		args[6];
	char		nulls[6] = {' ', base ? ' ' : 'n', delay ? ' ' : 'n', error ? ' ' : 'n', ' ', ' '};
	TimestampTz first = DT_NOEND;
	bool		isnull;

	if (n == 0)
		return first;
	if (!mqy_backoff_args(q, &args[4], &args[5]) && delay == NULL)
		mqy_backoff_out_of_range(q);
	args[0] = PointerGetDatum(construct_array(ids, n, INT8OID, sizeof(int64),
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[1] = base ? TimestampTzGetDatum(*base) : (Datum) 0;
	args[2] = PointerGetDatum(delay);
	args[3] = PointerGetDatum(error);
	if (mq_plan_run(q, MQP_RETRY, args, nulls, false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "mq: could not schedule the retries of queue \"%s\"", q->name);
	for (uint64 i = 0; i < SPI_processed; i++)
		first = Min(first, DatumGetTimestampTz(mq_spi_get(i, 1, &isnull)));
	mq_xact_note_due(qs, first);
	mq_xact_count(qs, MQC_IN_FLIGHT, -n);
	mq_xact_count(qs, MQC_DELAYED, n);
	mq_xact_count(qs, MQC_GROUPS_IN_FLIGHT, -ngrouped);
	return first;
}

/*
 * The attempt of a leased message failed (a nack): past max_attempts it is
 * dead-lettered, else it is due again at base plus delay (the queue's
 * backoff when delay is NULL).  Returns the retry time, or DT_NOEND for a
 * dead letter.
 */
TimestampTz
mq_attempt_failed(MqQueue *q, MqQueueShared *qs, int64 id, int32 attempt,
				  TimestampTz base, Interval *delay, text *error, bool grouped,
				  TimestampTz now)
{
	MqDeadTarget to = {0};
	Datum		idd = Int64GetDatum(id);

	if (attempt >= q->max_attempts)
	{
		mq_dead_letter_leased(q, qs, &to, id, error, false, now);
		return DT_NOEND;
	}
	return mqy_schedule_retries(q, qs, 1, &idd, &base, delay, error, grouped ? 1 : 0);
}

/*
 * Leases of q that ran out (vt between low and now; the first limit of
 * them, *more set if there may be others): each is a failed attempt, ended
 * by one statement, MQP_LEASES_EXPIRED: a retry after the backoff from the
 * lease's end, or past max_attempts a dead letter, routed then, in the
 * order the leases ended, to a dead-letter queue looked up once.  Returns
 * how many leases ended.
 */
int64
mq_leases_expired(MqQueue *q, MqQueueShared *qs, TimestampTz low, TimestampTz now, int limit,
				  bool *more)
{
	MqDeadTarget to = {0};
	Datum		args[6];
	SPITupleTable *rows;
	uint64		n;
	TimestampTz first = DT_NOEND;
	int64		nretry = 0;
	int64		ngrouped = 0;
	bool		in_range;

	args[0] = TimestampTzGetDatum(low);
	args[1] = TimestampTzGetDatum(now);
	args[2] = Int32GetDatum(limit);
	args[3] = Int32GetDatum(q->max_attempts);
	in_range = mqy_backoff_args(q, &args[4], &args[5]);
	if (mq_plan_run(q, MQP_LEASES_EXPIRED, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "mq: could not end the expired leases of \"%s\"", q->name);
	rows = SPI_tuptable;
	n = SPI_processed;
	*more = (n >= limit);
	if (n == 0)
		return 0;
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		TimestampTz vt = DatumGetTimestampTz(SPI_getbinval(rows->vals[i], rows->tupdesc, 12, &isnull));
		bool		dead = DatumGetBool(SPI_getbinval(rows->vals[i], rows->tupdesc, 13, &isnull));
		bool		grouped = DatumGetBool(SPI_getbinval(rows->vals[i], rows->tupdesc, 14, &isnull));

		if (grouped)
			ngrouped++;
		if (!dead)
		{
			first = Min(first, vt);
			nretry++;
		}
	}
	if (nretry > 0)
	{
		/* the retries were made with no backoff: undone by the error */
		if (!in_range)
			mqy_backoff_out_of_range(q);
		mq_xact_note_due(qs, first);
	}
	mq_xact_count(qs, MQC_IN_FLIGHT, -(int64) n);
	mq_xact_count(qs, MQC_DELAYED, nretry);
	mq_xact_count(qs, MQC_GROUPS_IN_FLIGHT, -ngrouped);
	/* the dead come first; routing them runs statements of its own */
	for (uint64 i = 0; i < (uint64) (n - nretry); i++)
	{
		MqOutMessage m;

		mq_read_message_row(rows, i, &m);
		mq_dead_letter(q, qs, &to, &m, now);
	}
	return (int64) n;
}
