/*-------------------------------------------------------------------------
 *
 * deliveries.c
 *	  Deliveries that ended in an abort still count as attempts.
 *
 * A delivery is part of the receiving transaction: should it abort (an
 * error and ROLLBACK, pg_terminate_backend, the client gone, a backend that
 * crashes and takes the server through crash recovery), the message comes
 * back with its attempt unchanged, and a message that kills its consumer
 * every time would be delivered for ever as attempt 1.  So each backend
 * notes what its transaction delivered in a journal of its own; at commit
 * the journal is cleared, at abort its entries move to a table of aborted
 * deliveries, which the next receive of that message applies (its attempt
 * becomes one more than the aborted one's, and past max_attempts it is
 * dead-lettered).
 *
 * Journal and table live in a file-backed mapping
 * ($PGDATA/pg_dynshmem/mq_deliveries, a directory base backups skip: a
 * standby or a restored backup starts with none)
 * made by the postmaster: it outlives a crash of any backend (the
 * postmaster keeps it mapped, and at the restart that follows moves every
 * journal entry to the table: the transactions they belong to are all gone)
 * and a restart of the server (the file).  Bounds: MQD_JOURNAL deliveries
 * per transaction, MQD_TABLE aborted deliveries remembered (a slot is
 * reused when its neighbourhood is full).  Best effort in one respect: an
 * abort releases the rows before its callback moves the journal, so a
 * receive in that instant does not see the attempt.  Applying the highest attempt seen, never a sum, makes
 * an entry of a transaction that did commit harmless.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file_perm.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"

#include "shmem.h"
#include "deliveries.h"

#define MQD_FILE		"pg_dynshmem/mq_deliveries"	/* not copied by base backups */
#define MQD_MAGIC		0x6d716431	/* "mqd1" */
#define MQD_JOURNAL		64		/* deliveries noted per transaction */
#define MQD_TABLE		4096	/* aborted deliveries remembered */

typedef struct MqdEntry
{
	Oid			dboid;
	Oid			relid;			/* the queue's ready table */
	int64		id;
	int32		attempt;
	uint32		used;
} MqdEntry;

typedef struct MqdJournal
{
	uint32		count;
	MqdEntry	entries[MQD_JOURNAL];
} MqdJournal;

typedef struct MqdFile
{
	uint32		magic;
	uint32		njournals;
	uint32		journal_size;
	uint32		table_size;
	pg_atomic_uint32 nused;		/* table entries in use */
	MqdEntry	table[MQD_TABLE];
	MqdJournal	journals[FLEXIBLE_ARRAY_MEMBER];
} MqdFile;

static MqdFile *mqd = NULL;
static LWLock *mqd_lock = NULL;	/* protects the table (in the main segment) */
#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type mqd_prev_request_hook = NULL;
#endif
static shmem_startup_hook_type mqd_prev_startup_hook = NULL;

static Size
mqd_size(int njournals)
{
	return add_size(offsetof(MqdFile, journals), mul_size(njournals, sizeof(MqdJournal)));
}

#define MQD_PROBES		16		/* slots looked at for one message */

static uint32
mqd_home(Oid dboid, Oid relid, int64 id)
{
	uint64		h = (uint64) id * UINT64CONST(0x9E3779B97F4A7C15);

	h ^= ((uint64) relid << 32) ^ dboid;
	h ^= h >> 29;
	return (uint32) (h % MQD_TABLE);
}

/*
 * Under the lock (exclusive): remember that the message was delivered as
 * attempt in a transaction that aborted.  Entries are never removed (ids
 * are never reused, and the highest attempt wins, so an old entry is
 * harmless); a full neighbourhood gives up its first slot.
 */
static void
mqd_table_note(const MqdEntry *e)
{
	uint32		home = mqd_home(e->dboid, e->relid, e->id);
	int			free_slot = -1;

	for (int k = 0; k < MQD_PROBES; k++)
	{
		MqdEntry   *t = &mqd->table[(home + k) % MQD_TABLE];

		if (!t->used)
		{
			if (free_slot < 0)
				free_slot = (home + k) % MQD_TABLE;
			continue;
		}
		if (t->id == e->id && t->relid == e->relid && t->dboid == e->dboid)
		{
			t->attempt = Max(t->attempt, e->attempt);
			return;
		}
	}
	if (free_slot < 0)
		free_slot = home;		/* full around here: forget that one */
	else
		pg_atomic_fetch_add_u32(&mqd->nused, 1);
	mqd->table[free_slot] = *e;
	mqd->table[free_slot].used = 1;
}

/* Journal entries of transactions that are gone: into the table. */
static void
mqd_recover_journals(void)
{
	for (uint32 j = 0; j < mqd->njournals; j++)
	{
		MqdJournal *jr = &mqd->journals[j];

		for (uint32 i = 0; i < Min(jr->count, MQD_JOURNAL); i++)
			if (jr->entries[i].used)
				mqd_table_note(&jr->entries[i]);
		jr->count = 0;
	}
}

/*
 * In the postmaster, at start-up and again after a crash of a backend:
 * map the file (once), and move what the journals hold to the table.
 */
static void
mqd_startup(void)
{
	int			njournals = mq_backend_slot_count();
	Size		size = mqd_size(njournals);

	if (mqd_prev_startup_hook)
		mqd_prev_startup_hook();
	if (mqd == NULL)
	{
		int			fd = open(MQD_FILE, O_RDWR | O_CREAT | PG_BINARY, pg_file_create_mode);
		struct stat st;
		void	   *p;
		bool		fresh;

		if (fd < 0 || fstat(fd, &st) != 0)
			ereport(FATAL,
					(errcode_for_file_access(),
					 errmsg("could not open file \"%s\": %m", MQD_FILE)));
		fresh = (st.st_size != (off_t) size);
		if (fresh && ftruncate(fd, (off_t) size) != 0)
			ereport(FATAL,
					(errcode_for_file_access(),
					 errmsg("could not resize file \"%s\": %m", MQD_FILE)));
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		if (p == MAP_FAILED)
			ereport(FATAL,
					(errcode_for_file_access(),
					 errmsg("could not map file \"%s\": %m", MQD_FILE)));
		mqd = (MqdFile *) p;
		if (fresh || mqd->magic != MQD_MAGIC || mqd->njournals != (uint32) njournals ||
			mqd->journal_size != MQD_JOURNAL || mqd->table_size != MQD_TABLE)
		{
			/* another layout (or none): start empty */
			memset(mqd, 0, size);
			mqd->magic = MQD_MAGIC;
			mqd->njournals = njournals;
			mqd->journal_size = MQD_JOURNAL;
			mqd->table_size = MQD_TABLE;
		}
	}
	mqd_lock = &(GetNamedLWLockTranche("mq deliveries"))->lock;
	pg_atomic_init_u32(&mqd->nused, 0);
	for (int i = 0; i < MQD_TABLE; i++)
		if (mqd->table[i].used)
			pg_atomic_fetch_add_u32(&mqd->nused, 1);
	mqd_recover_journals();
}

static void
mqd_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (mqd_prev_request_hook)
		mqd_prev_request_hook();
#endif
	RequestNamedLWLockTranche("mq deliveries", 1);
}

/* Called from _PG_init while preloading. */
void
mq_deliveries_init(void)
{
#if PG_VERSION_NUM >= 150000
	mqd_prev_request_hook = shmem_request_hook;
	shmem_request_hook = mqd_request;
#else
	mqd_request();
#endif
	mqd_prev_startup_hook = shmem_startup_hook;
	shmem_startup_hook = mqd_startup;
}

static MqdJournal *
mqd_my_journal(void)
{
	int			idx;

	if (mqd == NULL)
		return NULL;
#if PG_VERSION_NUM >= 170000
	idx = MyProcNumber;
#else
	idx = MyBackendId;
#endif
	if (idx < 0 || (uint32) idx >= mqd->njournals)
		return NULL;
	return &mqd->journals[idx];
}

/* This transaction delivered message id of the queue relid as attempt. */
void
mq_deliveries_note(Oid relid, int64 id, int32 attempt)
{
	MqdJournal *jr = mqd_my_journal();
	MqdEntry   *e;

	if (jr == NULL || jr->count >= MQD_JOURNAL)
		return;
	e = &jr->entries[jr->count];
	e->dboid = MyDatabaseId;
	e->relid = relid;
	e->id = id;
	e->attempt = attempt;
	e->used = 1;
	pg_write_barrier();			/* the entry before the count that shows it */
	jr->count++;
}

/* Where the journal stands (a subtransaction starts). */
uint32
mq_deliveries_mark(void)
{
	MqdJournal *jr = mqd_my_journal();

	return jr ? jr->count : 0;
}

/*
 * The (sub)transaction that began at mark ended: if it aborted, what it
 * delivered moves to the table; either way the journal goes back to mark.
 */
void
mq_deliveries_end(uint32 mark, bool aborted)
{
	MqdJournal *jr = mqd_my_journal();

	if (jr == NULL || jr->count <= mark)
		return;
	if (aborted)
	{
		LWLockAcquire(mqd_lock, LW_EXCLUSIVE);
		for (uint32 i = mark; i < Min(jr->count, MQD_JOURNAL); i++)
			mqd_table_note(&jr->entries[i]);
		LWLockRelease(mqd_lock);
	}
	jr->count = mark;
}

/*
 * The highest attempt an aborted delivery of this message had, or 0.  The
 * entry stays: should this delivery abort too, or fail before it is noted,
 * nothing is lost.
 */
int32
mq_deliveries_take(Oid relid, int64 id)
{
	int32		attempt = 0;
	uint32		home;

	if (mqd == NULL || pg_atomic_read_u32(&mqd->nused) == 0)
		return 0;
	home = mqd_home(MyDatabaseId, relid, id);
	LWLockAcquire(mqd_lock, LW_SHARED);
	for (int k = 0; k < MQD_PROBES; k++)
	{
		MqdEntry   *t = &mqd->table[(home + k) % MQD_TABLE];

		if (t->used && t->id == id && t->relid == relid && t->dboid == MyDatabaseId)
		{
			attempt = t->attempt;
			break;
		}
	}
	LWLockRelease(mqd_lock);
	return attempt;
}
