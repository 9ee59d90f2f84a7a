# Copyright: mq authors; PostgreSQL License.
#
# Many databases (issue 16, goal "Many databases"): the launcher gives a
# slot of its shared table only to databases that have mq, so 20 databases,
# 12 of them with mq, get exactly 12 workers when max_worker_processes lets
# them all run.  Before, it kept one slot per connectable database, with or
# without mq, in a table of max(max_worker_processes, 8) entries, and the
# databases without a slot got no worker, silently.
#
# Part A (all fit, max_worker_processes = 16): every mq database gets its
# worker, no database without mq has one; the launcher does not look at the
# databases without mq again at each rescan (no worker registered for them
# in a 6 s window), and CREATE EXTENSION in one of them still starts its
# worker at once.
#
# Part B (they do not fit, max_worker_processes = 8: the launcher and 7
# workers): 7 workers run; each mq database left without one logs one
# WARNING "cannot start a worker … no free background worker slot" (once,
# not at every retry) and mq.workers shows a row for it whose state says
# so; a worker that leaves (DROP EXTENSION) lets one of them start.
#
# Failure on the code before the fix: part A runs 7 workers, not 12 (the 16
# slots are held by postgres and the 8 databases without mq); part B runs
# none, logs no such line and shows no such row.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;
use Time::HiRes qw(time usleep);

my $node = mq_node('many_databases', qq{
max_worker_processes = 16
max_parallel_workers_per_gather = 0
max_logical_replication_workers = 0
mq.worker_naptime = '200ms'
});

sub sql { my ($db, $q) = @_; return $node->safe_psql($db, $q); }

my @plain = map { sprintf('p%02d', $_) } 1 .. 8;
my @with_mq = map { sprintf('m%02d', $_) } 1 .. 12;

# the databases without mq first: before the fix they took the slots
sql('postgres', "CREATE DATABASE $_") for @plain;
$node->restart;    # the launcher looks at every database at start
for my $db (@with_mq)
{
	sql('postgres', "CREATE DATABASE $db");
	sql($db, 'CREATE EXTENSION mq');
}

# databases whose worker runs (from the view of one database, which shows
# the workers of all); mq._workers() as the view may lack "state"
sub running
{
	return sql('m01',
		"SELECT coalesce(string_agg(database, ',' ORDER BY database), '')
		   FROM mq._workers() WHERE state = 'running'");
}
# mq worker processes, by database
sub processes
{
	return sql('postgres',
		"SELECT coalesce(string_agg(datname, ',' ORDER BY datname), '')
		   FROM pg_stat_activity WHERE backend_type = 'mq worker'");
}

# --- part A: 20 databases, 12 with mq, all 12 workers fit ----------------
my $all = join(',', @with_mq);
ok(wait_for(sub { running() eq $all }, 15),
	'each of the 12 databases with mq has a running worker (20 databases)')
  or diag('running: ' . running());
ok(wait_for(sub { processes() eq $all }, 10),
	'one mq worker process per database with mq, none for the 9 without')
  or diag('processes: ' . processes());

# the databases without mq are not looked at again at each rescan (5 s)
sql('postgres', "ALTER SYSTEM SET log_min_messages = debug1");
sql('postgres', 'SELECT pg_reload_conf()');
usleep(300_000);
my $offset = -s $node->logfile;
usleep(6_000_000);
sql('postgres', "ALTER SYSTEM RESET log_min_messages");
sql('postgres', 'SELECT pg_reload_conf()');
my $log = slurp_file($node->logfile, $offset);
my @registered = ($log =~ /registering background worker "mq worker for database/g);
is(scalar(@registered), 0,
	'no worker is started in a 6 s window: databases without mq are not probed again');

# CREATE EXTENSION in a database the launcher remembers as without mq
my $t0 = time();
sql('p01', 'CREATE EXTENSION mq');
ok(wait_for(sub { running() =~ /(^|,)p01(,|$)/ }, 5),
	'CREATE EXTENSION in a database without mq so far starts its worker');
my $took = time() - $t0;
ok($took < 2.0, "within 2 s ($took s)");
sql('p01', 'DROP EXTENSION mq');
ok(wait_for(sub { processes() eq $all }, 5),
	'and it leaves after DROP EXTENSION')
  or diag('processes: ' . processes());

# --- part B: they do not fit: the launcher and 7 workers -------------------
$node->append_conf('postgresql.conf', "max_worker_processes = 8\n");
$offset = -s $node->logfile;
$node->restart;

my $cannot = 'cannot start: no free background worker slot';
sub state_here
{
	my ($db) = @_;
	return sql($db,
		"SELECT coalesce(string_agg(state, ','), '')
		   FROM mq._workers() WHERE database = current_database()");
}
sub count_running
{
	return sql('m01', "SELECT count(*) FROM mq._workers() WHERE state = 'running'")
	  + 0;
}

ok(wait_for(sub { count_running() == 7 }, 15),
	'7 workers run: as many as max_worker_processes leaves after the launcher')
  or diag('running: ' . running());
my @stuck;
ok( wait_for(
		sub {
			@stuck = grep { state_here($_) eq $cannot } @with_mq;
			return @stuck == 5;
		},
		10),
	"each of the other 5 databases with mq shows a row in mq.workers: '$cannot'")
  or diag('stuck: ' . join(',', @stuck) . '; running: ' . running());
# through the view itself (the state column is new in 0.2)
my ($ret, $out, $err) = $node->psql($stuck[0] // 'm12',
	"SELECT state FROM mq.workers WHERE database = current_database()");
is($out, $cannot, 'the view mq.workers shows that row, with its state')
  or diag("psql: $ret $err");

# the launcher retries every second; the line is logged once per database
usleep(3_000_000);
$log = slurp_file($node->logfile, $offset);
my $logged_once = 1;
for my $db (@stuck)
{
	my @lines = ($log =~
		  /WARNING:  mq cannot start a worker for database "$db": no free background worker slot/g);
	if (@lines != 1)
	{
		$logged_once = 0;
		diag("$db: logged " . scalar(@lines) . ' times');
	}
}
ok(@stuck && $logged_once,
	'one WARNING per database that cannot start, not one per retry');

# a worker that leaves lets one of the others start
my %is_stuck = map { $_ => 1 } @stuck;
my ($leaving) = grep { !$is_stuck{$_} } @with_mq;
sql($leaving, 'DROP EXTENSION mq');
ok( wait_for(
		sub {
			my $n = grep { state_here($_) eq 'running' } @stuck;
			return $n == 1;
		},
		10),
	'after DROP EXTENSION in another database, one that could not start runs');
is(sql($stuck[0] // 'm12', "SELECT count(*) FROM mq._workers() WHERE state = 'running'"), '7',
	'still 7 workers');

$node->stop;
done_testing();
