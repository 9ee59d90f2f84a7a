
# Copyright: mq authors; PostgreSQL License.
#
# mq on a streaming hot standby, and after that standby is promoted.
# Reproduces issue 10, item 7a (mq.metrics on a standby fails with "cannot
# execute LOCK TABLE during recovery", so a replica cannot be monitored)
# and item 2a (mq.metrics on the standby registers the lanes it sees then;
# a priority first used on the primary later is never registered, and once
# the standby is promoted, messages of that priority are never received).
#
# Proves:
#   - on the standby, mq.metrics('q'), mq.metrics(), mq.metrics_prometheus()
#     and the view mq.queues work read-only, and their gauges equal the
#     primary's, also after the primary has changed them (new messages at a
#     new priority 7, an ack);
#   - after promotion every message sent on the old primary is received
#     exactly once, priority 7 first, then priority 0 in send order;
#   - after promotion mq.metrics on the new primary equals the real counts
#     of the queue's tables, and its totals continue from the last ones the
#     old primary saved to mq.queue_totals (none were counted since).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'mq'
mq.worker_enabled = off
});
$primary->start;

sub on_primary { return $primary->safe_psql('postgres', $_[0]); }

on_primary("CREATE EXTENSION mq");
on_primary("SELECT mq.create_queue('sb')");

# Round 1: n = 1..5 at priority 0; n = 1 is leased (for an hour) and stays
# in flight, so the standby has two non-zero gauges to agree on.
on_primary("SELECT count(*) FROM mq.send_batch('sb',
              array(SELECT jsonb_build_object('n', g) FROM generate_series(1, 5) g))");
my $leased = on_primary("SELECT id FROM mq.receive('sb', 1, visibility_timeout => '1 hour')");
ok($leased ne '', 'primary: message n = 1 leased');
# saves the totals to mq.queue_totals (sent 5), as the worker would
on_primary("SELECT mq.maintain()");

$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'mq'
mq.worker_enabled = off
});
$standby->start;
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');

my $gauges_sql = "SELECT concat_ws('|', ready, in_flight, delayed, dead) FROM mq.metrics('sb')";
my $tables_sql = "SELECT concat_ws('|',
	   (SELECT count(*) FROM mq.q_sb),
	   (SELECT count(*) FROM mq.w_sb WHERE leased),
	   (SELECT count(*) FROM mq.w_sb WHERE NOT leased),
	   (SELECT count(*) FROM mq.dead_letters WHERE queue = 'sb'))";

# Runs the four read-only calls on the standby and checks them against
# $expect (ready|in_flight|delayed|dead, the primary's values).
sub check_standby
{
	my ($label, $expect) = @_;
	my ($ret, $out, $err) = $standby->psql('postgres', $gauges_sql);
	is($ret, 0, "$label: mq.metrics('sb') runs on the standby")
	  or diag("stderr: $err");
	is($out, $expect, "$label: mq.metrics('sb') on the standby equals the primary's gauges");

	($ret, $out, $err) = $standby->psql('postgres',
		"SELECT concat_ws('|', ready, in_flight, delayed, dead) FROM mq.metrics() WHERE queue = 'sb'");
	is($ret, 0, "$label: mq.metrics() runs on the standby")
	  or diag("stderr: $err");
	is($out, $expect, "$label: mq.metrics() on the standby equals the primary's gauges");

	my ($ready) = split /\|/, $expect;
	($ret, $out, $err) = $standby->psql('postgres', "SELECT mq.metrics_prometheus()");
	is($ret, 0, "$label: mq.metrics_prometheus() runs on the standby")
	  or diag("stderr: $err");
	like($out, qr/^mq_ready\{queue="sb"\} $ready$/m,
		"$label: mq.metrics_prometheus() on the standby reports mq_ready $ready");

	($ret, $out, $err) = $standby->psql('postgres', "SELECT queue FROM mq.queues");
	is($ret, 0, "$label: mq.queues is readable on the standby")
	  or diag("stderr: $err");
	is($out, 'sb', "$label: mq.queues lists the queue");
}

my $primary_gauges = on_primary($gauges_sql);
is($primary_gauges, '4|1|0|0', 'round 1: primary gauges: 4 ready, 1 in flight');
is($standby->safe_psql('postgres', $tables_sql), '4|1|0|0',
	'round 1: the standby has replayed the same rows');
check_standby('round 1', $primary_gauges);

# Round 2: a new priority 7 (n = 6..8), more at priority 0 (n = 9, 10),
# and the leased message is acked.
on_primary("SELECT count(*) FROM mq.send_batch('sb',
              array(SELECT jsonb_build_object('n', g) FROM generate_series(6, 8) g), priority => 7)");
on_primary("SELECT count(*) FROM mq.send_batch('sb',
              array(SELECT jsonb_build_object('n', g) FROM generate_series(9, 10) g))");
is(on_primary("SELECT mq.ack('sb', $leased)"), 't', 'primary: the leased message acked');
on_primary("SELECT mq.maintain()");		# saves sent 10, acked 1
is(on_primary("SELECT concat_ws('|', total_sent, total_acked, total_dead_lettered) FROM mq.queue_totals"),
	'10|1|0', 'primary: totals saved to mq.queue_totals');
$primary_gauges = on_primary($gauges_sql);
is($primary_gauges, '9|0|0|0', 'round 2: primary gauges: 9 ready, none in flight');
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', $tables_sql), '9|0|0|0',
	'round 2: the standby has replayed the same rows');
check_standby('round 2', $primary_gauges);

# Everything is replayed: stop the primary hard and promote the standby.
$primary->stop('immediate');
# Write functions on the standby say what the server is (issue 12): 25006.
foreach my $call ("SELECT mq.send('sb', '1')", "SELECT * FROM mq.receive('sb')",
	"SELECT mq.ack('sb', 1)", "SELECT mq.nack('sb', 1)", "SELECT mq.extend('sb', 1, '1 s')",
	"SELECT mq.create_queue('other')", "SELECT mq.purge_queue('sb')", "SELECT mq.maintain()",
	"SELECT mq.publish('a.b', '1')")
{
	my ($ret, $out, $err) = $standby->psql('postgres', "\\set VERBOSITY verbose\n$call");
	like($err, qr/ERROR:  25006: cannot run mq\.\w+ on a standby/, "standby: $call raises 25006 naming the standby");
}

$standby->promote;
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 'f', 'the standby is promoted');

sub on_new { return $standby->safe_psql('postgres', $_[0]); }

is( on_new(
		"SELECT string_agg(message->>'n', ',' ORDER BY ord)
		   FROM mq.receive('sb', 100) WITH ORDINALITY AS r(id, message, headers, attempt,
		        enqueued_at, visible_at, priority, receipt, ord)"),
	'6,7,8,2,3,4,5,9,10',
	'after promotion every ready message is received: priority 7 first, then priority 0 in send order');
is(on_new("SELECT count(*) FROM mq.receive('sb', 100)"), '0', 'a second receive finds nothing more');
is(on_new("SELECT count(*) FROM mq.q_sb"), '0', 'nothing is left in the ready table');

is(on_new($gauges_sql), on_new($tables_sql),
	'new primary: mq.metrics gauges equal the counts of the tables (all in flight)');
is(on_new($tables_sql), '0|9|0|0', 'the nine messages are in flight');
is(on_new("SELECT mq.ack('sb', array(SELECT id FROM mq.w_sb))"), '9', 'new primary: the nine messages acked');
is(on_new($gauges_sql), '0|0|0|0', 'new primary: after acking them all, mq.metrics says 0|0|0|0');
# Totals: the last values saved on the old primary (10 sent, 1 acked), plus
# the 9 acks since.  (A standby entry that loaded the totals saved earlier,
# in round 1, and never again would say 5 sent.)
is(on_new("SELECT concat_ws('|', total_sent, total_acked, total_dead_lettered) FROM mq.metrics('sb')"),
	'10|10|0', 'new primary: totals continue from the last ones saved on the old primary');

$standby->stop;
done_testing();
