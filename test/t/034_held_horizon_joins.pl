
# Copyright: mq authors; PostgreSQL License.
#
# Statements that take their wait rows from arrays of ids (a join with
# unnest) read only those ids' entries of the wait table's primary key,
# also under a held xmin horizon.
#
# The retry of failed attempts (MQP_RETRY: a nack, the expired leases of a
# promotion pass, src/retry.c) updates the wait rows of an array of ids
# with one statement, and the ack of many with receipts
# (MQP_ACK_MANY_RECEIPT) deletes them the same way.  Joined with unnest
# alone, the planner may read the wait table in full, through its primary
# key, and hash or filter: it does once the table's statistics show few
# live rows (a generic plan, chosen after five executions, or a custom one),
# and under a held horizon that walks every lease acked since the horizon
# was pinned, at each nack and each ack, the collapse mq is built to avoid
# (README "Storage design").
#
# Here: while a REPEATABLE READ transaction holds the horizon, 1,500
# messages are sent, received and acked (their wait rows are dead, not
# removable); ANALYZE (what autovacuum does) records few live rows; then
# one session nacks 10 messages one by one and acks 10 pairs with
# receipts.  Asserted: the last nacks and acks read fewer than 100 entries
# of mq.wk_hj each (on the join alone: about 1,500 each).
#
# Expired leases end in one statement (MQP_LEASES_EXPIRED) whose retry and
# dead-letter parts probe the ids the expired part locked, "id = ANY
# (ARRAY(...))": as a join (or IN) they may read the whole primary key the
# same way.  Here: 10 leases that run out are retried by a receive's
# promotion, 10 more are dead-lettered by the next; each reads fewer than
# 100 entries of mq.wk_hj.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;
use Time::HiRes qw(usleep);
use MqHeldHorizon;

my $n = 1500;

my $node = mq_node('held_horizon_joins', qq{
mq.worker_enabled = off
autovacuum = off
log_statement = none
});

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1("CREATE EXTENSION mq");
q1("SELECT mq.create_queue('hj', visibility_timeout => '1 hour', retry_delay => '1 hour', "
	  . "retry_delay_max => '1 hour')");

my $holder = hold_horizon($node);
cycle_leases($node, 'hj', $n);
cmp_ok(q1("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'mq.w_hj'::regclass"),
	'>=', $n, "the wait rows of $n acked leases are dead tuples");
q1("ANALYZE mq.w_hj");

my $session = $node->background_psql('postgres');
my $read_sql =
  "SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelid = 'mq.wk_hj'::regclass";

# entries of mq.wk_hj read by statement sql, run in $session
sub entries_read
{
	my ($sql) = @_;
	$session->query_safe("SELECT pg_stat_force_next_flush()");
	$session->query_safe("SELECT 1");
	my $before = q1($read_sql);
	$session->query_safe($sql);
	$session->query_safe("SELECT pg_stat_force_next_flush()");
	$session->query_safe("SELECT 1");
	return q1($read_sql) - $before;
}

my $nack = q{SELECT mq.nack('hj', r.id, receipt => r.receipt)
               FROM (SELECT (mq.receive('hj', 1)).*) r};
my $ack_pair = q{SELECT mq.ack('hj', array_agg(r.id), array_agg(r.receipt))
                   FROM mq.receive('hj', 2) r};
my (@nack_reads, @ack_reads);
for my $i (1 .. 10)
{
	q1("SELECT count(mq.send('hj', jsonb_build_object('nack', $i)))");
	push @nack_reads, entries_read($nack);
}
for my $i (1 .. 10)
{
	q1("SELECT count(mq.send('hj', jsonb_build_object('ack', $i, 'k', k))) FROM generate_series(1, 2) k");
	push @ack_reads, entries_read($ack_pair);
}
note("entries of mq.wk_hj read by each nack: @nack_reads");
note("entries of mq.wk_hj read by each ack of two with receipts: @ack_reads");

is(q1("SELECT concat_ws('|', ready, in_flight, delayed, total_acked) FROM mq.metrics('hj')"),
	"0|0|10|" . ($n + 20), 'every nack retried its message, every ack acked two');

# leases that run out: a receive's promotion ends them, retries (attempt 1
# of 5), then dead letters (max_attempts lowered to 1)
my @expiry_reads;
for my $max (5, 1)
{
	q1("SELECT count(mq.send('hj', jsonb_build_object('expire', k))) FROM generate_series(1, 10) k");
	q1("SELECT count(*) FROM mq.receive('hj', 10, visibility_timeout => '200 milliseconds')");
	q1("SELECT mq.alter_queue('hj', max_attempts => $max)");
	usleep(300_000);
	push @expiry_reads, entries_read("SELECT count(*) FROM mq.receive('hj', 10)");
}
note("entries of mq.wk_hj read by the promotions that retried, then dead-lettered, 10 leases: @expiry_reads");
is(q1("SELECT concat_ws('|', ready, in_flight, delayed, total_dead_lettered) FROM mq.metrics('hj')"),
	"0|0|20|10", 'the first 10 leases that ran out were retried, the next 10 dead-lettered');
horizon_still_held($holder);
my ($max_nack) = sort { $b <=> $a } @nack_reads[5 .. 9];
my ($max_ack) = sort { $b <=> $a } @ack_reads[5 .. 9];
cmp_ok($max_nack, '<', 100,
	"a nack under the held horizon does not walk the $n acked leases (at most $max_nack entries)");
cmp_ok($max_ack, '<', 100,
	"an ack with receipts under the held horizon does not walk the $n acked leases (at most $max_ack entries)");
cmp_ok($expiry_reads[0], '<', 100,
	"expired leases retried under the held horizon do not walk the $n acked leases ($expiry_reads[0] entries)");
cmp_ok($expiry_reads[1], '<', 100,
	"expired leases dead-lettered under the held horizon do not walk the $n acked leases ($expiry_reads[1] entries)");

$session->quit;
release_horizon($holder);
$node->stop;
done_testing();
