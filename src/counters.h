/*-------------------------------------------------------------------------
 *
 * counters.h
 *	  Gauges counted from the tables; totals saved and read back.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MQ_COUNTERS_H
#define MQ_COUNTERS_H

#include "catalog.h"

extern void mq_count_gauges(MqQueue *q, Snapshot snap, int64 *gauges);
extern bool mq_ensure_gauges(MqQueue *q, MqQueueShared *qs);
extern void mq_ensure_totals(MqQueue *q, MqQueueShared *qs);
extern void mq_saved_totals(MqQueue *q, int64 *totals);
extern bool mq_save_totals(MqQueue *q, MqQueueShared *qs, int64 *saved);
extern int64 mq_flush_totals(void);

#endif							/* MQ_COUNTERS_H */
