
# Copyright: mq authors; PostgreSQL License.
#
# A promotion under a held xmin horizon reads only the wait-table index
# entries between the low mark and now (issue 12, item 4: bench W10).
#
# Every receive first promotes what is due (src/promote.c); its scans of the
# wait table's vt index are bounded below by the low mark, so the dead
# entries of leases acked long ago are not walked again.  The statement that
# takes due delayed rows (MQP_DUE_READY, src/plans.c) rechecked the rows it
# fetched by TID with "vt <= now" only; once the table's statistics show few
# live rows, the planner prefers to scan the vt index with that condition
# alone, from its start: under a held horizon every receive that promoted
# then walked every lease acked since the horizon was pinned, and the
# consumers of the 3-minute soak (W10) spent more and more CPU on it, taken
# from the producers.
#
# Here: a queue with a 1 s visibility timeout; while a REPEATABLE READ
# transaction holds the horizon, 1,500 messages are sent, received and
# acked (their wait rows are dead, not removable); ANALYZE (what autovacuum
# does) records few live rows; after the leases' end has passed, one
# receive promotes (low mark moved past those entries), a second one 1.1 s
# later promotes again, from a fresh session (plans made with the new
# statistics).  Asserted: the second promotion reads fewer than 300 entries
# of the vt index (on the old statement: all ~1,500).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;
use Time::HiRes qw(usleep);
use MqHeldHorizon;

my $n = 1500;

my $node = mq_node('promote_held_horizon', qq{
mq.worker_enabled = off
autovacuum = off
log_statement = none
});

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1("CREATE EXTENSION mq");
q1("SELECT mq.create_queue('ph', visibility_timeout => '1 s')");

my $holder = hold_horizon($node);
cycle_leases($node, 'ph', $n);
is(q1("SELECT concat_ws('|', ready, in_flight, total_acked) FROM mq.metrics('ph')"),
	"0|0|$n", "$n messages sent, received and acked");
cmp_ok(q1("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'mq.w_ph'::regclass"),
	'>=', $n, 'their wait rows are dead tuples');
q1("ANALYZE mq.w_ph");

# every lease of the loop has ended; a receive promotes (and moves the low
# mark past all of them)
usleep(1_200_000);
q1("SELECT count(*) FROM mq.receive('ph', 1)");

# the next look comes after the promotion window (1 s)
usleep(1_100_000);
my $consumer = $node->background_psql('postgres');
$consumer->query_safe("SELECT pg_stat_force_next_flush()");
my $read_sql = "SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelid = 'mq.wi_ph'::regclass";
my $before = q1($read_sql);
$consumer->query_safe("SELECT count(*) FROM mq.receive('ph', 1)");
$consumer->query_safe("SELECT pg_stat_force_next_flush()");
$consumer->query_safe("SELECT 1");
my $read = q1($read_sql) - $before;
note("the second promotion read $read entries of mq.wi_ph");

horizon_still_held($holder);
cmp_ok($read, '<', 300,
	"a promotion under the held horizon does not walk the $n acked leases (read $read entries)");

$consumer->quit;
release_horizon($holder);
$node->stop;
done_testing();
