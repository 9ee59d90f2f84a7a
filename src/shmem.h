/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  Shared memory: per-queue entries, lanes and heads, per-backend slots.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MQ_SHMEM_H
#define MQ_SHMEM_H

#include "nodes/pg_list.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/itemptr.h"
#include "storage/spin.h"
#include "utils/snapshot.h"
#include "utils/timestamp.h"

#define MQ_MAX_LANES		8		/* distinct priorities tracked per queue */

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
	MQC_BACKLOG,				/* grouped messages behind their group's current one */
	MQC_GROUPS,					/* message groups that have messages */
	MQC_GROUPS_READY,			/* grouped messages in the ready table */
	MQC_GROUPS_IN_FLIGHT,		/* grouped messages leased */
	MQC_TOTAL_SENT,
	MQC_TOTAL_ACKED,
	MQC_TOTAL_DEAD_LETTERED,
	MQC_NUM
} MqCounter;

#define MQC_FIRST_TOTAL MQC_TOTAL_SENT

#define MQ_NUM_GAUGES	8		/* MQC_READY .. MQC_GROUPS_IN_FLIGHT */

/* MqQueueShared.gauges_state */
#define MQ_GAUGES_UNKNOWN	0	/* not counted since the entry was made */
#define MQ_GAUGES_COUNTING	1	/* a count from the tables is running */
#define MQ_GAUGES_VALID		2	/* counters[] hold the gauges */

typedef struct MqQueueKey
{
	Oid			dboid;
	Oid			ready_relid;
} MqQueueKey;

/* Raise (lower) *v to target, unless it is higher (lower) already. */
static inline void
mq_atomic_raise_u64(pg_atomic_uint64 *v, uint64 target)
{
	uint64		cur = pg_atomic_read_u64(v);

	while (target > cur && !pg_atomic_compare_exchange_u64(v, &cur, target))
		;
}

static inline void
mq_atomic_lower_u64(pg_atomic_uint64 *v, uint64 target)
{
	uint64		cur = pg_atomic_read_u64(v);

	while (target < cur && !pg_atomic_compare_exchange_u64(v, &cur, target))
		;
}

/*
 * The seq of a ready row, its place in the dequeue order within a priority:
 * the time it became ready (sent, or came due), in microseconds, times 256,
 * so that ready inserts in one microsecond can still count up (src/insert.c).
 */
#define MQ_SEQ_OF(ts) ((uint64) Max((ts), 0) << 8)

typedef struct MqQueueShared
{
	MqQueueKey	key;
	slock_t		mutex;			/* protects the lane fields below */
	bool		lanes_known;	/* lanes[] lists every priority present */
	bool		lanes_overflow; /* more priorities than MQ_MAX_LANES */
	int			nlanes;
	MqLane		lanes[MQ_MAX_LANES];	/* sorted by priority, highest first */
	pg_atomic_uint64 max_seq;	/* highest seq handed to a fresh ready row */
	pg_atomic_uint64 next_due;	/* no wait row is due before this (encoded) */
	pg_atomic_uint64 wait_low;	/* no wait row has vt below this (encoded) */
	pg_atomic_uint64 clock_high;	/* latest clock a promoter used (encoded) */
	pg_atomic_uint64 promote_until; /* a promoter's claim (encoded time) */
	pg_atomic_uint64 group_gap;	/* gseq gap a group's settle last saw */
	pg_atomic_uint32 gauges_state;	/* MQ_GAUGES_*: counters of the gauges */
	pg_atomic_uint32 gauges_epoch;	/* counts finished (changed under mutex) */
	pg_atomic_uint32 totals_loaded; /* totals read from mq.queue_totals */
	pg_atomic_uint64 counters[MQC_NUM];
	pg_atomic_uint32 notify_pending;	/* NOTIFY owed by the worker */
	pg_atomic_uint32 waiters;	/* blocked receivers */
	pg_atomic_uint64 ready_generation;	/* bumped by commits that wake */
	pg_atomic_uint64 wait_look;	/* a sleeper wakes then for due rows (encoded) */
	pg_atomic_uint64 retention_due; /* archive rows past retention by (encoded; 0: look) */
	pg_atomic_uint64 saved_totals[MQC_NUM - MQC_FIRST_TOTAL];	/* last saved by the worker */
	ConditionVariable ready_cv;
	char		name[NAMEDATALEN];
} MqQueueShared;

/* What the worker has to do for one queue (mq_shared_work) */
#define MQW_PROMOTE		(1 << 0)	/* next_due has come */
#define MQW_RETENTION	(1 << 1)	/* retention_due has come */
#define MQW_TOTALS		(1 << 2)	/* totals changed since last saved */

typedef struct MqQueueWork
{
	Oid			ready_relid;
	int			what;			/* MQW_* */
	int64		totals[MQC_NUM - MQC_FIRST_TOTAL];	/* when MQW_TOTALS */
	char		name[NAMEDATALEN];
} MqQueueWork;

/* timestamps kept in unsigned atomics, order preserved */
#define MQ_TS_ENCODE(t) ((uint64) (t) ^ (UINT64CONST(1) << 63))
#define MQ_TS_DECODE(u) ((TimestampTz) ((u) ^ (UINT64CONST(1) << 63)))

extern int	mq_max_queues;
extern void mq_shmem_init(void);
extern int	mq_backend_slot_count(void);
extern bool mq_shmem_available(void);
#define MQ_TRAIL_LEN 3
extern void mq_trail_put(Oid relid, uint32 keyhash, int64 first, int n, const int64 *next,
						 const ItemPointerData *tid);
extern bool mq_trail_next(Oid relid, uint32 keyhash, int64 gseq, int64 *next, ItemPointer tid);
extern MqQueueShared *mq_shared_queue(Oid ready_relid, const char *name, bool if_room);
extern void mq_shared_forget_queue(Oid dboid, Oid ready_relid);
extern void mq_shared_forget_database(Oid dboid);
extern MqQueueShared *mq_shared_find(Oid dboid, Oid ready_relid);
extern List *mq_shared_take_notifies(Oid dboid);
extern List *mq_shared_work(Oid dboid, TimestampTz now);
extern void mq_shared_clock_used(MqQueueShared *qs, TimestampTz now);
extern void mq_shared_totals_saved(Oid dboid, Oid ready_relid, const int64 *totals);
extern void mq_shared_note_due(MqQueueShared *qs, TimestampTz vt);
extern void mq_lane_register(MqQueueShared *qs, int32 priority);
extern bool mq_lanes_copy(MqQueueShared *qs, MqLane *lanes, int *nlanes);
extern uint64 mq_head_cap(MqQueueShared *qs);

/* gauges: commits, and counts from the tables that stay exact */
extern uint32 mq_gauges_epoch(MqQueueShared *qs);
extern void mq_gauges_commit(MqQueueShared *qs, TransactionId xid, uint32 epoch0,
							 const int64 *deltas);
extern bool mq_gauges_count_begin(MqQueueShared *qs);
extern void mq_gauges_count_snapshot(Snapshot snap);
extern bool mq_gauges_count_end(Snapshot snap, const int64 *counted);
extern void mq_gauges_count_abort(void);

/* per-backend slot: smallest seq / vt this transaction may still write */
extern void mq_slot_note_insert(MqQueueShared *qs);
extern TimestampTz mq_slot_note_wait(MqQueueShared *qs);
extern bool mq_slot_in_use(void);
extern void mq_slot_clear(void);
extern uint64 mq_slots_min_seq(MqQueueShared *qs);
extern TimestampTz mq_slots_min_vt(MqQueueShared *qs);

#endif							/* MQ_SHMEM_H */
