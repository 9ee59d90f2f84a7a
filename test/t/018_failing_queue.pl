
# Copyright: mq authors; PostgreSQL License.
#
# One queue's failure never stops the background worker's maintenance of
# the others (issue 11, item 3).  A damaged queue (its catalog row lost its
# tables) sorts first; the queues after it must still get their expired
# leases retried, their retention applied and their totals saved by the
# worker alone.  The failure shows in mq.workers.last_error, naming the
# queue, and is logged once, not at every pass (a second, different failure
# is logged once too); metrics() and metrics_prometheus() report the
# healthy queues meanwhile; drop_queue removes the damaged queue, and the
# next pass clears last_error.  (mq.maintain() by hand: sql/failing.sql.)

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;
use Time::HiRes qw(time usleep);

my $node = mq_node('failing', qq{
mq.worker_naptime = '100ms'
});

sub sql { return $node->safe_psql('postgres', $_[0]); }

# how many times the server log says that
sub log_count
{
	my ($text) = @_;
	my $log = slurp_file($node->logfile);
	my $n = () = $log =~ /\Q$text\E/g;
	return $n;
}

sub passes { return sql('SELECT coalesce(max(passes), 0) FROM mq.workers'); }

sql('CREATE EXTENSION mq');
ok(wait_for(sub { sql('SELECT count(*) FROM mq.workers') eq '1' }, 10), 'the worker runs');

# a_broken sorts before the healthy queues; its tables are gone
sql("SELECT mq.create_queue('a_broken')");
sql("SELECT mq.create_queue('m_lease', visibility_timeout => '300 ms', retry_delay => '0')");
sql("SELECT mq.create_queue('z_kept', retention => '100 ms')");
sql('DROP TABLE mq.q_a_broken, mq.w_a_broken');

sql("SELECT mq.send('m_lease', '{\"n\": 1}')");
is(sql("SELECT count(*) FROM mq.receive('m_lease')"), '1', 'm_lease: a message leased for 300 ms');
sql("SELECT mq.send('z_kept', '{\"n\": 2}')");
is(sql("SELECT count(*) FROM (SELECT mq.ack('z_kept', id) FROM mq.receive('z_kept')) a"),
	'1', 'z_kept: a message acked into the archive');

# --- the queues after the damaged one are maintained ----------------------
ok( wait_for(sub { sql('SELECT count(*) FROM mq.q_m_lease') eq '1' }, 10),
	'the worker retries the expired lease of a queue sorted after the damaged one');
ok( wait_for(sub { sql("SELECT count(*) FROM mq.archive WHERE queue = 'z_kept'") eq '0' }, 10),
	'the worker applies the retention of the last queue');
ok( wait_for(
		sub {
			sql("SELECT coalesce(string_agg(queue || '=' || total_sent, ',' ORDER BY queue), '')"
				  . " FROM mq.queue_totals WHERE queue IN ('m_lease', 'z_kept')") eq 'm_lease=1,z_kept=1';
		},
		10),
	'the worker saves the totals of the healthy queues')
  or diag(sql('SELECT * FROM mq.queue_totals'));

# --- reported in last_error, naming the queue ------------------------------
my $err = '';
wait_for(sub { $err = sql('SELECT coalesce(last_error, \'\') FROM mq.workers'); $err ne '' }, 10);
like($err, qr/a_broken/, 'mq.workers.last_error names the failing queue');
like($err, qr/tables of queue "a_broken" are missing/, 'and says what failed');

# --- logged once, not at every pass ----------------------------------------
my $p0 = passes();
ok(wait_for(sub { passes() >= $p0 + 6 }, 10), 'the worker keeps making passes')
  or diag('passes: ' . passes());
is(log_count('tables of queue "a_broken" are missing'), 1,
	'the failure is logged once over many passes');

# a different failure, of another queue, is new: logged once as well
sql("SELECT mq.create_queue('b_broken')");
sql('DROP TABLE mq.q_b_broken, mq.w_b_broken');
ok( wait_for(sub { log_count('tables of queue "b_broken" are missing') >= 1 }, 10),
	'a new failure is logged');
$p0 = passes();
wait_for(sub { passes() >= $p0 + 6 }, 10);
is(log_count('tables of queue "b_broken" are missing'), 1, 'once');
is(log_count('tables of queue "a_broken" are missing'), 1, 'and the first one not again');

# --- metrics of the healthy queues still work -------------------------------
my ($rc, $out, $stderr) = $node->psql('postgres',
	"SELECT string_agg(queue || ':' || ready, ',' ORDER BY queue) FROM mq.metrics()");
is($rc, 0, 'mq.metrics() works with damaged queues') or diag($stderr);
is($out, 'm_lease:1,z_kept:0', 'and reports the healthy queues');
($rc, $out, $stderr) = $node->psql('postgres', 'SELECT mq.metrics_prometheus()');
is($rc, 0, 'mq.metrics_prometheus() works with damaged queues') or diag($stderr);
like($out, qr/^mq_ready\{queue="m_lease"\} 1$/m, 'and reports the healthy queues');

# --- drop_queue mends it, and last_error clears ----------------------------
($rc, $out, $stderr) = $node->psql('postgres',
	"SELECT mq.drop_queue('a_broken') AND mq.drop_queue('b_broken')");
is($out, 't', 'drop_queue drops a queue whose tables are missing') or diag($stderr);
is(sql("SELECT count(*) FROM mq.queues WHERE queue LIKE '%broken'"), '0',
	'its catalog row is gone');
ok( wait_for(sub { sql('SELECT coalesce(last_error, \'\') FROM mq.workers') eq '' }, 10),
	'the next pass without a failure clears last_error')
  or diag(sql('SELECT last_error FROM mq.workers'));

# the healthy queues were never disturbed
is(sql("SELECT attempt FROM mq.receive('m_lease')"), '2', 'm_lease delivers its retry');

$node->stop;
done_testing();
