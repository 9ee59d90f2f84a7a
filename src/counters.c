/*-------------------------------------------------------------------------
 *
 * counters.c
 *	  The counters of a queue that are not kept by commits alone: gauges
 *	  (ready, in flight, delayed, dead, and those of message groups) counted from the tables when the
 *	  shared ones are not valid (after a restart, create, purge), and the
 *	  totals, read back from mq.queue_totals once per shared entry and
 *	  saved there by each maintenance pass.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "util.h"
#include "shmem.h"
#include "catalog.h"
#include "xact.h"
#include "counters.h"

/*
 * Count the gauges from the tables (ready, in-flight, delayed and dead
 * messages, the backlog of groups, groups, grouped messages ready and in
 * flight, in MqCounter order), with snap (or the current snapshot if NULL).
 */
void
mq_count_gauges(MqQueue *q, Snapshot snap, int64 *gauges)
{
	char	   *sql;
	SPIPlanPtr	plan;
	int			rc;

	sql = psprintf("SELECT (SELECT pg_catalog.count(*) FROM %s),"
				   " (SELECT pg_catalog.count(*) FROM %s WHERE leased),"
				   " (SELECT pg_catalog.count(*) FROM %s WHERE NOT leased),"
				   " (SELECT pg_catalog.count(*) FROM mq.dead_letter_store WHERE queue" OP("=") "%s),"
				   " (SELECT pg_catalog.count(*) FROM %s),"
				   " (SELECT pg_catalog.count(*) FROM %s),"
				   " (SELECT pg_catalog.count(*) FROM %s WHERE group_key IS NOT NULL),"
				   " (SELECT pg_catalog.count(*) FROM %s WHERE leased AND group_key IS NOT NULL)",
				   q->ready_table, q->wait_table, q->wait_table,
				   quote_literal_cstr(q->name), q->backlog_table, q->group_table,
				   q->ready_table, q->wait_table);
	if (snap == NULL)
		rc = mq_exec_sql(sql, true, 1);
	else
	{
		plan = SPI_prepare(sql, 0, NULL);
		if (plan == NULL)
			elog(ERROR, "mq: could not prepare the count of queue \"%s\"", q->name);
		rc = SPI_execute_snapshot(plan, NULL, NULL, snap, InvalidSnapshot, true, false, 1);
		SPI_freeplan(plan);
	}
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "mq: could not count queue \"%s\"", q->name);
	for (int i = 0; i < MQ_NUM_GAUGES; i++)
		gauges[i] = mq_spi_int8(0, i + 1);
}

/*
 * Make the shared gauges of q valid, if they are not: count the tables
 * with a snapshot of our own, without a lock, while commits to q are
 * journaled (src/shmem.c); those the snapshot cannot see are added after.
 * Our own transaction's changes are in the count but not committed: they
 * are taken out, and added by our commit like anyone's.  Returns whether
 * the gauges are valid (false: another count runs, or this one lost track;
 * the caller counts for itself).  Never on a standby: no commit happens
 * there to keep the counters moving.
 */
bool
mq_ensure_gauges(MqQueue *q, MqQueueShared *qs)
{
	int64		gauges[MQ_NUM_GAUGES];
	int64		own[MQ_NUM_GAUGES];
	Snapshot	snap;
	bool		ok;

	if (qs == NULL || RecoveryInProgress())
		return false;
	if (pg_atomic_read_u32(&qs->gauges_state) == MQ_GAUGES_VALID)
		return true;
	if (!mq_gauges_count_begin(qs))
		return false;
	PG_TRY();
	{
		snap = RegisterSnapshot(GetLatestSnapshot());
		mq_gauges_count_snapshot(snap);
		mq_count_gauges(q, snap, gauges);
		mq_xact_gauge_deltas(qs, own);
		for (int i = 0; i < MQ_NUM_GAUGES; i++)
			gauges[i] -= own[i];
		ok = mq_gauges_count_end(snap, gauges);
		UnregisterSnapshot(snap);
	}
	PG_CATCH();
	{
		mq_gauges_count_abort();
		PG_RE_THROW();
	}
	PG_END_TRY();
	return ok;
}

/* Add the totals saved in mq.queue_totals, once per shared entry. */
void
mq_ensure_totals(MqQueue *q, MqQueueShared *qs)
{
	char	   *sql;

	if (qs == NULL || pg_atomic_read_u32(&qs->totals_loaded) == 1 || RecoveryInProgress())
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
		if (mq_exec_sql(sql, true, 1) != SPI_OK_SELECT)
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

/*
 * The totals last saved in mq.queue_totals (a standby, which never keeps
 * them in memory: the primary's maintenance keeps saving newer ones).
 */
void
mq_saved_totals(MqQueue *q, int64 *totals)
{
	char	   *sql;

	sql = psprintf("SELECT total_sent, total_acked, total_dead_lettered FROM mq.queue_totals"
				   " WHERE queue" OP("=") "%s", quote_literal_cstr(q->name));
	if (mq_exec_sql(sql, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "mq: could not read totals of \"%s\"", q->name);
	for (int i = 0; i < 3; i++)
		totals[i] = SPI_processed == 1 ? mq_spi_int8(0, i + 1) : 0;
}

/*
 * Save the shared totals of q to mq.queue_totals (loading the saved ones
 * first if this entry has not yet); *saved gets what was written.  False:
 * nothing to save (totals not loaded: someone else is loading them).
 */
bool
mq_save_totals(MqQueue *q, MqQueueShared *qs, int64 *saved)
{
	static SPIPlanPtr plan = NULL;
	Datum		args[4];

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
	mq_ensure_totals(q, qs);
	if (pg_atomic_read_u32(&qs->totals_loaded) != 1)
		return false;
	args[0] = CStringGetTextDatum(q->name);
	for (int i = 0; i < 3; i++)
	{
		saved[i] = (int64) pg_atomic_read_u64(&qs->counters[MQC_TOTAL_SENT + i]);
		args[i + 1] = Int64GetDatum(saved[i]);
	}
	if (mq_exec_plan(plan, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "mq: could not save totals of \"%s\"", q->name);
	return true;
}

/* Save the shared totals of every queue (mq.maintain); returns queues saved. */
int64
mq_flush_totals(void)
{
	List	   *names;
	ListCell   *lc;
	int64		n = 0;

	if (!mq_shmem_available())
		return 0;
	names = mq_all_queue_names();
	foreach(lc, names)
	{
		bool		damaged;
		MqQueue    *q = mq_queue_lookup_intact(lfirst(lc), &damaged);
		MqQueueShared *qs;
		int64		saved[3];

		/* a queue without an entry (or without tables) has nothing unsaved */
		if (q == NULL || (qs = mq_shared_find(MyDatabaseId, q->ready_relid)) == NULL)
			continue;
		if (mq_save_totals(q, qs, saved))
			n++;
	}
	return n;
}
