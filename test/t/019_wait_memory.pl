
# Copyright: mq authors; PostgreSQL License.
#
# A blocking receive that waits a long time keeps its memory flat (issue 11,
# item 2): each look that finds nothing used to leave its SPI tuple tables
# behind until the wait ended (about 33 kB a second).  The waiting backend's
# memory is read from pg_log_backend_memory_contexts ("Grand total") at the
# start and near the end of an 8-second wait on a queue with a delayed
# message coming due far later, so the receive wakes and looks again and
# again meanwhile.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;
use Time::HiRes qw(usleep);

my $node = mq_node('waitmem', qq{
mq.worker_enabled = off
});

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1("CREATE EXTENSION mq");
q1("SELECT mq.create_queue('wm')");
# A wait row in the look-ahead window keeps waking the receiver: a lease
# that ends in 20 s, renewed by nobody.
q1("SELECT mq.send('wm', '\"x\"')");
q1("SELECT count(*) FROM mq.receive('wm', 1, '1 hour')");

my $waiter = $node->background_psql('postgres');
my $pid = $waiter->query_safe('SELECT pg_backend_pid()');
$waiter->query_until(qr/start/, "\\echo start\nSELECT count(*) FROM mq.receive('wm', 1, wait => '8 s');\n");

# The grand total of the waiter's memory contexts, logged on request.
sub grand_total
{
	my $offset = -s $node->logfile;
	q1("SELECT pg_log_backend_memory_contexts($pid)");
	for (1 .. 100)
	{
		my $log = slurp_file($node->logfile, $offset);
		return $1 if $log =~ /Grand total: (\d+) bytes/;
		usleep(50_000);
	}
	return undef;
}

usleep(1_500_000);
my $first = grand_total();
usleep(5_000_000);
my $last = grand_total();
ok(defined $first && defined $last, "the waiter's memory was logged twice ($first, $last bytes)");
cmp_ok($last - $first, '<', 64 * 1024,
	'a waiting receive does not grow its memory (less than 64 kB in 5 s)');
$waiter->quit;

$node->stop;
done_testing();
