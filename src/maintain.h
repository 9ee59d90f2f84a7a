/*-------------------------------------------------------------------------
 *
 * maintain.h
 *	  The maintenance pass of one queue, shared by mq.maintain and the worker.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MQ_MAINTAIN_H
#define MQ_MAINTAIN_H

extern int64 mq_maintain_queue(const char *name, Oid ready_relid, bool full, bool retention,
								 Oid caller);
extern bool mq_maintain_full_pass(void);

#endif							/* MQ_MAINTAIN_H */
