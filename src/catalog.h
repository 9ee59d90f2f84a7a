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
#include "lib/ilist.h"
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
	MQP_ACK_RECEIPT,
	MQP_ACK_MANY_RECEIPT,
	MQP_NACK_LOCK,
	MQP_RETRY,
	MQP_EXTEND,
	MQP_SET_ATTEMPT,
	MQP_DEAD_TAKE,
	MQP_DEDUP_CLAIM,
	MQP_DEDUP_FIND,
	MQP_DEDUP_RELEASE,
	MQP_LEASES_EXPIRED,
	MQP_DUE_READY,
	MQP_NEXT_DUE,
	MQP_LANES,
	MQP_GROUP_LOCK,
	MQP_GROUP_CREATE,
	MQP_GROUP_DELETE,
	MQP_BACKLOG_INSERT,
	MQP_BACKLOG_NEXT,
	MQP_BACKLOG_PEEK,
	MQP_BACKLOG_RUN,
	MQP_RUN_LEAVE,
	MQP_RUN_MARK,
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
	Oid			group_relid;
	Oid			backlog_relid;
	Oid			run_relid;
	char	   *ready_table;	/* quoted, schema-qualified */
	char	   *wait_table;
	char	   *group_table;
	char	   *backlog_table;
	char	   *run_table;
	SPIPlanPtr	plans[MQP_NUM]; /* prepared by plans.c on first use */
	Oid			owner;			/* its creator: every privilege */
	int			ngrants;		/* mq.privilege_catalog rows */
	Oid		   *grantees;
	int		   *privileges;		/* MQ_PRIV_* bits */
	dlist_node	lru;			/* in the cache's use order, while current */
	bool		in_lru;
} MqQueue;

/* privileges on a queue */
#define MQ_PRIV_SEND	(1 << 0)
#define MQ_PRIV_RECEIVE (1 << 1)
#define MQ_PRIV_OBSERVE (1 << 2)
#define MQ_PRIV_MANAGE	(1 << 3)

/* one call of an mq function: who asked, and who ran before */
typedef struct MqCall
{
	Oid			caller;
	Oid			save_user;
	int			save_sec;
} MqCall;

extern int	mq_cached_queues;
extern MqQueue *mq_queue_lookup(const char *name, bool missing_ok);
extern MqQueue *mq_queue_lookup_intact(const char *name, bool *damaged);
extern MqQueueShared *mq_queue_shared(MqQueue *q);
extern void mq_queue_cache_flush(void);
extern Oid	mq_catalog_relid(void);
extern bool mq_schema_current(void);
extern Oid	mq_sequence_relid(void);
extern void mq_catalog_changed(void);
extern List *mq_all_queue_names(void);
extern List *mq_queues_without_entry(void);
extern uint64 mq_catalog_generation(void);
extern Oid	mq_extension_owner(void);
extern void mq_call_begin(MqCall *call);
extern void mq_call_end(MqCall *call);
extern int	mq_privilege_from_name(const char *name, bool missing_ok);
extern bool mq_is_admin(Oid role);
extern bool mq_has_privilege(MqQueue *q, Oid role, int privilege);
extern void mq_require_privilege(MqQueue *q, Oid role, int privilege);
extern void mq_privilege_rows_change(bool topic, const char *key, Datum grantee, Datum *privs,
									 int nprivs, bool grant);

#endif							/* MQ_CATALOG_H */
