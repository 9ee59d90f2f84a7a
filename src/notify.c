/*-------------------------------------------------------------------------
 *
 * notify.c
 *	  Push notifications without the notify lock on the producers' path.
 *
 * NOTIFY serializes every committing transaction that notified on one
 * cluster-wide lock.  So a transaction that made messages ready in a queue
 * only marks the queue in shared memory at commit and wakes its database's
 * worker, which sends one NOTIFY mq_<queue> (payload: the queue name) for
 * all the marks gathered since its last pass.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/async.h"
#include "miscadmin.h"

#include "shmem.h"
#include "notify.h"

bool		mq_notify_enabled = true;

/*
 * At commit: messages became ready in this queue.  True for the first mark
 * since the worker's last pass: the caller wakes the worker then.
 */
bool
mq_notify_mark(MqQueueShared *qs)
{
	if (!mq_notify_enabled || qs == NULL)
		return false;
	return pg_atomic_read_u32(&qs->notify_pending) == 0 &&
		pg_atomic_exchange_u32(&qs->notify_pending, 1) == 0;
}

/* In the worker's transaction: one NOTIFY per marked queue. */
void
mq_notify_send_pending(void)
{
	List	   *names = mq_shared_take_notifies(MyDatabaseId);
	ListCell   *lc;

	foreach(lc, names)
	{
		char	   *name = lfirst(lc);
		char		channel[NAMEDATALEN];

		snprintf(channel, sizeof(channel), "mq_%s", name);
		Async_Notify(channel, name);
	}
	list_free_deep(names);
}
