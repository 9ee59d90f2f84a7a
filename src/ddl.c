/*-------------------------------------------------------------------------
 *
 * ddl.c
 *	  DDL that mq watches: the drop of a queue's tables (however it comes:
 *	  drop_queue, DROP EXTENSION, DROP TABLE) retires the queue's shared
 *	  entry at commit; DROP DATABASE retires all of that database's
 *	  entries, and it and the other commands that need a database to
 *	  themselves first tell that database's worker to leave; ALTER
 *	  SEQUENCE of mq.message_id_seq is refused (heads rely on its CACHE 1).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/lsyscache.h"

#include "shmem.h"
#include "launcher.h"
#include "xact.h"
#include "ddl.h"

static object_access_hook_type mqd_prev_object_access = NULL;
static ProcessUtility_hook_type mqd_prev_utility = NULL;

/* A relation is being dropped: if it is a queue's ready table, retire its entry at commit. */
static void
mqd_object_access(ObjectAccessType access, Oid classId, Oid objectId,
				  int subId, void *arg)
{
	if (mqd_prev_object_access)
		mqd_prev_object_access(access, classId, objectId, subId, arg);
	if (access == OAT_DROP && classId == RelationRelationId && subId == 0 &&
		mq_shared_exists(MyDatabaseId, objectId))
		mq_xact_dropped_queue(objectId);
}

/*
 * ALTER SEQUENCE mq.message_id_seq is refused, unless all it does is set
 * CACHE 1: a cache lets sessions hand out seqs out of order, and heads
 * would pass messages sent later with a lower seq.
 */
static void
mqd_check_alter_sequence(AlterSeqStmt *stmt)
{
	Oid			nsp = get_namespace_oid("mq", true);
	Oid			relid;
	ListCell   *lc;

	if (!OidIsValid(nsp))
		return;
	relid = RangeVarGetRelid(stmt->sequence, NoLock, true);
	if (!OidIsValid(relid) || relid != get_relname_relid("message_id_seq", nsp))
		return;
	foreach(lc, stmt->options)
	{
		DefElem    *opt = lfirst(lc);

		if (strcmp(opt->defname, "cache") == 0 && defGetInt64(opt) == 1)
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot alter sequence \"mq.message_id_seq\""),
				 errdetail("mq relies on it handing out increasing values across sessions (CACHE 1, no restart).")));
	}
}

#if PG_VERSION_NUM >= 140000
#define MQD_UTILITY_ARGS pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc
static void
mqd_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			ProcessUtilityContext context, ParamListInfo params,
			QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
#else
#define MQD_UTILITY_ARGS pstmt, queryString, context, params, queryEnv, dest, qc
static void
mqd_utility(PlannedStmt *pstmt, const char *queryString,
			ProcessUtilityContext context, ParamListInfo params,
			QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
#endif
{
	Node	   *parsetree = pstmt->utilityStmt;
	Oid			dropped_db = InvalidOid;

	if (IsA(parsetree, AlterSeqStmt))
		mqd_check_alter_sequence((AlterSeqStmt *) parsetree);
	else if (IsA(parsetree, DropdbStmt))
	{
		dropped_db = get_database_oid(((DropdbStmt *) parsetree)->dbname, true);
		mq_worker_stop_database(((DropdbStmt *) parsetree)->dbname);
	}
	else if (IsA(parsetree, RenameStmt) &&
			 ((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
		mq_worker_stop_database(((RenameStmt *) parsetree)->subname);
	else if (IsA(parsetree, AlterDatabaseStmt))
		mq_worker_stop_database(((AlterDatabaseStmt *) parsetree)->dbname);
	else if (IsA(parsetree, CreatedbStmt))
	{
		ListCell   *lc;

		foreach(lc, ((CreatedbStmt *) parsetree)->options)
		{
			DefElem    *opt = lfirst(lc);

			if (strcmp(opt->defname, "template") == 0)
				mq_worker_stop_database(defGetString(opt));
		}
	}

	if (mqd_prev_utility)
		mqd_prev_utility(MQD_UTILITY_ARGS);
	else
		standard_ProcessUtility(MQD_UTILITY_ARGS);

	/* DROP DATABASE runs outside a transaction block: it is done now */
	if (OidIsValid(dropped_db) && !OidIsValid(get_database_oid(((DropdbStmt *) parsetree)->dbname, true)))
		mq_shared_forget_database(dropped_db);
}

/* Called from _PG_init. */
void
mq_ddl_init(void)
{
	mqd_prev_object_access = object_access_hook;
	object_access_hook = mqd_object_access;
	mqd_prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = mqd_utility;
}
