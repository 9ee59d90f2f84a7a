/*-------------------------------------------------------------------------
 *
 * maintain.h
 *	  The maintenance pass of one queue, shared by mq.maintain and the worker.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MQ_MAINTAIN_H
#define MQ_MAINTAIN_H

extern int64 mq_maintain_queue(const char *name, Oid ready_relid, bool retention, Oid caller);

#endif							/* MQ_MAINTAIN_H */
