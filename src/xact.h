/*-------------------------------------------------------------------------
 *
 * xact.h
 *	  What the current transaction did to queues, applied when it ends.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MQ_XACT_H
#define MQ_XACT_H

#include "shmem.h"

extern void mq_xact_init(void);
extern void mq_xact_count(MqQueueShared *qs, MqCounter c, int64 delta);
extern void mq_xact_lane_scan_begin(MqQueueShared *qs, int32 priority, uint64 head,
									uint64 generation, uint64 cap);
extern void mq_xact_lane_scan_end(MqQueueShared *qs, int32 priority, uint64 max_seq);
extern void mq_xact_note_due(MqQueueShared *qs, TimestampTz vt);
extern void mq_xact_all_lanes_back(MqQueueShared *qs);
extern void mq_xact_promoted(MqQueueShared *qs, TimestampTz wait_low);
extern void mq_xact_promoted_row(MqQueueShared *qs, int32 priority, uint64 seq, int64 id);
extern uint64 mq_xact_due_floor(MqQueueShared *qs, int32 priority);
extern void mq_xact_due_taken(MqQueueShared *qs, int32 priority, int64 id);
extern void mq_xact_lane_scan_empty(MqQueueShared *qs, int32 priority);
extern void mq_xact_purged(MqQueueShared *qs);
extern void mq_xact_retention_changed(MqQueueShared *qs);
extern void mq_xact_gauge_deltas(MqQueueShared *qs, int64 *deltas);
extern void mq_xact_created_queue(Oid ready_relid);
extern void mq_xact_dropped_queue(Oid ready_relid);

#endif							/* MQ_XACT_H */
