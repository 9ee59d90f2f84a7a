
# Copyright: mq authors; PostgreSQL License.
#
# A blocking receive moves the lane heads too: issue 10, item 8 (a).
#
# While a snapshot holds the xmin horizon back, every consumed ready row
# stays behind as a dead index entry, and the README promises that heads
# keep dequeue scans from walking them ("a held xmin horizon alone ... does
# not stop them").  Today only the first lane scan of a transaction may
# move a head at commit (src/mq.c, mq_xact_lane_scan_end), and a receive
# with wait > 0 that finds nothing at its first look scans again after it
# wakes: that second scan never moves the head.  A consumer that always
# waits for its next message therefore never moves the head, and every scan
# walks all the dead entries consumed so far: quadratic.
#
# Here, under a REPEATABLE READ transaction holding its snapshot, 300
# cycles of: the consumer sits in mq.receive(q, 1, wait => '5 s') before
# the message exists (checked: it is waiting on the queue, so its first
# look found nothing), a producer sends one message, the consumer gets it,
# then acks it in a transaction of its own.  Asserted: all 300 received
# and acked, and the index entries read on the ready table's index
# (pg_stat_user_indexes.idx_tup_read of mq.qi_bh) stay bounded:
# < 5000 (one or two per cycle is the expected order; today ~84,000).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;
use Time::HiRes qw(time usleep);

my $cycles = 300;

my $node = mq_node('blocking_heads', qq{
mq.worker_enabled = off
log_statement = none
});

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1("CREATE EXTENSION mq");
q1("SELECT mq.create_queue('bh')");

# heads start from the beginning once after a restart or on a new queue:
# warm the lane up with one message, so the measurement below sees only
# the cycles
q1("SELECT mq.send('bh', '{\"n\": 0}')");
q1("SELECT mq.ack('bh', id) FROM mq.receive('bh', 1)");

# A repeatable-read transaction with a snapshot, open until the end.
my $holder = $node->background_psql('postgres');
$holder->query_safe("BEGIN ISOLATION LEVEL REPEATABLE READ");
$holder->query_safe("SELECT count(*) FROM mq.q_bh");
is( q1(
		"SELECT count(*) FROM pg_stat_activity
		  WHERE backend_xmin IS NOT NULL AND state = 'idle in transaction'"),
	'1', 'a session holds the xmin horizon');

my $consumer = $node->background_psql('postgres', on_error_stop => 0);
my $producer = $node->background_psql('postgres');
my $consumer_pid = $consumer->query_safe("SELECT pg_backend_pid()");

sub idx_tup_read
{
	$producer->query_safe("SELECT pg_stat_force_next_flush()");
	$consumer->query_safe("SELECT pg_stat_force_next_flush()");
	# their counts reached the shared stats when those statements ended
	# (the flush was forced); read them from a new session
	return q1("SELECT idx_tup_read FROM pg_stat_user_indexes
	            WHERE indexrelid = 'mq.qi_bh'::regclass");
}

my $before = idx_tup_read();
my ($received, $acked, $not_waiting) = (0, 0, 0);
my $t0 = time();
for my $i (1 .. $cycles)
{
	# the consumer starts waiting before the message exists
	$consumer->query_until(qr/started $i\n/, qq{\\echo started $i
SELECT coalesce(string_agg(id::text, ','), 'none') AS got FROM mq.receive('bh', 1, wait => '5 s') \\gset
SELECT 'cycle $i: ' || :'got' || ' acked ' || CASE WHEN :'got' = 'none' THEN 'no'
       WHEN mq.ack('bh', NULLIF(:'got', 'none')::bigint) THEN 'yes' ELSE 'no' END AS result;
\\echo ended $i
});
	# ... and is asleep in it: its first look found nothing
	my $asleep = 0;
	my $start = time();
	while (time() - $start < 5)
	{
		if ($producer->query_safe(
				"SELECT count(*) FROM pg_stat_activity
				  WHERE pid = $consumer_pid AND wait_event_type = 'Extension'") eq '1')
		{
			$asleep = 1;
			last;
		}
	}
	$not_waiting++ unless $asleep;
	$producer->query_safe("SELECT mq.send('bh', jsonb_build_object('n', $i))");
	my $out = $consumer->query_until(qr/ended $i\n/, '');
	$received++ if $out =~ /cycle $i: \d+ acked/;
	$acked++ if $out =~ /cycle $i: \d+ acked yes/;
	$consumer->{stdout} = '';
}
my $elapsed = time() - $t0;
my $read = idx_tup_read() - $before;
note(sprintf("%d cycles took %.1f s; %d index entries read on mq.qi_bh", $cycles, $elapsed, $read));

is($not_waiting, 0, "the consumer was waiting in receive before each send");
is($received, $cycles, "all $cycles messages were received by the waiting consumer");
is($acked, $cycles, "and all $cycles acked");
is(q1("SELECT concat_ws('|', ready, in_flight) FROM mq.metrics('bh')"), '0|0', 'nothing left in the queue');
is($holder->query_safe(
		"SELECT count(*) FROM pg_stat_activity WHERE pid = pg_backend_pid() AND backend_xmin IS NOT NULL"),
	'1', 'the holder held its snapshot throughout');
cmp_ok($read, '<', 5000,
	"index entries read on the ready table's index for $cycles blocking receives stay bounded (got $read)");

$consumer->quit;
$producer->quit;
$holder->query_safe("COMMIT");
$holder->quit;
$node->stop;
done_testing();
