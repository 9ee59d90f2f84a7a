
# Copyright: mq authors; PostgreSQL License.
#
# mq.metrics under concurrent traffic, across gauge recounts: issue 10,
# item 7 (c), with the drift of 7 (b) as it shows under load.
#
# With mq preloaded the gauges (ready, in_flight, delayed, dead) live in
# shared memory and are counted from the tables when they are not valid:
# for a queue whose shared entry is new (create_queue, restart) and after
# purge_queue.  Today that recount (src/metrics.c, mq_ensure_gauges) runs
# LOCK TABLE q_, w_, mq.dead_letters IN SHARE MODE, in the opposite order
# to the locks receive takes, and counts with the snapshot taken before it
# waited for that lock.  So while metrics is polled, application sends and
# receives die with "deadlock detected", and the gauges drift for good.
#
# Six phases of pgbench traffic (each 2 s) on queues ma, mb (send,
# receive+ack, receive+nack with retries and dead letters) and side
# (sends), with one more client polling mq.metrics() and
# mq.metrics_prometheus().  Before each phase the gauges are made to need a
# recount: new queues (phase 1), a restart (phase 2), purge_queue of the
# queue side (phase 3), create_queue of mc, which gets traffic from then on
# (phase 4), restarts (phases 5 and 6).
#
# Asserted, for each phase: no client of either pgbench gets any error
# (no "deadlock detected", nothing else: pgbench runs with
# --failures-detailed --verbose-errors, since PostgreSQL 15's pgbench
# otherwise only counts a deadlock as a failed transaction and exits 0),
# and once the phase has settled, every queue's gauges equal the real
# counts in its tables (ready rows, leased and not-leased wait rows, dead
# letters).  Today: gauges off after nearly every phase, and deadlocks in
# most runs (in some phases; a deadlock needs the recount's lock requests
# to interleave with a receive's, so not every phase has one).
# The worker is off: the recounts and the traffic are all there is.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;
use Time::HiRes qw(time usleep);

my $node = mq_node('metrics_conc', qq{
mq.worker_enabled = off
max_connections = 40
# deadlocks, if any, are found quickly (this changes nothing else)
deadlock_timeout = '100ms'
log_statement = none
});

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1("CREATE EXTENSION mq");
for my $queue (qw(ma mb side))
{
	q1("SELECT mq.create_queue('$queue', max_attempts => 3, retry_delay => '10 ms',
	      retry_delay_max => '50 ms', visibility_timeout => '1 hour')");
}
# something to receive from the start
q1("SELECT mq.send(q, jsonb_build_object('n', g))
      FROM unnest(ARRAY['ma', 'mb', 'side']) q, generate_series(1, 200) g");

# The traffic scripts; QUEUES is replaced by the queues of the phase.
my %traffic = (
	# 1-3 messages, some delayed by 20 ms, one transaction
	'send@4' => q{
\set r random(1, NQ)
\set k random(1, 3)
\set d random(0, 3)
BEGIN;
SELECT mq.send((ARRAY[QUEUES])[:r], jsonb_build_object('k', :k),
               delay => CASE WHEN :d = 0 THEN '20 ms' ELSE '0' END::interval)
  FROM generate_series(1, :k);
SELECT mq.send('side', '{"side": true}');
COMMIT;
},
	# receive up to 5 (its own transaction), then ack them (another)
	'receive_ack@3' => q{
\set r random(1, NQ)
SELECT coalesce(array_agg(id), '{}') AS ids FROM mq.receive((ARRAY[QUEUES])[:r], 5) \gset
SELECT mq.ack((ARRAY[QUEUES])[:r], ':ids'::bigint[]);
},
	# receive one, then nack it: retried after 10-50 ms, dead letter at attempt 3
	'receive_nack@2' => q{
\set r random(1, NQ)
SELECT coalesce(min(id), 0) AS id FROM mq.receive((ARRAY[QUEUES])[:r], 1) \gset
BEGIN;
SELECT mq.nack((ARRAY[QUEUES])[:r], :id);
COMMIT;
},
	# the two in one transaction
	'receive_ack_nack@1' => q{
\set r random(1, NQ)
BEGIN;
SELECT coalesce(array_agg(id), '{}') AS ids FROM mq.receive((ARRAY[QUEUES])[:r], 2) \gset
SELECT mq.ack((ARRAY[QUEUES])[:r], (':ids'::bigint[])[1:1]);
SELECT mq.nack((ARRAY[QUEUES])[:r], (':ids'::bigint[])[2]) WHERE cardinality(':ids'::bigint[]) > 1;
COMMIT;
},);

# The monitoring client: from 200 ms into the phase (so that its first
# call, the one that recounts, runs under traffic), every 100 ms.
my $poll = q{
\sleep 200 ms
SELECT count(*) FROM mq.metrics();
SELECT length(mq.metrics_prometheus());
\sleep 100 ms
};

my $phase_no = 0;

sub write_script
{
	my ($name, $text) = @_;
	my $file = $node->basedir . "/$name";
	unlink $file;
	PostgreSQL::Test::Utils::append_to_file($file, $text);
	return $file;
}

# Run one phase: the traffic pgbench and the polling pgbench at the same
# time; assert that neither saw an error, and that the gauges are exact
# once the phase has settled.
sub phase
{
	my ($what, @queues) = @_;
	$phase_no++;
	my @opts;
	for my $fn (sort keys %traffic)
	{
		my ($base, $weight) = split /@/, $fn;
		my $text = $traffic{$fn};
		my $list = join(', ', map { "'$_'" } @queues);
		$text =~ s/QUEUES/$list/g;
		$text =~ s/NQ/scalar(@queues)/ge;
		push @opts, '-f', write_script("p${phase_no}_$base.sql", $text) . "\@$weight";
	}
	my $poll_file = write_script("p${phase_no}_poll.sql", $poll);
	my @conn = ('-h', $node->host, '-p', $node->port, 'postgres');
	# PostgreSQL 15's pgbench counts a deadlock as a failed transaction and
	# goes on (exit status 0); these make it print each error and the
	# count of each kind.
	my @pgbench = ('pgbench', '--no-vacuum', '--failures-detailed', '--verbose-errors');
	my ($out1, $err1, $out2, $err2) = ('', '', '', '');
	my $t0 = time();
	my $h1 = IPC::Run::start(
		[ @pgbench, '--client=8', '--jobs=2', '--time=2', @opts, @conn ],
		'>', \$out1, '2>', \$err1);
	my $h2 = IPC::Run::start(
		[ @pgbench, '--client=1', '--time=2', '-f', $poll_file, @conn ],
		'>', \$out2, '2>', \$err2);
	$h1->finish;
	$h2->finish;
	my ($rc1, $rc2) = ($h1->result(0), $h2->result(0));
	note(sprintf("phase %d (%s) took %.1f s", $phase_no, $what, time() - $t0));
	note("traffic pgbench:\n$out1$err1");
	note("polling pgbench:\n$out2$err2");
	my $all = $err1 . $err2;
	my $deadlocks = () = $all =~ /deadlock detected/g;
	is($deadlocks, 0, "phase $phase_no ($what): no client got \"deadlock detected\"");
	my @errors = grep { /ERROR|abort|error/i } split /\n/, $all;
	is(scalar(@errors), 0, "phase $phase_no ($what): no client got any error")
	  or diag(join("\n", @errors[0 .. ($#errors < 9 ? $#errors : 9)]));
	my ($failed1) = $out1 =~ /number of failed transactions: (\d+)/;
	my ($failed2) = $out2 =~ /number of failed transactions: (\d+)/;
	is($failed1 // 'missing', '0', "phase $phase_no ($what): no failed transaction in the traffic");
	is($failed2 // 'missing', '0', "phase $phase_no ($what): no failed metrics call");
	is($rc1, 0, "phase $phase_no ($what): traffic pgbench exit status 0");
	is($rc2, 0, "phase $phase_no ($what): polling pgbench exit status 0");
	like($out1, qr/processed: [1-9]/, "phase $phase_no ($what): traffic ran");
	like($out2, qr/processed: [1-9]/, "phase $phase_no ($what): metrics was polled");

	# pgbench may have left backends finishing their transactions
	my $start = time();
	while (time() - $start < 30)
	{
		last if q1("SELECT count(*) FROM pg_stat_activity
		             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()") eq '0';
		usleep(50_000);
	}

	# Settled: nobody else is connected, the worker is off.  Every queue's
	# gauges must equal its real counts.
	for my $queue (@queues, 'side')
	{
		my $m = q1("SELECT concat_ws('|', ready, in_flight, delayed, dead) FROM mq.metrics('$queue')");
		my $t = q1(
			"SELECT concat_ws('|',
			   (SELECT count(*) FROM mq.q_$queue),
			   (SELECT count(*) FROM mq.w_$queue WHERE leased),
			   (SELECT count(*) FROM mq.w_$queue WHERE NOT leased),
			   (SELECT count(*) FROM mq.dead_letters WHERE queue = '$queue'))");
		is($m, $t,
			"after phase $phase_no ($what): $queue: gauges ready|in_flight|delayed|dead equal the real counts ($t)");
	}
	return;
}

phase('new queues', qw(ma mb));
$node->restart;
phase('after a restart', qw(ma mb));
is(q1("SELECT mq.purge_queue('side') > 0"), 't', 'purged side');
phase('after purge_queue of side', qw(ma mb));
q1("SELECT mq.create_queue('mc', max_attempts => 3, retry_delay => '10 ms',
      retry_delay_max => '50 ms', visibility_timeout => '1 hour')");
phase('after create_queue of mc', qw(ma mb mc));
$node->restart;
phase('after a second restart', qw(ma mb mc));
$node->restart;
phase('after a third restart', qw(ma mb mc));

is(q1("SELECT count(*) FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"), '0',
	'no other session is left');
# mq.metrics() (every queue) and the single-queue form agree
is( q1(
		"SELECT count(*) FROM mq.metrics() a JOIN LATERAL mq.metrics(a.queue) b ON true
		  WHERE (a.ready, a.in_flight, a.delayed, a.dead) <> (b.ready, b.in_flight, b.delayed, b.dead)"),
	'0', 'mq.metrics() agrees with mq.metrics(queue)');

$node->stop;
done_testing();
