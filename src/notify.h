/*-------------------------------------------------------------------------
 *
 * notify.h
 *	  Coalesced NOTIFY, sent by the worker.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MQ_NOTIFY_H
#define MQ_NOTIFY_H

#include "shmem.h"

extern bool mq_notify_enabled;
extern bool mq_notify_mark(MqQueueShared *qs);
extern void mq_notify_send_pending(void);

#endif							/* MQ_NOTIFY_H */
