/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Shared memory of mq: one entry per queue (its lanes and their heads,
 *	  counters, the earliest due time of its wait table) and one slot per
 *	  backend saying the smallest seq its open transaction may still
 *	  insert; and the trails of message groups, hints of where each
 *	  group's next messages lie in its backlog.  Only atomics and spinlocks
 *	  here: no SQL, no catalog.
 *
 * All of it exists only when mq is in shared_preload_libraries; without it
 * every caller falls back to plain scans and counts, which are correct but
 * slower.  Nothing here is durable: after a restart heads start at zero and
 * gauges are counted again from the tables.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/twophase.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "postmaster/autovacuum.h"
#include "replication/walsender.h"
#include "postmaster/bgworker_internals.h"
#include "utils/hsearch.h"
#include "utils/snapshot.h"

#include "shmem.h"

typedef struct MqSlot
{
	pg_atomic_uint32 dboid;
	pg_atomic_uint32 relid;		/* the one queue written, or InvalidOid: any */
	pg_atomic_uint64 min_seq;	/* PG_UINT64_MAX when nothing is pending */
	pg_atomic_uint64 min_vt;	/* encoded; PG_UINT64_MAX when nothing */
} MqSlot;

/*
 * The one count of gauges from the tables in progress in the cluster
 * (src/counters.c says how it stays exact without locking the queue).
 * Commits to the queue being counted land here instead of in its counters:
 * those the count's snapshot cannot see (xid at or after snap_xmax) add up
 * in "after"; the others, which the count may or may not include, wait in
 * the journal until the count decides.
 */
#define MQ_JOURNAL_SIZE 1024

typedef struct MqGaugeCount
{
	slock_t		mutex;
	MqQueueKey	key;			/* the queue being counted; dboid 0: none */
	int			owner_pid;
	TransactionId snap_xmax;	/* invalid until the snapshot is taken */
	int64		after[MQ_NUM_GAUGES];
	bool		overflow;		/* the journal filled up: count again later */
	/* the snapshot of the last count that finished, for late committers */
	MqQueueKey	last_key;
	uint32		last_epoch;		/* the epoch that count ended with */
	bool		last_usable;
	TransactionId last_xmin;
	TransactionId last_xmax;
	uint32		last_xcnt;
	TransactionId *last_xip;	/* max_xip entries, after the slots */
	uint32		max_xip;
	int			njournal;
	struct
	{
		TransactionId xid;
		int64		deltas[MQ_NUM_GAUGES];
	}			journal[MQ_JOURNAL_SIZE];
} MqGaugeCount;

typedef struct MqSharedState
{
	LWLock	   *lock;			/* protects the queue hash */
	MqGaugeCount count;
	int			nslots;
	MqSlot		slots[FLEXIBLE_ARRAY_MEMBER];
} MqSharedState;

int			mq_max_queues = 1024;

static MqSharedState *mqs_state = NULL;
static HTAB *mqs_queues = NULL;
static MqSlot *mqs_my_slot = NULL;
static bool mqs_slot_dirty = false;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type mqs_prev_request_hook = NULL;
#endif
static shmem_startup_hook_type mqs_prev_startup_hook = NULL;

static bool mqs_slot_covers(MqSlot *slot, MqQueueShared *qs);

/* One slot per process that may run a transaction (also src/deliveries.c). */
int
mq_backend_slot_count(void)
{
#if PG_VERSION_NUM >= 150000
	return MaxBackends + 1;
#else
	return MaxConnections + autovacuum_max_workers + 1 +
		max_worker_processes + max_wal_senders + 1;
#endif
}

/* Transactions a snapshot can list as running. */
static uint32
mqs_max_xip(void)
{
	return (uint32) (mq_backend_slot_count() + max_prepared_xacts);
}

/*
 * A group's trail: the backlog index entries that followed the one a settle
 * took, as its scan read them (src/group.c says why that order holds).
 * One slot per (database, backlog, hash of the group key), overwritten by
 * the next group that hashes there: a hint, verified against the row
 * before use.  Written as PgBackendStatus is: the count is odd while a
 * writer is inside, and a reader that sees it change reads nothing; a
 * writer that finds another inside leaves the slot to it.
 */
#define MQ_TRAIL_SLOTS 16384	/* a power of 2 */

typedef struct MqTrailSlot
{
	pg_atomic_uint32 changecount;
	Oid			dboid;
	Oid			relid;
	uint32		keyhash;
	int32		n;				/* of gseq[]; tid[i] is gseq[i + 1]'s */
	int64		gseq[MQ_TRAIL_LEN + 1];
	ItemPointerData tid[MQ_TRAIL_LEN];
} MqTrailSlot;

static MqTrailSlot *mqs_trails = NULL;

static Size
mqs_size(void)
{
	Size		size;

	size = add_size(offsetof(MqSharedState, slots),
					mul_size(mq_backend_slot_count(), sizeof(MqSlot)));
	size = add_size(size, mul_size(mqs_max_xip(), sizeof(TransactionId)));
	size = add_size(size, hash_estimate_size(mq_max_queues, sizeof(MqQueueShared)));
	size = add_size(size, mul_size(MQ_TRAIL_SLOTS, sizeof(MqTrailSlot)));
	return size;
}

static void
mqs_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (mqs_prev_request_hook)
		mqs_prev_request_hook();
#endif
	RequestAddinShmemSpace(mqs_size());
	RequestNamedLWLockTranche("mq", 1);	/* the queue hash */
}

static void
mqs_startup(void)
{
	bool		found;
	HASHCTL		info;
	int			nslots = mq_backend_slot_count();

	if (mqs_prev_startup_hook)
		mqs_prev_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	mqs_state = ShmemInitStruct("mq state",
								add_size(add_size(offsetof(MqSharedState, slots),
												  mul_size(nslots, sizeof(MqSlot))),
										 mul_size(mqs_max_xip(), sizeof(TransactionId))),
								&found);
	if (!found)
	{
		mqs_state->lock = &(GetNamedLWLockTranche("mq"))->lock;
		SpinLockInit(&mqs_state->count.mutex);
		mqs_state->count.key.dboid = InvalidOid;
		mqs_state->count.last_usable = false;
		mqs_state->count.max_xip = mqs_max_xip();
		mqs_state->count.last_xip = (TransactionId *) &mqs_state->slots[nslots];
		mqs_state->nslots = nslots;
		for (int i = 0; i < nslots; i++)
		{
			pg_atomic_init_u32(&mqs_state->slots[i].dboid, InvalidOid);
			pg_atomic_init_u32(&mqs_state->slots[i].relid, InvalidOid);
			pg_atomic_init_u64(&mqs_state->slots[i].min_seq, PG_UINT64_MAX);
			pg_atomic_init_u64(&mqs_state->slots[i].min_vt, PG_UINT64_MAX);
		}
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(MqQueueKey);
	info.entrysize = sizeof(MqQueueShared);
	/* all entries allocated now: the hash never eats the lock table's reserve */
	mqs_queues = ShmemInitHash("mq queues", mq_max_queues, mq_max_queues,
							   &info, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	mqs_trails = ShmemInitStruct("mq group trails",
								 mul_size(MQ_TRAIL_SLOTS, sizeof(MqTrailSlot)), &found);
	if (!found)
	{
		memset(mqs_trails, 0, mul_size(MQ_TRAIL_SLOTS, sizeof(MqTrailSlot)));
		for (int i = 0; i < MQ_TRAIL_SLOTS; i++)
			pg_atomic_init_u32(&mqs_trails[i].changecount, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Called from _PG_init while preloading. */
void
mq_shmem_init(void)
{
#if PG_VERSION_NUM >= 150000
	mqs_prev_request_hook = shmem_request_hook;
	shmem_request_hook = mqs_request;
#else
	mqs_request();
#endif
	mqs_prev_startup_hook = shmem_startup_hook;
	shmem_startup_hook = mqs_startup;
}

bool
mq_shmem_available(void)
{
	return mqs_state != NULL && mqs_queues != NULL;
}

/* ---- group trails ---------------------------------------------------- */

static MqTrailSlot *
mqs_trail_slot(Oid relid, uint32 keyhash)
{
	uint32		h = hash_combine(hash_combine(MyDatabaseId, relid), keyhash);

	return &mqs_trails[murmurhash32(h) & (MQ_TRAIL_SLOTS - 1)];
}

/*
 * Record that, in backlog relid, the group of keyhash had just taken its
 * message at gseq first, and that the n index entries after it (at most
 * MQ_TRAIL_LEN) were next[] at tid[].
 */
void
mq_trail_put(Oid relid, uint32 keyhash, int64 first, int n, const int64 *next,
			 const ItemPointerData *tid)
{
	MqTrailSlot *slot;
	uint32		count;

	Assert(n <= MQ_TRAIL_LEN);
	if (mqs_trails == NULL || n == 0)
		return;
	slot = mqs_trail_slot(relid, keyhash);
	count = pg_atomic_read_u32(&slot->changecount);
	if ((count & 1) != 0 ||
		!pg_atomic_compare_exchange_u32(&slot->changecount, &count, count + 1))
		return;					/* another writer is inside: its trail will do */
	/* the exchange was a full barrier */
	slot->dboid = MyDatabaseId;
	slot->relid = relid;
	slot->keyhash = keyhash;
	slot->n = n + 1;
	slot->gseq[0] = first;
	memcpy(&slot->gseq[1], next, n * sizeof(int64));
	memcpy(slot->tid, tid, n * sizeof(ItemPointerData));
	pg_write_barrier();
	pg_atomic_write_u32(&slot->changecount, count + 2);
}

/*
 * The entry that came right after gseq in the trail of keyhash's group in
 * backlog relid, if one was recorded: its gseq and heap TID.
 */
bool
mq_trail_next(Oid relid, uint32 keyhash, int64 gseq, int64 *next, ItemPointer tid)
{
	MqTrailSlot *slot;
	MqTrailSlot copy;
	uint32		count;

	if (mqs_trails == NULL)
		return false;
	slot = mqs_trail_slot(relid, keyhash);
	count = pg_atomic_read_u32(&slot->changecount);
	if ((count & 1) != 0)
		return false;
	pg_read_barrier();
	memcpy(&copy, slot, sizeof(copy));
	pg_read_barrier();
	if (pg_atomic_read_u32(&slot->changecount) != count ||
		copy.dboid != MyDatabaseId || copy.relid != relid || copy.keyhash != keyhash)
		return false;
	for (int i = 0; i + 1 < copy.n && i < MQ_TRAIL_LEN; i++)
	{
		if (copy.gseq[i] == gseq)
		{
			*next = copy.gseq[i + 1];
			*tid = copy.tid[i];
			return true;
		}
	}
	return false;
}

static void
mqs_init_entry(MqQueueShared *qs, const char *name)
{
	SpinLockInit(&qs->mutex);
	qs->lanes_known = false;
	qs->lanes_overflow = false;
	qs->nlanes = 0;
	pg_atomic_init_u64(&qs->max_seq, 0);
	pg_atomic_init_u64(&qs->group_gap, 0);
	pg_atomic_init_u64(&qs->next_due, 0);	/* unknown: look once */
	pg_atomic_init_u64(&qs->wait_low, 0);
	pg_atomic_init_u64(&qs->clock_high, 0);
	pg_atomic_init_u64(&qs->promote_until, 0);
	pg_atomic_init_u32(&qs->gauges_state, MQ_GAUGES_UNKNOWN);
	pg_atomic_init_u32(&qs->gauges_epoch, 0);
	pg_atomic_init_u32(&qs->totals_loaded, 0);
	for (int i = 0; i < MQC_NUM; i++)
		pg_atomic_init_u64(&qs->counters[i], 0);
	pg_atomic_init_u32(&qs->notify_pending, 0);
	pg_atomic_init_u32(&qs->waiters, 0);
	pg_atomic_init_u64(&qs->ready_generation, 0);
	pg_atomic_init_u64(&qs->wait_look, 0);
	pg_atomic_init_u64(&qs->retention_due, 0);	/* unknown: look once */
	for (int i = 0; i < MQC_NUM - MQC_FIRST_TOTAL; i++)
		pg_atomic_init_u64(&qs->saved_totals[i], 0);
	ConditionVariableInit(&qs->ready_cv);
	strlcpy(qs->name, name, NAMEDATALEN);
}

/*
 * The shared entry of a queue, created on first use.  Returns NULL without
 * preload.  When all mq.max_queues entries are in use, raises 53400, or
 * returns NULL if if_room (for readers that can do without).
 */
MqQueueShared *
mq_shared_queue(Oid ready_relid, const char *name, bool if_room)
{
	MqQueueKey	key;
	MqQueueShared *qs;
	bool		found;

	if (!mq_shmem_available())
		return NULL;
	qs = mq_shared_find(MyDatabaseId, ready_relid);
	if (qs)
		return qs;

	memset(&key, 0, sizeof(key));
	key.dboid = MyDatabaseId;
	key.ready_relid = ready_relid;
	LWLockAcquire(mqs_state->lock, LW_EXCLUSIVE);
	qs = hash_search(mqs_queues, &key, HASH_ENTER_NULL, &found);
	if (qs && !found)
		mqs_init_entry(qs, name);
	LWLockRelease(mqs_state->lock);
	if (qs == NULL && !if_room)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many queues in use for mq's shared memory"),
				 errdetail("Queue \"%s\" needs an entry, and all %d entries (mq.max_queues) are taken by other queues of this cluster.",
						   name, mq_max_queues),
				 errhint("Raise mq.max_queues and restart the server, or drop unused queues.")));
	return qs;
}

/*
 * Remove the entry of a queue whose tables were dropped by a transaction
 * that committed (src/xact.c calls this at commit, never earlier: until
 * then the drop may roll back, and that transaction's own bookkeeping
 * points at the entry).  Nobody else uses it: users hold a lock on the
 * ready table, which the drop held exclusively until its commit.
 */
void
mq_shared_forget_queue(Oid dboid, Oid ready_relid)
{
	MqQueueKey	key;

	if (!mq_shmem_available())
		return;
	memset(&key, 0, sizeof(key));
	key.dboid = dboid;
	key.ready_relid = ready_relid;
	LWLockAcquire(mqs_state->lock, LW_EXCLUSIVE);
	hash_search(mqs_queues, &key, HASH_REMOVE, NULL);
	LWLockRelease(mqs_state->lock);
}

/* After DROP DATABASE: every entry of that database goes. */
void
mq_shared_forget_database(Oid dboid)
{
	HASH_SEQ_STATUS status;
	MqQueueShared *qs;

	if (!mq_shmem_available())
		return;
	LWLockAcquire(mqs_state->lock, LW_EXCLUSIVE);
	hash_seq_init(&status, mqs_queues);
	while ((qs = hash_seq_search(&status)) != NULL)
		if (qs->key.dboid == dboid)
			hash_search(mqs_queues, &qs->key, HASH_REMOVE, NULL);
	LWLockRelease(mqs_state->lock);
}

/* The entry of this table of this database, if there is one (never made here). */
MqQueueShared *
mq_shared_find(Oid dboid, Oid ready_relid)
{
	MqQueueKey	key;
	MqQueueShared *qs;

	if (!mq_shmem_available())
		return NULL;
	memset(&key, 0, sizeof(key));
	key.dboid = dboid;
	key.ready_relid = ready_relid;
	LWLockAcquire(mqs_state->lock, LW_SHARED);
	qs = hash_search(mqs_queues, &key, HASH_FIND, NULL);
	LWLockRelease(mqs_state->lock);
	return qs;
}

/*
 * Names of the queues of a database whose notification is owed, each
 * claimed (its mark cleared) under the lock, so that an entry removed
 * meanwhile is never read.
 */
List *
mq_shared_take_notifies(Oid dboid)
{
	HASH_SEQ_STATUS status;
	MqQueueShared *qs;
	List	   *names = NIL;

	if (!mq_shmem_available())
		return NIL;
	LWLockAcquire(mqs_state->lock, LW_SHARED);
	hash_seq_init(&status, mqs_queues);
	while ((qs = hash_seq_search(&status)) != NULL)
	{
		if (qs->key.dboid != dboid ||
			pg_atomic_read_u32(&qs->notify_pending) == 0 ||
			pg_atomic_exchange_u32(&qs->notify_pending, 0) == 0)
			continue;
		names = lappend(names, pstrdup(qs->name));
	}
	LWLockRelease(mqs_state->lock);
	return names;
}

/*
 * The queues of a database that have work for the worker now, as a List of
 * MqQueueWork *: promotions due (next_due has come), retention due, totals changed since the
 * worker last saved them.  Memory only: an idle queue costs a few atomic
 * reads here and nothing else, so a pass costs what its due queues cost.
 */
List *
mq_shared_work(Oid dboid, TimestampTz now)
{
	HASH_SEQ_STATUS status;
	MqQueueShared *qs;
	List	   *work = NIL;
	uint64		enow = MQ_TS_ENCODE(now);

	if (!mq_shmem_available())
		return NIL;
	LWLockAcquire(mqs_state->lock, LW_SHARED);
	hash_seq_init(&status, mqs_queues);
	while ((qs = hash_seq_search(&status)) != NULL)
	{
		int			what = 0;
		uint64		due;

		if (qs->key.dboid != dboid)
			continue;
		due = pg_atomic_read_u64(&qs->next_due);
		if (due <= enow)
			what |= MQW_PROMOTE;
		if (pg_atomic_read_u64(&qs->retention_due) <= enow)
			what |= MQW_RETENTION;
		for (int i = 0; i < MQC_NUM - MQC_FIRST_TOTAL; i++)
			if (pg_atomic_read_u64(&qs->counters[MQC_FIRST_TOTAL + i]) !=
				pg_atomic_read_u64(&qs->saved_totals[i]))
				what |= MQW_TOTALS;
		if (what != 0)
		{
			MqQueueWork *w = palloc0(sizeof(MqQueueWork));

			w->ready_relid = qs->key.ready_relid;
			w->what = what;
			strlcpy(w->name, qs->name, NAMEDATALEN);
			work = lappend(work, w);
		}
	}
	LWLockRelease(mqs_state->lock);
	return work;
}

/* After the commit that saved them: these totals are in mq.queue_totals. */
void
mq_shared_totals_saved(Oid dboid, Oid ready_relid, const int64 *totals)
{
	MqQueueShared *qs;

	/* under the lock: the entry may go meanwhile (a committed drop) */
	if (!mq_shmem_available())
		return;
	LWLockAcquire(mqs_state->lock, LW_SHARED);
	{
		MqQueueKey	key;

		memset(&key, 0, sizeof(key));
		key.dboid = dboid;
		key.ready_relid = ready_relid;
		qs = hash_search(mqs_queues, &key, HASH_FIND, NULL);
		if (qs)
			for (int i = 0; i < MQC_NUM - MQC_FIRST_TOTAL; i++)
				pg_atomic_write_u64(&qs->saved_totals[i], (uint64) totals[i]);
	}
	LWLockRelease(mqs_state->lock);
}

/* ---- lanes ---------------------------------------------------------- */

/*
 * A lane is one priority of one queue; its head is a seq below which the
 * lane holds no live row, so a dequeue scan starts there instead of walking
 * the dead index entries of everything consumed before (which vacuum cannot
 * remove while any snapshot holds the xmin horizon back).  Heads move
 * forward only at the commit of a consumer and back at the abort of anyone
 * who deleted ready rows (src/xact.c says when that is safe).
 */

/* A producer is about to insert a ready row of this priority. */
void
mq_lane_register(MqQueueShared *qs, int32 priority)
{
	int			i;

	if (qs == NULL)
		return;
	SpinLockAcquire(&qs->mutex);
	if (!qs->lanes_overflow)
	{
		for (i = 0; i < qs->nlanes; i++)
			if (qs->lanes[i].priority <= priority)
				break;
		if (i >= qs->nlanes || qs->lanes[i].priority != priority)
		{
			if (qs->nlanes >= MQ_MAX_LANES)
				qs->lanes_overflow = true;
			else
			{
				memmove(&qs->lanes[i + 1], &qs->lanes[i],
						(qs->nlanes - i) * sizeof(MqLane));
				qs->lanes[i].priority = priority;
				qs->lanes[i].head = 0;
				qs->lanes[i].generation = 0;
				qs->nlanes++;
			}
		}
	}
	SpinLockRelease(&qs->mutex);
}

/*
 * A consistent copy of the lanes, for one dequeue.  Returns false when the
 * lanes cannot be used (not discovered yet, too many priorities).
 */
bool
mq_lanes_copy(MqQueueShared *qs, MqLane *lanes, int *nlanes)
{
	bool		usable;

	SpinLockAcquire(&qs->mutex);
	usable = qs->lanes_known && !qs->lanes_overflow;
	*nlanes = qs->nlanes;
	memcpy(lanes, qs->lanes, qs->nlanes * sizeof(MqLane));
	SpinLockRelease(&qs->mutex);
	return usable;
}

/*
 * How far heads may move after this dequeue: not past a seq some open
 * transaction may still insert, nor past anything handed out after now.
 * max_seq must be read before the slots (src/shmem.c says why).
 */
uint64
mq_head_cap(MqQueueShared *qs)
{
	uint64		cap = pg_atomic_read_u64(&qs->max_seq) + 1;
	uint64		pending;

	pg_memory_barrier();
	pending = mq_slots_min_seq(qs);
	return Min(cap, pending);
}

/*
 * A promoter is about to read the slots and set the low mark no later than
 * now: from here on, writers use no clock below it (mq_slot_note_wait).
 */
void
mq_shared_clock_used(MqQueueShared *qs, TimestampTz now)
{
	mq_atomic_raise_u64(&qs->clock_high, MQ_TS_ENCODE(now));
	pg_memory_barrier();
}

/*
 * A wait row with this vt exists (or will at commit): promotion must look
 * by then.
 */
void
mq_shared_note_due(MqQueueShared *qs, TimestampTz vt)
{
	mq_atomic_lower_u64(&qs->next_due, MQ_TS_ENCODE(vt));
}

/* ---- gauges counted from the tables -------------------------------- */

static MqQueueShared *mqs_counting = NULL;	/* the count this backend runs */
static bool mqs_exit_registered = false;

/* Whether a top-level xid is visible in snap (no subtransaction lookups). */
static bool
mqs_xid_visible(TransactionId xid, Snapshot snap)
{
	if (!TransactionIdIsValid(xid))
		return false;
	if (TransactionIdPrecedes(xid, snap->xmin))
		return true;
	if (TransactionIdFollowsOrEquals(xid, snap->xmax))
		return false;
	for (uint32 i = 0; i < snap->xcnt; i++)
		if (TransactionIdEquals(xid, snap->xip[i]))
			return false;
	return true;
}

/* The epoch of q's gauges, read before a commit becomes visible. */
uint32
mq_gauges_epoch(MqQueueShared *qs)
{
	return pg_atomic_read_u32(&qs->gauges_epoch);
}

static void
mqs_gauges_add(MqQueueShared *qs, const int64 *deltas)
{
	for (int i = 0; i < MQ_NUM_GAUGES; i++)
		if (deltas[i] != 0)
			pg_atomic_fetch_add_u64(&qs->counters[i], (uint64) deltas[i]);
}

/*
 * A transaction with top-level xid committed these gauge deltas to the
 * queue of qs (called from the commit callback, so the transaction is
 * already visible to new snapshots).  epoch0 is the gauges' epoch read
 * before it became visible.  Valid gauges and an unchanged epoch: no count
 * finished since, none can have seen the transaction: add.  A count that
 * finished meanwhile may or may not have seen it: its snapshot, kept, says
 * (else the gauges become unknown and are counted again).  Unknown gauges:
 * the count to come sees the transaction.
 */
void
mq_gauges_commit(MqQueueShared *qs, TransactionId xid, uint32 epoch0, const int64 *deltas)
{
	MqGaugeCount *c = &mqs_state->count;
	uint32		state;

	SpinLockAcquire(&qs->mutex);
	state = pg_atomic_read_u32(&qs->gauges_state);
	if (state == MQ_GAUGES_VALID && pg_atomic_read_u32(&qs->gauges_epoch) == epoch0)
		mqs_gauges_add(qs, deltas);
	SpinLockRelease(&qs->mutex);
	if (state == MQ_GAUGES_UNKNOWN ||
		(state == MQ_GAUGES_VALID && pg_atomic_read_u32(&qs->gauges_epoch) == epoch0))
		return;

	/* a count runs, or finished since: under both locks (count's first) */
	SpinLockAcquire(&c->mutex);
	SpinLockAcquire(&qs->mutex);
	state = pg_atomic_read_u32(&qs->gauges_state);
	if (state == MQ_GAUGES_COUNTING && memcmp(&c->key, &qs->key, sizeof(MqQueueKey)) == 0)
	{
		if (TransactionIdIsValid(c->snap_xmax) && TransactionIdIsValid(xid) &&
			TransactionIdFollowsOrEquals(xid, c->snap_xmax))
		{
			for (int i = 0; i < MQ_NUM_GAUGES; i++)
				c->after[i] += deltas[i];
		}
		else if (c->njournal < MQ_JOURNAL_SIZE)
		{
			c->journal[c->njournal].xid = xid;
			memcpy(c->journal[c->njournal].deltas, deltas, sizeof(int64) * MQ_NUM_GAUGES);
			c->njournal++;
		}
		else
			c->overflow = true;
	}
	else if (state == MQ_GAUGES_VALID)
	{
		uint32		epoch = pg_atomic_read_u32(&qs->gauges_epoch);

		if (epoch == epoch0)
			mqs_gauges_add(qs, deltas);
		else if (epoch == epoch0 + 1 && c->last_usable && c->last_epoch == epoch &&
				 memcmp(&c->last_key, &qs->key, sizeof(MqQueueKey)) == 0)
		{
			SnapshotData snap;

			memset(&snap, 0, sizeof(snap));
			snap.xmin = c->last_xmin;
			snap.xmax = c->last_xmax;
			snap.xcnt = c->last_xcnt;
			snap.xip = c->last_xip;
			if (!mqs_xid_visible(xid, &snap))
				mqs_gauges_add(qs, deltas);
		}
		else
			pg_atomic_write_u32(&qs->gauges_state, MQ_GAUGES_UNKNOWN);
	}
	SpinLockRelease(&qs->mutex);
	SpinLockRelease(&c->mutex);
}

static void
mqs_count_release(int code, Datum arg)
{
	mq_gauges_count_abort();
}

/*
 * Start counting the gauges of qs, if nobody counts and they are unknown.
 * From here on, commits to qs go to the count's journal.  The caller then
 * takes its snapshot, publishes it with mq_gauges_count_snapshot, counts,
 * and ends with mq_gauges_count_end (or mq_gauges_count_abort on error).
 */
bool
mq_gauges_count_begin(MqQueueShared *qs)
{
	MqGaugeCount *c = &mqs_state->count;
	bool		mine = false;

	if (pg_atomic_read_u32(&qs->gauges_state) != MQ_GAUGES_UNKNOWN)
		return false;
	if (!mqs_exit_registered)
	{
		before_shmem_exit(mqs_count_release, (Datum) 0);
		mqs_exit_registered = true;
	}
	SpinLockAcquire(&c->mutex);
	if (!OidIsValid(c->key.dboid) &&
		pg_atomic_read_u32(&qs->gauges_state) == MQ_GAUGES_UNKNOWN)
	{
		c->key = qs->key;
		c->owner_pid = MyProcPid;
		c->snap_xmax = InvalidTransactionId;
		memset(c->after, 0, sizeof(c->after));
		c->overflow = false;
		c->njournal = 0;
		SpinLockAcquire(&qs->mutex);
		pg_atomic_write_u32(&qs->gauges_state, MQ_GAUGES_COUNTING);
		SpinLockRelease(&qs->mutex);
		mine = true;
	}
	SpinLockRelease(&c->mutex);
	if (mine)
	{
		mqs_counting = qs;
		pg_memory_barrier();	/* before the caller takes its snapshot */
	}
	return mine;
}

void
mq_gauges_count_snapshot(Snapshot snap)
{
	MqGaugeCount *c = &mqs_state->count;

	SpinLockAcquire(&c->mutex);
	c->snap_xmax = snap->xmax;
	SpinLockRelease(&c->mutex);
}

/*
 * The count with snap found counted[] (committed rows only).  The gauges
 * are that plus what commits invisible to snap changed.  Returns false if
 * the journal overflowed (the gauges stay unknown: count again later).
 */
bool
mq_gauges_count_end(Snapshot snap, const int64 *counted)
{
	MqGaugeCount *c = &mqs_state->count;
	MqQueueShared *qs = mqs_counting;
	int64		gauges[MQ_NUM_GAUGES];
	bool		ok;

	Assert(qs != NULL);
	memcpy(gauges, counted, sizeof(gauges));
	SpinLockAcquire(&c->mutex);
	ok = !c->overflow;
	if (ok)
	{
		for (int i = 0; i < MQ_NUM_GAUGES; i++)
			gauges[i] += c->after[i];
		for (int j = 0; j < c->njournal; j++)
			if (!mqs_xid_visible(c->journal[j].xid, snap))
				for (int i = 0; i < MQ_NUM_GAUGES; i++)
					gauges[i] += c->journal[j].deltas[i];
	}
	SpinLockAcquire(&qs->mutex);
	if (ok)
	{
		uint32		epoch = pg_atomic_read_u32(&qs->gauges_epoch) + 1;

		for (int i = 0; i < MQ_NUM_GAUGES; i++)
			pg_atomic_write_u64(&qs->counters[i], (uint64) gauges[i]);
		pg_atomic_write_u32(&qs->gauges_epoch, epoch);
		/* kept for commits that were on their way: see mq_gauges_commit */
		c->last_key = qs->key;
		c->last_epoch = epoch;
		c->last_usable = (snap->xcnt <= c->max_xip);
		if (c->last_usable)
		{
			c->last_xmin = snap->xmin;
			c->last_xmax = snap->xmax;
			c->last_xcnt = snap->xcnt;
			memcpy(c->last_xip, snap->xip, sizeof(TransactionId) * snap->xcnt);
		}
	}
	pg_atomic_write_u32(&qs->gauges_state, ok ? MQ_GAUGES_VALID : MQ_GAUGES_UNKNOWN);
	SpinLockRelease(&qs->mutex);
	c->key.dboid = InvalidOid;
	c->owner_pid = 0;
	SpinLockRelease(&c->mutex);
	mqs_counting = NULL;
	return ok;
}

/* The count of this backend failed: the gauges stay unknown. */
void
mq_gauges_count_abort(void)
{
	MqGaugeCount *c;

	if (mqs_counting == NULL)
		return;
	c = &mqs_state->count;
	SpinLockAcquire(&c->mutex);
	SpinLockAcquire(&mqs_counting->mutex);
	pg_atomic_write_u32(&mqs_counting->gauges_state, MQ_GAUGES_UNKNOWN);
	SpinLockRelease(&mqs_counting->mutex);
	c->key.dboid = InvalidOid;
	c->owner_pid = 0;
	SpinLockRelease(&c->mutex);
	mqs_counting = NULL;
}

/* ---- per-backend slots --------------------------------------------- */

static MqSlot *
mqs_slot(void)
{
	int			idx;

	if (mqs_my_slot)
		return mqs_my_slot;
#if PG_VERSION_NUM >= 170000
	idx = MyProcNumber;
#else
	idx = MyBackendId;
#endif
	if (idx < 0 || idx >= mqs_state->nslots)
		elog(ERROR, "mq: backend slot %d out of range", idx);
	mqs_my_slot = &mqs_state->slots[idx];
	return mqs_my_slot;
}

/*
 * Our slot, claimed for the queue of qs.  A slot names the one queue its
 * transaction wrote to, so that an open transaction holds back only that
 * queue's heads; a transaction that writes to a second queue turns it into
 * "any queue".  The owner fields are written before the bounds, and readers
 * read them after (barriers), so a reader that sees a bound sees its owner.
 */
/* A backend that leaves clears its slot (it may leave between transactions). */
static void
mqs_slot_release(int code, Datum arg)
{
	mq_slot_clear();
}

static MqSlot *
mqs_slot_for(MqQueueShared *qs)
{
	static bool exit_registered = false;
	MqSlot	   *slot = mqs_slot();
	bool		fresh = !mqs_slot_dirty;

	if (!exit_registered)
	{
		before_shmem_exit(mqs_slot_release, (Datum) 0);
		exit_registered = true;
	}

	if (fresh || pg_atomic_read_u32(&slot->dboid) != MyDatabaseId)
	{
		pg_atomic_write_u32(&slot->dboid, MyDatabaseId);
		pg_atomic_write_u32(&slot->relid, qs->key.ready_relid);
		pg_write_barrier();
	}
	else if (pg_atomic_read_u32(&slot->relid) != qs->key.ready_relid)
	{
		pg_atomic_write_u32(&slot->relid, InvalidOid);
		pg_write_barrier();
	}
	mqs_slot_dirty = true;
	return slot;
}

/*
 * Before a transaction allocates a seq for a ready insert, it publishes a
 * lower bound of that seq (the queue's max_seq, read now).  A consumer that
 * moves a lane head forward never passes the smallest published bound, and
 * never passes the max_seq it read before looking at the slots, so a row
 * that is not yet committed can never end up behind a head.
 */
void
mq_slot_note_insert(MqQueueShared *qs)
{
	MqSlot	   *slot;
	uint64		bound;

	if (qs == NULL)
		return;
	slot = mqs_slot_for(qs);
	bound = pg_atomic_read_u64(&qs->max_seq);
	if (bound < pg_atomic_read_u64(&slot->min_seq))
		pg_atomic_write_u64(&slot->min_seq, bound);
	pg_memory_barrier();
}

/*
 * The same for the wait tables, in time: before a transaction writes a wait
 * row it publishes the clock, and every vt it writes is later than that
 * (callers compute vt from the clock returned, or later).  A
 * promoter never moves a wait table's low mark past the smallest published
 * clock, nor past the clock it read before looking at the slots.
 */
TimestampTz
mq_slot_note_wait(MqQueueShared *qs)
{
	MqSlot	   *slot;
	TimestampTz now;
	uint64		published;
	bool		first;

	if (qs == NULL)
		return GetCurrentTimestamp();
	slot = mqs_slot_for(qs);
	published = pg_atomic_read_u64(&slot->min_vt);
	first = (published == PG_UINT64_MAX);
	if (first)
	{
		/*
		 * First a bound below any clock read next (the low mark as it
		 * stands), so that a promoter that reads the slots from now on sees
		 * us; one that read them before had already raised clock_high,
		 * which we read after.
		 */
		published = pg_atomic_read_u64(&qs->wait_low);
		pg_atomic_write_u64(&slot->min_vt, published);
		pg_memory_barrier();
	}

	/*
	 * The clock, but never below what a promoter used (a clock stepped back
	 * would put a row below the low mark it set), nor below our bound.  A
	 * first bound is then raised to it (every vt we write is later); a
	 * bound published earlier in the transaction stays, being below the vts
	 * written since.
	 */
	now = Max(GetCurrentTimestamp(), MQ_TS_DECODE(pg_atomic_read_u64(&qs->clock_high)));
	now = Max(now, MQ_TS_DECODE(published));
	if (first)
		pg_atomic_write_u64(&slot->min_vt, MQ_TS_ENCODE(now));
	pg_memory_barrier();
	return now;
}

/* Whether this backend's transaction published a bound. */
bool
mq_slot_in_use(void)
{
	return mqs_slot_dirty;
}

/* At the end of the transaction: nothing of ours is pending any more. */
void
mq_slot_clear(void)
{
	MqSlot	   *slot;

	if (!mqs_slot_dirty)
		return;
	pg_memory_barrier();
	slot = mqs_slot();
	pg_atomic_write_u64(&slot->min_seq, PG_UINT64_MAX);
	pg_atomic_write_u64(&slot->min_vt, PG_UINT64_MAX);
	mqs_slot_dirty = false;
}

TimestampTz
mq_slots_min_vt(MqQueueShared *qs)
{
	uint64		result = PG_UINT64_MAX;

	pg_memory_barrier();
	for (int i = 0; i < mqs_state->nslots; i++)
	{
		MqSlot	   *slot = &mqs_state->slots[i];
		uint64		v = pg_atomic_read_u64(&slot->min_vt);

		if (v < result && mqs_slot_covers(slot, qs))
			result = v;
	}
	return result == PG_UINT64_MAX ? DT_NOEND : MQ_TS_DECODE(result);
}

/* Smallest bound any open transaction of the database has published. */
static bool
mqs_slot_covers(MqSlot *slot, MqQueueShared *qs)
{
	Oid			relid;

	pg_read_barrier();			/* owner fields are written before bounds */
	if (pg_atomic_read_u32(&slot->dboid) != qs->key.dboid)
		return false;
	relid = pg_atomic_read_u32(&slot->relid);
	return relid == InvalidOid || relid == qs->key.ready_relid;
}

uint64
mq_slots_min_seq(MqQueueShared *qs)
{
	uint64		result = PG_UINT64_MAX;

	pg_memory_barrier();
	for (int i = 0; i < mqs_state->nslots; i++)
	{
		MqSlot	   *slot = &mqs_state->slots[i];
		uint64		v = pg_atomic_read_u64(&slot->min_seq);

		if (v < result && mqs_slot_covers(slot, qs))
			result = v;
	}
	return result;
}
