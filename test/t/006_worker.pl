
# Copyright: mq authors; PostgreSQL License.
#
# The background worker: one per database with mq, started within 2 s of
# CREATE EXTENSION and gone after DROP EXTENSION / DROP DATABASE (which
# return promptly); it retries and dead-letters expired leases with no
# client call; it sends one coalesced NOTIFY after a committed send and
# none after a rollback; it comes back after kill -9; retention deletes
# old archived messages.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;
use Time::HiRes qw(time usleep);

my $node = mq_node('worker', qq{
mq.worker_naptime = '200ms'
restart_after_crash = on
});

sub sql { my ($db, $q) = @_; return $node->safe_psql($db, $q); }

# workers for the databases that have mq, and only those
sub workers
{
	return sql('postgres',
		"SELECT coalesce(string_agg(database, ',' ORDER BY database), '') FROM mq._workers()");
}

sql('postgres', 'CREATE EXTENSION mq');
sql('postgres', 'CREATE DATABASE db1');
sql('postgres', 'CREATE DATABASE db2');
sql('postgres', 'CREATE DATABASE plain');    # never gets mq

# --- start within 2 s of CREATE EXTENSION ----------------------------------
ok(defined wait_for(sub { workers() eq 'postgres' }, 5),
	'a worker serves the database that had mq at start');
sql('db1', 'CREATE EXTENSION mq');
sql('db2', 'CREATE EXTENSION mq');
my $t = wait_for(sub { workers() eq 'db1,db2,postgres' }, 10);
ok(defined $t && $t < 2.0, 'workers appear in two databases within 2 s of CREATE EXTENSION')
  or diag("took " . ($t // 'forever') . " s; workers: " . workers());
is(sql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'mq worker'"),
	'3', 'one worker process per database with mq, none for the others');

# --- DROP EXTENSION / DROP DATABASE return promptly and the worker goes ----
my $t0 = time();
sql('db2', 'DROP EXTENSION mq');
my $drop_ext = time() - $t0;
ok($drop_ext < 2.0, "DROP EXTENSION returns promptly ($drop_ext s)");
ok(defined wait_for(sub { workers() eq 'db1,postgres' }, 5),
	'the worker leaves after DROP EXTENSION');
$t0 = time();
sql('postgres', 'DROP DATABASE db1');
my $drop_db = time() - $t0;
ok($drop_db < 2.0, "DROP DATABASE with a running worker returns promptly ($drop_db s)");
is(workers(), 'postgres', 'the worker of the dropped database is gone');
# CREATE EXTENSION again brings it back
sql('db2', 'CREATE EXTENSION mq');
ok(defined wait_for(sub { workers() eq 'db2,postgres' }, 3),
	'CREATE EXTENSION after DROP EXTENSION starts a worker again');

# --- expired leases: retry, then dead letter, with no client call at all ---
sql('postgres', "SELECT mq.create_queue('jobs', max_attempts => 2,
                  visibility_timeout => '300 ms', retry_delay => '100 ms')");
my $id = sql('postgres', "SELECT mq.send('jobs', '{\"n\": 1}')");
is(sql('postgres', "SELECT attempt FROM mq.receive('jobs')"), '1', 'received: attempt 1');
# the worker turns the expired lease into a retry and makes it ready again
ok( defined wait_for(sub { sql('postgres', "SELECT count(*) FROM mq.q_jobs WHERE id = $id") eq '1' }, 5),
	'an expired lease comes back to the ready table without any mq call');
is(sql('postgres', "SELECT attempt FROM mq.receive('jobs')"), '2',
	'received again: attempt 2');
ok( defined wait_for(sub { sql('postgres', "SELECT count(*) FROM mq.dead_letters WHERE id = $id") eq '1' }, 5),
	'after the last lease expires the worker dead-letters it');
is(sql('postgres', "SELECT attempts FROM mq.dead_letters WHERE id = $id"), '2',
	'dead letter records 2 attempts');
is(sql('postgres', "SELECT (SELECT count(*) FROM mq.q_jobs) + (SELECT count(*) FROM mq.w_jobs)"),
	'0', 'nothing left in the queue');

# --- notifications: one after a committed send, none after a rollback ------
sql('postgres', "SELECT mq.create_queue('pings')");
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN mq_pings');
sql('postgres', "SELECT mq.send('pings', '{}')");
sql('postgres', "BEGIN; SELECT mq.send('pings', '{}'); ROLLBACK;");
usleep(500_000);
my $out = $listener->query_safe('SELECT 1');
my @notes = ($out =~ /Asynchronous notification "mq_pings" with payload "pings"/g);
is(scalar(@notes), 1, 'LISTEN mq_pings: one notification after a committed send');
sql('postgres', "BEGIN; SELECT mq.send('pings', '{}'); ROLLBACK;");
usleep(500_000);
$out = $listener->query_safe('SELECT 1');
@notes = ($out =~ /Asynchronous notification/g);
is(scalar(@notes), 0, 'none after a rolled-back send');
# many sends in a row are coalesced: far fewer notifications than commits
for (1 .. 50) { sql('postgres', "SELECT mq.send('pings', '{}')"); }
usleep(500_000);
$out = $listener->query_safe('SELECT 1');
@notes = ($out =~ /Asynchronous notification/g);
ok(@notes >= 1 && @notes <= 51, 'sends are notified, at most once per commit (' . scalar(@notes) . ')');
$listener->quit;

# --- retention: the worker deletes archived messages past their age --------
sql('postgres', "SELECT mq.create_queue('kept', retention => '1 hour')");
sql('postgres', "SELECT mq.send('kept', '{}') FROM generate_series(1, 3)");
sql('postgres', "SELECT mq.ack('kept', array_agg(id)) FROM mq.receive('kept', 10)");
is(sql('postgres', "SELECT count(*) FROM mq.archive WHERE queue = 'kept'"), '3', 'acked messages are archived');
# the worker comes back when the archive's oldest row passes its retention
# (a deadline in shared memory); a row moved into the past by hand is seen
# at that deadline, or at once after alter_queue sets the retention
sql('postgres', "UPDATE mq.archive SET archived_at = now() - interval '2 hours'
                  WHERE id = (SELECT min(id) FROM mq.archive WHERE queue = 'kept')");
sql('postgres', "SELECT mq.alter_queue('kept', retention => '1 hour')");
ok( defined wait_for(sub { sql('postgres', "SELECT count(*) FROM mq.archive WHERE queue = 'kept'") eq '2' }, 5),
	'the worker deleted the archived message past its retention, and only it');

# --- kill -9 of the worker: it comes back and work goes on -----------------
my $pid = sql('postgres', "SELECT pid FROM mq._workers() WHERE database = 'postgres'");
ok($pid > 0, 'the worker of postgres runs');
my $id2 = sql('postgres', "SELECT mq.send('jobs', '{\"n\": 2}')");
sql('postgres', "SELECT count(*) FROM mq.receive('jobs')");
kill 'KILL', $pid;
ok( defined wait_for(sub {
			my ($ret, $o) = $node->psql('postgres',
				"SELECT pid FROM mq._workers() WHERE database = 'postgres'");
			return $ret == 0 && $o ne '' && $o ne $pid;
		},
		30),
	'after kill -9 the worker is started again');
ok( defined wait_for(sub { sql('postgres', "SELECT count(*) FROM mq.q_jobs WHERE id = $id2") eq '1' }, 10),
	'and it goes on: the expired lease came back');

# --- immediate stop with thousands in flight loses nothing -----------------
sql('postgres', "SELECT mq.create_queue('bulk', visibility_timeout => '1 hour')");
sql('postgres', "SELECT count(*) FROM mq.send_batch('bulk',
                  (SELECT array_agg(jsonb_build_object('i', i)) FROM generate_series(1, 5000) i))");
sql('postgres', "SELECT count(*) FROM mq.receive('bulk', 3000)");
sql('postgres', "SELECT mq.nack('bulk', id, '1 hour') FROM mq.receive('bulk', 500)");
$node->stop('immediate');
$node->start;
is( sql('postgres',
		"SELECT concat_ws('|', ready, in_flight, delayed, dead) FROM mq.metrics('bulk')"),
	'1500|3000|500|0', 'after an immediate stop: every message is still there, in its state');
is(sql('postgres', "SELECT (SELECT count(*) FROM mq.q_bulk) + (SELECT count(*) FROM mq.w_bulk)"),
	'5000', 'count before == ready + in flight + delayed after the restart');
ok(defined wait_for(sub { workers() =~ /postgres/ }, 5),
	'the worker is back after the restart');

$node->stop;
done_testing();
