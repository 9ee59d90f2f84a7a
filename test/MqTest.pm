# MqTest: what mq's TAP tests share: a node with mq preloaded, and waiting
# for something the worker or another session does in its own time.
package MqTest;

use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;
use Time::HiRes qw(time usleep);

our @EXPORT = qw(mq_node wait_for);

# A new node $name with mq in shared_preload_libraries and the
# postgresql.conf lines $conf besides, started.
sub mq_node
{
	my ($name, $conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', "shared_preload_libraries = 'mq'\n" . ($conf // ''));
	$node->start;
	return $node;
}

# Run $check every 20 ms until it returns true or $seconds have passed.
# Returns the seconds it took (more than 0), or undef if it never did.
sub wait_for
{
	my ($check, $seconds) = @_;
	my $start = time();
	while (time() - $start < $seconds)
	{
		return time() - $start || 1e-6 if $check->();
		usleep(20_000);
	}
	return undef;
}

1;
