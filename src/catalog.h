/*-------------------------------------------------------------------------
 *
 * catalog.h
 *	  Queues as a backend sees them, and the slots of their kept plans.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MQ_CATALOG_H
#define MQ_CATALOG_H

#include "executor/spi.h"
#include "shmem.h"

typedef enum MqPlanKind
{
	MQP_INSERT_READY,
	MQP_INSERT_WAIT,
	MQP_INSERT_READY_BATCH,
	MQP_INSERT_WAIT_BATCH,
	MQP_LEASE_LANE,
	MQP_LEASE_ANY,
	MQP_POP_LANE,
	MQP_POP_ANY,
	MQP_ACK,
	MQP_ACK_MANY,
	MQP_NACK_LOCK,
	MQP_RETRY,
	MQP_EXTEND,
	MQP_DEAD_TAKE,
	MQP_DEDUP_CLAIM,
	MQP_DEDUP_FIND,
	MQP_DUE_EXPIRED,
	MQP_DUE_READY,
	MQP_NEXT_DUE,
	MQP_LANES,
	MQP_NUM
} MqPlanKind;

typedef struct MqQueue
{
	char		name[NAMEDATALEN];	/* hash key */
	bool		valid;
	int32		max_attempts;
	Interval	visibility_timeout;
	Interval	retry_delay;
	Interval	retry_delay_max;
	bool		has_dlq;
	char		dlq[NAMEDATALEN];
	bool		has_retention;
	Interval	retention;
	bool		is_unlogged;
	Oid			ready_relid;
	Oid			wait_relid;
	char	   *ready_table;	/* quoted, schema-qualified */
	char	   *wait_table;
	SPIPlanPtr	plans[MQP_NUM]; /* prepared by plans.c on first use */
} MqQueue;

extern MqQueue *mq_queue_lookup(const char *name, bool missing_ok);
extern MqQueue *mq_queue_lookup_intact(const char *name, bool *damaged);
extern MqQueueShared *mq_queue_shared(MqQueue *q);
extern void mq_queue_cache_flush(void);
extern Oid	mq_catalog_relid(void);
extern Oid	mq_sequence_relid(void);
extern void mq_catalog_changed(void);
extern List *mq_all_queue_names(void);

#endif							/* MQ_CATALOG_H */
