
# Copyright: mq authors; PostgreSQL License.
#
# Due messages are delivered at once, to anyone, in "due time, then send
# order" (issue 10, items 5 and 6).
#
# Decided behaviour: a message that is due (a delayed message whose delay
# has ended, a retry whose retry time has come, an expired lease turned
# into a retry) can be received at once by any consumer, whatever other
# transactions are open; and within one priority the delivery order is "due
# time, then send order": a message that became due at time T is delivered
# before a message sent (committed) after T, and after one sent before T.
#
#  1. (item 5) Five messages due at once; A: BEGIN; receive(q, 1) takes one
#     and stays open; B's receive(q, 10) must get the other four while A is
#     still open.  Three variants: delayed sends, nacked retries, expired
#     leases (which also count as an attempt: every delivery is attempt 2).
#     Today A's receive moves all five into the ready table inside A's
#     transaction, and B sees none of them until A ends (mq.maintain() does
#     not help either: it skips the rows A has locked).  B polls for up to
#     1.5 s, so a fix may hand them over through a short transaction of its
#     own; it must not wait for A.
#  2. (item 5) Higher-priority due messages are not passed over: two
#     priority-5 messages due, two priority-0 ready ones; A takes one
#     priority-5 message and stays open; B must get the other priority-5
#     one, not a priority-0 one.
#  3. (item 6) Order.  Z sent, X sent with delay 1 s, Y sent 0.5 s after X
#     came due: received in the order Z, X, Y (today: Z, Y, X, because X
#     gets its seq when it is promoted).  The same with X a nacked message
#     whose retry came due before Y was sent (there Z is sent while X is in
#     flight, so a retry that kept X's first place would wrongly come
#     before Z; X must be delivered as attempt 2).  A long producer transaction
#     P (BEGIN; send C; send C2 with a delay that ends while P is open;
#     other messages are sent, received and acked meanwhile; P commits):
#     commit order is not promised for messages of an open transaction, so
#     the test only requires that C and C2 are delivered, exactly once, and
#     does not assert their position; the messages committed meanwhile keep
#     their send order.
#  4. (item 5) All of it holds without the worker (mq.worker_enabled = off,
#     first phase) and with it (second phase: ALTER SYSTEM SET
#     mq.worker_enabled = on, reload, a worker serves the database).  Today
#     the first phase fails deterministically; in the second, the worker
#     often promotes the messages before the checks run, so today's code
#     passes some or all of its checks, depending on when its passes fall.
#
# Timing: delays are 1 s; the test waits for due times by polling the
# server clock (upper bounds of the due times are read after the statement
# that set them returned), with margins of 100 ms to 500 ms; no assertion
# depends on sub-second scheduling.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;
use Time::HiRes qw(time usleep);

my $node = mq_node('due_delivery', qq{
mq.worker_enabled = off
});

sub sql { return $node->safe_psql('postgres', $_[0]); }

# An upper bound of "now + $secs" as the server sees it, read after the
# statement that computed its own "now + $secs" has returned.
sub due_in
{
	my ($secs) = @_;
	return sql("SELECT clock_timestamp() + interval '$secs s'");
}

# Sleep until the server clock has passed $ts + $margin (no longer).
sub wait_past
{
	my ($ts, $margin) = @_;
	for (my $i = 0; $i < 100; $i++)
	{
		my $left = sql(
			"SELECT extract(epoch FROM ('$ts'::timestamptz + interval '$margin') - clock_timestamp())");
		return if $left <= 0;
		usleep(int(($left < 0.5 ? $left : 0.5) * 1_000_000) + 1000);
	}
	die "the server clock never passed $ts + $margin";
}

# psql output (-XAtq) to a list of [field, ...]
sub rows
{
	my ($out) = @_;
	return map { [ split /\|/, $_, -1 ] } grep { length } split /\n/, $out;
}

# label (message->>'n') of each row
sub names { return map { $_->[0] } @_; }

# receive in a new session (autocommit); rows of (n, attempt, priority)
sub recv_rows
{
	my ($q, $k) = @_;
	return rows(
		sql("SELECT message->>'n', attempt, priority FROM mq.receive('$q', $k, '30 s')"));
}

# one message at a time: the labels of $k single receives, 'none' when empty
sub recv_one_by_one
{
	my ($q, $k) = @_;
	my @got;
	for (1 .. $k)
	{
		my @r = recv_rows($q, 1);
		push @got, @r ? $r[0][0] : 'none';
	}
	return @got;
}

# ids returned by receive, acked or nacked by the caller
sub recv_ids
{
	my ($q, $k) = @_;
	my $out = sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM mq.receive('$q', $k)");
	return $out;
}

# Each scenario has a setup, which returns an upper bound of the time its
# messages come due, and a check, run once that time has passed by a margin
# (the setups of one group share one wait).

# ---------------------------------------------------------------------------
# 1. five due messages: B gets four of them while A's receive is open
# ---------------------------------------------------------------------------
sub due_batch_setup
{
	my ($phase, $kind) = @_;
	my $q = "due_${kind}_$phase";
	my $label = "[worker $phase] $kind";

	if ($kind eq 'expired')
	{
		sql("SELECT mq.create_queue('$q', visibility_timeout => '1 s', retry_delay => '0')");
	}
	else
	{
		sql("SELECT mq.create_queue('$q')");
	}

	if ($kind eq 'delayed')
	{
		sql("SELECT mq.send('$q', jsonb_build_object('n', 'm' || i), delay => '1 s')
		       FROM generate_series(1, 5) i");
	}
	else
	{
		sql("SELECT mq.send('$q', jsonb_build_object('n', 'm' || i)) FROM generate_series(1, 5) i");
		if ($kind eq 'retry')
		{
			my $ids = recv_ids($q, 10);
			is( sql("SELECT count(*) FILTER (WHERE mq.nack('$q', id, delay => '1 s'))
			           FROM unnest('{$ids}'::bigint[]) id"),
				'5', "$label: setup: five messages received and nacked with delay 1 s");
		}
		else
		{
			# leases of 1 s (the queue's); retry_delay 0: due when they end
			is(sql("SELECT count(*) FROM mq.receive('$q', 10)"),
				'5', "$label: setup: five messages leased for 1 s");
		}
	}
	return (due_in(1), sub { due_batch_check($phase, $kind) });
}

sub due_batch_check
{
	my ($phase, $kind) = @_;
	my $q = "due_${kind}_$phase";
	my $label = "[worker $phase] $kind";

	my $a = $node->background_psql('postgres');
	$a->query_safe('BEGIN');
	my @a_rows = rows($a->query_safe(
		"SELECT message->>'n', attempt, priority FROM mq.receive('$q', 1, '30 s')"));
	is(scalar @a_rows, 1, "$label: A, in an open transaction, receives one due message");

	# B, while A stays open: all four others, without waiting for A
	my @b_rows;
	my $t0 = time();
	while (@b_rows < 4 && time() - $t0 < 1.5)
	{
		push @b_rows, recv_rows($q, 10);
		usleep(50_000) if @b_rows < 4;
	}
	is(scalar @b_rows, 4,
		"$label: B receives the other 4 due messages while A's transaction is still open")
	  or diag("B got " . scalar(@b_rows) . " in 1.5 s of receives: " . join(',', names(@b_rows)));

	if ($kind ne 'delayed')
	{
		is( join(',', map { $_->[1] } @a_rows, @b_rows),
			join(',', ('2') x (scalar(@a_rows) + scalar(@b_rows))),
			"$label: every one of them is delivered as attempt 2");
	}

	$a->query_safe('COMMIT');
	$a->quit;

	# nothing lost, nothing delivered twice
	my @rest = recv_rows($q, 10);
	is( join(',', sort(names(@a_rows, @b_rows, @rest))),
		'm1,m2,m3,m4,m5',
		"$label: each of the five messages is delivered exactly once");
}

# ---------------------------------------------------------------------------
# 2. a higher-priority due message is not passed over
# ---------------------------------------------------------------------------
sub due_priority_setup
{
	my ($phase) = @_;
	my $q = "due_prio_$phase";

	sql("SELECT mq.create_queue('$q')");
	sql("SELECT mq.send('$q', jsonb_build_object('n', 'hi' || i), delay => '1 s', priority => 5)
	       FROM generate_series(1, 2) i");
	my $due = due_in(1);
	sql("SELECT mq.send('$q', jsonb_build_object('n', 'lo' || i)) FROM generate_series(1, 2) i");
	return ($due, sub { due_priority_check($phase) });
}

sub due_priority_check
{
	my ($phase) = @_;
	my $q = "due_prio_$phase";
	my $label = "[worker $phase] priority";

	my $a = $node->background_psql('postgres');
	$a->query_safe('BEGIN');
	my @a_rows = rows($a->query_safe(
		"SELECT message->>'n', attempt, priority FROM mq.receive('$q', 1, '30 s')"));
	is(join(',', map { $_->[2] } @a_rows), '5',
		"$label: A, in an open transaction, receives a due priority-5 message");

	my @b_rows = recv_rows($q, 1);
	my $a_got = @a_rows ? $a_rows[0][0] : '';
	ok( @b_rows == 1
		  && $b_rows[0][2] eq '5'
		  && $b_rows[0][0] =~ /^hi[12]$/
		  && $b_rows[0][0] ne $a_got,
		"$label: B, while A is open, receives the other due priority-5 message, not a priority-0 one"
	) or diag("A got $a_got; B got: " . join(',', map { "$_->[0]/p$_->[2]" } @b_rows));

	$a->query_safe('COMMIT');
	$a->quit;
	my @rest = recv_rows($q, 10);
	is( join(',', sort(names(@a_rows, @b_rows, @rest))),
		'hi1,hi2,lo1,lo2',
		"$label: each of the four messages is delivered exactly once");
}

# ---------------------------------------------------------------------------
# 3. order: due time, then send order
# ---------------------------------------------------------------------------

# Z sent, then X with delay 1 s; the check (at least 0.5 s after X came
# due) sends Y and receives one message at a time.
sub order_delayed_setup
{
	my ($phase) = @_;
	my $q = "order_delay_$phase";

	sql("SELECT mq.create_queue('$q')");
	sql("SELECT mq.send('$q', '{\"n\": \"z\"}')");
	sql("SELECT mq.send('$q', '{\"n\": \"x\"}', delay => '1 s')");
	return (due_in(1), sub { order_check($phase, $q, 'delayed') });
}

# X sent and received; Z sent while X is in flight; X nacked with delay
# 1 s.  A retry that reused X's first place would come before Z: it must
# not (Z was sent before X's retry came due); nor after Y.
sub order_retry_setup
{
	my ($phase) = @_;
	my $q = "order_retry_$phase";
	my $label = "[worker $phase] order, retry";

	sql("SELECT mq.create_queue('$q')");
	sql("SELECT mq.send('$q', '{\"n\": \"x\"}')");
	my $id = recv_ids($q, 1);
	sql("SELECT mq.send('$q', '{\"n\": \"z\"}')");
	is(sql("SELECT mq.nack('$q', $id, delay => '1 s')"), 't',
		"$label: setup: X received, Z sent, X nacked with delay 1 s");
	return (due_in(1), sub { order_check($phase, $q, 'retry') });
}

sub order_check
{
	my ($phase, $q, $kind) = @_;
	my $label = "[worker $phase] order, $kind";

	# called at least 0.5 s after X came due
	sql("SELECT mq.send('$q', '{\"n\": \"y\"}')");
	my @got = map { [ recv_rows($q, 1) ] } 1 .. 4;
	my $xa = $kind eq 'retry' ? 2 : 1;
	is( join(',', map { @$_ ? "$_->[0][0]/a$_->[0][1]" : 'none' } @got),
		"z/a1,x/a$xa,y/a1,none",
		"$label: Z (sent before X was due), X (attempt $xa, due at least 0.5 s before Y was sent), then Y");
}

# ---------------------------------------------------------------------------
# 3. a long producer transaction: its messages are delivered, position free
# ---------------------------------------------------------------------------
sub long_producer
{
	my ($phase) = @_;
	my $q = "long_prod_$phase";
	my $label = "[worker $phase] long producer";

	sql("SELECT mq.create_queue('$q')");
	my $p = $node->background_psql('postgres');
	$p->query_safe('BEGIN');
	$p->query_safe("SELECT mq.send('$q', '{\"n\": \"c\"}')");
	$p->query_safe("SELECT mq.send('$q', '{\"n\": \"c2\"}', delay => '1 s')");
	my $due = due_in(1);

	# committed meanwhile, consumed and acked (heads move past them)
	sql("SELECT mq.send('$q', '{\"n\": \"d1\"}')");
	sql("SELECT mq.send('$q', '{\"n\": \"d2\"}')");
	my @first = map { [ rows(sql(
		"SELECT message->>'n', mq.ack('$q', id) FROM mq.receive('$q', 1)")) ] } 1 .. 2;
	is(join(',', map { @$_ ? "$_->[0][0]/$_->[0][1]" : 'none' } @first),
		'd1/t,d2/t', "$label: while P is open, D1 then D2 are received and acked");
	wait_past($due, '300 ms');    # C2 is due, P still open
	sql("SELECT mq.send('$q', '{\"n\": \"d3\"}')");
	is(sql("SELECT string_agg(message->>'n' || '/' || mq.ack('$q', id), ',') FROM mq.receive('$q', 10)"),
		'd3/true', "$label: D3, sent after C2 came due, is received and acked while P is open");
	$p->query_safe('COMMIT');
	$p->quit;

	# C and C2 are delivered, each once; their position is not promised
	my @rest;
	my $t0 = time();
	while (@rest < 2 && time() - $t0 < 3)
	{
		push @rest, recv_rows($q, 10);
		usleep(50_000) if @rest < 2;
	}
	push @rest, recv_rows($q, 10);
	is(join(',', sort(names(@rest))), 'c,c2',
		"$label: after P commits, its messages C and C2 are delivered, each exactly once");
}

# run the setups, wait until the last due time + $margin, run the checks
sub together
{
	my ($margin, @setups) = @_;
	my (@dues, @checks);
	for my $setup (@setups)
	{
		my ($due, $check) = $setup->();
		push @dues, $due;
		push @checks, $check;
	}
	my $last = sql("SELECT max(t) FROM unnest(ARRAY['" . join("','", @dues) . "']::timestamptz[]) t");
	wait_past($last, $margin);
	$_->() for @checks;
}

sub all_scenarios
{
	my ($phase) = @_;
	# items 1 and 2: checked from 100 ms after everything came due
	together('100 ms',
		sub { due_batch_setup($phase, 'delayed') },
		sub { due_batch_setup($phase, 'retry') },
		sub { due_batch_setup($phase, 'expired') },
		sub { due_priority_setup($phase) });
	# item 3: Y is sent at least 0.5 s after X came due
	together('500 ms',
		sub { order_delayed_setup($phase) },
		sub { order_retry_setup($phase) });
	long_producer($phase);
}

sql("CREATE EXTENSION mq");

# --- phase 1: no worker --------------------------------------------------------
is(sql("SELECT count(*) FROM mq.workers"), '0', 'phase 1: no background worker runs');
all_scenarios('off');

# --- phase 2: the worker on --------------------------------------------------
sql("ALTER SYSTEM SET mq.worker_enabled = on");
sql("SELECT pg_reload_conf()");
ok(wait_for(sub { sql("SELECT count(*) FROM mq.workers") eq '1' }, 20),
	'phase 2: a background worker serves the database after mq.worker_enabled = on');
all_scenarios('on');

$node->stop;
done_testing();
