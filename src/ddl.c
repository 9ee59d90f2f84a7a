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
#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "utils/acl.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "util.h"
#include "shmem.h"
#include "catalog.h"
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
		mq_shared_find(MyDatabaseId, objectId) != NULL)
		mq_xact_dropped_queue(objectId);
}

/*
 * ALTER SEQUENCE mq.message_id_seq is refused, unless all it does is set
 * CACHE 1: message ids must stay unique (a restart would hand out ids of
 * live messages again, and an ack by id would hit both) and increase in
 * send order across sessions (a cache would not), as the README promises.
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

/*
 * A command that needs a database without connections stops that
 * database's worker first, but only once the command would pass its own
 * permission checks: a role that may not drop (rename, move, copy) the
 * database must not be able to stop its worker by trying.
 */
static bool
mqd_owns_database(Oid dboid)
{
#if PG_VERSION_NUM >= 160000
	return object_ownercheck(DatabaseRelationId, dboid, GetUserId());
#else
	return pg_database_ownercheck(dboid, GetUserId());
#endif
}

static bool
mqd_may_create_databases(void)
{
	HeapTuple	tup;
	bool		result;

	if (superuser())
		return true;
	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(GetUserId()));
	if (!HeapTupleIsValid(tup))
		return false;
	result = ((Form_pg_authid) GETSTRUCT(tup))->rolcreatedb;
	ReleaseSysCache(tup);
	return result;
}

static bool
mqd_is_template(Oid dboid)
{
	HeapTuple	tup = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(dboid));
	bool		result;

	if (!HeapTupleIsValid(tup))
		return false;
	result = ((Form_pg_database) GETSTRUCT(tup))->datistemplate;
	ReleaseSysCache(tup);
	return result;
}

/* Stop the worker of dbname if the command on it will get past its checks. */
static void
mqd_stop_worker(const char *dbname, bool need_owner, bool need_createdb, bool template_ok)
{
	Oid			dboid = get_database_oid(dbname, true);

	if (!OidIsValid(dboid))
		return;
	if (need_createdb && !mqd_may_create_databases())
		return;
	if (need_owner && !mqd_owns_database(dboid) && !(template_ok && mqd_is_template(dboid)))
		return;
	mq_worker_stop_database(dbname);
}

/*
 * DROP ROLE of a role that holds mq privileges or created queues in this
 * database is refused, as PostgreSQL refuses to drop a role that objects
 * depend on: mq stores roles by OID, and a dangling OID could one day name
 * another role.  (Other databases are not visible from here: revoke there
 * first.)
 */
static void
mqd_check_drop_role(DropRoleStmt *stmt)
{
	ListCell   *lc;
	MqCall		call;

	if (!OidIsValid(get_extension_oid("mq", true)) || !mq_schema_current())
		return;
	mq_call_begin(&call);
	foreach(lc, stmt->roles)
	{
		RoleSpec   *spec = lfirst(lc);
		Oid			role;
		char	   *sql;

		if (spec->roletype != ROLESPEC_CSTRING)
			continue;
		role = get_role_oid(spec->rolename, true);
		if (!OidIsValid(role))
			continue;
		sql = psprintf("SELECT (SELECT pg_catalog.string_agg(queue, ', ') FROM mq.queue_catalog"
					   "         WHERE owner" OP("=") "%u::pg_catalog.regrole),"
					   " EXISTS (SELECT FROM mq.privilege_catalog WHERE grantee" OP("=") "%u::pg_catalog.regrole)"
					   " OR EXISTS (SELECT FROM mq.creator_catalog WHERE grantee" OP("=") "%u::pg_catalog.regrole)"
					   " OR EXISTS (SELECT FROM mq.topic_privilege_catalog WHERE grantee" OP("=") "%u::pg_catalog.regrole)",
					   role, role, role, role);
		if (mq_exec_sql(sql, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "mq: could not look up the privileges of role \"%s\"", spec->rolename);
		{
			bool		no_queues;
			bool		isnull;
			Datum		owned = mq_spi_get(0, 1, &no_queues);
			bool		granted = DatumGetBool(mq_spi_get(0, 2, &isnull));

			if (!no_queues || granted)
				ereport(ERROR,
						(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
						 errmsg("role \"%s\" cannot be dropped because it holds mq privileges in this database",
								spec->rolename),
						 !no_queues ?
						 errdetail("It created queues %s.", TextDatumGetCString(owned)) : 0,
						 errhint("Drop its queues, or revoke its privileges with mq.revoke, mq.revoke_create and mq.revoke_topic, first.")));
		}
	}
	mq_call_end(&call);
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
	else if (IsA(parsetree, DropRoleStmt))
		mqd_check_drop_role((DropRoleStmt *) parsetree);
	else if (IsA(parsetree, DropdbStmt))
	{
		dropped_db = get_database_oid(((DropdbStmt *) parsetree)->dbname, true);
		mqd_stop_worker(((DropdbStmt *) parsetree)->dbname, true, false, false);
	}
	else if (IsA(parsetree, RenameStmt) &&
			 ((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
		mqd_stop_worker(((RenameStmt *) parsetree)->subname, true, true, false);
	else if (IsA(parsetree, AlterDatabaseStmt))
	{
		ListCell   *lc;

		/* of its options, only SET TABLESPACE needs the database to itself */
		foreach(lc, ((AlterDatabaseStmt *) parsetree)->options)
			if (strcmp(((DefElem *) lfirst(lc))->defname, "tablespace") == 0)
				mqd_stop_worker(((AlterDatabaseStmt *) parsetree)->dbname, true, false, false);
	}
	else if (IsA(parsetree, CreatedbStmt))
	{
		ListCell   *lc;

		foreach(lc, ((CreatedbStmt *) parsetree)->options)
		{
			DefElem    *opt = lfirst(lc);

			if (strcmp(opt->defname, "template") == 0)
				mqd_stop_worker(defGetString(opt), true, true, true);
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
