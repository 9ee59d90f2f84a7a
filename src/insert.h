/*-------------------------------------------------------------------------
 *
 * insert.h
 *	  The one way into a queue.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MQ_INSERT_H
#define MQ_INSERT_H

#define MQ_GROUP_KEY_MAX	512		/* bytes */

#include "plans.h"
#include "utils/array.h"
#include "storage/itemptr.h"

extern void mq_check_headers(Jsonb *headers, bool topic_ok);
extern void mq_check_group_key(text *key);
extern int64 mq_new_message_id(void);
extern int64 mq_insert_message(MqQueue *q, MqQueueShared *qs, MqOutMessage *m,
							   TimestampTz visible_at, bool fresh_id);
extern int64 mq_send_message(MqQueue *q, MqQueueShared *qs, MqOutMessage *m,
							 TimestampTz visible_at, bool *duplicate);
extern int64 mq_insert_due(MqQueue *q, MqQueueShared *qs, TimestampTz low, TimestampTz now,
						   int limit, bool *more);
extern bool mq_group_lock(MqQueue *q, MqQueueShared *qs, text *key, bool create,
						  ItemPointerData *tid);
extern void mq_insert_head(MqQueue *q, MqQueueShared *qs, MqOutMessage *m,
						   TimestampTz visible_at);
extern void mq_insert_grouped_locked(MqQueue *q, MqQueueShared *qs, MqOutMessage *m,
									 TimestampTz visible_at, bool head);
extern void mq_insert_batch(MqQueue *q, MqQueueShared *qs, int n, ArrayType *messages,
							ArrayType *headers,
							int32 priority, TimestampTz enqueued_at,
							TimestampTz visible_at, int64 *ids);

#endif							/* MQ_INSERT_H */
