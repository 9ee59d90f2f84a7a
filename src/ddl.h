/*-------------------------------------------------------------------------
 *
 * ddl.h
 *	  DDL that mq watches (drops of queue tables and databases, its sequence).
 *
 *-------------------------------------------------------------------------
 */
#ifndef MQ_DDL_H
#define MQ_DDL_H

extern void mq_ddl_init(void);

#endif							/* MQ_DDL_H */
