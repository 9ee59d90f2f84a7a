
# Copyright: mq authors; PostgreSQL License.
#
# The memory of calls that move many rows without a plan (src/util.c) stays
# small: an ack of 10,000 grouped messages, each of which moves its group's
# next message up from the backlog (src/group.c: one plan-less delete and
# one plan-less insert per group), and the lease of 10,000 messages.  Each
# plan-less insert used to leave its set-up (range table, result relation,
# index descriptions: about 1.4 kB) in the caller's memory until the call
# ended.  A backend's peak resident memory (VmHWM of /proc/PID/status, which
# also counts the shared buffers it touches) is reset (clear_refs) before
# each call and read after it.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;

plan skip_all => 'needs /proc/PID/status' unless -r "/proc/$$/status";

my $node = mq_node('rowpath_memory', qq{
mq.worker_enabled = off
});

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1("CREATE EXTENSION mq");
q1("SELECT mq.create_queue('rm')");
# 10,000 groups of two messages: the first of each is ready, the second
# waits in its group's backlog
for my $n (1, 2)
{
	q1("SELECT count(*) FROM mq.send_batch('rm',
	      array(SELECT jsonb_build_object('n', $n) FROM generate_series(1, 10000)),
	      group_keys => array(SELECT 'k' || i FROM generate_series(1, 10000) i))");
}

# peak resident memory of backend pid, in kB
sub peak_kb
{
	my ($pid) = @_;
	my $status = slurp_file("/proc/$pid/status");
	return $status =~ /^VmHWM:\s+(\d+) kB/m ? $1 : undef;
}

# start counting the peak from now (where the kernel allows it: else the
# peak so far, which can only hide growth, not invent it)
sub reset_peak
{
	my ($pid) = @_;
	if (open my $fh, '>', "/proc/$pid/clear_refs")
	{
		print $fh "5\n";
		close $fh;
	}
	return peak_kb($pid);
}

my $s = $node->background_psql('postgres');
my $pid = $s->query_safe('SELECT pg_backend_pid()');
# warm the session's caches with a call of each kind
$s->query_safe("SELECT mq.ack('rm', 0::bigint)");

my $before = reset_peak($pid);
$s->query_safe("CREATE TEMP TABLE leased AS SELECT id FROM mq.receive('rm', 10000)");
my $after_receive = peak_kb($pid);
is($s->query_safe("SELECT count(*) FROM leased"), '10000', 'one receive leased 10,000 messages');
$s->query_safe("SELECT array_agg(id) AS ids FROM leased \\gset");
my $before_ack = reset_peak($pid);
is($s->query_safe("SELECT mq.ack('rm', :'ids'::bigint[])"), '10000', 'one ack of 10,000 ids');
my $after_ack = peak_kb($pid);
is(q1("SELECT ready FROM mq.metrics('rm')"), '10000', "each group's next message moved up");

note "peak kB: before $before, after the receive $after_receive, before the ack $before_ack, after it $after_ack";
cmp_ok($after_receive - $before, '<', 16 * 1024,
	'a receive of 10,000 messages peaks under 16 MB more');
cmp_ok($after_ack - $before_ack, '<', 10 * 1024,
	'an ack of 10,000 grouped messages peaks under 10 MB more');

$s->quit;
$node->stop;
done_testing();
