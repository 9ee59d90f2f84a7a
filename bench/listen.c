/*
 * bench/listen.c: the LISTEN side of bench/run.sh (W1n, W7n), libpq only.
 * run.sh compiles it into its temporary directory; connection parameters
 * come from the PG* environment.
 *
 *   listen drain CHANNEL STOP_CHANNEL MAX_SECONDS
 *       LISTEN CHANNEL and STOP_CHANNEL, print "listening", then read and
 *       count the notifications on CHANNEL until one arrives on
 *       STOP_CHANNEL; print "received N" and exit 0.  Exit 1 if none has
 *       come on STOP_CHANNEL after MAX_SECONDS.
 *
 *   listen latency QUEUE N GAP_MS
 *       LISTEN mq_QUEUE on one connection.  On a second one, 1 + N times:
 *       send one message to QUEUE (one autocommit statement that also
 *       returns clock_timestamp(), read after the send and so just before
 *       the commit, as W7's producer does), wait for the notification, and
 *       print, in ms, one a line, the time from that clock to the
 *       notification's arrival (the same system clock: the server runs on
 *       this machine); then pause GAP_MS.  The first round is a warm-up
 *       (the sessions plan their statements) and is not printed.  Exit 1 if
 *       a notification does not come within 5 s.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "libpq-fe.h"

static void
fail(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "listen: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* the wall clock, as the server's clock_timestamp() reads it */
static double
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static PGconn *
connect_as(const char *appname)
{
	const char *keys[] = {"application_name", NULL};
	const char *values[] = {appname, NULL};
	PGconn	   *c = PQconnectdbParams(keys, values, 0);

	if (PQstatus(c) != CONNECTION_OK)
		fail("connection failed: %s", PQerrorMessage(c));
	return c;
}

static void
exec_ok(PGconn *c, const char *sql)
{
	PGresult   *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
}

/* Run sql, which returns one row whose second column is a number. */
static double
exec_number(PGconn *c, const char *sql)
{
	PGresult   *r = PQexec(c, sql);
	double		v;

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQnfields(r) != 2)
		fail("%s: %s", sql, PQerrorMessage(c));
	v = strtod(PQgetvalue(r, 0, 1), NULL);
	PQclear(r);
	return v;
}

static void
listen_to(PGconn *c, const char *channel)
{
	char	   *id = PQescapeIdentifier(c, channel, strlen(channel));
	char		sql[256];

	if (id == NULL)
		fail("bad channel name %s", channel);
	snprintf(sql, sizeof(sql), "LISTEN %s", id);
	PQfreemem(id);
	exec_ok(c, sql);
}

/* Wait up to timeout_ms for the server to send something, then read it. */
static void
wait_input(PGconn *c, double timeout_ms)
{
	int			sock = PQsocket(c);
	fd_set		rfds;
	struct timeval tv;

	if (timeout_ms < 0)
		timeout_ms = 0;
	FD_ZERO(&rfds);
	FD_SET(sock, &rfds);
	tv.tv_sec = (long) (timeout_ms / 1000);
	tv.tv_usec = (long) ((timeout_ms - tv.tv_sec * 1000.0) * 1000);
	if (select(sock + 1, &rfds, NULL, NULL, &tv) < 0 && errno != EINTR)
		fail("select: %s", strerror(errno));
	if (!PQconsumeInput(c))
		fail("connection lost: %s", PQerrorMessage(c));
}

/* Notifications on channel that libpq has read; the others are dropped. */
static long
take_notifications(PGconn *c, const char *channel, const char *stop, int *stopped)
{
	PGnotify   *n;
	long		got = 0;

	while ((n = PQnotifies(c)) != NULL)
	{
		if (strcmp(n->relname, channel) == 0)
			got++;
		else if (stop != NULL && strcmp(n->relname, stop) == 0)
			*stopped = 1;
		PQfreemem(n);
	}
	return got;
}

static int
drain(const char *channel, const char *stop, int max_seconds)
{
	PGconn	   *c = connect_as("mq_bench_listen");
	double		deadline = now_ms() + max_seconds * 1000.0;
	long		count = 0;
	int			stopped = 0;

	listen_to(c, channel);
	listen_to(c, stop);
	printf("listening\n");
	fflush(stdout);
	for (;;)
	{
		count += take_notifications(c, channel, stop, &stopped);
		if (stopped)
			break;
		if (now_ms() >= deadline)
			fail("no notification on %s within %d s (%ld on %s)", stop, max_seconds,
				 count, channel);
		wait_input(c, deadline - now_ms());
	}
	printf("received %ld\n", count);
	PQfinish(c);
	return 0;
}

static int
latency(const char *queue, int n, int gap_ms)
{
	PGconn	   *l = connect_as("mq_bench_listen");
	PGconn	   *p = connect_as("mq_bench_notify_send");
	char		channel[128];
	char		send[256];
	char	   *lit = PQescapeLiteral(p, queue, strlen(queue));

	if (lit == NULL)
		fail("bad queue name %s", queue);
	snprintf(channel, sizeof(channel), "mq_%s", queue);
	snprintf(send, sizeof(send),
			 "SELECT mq.send(%s, '{\"n\": 1}'), extract(epoch FROM clock_timestamp()) * 1000", lit);
	PQfreemem(lit);
	listen_to(l, channel);
	for (int i = -1; i < n; i++)
	{
		double		t0,
					sent;
		int			stopped = 0;

		/* nothing left over from before may count for this send */
		if (!PQconsumeInput(l))
			fail("connection lost: %s", PQerrorMessage(l));
		(void) take_notifications(l, channel, NULL, &stopped);

		sent = exec_number(p, send);
		t0 = now_ms();
		while (take_notifications(l, channel, NULL, &stopped) == 0)
		{
			if (now_ms() - t0 > 5000)
				fail("notification %d of %d did not come within 5 s", i + 2, n + 1);
			wait_input(l, t0 + 5000 - now_ms());
		}
		if (i >= 0)
		{
			printf("%.3f\n", wall_ms() - sent);
			fflush(stdout);
		}
		usleep(gap_ms * 1000);
	}
	PQfinish(p);
	PQfinish(l);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "drain") == 0)
		return drain(argv[2], argv[3], atoi(argv[4]));
	if (argc == 5 && strcmp(argv[1], "latency") == 0)
		return latency(argv[2], atoi(argv[3]), atoi(argv[4]));
	fprintf(stderr, "usage: listen drain CHANNEL STOP_CHANNEL MAX_SECONDS\n"
			"       listen latency QUEUE N GAP_MS\n");
	return 2;
}
