/*-------------------------------------------------------------------------
 *
 * deliveries.h
 *	  Deliveries that ended in an abort, so that they count as attempts.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MQ_DELIVERIES_H
#define MQ_DELIVERIES_H

extern void mq_deliveries_init(void);
extern void mq_deliveries_note(Oid relid, int64 id, int32 attempt);
extern uint32 mq_deliveries_mark(void);
extern void mq_deliveries_end(uint32 mark, bool aborted);
extern int32 mq_deliveries_take(Oid relid, int64 id);

#endif							/* MQ_DELIVERIES_H */
