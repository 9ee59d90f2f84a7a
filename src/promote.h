/*-------------------------------------------------------------------------
 *
 * promote.h
 *	  Promotion of due wait rows.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MQ_PROMOTE_H
#define MQ_PROMOTE_H

#include "catalog.h"

extern int64 mq_promote_due(MqQueue *q, MqQueueShared *qs, int budget,
							 bool far);

#endif							/* MQ_PROMOTE_H */
