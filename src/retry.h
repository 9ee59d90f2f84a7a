/*-------------------------------------------------------------------------
 *
 * retry.h
 *	  What a failed attempt leads to: a backoff or a dead letter.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MQ_RETRY_H
#define MQ_RETRY_H

#define MQ_MAX_DEAD_LETTER_HOPS 8	/* dead letters routed into queues, in a row */

#include "plans.h"

extern Interval *mq_backoff(MqQueue *q, int32 attempt);
extern void mq_dead_letter(MqQueue *q, MqQueueShared *qs, MqOutMessage *m, TimestampTz dead_at);
extern TimestampTz mq_attempt_failed(MqQueue *q, MqQueueShared *qs, int64 id, int32 attempt,
									 TimestampTz base, Interval *delay, text *error,
									 bool grouped, TimestampTz now);
extern void mq_dead_letter_leased(MqQueue *q, MqQueueShared *qs, int64 id, text *error, bool just_leased,
								  TimestampTz dead_at);

#endif							/* MQ_RETRY_H */
