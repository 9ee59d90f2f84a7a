# MqTest: what mq's TAP tests share: a node with mq preloaded, and waiting
# for something the worker or another session does in its own time.
package MqTest;

use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;
use IPC::Run;
use Time::HiRes qw(time usleep);

our @EXPORT = qw(mq_node wait_for mq_psql_start);

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

# A psql session of its own on $node's postgres database, stopping at the
# first error, started in the background with the psql arguments @args
# (a -c, a -f, or a script on stdin's place): [$name, its IPC::Run
# harness, a reference to its output, one to its errors].
sub mq_psql_start
{
	my ($node, $name, @args) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), @args ],
		'>', \$out, '2>', \$err);
	return [ $name, $h, \$out, \$err ];
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
