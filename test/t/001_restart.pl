
# Copyright: mq authors; PostgreSQL License.
#
# Messages and their states survive a clean restart and a crash
# (immediate stop).  mq keeps lane heads and gauges in shared memory and
# rebuilds them after a restart; totals survive only as far as they were
# saved to mq.queue_totals (mq.maintain() saves them).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('restart');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'mq'");
$node->start;

sub q1
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', $sql);
}

# ready|in_flight|delayed|dead from mq.metrics, and the same four counted
# directly in the queue's tables; they must agree.
sub gauges
{
	my ($queue) = @_;
	my $m = q1("SELECT concat_ws('|', ready, in_flight, delayed, dead) FROM mq.metrics('$queue')");
	my $t = q1(
		"SELECT concat_ws('|',
		   (SELECT count(*) FROM mq.q_$queue),
		   (SELECT count(*) FROM mq.w_$queue WHERE leased),
		   (SELECT count(*) FROM mq.w_$queue WHERE NOT leased),
		   (SELECT count(*) FROM mq.dead_letters WHERE queue = '$queue'))");
	is($m, $t, "$queue: mq.metrics gauges agree with the tables ($t)");
	return $m;
}

sub totals
{
	my ($queue) = @_;
	return q1("SELECT concat_ws('|', total_sent, total_acked, total_dead_lettered) FROM mq.metrics('$queue')");
}

q1("CREATE EXTENSION mq");
q1("SELECT mq.create_queue('r', max_attempts => 2, retry_delay => '0')");

# 1000 messages, n = 1..1000:
#   1..20     priority 100 (to be dead-lettered)
#   21..50    priority 9
#   51..350   priority 5
#   351..800  priority 0
#   801..1000 priority 0, delayed by an hour
q1(<<'SQL');
SELECT count(*) FROM mq.send_batch('r', array(SELECT jsonb_build_object('n', g) FROM generate_series(1, 20) g), priority => 100);
SELECT count(*) FROM mq.send_batch('r', array(SELECT jsonb_build_object('n', g) FROM generate_series(21, 50) g), priority => 9);
SELECT count(*) FROM mq.send_batch('r', array(SELECT jsonb_build_object('n', g) FROM generate_series(51, 350) g), priority => 5);
SELECT count(*) FROM mq.send_batch('r', array(SELECT jsonb_build_object('n', g) FROM generate_series(351, 800) g));
SELECT count(*) FROM mq.send_batch('r', array(SELECT jsonb_build_object('n', g) FROM generate_series(801, 1000) g), delay => '1 hour');
SQL

# 1..20: nacked twice (max_attempts 2): dead.
is( q1(
		"CREATE TEMP TABLE got AS SELECT id, message FROM mq.receive('r', 20);
		 SELECT count(*) FILTER (WHERE mq.nack('r', id, '0')), min((message->>'n')::int), max((message->>'n')::int) FROM got;"
	),
	'20|1|20',
	'1..20 received and nacked for a retry now');
is( q1(
		"CREATE TEMP TABLE got AS SELECT id, message, attempt FROM mq.receive('r', 20);
		 SELECT count(*) FILTER (WHERE mq.nack('r', id, error => 'boom')), min((message->>'n')::int), max((message->>'n')::int), min(attempt), max(attempt) FROM got;"
	),
	'20|1|20|2|2',
	'1..20 received again as attempt 2 and nacked: dead-lettered');

# 21..120: received and acked.
is( q1(
		"SELECT mq.ack('r', array_agg(id)), min((message->>'n')::int), max((message->>'n')::int) FROM mq.receive('r', 100)"),
	'100|21|120',
	'21..120 received (priority 9 before 5) and acked');

# 121..170: leased for an hour and left in flight.
is(q1("SELECT count(*), min((message->>'n')::int), max((message->>'n')::int) FROM mq.receive('r', 50, '1 hour')"),
	'50|121|170', '121..170 left in flight');

# 171..200: nacked with a delay of an hour.
is( q1(
		"CREATE TEMP TABLE got AS SELECT id, message FROM mq.receive('r', 30);
		 SELECT count(*) FILTER (WHERE mq.nack('r', id, '1 hour')), min((message->>'n')::int), max((message->>'n')::int) FROM got;"
	),
	'30|171|200',
	'171..200 nacked with a delay');

my $g_before = gauges('r');
is($g_before, '600|50|230|20', 'gauges before restart: ready 600, in flight 50, delayed 230, dead 20');
my $totals_live = totals('r');
is($totals_live, '1000|100|20', 'totals before restart');
my $totals_saved = q1(
	"SELECT concat_ws('|', coalesce(max(total_sent), 0), coalesce(max(total_acked), 0), coalesce(max(total_dead_lettered), 0))
	   FROM mq.queue_totals WHERE queue = 'r'");

# --- (a) clean restart, totals not saved ---------------------------------
$node->restart;

is(gauges('r'), $g_before, 'clean restart: gauges unchanged');
# Totals since the last save may be lost; each total is between what was
# saved and what was live.
{
	my @after = split /\|/, totals('r');
	my @saved = split /\|/, $totals_saved;
	my @live = split /\|/, $totals_live;
	my $ok = @after == 3;
	for my $i (0 .. 2)
	{
		$ok &&= ($after[$i] >= $saved[$i] && $after[$i] <= $live[$i]);
	}
	ok($ok, "clean restart without mq.maintain(): totals " . join('|', @after)
		  . " between saved $totals_saved and live $totals_live");
}

# Priority order after restart (lanes rediscovered): the 150 left of
# priority 5 (201..350), then priority 0 from 351.
is( q1(
		"SELECT string_agg(n::text, ',' ORDER BY ord) = (SELECT string_agg(g::text, ',' ORDER BY g) FROM generate_series(201, 360) g)
		   FROM (SELECT (message->>'n')::int AS n, ordinality AS ord FROM mq.receive('r', 160, '1 hour') WITH ORDINALITY) s"),
	't',
	'receive after restart: 201..350 (priority 5) then 351..360 (priority 0), in order');
is(q1("SELECT concat_ws('|', ready, in_flight) FROM mq.metrics('r')"),
	'440|210', 'gauges follow the receive after restart');

# --- (a) clean restart after mq.maintain(): totals saved -------------------
like(q1("SELECT mq.maintain()"), qr/^\d+$/, 'mq.maintain() ran');
my $g2 = gauges('r');
my $t2 = totals('r');
is(q1("SELECT concat_ws('|', total_sent, total_acked, total_dead_lettered) FROM mq.queue_totals WHERE queue = 'r'"),
	$t2, 'mq.maintain() saved the live totals');
$node->restart;
is(gauges('r'), $g2, 'second clean restart: gauges unchanged');
is(totals('r'), $t2, 'second clean restart after mq.maintain(): totals unchanged');

# --- (b) crash with messages in flight ------------------------------------
# 361..400: leased for 5 seconds, in flight at the crash.
my $lease_start = time();
is(q1("SELECT count(*), min((message->>'n')::int), max((message->>'n')::int) FROM mq.receive('r', 40, '5 seconds')"),
	'40|361|400', '361..400 leased for 5 seconds');
my $leases_before = q1("SELECT count(*), min(vt), max(vt), max(attempt) FROM mq.w_r WHERE (message->>'n')::int BETWEEN 361 AND 400");

# Open transactions at the crash: a receive (401..410) and a send (n 5000).
my $open_rx = $node->background_psql('postgres');
$open_rx->query_safe("BEGIN");
is($open_rx->query_safe("SELECT count(*) FROM mq.receive('r', 10)"),
	'10', 'an open transaction leases 10 more');
my $open_tx = $node->background_psql('postgres');
$open_tx->query_safe("BEGIN");
$open_tx->query_safe("SELECT mq.send('r', '{\"n\": 5000}')");

my $g_crash = gauges('r');
is($g_crash, '400|250|230|20', 'before the crash: ready 400, in flight 250 (committed), delayed 230, dead 20');
my ($r, $f, $d, $x) = split /\|/, $g_crash;
my $total_before = $r + $f + $d + $x;

$node->stop('immediate');
eval { $open_rx->quit; };
eval { $open_tx->quit; };
$node->start;

my $g_after = gauges('r');
my ($r2, $f2, $d2, $x2) = split /\|/, $g_after;
is($r2 + $f2 + $d2 + $x2, $total_before, "crash: every message still there ($total_before)");
is($g_after, $g_crash, 'crash: ready, in flight, delayed, dead as before (open receive undone, open send gone)');
is(q1("SELECT count(*) FROM mq.q_r WHERE message @> '{\"n\": 5000}'")
	  + q1("SELECT count(*) FROM mq.w_r WHERE message @> '{\"n\": 5000}'"),
	0, 'the uncommitted send is gone');
is(q1("SELECT count(*), min(vt), max(vt), max(attempt) FROM mq.w_r WHERE leased AND (message->>'n')::int BETWEEN 361 AND 400"),
	$leases_before, 'the leases of 361..400 survived the crash, same lease end');

# Everything ready now, but none of the leased 361..400.
is( q1(
		"SELECT count(*), count(*) FILTER (WHERE (message->>'n')::int BETWEEN 361 AND 400),
		        min((message->>'n')::int), max(attempt)
		   FROM mq.receive('r', 10000, '1 hour')"),
	'400|0|401|2',
	'receive after the crash: the 400 ready (401..800), none still leased; 401..410 as attempt 2: their delivery in the transaction the crash undid counts');

# When the leases end, 361..400 come back as attempt 2.
my $wait = $lease_start + 6 - time();
usleep(int($wait * 1e6)) if $wait > 0;
is( q1(
		"SELECT count(*), min((message->>'n')::int), max((message->>'n')::int), min(attempt), max(attempt)
		   FROM mq.receive('r', 10000)"),
	'40|361|400|2|2',
	'after their lease ends, 361..400 come back as attempt 2');

$node->stop;
done_testing();
