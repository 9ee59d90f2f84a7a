
# Copyright: mq authors; PostgreSQL License.
#
# Lane heads while a snapshot holds the xmin horizon back (so vacuum can
# remove nothing and every consumed row stays as a dead index entry), and
# across a restart (heads are rebuilt from the tables).  Asserts
# correctness only: every message sent is received exactly once, in order,
# and nothing is left behind.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('heads');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'mq'");
$node->start;

sub q1
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', $sql);
}

q1("CREATE EXTENSION mq");
q1("SELECT mq.create_queue('h')");
q1("CREATE TABLE sent (id bigint PRIMARY KEY, n int)");
q1("CREATE TABLE got (id bigint, batch int, ord int)");
q1("CREATE TABLE acked (batch int, n bigint)");

# A repeatable-read transaction with a snapshot, open until the end.
my $holder = $node->background_psql('postgres');
$holder->query_safe("BEGIN ISOLATION LEVEL REPEATABLE READ");
$holder->query_safe("SELECT 1");
my $xmin = q1(
	"SELECT backend_xmin IS NOT NULL FROM pg_stat_activity
	  WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' AND state = 'idle in transaction'");
is($xmin, 't', 'a session holds the xmin horizon');

q1("INSERT INTO sent SELECT mq.send('h', jsonb_build_object('n', g)), g FROM generate_series(1, 20000) g");
is(q1("SELECT ready FROM mq.metrics('h')"), '20000', '20000 messages ready');

# 200 batches of receive 100 + ack, each batch its own transaction.
my $script = '';
for my $b (1 .. 200)
{
	$script .= "BEGIN;\n"
	  . "INSERT INTO got SELECT id, $b, ordinality FROM mq.receive('h', 100) WITH ORDINALITY;\n"
	  . "INSERT INTO acked SELECT $b, mq.ack('h', array(SELECT id FROM got WHERE batch = $b));\n"
	  . "COMMIT;\n";
	$script .= "\\echo batch $b done\n" if $b % 50 == 0;
}
my $t0 = time();
my $out = q1($script);
note(sprintf("200 batches took %.2f s", time() - $t0));
{
	my $t1 = time();
	q1("SELECT count(*) FROM mq.receive('h', 100)");
	note(sprintf("a receive on the empty queue after them took %.1f ms", 1000 * (time() - $t1)));
}

is(q1("SELECT count(*), count(DISTINCT id) FROM got"), '20000|20000', 'received 20000 distinct ids');
is( q1(
		"SELECT count(*) FROM sent s FULL JOIN got g USING (id) WHERE s.id IS NULL OR g.id IS NULL"),
	'0', 'the ids received are exactly the ids sent');
is(q1("SELECT count(*), sum(n), min(n) FROM acked"), '200|20000|100', 'every batch got and acked 100');
# FIFO: batch b holds n = 100(b-1)+1 .. 100b, in order within the batch.
is( q1(
		"SELECT count(*) FROM got g JOIN sent s USING (id)
		  WHERE s.n <> 100 * (g.batch - 1) + g.ord"),
	'0', 'messages came in send order, batch after batch');
is(q1("SELECT concat_ws('|', ready, in_flight, delayed, dead) FROM mq.metrics('h')"),
	'0|0|0|0', 'nothing left in the queue');
is(q1("SELECT (SELECT count(*) FROM mq.q_h) + (SELECT count(*) FROM mq.w_h)"),
	'0', 'the queue tables hold no live row');

# The horizon was held the whole time: vacuum can remove none of the
# 20000 consumed rows.
is($holder->query_safe("SELECT count(*) FROM pg_stat_activity WHERE pid = pg_backend_pid() AND backend_xmin IS NOT NULL"),
	'1', 'the holder still holds its snapshot');
q1("VACUUM mq.q_h");
is(q1("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'mq.q_h'::regclass"),
	'20000', 'VACUUM of the ready table could not remove the 20000 consumed rows');
is(q1("SELECT count(*) FROM mq.receive('h', 100)"), '0', 'a receive after that still finds nothing');
$holder->query_safe("COMMIT");
$holder->quit;

# 10 more, a restart, and all 10 come back (heads are rebuilt from the table).
q1("TRUNCATE sent, got");
q1("INSERT INTO sent SELECT mq.send('h', jsonb_build_object('n', g)), g FROM generate_series(20001, 20010) g");
$node->restart;
is( q1(
		"SELECT string_agg(message->>'n', ',' ORDER BY ordinality) FROM mq.receive('h', 100) WITH ORDINALITY"),
	join(',', 20001 .. 20010),
	'after a restart the 10 new messages are received, in order');
is(q1("SELECT concat_ws('|', ready, in_flight) FROM mq.metrics('h')"), '0|10', 'all 10 in flight');

$node->stop;
done_testing();
