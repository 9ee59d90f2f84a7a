/*-------------------------------------------------------------------------
 *
 * group.h
 *	  Message groups: moving a group on when its current message leaves.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MQ_GROUP_H
#define MQ_GROUP_H

#include "catalog.h"

extern void mq_group_settled(MqQueue *q, MqQueueShared *qs, text *key, int64 gseq,
							 int64 run_start, int64 id);

#endif							/* MQ_GROUP_H */
