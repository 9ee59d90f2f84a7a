
# Copyright: mq authors; PostgreSQL License.
#
# Poison messages that kill their consumer inside its transaction (issue 12,
# item 2).  A delivery is part of the receiving transaction, so a consumer
# that dies before COMMIT rolls it back; mq still counts it as an attempt
# (src/deliveries.c), so a message that kills every consumer ends in the
# dead letters after max_attempts deliveries, and the messages behind it are
# processed.  Three ways to die: the backend terminated (pg_terminate_backend),
# the backend killed with SIGKILL (the whole server goes through crash
# recovery), and a plain ROLLBACK (or a rolled-back savepoint).  Also across a
# clean restart of the server.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;
use Time::HiRes qw(usleep);

my $node = mq_node('poison', qq{
mq.worker_enabled = off
restart_after_crash = on
});

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1("CREATE EXTENSION mq");

# Wait until the server has gone through crash recovery and accepts
# connections again: the log, from offset on, says it is ready (a
# connection made before the postmaster noticed the crash would be killed
# by the restart).
sub wait_up
{
	my ($offset) = @_;
	for (1 .. 300)
	{
		if (slurp_file($node->logfile, $offset) =~ /database system is ready to accept connections/)
		{
			my ($ret) = $node->psql('postgres', 'SELECT 1');
			return 1 if $ret == 0;
		}
		usleep(100_000);
	}
	return 0;
}

# One consumer session that receives one message in a transaction and dies
# (how: 'terminate', 'kill', 'rollback', 'savepoint') if it is the poison,
# else acks and commits.  Returns "poison:<attempt>" or "ok:<attempt>" or
# "empty".
sub consume_once
{
	my ($queue, $how) = @_;
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	$s->query_safe('BEGIN');
	$s->query_safe('SAVEPOINT sp') if $how eq 'savepoint';
	my $row = $s->query_safe(
		"SELECT id || '|' || (message->>'kind') || '|' || attempt FROM mq.receive('$queue')");
	if ($row eq '')
	{
		$s->query_safe('COMMIT');
		$s->quit;
		return 'empty';
	}
	my ($id, $kind, $attempt) = split /\|/, $row;
	if ($kind ne 'poison')
	{
		$s->query_safe("SELECT mq.ack('$queue', $id)");
		$s->query_safe('COMMIT');
		$s->quit;
		return "ok:$attempt";
	}
	if ($how eq 'terminate')
	{
		q1("SELECT pg_terminate_backend($pid)");
		eval { $s->quit; };
	}
	elsif ($how eq 'kill')
	{
		my $offset = -s $node->logfile;
		kill 'KILL', $pid;
		eval { $s->quit; };
		wait_up($offset) or die "server did not come back after the crash";
	}
	elsif ($how eq 'savepoint')
	{
		$s->query_safe('ROLLBACK TO SAVEPOINT sp');
		$s->query_safe('COMMIT');
		$s->quit;
	}
	else
	{
		$s->query_safe('ROLLBACK');
		$s->quit;
	}
	return "poison:$attempt";
}

foreach my $how ('terminate', 'kill', 'rollback', 'savepoint')
{
	my $queue = "p_$how";
	q1("SELECT mq.create_queue('$queue', max_attempts => 3, retry_delay => '0')");
	q1("SELECT mq.send('$queue', '{\"kind\": \"poison\"}')");
	q1("SELECT mq.send('$queue', jsonb_build_object('kind', 'fine', 'n', n)) FROM generate_series(1, 5) n");

	my @poison;
	my $fine = 0;
	for my $round (1 .. 20)
	{
		my $r = consume_once($queue, $how);
		last if $r eq 'empty';
		push @poison, $r if $r =~ /^poison/;
		$fine++ if $r =~ /^ok/;
	}
	is(join(',', @poison), 'poison:1,poison:2,poison:3',
		"$how: the poison is delivered as attempts 1, 2, 3 although each delivery rolled back");
	is($fine, 5, "$how: the messages behind it are all processed");
	is(q1("SELECT attempts FROM mq.dead_letters WHERE queue = '$queue' AND message->>'kind' = 'poison'"),
		'3', "$how: the poison is in the dead letters after 3 attempts");
	is(q1("SELECT count(*) FROM mq.q_$queue") + q1("SELECT count(*) FROM mq.w_$queue"), 0,
		"$how: nothing is left in the queue");
}

# Across a clean restart: two aborted deliveries before it, one after.
q1("SELECT mq.create_queue('p_restart', max_attempts => 3, retry_delay => '0')");
q1("SELECT mq.send('p_restart', '{\"kind\": \"poison\"}')");
my @seen = (consume_once('p_restart', 'terminate'), consume_once('p_restart', 'rollback'));
$node->restart;
push @seen, consume_once('p_restart', 'terminate');
push @seen, consume_once('p_restart', 'terminate');
is(join(',', @seen), 'poison:1,poison:2,poison:3,empty',
	'restart: aborted deliveries are still counted after a restart of the server');
is(q1("SELECT attempts FROM mq.dead_letters WHERE queue = 'p_restart'"), '3',
	'restart: the poison is dead-lettered after its third attempt');

# A delivery that commits is not counted twice.
q1("SELECT mq.create_queue('p_commit', max_attempts => 5, retry_delay => '0')");
q1("SELECT mq.send('p_commit', '\"m\"')");
q1("SELECT count(*) FROM mq.receive('p_commit', 1, '50 ms')");
usleep(200_000);
is(q1("SELECT attempt FROM mq.receive('p_commit')"), '2',
	'a delivery that committed and expired counts once');

$node->stop;
done_testing();
