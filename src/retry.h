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

/*
 * Where a queue's dead letters go, looked up at the first dead letter of a
 * phase (a receive, a promotion) and kept for the rest of it.  Zeroed: not
 * looked up yet.
 */
typedef struct MqDeadTarget
{
	bool		resolved;
	MqQueue    *dlq;			/* NULL: mq.dead_letters */
	MqQueueShared *dqs;			/* dlq's shared entry (NULL without one) */
} MqDeadTarget;

extern void mq_dead_letter(MqQueue *q, MqQueueShared *qs, MqDeadTarget *to, MqOutMessage *m,
						   TimestampTz dead_at);
extern void mq_dead_letter_leased(MqQueue *q, MqQueueShared *qs, MqDeadTarget *to, int64 id,
								  text *error, bool just_leased, TimestampTz dead_at);
extern TimestampTz mq_attempt_failed(MqQueue *q, MqQueueShared *qs, int64 id, int32 attempt,
									 TimestampTz base, Interval *delay, text *error,
									 bool grouped, TimestampTz now);
extern int64 mq_leases_expired(MqQueue *q, MqQueueShared *qs, TimestampTz low, TimestampTz now,
							   int limit, bool *more);

#endif							/* MQ_RETRY_H */
