/*-------------------------------------------------------------------------
 *
 * mq.c
 *	  Module entry point: the settings (GUCs) of mq, and the start-up of
 *	  the parts that hook into the server (shared memory, the launcher,
 *	  the transaction callbacks).  The top of the house: calls down only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "shmem.h"
#include "catalog.h"
#include "deliveries.h"
#include "launcher.h"
#include "notify.h"
#include "xact.h"
#include "ddl.h"
#include "maintain.h"
#include "worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	static bool inited = false;

	if (inited)
		return;
	inited = true;

	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomIntVariable("mq.max_queues",
								"Queues of the cluster that can be in use at once (each has shared state: heads, counters).",
								"Using one more queue fails with an error until a queue is dropped.",
								&mq_max_queues,
								1024, 1, 1000000,
								PGC_POSTMASTER, 0,
								NULL, NULL, NULL);
		mq_shmem_init();
		mq_deliveries_init();
		mq_launcher_init();
	}
	/* defined without preload too, so that postgresql.conf may set them */
	DefineCustomBoolVariable("mq.worker_enabled",
							 "Runs the mq background workers.",
							 "Without them, mq.maintain() does their work when called.",
							 &mq_worker_enabled, true, PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("mq.cached_queues",
							"Queues whose kept plans a backend keeps at most.",
							"The plans of the least recently used queues beyond this are freed, and made again on their next use.",
							&mq_cached_queues, 128, 1, 1000000,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("mq.worker_naptime",
							"Time between two maintenance passes of an mq worker.",
							NULL, &mq_worker_naptime, 1000, 10, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomBoolVariable("mq.notify",
							 "Sends NOTIFY mq_<queue> after commits that make messages ready.",
							 "The background worker sends them, coalesced; needs shared_preload_libraries.",
							 &mq_notify_enabled, true, PGC_SUSET, 0,
							 NULL, NULL, NULL);
#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("mq");
#else
	EmitWarningsOnPlaceholders("mq");
#endif
	mq_xact_init();
	mq_ddl_init();
}
