/*-------------------------------------------------------------------------
 *
 * plans.h
 *	  The statements on a queue's tables, and the reader of their message rows.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MQ_PLANS_H
#define MQ_PLANS_H

#include "catalog.h"
#include "util.h"
#include "utils/jsonb.h"

/* A message as the storage layer reads and writes it. */
typedef struct MqOutMessage
{
	int64		id;
	int32		priority;
	int32		attempt;
	TimestampTz enqueued_at;
	Jsonb	   *message;
	Jsonb	   *headers;		/* may be NULL */
	text	   *dedup_key;		/* may be NULL */
	text	   *last_error;		/* may be NULL */
	text	   *group_key;		/* may be NULL: no group */
	int64		gseq;			/* place in its group (0: none yet) */
	int64		run_start;		/* gseq of the head of its run (0: none) */
} MqOutMessage;

/*
 * The columns of a wait row, in table order; a ready row has the same from
 * MQW_SEQ on (MQW_READY_NCOLS of them).
 */
typedef enum MqWaitCol
{
	MQW_VT,
	MQW_LEASED,
	MQW_RECEIPT,
	MQW_SEQ,
	MQW_ID,
	MQW_PRIORITY,
	MQW_ATTEMPT,
	MQW_ENQUEUED_AT,
	MQW_MESSAGE,
	MQW_HEADERS,
	MQW_DEDUP_KEY,
	MQW_LAST_ERROR,
	MQW_GROUP_KEY,
	MQW_GSEQ,
	MQW_RUN_START,
	MQW_NCOLS
} MqWaitCol;

#define MQW_READY_NCOLS (MQW_NCOLS - MQW_SEQ)

extern const MqColumn mq_wait_cols[MQW_NCOLS];

/* The columns of a backlog row (a group's messages behind its current one). */
typedef enum MqBacklogCol
{
	MQB_GROUP_KEY,
	MQB_GSEQ,
	MQB_VT,
	MQB_ID,
	MQB_PRIORITY,
	MQB_ATTEMPT,
	MQB_ENQUEUED_AT,
	MQB_MESSAGE,
	MQB_HEADERS,
	MQB_DEDUP_KEY,
	MQB_LAST_ERROR,
	MQB_NCOLS
} MqBacklogCol;

extern const MqColumn mq_backlog_cols[MQB_NCOLS];

extern int	mq_plan_run(MqQueue *q, MqPlanKind kind, Datum *values, const char *nulls,
						bool read_only, long count);
extern int	mq_plan_run_latest(MqQueue *q, MqPlanKind kind, Datum *values, const char *nulls,
							   long count);
extern void mq_read_message_row(SPITupleTable *rows, uint64 row, MqOutMessage *m);

#endif							/* MQ_PLANS_H */
