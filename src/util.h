/*-------------------------------------------------------------------------
 *
 * util.h
 *	  The bottom of mq: time, SPI, set-returning functions, argument checks.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MQ_UTIL_H
#define MQ_UTIL_H

#include "executor/spi.h"
#include "fmgr.h"
#include "storage/itemptr.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#define MQ_QUEUE_NAME_MAX	48
#define MQ_MAX_QUANTITY		10000
#define MQ_INTERVAL_MAX_YEARS 100	/* of every interval argument */
#define MQ_DEDUP_KEY_MAX	512		/* bytes */

/* An operator that the caller's search_path cannot redirect. */
#define OP(x) " OPERATOR(pg_catalog." x ") "

/* A column of one of mq's tables, as the row helpers expect it. */
typedef struct MqColumn
{
	const char *name;
	Oid			type;
} MqColumn;

extern TimestampTz mq_now(void);
extern TimestampTz mq_add_interval(TimestampTz t, const Interval *iv);
extern bool mq_interval_negative(const Interval *iv);
extern bool mq_interval_positive(const Interval *iv);
extern void mq_check_interval_max(const char *what, const Interval *iv);
extern void mq_connect(void);
extern void mq_finish(void);
extern void mq_spi_reset(void);
extern SPIPlanPtr mq_prepare(const char *sql, int nargs, Oid *argtypes);
extern int	mq_exec_sql(const char *sql, bool read_only, long count);
extern int	mq_exec_plan(SPIPlanPtr plan, Datum *values, const char *nulls,
						 bool read_only, long count);
extern int	mq_exec_plan_latest(SPIPlanPtr plan, Datum *values, const char *nulls,
								long count);
extern bool mq_insert_row(Oid relid, const MqColumn *cols, int ncols, Datum *values,
						  const bool *isnull);
typedef struct MqRowInsert MqRowInsert;
extern MqRowInsert *mq_insert_begin(Oid relid, const MqColumn *cols, int ncols);
extern void mq_insert_next(MqRowInsert *ins, const Datum *values, const bool *isnull);
extern void mq_insert_end(MqRowInsert *ins);
typedef struct MqRowDelete MqRowDelete;
typedef bool (*MqRowFilter) (const Datum *values, const bool *isnull, void *arg);
typedef void (*MqRowVisitor) (const Datum *values, const bool *isnull, void *arg);
extern MqRowDelete *mq_delete_begin(Oid relid, const MqColumn *cols, int ncols,
									const char *key_col);
extern MqRowDelete *mq_delete_begin_ordered(Oid relid, const MqColumn *cols, int ncols,
											const char *lead, const char *next,
											bool lead_desc);
#define MQ_DELETE_AFTER			0x01	/* next > from, not >= */
#define MQ_DELETE_SKIP_LOCKED	0x02
#define MQ_DELETE_LATEST		0x04	/* the latest snapshot, also in RR */
/* the index entries that followed the last row a scan deleted */
#define MQ_INDEX_TRAIL_LEN 3
typedef struct MqIndexTrail
{
	int			n;
	int64		next[MQ_INDEX_TRAIL_LEN];	/* their second key column */
	ItemPointerData tid[MQ_INDEX_TRAIL_LEN];
} MqIndexTrail;
extern int	mq_delete_first(MqRowDelete *d, Datum lead, int64 from, int64 upto, int limit,
							int flags, MqRowVisitor each, void *arg, MqIndexTrail *trail);
extern bool mq_delete_tid(MqRowDelete *d, ItemPointer tid, int flags, MqRowFilter accept,
						  MqRowVisitor each, void *arg);
extern bool mq_delete_key(MqRowDelete *d, int64 key, MqRowFilter accept, void *arg,
						  Datum **values, bool **isnull);
extern void mq_delete_end(MqRowDelete *d);
extern Datum mq_spi_get(int row, int col, bool *isnull);
extern int64 mq_spi_int8(int row, int col);
extern void mq_srf_materialize(FunctionCallInfo fcinfo);
extern void mq_check_queue_name(const char *name);
extern char *mq_text_to_queue_name(text *t);
extern char *mq_queue_name_arg(FunctionCallInfo fcinfo, int argno);
extern void mq_require_primary(FunctionCallInfo fcinfo);
extern Oid	mq_role_arg(FunctionCallInfo fcinfo, int argno);
extern uint64 mq_random_u64(void);
extern text *mq_receipt_text(int64 receipt);
extern int64 mq_receipt_parse(text *t);
extern Jsonb *mq_headers_set(Jsonb *headers, const char *key, JsonbValue *value);

#endif							/* MQ_UTIL_H */
