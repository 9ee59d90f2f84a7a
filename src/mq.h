/*-------------------------------------------------------------------------
 *
 * mq.h
 *	  Declarations shared by the files of the mq extension.
 *
 * A queue "x" is two tables: mq.q_x holds ready messages in dequeue order
 * (priority DESC, seq) and is only ever inserted into and deleted from;
 * mq.w_x holds messages that wait for something: a lease to end (in flight)
 * or a delay to pass (delayed, or backing off before a retry).  README.md,
 * section "Storage design", says why.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MQ_H
#define MQ_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/spin.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#define MQ_QUEUE_NAME_MAX	48
#define MQ_MAX_QUANTITY		10000
#define MQ_MAX_LANES		8		/* distinct priorities tracked per queue */

/* ---- shared memory (shmem.c) ---------------------------------------- */

/* One priority of one queue and where its dequeue scan may start. */
typedef struct MqLane
{
	int32		priority;
	uint64		head;			/* no live ready row of this lane has seq < head */
	uint64		generation;		/* bumped whenever head moves back */
} MqLane;

typedef enum MqCounter
{
	MQC_READY,
	MQC_IN_FLIGHT,
	MQC_DELAYED,
	MQC_DEAD,
	MQC_TOTAL_SENT,
	MQC_TOTAL_ACKED,
	MQC_TOTAL_DEAD_LETTERED,
	MQC_NUM
} MqCounter;

#define MQC_FIRST_TOTAL MQC_TOTAL_SENT

typedef struct MqQueueKey
{
	Oid			dboid;
	Oid			ready_relid;
} MqQueueKey;

typedef struct MqQueueShared
{
	MqQueueKey	key;
	slock_t		mutex;			/* protects the lane fields below */
	bool		lanes_known;	/* lanes[] lists every priority present */
	bool		lanes_overflow; /* more priorities than MQ_MAX_LANES */
	int			nlanes;
	MqLane		lanes[MQ_MAX_LANES];	/* sorted by priority, highest first */
	pg_atomic_uint64 max_seq;	/* highest seq handed to a ready insert */
	pg_atomic_uint64 next_due;	/* no wait row is due before this (encoded) */
	pg_atomic_uint64 wait_low;	/* no wait row has vt below this (encoded) */
	pg_atomic_uint64 promote_until; /* a promoter's claim (encoded time) */
	pg_atomic_uint32 gauges_valid;	/* ready/in_flight/delayed/dead counted */
	pg_atomic_uint32 totals_loaded; /* totals read from mq.queue_totals */
	pg_atomic_uint64 counters[MQC_NUM];
	pg_atomic_uint32 notify_pending;	/* NOTIFY owed by the worker */
	pg_atomic_uint32 waiters;	/* blocked receivers */
	pg_atomic_uint64 ready_generation;	/* bumped by commits that wake */
	ConditionVariable ready_cv;
	char		name[NAMEDATALEN];
} MqQueueShared;

extern bool mq_shmem_available(void);
extern MqQueueShared *mq_shared_queue(Oid ready_relid, const char *name);
extern void mq_shared_forget_queue(Oid ready_relid);
extern void mq_shared_collect(Oid dboid, List **entries);

/* per-backend slot: smallest seq this transaction may still insert */
extern void mq_slot_note_insert(MqQueueShared *qs);
extern void mq_slot_clear(void);
extern uint64 mq_slots_min_seq(MqQueueShared *qs);
extern TimestampTz mq_slot_note_wait(MqQueueShared *qs);
extern TimestampTz mq_slots_min_vt(MqQueueShared *qs);

/* timestamps kept in unsigned atomics, order preserved */
#define MQ_TS_ENCODE(t) ((uint64) (t) ^ (UINT64CONST(1) << 63))
#define MQ_TS_DECODE(u) ((TimestampTz) ((u) ^ (UINT64CONST(1) << 63)))

/* ---- catalog and per-backend cache (catalog.c) ---------------------- */

typedef enum MqPlanKind
{
	MQP_INSERT_READY,
	MQP_INSERT_WAIT,
	MQP_INSERT_READY_BATCH,
	MQP_INSERT_WAIT_BATCH,
	MQP_LEASE_LANE,
	MQP_LEASE_ANY,
	MQP_POP_LANE,
	MQP_POP_ANY,
	MQP_ACK,
	MQP_ACK_MANY,
	MQP_NACK_LOCK,
	MQP_RETRY,
	MQP_EXTEND,
	MQP_DEAD_TAKE,
	MQP_DEDUP_CLAIM,
	MQP_DEDUP_FIND,
	MQP_DUE_EXPIRED,
	MQP_DUE_READY,
	MQP_NEXT_DUE,
	MQP_LANES,
	MQP_NUM
} MqPlanKind;

typedef struct MqQueue
{
	char		name[NAMEDATALEN];	/* hash key */
	bool		valid;
	int32		max_attempts;
	Interval	visibility_timeout;
	Interval	retry_delay;
	Interval	retry_delay_max;
	bool		has_dlq;
	char		dlq[NAMEDATALEN];
	bool		has_retention;
	Interval	retention;
	bool		is_unlogged;
	Oid			ready_relid;
	Oid			wait_relid;
	char	   *ready_table;	/* quoted, schema-qualified */
	char	   *wait_table;
	SPIPlanPtr	plans[MQP_NUM];
} MqQueue;

extern void mq_check_queue_name(const char *name);
extern char *mq_text_to_queue_name(text *t);
extern char *mq_queue_name_arg(FunctionCallInfo fcinfo, int argno);
extern MqQueue *mq_queue_lookup(const char *name, bool missing_ok);
extern void mq_queue_cache_flush(void);
extern SPIPlanPtr mq_queue_plan(MqQueue *q, MqPlanKind kind);
extern SPIPlanPtr mq_prepare(const char *sql, int nargs, Oid *argtypes);
extern int	mq_exec_plan(SPIPlanPtr plan, Datum *values, const char *nulls,
						 bool read_only, long count);
extern Oid	mq_catalog_relid(void);
extern Oid	mq_sequence_relid(void);
extern void mq_catalog_changed(void);
extern void mq_connect(void);
extern void mq_finish(void);
extern List *mq_all_queue_names(void);

/* ---- transaction state (mq.c) --------------------------------------- */

extern void mq_xact_count(MqQueueShared *qs, MqCounter c, int64 delta);
extern void mq_xact_lane_scan_begin(MqQueueShared *qs, int32 priority, uint64 head,
									uint64 generation, uint64 cap);
extern void mq_xact_lane_scan_end(MqQueueShared *qs, int32 priority, uint64 max_seq);
extern void mq_xact_note_due(MqQueueShared *qs, TimestampTz vt);
extern void mq_xact_all_lanes_back(MqQueueShared *qs);
extern void mq_xact_promoted(MqQueueShared *qs, TimestampTz wait_low);
extern void mq_xact_gauges_unsure(MqQueueShared *qs, bool always);
extern void mq_srf_materialize(FunctionCallInfo fcinfo);
extern TimestampTz mq_now(void);
extern TimestampTz mq_add_interval(TimestampTz t, const Interval *iv);
extern bool mq_interval_negative(const Interval *iv);
extern bool mq_interval_positive(const Interval *iv);

/* ---- messages (send.c, receive.c, ack.c, deadletter.c, promote.c) ---- */

typedef struct MqOutMessage
{
	int64		id;
	int32		priority;
	int32		attempt;
	TimestampTz enqueued_at;
	Jsonb	   *message;
	Jsonb	   *headers;		/* may be NULL */
	text	   *dedup_key;		/* may be NULL */
	text	   *last_error;		/* may be NULL */
} MqOutMessage;

extern int64 mq_insert_message(MqQueue *q, MqOutMessage *m, TimestampTz visible_at,
							   bool fresh_id);
extern int64 mq_insert_message_dedup(MqQueue *q, MqOutMessage *m, TimestampTz visible_at,
									 bool fresh_id, bool *duplicate);
extern void mq_read_dead_row(MqOutMessage *m);
extern void mq_read_message_row(SPITupleTable *rows, uint64 row, MqOutMessage *m);
extern bool mq_copy_lanes(MqQueue *q, MqQueueShared *qs, MqLane *lanes, int *nlanes);
extern uint64 mq_head_cap(MqQueueShared *qs);
extern int64 mq_maintain_pass(void);
extern int64 mq_maintain_queue(const char *name, bool full);
extern bool mq_maintain_full_pass(void);
extern void mq_check_headers(Jsonb *headers);
extern void mq_note_due(MqQueue *q, MqQueueShared *qs, TimestampTz vt);
extern MqQueueShared *mq_queue_shared(MqQueue *q);
extern void mq_dead_letter(MqQueue *q, MqOutMessage *m, TimestampTz dead_at);
extern int64 mq_promote_due(MqQueue *q, bool force);
extern Interval *mq_backoff(MqQueue *q, int32 attempt);
extern void mq_ready_registered(MqQueue *q, MqQueueShared *qs, int32 priority);
extern void mq_ensure_gauges(MqQueue *q, MqQueueShared *qs);
extern void mq_ensure_totals(MqQueue *q, MqQueueShared *qs);
extern int64 mq_flush_totals(void);

/* ---- worker, notifications, waiting (worker.c, notify.c, wait.c) ---- */

extern bool mq_worker_enabled;
extern int	mq_worker_naptime;
extern bool mq_notify_enabled;
extern void mq_worker_init(void);
extern Size mq_worker_shmem_size(void);
extern void mq_worker_shmem_startup(void);
extern void mq_worker_wake(Oid dboid);
extern void mq_worker_at_commit(bool committed);
extern void mq_notify_mark(MqQueueShared *qs);
extern void mq_notify_send_pending(void);
extern void mq_wait_wake(MqQueueShared *qs, int64 k);
extern uint64 mq_wait_generation(MqQueueShared *qs);
extern void mq_wait_register(MqQueueShared *qs);
extern void mq_wait_unregister(MqQueueShared *qs);
extern void mq_wait_sleep(MqQueueShared *qs, uint64 generation, TimestampTz deadline);

/* helpers to read SPI results */
extern Datum mq_spi_get(int row, int col, bool *isnull);
extern int64 mq_spi_int8(int row, int col);

#endif							/* MQ_H */
