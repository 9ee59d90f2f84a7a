/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The per-database background worker.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MQ_WORKER_H
#define MQ_WORKER_H

extern int	mq_worker_naptime;

#endif							/* MQ_WORKER_H */
