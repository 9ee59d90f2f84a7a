/*-------------------------------------------------------------------------
 *
 * launcher.h
 *	  The launcher and the shared table of per-database workers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MQ_LAUNCHER_H
#define MQ_LAUNCHER_H

extern bool mq_worker_enabled;
extern void mq_launcher_init(void);
extern void mq_worker_wake(Oid dboid);
extern void mq_worker_stop_database(const char *dbname);
extern void mq_worker_at_commit(bool committed);
extern bool mq_worker_attach(Oid dboid);
extern bool mq_worker_set_running(void);
extern void mq_worker_leave_no_extension(void) pg_attribute_noreturn();
extern void mq_worker_pass_done(int64 handled);
extern void mq_worker_pass_failed(const char *message);

#endif							/* MQ_LAUNCHER_H */
