/*-------------------------------------------------------------------------
 *
 * take.h
 *	  Lanes, and taking rows out of a queue's ready table.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MQ_TAKE_H
#define MQ_TAKE_H

#include "catalog.h"

/* One row taken from the ready table. */
typedef struct MqTaken
{
	int64		id;
	Datum		message;
	Datum		headers;
	bool		headers_null;
	int32		attempt;
	TimestampTz enqueued_at;
	TimestampTz visible_at;
	int32		priority;
	int64		seq;
	int64		receipt;		/* of a lease */
	bool		receipt_null;	/* a pop has none */
	bool		dead;			/* past max_attempts: dead-lettered instead */
	text	   *group_key;		/* NULL: no group */
	int64		gseq;			/* place in its group */
	int64		run_start;		/* gseq of the head of its run, 0: none */
} MqTaken;

extern bool mq_queue_lanes(MqQueue *q, MqQueueShared *qs, MqLane *lanes, int *nlanes);
extern int	mq_take_ready(MqQueue *q, bool lease, int quantity, TimestampTz visible_at,
						  MqTaken *taken, MemoryContext mcxt);
extern int	mq_take_run(MqQueue *q, MqTaken *head, int max, TimestampTz visible_at,
						MqTaken *taken, MemoryContext mcxt);

#endif							/* MQ_TAKE_H */
