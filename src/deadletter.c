/*-------------------------------------------------------------------------
 *
 * deadletter.c
 *	  mq.redrive, which moves dead letters of a queue from mq.dead_letters
 *	  back into it (src/retry.c puts them there).  A dead letter of a group
 *	  goes back to the end of its group.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "util.h"
#include "shmem.h"
#include "catalog.h"
#include "xact.h"
#include "plans.h"
#include "insert.h"

PG_FUNCTION_INFO_V1(mq_redrive);

Datum
mq_redrive(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr take_plan = NULL;
	char	   *name;
	int32		max_messages;
	MqQueue    *q;
	MqQueueShared *qs;
	MqCall		call;
	Datum		args[2];
	TimestampTz now;
	uint64		n;
	SPITupleTable *rows;

	name = mq_queue_name_arg(fcinfo, 0);
	max_messages = PG_ARGISNULL(1) ? PG_INT32_MAX : PG_GETARG_INT32(1);
	if (max_messages < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_messages must be positive")));

	mq_require_primary(fcinfo);
	mq_call_begin(&call);
	q = mq_queue_lookup(name, false);
	mq_require_privilege(q, call.caller, MQ_PRIV_MANAGE);
	qs = mq_queue_shared(q);
	if (take_plan == NULL)
	{
		Oid			types[2] = {TEXTOID, INT4OID};

		take_plan = mq_prepare(
			"DELETE FROM mq.dead_letter_store WHERE ctid" OP("=") "ANY (ARRAY("
			"SELECT d.ctid FROM mq.dead_letter_store d WHERE d.queue" OP("=") "$1"
			" ORDER BY d.dead_at, d.id LIMIT $2 FOR UPDATE SKIP LOCKED))"
			" RETURNING id, priority, enqueued_at, message, headers, group_key", 2, types);
	}
	args[0] = CStringGetTextDatum(name);
	args[1] = Int32GetDatum(max_messages);
	if (mq_exec_plan(take_plan, args, NULL, false, 0) != SPI_OK_DELETE_RETURNING)
		elog(ERROR, "mq: redrive failed");
	rows = SPI_tuptable;
	n = SPI_processed;
	now = mq_now();
	for (uint64 i = 0; i < n; i++)
	{
		MqOutMessage m;
		bool		isnull;
		Datum		d;
		HeapTuple	tup = rows->vals[i];

		memset(&m, 0, sizeof(m));
		m.id = DatumGetInt64(SPI_getbinval(tup, rows->tupdesc, 1, &isnull));
		m.priority = DatumGetInt32(SPI_getbinval(tup, rows->tupdesc, 2, &isnull));
		m.enqueued_at = DatumGetTimestampTz(SPI_getbinval(tup, rows->tupdesc, 3, &isnull));
		m.message = DatumGetJsonbP(SPI_getbinval(tup, rows->tupdesc, 4, &isnull));
		d = SPI_getbinval(tup, rows->tupdesc, 5, &isnull);
		m.headers = isnull ? NULL : DatumGetJsonbP(d);
		d = SPI_getbinval(tup, rows->tupdesc, 6, &isnull);
		m.group_key = isnull ? NULL : DatumGetTextPP(d);
		m.attempt = 0;
		mq_insert_message(q, qs, &m, now, false);
	}
	mq_xact_count(qs, MQC_DEAD, -(int64) n);
	mq_call_end(&call);
	PG_RETURN_INT64((int64) n);
}
