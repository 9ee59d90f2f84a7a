/*-------------------------------------------------------------------------
 *
 * privileges.c
 *	  Who may do what: mq.grant and mq.revoke (privileges on one queue:
 *	  send, receive, observe, manage), mq.grant_create and
 *	  mq.revoke_create (who may create queues), and mq._may_observe, the
 *	  filter of mq's views.  The checks themselves are in src/catalog.c;
 *	  topic rights are in src/topics.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "util.h"
#include "shmem.h"
#include "catalog.h"

PG_FUNCTION_INFO_V1(mq_grant);
PG_FUNCTION_INFO_V1(mq_revoke);
PG_FUNCTION_INFO_V1(mq_grant_create);
PG_FUNCTION_INFO_V1(mq_revoke_create);
PG_FUNCTION_INFO_V1(mq_may_observe);

static void
mqv_not_null(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
}

/* mq.grant / mq.revoke: the caller needs manage on the queue. */
static Datum
mqv_grant_or_revoke(FunctionCallInfo fcinfo, bool grant)
{
	char	   *name = mq_queue_name_arg(fcinfo, 0);
	Datum	   *privs;
	bool	   *privnulls;
	int			nprivs;
	MqQueue    *q;
	MqCall		call;

	mqv_not_null(fcinfo, 1, "role");
	if (grant)
		(void) mq_role_arg(fcinfo, 1);	/* a number that names no role: 42704 */
	mqv_not_null(fcinfo, 2, "privileges");
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(2), TEXTOID, -1, false, TYPALIGN_INT,
					  &privs, &privnulls, &nprivs);
	for (int i = 0; i < nprivs; i++)
	{
		if (privnulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("privileges must not contain null")));
		(void) mq_privilege_from_name(TextDatumGetCString(privs[i]), false);
	}

	mq_require_primary(fcinfo);
	mq_call_begin(&call);
	q = mq_queue_lookup(name, false);
	mq_require_privilege(q, call.caller, MQ_PRIV_MANAGE);
	mq_privilege_rows_change(false, name, PG_GETARG_DATUM(1), privs, nprivs, grant);
	mq_catalog_changed();
	mq_queue_cache_flush();
	mq_call_end(&call);
	PG_RETURN_VOID();
}

Datum
mq_grant(PG_FUNCTION_ARGS)
{
	return mqv_grant_or_revoke(fcinfo, true);
}

Datum
mq_revoke(PG_FUNCTION_ARGS)
{
	return mqv_grant_or_revoke(fcinfo, false);
}

/* mq.grant_create / mq.revoke_create: administrators only. */
static Datum
mqv_create_right(FunctionCallInfo fcinfo, bool grant)
{
	static SPIPlanPtr grant_plan = NULL;
	static SPIPlanPtr revoke_plan = NULL;
	Datum		role;
	MqCall		call;

	mqv_not_null(fcinfo, 0, "role");
	if (grant)
		(void) mq_role_arg(fcinfo, 0);
	role = PG_GETARG_DATUM(0);
	mq_require_primary(fcinfo);
	mq_call_begin(&call);
	if (!mq_is_admin(call.caller))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s the right to create queues",
						grant ? "grant" : "revoke"),
				 errdetail("Only superusers and the owner of extension \"mq\" manage it.")));
	if (grant_plan == NULL)
	{
		Oid			types[1] = {REGROLEOID};

		grant_plan = mq_prepare("INSERT INTO mq.creator_catalog (grantee) VALUES ($1)"
								" ON CONFLICT DO NOTHING", 1, types);
		revoke_plan = mq_prepare("DELETE FROM mq.creator_catalog WHERE grantee" OP("=") "$1",
								 1, types);
	}
	if (mq_exec_plan(grant ? grant_plan : revoke_plan, &role, NULL, false, 0) < 0)
		elog(ERROR, "mq: could not change mq.creator_catalog");
	mq_call_end(&call);
	PG_RETURN_VOID();
}

Datum
mq_grant_create(PG_FUNCTION_ARGS)
{
	return mqv_create_right(fcinfo, true);
}

Datum
mq_revoke_create(PG_FUNCTION_ARGS)
{
	return mqv_create_right(fcinfo, false);
}

/* Whether the current role may observe the queue (false if it is gone). */
Datum
mq_may_observe(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	MqQueue    *q;
	bool		result;
	MqCall		call;

	mq_call_begin(&call);
	q = mq_queue_lookup(name, true);
	result = q != NULL && mq_has_privilege(q, call.caller, MQ_PRIV_OBSERVE);
	mq_call_end(&call);
	PG_RETURN_BOOL(result);
}
