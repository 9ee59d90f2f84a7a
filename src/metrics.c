/*-------------------------------------------------------------------------
 *
 * metrics.c
 *	  mq.metrics and mq.metrics_prometheus.  Gauges (ready, in flight,
 *	  delayed, dead) and totals live in shared memory, changed by each
 *	  transaction at its commit; src/counters.c counts a queue's gauges
 *	  from its tables once after a restart, and reads totals back from
 *	  mq.queue_totals, where maintenance writes them.
 *
 * Without shared memory (mq not preloaded) gauges are counted on every
 * call and totals are not kept.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "access/xlog.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "util.h"
#include "shmem.h"
#include "catalog.h"
#include "take.h"
#include "counters.h"

PG_FUNCTION_INFO_V1(mq_metrics);
PG_FUNCTION_INFO_V1(mq_metrics_prometheus);
PG_FUNCTION_INFO_V1(mq_queue_grouped);

typedef struct MqMetricsRow
{
	char	   *queue;
	int64		values[MQC_NUM];
	bool		has_age;
	Interval   *oldest_ready_age;
} MqMetricsRow;
/* Age of the oldest ready message: the first row of each lane. */
static bool
mqm_oldest_ready(MqQueue *q, MqQueueShared *qs, TimestampTz now, Interval **age)
{
	TimestampTz oldest = DT_NOEND;
	char	   *sql;

	/* heads let this look at one row per lane instead of the whole table */
	if (qs)
	{
		MqLane		lanes[MQ_MAX_LANES];
		int			nlanes;

		if (mq_queue_lanes(q, qs, lanes, &nlanes))
		{
			StringInfoData buf;

			initStringInfo(&buf);
			appendStringInfoString(&buf, "SELECT pg_catalog.min(t) FROM (");
			for (int i = 0; i < nlanes; i++)
				appendStringInfo(&buf,
								 "%s(SELECT enqueued_at AS t FROM %s WHERE priority" OP("=") "%d"
								 " AND seq" OP(">=") INT64_FORMAT " ORDER BY seq LIMIT 1)",
								 i > 0 ? " UNION ALL " : "",
								 q->ready_table, lanes[i].priority, (int64) lanes[i].head);
			if (nlanes == 0)
				appendStringInfoString(&buf, "SELECT NULL::pg_catalog.timestamptz AS t");
			appendStringInfoString(&buf, ") s");
			sql = buf.data;
		}
		else
			sql = psprintf("SELECT pg_catalog.min(enqueued_at) FROM %s", q->ready_table);
	}
	else
		sql = psprintf("SELECT pg_catalog.min(enqueued_at) FROM %s", q->ready_table);

	if (mq_exec_sql(sql, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "mq: could not read the oldest message of \"%s\"", q->name);
	{
		bool		isnull;
		Datum		d = mq_spi_get(0, 1, &isnull);

		if (isnull)
			return false;
		oldest = DatumGetTimestampTz(d);
	}
	*age = DatumGetIntervalP(DirectFunctionCall2(timestamp_mi,
												 TimestampTzGetDatum(now),
												 TimestampTzGetDatum(oldest)));
	return true;
}

/* Metrics of every queue (name NULL) or one; in caller's memory. */
static List *
mqm_collect(const char *name, Oid caller, MemoryContext mcxt)
{
	List	   *names;
	List	   *rows = NIL;
	ListCell   *lc;
	TimestampTz now = mq_now();

	if (name)
	{
		mq_require_privilege(mq_queue_lookup(name, false), caller, MQ_PRIV_OBSERVE);
		names = list_make1(pstrdup(name));
	}
	else
		names = mq_all_queue_names();

	foreach(lc, names)
	{
		bool		damaged;
		MqQueue    *q = mq_queue_lookup_intact(lfirst(lc), &damaged);
		MqQueueShared *qs;
		MqMetricsRow *row;
		MemoryContext old;
		Interval   *age = NULL;
		bool		has_age;
		bool		unreadable;

		if (q == NULL || !mq_has_privilege(q, caller, MQ_PRIV_OBSERVE))
			continue;			/* dropped meanwhile, damaged (no tables to count), or not the caller's to see */
		/* a reader does without an entry if there is no room for one */
		qs = mq_shared_queue(q->ready_relid, q->name, true);

		/*
		 * On a standby an unlogged queue's tables cannot be read (and hold
		 * nothing: unlogged tables are not replicated): it shows as empty.
		 */
		unreadable = q->is_unlogged && RecoveryInProgress();
		has_age = !unreadable && mqm_oldest_ready(q, qs, now, &age);

		old = MemoryContextSwitchTo(mcxt);
		row = palloc0(sizeof(MqMetricsRow));
		row->queue = pstrdup(q->name);
		row->has_age = has_age;
		if (has_age)
		{
			row->oldest_ready_age = palloc(sizeof(Interval));
			memcpy(row->oldest_ready_age, age, sizeof(Interval));
		}
		MemoryContextSwitchTo(old);

		if (unreadable)
			memset(row->values, 0, sizeof(int64) * MQ_NUM_GAUGES);
		else if (mq_ensure_gauges(q, qs))
		{
			for (int i = 0; i < MQ_NUM_GAUGES; i++)
				row->values[i] = (int64) pg_atomic_read_u64(&qs->counters[i]);
		}
		else
			mq_count_gauges(q, NULL, row->values);
		/* messages of groups waiting for their turn are ready too */
		row->values[MQC_READY] += row->values[MQC_BACKLOG];
		if (qs && !RecoveryInProgress())
		{
			mq_ensure_totals(q, qs);
			for (int i = MQC_FIRST_TOTAL; i < MQC_NUM; i++)
				row->values[i] = (int64) pg_atomic_read_u64(&qs->counters[i]);
		}
		else
			mq_saved_totals(q, &row->values[MQC_FIRST_TOTAL]);
		old = MemoryContextSwitchTo(mcxt);	/* the list outlives SPI */
		rows = lappend(rows, row);
		MemoryContextSwitchTo(old);
	}
	return rows;
}

Datum
mq_metrics(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = NULL;
	List	   *rows;
	ListCell   *lc;
	MemoryContext mcxt = CurrentMemoryContext;
	MqCall		call;

	if (PG_NARGS() > 0)
		name = mq_queue_name_arg(fcinfo, 0);
	mq_srf_materialize(fcinfo);
	mq_call_begin(&call);
	rows = mqm_collect(name, call.caller, mcxt);
	mq_call_end(&call);

	foreach(lc, rows)
	{
		MqMetricsRow *row = lfirst(lc);
		Datum		values[12];
		bool		nulls[12];

		memset(nulls, 0, sizeof(nulls));
		values[0] = CStringGetTextDatum(row->queue);
		values[1] = Int64GetDatum(row->values[MQC_READY]);
		values[2] = Int64GetDatum(row->values[MQC_IN_FLIGHT]);
		values[3] = Int64GetDatum(row->values[MQC_DELAYED]);
		values[4] = Int64GetDatum(row->values[MQC_DEAD]);
		values[5] = row->has_age ? IntervalPGetDatum(row->oldest_ready_age) : (Datum) 0;
		nulls[5] = !row->has_age;
		values[6] = Int64GetDatum(row->values[MQC_TOTAL_SENT]);
		values[7] = Int64GetDatum(row->values[MQC_TOTAL_ACKED]);
		values[8] = Int64GetDatum(row->values[MQC_TOTAL_DEAD_LETTERED]);
		values[9] = Int64GetDatum(row->values[MQC_GROUPS]);
		values[10] = Int64GetDatum(row->values[MQC_GROUPS_READY]);
		values[11] = Int64GetDatum(row->values[MQC_GROUPS_IN_FLIGHT]);
		if (!mq_shmem_available())
			nulls[6] = nulls[7] = nulls[8] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

static void
mqm_family(StringInfo buf, List *rows, const char *metric, const char *type,
		   const char *help, int counter)
{
	ListCell   *lc;

	appendStringInfo(buf, "# HELP %s %s\n# TYPE %s %s\n", metric, help, metric, type);
	foreach(lc, rows)
	{
		MqMetricsRow *row = lfirst(lc);

		if (counter >= 0)
			appendStringInfo(buf, "%s{queue=\"%s\"} " INT64_FORMAT "\n",
							 metric, row->queue, row->values[counter]);
		else if (row->has_age)
		{
			float8		secs;

			secs = DatumGetFloat8(DirectFunctionCall2(interval_part,
													  CStringGetTextDatum("epoch"),
													  IntervalPGetDatum(row->oldest_ready_age)));
			appendStringInfo(buf, "%s{queue=\"%s\"} %.3f\n", metric, row->queue, secs);
		}
		/* nothing ready: no sample, as mq.metrics has NULL (no data, not 0) */
	}
}

Datum
mq_metrics_prometheus(PG_FUNCTION_ARGS)
{
	List	   *rows;
	StringInfoData buf;
	MemoryContext mcxt = CurrentMemoryContext;
	MqCall		call;

	mq_call_begin(&call);
	rows = mqm_collect(NULL, call.caller, mcxt);
	mq_call_end(&call);

	/* queue names are [a-z0-9_], so label values need no escaping */
	initStringInfo(&buf);
	mqm_family(&buf, rows, "mq_ready", "gauge", "Messages ready to be received.", MQC_READY);
	mqm_family(&buf, rows, "mq_in_flight", "gauge", "Messages received and not yet acked.", MQC_IN_FLIGHT);
	mqm_family(&buf, rows, "mq_delayed", "gauge", "Messages waiting for a delay or a retry.", MQC_DELAYED);
	mqm_family(&buf, rows, "mq_dead", "gauge", "Messages in mq.dead_letters.", MQC_DEAD);
	mqm_family(&buf, rows, "mq_groups", "gauge", "Message groups that have messages.", MQC_GROUPS);
	mqm_family(&buf, rows, "mq_groups_ready", "gauge", "Message groups whose next message can be received now.", MQC_GROUPS_READY);
	mqm_family(&buf, rows, "mq_groups_in_flight", "gauge", "Message groups with a message received and not yet acked.", MQC_GROUPS_IN_FLIGHT);
	mqm_family(&buf, rows, "mq_oldest_ready_age_seconds", "gauge", "Age of the oldest ready message.", -1);
	if (mq_shmem_available())
	{
		mqm_family(&buf, rows, "mq_sent_total", "counter", "Messages sent.", MQC_TOTAL_SENT);
		mqm_family(&buf, rows, "mq_acked_total", "counter", "Messages acked.", MQC_TOTAL_ACKED);
		mqm_family(&buf, rows, "mq_dead_lettered_total", "counter", "Messages dead-lettered.", MQC_TOTAL_DEAD_LETTERED);
	}
	PG_RETURN_TEXT_P(cstring_to_text(buf.data));
}

/*
 * mq._queue_grouped(queue), behind mq.queues.grouped: whether the queue has
 * messages with a group key.  NULL for a queue the caller may not observe,
 * or that is gone or damaged.
 */
Datum
mq_queue_grouped(PG_FUNCTION_ARGS)
{
	char	   *name = mq_queue_name_arg(fcinfo, 0);
	MqCall		call;
	MqQueue    *q;
	MqQueueShared *qs;
	bool		damaged;
	bool		grouped;

	mq_call_begin(&call);
	q = mq_queue_lookup_intact(name, &damaged);
	if (q == NULL || !mq_has_privilege(q, call.caller, MQ_PRIV_OBSERVE))
	{
		mq_call_end(&call);
		PG_RETURN_NULL();
	}
	if (q->is_unlogged && RecoveryInProgress())
		grouped = false;		/* nothing there on a standby */
	else
	{
		qs = mq_shared_queue(q->ready_relid, q->name, true);
		if (mq_ensure_gauges(q, qs))
			grouped = pg_atomic_read_u64(&qs->counters[MQC_GROUPS]) > 0;
		else
		{
			if (mq_exec_sql(psprintf("SELECT 1 FROM %s LIMIT 1", q->group_table), true, 1) != SPI_OK_SELECT)
				elog(ERROR, "mq: could not read the groups of \"%s\"", q->name);
			grouped = SPI_processed > 0;
		}
	}
	mq_call_end(&call);
	PG_RETURN_BOOL(grouped);
}
