
# Copyright: mq authors; PostgreSQL License.
#
# Messages that come due take their place by due time (issue 10, item 6),
# which may be behind a lane head: no such message may be lost.
#
# A delayed message X gets the seq of its due time when it is promoted, below
# the seqs of messages sent after it came due.  By then a head may have moved
# past that seq, and other consumers, which cannot see X before the promoting
# transaction commits, may move it further.  Proves (README "Storage design",
# point 4):
#
#  A. A promoter that does not take X itself (it takes a priority-5 message
#     instead and stays open); meanwhile another consumer takes A (sent after
#     X came due) and commits, moving the head past X's seq.  After the
#     promoter commits, X and B are received: X before B (due time order).
#  B. The same, X promoted by mq.maintain() (the worker's pass, which takes
#     nothing) inside a transaction that stays open.
#  C. The promoter takes X itself in a savepoint that rolls back (X is in
#     the ready table again, behind the head that another consumer moved):
#     X is received afterwards.
#
# Each part fails (X never received; a receive of 10 returns B only) if the
# commit of the promoter does not move the head back to the rows it promoted
# and left (src/xact.c, mqx_dues_back), or trusts "taken" after a rolled-back
# savepoint.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;
use Time::HiRes qw(usleep);

my $node = mq_node('due_heads', qq{
mq.worker_enabled = off
});

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql("CREATE EXTENSION mq");

# X delayed 0.2 s; once due, A and B sent (their seqs are above X's)
sub setup
{
	my ($q) = @_;
	sql("SELECT mq.create_queue('$q')");
	my $due = sql("SELECT mq.send('$q', '\"x\"', delay => '200 ms') IS NOT NULL, clock_timestamp() + interval '200 ms'");
	$due =~ s/^t\|//;
	# wait until the server clock is past X's due time
	for (1 .. 100)
	{
		last if sql("SELECT clock_timestamp() > '$due'::timestamptz + interval '20 ms'") eq 't';
		usleep(20_000);
	}
	sql("SELECT mq.send('$q', '\"a\"')");
	sql("SELECT mq.send('$q', '\"b\"')");
}

# A consumer takes A and commits, moving the head past X's seq.
sub take_a
{
	my ($q, $label) = @_;
	is(sql("SELECT string_agg(message #>> '{}' || '/' || mq.ack('$q', id), ',') FROM mq.receive('$q', 1)"),
		'a/true', "$label: another consumer takes A (X is not visible to it yet) and acks it");
}

sub rest
{
	my ($q) = @_;
	return sql("SELECT string_agg(message #>> '{}', ',') FROM mq.receive('$q', 10)");
}

# ---- A: a receive promotes X and takes a priority-5 message instead --------
{
	my $q = 'due_a';
	setup($q);
	sql("SELECT mq.send('$q', '\"p5\"', priority => 5)");
	my $p = $node->background_psql('postgres');
	$p->query_safe('BEGIN');
	is($p->query_safe("SELECT message #>> '{}' FROM mq.receive('$q', 1)"), 'p5',
		'A: the promoting receive takes the priority-5 message, X stays promoted in its open transaction');
	take_a($q, 'A');
	$p->query_safe('COMMIT');
	$p->quit;
	is(rest($q), 'x,b', 'A: after the promoter commits, X (due before B was sent) and B are received');
}

# ---- B: mq.maintain() promotes X in a transaction that stays open ----------
{
	my $q = 'due_b';
	setup($q);
	my $p = $node->background_psql('postgres');
	$p->query_safe('BEGIN');
	$p->query_safe('SELECT mq.maintain()');
	take_a($q, 'B');
	$p->query_safe('COMMIT');
	$p->quit;
	is(rest($q), 'x,b', 'B: after the maintenance transaction commits, X and B are received');
}

# ---- C: the promoter takes X in a savepoint that rolls back ----------------
{
	my $q = 'due_c';
	setup($q);
	my $p = $node->background_psql('postgres');
	$p->query_safe('BEGIN');
	$p->query_safe('SELECT mq.maintain()');
	$p->query_safe('SAVEPOINT s');
	is($p->query_safe("SELECT message #>> '{}' FROM mq.receive('$q', 1)"), 'x',
		'C: the promoter receives X itself (due first) in a savepoint');
	$p->query_safe('ROLLBACK TO SAVEPOINT s');
	take_a($q, 'C');
	$p->query_safe('COMMIT');
	$p->quit;
	is(rest($q), 'x,b', 'C: after the savepoint rolled back and the promoter committed, X and B are received');
}

$node->stop;
done_testing();
