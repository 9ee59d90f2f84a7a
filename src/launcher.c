/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher, registered at preload, that keeps one worker per
 *	  database that has mq installed, and the shared table of those
 *	  workers: who runs where, waking one (src/notify.c), starting one when
 *	  CREATE EXTENSION commits, stopping one before DROP DATABASE, the view
 *	  mq.workers.  The per-database worker itself is src/worker.c; it
 *	  reports here through the mq_worker_* calls at the end of this file.
 *
 * The launcher connects to no database; it lists pg_database and starts a
 * worker in each database once, which exits at once where mq is not
 * installed.  A slot of the shared table is held only while such a probe
 * runs and for the databases that have mq: a probe that finds no extension
 * frees its slot, and the launcher remembers that database in a local list
 * (mqw_no_mq) so that it does not look again every 5 s.  CREATE EXTENSION
 * mq wakes it (mq._worker_wanted() at the end of the install script), so a
 * new installation is served within a second.  A worker that cannot start
 * (no free background worker, no free slot) is logged once and shows in
 * mq.workers with a state that says so.
 * A worker leaves when the extension is gone; DROP DATABASE and the other
 * commands that need a database without connections tell it to leave
 * first (utility hook), so they never wait for it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/async.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procsignal.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include <signal.h>

#include "util.h"
#include "launcher.h"

PG_FUNCTION_INFO_V1(mq_worker_wanted);
PG_FUNCTION_INFO_V1(mq_workers);

PGDLLEXPORT void mq_launcher_main(Datum arg);

#define MQW_RESCAN_MS		5000	/* launcher looks for new databases */
#define MQW_RETRY_MS		1000	/* restart a worker that failed */
#define MQW_STOPPED_RETRY_MS 10000	/* re-probe a database told to stop */

typedef enum MqWorkerState
{
	MQW_FREE = 0,
	MQW_PROBE,					/* start one to see if mq is installed */
	MQW_STARTING,
	MQW_RUNNING,
	MQW_NO_EXTENSION,			/* mq is not installed there: the launcher
								 * frees the slot once the worker is gone */
	MQW_STOPPED					/* told to leave (DROP DATABASE and such) */
} MqWorkerState;

static const char *const mqw_state_names[] = {
	"free", "probing", "starting", "running", "not installed", "stopped"
};

#define MQW_NO_BGWORKER_STATE "cannot start: no free background worker slot"
#define MQW_NO_SLOT_STATE "cannot start: no free slot"

typedef struct MqWorkerSlot
{
	Oid			dboid;
	MqWorkerState state;
	TimestampTz state_since;
	pid_t		pid;
	int			procno;
	TimestampTz started_at;
	TimestampTz last_run;
	int64		passes;
	int64		handled;
	uint64		wanted;			/* bumped when CREATE EXTENSION commits */
	bool		has_mq;			/* known to have mq (CREATE EXTENSION, a run) */
	bool		no_bgworker;	/* the last start found no free bgworker */
	char		last_error[256];
} MqWorkerSlot;

typedef struct MqWorkerShared
{
	int			launcher_procno;	/* -1 when no launcher runs */
	uint64		overflow;		/* bumped by a CREATE EXTENSION that found
								 * no free slot: the launcher looks again */
	int			nslots;
	MqWorkerSlot slots[FLEXIBLE_ARRAY_MEMBER];
} MqWorkerShared;

bool		mq_worker_enabled = true;

#if PG_VERSION_NUM >= 170000
#define MQ_MY_PROCNO MyProcNumber
#else
#define MQ_MY_PROCNO (MyProc->pgprocno)
#endif

static MqWorkerShared *mqw_shared = NULL;
static LWLock *mqw_lock = NULL;	/* protects mqw_shared */
#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type mqw_prev_request_hook = NULL;
#endif
static shmem_startup_hook_type mqw_prev_startup_hook = NULL;

/* ---- shared memory --------------------------------------------------- */

/*
 * Slots are held by the databases that have mq (and by short probes), not
 * by every database: more than there can be workers, so that a database
 * whose worker cannot start still has a slot that says so in mq.workers.
 */
static int
mqw_nslots(void)
{
	return max_worker_processes + 32;
}

static Size
mqw_shmem_size(void)
{
	return add_size(offsetof(MqWorkerShared, slots),
					mul_size(mqw_nslots(), sizeof(MqWorkerSlot)));
}

static void
mqw_shmem_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (mqw_prev_request_hook)
		mqw_prev_request_hook();
#endif
	RequestAddinShmemSpace(mqw_shmem_size());
	RequestNamedLWLockTranche("mq workers", 1);
}

static void
mqw_shmem_startup(void)
{
	bool		found;

	if (mqw_prev_startup_hook)
		mqw_prev_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	mqw_shared = ShmemInitStruct("mq workers", mqw_shmem_size(), &found);
	if (!found)
	{
		memset(mqw_shared, 0, mqw_shmem_size());
		mqw_shared->launcher_procno = -1;
		mqw_shared->nslots = mqw_nslots();
	}
	mqw_lock = &(GetNamedLWLockTranche("mq workers"))->lock;
	LWLockRelease(AddinShmemInitLock);
}

static MqWorkerSlot *
mqw_find(Oid dboid)
{
	for (int i = 0; i < mqw_shared->nslots; i++)
		if (mqw_shared->slots[i].state != MQW_FREE && mqw_shared->slots[i].dboid == dboid)
			return &mqw_shared->slots[i];
	return NULL;
}

static MqWorkerSlot *
mqw_find_or_add(Oid dboid)
{
	MqWorkerSlot *slot = mqw_find(dboid);

	if (slot)
		return slot;
	for (int i = 0; i < mqw_shared->nslots; i++)
		if (mqw_shared->slots[i].state == MQW_FREE)
		{
			slot = &mqw_shared->slots[i];
			memset(slot, 0, sizeof(*slot));
			slot->dboid = dboid;
			slot->state = MQW_PROBE;
			slot->state_since = GetCurrentTimestamp();
			return slot;
		}
	return NULL;
}

static void
mqw_set_state(MqWorkerSlot *slot, MqWorkerState state)
{
	slot->state = state;
	slot->state_since = GetCurrentTimestamp();
}

static void
mqw_wake_launcher(void)
{
	int			procno = mqw_shared->launcher_procno;

	if (procno >= 0)
		SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

/*
 * Wake the worker of this database (notifications are pending).  Called at
 * commit; takes no lock, a stale procno only costs a spurious wake-up.
 */
void
mq_worker_wake(Oid dboid)
{
	if (mqw_shared == NULL)
		return;
	for (int i = 0; i < mqw_shared->nslots; i++)
	{
		MqWorkerSlot *slot = &mqw_shared->slots[i];

		if (slot->dboid == dboid && slot->state == MQW_RUNNING && slot->procno >= 0)
		{
			SetLatch(&ProcGlobal->allProcs[slot->procno].procLatch);
			return;
		}
	}
}

/* ---- SQL-callable ----------------------------------------------------- */

static bool mqw_wanted_at_commit = false;

/*
 * Called at the end of the install script: this database has mq once the
 * transaction commits, so start its worker then (no-op without preload).
 */
Datum
mq_worker_wanted(PG_FUNCTION_ARGS)
{
	mqw_wanted_at_commit = (mqw_shared != NULL);
	PG_RETURN_BOOL(mqw_wanted_at_commit);
}

/* From the commit callback (src/xact.c). */
void
mq_worker_at_commit(bool committed)
{
	MqWorkerSlot *slot;

	if (!mqw_wanted_at_commit)
		return;
	mqw_wanted_at_commit = false;
	if (!committed)
		return;
	LWLockAcquire(mqw_lock, LW_EXCLUSIVE);
	slot = mqw_find_or_add(MyDatabaseId);
	if (slot)
	{
		slot->wanted++;
		slot->has_mq = true;
		if (slot->state != MQW_RUNNING && slot->state != MQW_STARTING)
			mqw_set_state(slot, MQW_PROBE);
	}
	else
		mqw_shared->overflow++;
	LWLockRelease(mqw_lock);
	mqw_wake_launcher();
	if (slot == NULL)
		ereport(WARNING,
				(errmsg("mq cannot start a worker for database \"%s\": no free slot",
						get_database_name(MyDatabaseId)),
				 errdetail("All %d slots of mq's worker table are taken.", mqw_shared->nslots),
				 errhint("Raise max_worker_processes, or drop the extension in databases that do not use it.")));
}

/*
 * The state mq.workers shows for a slot, or NULL for no row: running
 * workers, and databases that have mq and whose worker cannot start.
 */
static const char *
mqw_view_state(MqWorkerSlot *slot)
{
	if (slot->state == MQW_RUNNING)
		return mqw_state_names[MQW_RUNNING];
	if (slot->state == MQW_PROBE && slot->no_bgworker &&
		(slot->has_mq || slot->dboid == MyDatabaseId))
		return MQW_NO_BGWORKER_STATE;
	return NULL;
}

/* Rows of the view mq.workers: the workers of every database. */
Datum
mq_workers(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MqWorkerSlot *copy;
	const char **states;
	int			n = 0;
	bool		mine = false;
	bool		any_free = false;

	mq_srf_materialize(fcinfo);
	if (mqw_shared == NULL)
		return (Datum) 0;
	copy = palloc(sizeof(MqWorkerSlot) * (mqw_shared->nslots + 1));
	states = palloc(sizeof(char *) * (mqw_shared->nslots + 1));
	LWLockAcquire(mqw_lock, LW_SHARED);
	for (int i = 0; i < mqw_shared->nslots; i++)
	{
		MqWorkerSlot *slot = &mqw_shared->slots[i];

		if (slot->state == MQW_FREE)
			any_free = true;
		else if (slot->dboid == MyDatabaseId)
			mine = true;
		if ((states[n] = mqw_view_state(slot)) != NULL)
			copy[n++] = *slot;
	}
	LWLockRelease(mqw_lock);

	/*
	 * This database has mq (the caller is in its schema) but no slot, and
	 * none is free: its worker cannot start.
	 */
	if (!mine && !any_free && mq_worker_enabled &&
		OidIsValid(get_extension_oid("mq", true)))
	{
		memset(&copy[n], 0, sizeof(MqWorkerSlot));
		copy[n].dboid = MyDatabaseId;
		states[n++] = MQW_NO_SLOT_STATE;
	}

	for (int i = 0; i < n; i++)
	{
		Datum		values[8];
		bool		nulls[8] = {false, false, false, false, false, false, false, false};
		char	   *dbname = get_database_name(copy[i].dboid);

		values[0] = dbname ? CStringGetTextDatum(dbname) : (Datum) 0;
		nulls[0] = (dbname == NULL);
		values[1] = Int32GetDatum(copy[i].pid);
		nulls[1] = (copy[i].state != MQW_RUNNING);
		values[2] = TimestampTzGetDatum(copy[i].started_at);
		nulls[2] = (copy[i].state != MQW_RUNNING);
		values[3] = TimestampTzGetDatum(copy[i].last_run);
		nulls[3] = (copy[i].last_run == 0);
		values[4] = Int64GetDatum(copy[i].passes);
		values[5] = Int64GetDatum(copy[i].handled);
		values[6] = CStringGetTextDatum(copy[i].last_error);
		nulls[6] = (copy[i].last_error[0] == '\0');
		values[7] = CStringGetTextDatum(states[i]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ---- DROP DATABASE and friends ---------------------------------------- */

/*
 * Tell the worker of a database to leave, before a command that needs the
 * database to itself.  The command then waits the few milliseconds the
 * worker takes to exit, never a timeout.
 */
void
mq_worker_stop_database(const char *dbname)
{
	Oid			dboid = get_database_oid(dbname, true);
	MqWorkerSlot *slot;
	pid_t		pid = 0;

	if (!OidIsValid(dboid) || mqw_shared == NULL)
		return;
	LWLockAcquire(mqw_lock, LW_EXCLUSIVE);
	slot = mqw_find(dboid);
	if (slot)
	{
		if (slot->state == MQW_RUNNING || slot->state == MQW_STARTING || slot->state == MQW_PROBE)
			pid = slot->pid;
		mqw_set_state(slot, MQW_STOPPED);
	}
	LWLockRelease(mqw_lock);
	if (pid > 0)
		kill(pid, SIGTERM);
}

/* ---- launcher ----------------------------------------------------------- */

static List *
mqw_list_databases(void)
{
	List	   *oids = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (db->datallowconn && !db->datistemplate)
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			oids = lappend_oid(oids, db->oid);
			MemoryContextSwitchTo(old);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return oids;
}

static BackgroundWorkerHandle *
mqw_start(Oid dboid)
{
	BackgroundWorker bgw;
	BackgroundWorkerHandle *handle;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;	/* the launcher does that */
	strlcpy(bgw.bgw_library_name, "mq", BGW_MAXLEN);
	strlcpy(bgw.bgw_function_name, "mq_worker_main", BGW_MAXLEN);
	snprintf(bgw.bgw_name, BGW_MAXLEN, "mq worker for database %u", dboid);
	strlcpy(bgw.bgw_type, "mq worker", BGW_MAXLEN);
	bgw.bgw_main_arg = ObjectIdGetDatum(dboid);
	bgw.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&bgw, &handle))
		return NULL;
	return handle;
}

/* A database the launcher has looked at and found without mq. */
static List *mqw_no_mq = NIL;

static void
mqw_no_mq_add(Oid dboid)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	mqw_no_mq = list_append_unique_oid(mqw_no_mq, dboid);
	MemoryContextSwitchTo(old);
}

void
mq_launcher_main(Datum arg)
{
	BackgroundWorkerHandle **handles;
	TimestampTz next_rescan = 0;
	List	   *dbs = NIL;		/* connectable databases, at the last look */
	List	   *warned = NIL;	/* databases logged as without a worker */
	uint64		overflow = 0;
	bool		warned_no_slot = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("mq launcher");

	handles = MemoryContextAllocZero(TopMemoryContext,
									 sizeof(BackgroundWorkerHandle *) * mqw_shared->nslots);
	LWLockAcquire(mqw_lock, LW_EXCLUSIVE);
	mqw_shared->launcher_procno = MQ_MY_PROCNO;
	overflow = mqw_shared->overflow;
	/* after a restart of the launcher, forget what ran before */
	for (int i = 0; i < mqw_shared->nslots; i++)
		if (mqw_shared->slots[i].state == MQW_RUNNING || mqw_shared->slots[i].state == MQW_STARTING)
			mqw_set_state(&mqw_shared->slots[i], MQW_PROBE);
	LWLockRelease(mqw_lock);

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		long		timeout = MQW_RESCAN_MS;
		bool		any_free = false;
		bool		any_probe = false;
		List	   *unplaced = NIL;
		List	   *to_warn = NIL;
		ListCell   *lc;
		bool		rescan = (now >= next_rescan);

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		if (rescan)
		{
			List	   *keep = NIL;

			list_free(dbs);
			dbs = mqw_list_databases();
			/* forget the databases that are gone */
			foreach(lc, mqw_no_mq)
				if (list_member_oid(dbs, lfirst_oid(lc)))
					keep = lappend_oid(keep, lfirst_oid(lc));
			list_free(mqw_no_mq);
			mqw_no_mq = NIL;
			foreach(lc, keep)
				mqw_no_mq_add(lfirst_oid(lc));
			list_free(keep);
			next_rescan = TimestampTzPlusMilliseconds(now, MQW_RESCAN_MS);
		}

		LWLockAcquire(mqw_lock, LW_EXCLUSIVE);
		/* a CREATE EXTENSION found no free slot: look at every database again */
		if (mqw_shared->overflow != overflow)
		{
			overflow = mqw_shared->overflow;
			list_free(mqw_no_mq);
			mqw_no_mq = NIL;
		}
		for (int i = 0; i < mqw_shared->nslots; i++)
		{
			MqWorkerSlot *slot = &mqw_shared->slots[i];
			pid_t		pid;

			/* reap workers that ended */
			if (handles[i] &&
				GetBackgroundWorkerPid(handles[i], &pid) == BGWH_STOPPED)
			{
				pfree(handles[i]);
				handles[i] = NULL;
				if (slot->state == MQW_RUNNING || slot->state == MQW_STARTING)
				{
					/* it died: start it again in a moment */
					mqw_set_state(slot, MQW_PROBE);
					slot->state_since = TimestampTzPlusMilliseconds(now, MQW_RETRY_MS);
				}
			}
			if (slot->state == MQW_FREE)
				continue;
			/* a slot with a database that is gone (by a fresh list only) */
			if (rescan && !list_member_oid(dbs, slot->dboid) && handles[i] == NULL &&
				slot->state != MQW_RUNNING && slot->state != MQW_STARTING)
			{
				slot->state = MQW_FREE;
				continue;
			}
			/* no mq there: free the slot, remember the database here */
			if (slot->state == MQW_NO_EXTENSION && handles[i] == NULL)
			{
				mqw_no_mq_add(slot->dboid);
				slot->state = MQW_FREE;
				continue;
			}
			/* CREATE EXTENSION gave it a slot: look again */
			if (mqw_no_mq != NIL && list_member_oid(mqw_no_mq, slot->dboid))
				mqw_no_mq = list_delete_oid(mqw_no_mq, slot->dboid);
			if (slot->state == MQW_STOPPED &&
				TimestampDifferenceExceeds(slot->state_since, now, MQW_STOPPED_RETRY_MS))
				mqw_set_state(slot, MQW_PROBE);
		}

		/* give the databases not looked at yet a slot each */
		foreach(lc, dbs)
		{
			Oid			dboid = lfirst_oid(lc);

			if (list_member_oid(mqw_no_mq, dboid) || mqw_find(dboid) != NULL)
				continue;
			if (mqw_find_or_add(dboid) == NULL)
				unplaced = lappend_oid(unplaced, dboid);
		}

		for (int i = 0; i < mqw_shared->nslots; i++)
		{
			MqWorkerSlot *slot = &mqw_shared->slots[i];

			if (slot->state == MQW_FREE)
				any_free = true;
			if (handles[i] != NULL && slot->state != MQW_RUNNING)
				any_probe = true;	/* a start or a probe is under way */
		}

		for (int i = 0; i < mqw_shared->nslots; i++)
		{
			MqWorkerSlot *slot = &mqw_shared->slots[i];

			if (slot->state != MQW_PROBE || handles[i] != NULL || !mq_worker_enabled)
				continue;
			if (slot->state_since > now)
			{
				timeout = Min(timeout, MQW_RETRY_MS);
				continue;		/* it failed a moment ago */
			}
			handles[i] = mqw_start(slot->dboid);
			if (handles[i] == NULL)
			{
				/*
				 * No free background worker.  Logged once per database, and
				 * only once nothing of ours is starting (a probe that ends
				 * frees one in a moment).
				 */
				slot->no_bgworker = true;
				if (!any_probe && !list_member_oid(warned, slot->dboid))
				{
					MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

					warned = lappend_oid(warned, slot->dboid);
					MemoryContextSwitchTo(old);
					to_warn = lappend_oid(to_warn, slot->has_mq ? slot->dboid : InvalidOid);
					to_warn = lappend_oid(to_warn, slot->dboid);
				}
				timeout = Min(timeout, MQW_RETRY_MS);
				continue;
			}
			slot->no_bgworker = false;
			any_probe = true;
			warned = list_delete_oid(warned, slot->dboid);
			mqw_set_state(slot, MQW_STARTING);
		}
		LWLockRelease(mqw_lock);

		/* logged out of the lock: the names need a transaction */
		if (to_warn != NIL)
		{
			StartTransactionCommand();
			/* pairs: (dboid if it is known to have mq, dboid) */
			for (int k = 0; k + 1 < list_length(to_warn); k += 2)
			{
				bool		known = OidIsValid(list_nth_oid(to_warn, k));
				char	   *name = get_database_name(list_nth_oid(to_warn, k + 1));

				ereport(WARNING,
						(errmsg("mq cannot start a worker for database \"%s\": no free background worker slot",
								name ? name : "?"),
						 known ? errdetail("max_worker_processes is %d; the launcher and the other workers use them.",
										   max_worker_processes) :
						 errdetail("max_worker_processes is %d; the launcher and the other workers use them.  Whether mq is installed there is not known: finding out takes a worker too.",
								   max_worker_processes),
						 errhint("Raise max_worker_processes.")));
			}
			CommitTransactionCommand();
			list_free(to_warn);
		}

		/* databases that found no slot at all: once, while it lasts */
		if (unplaced != NIL && !any_free && !any_probe && !warned_no_slot && mq_worker_enabled)
		{
			ereport(WARNING,
					(errmsg("mq has no free slot to start a worker in %d database(s)",
							list_length(unplaced)),
					 errdetail("All %d slots of mq's worker table are taken; a database that has mq and no slot gets no worker.",
							   mqw_shared->nslots),
					 errhint("Raise max_worker_processes.")));
			warned_no_slot = true;
		}
		else if (unplaced == NIL)
			warned_no_slot = false;
		if (unplaced != NIL)
			timeout = Min(timeout, MQW_RETRY_MS);
		list_free(unplaced);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}


/* ---- what the per-database worker (src/worker.c) reports --------------- */

static MqWorkerSlot *mqw_my_slot = NULL;
static uint64 mqw_my_wanted = 0;

static void
mqw_detach(int code, Datum arg)
{
	if (mqw_my_slot == NULL)
		return;
	LWLockAcquire(mqw_lock, LW_EXCLUSIVE);
	mqw_my_slot->pid = 0;
	mqw_my_slot->procno = -1;
	LWLockRelease(mqw_lock);
}

/*
 * A worker for database dboid starts: take its slot.  False if there is
 * none or it was told to stop meanwhile; the worker then exits.
 */
bool
mq_worker_attach(Oid dboid)
{
	LWLockAcquire(mqw_lock, LW_EXCLUSIVE);
	mqw_my_slot = mqw_find(dboid);
	if (mqw_my_slot == NULL || mqw_my_slot->state == MQW_STOPPED)
	{
		LWLockRelease(mqw_lock);
		return false;
	}
	mqw_my_slot->pid = MyProcPid;
	mqw_my_slot->procno = MQ_MY_PROCNO;
	mqw_my_wanted = mqw_my_slot->wanted;
	mqw_my_slot->started_at = GetCurrentTimestamp();
	mqw_my_slot->last_run = 0;
	mqw_my_slot->passes = 0;
	mqw_my_slot->handled = 0;
	mqw_my_slot->last_error[0] = '\0';
	LWLockRelease(mqw_lock);
	before_shmem_exit(mqw_detach, (Datum) 0);
	return true;
}

/* mq is installed: the worker runs.  False if told to stop meanwhile. */
bool
mq_worker_set_running(void)
{
	bool		ok;

	LWLockAcquire(mqw_lock, LW_EXCLUSIVE);
	ok = (mqw_my_slot->state != MQW_STOPPED);
	if (ok)
	{
		mqw_set_state(mqw_my_slot, MQW_RUNNING);
		mqw_my_slot->has_mq = true;
		mqw_my_slot->no_bgworker = false;
	}
	LWLockRelease(mqw_lock);
	return ok;
}

/*
 * Leave: mq is not installed here (any more).  Unless a CREATE EXTENSION
 * committed since this worker started (it may have looked too early), the
 * launcher starts none here until the next one.
 */
void
mq_worker_leave_no_extension(void)
{
	LWLockAcquire(mqw_lock, LW_EXCLUSIVE);
	if (mqw_my_slot->wanted != mqw_my_wanted)
		mqw_set_state(mqw_my_slot, MQW_PROBE);
	else if (mqw_my_slot->state != MQW_STOPPED)
	{
		mqw_set_state(mqw_my_slot, MQW_NO_EXTENSION);
		mqw_my_slot->has_mq = false;
	}
	LWLockRelease(mqw_lock);
	proc_exit(0);
}

void
mq_worker_pass_done(int64 handled)
{
	LWLockAcquire(mqw_lock, LW_EXCLUSIVE);
	mqw_my_slot->last_run = GetCurrentTimestamp();
	mqw_my_slot->passes++;
	mqw_my_slot->handled += handled;
	LWLockRelease(mqw_lock);
}

/* mq.workers.last_error; NULL clears it (a pass in which nothing failed). */
void
mq_worker_pass_failed(const char *message)
{
	LWLockAcquire(mqw_lock, LW_EXCLUSIVE);
	strlcpy(mqw_my_slot->last_error, message ? message : "",
			sizeof(mqw_my_slot->last_error));
	LWLockRelease(mqw_lock);
}

/* ---- registration (from _PG_init, while preloading) -------------------- */

void
mq_launcher_init(void)
{
	BackgroundWorker bgw;

#if PG_VERSION_NUM >= 150000
	mqw_prev_request_hook = shmem_request_hook;
	shmem_request_hook = mqw_shmem_request;
#else
	mqw_shmem_request();
#endif
	mqw_prev_startup_hook = shmem_startup_hook;
	shmem_startup_hook = mqw_shmem_startup;

	if (IsBinaryUpgrade)
		return;
	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 1;
	strlcpy(bgw.bgw_library_name, "mq", BGW_MAXLEN);
	strlcpy(bgw.bgw_function_name, "mq_launcher_main", BGW_MAXLEN);
	strlcpy(bgw.bgw_name, "mq launcher", BGW_MAXLEN);
	strlcpy(bgw.bgw_type, "mq launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&bgw);
}
