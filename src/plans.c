/*-------------------------------------------------------------------------
 *
 * plans.c
 *	  The SQL of every statement mq runs on a queue's tables, prepared per
 *	  queue on first use and kept in the queue's cached entry (src/catalog.c
 *	  frees them when the queue changes), and the reader of the message
 *	  rows those statements return.
 *
 * All SQL here is schema-qualified, operators included, so the caller's
 * search_path cannot redirect anything.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "util.h"
#include "catalog.h"
#include "plans.h"

#define READY_COLS "seq, id, priority, attempt, enqueued_at, message, headers, dedup_key, last_error," \
	" group_key, gseq, run_start"

const MqColumn mq_wait_cols[MQW_NCOLS] = {
	{"vt", TIMESTAMPTZOID}, {"leased", BOOLOID}, {"receipt", INT8OID},
	{"seq", INT8OID}, {"id", INT8OID}, {"priority", INT4OID}, {"attempt", INT4OID},
	{"enqueued_at", TIMESTAMPTZOID}, {"message", JSONBOID}, {"headers", JSONBOID},
	{"dedup_key", TEXTOID}, {"last_error", TEXTOID}, {"group_key", TEXTOID},
	{"gseq", INT8OID}, {"run_start", INT8OID}};

const MqColumn mq_backlog_cols[MQB_NCOLS] = {
	{"group_key", TEXTOID}, {"gseq", INT8OID}, {"vt", TIMESTAMPTZOID}, {"id", INT8OID},
	{"priority", INT4OID}, {"attempt", INT4OID}, {"enqueued_at", TIMESTAMPTZOID},
	{"message", JSONBOID}, {"headers", JSONBOID}, {"dedup_key", TEXTOID},
	{"last_error", TEXTOID}};

/*
 * The queue's backoff for the attempt number in column attempt, as an
 * interval: min($d * 2^(attempt-1), $m) microseconds (the parameters that
 * hold retry_delay and retry_delay_max, src/retry.c), of which a uniform
 * jitter keeps between half and all.  The doubling stops at 2^62: any
 * retry_delay of a microsecond or more reaches every retry_delay_max by
 * then.
 */
static void
mqpl_backoff(StringInfo sql, const char *attempt, int d, int m)
{
	appendStringInfo(sql,
					 "pg_catalog.make_interval(secs => GREATEST(LEAST($%d" OP("*")
					 "pg_catalog.power(2::pg_catalog.float8, LEAST(GREATEST(%s" OP("-") "1, 0), 62)),"
					 " $%d), 0)" OP("*") "(0.5::pg_catalog.float8" OP("+") "(0.5::pg_catalog.float8"
					 OP("*") "pg_catalog.random()))" OP("/") "1000000::pg_catalog.float8)",
					 d, attempt, m);
}

/*
 * A CTE "keys" that releases the dedup keys the rows of CTE gone held:
 * those rows leave the queue in the same statement.
 */
static void
mqpl_release_keys(StringInfo sql, const char *gone, const char *qname)
{
	appendStringInfo(sql,
					 " keys AS (DELETE FROM mq.dedup_keys k USING %s g"
					 " WHERE k.queue" OP("=") "%s AND k.dedup_key" OP("=") "g.dedup_key"
					 " AND k.id" OP("=") "g.id)", gone, qname);
}

static const char *
mqpl_sql(MqQueue *q, MqPlanKind kind, int *nargs, Oid *types)
{
	StringInfoData sql;
	const char *R = q->ready_table;
	const char *W = q->wait_table;
	const char *G = q->group_table;
	const char *B = q->backlog_table;
	const char *U = q->run_table;
	char	   *qname = quote_literal_cstr(q->name);

	initStringInfo(&sql);
	switch (kind)
	{
		case MQP_INSERT_READY:
		case MQP_INSERT_WAIT:
			if (kind == MQP_INSERT_READY)
				appendStringInfo(&sql,
								 "INSERT INTO %s (" READY_COLS ")"
								 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)", R);
			else
				appendStringInfo(&sql,
								 "INSERT INTO %s (vt, leased, " READY_COLS ")"
								 " VALUES ($13, false, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)", W);
			*nargs = (kind == MQP_INSERT_READY) ? 12 : 13;
			types[0] = INT8OID;
			types[1] = INT8OID;
			types[2] = INT4OID;
			types[3] = INT4OID;
			types[4] = TIMESTAMPTZOID;
			types[5] = JSONBOID;
			types[6] = JSONBOID;
			types[7] = TEXTOID;
			types[8] = TEXTOID;
			types[9] = TEXTOID;
			types[10] = INT8OID;
			types[11] = INT8OID;
			types[12] = TIMESTAMPTZOID;
			break;
		case MQP_INSERT_READY_BATCH:
		case MQP_INSERT_WAIT_BATCH:
			/*
			 * One statement for a whole send_batch, rows in input order.  A
			 * ready row's seq is the one before the batch's first ($1) plus
			 * its place (from 1); a delayed row's is $1, the due time's
			 * (three arrays unnested, not four: each is materialized).
			 */
			if (kind == MQP_INSERT_READY_BATCH)
				appendStringInfo(&sql,
								 "INSERT INTO %s (seq, id, priority, attempt, enqueued_at, message, headers)"
								 " SELECT $1" OP("+") "u.o, u.i, $3, 0, $4, u.m, u.h", R);
			else
				appendStringInfo(&sql,
								 "INSERT INTO %s (vt, leased, seq, id, priority, attempt, enqueued_at,"
								 " message, headers) SELECT $6, false, $1, u.i, $3, 0, $4, u.m, u.h", W);
			appendStringInfoString(&sql, " FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($5),"
								   " pg_catalog.unnest($7)) WITH ORDINALITY AS u(m, h, i, o)");
			*nargs = 7;
			types[0] = INT8OID;
			types[1] = JSONBARRAYOID;
			types[2] = INT4OID;
			types[3] = TIMESTAMPTZOID;
			types[4] = JSONBARRAYOID;
			types[5] = TIMESTAMPTZOID;
			types[6] = INT8ARRAYOID;
			break;
		case MQP_LEASE_LANE:
		case MQP_LEASE_ANY:
		case MQP_POP_LANE:
		case MQP_POP_ANY:
			{
				bool		lane = (kind == MQP_LEASE_LANE || kind == MQP_POP_LANE);
				bool		lease = (kind == MQP_LEASE_LANE || kind == MQP_LEASE_ANY);

				/*
				 * Take rows in dequeue order, skipping those another
				 * consumer holds (the TID array keeps the delete a TID
				 * scan); a lease moves them to the wait table, a pop
				 * releases their dedup keys (and archives them).
				 */
				appendStringInfo(&sql,
								 "WITH moved AS (DELETE FROM %s WHERE ctid" OP("=") "ANY (ARRAY("
								 "SELECT r.ctid FROM %s r", R, R);
				if (lane)
					appendStringInfoString(&sql,
										   " WHERE r.priority" OP("=") "$3 AND r.seq" OP(">=") "$4"
										   " ORDER BY r.seq");
				else
					appendStringInfoString(&sql, " ORDER BY r.priority DESC, r.seq");
				appendStringInfoString(&sql,
									   " LIMIT $1 FOR UPDATE SKIP LOCKED)) RETURNING " READY_COLS ")");
				/*
				 * A lease's receipt: a random base per statement ($5),
				 * xor the row's seq: with the id (every call that takes a
				 * receipt also matches the id), every delivery has its own,
				 * although rows that came due together share a seq.
				 */
				if (lease)
					appendStringInfo(&sql,
									 " INSERT INTO %s (vt, leased, receipt, " READY_COLS ")"
									 " SELECT $2, true, $5" OP("#") "seq, seq, id, priority, attempt" OP("+") "1,"
									 " enqueued_at, message, headers, dedup_key, last_error,"
									 " group_key, gseq, run_start FROM moved"
									 " RETURNING id, message, headers, attempt, enqueued_at, vt, priority, seq,"
									 " dedup_key, last_error, receipt, group_key, gseq, run_start", W);
				else
				{
					appendStringInfoChar(&sql, ',');
					mqpl_release_keys(&sql, "moved", qname);
					if (q->has_retention)
						appendStringInfo(&sql,
										 ", arch AS (INSERT INTO mq.archive_store (queue, id, message, headers, attempts, enqueued_at)"
										 " SELECT %s, id, message, headers, attempt" OP("+") "1, enqueued_at FROM moved)",
										 qname);
					appendStringInfoString(&sql,
										   " SELECT id, message, headers, attempt" OP("+") "1, enqueued_at, $2,"
										   " priority, seq, dedup_key, last_error, NULL::pg_catalog.int8,"
										   " group_key, gseq, run_start FROM moved");
				}
				/* $3, $4: the lane; $5: the receipt base (leases only) */
				*nargs = lease ? 5 : lane ? 4 : 2;
				types[0] = INT4OID;
				types[1] = TIMESTAMPTZOID;
				types[2] = INT4OID;
				types[3] = INT8OID;
				types[4] = INT8OID;
				break;
			}
		case MQP_ACK:
		case MQP_ACK_MANY:
		case MQP_ACK_RECEIPT:
		case MQP_ACK_MANY_RECEIPT:
			if (kind == MQP_ACK || kind == MQP_ACK_MANY)
				appendStringInfo(&sql,
								 "WITH gone AS (DELETE FROM %s WHERE id" OP("=") "%s"
								 " RETURNING id, leased, message, headers, attempt, enqueued_at, dedup_key,"
								 " group_key, gseq, run_start),",
								 W, kind == MQP_ACK ? "$1" : "ANY ($1)");
			else if (kind == MQP_ACK_RECEIPT)
				appendStringInfo(&sql,
								 "WITH gone AS (DELETE FROM %s WHERE id" OP("=") "$1 AND leased"
								 " AND receipt" OP("=") "$2"
								 " RETURNING id, leased, message, headers, attempt, enqueued_at, dedup_key,"
								 " group_key, gseq, run_start),",
								 W);
			else
				/* id = ANY ($1): an index probe per id, as MQP_RETRY's */
				appendStringInfo(&sql,
								 "WITH gone AS (DELETE FROM %s w USING ROWS FROM (pg_catalog.unnest($1),"
								 " pg_catalog.unnest($2)) AS u(id, receipt)"
								 " WHERE w.id" OP("=") "ANY ($1) AND w.id" OP("=") "u.id"
								 " AND w.leased AND w.receipt" OP("=") "u.receipt"
								 " RETURNING w.id, w.leased, w.message, w.headers, w.attempt, w.enqueued_at,"
								 " w.dedup_key, w.group_key, w.gseq, w.run_start),", W);
			mqpl_release_keys(&sql, "gone", qname);
			if (q->has_retention)
				appendStringInfo(&sql,
								 ", arch AS (INSERT INTO mq.archive_store (queue, id, message, headers, attempts, enqueued_at)"
								 " SELECT %s, id, message, headers, attempt, enqueued_at FROM gone)",
								 qname);
			appendStringInfoString(&sql, " SELECT leased, group_key, gseq, run_start, id FROM gone");
			*nargs = (kind == MQP_ACK || kind == MQP_ACK_MANY) ? 1 : 2;
			types[0] = (kind == MQP_ACK || kind == MQP_ACK_RECEIPT) ? INT8OID : INT8ARRAYOID;
			types[1] = kind == MQP_ACK_RECEIPT ? INT8OID : INT8ARRAYOID;
			break;
		case MQP_NACK_LOCK:
			/* $2: the receipt, or NULL */
			appendStringInfo(&sql,
							 "SELECT attempt, leased AND ($2 IS NULL OR receipt" OP("=") "$2),"
							 " group_key IS NOT NULL FROM %s WHERE id" OP("=") "$1 FOR UPDATE", W);
			*nargs = 2;
			types[0] = INT8OID;
			types[1] = INT8OID;
			break;
		case MQP_RETRY:
			/*
			 * Leases $1 due again, one statement: at $2 (NULL: the end of
			 * each lease) plus $3, or plus the queue's backoff for the
			 * row's attempt when $3 is NULL ($5, $6: mqpl_backoff).
			 * "w.id = ANY ($1)" is an index probe per id: a join with
			 * unnest may read the whole primary key (every lease acked
			 * since a held xmin horizon) and hash it
			 * (test/t/034_held_horizon_joins.pl).
			 */
			appendStringInfo(&sql,
							 "UPDATE %s w SET leased = false,"
							 " vt = COALESCE($2, w.vt)" OP("+") "COALESCE($3, ", W);
			mqpl_backoff(&sql, "w.attempt", 5, 6);
			appendStringInfoString(&sql,
								   "), last_error = COALESCE($4, w.last_error)"
								   " WHERE w.id" OP("=") "ANY ($1) RETURNING w.vt");
			*nargs = 6;
			types[0] = INT8ARRAYOID;
			types[1] = TIMESTAMPTZOID;
			types[2] = INTERVALOID;
			types[3] = TEXTOID;
			types[4] = FLOAT8OID;
			types[5] = FLOAT8OID;
			break;
		case MQP_SET_ATTEMPT:
			appendStringInfo(&sql, "UPDATE %s SET attempt = $2 WHERE id" OP("=") "$1", W);
			*nargs = 2;
			types[0] = INT8OID;
			types[1] = INT4OID;
			break;
		case MQP_EXTEND:
			appendStringInfo(&sql,
							 "UPDATE %s SET vt = $2 WHERE id" OP("=") "$1 AND leased"
							 " AND ($3 IS NULL OR receipt" OP("=") "$3) RETURNING vt", W);
			*nargs = 3;
			types[0] = INT8OID;
			types[1] = TIMESTAMPTZOID;
			types[2] = INT8OID;
			break;
		case MQP_DEAD_TAKE:
			/* its dedup key is released here, as an ack's: it returns none */
			appendStringInfo(&sql,
							 "WITH gone AS (DELETE FROM %s WHERE id" OP("=") "$1"
							 " RETURNING id, priority, attempt, enqueued_at, message, headers,"
							 " dedup_key, COALESCE($2, last_error) AS last_error, group_key, gseq, run_start),",
							 W);
			mqpl_release_keys(&sql, "gone", qname);
			appendStringInfoString(&sql,
								   " SELECT id, priority, attempt, enqueued_at, message, headers,"
								   " NULL::pg_catalog.text, last_error, group_key, gseq, run_start FROM gone");
			*nargs = 2;
			types[0] = INT8OID;
			types[1] = TEXTOID;
			break;
		case MQP_DEDUP_CLAIM:
			appendStringInfo(&sql,
							 "INSERT INTO mq.dedup_keys (queue, dedup_key, id) VALUES (%s, $1, $2)"
							 " ON CONFLICT (queue, dedup_key) DO NOTHING RETURNING id", qname);
			*nargs = 2;
			types[0] = TEXTOID;
			types[1] = INT8OID;
			break;
		case MQP_DEDUP_RELEASE:
			appendStringInfo(&sql,
							 "DELETE FROM mq.dedup_keys WHERE queue" OP("=") "%s"
							 " AND dedup_key" OP("=") "$1 AND id" OP("=") "$2", qname);
			*nargs = 2;
			types[0] = TEXTOID;
			types[1] = INT8OID;
			break;
		case MQP_DEDUP_FIND:
			appendStringInfo(&sql,
							 "SELECT id FROM mq.dedup_keys WHERE queue" OP("=") "%s"
							 " AND dedup_key" OP("=") "$1", qname);
			*nargs = 1;
			types[0] = TEXTOID;
			break;
		case MQP_LEASES_EXPIRED:
			/*
			 * The leases that ran out ($1 <= vt <= $2, the first $3 in vt
			 * order, those another transaction holds skipped) end as failed
			 * attempts, in one statement: with attempts left (below $4,
			 * max_attempts) a lease is due again after the queue's backoff
			 * from its end ($5, $6: as MQP_RETRY's); the others are taken
			 * out with their dedup keys, to be dead-lettered.  A row each:
			 * a dead one as MQP_DEAD_TAKE returns it, then its lease's
			 * end, true and whether it has a group; a retry: its id, NULLs,
			 * its due time, false and whether it has a group.  The dead
			 * come first, in the order their leases ended.  The probes are
			 * "id = ANY", as MQP_RETRY's.
			 */
			appendStringInfo(&sql,
							 "WITH e AS (SELECT id, attempt FROM %s WHERE vt" OP(">=") "$1"
							 " AND vt" OP("<=") "$2 AND leased ORDER BY vt LIMIT $3 FOR UPDATE SKIP LOCKED),"
							 " r AS (UPDATE %s w SET leased = false, vt = w.vt" OP("+"), W, W);
			mqpl_backoff(&sql, "w.attempt", 5, 6);
			appendStringInfo(&sql,
							 " WHERE w.id" OP("=") "ANY (ARRAY(SELECT id FROM e WHERE attempt" OP("<") "$4))"
							 " RETURNING w.id, w.vt, w.group_key IS NOT NULL AS grouped),"
							 " d AS (DELETE FROM %s w"
							 " WHERE w.id" OP("=") "ANY (ARRAY(SELECT id FROM e WHERE attempt" OP(">=") "$4))"
							 " RETURNING id, priority, attempt, enqueued_at, message, headers,"
							 " dedup_key, last_error, group_key, gseq, run_start, vt),", W);
			mqpl_release_keys(&sql, "d", qname);
			appendStringInfoString(&sql,
								   " SELECT id, priority, attempt, enqueued_at, message, headers,"
								   " NULL::pg_catalog.text, last_error, group_key, gseq, run_start, vt,"
								   " true AS dead, group_key IS NOT NULL FROM d"
								   " UNION ALL SELECT id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
								   " NULL, vt, false, grouped FROM r ORDER BY 13 DESC, 12, 1");
			*nargs = 6;
			types[0] = TIMESTAMPTZOID;
			types[1] = TIMESTAMPTZOID;
			types[2] = INT4OID;
			types[3] = INT4OID;
			types[4] = FLOAT8OID;
			types[5] = FLOAT8OID;
			break;
		case MQP_DUE_READY:
			/*
			 * Of the first 1000 due rows (in vt order, not locked), lock
			 * and take up to $3, highest priority first: a receive
			 * promotes no more than it can take, and others promote the
			 * rest at once.  The outer scan rechecks the row (after a
			 * concurrent update) with both bounds of the inner one: with
			 * only "vt <= $2" the planner may scan the vt index from its
			 * start instead of fetching the TIDs (it does once the table's
			 * statistics show few live rows), and under a held xmin
			 * horizon that walks every lease acked since (bench W10).
			 */
			appendStringInfo(&sql,
							 "DELETE FROM %s WHERE ctid" OP("=") "ANY (ARRAY("
							 "SELECT w.ctid FROM %s w WHERE w.ctid" OP("=") "ANY (ARRAY("
							 "SELECT c.ctid FROM %s c WHERE c.vt" OP(">=") "$1 AND c.vt" OP("<=") "$2"
							 " AND NOT c.leased ORDER BY c.vt LIMIT 1000))"
							 " AND w.vt" OP(">=") "$1 AND w.vt" OP("<=") "$2 AND NOT w.leased"
							 " ORDER BY w.priority DESC, w.vt LIMIT $3 FOR UPDATE SKIP LOCKED))"
							 " RETURNING id, priority, attempt, enqueued_at, message, headers,"
							 " dedup_key, last_error, group_key, gseq, run_start, vt", W, W, W);
			*nargs = 3;
			types[0] = TIMESTAMPTZOID;
			types[1] = TIMESTAMPTZOID;
			types[2] = INT4OID;
			break;
		case MQP_NEXT_DUE:
			appendStringInfo(&sql,
							 "SELECT vt FROM %s WHERE vt" OP(">=") "$1 AND vt" OP("<=") "$2"
							 " ORDER BY vt LIMIT 1", W);
			*nargs = 2;
			types[0] = TIMESTAMPTZOID;
			types[1] = TIMESTAMPTZOID;
			break;
		case MQP_LANES:
			appendStringInfo(&sql,
							 "SELECT priority FROM %s WHERE priority" OP("<") "$1"
							 " ORDER BY priority DESC LIMIT 1", R);
			*nargs = 1;
			types[0] = INT8OID;
			break;
		case MQP_GROUP_LOCK:
			appendStringInfo(&sql, "SELECT ctid FROM %s WHERE group_key" OP("=") "$1 FOR UPDATE", G);
			*nargs = 1;
			types[0] = TEXTOID;
			break;
		case MQP_GROUP_CREATE:
			appendStringInfo(&sql,
							 "INSERT INTO %s (group_key) VALUES ($1)"
							 " ON CONFLICT (group_key) DO NOTHING RETURNING ctid", G);
			*nargs = 1;
			types[0] = TEXTOID;
			break;
		case MQP_GROUP_DELETE:
			appendStringInfo(&sql, "DELETE FROM %s WHERE ctid" OP("=") "$1", G);
			*nargs = 1;
			types[0] = TIDOID;
			break;
		case MQP_BACKLOG_INSERT:
			appendStringInfo(&sql,
							 "INSERT INTO %s (group_key, gseq, vt, id, priority, attempt, enqueued_at,"
							 " message, headers, dedup_key, last_error)"
							 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)", B);
			*nargs = 11;
			types[0] = TEXTOID;
			types[1] = INT8OID;
			types[2] = TIMESTAMPTZOID;
			types[3] = INT8OID;
			types[4] = INT4OID;
			types[5] = INT4OID;
			types[6] = TIMESTAMPTZOID;
			types[7] = JSONBOID;
			types[8] = JSONBOID;
			types[9] = TEXTOID;
			types[10] = TEXTOID;
			break;
		case MQP_BACKLOG_NEXT:
			/*
			 * The next message of group $1 after gseq $2: the scan starts
			 * just past the message that was the group's, so the entries of
			 * the group's earlier messages (dead, but kept while the xmin
			 * horizon is held) are never read.  Read as MQP_DUE_READY.
			 */
			appendStringInfo(&sql,
							 "DELETE FROM %s WHERE ctid" OP("=") "ANY (ARRAY("
							 "SELECT b.ctid FROM %s b WHERE b.group_key" OP("=") "$1"
							 " AND b.gseq" OP(">") "$2 ORDER BY b.gseq LIMIT 1))"
							 " RETURNING id, priority, attempt, enqueued_at, message, headers,"
							 " dedup_key, last_error, group_key, gseq, NULL::pg_catalog.int8, vt", B, B);
			*nargs = 2;
			types[0] = TEXTOID;
			types[1] = INT8OID;
			break;
		case MQP_BACKLOG_PEEK:
			appendStringInfo(&sql,
							 "SELECT gseq, vt FROM %s WHERE group_key" OP("=") "$1 AND gseq" OP(">") "$2"
							 " ORDER BY gseq LIMIT $3", B);
			*nargs = 3;
			types[0] = TEXTOID;
			types[1] = INT8OID;
			types[2] = INT4OID;
			break;
		case MQP_BACKLOG_RUN:
			/*
			 * Lease the backlog of group $1 in (gseq $2, gseq $3] with the
			 * head of the run (gseq $2) as their run_start, each one noted
			 * in the run table: receive's per_group.  Returns what a lease
			 * returns.
			 */
			appendStringInfo(&sql,
							 "WITH moved AS (DELETE FROM %s WHERE group_key" OP("=") "$1"
							 " AND gseq" OP(">") "$2 AND gseq" OP("<=") "$3"
							 " RETURNING id, priority, attempt, enqueued_at, message, headers,"
							 " dedup_key, last_error, group_key, gseq),"
							 " leased AS (INSERT INTO %s (vt, leased, receipt, " READY_COLS ")"
							 " SELECT $4, true, $5" OP("#") "gseq, gseq, id, priority, attempt" OP("+") "1,"
							 " enqueued_at, message, headers, dedup_key, last_error, group_key, gseq, $2"
							 " FROM moved"
							 " RETURNING id, message, headers, attempt, enqueued_at, vt, priority, seq,"
							 " dedup_key, last_error, receipt, group_key, gseq, run_start),"
							 " noted AS (INSERT INTO %s (run_start, id) SELECT run_start, id FROM leased)"
							 " SELECT * FROM leased", B, W, U);
			*nargs = 5;
			types[0] = TEXTOID;
			types[1] = INT8OID;
			types[2] = INT8OID;
			types[3] = TIMESTAMPTZOID;
			types[4] = INT8OID;
			break;
		case MQP_RUN_LEAVE:
			/*
			 * Message $2 leaves run $1: a row if another one of the run is
			 * still in the queue (the scan sees the table as it was before
			 * the delete).
			 */
			appendStringInfo(&sql,
							 "WITH gone AS (DELETE FROM %s WHERE run_start" OP("=") "$1 AND id" OP("=") "$2)"
							 " SELECT 1 FROM %s WHERE run_start" OP("=") "$1 AND id" OP("<>") "$2 LIMIT 1",
							 U, U);
			*nargs = 2;
			types[0] = INT8OID;
			types[1] = INT8OID;
			break;
		case MQP_RUN_MARK:
			/* message $1, leased, begins a run: noted in the run table */
			appendStringInfo(&sql,
							 "WITH marked AS (UPDATE %s SET run_start = gseq WHERE id" OP("=") "$1"
							 " RETURNING run_start, id)"
							 " INSERT INTO %s (run_start, id) SELECT run_start, id FROM marked", W, U);
			*nargs = 1;
			types[0] = INT8OID;
			break;
		case MQP_NUM:
			elog(ERROR, "mq: bad plan kind");
	}
	return sql.data;
}

static SPIPlanPtr
mq_queue_plan(MqQueue *q, MqPlanKind kind)
{
	if (q->plans[kind] == NULL)
	{
		int			nargs = 0;
		Oid			types[16];
		const char *sql = mqpl_sql(q, kind, &nargs, types);

		q->plans[kind] = mq_prepare(sql, nargs, types);
	}
	return q->plans[kind];
}

/* Run statement kind of queue q (src/util.c: mq_exec_plan). */
int
mq_plan_run(MqQueue *q, MqPlanKind kind, Datum *values, const char *nulls,
			bool read_only, long count)
{
	SPIPlanPtr	plan = mq_queue_plan(q, kind);

	return mq_exec_plan(plan, values, nulls, read_only, count);
}

/* Run statement kind of queue q on every row committed so far (src/util.c). */
int
mq_plan_run_latest(MqQueue *q, MqPlanKind kind, Datum *values, const char *nulls, long count)
{
	SPIPlanPtr	plan = mq_queue_plan(q, kind);

	return mq_exec_plan_latest(plan, values, nulls, count);
}

/*
 * Read a message row as MQP_DEAD_TAKE, MQP_LEASES_EXPIRED, MQP_DUE_READY
 * and MQP_BACKLOG_NEXT return it: (id, priority, attempt, enqueued_at,
 * message, headers, dedup_key, last_error, group_key, gseq, run_start).
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
	d = SPI_getbinval(tup, desc, 9, &isnull);
	m->group_key = isnull ? NULL : DatumGetTextPP(d);
	d = SPI_getbinval(tup, desc, 10, &isnull);
	m->gseq = isnull ? 0 : DatumGetInt64(d);
	d = SPI_getbinval(tup, desc, 11, &isnull);
	m->run_start = isnull ? 0 : DatumGetInt64(d);
}
