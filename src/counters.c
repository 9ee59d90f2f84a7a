/*-------------------------------------------------------------------------
 *
 * counters.c
 *	  The counters of a queue that are not kept by commits alone: gauges
 *	  (ready, in flight, delayed, dead) counted from the tables when the
 *	  shared ones are not valid (after a restart, create, purge), and the
 *	  totals, read back from mq.queue_totals once per shared entry and
 *	  saved there by each maintenance pass.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

#include "util.h"
#include "shmem.h"
#include "catalog.h"
#include "xact.h"
#include "counters.h"

/* Count ready, in-flight, delayed and dead messages from the tables. */
void
mq_count_gauges(MqQueue *q, int64 *gauges)
{
	char	   *sql;

	sql = psprintf("SELECT (SELECT pg_catalog.count(*) FROM %s),"
				   " (SELECT pg_catalog.count(*) FROM %s WHERE leased),"
				   " (SELECT pg_catalog.count(*) FROM %s WHERE NOT leased),"
				   " (SELECT pg_catalog.count(*) FROM mq.dead_letters WHERE queue" OP("=") "%s)",
				   q->ready_table, q->wait_table, q->wait_table,
				   quote_literal_cstr(q->name));
	if (SPI_execute(sql, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "mq: could not count queue \"%s\"", q->name);
	for (int i = 0; i < 4; i++)
		gauges[i] = mq_spi_int8(0, i + 1);
}

/*
 * Count the gauges of a queue whose shared counters are not valid yet.
 * SHARE locks wait for open writers and hold new ones off, so no delta is
 * lost or applied twice around the count.
 */
void
mq_ensure_gauges(MqQueue *q, MqQueueShared *qs)
{
	int64		gauges[4];

	if (qs == NULL || pg_atomic_read_u32(&qs->gauges_valid))
		return;
	if (SPI_execute(psprintf("LOCK TABLE %s, %s, mq.dead_letters IN SHARE MODE",
							 q->ready_table, q->wait_table), false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "mq: could not lock queue \"%s\"", q->name);
	mq_count_gauges(q, gauges);
	pg_atomic_write_u64(&qs->counters[MQC_READY], (uint64) gauges[0]);
	pg_atomic_write_u64(&qs->counters[MQC_IN_FLIGHT], (uint64) gauges[1]);
	pg_atomic_write_u64(&qs->counters[MQC_DELAYED], (uint64) gauges[2]);
	pg_atomic_write_u64(&qs->counters[MQC_DEAD], (uint64) gauges[3]);
	pg_atomic_write_u32(&qs->gauges_valid, 1);
	/* our own uncommitted changes are in the count: do not add them again */
	mq_xact_gauges_unsure(qs, false);
}

/* Add the totals saved in mq.queue_totals, once per shared entry. */
void
mq_ensure_totals(MqQueue *q, MqQueueShared *qs)
{
	char	   *sql;

	if (qs == NULL || pg_atomic_read_u32(&qs->totals_loaded) == 1)
		return;
	{
		uint32		expected = 0;

		if (!pg_atomic_compare_exchange_u32(&qs->totals_loaded, &expected, 2))
			return;				/* someone else is loading */
	}
	sql = psprintf("SELECT total_sent, total_acked, total_dead_lettered FROM mq.queue_totals"
				   " WHERE queue" OP("=") "%s", quote_literal_cstr(q->name));
	PG_TRY();
	{
		if (SPI_execute(sql, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "mq: could not read totals of \"%s\"", q->name);
		if (SPI_processed == 1)
			for (int i = 0; i < 3; i++)
				pg_atomic_fetch_add_u64(&qs->counters[MQC_TOTAL_SENT + i],
										(uint64) mq_spi_int8(0, i + 1));
	}
	PG_CATCH();
	{
		pg_atomic_write_u32(&qs->totals_loaded, 0);
		PG_RE_THROW();
	}
	PG_END_TRY();
	pg_atomic_write_u32(&qs->totals_loaded, 1);
}

/* Save the shared totals of every queue; returns queues written. */
int64
mq_flush_totals(void)
{
	static SPIPlanPtr plan = NULL;
	List	   *names;
	ListCell   *lc;
	int64		n = 0;

	if (!mq_shmem_available())
		return 0;
	if (plan == NULL)
	{
		Oid			types[4] = {TEXTOID, INT8OID, INT8OID, INT8OID};

		plan = mq_prepare(
			"INSERT INTO mq.queue_totals AS t (queue, total_sent, total_acked, total_dead_lettered)"
			" VALUES ($1, $2, $3, $4) ON CONFLICT (queue) DO UPDATE SET"
			" total_sent = EXCLUDED.total_sent, total_acked = EXCLUDED.total_acked,"
			" total_dead_lettered = EXCLUDED.total_dead_lettered"
			" WHERE (t.total_sent, t.total_acked, t.total_dead_lettered)"
			OP("<>") "(EXCLUDED.total_sent, EXCLUDED.total_acked, EXCLUDED.total_dead_lettered)",
			4, types);
	}
	names = mq_all_queue_names();
	foreach(lc, names)
	{
		MqQueue    *q = mq_queue_lookup(lfirst(lc), true);
		MqQueueShared *qs;
		Datum		args[4];

		if (q == NULL || (qs = mq_queue_shared(q)) == NULL)
			continue;
		mq_ensure_totals(q, qs);
		if (pg_atomic_read_u32(&qs->totals_loaded) != 1)
			continue;
		args[0] = CStringGetTextDatum(q->name);
		for (int i = 0; i < 3; i++)
			args[i + 1] = Int64GetDatum((int64) pg_atomic_read_u64(&qs->counters[MQC_TOTAL_SENT + i]));
		if (mq_exec_plan(plan, args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "mq: could not save totals of \"%s\"", q->name);
		n += (int64) SPI_processed;
	}
	return n;
}
