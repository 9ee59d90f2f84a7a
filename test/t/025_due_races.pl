
# Copyright: mq authors; PostgreSQL License.
#
# Messages that come due take the seq of their due time, possibly behind a
# lane head (README "Storage design", point 4; issue 10 item 6).  024 proves
# the three basic cases; this file tries the races and edges around them
# (a review of the change).  In every part the worker is off, X is a
# message whose delay has ended before A and B are sent, so X's seq is below
# theirs, and a consumer that takes A moves the head past X's seq while X is
# promoted but not committed.  What is checked each time: after everybody
# committed or rolled back, a receive of everything returns X (none lost),
# in due time order, and nothing is left in the tables.
#
#  1. A consumer whose scan ran before the promoter's commit and that
#     commits after it: its advance (computed without seeing X) must be
#     cancelled by the generation bump of the promoter's commit.  Fails
#     without that bump (src/xact.c, mqx_dues_back: lane->generation++).
#  2. Two promoters at once: a receive that promotes X1 and takes it, and
#     mq.maintain() (the worker's pass) in another open transaction that
#     promotes X2 (X1's wait row is locked: skipped); a consumer takes A.
#     Every order of the three commits.
#  3. Promoters in REPEATABLE READ and SERIALIZABLE (their receives scan
#     without heads and note nothing taken), and a consumer in REPEATABLE
#     READ beside a promoter in READ COMMITTED.
#  4. mq.pop as the promoter (it takes a priority-5 message instead of X),
#     and mq.pop taking X itself while another consumer moves the head.
#  5. More than 64 promoted rows in one lane: mq.maintain() promotes 70,
#     the same transaction receives 69 of them (the 64 whose ids it noted
#     among them), one is left: it must come back at the promoter's commit.
#  6. A receive that promotes into all 8 lanes (one X per priority) and
#     takes only the first few; consumers move every head meanwhile.
#  7. More than 8 priorities (lanes_overflow: ordered scans, no heads) with
#     X promoted into ten of them in one transaction.
#  8. Promoted rows and a consumer abort in the same lane (the abort moves
#     the head back to where its scan began, past X, the promoter's commit
#     to X): both orders.
#  9. A blocking receive (wait =>) that sleeps while X is promoted in an
#     open transaction and the head is past X: the promoter's commit wakes
#     it, and it must find X (the head moved back before the wake-up).
# 10. mq.metrics' oldest ready age after the promoter's commit counts X
#     (the metrics query reads the first row of each lane from its head).
# 11. Fresh rows of every kind next to promoted ones, in one open
#     transaction while the head moves: send_batch, publish, a dead letter
#     routed into another queue (the promotion of an expired lease past
#     max_attempts inserts it there) and a redrive from mq.dead_letters.
# 12. Rows with old small seqs (ids, as 0.1 wrote them) and a wait row with
#     a small seq, beside new ones, after a restart: all delivered, old
#     ones first.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;
use Time::HiRes qw(usleep time);

my $node = mq_node('due_races', qq{
mq.worker_enabled = off
});

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql("CREATE EXTENSION mq");

my $DELAY_MS = 100;

# send delayed messages (names), wait until they are due
sub delayed
{
	my ($q, @names) = @_;
	my %o;
	my $prio = 0;
	my $vals = join(', ', map { my ($n, $p) = split /:/; $p //= 0; "('$n', $p)" } @names);
	sql("SELECT mq.send('$q', to_jsonb(n), NULL, '$DELAY_MS ms', p) FROM (VALUES $vals) v(n, p)");
	usleep(($DELAY_MS + 30) * 1000);
	return;
}

sub send_now
{
	my ($q, @names) = @_;
	for (@names)
	{
		my ($n, $p) = split /:/;
		$p //= 0;
		sql("SELECT mq.send('$q', '\"$n\"', priority => $p)");
	}
	return;
}

# what a receive of everything returns, in order, acked; then whether the
# tables are empty
sub rest
{
	my ($q) = @_;
	return sql("SELECT string_agg(message #>> '{}', ',' ORDER BY o) FROM"
		  . " (SELECT r.*, row_number() OVER () AS o FROM mq.receive('$q', 1000) r) r"
		  . " WHERE mq.ack('$q', id, receipt)");
}

sub left_in
{
	my ($q) = @_;
	return sql("SELECT (SELECT count(*) FROM mq.q_$q) || '/' || (SELECT count(*) FROM mq.w_$q)");
}

# a consumer takes one message and acks it (own transaction)
sub take1
{
	my ($q) = @_;
	return sql("SELECT string_agg(message #>> '{}' || '/' || mq.ack('$q', id, receipt), ',')"
		  . " FROM mq.receive('$q', 1)");
}

sub session
{
	my $s = $node->background_psql('postgres');
	return $s;
}

# ---- 1. a consumer scans before the promoter commits, commits after -------
{
	my $q = 'r1';
	sql("SELECT mq.create_queue('$q')");
	delayed($q, 'x');
	send_now($q, 'a', 'b');
	my $t = session();
	my $c = session();
	$t->query_safe('BEGIN');
	$t->query_safe('SELECT mq.maintain()');
	$c->query_safe('BEGIN');
	is($c->query_safe("SELECT message #>> '{}' || '/' || mq.ack('$q', id, receipt) FROM mq.receive('$q', 1)"),
		'a/true', '1: the consumer takes A (X is not visible to it yet), stays open');
	$t->query_safe('COMMIT');
	$c->query_safe('COMMIT');
	$t->quit;
	$c->quit;
	is(rest($q), 'x,b', '1: the consumer committed after the promoter: X and B are received');
	is(left_in($q), '0/0', '1: nothing left');
}

# ---- 2. two promoters at once, every order of the commits -----------------
{
	my @orders = ([qw(R M C)], [qw(R C M)], [qw(M R C)], [qw(M C R)], [qw(C R M)], [qw(C M R)]);
	my $i = 0;
	for my $order (@orders)
	{
		my $q = 'r2_' . (++$i);
		my $label = "2 (commits " . join(', ', @$order) . ")";
		sql("SELECT mq.create_queue('$q')");
		delayed($q, 'x1');
		delayed($q, 'x2');
		send_now($q, 'a', 'b');
		my %s = (R => session(), M => session(), C => session());
		$s{$_}->query_safe('BEGIN') for qw(R M C);
		is($s{R}->query_safe("SELECT message #>> '{}' FROM mq.receive('$q', 1)"), 'x1',
			"$label: a receive promotes X1 (budget 1) and takes it");
		$s{M}->query_safe('SELECT mq.maintain()');
		is($s{M}->query_safe("SELECT count(*) FROM mq.q_$q WHERE message = '\"x2\"'"), '1',
			"$label: maintain promotes X2 in its own open transaction");
		is($s{C}->query_safe("SELECT message #>> '{}' || '/' || mq.ack('$q', id, receipt) FROM mq.receive('$q', 1)"),
			'a/true', "$label: a consumer takes A");
		for my $who (@$order)
		{
			$s{$who}->query_safe($who eq 'R' ? "SELECT mq.ack('$q', id) FROM mq.w_$q WHERE message = '\"x1\"'; COMMIT" : 'COMMIT');
		}
		$_->quit for values %s;
		is(rest($q), 'x2,b', "$label: X2 and B are received");
		is(left_in($q), '0/0', "$label: nothing left");
	}
}

# ---- 3. REPEATABLE READ and SERIALIZABLE ----------------------------------
for my $iso ('REPEATABLE READ', 'SERIALIZABLE')
{
	my $q = $iso eq 'SERIALIZABLE' ? 'r3_ser' : 'r3_rr';
	sql("SELECT mq.create_queue('$q')");
	delayed($q, 'x');
	send_now($q, 'a', 'b', 'p5:5');
	my $t = session();
	$t->query_safe("BEGIN ISOLATION LEVEL $iso");
	is($t->query_safe("SELECT message #>> '{}' FROM mq.receive('$q', 1)"), 'p5',
		"3 ($iso): the promoting receive takes the priority-5 message, X stays promoted");
	is(take1($q), 'a/true', "3 ($iso): another consumer takes A");
	$t->query_safe("SELECT mq.ack('$q', id) FROM mq.w_$q; COMMIT");
	$t->quit;
	is(rest($q), 'x,b', "3 ($iso): after the promoter commits, X and B are received");
	is(left_in($q), '0/0', "3 ($iso): nothing left");
}
{
	# the promoter takes X itself in REPEATABLE READ (its scan ignores heads
	# and notes nothing taken: the commit moves the head back anyway)
	my $q = 'r3_rr_self';
	sql("SELECT mq.create_queue('$q')");
	delayed($q, 'x');
	send_now($q, 'a', 'b', 'c');
	my $t = session();
	$t->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
	is($t->query_safe("SELECT message #>> '{}' FROM mq.receive('$q', 1)"), 'x',
		'3 (REPEATABLE READ, takes X): the promoting receive takes X');
	is(take1($q), 'a/true', '3 (REPEATABLE READ, takes X): another consumer takes A');
	$t->query_safe("SELECT mq.ack('$q', id) FROM mq.w_$q; COMMIT");
	$t->quit;
	is(rest($q), 'b,c', '3 (REPEATABLE READ, takes X): B and C are received');
	is(left_in($q), '0/0', '3 (REPEATABLE READ, takes X): nothing left');
}
{
	# a consumer in REPEATABLE READ (never moves heads) and a promoter in
	# READ COMMITTED that does not take X
	my $q = 'r3_rr_consumer';
	sql("SELECT mq.create_queue('$q')");
	delayed($q, 'x');
	send_now($q, 'a', 'b', 'p5:5');
	my $t = session();
	my $c = session();
	$t->query_safe('BEGIN');
	is($t->query_safe("SELECT message #>> '{}' FROM mq.receive('$q', 1)"), 'p5',
		'3 (REPEATABLE READ consumer): the promoter takes the priority-5 message');
	$c->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
	is($c->query_safe("SELECT message #>> '{}' || '/' || mq.ack('$q', id, receipt) FROM mq.receive('$q', 1)"),
		'a/true', '3 (REPEATABLE READ consumer): it takes A');
	is(take1($q), 'b/true', '3 (REPEATABLE READ consumer): a READ COMMITTED consumer takes B');
	$t->query_safe("SELECT mq.ack('$q', id) FROM mq.w_$q WHERE leased; COMMIT");
	$c->query_safe('COMMIT');
	$_->quit for ($t, $c);
	is(rest($q), 'x', '3 (REPEATABLE READ consumer): X is received');
	is(left_in($q), '0/0', '3 (REPEATABLE READ consumer): nothing left');
}

# ---- 4. mq.pop as the promoter --------------------------------------------
{
	my $q = 'r4_pop';
	sql("SELECT mq.create_queue('$q')");
	delayed($q, 'x');
	send_now($q, 'a', 'b', 'p5:5');
	my $t = session();
	$t->query_safe('BEGIN');
	is($t->query_safe("SELECT message #>> '{}' FROM mq.pop('$q', 1)"), 'p5',
		'4: a pop promotes X and takes the priority-5 message');
	is(take1($q), 'a/true', '4: another consumer takes A');
	$t->query_safe('COMMIT');
	$t->quit;
	is(rest($q), 'x,b', '4: after the pop commits, X and B are received');
	is(left_in($q), '0/0', '4: nothing left');
}
{
	my $q = 'r4_pop_self';
	sql("SELECT mq.create_queue('$q')");
	delayed($q, 'x', 'y');
	send_now($q, 'a', 'b');
	my $t = session();
	$t->query_safe('BEGIN');
	# budget 1: X promoted and popped; Y stays in the wait table
	is($t->query_safe("SELECT message #>> '{}' FROM mq.pop('$q', 1)"), 'x',
		'4 (pop takes X): the pop promotes X and takes it');
	is(take1($q), 'y/true', '4 (pop takes X): another consumer promotes and takes Y');
	is(take1($q), 'a/true', '4 (pop takes X): and A');
	$t->query_safe('COMMIT');
	$t->quit;
	is(rest($q), 'b', '4 (pop takes X): B is received');
	is(left_in($q), '0/0', '4 (pop takes X): nothing left');
}

# ---- 5. more than 64 promoted rows in one lane ----------------------------
{
	my $q = 'r5';
	sql("SELECT mq.create_queue('$q')");
	# 70 delayed messages, due one after the other (x01 first)
	sql("SELECT mq.send('$q', to_jsonb('x' || lpad(g::text, 2, '0')), NULL,"
		  . " make_interval(secs => ($DELAY_MS + g) / 1000.0)) FROM generate_series(1, 70) g");
	usleep(($DELAY_MS + 100) * 1000);
	send_now($q, 'a', 'b');
	my $t = session();
	$t->query_safe('BEGIN');
	is($t->query_safe('SELECT mq.maintain()'), '70', '5: maintain promotes the 70 messages');
	is($t->query_safe("SELECT count(*) || ' ' || max(message #>> '{}') FROM mq.receive('$q', 69)"),
		'69 x69', '5: the same transaction receives 69 of them (x01 .. x69)');
	is(take1($q), 'a/true', '5: another consumer takes A');
	$t->query_safe("SELECT count(mq.ack('$q', id)) FROM mq.w_$q; COMMIT");
	$t->quit;
	is(rest($q), 'x70,b', '5: the 70th (whose id was not noted) and B are received');
	is(left_in($q), '0/0', '5: nothing left');
}

# ---- 6. promoted into all 8 lanes, a few taken ----------------------------
{
	my $q = 'r6';
	sql("SELECT mq.create_queue('$q')");
	delayed($q, map { "x$_:$_" } 0 .. 7);
	send_now($q, map { ("a$_:$_", "b$_:$_") } 0 .. 7);
	my $t = session();
	$t->query_safe('BEGIN');
	# budget 8: all eight promoted; the first 8 by order: x7 a7 b7 x6 a6 b6 x5 a5
	is($t->query_safe("SELECT string_agg(message #>> '{}', ',') FROM mq.receive('$q', 8)"),
		'x7,a7,b7,x6,a6,b6,x5,a5', '6: a receive promotes into 8 lanes and takes the first 8 messages');
	# another consumer: the rest it can see (X4 .. X0 are not visible to it)
	is(sql("SELECT string_agg(message #>> '{}', ',') FROM mq.receive('$q', 100) r WHERE mq.ack('$q', id, receipt)"),
		'b5,a4,b4,a3,b3,a2,b2,a1,b1,a0,b0', '6: another consumer takes what it sees of lanes 5 .. 0, their heads move');
	$t->query_safe("SELECT count(mq.ack('$q', id)) FROM mq.w_$q WHERE leased; COMMIT");
	$t->quit;
	is(rest($q), 'x4,x3,x2,x1,x0', '6: every X left behind is received');
	is(left_in($q), '0/0', '6: nothing left');
}

# ---- 7. more than 8 priorities --------------------------------------------
{
	my $q = 'r7';
	sql("SELECT mq.create_queue('$q')");
	delayed($q, map { "x$_:$_" } 0 .. 9);
	send_now($q, map { "a$_:$_" } 0 .. 9);
	my $t = session();
	$t->query_safe('BEGIN');
	is($t->query_safe('SELECT mq.maintain()'), '10', '7: maintain promotes into ten lanes');
	is(sql("SELECT count(*) FROM mq.receive('$q', 10) r WHERE mq.ack('$q', id, receipt)"),
		'10', '7: another consumer takes the ten A');
	$t->query_safe('COMMIT');
	$t->quit;
	is(rest($q), join(',', map { "x$_" } reverse 0 .. 9), '7: the ten X are received');
	is(left_in($q), '0/0', '7: nothing left');
}

# ---- 8. promoted rows and a consumer abort in the same lane ---------------
for my $abort_first (0, 1)
{
	my $q = "r8_$abort_first";
	my $label = "8 (" . ($abort_first ? 'abort, then promoter commit' : 'promoter commit, then abort') . ")";
	sql("SELECT mq.create_queue('$q')");
	delayed($q, 'x');
	send_now($q, 'a0', 'a', 'b', 'c');
	my $t = session();
	my $c = session();
	$t->query_safe('BEGIN');
	$t->query_safe('SELECT mq.maintain()');
	# the head moves past X before the consumer that rolls back scans
	is(take1($q), 'a0/true', "$label: a consumer takes A0");
	$c->query_safe('BEGIN');
	is($c->query_safe("SELECT message #>> '{}' FROM mq.receive('$q', 1)"), 'a',
		"$label: a consumer takes A, will roll back");
	is(take1($q), 'b/true', "$label: another consumer takes B (A is locked), the head moves past X");
	if ($abort_first)
	{
		$c->query_safe('ROLLBACK');
		$t->query_safe('COMMIT');
	}
	else
	{
		$t->query_safe('COMMIT');
		$c->query_safe('ROLLBACK');
	}
	$_->quit for ($t, $c);
	is(rest($q), 'x,a,c', "$label: X, A and C are received");
	is(left_in($q), '0/0', "$label: nothing left");
}

# ---- 9. a blocking receive woken by the promoter's commit ------------------
{
	my $q = 'r9';
	sql("SELECT mq.create_queue('$q')");
	delayed($q, 'x');
	send_now($q, 'a');
	my $t = session();
	$t->query_safe('BEGIN');
	$t->query_safe('SELECT mq.maintain()');
	is(take1($q), 'a/true', '9: a consumer takes A, the head moves past X');
	my $r = session();
	my $t0 = time();
	$r->{stdin} .= "SELECT 'got:' || coalesce(string_agg(message #>> '{}', ','), '') FROM mq.receive('$q', 1, wait => '3 s');\n";
	$r->{run}->pump_nb;
	usleep(300_000);
	$t->query_safe('COMMIT');
	pump_until($r->{run}, $r->{timeout}, \$r->{stdout}, qr/got:.*\n/);
	my ($got) = $r->{stdout} =~ /got:(.*)\n/;
	my $waited = time() - $t0;
	is($got, 'x', '9: the blocking receive gets X after the promoter commits');
	ok($waited < 2.5, sprintf('9: woken at once (%.2f s, the wait was 3 s)', $waited));
	$_->quit for ($t, $r);
	sql("SELECT mq.ack('$q', id) FROM mq.w_$q");
	is(left_in($q), '0/0', '9: nothing left');
}

# ---- 10. metrics: the oldest ready age counts X ---------------------------
{
	my $q = 'r10';
	sql("SELECT mq.create_queue('$q')");
	delayed($q, 'x');
	usleep(400_000);
	send_now($q, 'a', 'b');
	my $t = session();
	$t->query_safe('BEGIN');
	$t->query_safe('SELECT mq.maintain()');
	is(take1($q), 'a/true', '10: a consumer takes A, the head moves past X');
	$t->query_safe('COMMIT');
	$t->quit;
	# X was sent more than 0.5 s before B
	is(sql("SELECT m.oldest_ready_age >= (SELECT now() - min(enqueued_at) FROM mq.q_$q)"
			  . " FROM mq.metrics('$q') m"),
		't', '10: the oldest ready age is that of X (sent first), not of B');
	is(rest($q), 'x,b', '10: X and B are received');
}

# ---- 11. fresh rows of every kind beside promoted ones ---------------------
{
	my $q = 'r11';
	sql("SELECT mq.create_queue('r11_dlq')");
	sql("SELECT mq.create_queue('$q', visibility_timeout => '100 ms', max_attempts => 1,"
		  . " dead_letter_queue => 'r11_dlq')");
	sql("SELECT mq.create_queue('r11_red', max_attempts => 1)");
	sql("SELECT mq.subscribe('$q', 'r11.#')");
	# a message dead-lettered to the table (for the redrive)
	sql("SELECT mq.send('r11_red', '\"rd\"'); SELECT count(*) FROM mq.receive('r11_red', 1, '10 ms')");
	usleep(50_000);
	sql("SELECT mq.maintain()");
	is(sql("SELECT count(*) FROM mq.dead_letters WHERE queue = 'r11_red'"), '1',
		'11: one dead letter in the table to redrive');
	# a lease that expires past max_attempts (a dead letter into r11_dlq
	# when promoted), then X
	sql("SELECT mq.send('$q', '\"dl\"'); SELECT count(*) FROM mq.receive('$q', 1)");
	delayed($q, 'x');
	# sent after X came due: the bounds the promoter publishes for its
	# fresh rows in the other queues are above X's seq, so they do not
	# hold the head back from X by chance
	send_now($q, 'a');
	send_now('r11_dlq', 'd0');
	send_now('r11_red', 'r0');
	my $t = session();
	$t->query_safe('BEGIN');
	# promotes X and the expired lease of dl (dead letter into r11_dlq)
	$t->query_safe('SELECT mq.maintain()');
	$t->query_safe("SELECT count(*) FROM mq.send_batch('$q', ARRAY['\"s1\"', '\"s2\"']::jsonb[])");
	$t->query_safe("SELECT mq.publish('r11.t', '\"p\"')");
	$t->query_safe("SELECT mq.redrive('r11_red')");
	is(take1($q), 'a/true', '11: another consumer takes A meanwhile');
	is(take1('r11_dlq'), 'd0/true', '11: and D0 of the dead-letter queue');
	is(take1('r11_red'), 'r0/true', '11: and R0 of the redriven queue (the redrive is not visible yet)');
	$t->query_safe('COMMIT');
	$t->quit;
	is(rest($q), 'x,s1,s2,p', '11: X, the batch and the publish are received, in order');
	is(rest('r11_dlq'), 'dl', '11: the dead letter routed into the dead-letter queue is received');
	is(rest('r11_red'), 'rd', '11: the redriven message is received');
	is(left_in($q) . ' ' . left_in('r11_dlq') . ' ' . left_in('r11_red'), '0/0 0/0 0/0',
		'11: nothing left');
	is(sql("SELECT count(*) FROM mq.dead_letters WHERE queue LIKE 'r11%'"), '0',
		'11: no dead letter left in the table');
}

# ---- 12. old small seqs beside new ones, after a restart -------------------
{
	my $q = 'r12';
	sql("SELECT mq.create_queue('$q')");
	# rows as 0.1 wrote them: seq = id (small numbers), one ready, one
	# waiting whose delay has ended
	sql("INSERT INTO mq.q_$q (seq, id, priority, attempt, enqueued_at, message)"
		  . " SELECT n, n, 0, 0, now() - interval '1 hour', to_jsonb('o' || n) FROM (VALUES (5), (6)) v(n);"
		  . " INSERT INTO mq.w_$q (vt, leased, seq, id, priority, attempt, enqueued_at, message)"
		  . " VALUES (now() - interval '1 minute', false, 7, 7, 0, 0, now() - interval '1 hour', '\"o7\"')");
	$node->restart;
	send_now($q, 'a');
	my $t = session();
	$t->query_safe('BEGIN');
	$t->query_safe('SELECT mq.maintain()');
	is(take1($q), 'o5/true', '12: the old ready rows come first after the restart, while o7 is promoted');
	is(take1($q), 'o6/true', '12: both');
	send_now($q, 'b');
	is(take1($q), 'a/true', '12: then A (the head moves past o7\'s due time)');
	$t->query_safe('COMMIT');
	$t->quit;
	is(rest($q), 'o7,b', '12: the old wait row and B are received');
	is(left_in($q), '0/0', '12: nothing left');
}

$node->stop;
done_testing();
