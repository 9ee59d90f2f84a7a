/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  The queue catalog as each backend sees it: a cache of queue options
 *	  and relation ids, the slots for each queue's kept plans (src/plans.c
 *	  fills them on first use), freed when the queue changes, and the way
 *	  from a queue to its shared entry.
 *
 * A change to a queue (create, alter, drop) sends a relcache invalidation
 * for mq.queue_catalog at commit; every backend's callback then marks its
 * cached queues stale, and the next call reloads them and prepares new
 * plans.  All SQL here is schema-qualified, operators included, so the
 * caller's search_path cannot redirect anything.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/dependency.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "util.h"
#include "shmem.h"
#include "catalog.h"

#if PG_VERSION_NUM >= 140000
#define MQ_HASH_STRINGS HASH_STRINGS
#else
#define MQ_HASH_STRINGS 0		/* string keys were the default */
#endif

/*
 * The cache maps a name to the current MqQueue of that name.  A stale one
 * is never changed or freed in place: a caller up the stack (a trigger on
 * a queue table can call mq again) may be running one of its plans or
 * reading its fields.  It is retired instead, and freed when the
 * transaction ends, when no mq call runs any more.
 */
typedef struct MqQueueRef
{
	char		name[NAMEDATALEN];	/* hash key */
	MqQueue    *q;				/* in CacheMemoryContext; NULL: not loaded */
} MqQueueRef;

static HTAB *mqc_queues = NULL;
static List *mqc_retired = NIL; /* of MqQueue *, in CacheMemoryContext */

/*
 * Current queues in the order of their last use, most recent first, so
 * that a backend that touches many queues keeps the plans of at most
 * mq.cached_queues of them (each holds a few tens of kB of kept plans).
 * The least recently used ones beyond that are freed when an mq call
 * starts and no other mq call runs in this backend (mqc_call_depth), so
 * none of their plans or fields can be in use up the stack.
 */
int			mq_cached_queues = 128;
static dlist_head mqc_lru = DLIST_STATIC_INIT(mqc_lru);
static int	mqc_nloaded = 0;
static int	mqc_call_depth = 0;	/* mq calls running; 0 again at transaction end */
static Oid	mqc_catalog_relid = InvalidOid;
static Oid	mqc_ext_owner = InvalidOid;
static uint64 mqc_invalidations = 0;	/* catalog invalidations seen */
static Oid	mqc_sequence_relid = InvalidOid;
static SPIPlanPtr mqc_load_plan = NULL;
static bool mqc_callback_registered = false;

/*
 * Relcache callback.  Only an invalidation of the catalog itself (sent by
 * every queue change) or a full reset makes cached queues stale; plans that
 * merely need replanning after a vacuum are the plan cache's business.
 */
static void
mqc_invalidate(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	MqQueueRef *ref;

	if (relid != InvalidOid && relid != mqc_catalog_relid)
		return;
	mqc_invalidations++;
	mqc_catalog_relid = InvalidOid;
	mqc_sequence_relid = InvalidOid;
	mqc_ext_owner = InvalidOid;
	if (mqc_queues == NULL)
		return;
	hash_seq_init(&status, mqc_queues);
	while ((ref = hash_seq_search(&status)) != NULL)
		if (ref->q)
			ref->q->valid = false;
}

static void
mqc_free(MqQueue *q)
{
	for (int i = 0; i < MQP_NUM; i++)
		if (q->plans[i])
			SPI_freeplan(q->plans[i]);
	if (q->ready_table)
		pfree(q->ready_table);
	if (q->wait_table)
		pfree(q->wait_table);
	if (q->group_table)
		pfree(q->group_table);
	if (q->backlog_table)
		pfree(q->backlog_table);
	if (q->run_table)
		pfree(q->run_table);
	if (q->grantees)
		pfree(q->grantees);
	if (q->privileges)
		pfree(q->privileges);
	pfree(q);
}

static void
mqc_lru_remove(MqQueue *q)
{
	if (!q->in_lru)
		return;
	dlist_delete(&q->lru);
	q->in_lru = false;
	mqc_nloaded--;
}

/*
 * The relation cache entries of a queue's tables and indexes go too (as an
 * invalidation would make them go; an open one is rebuilt instead), or a
 * backend that touched many queues would keep them all.
 */
static void
mqc_forget_relations(MqQueue *q)
{
	static const char *const prefixes[] = {"q_", "w_", "g_", "b_", "r_",
	"qi_", "wi_", "wk_", "gk_", "bi_", "rk_"};
	Oid			nsp = get_namespace_oid("mq", true);

	if (!OidIsValid(nsp) || !IsTransactionState())
		return;
	for (int i = 0; i < lengthof(prefixes); i++)
	{
		char		rel[NAMEDATALEN];
		Oid			relid;

		snprintf(rel, sizeof(rel), "%s%s", prefixes[i], q->name);
		relid = get_relname_relid(rel, nsp);
		if (OidIsValid(relid))
			RelationCacheInvalidateEntry(relid);
	}
}

/*
 * Free the least recently used queues beyond mq.cached_queues.  The system
 * catalog caches keep rows of every relation read (PostgreSQL never
 * shrinks them): once as many queues were evicted as the cache holds, they
 * are reset, as a backend that falls behind on invalidations resets them,
 * so that they hold what is in use again.
 */
static void
mqc_evict(void)
{
	static int	evicted = 0;

	if (evicted >= Max(mq_cached_queues, 64) && IsTransactionState())
	{
		evicted = 0;
		InvalidateSystemCaches();
	}
	while (mqc_nloaded > mq_cached_queues && !dlist_is_empty(&mqc_lru))
	{
		MqQueue    *q = dlist_tail_element(MqQueue, lru, &mqc_lru);
		MqQueueRef *ref = hash_search(mqc_queues, q->name, HASH_FIND, NULL);

		mqc_lru_remove(q);
		if (ref && ref->q == q)
			hash_search(mqc_queues, q->name, HASH_REMOVE, NULL);
		mqc_forget_relations(q);
		mqc_free(q);
		evicted++;
	}
}

/* At the end of a transaction nothing uses a retired queue any more. */
static void
mqc_xact_end(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT)
		return;
	mqc_call_depth = 0;			/* an error ended the calls that did not end */
	if (mqc_retired == NIL)
		return;
	foreach(lc, mqc_retired)
		mqc_free(lfirst(lc));
	list_free(mqc_retired);
	mqc_retired = NIL;
}

static void
mqc_retire(MqQueue *q)
{
	MemoryContext old = MemoryContextSwitchTo(CacheMemoryContext);

	q->valid = false;
	mqc_lru_remove(q);
	mqc_retired = lappend(mqc_retired, q);
	MemoryContextSwitchTo(old);
}

static void
mqc_init(void)
{
	HASHCTL		ctl;

	if (mqc_queues)
		return;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = sizeof(MqQueueRef);
	ctl.hcxt = CacheMemoryContext;
	mqc_queues = hash_create("mq queues", 64, &ctl,
							 HASH_ELEM | MQ_HASH_STRINGS | HASH_CONTEXT);
	if (!mqc_callback_registered)
	{
		CacheRegisterRelcacheCallback(mqc_invalidate, (Datum) 0);
		RegisterXactCallback(mqc_xact_end, NULL);
		mqc_callback_registered = true;
	}
}

static Oid
mqc_namespace(void)
{
	return get_namespace_oid("mq", false);
}

Oid
mq_catalog_relid(void)
{
	if (!OidIsValid(mqc_catalog_relid))
	{
		Oid			relid = get_relname_relid("queue_catalog", mqc_namespace());

		if (!OidIsValid(relid))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("extension \"mq\" is not installed in this database")));
		if (!mq_schema_current())
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("extension \"mq\" in this database is older than its library"),
					 errhint("Run ALTER EXTENSION mq UPDATE.")));
		mqc_catalog_relid = relid;
	}
	return mqc_catalog_relid;
}

/* Whether the installed SQL objects are the ones this library needs (0.2). */
bool
mq_schema_current(void)
{
	Oid			nsp = get_namespace_oid("mq", true);

	return OidIsValid(nsp) && OidIsValid(get_relname_relid("privilege_catalog", nsp));
}

Oid
mq_sequence_relid(void)
{
	if (!OidIsValid(mqc_sequence_relid))
		mqc_sequence_relid = get_relname_relid("message_id_seq", mqc_namespace());
	return mqc_sequence_relid;
}

/* Tell every backend, at commit, that the queue catalog changed. */
void
mq_catalog_changed(void)
{
	CacheInvalidateRelcacheByRelid(mq_catalog_relid());
}

void
mq_queue_cache_flush(void)
{
	mqc_invalidate((Datum) 0, InvalidOid);
}

/* ---- cache ---------------------------------------------------------- */

static char *
mqc_table_name(const char *prefix, const char *name)
{
	char		rel[NAMEDATALEN];

	snprintf(rel, sizeof(rel), "%s%s", prefix, name);
	return MemoryContextStrdup(CacheMemoryContext,
							   quote_qualified_identifier("mq", rel));
}

/*
 * A queue table depends on the extension (so that DROP EXTENSION mq drops
 * it) but is not a member (so that pg_dump dumps its rows).  A restore
 * recreates the table without that dependency: the first use after it puts
 * the dependency back (not on a standby, nor in a read-only transaction:
 * the next use elsewhere does it).
 */
static void
mqc_ensure_extension_dependency(Oid relid)
{
	Relation	rel;
	ScanKeyData keys[2];
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			ext = get_extension_oid("mq", true);
	bool		found = false;

	if (!OidIsValid(ext) || RecoveryInProgress() || XactReadOnly)
		return;
	rel = table_open(DependRelationId, AccessShareLock);
	ScanKeyInit(&keys[0], Anum_pg_depend_classid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(RelationRelationId));
	ScanKeyInit(&keys[1], Anum_pg_depend_objid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, DependDependerIndexId, true, NULL, 2, keys);
	while (!found && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tup);

		found = (dep->refclassid == ExtensionRelationId && dep->refobjid == ext);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!found)
	{
		ObjectAddress table;
		ObjectAddress extension;

		ObjectAddressSet(table, RelationRelationId, relid);
		ObjectAddressSet(extension, ExtensionRelationId, ext);
		recordDependencyOn(&table, &extension, DEPENDENCY_AUTO);
	}
}

static bool
mqc_owned_by_extension(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		return false;
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner == mq_extension_owner();
}

/* All five tables of the queue exist (q_, w_, g_, b_, r_). */
static bool
mqc_tables_exist(MqQueue *q)
{
	return OidIsValid(q->ready_relid) && OidIsValid(q->wait_relid) &&
		OidIsValid(q->group_relid) && OidIsValid(q->backlog_relid) &&
		OidIsValid(q->run_relid);
}

static bool
mqc_tables_owned(MqQueue *q)
{
	return mqc_owned_by_extension(q->ready_relid) && mqc_owned_by_extension(q->wait_relid) &&
		mqc_owned_by_extension(q->group_relid) && mqc_owned_by_extension(q->backlog_relid) &&
		mqc_owned_by_extension(q->run_relid);
}

/* The grants of a queue (mq.privilege_catalog) into q, in CacheMemoryContext. */
static void
mqc_load_privileges(MqQueue *q, Datum name)
{
	static SPIPlanPtr plan = NULL;
	SPITupleTable *rows;

	if (plan == NULL)
	{
		Oid			types[1] = {TEXTOID};

		plan = mq_prepare("SELECT grantee, privilege FROM mq.privilege_catalog"
						  " WHERE queue" OP("=") "$1", 1, types);
	}
	if (mq_exec_plan(plan, &name, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "mq: could not read the privileges of a queue");
	rows = SPI_tuptable;
	q->ngrants = (int) SPI_processed;
	if (q->ngrants == 0)
		return;
	q->grantees = MemoryContextAlloc(CacheMemoryContext, sizeof(Oid) * q->ngrants);
	q->privileges = MemoryContextAlloc(CacheMemoryContext, sizeof(int) * q->ngrants);
	for (int i = 0; i < q->ngrants; i++)
	{
		bool		isnull;
		char	   *priv;

		q->grantees[i] = DatumGetObjectId(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull));
		priv = TextDatumGetCString(SPI_getbinval(rows->vals[i], rows->tupdesc, 2, &isnull));
		q->privileges[i] = mq_privilege_from_name(priv, false);
	}
}

/*
 * Whether the queue's catalog row exists for the latest snapshot (the
 * catalog's view, also in REPEATABLE READ, whose transaction snapshot may
 * still show a queue dropped since).
 */
static bool
mqc_row_exists_now(Datum name)
{
	int			rc = SPI_execute_snapshot(mqc_load_plan, &name, NULL, GetLatestSnapshot(),
										  InvalidSnapshot, true, false, 1);

	return rc == SPI_OK_SELECT && SPI_processed > 0;
}

/*
 * Read one queue's row from the catalog into q; false if there is none.
 * A row whose tables are missing is an error, or, with damaged, false with
 * *damaged set.
 */
static bool
mqc_load(MqQueue *q, const char *name, bool *damaged)
{
	Datum		arg = CStringGetTextDatum(name);
	bool		isnull;
	char		rel[NAMEDATALEN];
	Oid			nsp;
	bool		reread = false;

	if (mqc_load_plan == NULL)
	{
		Oid			types[1] = {TEXTOID};

		mqc_load_plan = mq_prepare(
			"SELECT max_attempts, visibility_timeout, retry_delay, retry_delay_max,"
			" dead_letter_queue, retention, unlogged, owner"
			" FROM mq.queue_catalog WHERE queue" OP("=") "$1", 1, types);
	}
	/*
	 * Not read-only: a fresh snapshot, so that a queue dropped while we
	 * waited for its lock is seen as gone.
	 */
again:
	if (mq_exec_plan(mqc_load_plan, &arg, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "mq: could not read the queue catalog");
	if (SPI_processed == 0)
		return false;

	q->max_attempts = DatumGetInt32(mq_spi_get(0, 1, &isnull));
	q->visibility_timeout = *DatumGetIntervalP(mq_spi_get(0, 2, &isnull));
	q->retry_delay = *DatumGetIntervalP(mq_spi_get(0, 3, &isnull));
	q->retry_delay_max = *DatumGetIntervalP(mq_spi_get(0, 4, &isnull));
	{
		Datum		d = mq_spi_get(0, 5, &isnull);

		q->has_dlq = !isnull;
		if (!isnull)
			text_to_cstring_buffer(DatumGetTextPP(d), q->dlq, NAMEDATALEN);
	}
	{
		Datum		d = mq_spi_get(0, 6, &isnull);

		q->has_retention = !isnull;
		if (!isnull)
			q->retention = *DatumGetIntervalP(d);
	}
	q->is_unlogged = DatumGetBool(mq_spi_get(0, 7, &isnull));
	q->owner = DatumGetObjectId(mq_spi_get(0, 8, &isnull));
	mqc_load_privileges(q, arg);

	nsp = mqc_namespace();
	snprintf(rel, sizeof(rel), "q_%s", name);
	q->ready_relid = get_relname_relid(rel, nsp);
	snprintf(rel, sizeof(rel), "w_%s", name);
	q->wait_relid = get_relname_relid(rel, nsp);
	snprintf(rel, sizeof(rel), "g_%s", name);
	q->group_relid = get_relname_relid(rel, nsp);
	snprintf(rel, sizeof(rel), "b_%s", name);
	q->backlog_relid = get_relname_relid(rel, nsp);
	snprintf(rel, sizeof(rel), "r_%s", name);
	q->run_relid = get_relname_relid(rel, nsp);

	/*
	 * Tables missing, or not the extension owner's: a drop_queue that
	 * committed since the row was read looks the same.  Read the row again,
	 * with a newer snapshot: if it is gone, so is the queue.
	 */
	if (!mqc_tables_exist(q) || !mqc_tables_owned(q))
	{
		if (!mqc_row_exists_now(arg))
			return false;

		/*
		 * The row is there now: perhaps that of a queue of the same name
		 * created since, whose tables we may have missed, or seen beside
		 * the dropped queue's.  Read everything again, once, with the
		 * catalog as of now.
		 */
		if (!reread)
		{
			reread = true;
			AcceptInvalidationMessages();
			InvalidateCatalogSnapshot();
			goto again;
		}
	}
	if (!mqc_tables_exist(q) && damaged)
	{
		*damaged = true;
		return false;
	}
	if (!mqc_tables_exist(q))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("tables of queue \"%s\" are missing", name),
				 errhint("Drop the queue with mq.drop_queue and create it again.")));
	/* mq owns its storage: a table owned by anyone else may run their code */
	if (!mqc_tables_owned(q))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("tables of queue \"%s\" are not owned by the owner of extension \"mq\"", name),
				 errhint("Give them back with ALTER TABLE ... OWNER TO the extension's owner.")));
	mqc_ensure_extension_dependency(q->ready_relid);
	mqc_ensure_extension_dependency(q->wait_relid);
	mqc_ensure_extension_dependency(q->group_relid);
	mqc_ensure_extension_dependency(q->backlog_relid);
	mqc_ensure_extension_dependency(q->run_relid);
	q->ready_table = mqc_table_name("q_", name);
	q->wait_table = mqc_table_name("w_", name);
	q->group_table = mqc_table_name("g_", name);
	q->backlog_table = mqc_table_name("b_", name);
	q->run_table = mqc_table_name("r_", name);
	return true;
}

/*
 * The cached queue of that name, locked against a concurrent drop.  Must be
 * called inside SPI.  Raises 42P01 when the queue does not exist, unless
 * missing_ok; XX001 when its tables are missing, unless damaged (then NULL
 * with *damaged set).
 */
static MqQueue *
mqc_lookup(const char *name, bool missing_ok, bool *damaged)
{
	MqQueueRef *ref;
	MqQueue    *q = NULL;
	bool		found;

	if (damaged)
		*damaged = false;
	mqc_init();
	(void) mq_catalog_relid();
	ref = hash_search(mqc_queues, name, HASH_ENTER, &found);
	if (!found)
		ref->q = NULL;
	for (int tries = 0;; tries++)
	{
		if (ref->q == NULL || !ref->q->valid)
		{
			MqQueue    *fresh = MemoryContextAllocZero(CacheMemoryContext, sizeof(MqQueue));
			uint64		invalidations = mqc_invalidations;

			strlcpy(fresh->name, name, NAMEDATALEN);
			if (ref->q)
				mqc_retire(ref->q);
			ref->q = NULL;
			if (!mqc_load(fresh, name, damaged))
			{
				pfree(fresh);
				hash_search(mqc_queues, name, HASH_REMOVE, NULL);
				if (missing_ok || (damaged && *damaged))
					return NULL;
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_TABLE),
						 errmsg("queue \"%s\" does not exist", name)));
			}
			/*
			 * A change committed while we read (its invalidation came in
			 * during the load) may be half in what we read: load again.
			 */
			fresh->valid = (mqc_invalidations == invalidations);
			ref->q = fresh;
			dlist_push_head(&mqc_lru, &fresh->lru);
			fresh->in_lru = true;
			mqc_nloaded++;
		}
		q = ref->q;
		if (q->in_lru)
			dlist_move_head(&mqc_lru, &q->lru);
		/* keeps the tables from being dropped while we use them */
		LockRelationOid(q->ready_relid, AccessShareLock);
		/* a table dropped by hand changes no catalog row: load again, and see */
		if (q->valid &&
			(!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(q->ready_relid)) ||
			 !SearchSysCacheExists1(RELOID, ObjectIdGetDatum(q->wait_relid)) ||
			 !SearchSysCacheExists1(RELOID, ObjectIdGetDatum(q->group_relid)) ||
			 !SearchSysCacheExists1(RELOID, ObjectIdGetDatum(q->backlog_relid)) ||
			 !SearchSysCacheExists1(RELOID, ObjectIdGetDatum(q->run_relid))))
			q->valid = false;
		if (q->valid || tries > 2)
			break;
	}
	return q;
}

MqQueue *
mq_queue_lookup(const char *name, bool missing_ok)
{
	return mqc_lookup(name, missing_ok, NULL);
}

/*
 * As mq_queue_lookup(name, true), but a queue whose tables are missing (a
 * damaged catalog row, which only mq.drop_queue mends) is NULL as well,
 * with *damaged set, instead of an error.
 */
MqQueue *
mq_queue_lookup_intact(const char *name, bool *damaged)
{
	return mqc_lookup(name, true, damaged);
}

/* Names of all queues, in order. */
List *
mq_all_queue_names(void)
{
	List	   *names = NIL;

	if (mq_exec_sql("SELECT queue FROM mq.queue_catalog ORDER BY queue", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "mq: could not list queues");
	for (uint64 i = 0; i < SPI_processed; i++)
		names = lappend(names, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	return names;
}

/*
 * Names of the queues of this database that have no shared entry (never
 * used since the server started, or their tables are missing), in order;
 * in SPI memory.  One catalog read, no lookup of each queue.
 */
List *
mq_queues_without_entry(void)
{
	List	   *names = NIL;
	char	   *sql;

	(void) mq_catalog_relid();	/* and see its next change (mqc_invalidate) */
	sql = psprintf("SELECT c.queue, r.oid FROM mq.queue_catalog c"
				   " LEFT JOIN pg_catalog.pg_class r"
				   " ON r.relname" OP("=") "('q_'" OP("||") "c.queue)::pg_catalog.name"
				   " AND r.relnamespace" OP("=") "%u::pg_catalog.oid ORDER BY c.queue",
				   mqc_namespace());
	if (mq_exec_sql(sql, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "mq: could not list queues");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		relid = mq_spi_get(i, 2, &isnull);

		if (isnull || mq_shared_find(MyDatabaseId, DatumGetObjectId(relid)) == NULL)
			names = lappend(names, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	}
	return names;
}

/* Changes of the queue catalog seen by this backend so far: a new value means queues came or went. */
uint64
mq_catalog_generation(void)
{
	return mqc_invalidations;
}

/*
 * The shared entry of a queue (NULL without shared memory); 53400 if there
 * is no room for it (src/shmem.c).
 */
MqQueueShared *
mq_queue_shared(MqQueue *q)
{
	return mq_shared_queue(q->ready_relid, q->name, false);
}

/* ---- who runs mq's SQL, and who may ask it to ----------------------- */

/* The owner of extension mq in this database: mq's storage is theirs. */
Oid
mq_extension_owner(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	if (OidIsValid(mqc_ext_owner))
		return mqc_ext_owner;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("mq"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		mqc_ext_owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!OidIsValid(mqc_ext_owner))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"mq\" is not installed in this database")));
	return mqc_ext_owner;
}

/*
 * Start an mq call: connect SPI and run as the extension's owner, in a
 * security-restricted operation, as REFRESH MATERIALIZED VIEW and
 * autovacuum do, so that nothing the caller set up (search_path, roles,
 * temporary objects) reaches mq's storage.  call->caller is who asked.  An
 * error ends the call too: the (sub)transaction abort restores the user.
 */
void
mq_call_begin(MqCall *call)
{
	Oid			owner;

	GetUserIdAndSecContext(&call->save_user, &call->save_sec);
	call->caller = call->save_user;
	if (mqc_call_depth++ == 0 && mqc_queues)
		mqc_evict();
	owner = mq_extension_owner();
	mq_connect();
	SetUserIdAndSecContext(owner, call->save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

void
mq_call_end(MqCall *call)
{
	mq_finish();
	SetUserIdAndSecContext(call->save_user, call->save_sec);
	if (mqc_call_depth > 0)
		mqc_call_depth--;
}

static const char *const mqc_privilege_names[] = {"send", "receive", "observe", "manage"};

/* MQ_PRIV_* of a name; -1 (or 22023 unless missing_ok) if none. */
int
mq_privilege_from_name(const char *name, bool missing_ok)
{
	for (int i = 0; i < lengthof(mqc_privilege_names); i++)
		if (strcmp(name, mqc_privilege_names[i]) == 0)
			return 1 << i;
	if (missing_ok)
		return -1;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unrecognized queue privilege \"%s\"", name),
			 errhint("The privileges of a queue are send, receive, observe and manage.")));
	return -1;
}

/* Superusers and the extension's owner hold every privilege on everything. */
bool
mq_is_admin(Oid role)
{
	return superuser_arg(role) || has_privs_of_role(role, mq_extension_owner());
}

/* Whether role holds privilege (an MQ_PRIV_* bit) on queue q. */
bool
mq_has_privilege(MqQueue *q, Oid role, int privilege)
{
	if (mq_is_admin(role) || has_privs_of_role(role, q->owner))
		return true;
	for (int i = 0; i < q->ngrants; i++)
		if ((q->privileges[i] & privilege) && has_privs_of_role(role, q->grantees[i]))
			return true;
	return false;
}

void
mq_require_privilege(MqQueue *q, Oid role, int privilege)
{
	int			i = 0;

	if (mq_has_privilege(q, role, privilege))
		return;
	while (i < lengthof(mqc_privilege_names) - 1 && !(privilege & (1 << i)))
		i++;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for queue \"%s\"", q->name),
			 errdetail("Privilege \"%s\" on the queue is required.", mqc_privilege_names[i])));
}

/*
 * Grant (insert) or revoke (delete) one row (key, grantee, privilege) per
 * privilege in a privilege catalog: mq.privilege_catalog, keyed by queue,
 * or mq.topic_privilege_catalog, keyed by topic prefix.  The caller has
 * checked the arguments and its right to change them.
 */
void
mq_privilege_rows_change(bool topic, const char *key, Datum grantee, Datum *privs,
						 int nprivs, bool grant)
{
	static SPIPlanPtr plans[2][2];	/* [topic][grant] */
	SPIPlanPtr *plan = &plans[topic ? 1 : 0][grant ? 1 : 0];

	if (*plan == NULL)
	{
		Oid			types[3] = {TEXTOID, REGROLEOID, TEXTOID};
		const char *table = topic ? "mq.topic_privilege_catalog" : "mq.privilege_catalog";
		const char *column = topic ? "prefix" : "queue";

		*plan = mq_prepare(grant ?
						   psprintf("INSERT INTO %s (%s, grantee, privilege)"
									" VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", table, column) :
						   psprintf("DELETE FROM %s WHERE %s" OP("=") "$1"
									" AND grantee" OP("=") "$2 AND privilege" OP("=") "$3",
									table, column),
						   3, types);
	}
	for (int i = 0; i < nprivs; i++)
	{
		Datum		args[3] = {CStringGetTextDatum(key), grantee, privs[i]};

		if (mq_exec_plan(*plan, args, NULL, false, 0) < 0)
			elog(ERROR, "mq: could not change the privileges of %s \"%s\"",
				 topic ? "topic prefix" : "queue", key);
	}
}
