/*-------------------------------------------------------------------------
 *
 * wait.h
 *	  Blocking receive: sleeping until a commit makes messages ready.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MQ_WAIT_H
#define MQ_WAIT_H

#include "shmem.h"

extern void mq_wait_wake(MqQueueShared *qs, int64 k);
extern uint64 mq_wait_generation(MqQueueShared *qs);
extern void mq_wait_register(MqQueueShared *qs);
extern void mq_wait_unregister(MqQueueShared *qs);
extern void mq_wait_sleep(MqQueueShared *qs, uint64 generation, TimestampTz deadline);

#endif							/* MQ_WAIT_H */
