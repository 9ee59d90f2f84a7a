
# Copyright: mq authors; PostgreSQL License.
#
# The life cycle of a queue's shared-memory entry (src/shmem.c, hash "mq
# queues": lane heads, counters, due times of one queue).
#
# Reproduces issue 10, item 1 (drop_queue frees the entry inside its own
# transaction; the next new entry reuses that memory, and the dropping
# transaction's commit then moves the new queue's heads and counters: a
# committed message is never received), issue 11, item 9 (shared state of
# DDL changes before commit: a rolled-back drop_queue loses the unsaved
# totals, a drop + create in one transaction gives the new queue the old
# queue's counts) and issue 10, item 3 (mq.max_queues is no limit, entries
# leak on DROP EXTENSION and DROP DATABASE).
#
# Part 1 (issue 10, item 1): both repros of the issue, as written there;
#   afterwards every committed message of 'y' is received and mq.metrics('y')
#   agrees with mq.q_y.
# Part 2 (issue 11, item 9; issue 10, item 1, last sentence): a rolled-back
#   drop_queue keeps the unsaved totals; drop_queue + create_queue + send in
#   one transaction gives the new queue total_sent 1; both also after
#   mq.maintain() and a restart.
# Part 3 (issue 10, item 3), decided behaviour: the table of shared entries
#   has exactly mq.max_queues entries for the cluster (minimum 1); an
#   operation that needs a new entry when it is full fails with SQLSTATE
#   53400, never silently; entries are freed by a committed drop_queue, by
#   DROP EXTENSION mq and by DROP DATABASE; the lock table keeps its shared
#   memory.
#
# The worker is off everywhere: all of this must hold without it.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;

# =========================================================================
# Parts 1 and 2: one node, default mq.max_queues.
# =========================================================================

my $node = mq_node('entries', "mq.worker_enabled = off\n");
sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1("CREATE EXTENSION mq");

# Everything committed in 'y' ("old" and "new") is received, and metrics
# agree with the table before and after.
sub check_y
{
	my ($label) = @_;

	# before the receive: 2 ready messages in the table, and metrics say so
	my ($ready, $rows, $has_age, $age_ok) = split /\|/, q1(
		"SELECT concat_ws('|', m.ready, t.n, m.oldest_ready_age IS NOT NULL,
		                  coalesce(m.oldest_ready_age >= now() - t.oldest, false))
		   FROM mq.metrics('y') m,
		        (SELECT count(*) AS n, min(enqueued_at) AS oldest FROM mq.q_y) t");
	is($rows, '2', "$label: mq.q_y holds the two committed messages");
	is($ready, $rows, "$label: metrics('y').ready equals count(*) of mq.q_y before the receive");
	is($has_age, 't', "$label: oldest_ready_age is not null with messages ready");
	is($age_ok, 't',
		"$label: oldest_ready_age covers the oldest row of mq.q_y (\"old\", not only \"new\")");

	# every committed message is received
	is(q1("SELECT string_agg(message #>> '{}', ',' ORDER BY message #>> '{}') FROM mq.receive('y', 10)"),
		'new,old', "$label: receive('y', 10) returns both \"old\" and \"new\"");
	is(q1("SELECT count(*) FROM mq.q_y"), '0',
		"$label: nothing left behind in mq.q_y");

	# after it: gauges equal the tables, and the age is null iff nothing is ready
	is( q1(
			"SELECT concat_ws('|', ready, in_flight, delayed, dead, oldest_ready_age IS NULL) FROM mq.metrics('y')"),
		q1(
			"SELECT concat_ws('|',
			   (SELECT count(*) FROM mq.q_y),
			   (SELECT count(*) FROM mq.w_y WHERE leased),
			   (SELECT count(*) FROM mq.w_y WHERE NOT leased),
			   (SELECT count(*) FROM mq.dead_letters WHERE queue = 'y'),
			   NOT EXISTS (SELECT FROM mq.q_y))"),
		"$label: after the receive, metrics('y') gauges and oldest_ready_age agree with the tables");
}

# --- 1a. issue 10 item 1, first repro: second session S ---------------------
{
	my $s = $node->background_psql('postgres');
	my $t = $node->background_psql('postgres');
	my $s_pid = $s->query_safe("SELECT pg_backend_pid()");

	$s->query_safe("SELECT mq.create_queue('y')");
	$s->query_safe(qq{SELECT mq.send('y', '"old"')});
	$s->query_safe("SELECT mq.create_queue('x')");
	$s->query_safe(qq{SELECT mq.send('x', '"xmsg"')});
	$s->query_safe("BEGIN");
	$s->query_safe("SELECT mq.drop_queue('y')");
	$s->query_safe("ROLLBACK");

	$t->query_safe("BEGIN");
	is($t->query_safe("SELECT message #>> '{}' FROM mq.receive('x')"),
		'xmsg', 'repro 1: T receives the message of x');
	$t->query_safe("SELECT mq.drop_queue('x')");

	# S sends "new" while T's drop of x is open.  The send is not expected
	# to wait for T, but if a fix makes it wait, let it: go on once it has
	# finished or is waiting on a lock, so the order of events is the
	# issue's either way.
	$s->query_until(qr/sending/, qq{\\echo sending\nSELECT mq.send('y', '"new"');\n});
	ok( wait_for(
			sub {
				q1(
					"SELECT query LIKE '%\"new\"%' AND (state = 'idle' OR wait_event_type = 'Lock')
					   FROM pg_stat_activity WHERE pid = $s_pid") eq 't';
			},
			20),
		'repro 1: S has sent "new" (or waits for T) before T commits');
	$t->query_safe("COMMIT");
	$s->query("SELECT 1");    # S's send has finished
	$s->quit;
	$t->quit;

	check_y('repro 1 (drop rolled back, then S sends while T drops x)');
	q1("SELECT mq.drop_queue('y')");
}

# --- 1b. issue 10 item 1, second repro: restart, then one transaction -------
q1(qq{SELECT mq.create_queue('y'); SELECT mq.send('y', '"old"');
      SELECT mq.create_queue('x'); SELECT mq.send('x', '"xmsg"');});
$node->restart;
like( q1(
		qq{BEGIN;
		   SELECT count(*) FROM mq.receive('x');
		   SELECT mq.drop_queue('x');
		   SELECT mq.send('y', '"new"');
		   COMMIT;
		   SELECT count(*) FROM mq.queues WHERE queue = 'x';}),
	qr/^1\nt\n\d+\n0$/,
	'repro 2: after a restart, one transaction receives from x, drops x, sends to y');
check_y('repro 2 (restart; receive x, drop x, send y in one transaction)');
q1("SELECT mq.drop_queue('y')");

# --- 2. issue 11 item 9: shared state of DDL changes at commit only --------
sub total_sent { return q1("SELECT total_sent FROM mq.metrics('$_[0]')"); }

# A rolled-back drop keeps the live queue's unsaved totals.
q1("SELECT mq.create_queue('ta')");
q1(qq{SELECT mq.send('ta', '"a1"'); SELECT mq.send('ta', '"a2"'); SELECT mq.send('ta', '"a3"');});
is(total_sent('ta'), '3', 'ta: total_sent 3 after three sends');
q1("BEGIN; SELECT mq.drop_queue('ta'); ROLLBACK;");
is(q1("SELECT concat_ws('|', ready, total_sent) FROM mq.metrics('ta')"), '3|3',
	'ta: a rolled-back drop_queue keeps ready 3 and the unsaved total_sent 3');

# Drop and create in one transaction that also sent to the old queue: the
# new queue starts from zero (the issue saw 6 instead of 1).
q1("SELECT mq.create_queue('tb')");
q1("SELECT count(*) FROM mq.send_batch('tb', array(SELECT to_jsonb(g) FROM generate_series(1, 5) g))");
q1("SELECT mq.maintain()");    # the old queue's totals are saved: 5
q1(qq{BEGIN;
      SELECT count(*) FROM mq.send_batch('tb', array(SELECT to_jsonb(g) FROM generate_series(6, 10) g));
      SELECT mq.drop_queue('tb');
      SELECT mq.create_queue('tb');
      SELECT mq.send('tb', '"first of the new tb"');
      COMMIT;});
is(q1("SELECT concat_ws('|', ready, total_sent) FROM mq.metrics('tb')"), '1|1',
	'tb: drop_queue + create_queue + one send in one transaction: ready 1, total_sent 1');

# The same without touching the old queue in that transaction.
q1("SELECT mq.create_queue('tc')");
q1("SELECT count(*) FROM mq.send_batch('tc', array(SELECT to_jsonb(g) FROM generate_series(1, 5) g))");
q1("SELECT mq.maintain()");
q1(qq{BEGIN;
      SELECT mq.drop_queue('tc');
      SELECT mq.create_queue('tc');
      SELECT mq.send('tc', '"first of the new tc"');
      COMMIT;});
is(total_sent('tc'), '1', 'tc: drop + create + send in one transaction (old totals saved before): total_sent 1');

like(q1("SELECT mq.maintain()"), qr/^\d+$/, 'mq.maintain() saves the totals');
is( q1(
		"SELECT string_agg(queue || '=' || total_sent, ',' ORDER BY queue) FROM mq.queue_totals
		  WHERE queue IN ('ta', 'tb', 'tc')"),
	'ta=3,tb=1,tc=1',
	'mq.queue_totals after mq.maintain(): ta 3, tb 1, tc 1');
is(q1("SELECT string_agg(queue || '=' || total_sent, ',' ORDER BY queue) FROM mq.metrics() WHERE queue IN ('ta', 'tb', 'tc')"),
	'ta=3,tb=1,tc=1', 'metrics after mq.maintain(): ta 3, tb 1, tc 1');
$node->restart;
is(q1("SELECT string_agg(queue || '=' || total_sent, ',' ORDER BY queue) FROM mq.metrics() WHERE queue IN ('ta', 'tb', 'tc')"),
	'ta=3,tb=1,tc=1', 'metrics after a restart: ta 3, tb 1, tc 1');
is(q1("SELECT concat_ws('|', (SELECT ready FROM mq.metrics('ta')), (SELECT ready FROM mq.metrics('tb')))"),
	'3|1', 'and the gauges after the restart: ta ready 3, tb ready 1');

$node->stop;

# =========================================================================
# Part 3: mq.max_queues = 4 is a real limit (issue 10, item 3).
# =========================================================================

my $lim = mq_node('max_queues', "mq.worker_enabled = off\nmq.max_queues = 4\n");
sub l1 { my ($db, $sql) = @_; return $lim->safe_psql($db, $sql); }

# 'ok' when the queue could be created (or existed) and a message sent to
# it, else the SQLSTATE of the first error.
sub try_send
{
	my ($db, $queue) = @_;
	my ($ret, $out, $err) = $lim->psql($db,
		"\\set VERBOSITY verbose\n"
		  . "SELECT mq.create_queue('$queue');\n"
		  . "SELECT mq.send('$queue', '{\"to\": \"$queue\"}');\n",
		on_error_stop => 1);
	return 'ok' if $ret == 0 && $err !~ /ERROR/;
	return $1 if $err =~ /ERROR:\s+([0-9A-Z]{5}):/;
	return "failed: $err";
}

is(l1('postgres', 'SHOW mq.max_queues'), '4', 'mq.max_queues = 4 is accepted (SHOW says 4)');

l1('postgres', 'CREATE EXTENSION mq');
my @got = map { try_send('postgres', "q$_") } 1 .. 6;
is(join(',', @got[0 .. 3]), 'ok,ok,ok,ok', 'with mq.max_queues = 4, sends to the first 4 queues succeed');
is($got[4], '53400', '5th queue: the operation that needs a 5th shared entry fails with 53400');
is($got[5], '53400', '6th queue: fails with 53400 as well');
is(l1('postgres', "SELECT string_agg(message->>'to', ',' ORDER BY message->>'to') FROM mq.receive('q1', 10)"),
	'q1', 'a queue that has its entry still works');

# a committed drop_queue frees its entry
is(l1('postgres', "BEGIN; SELECT mq.drop_queue('q1'); ROLLBACK;"), 't', 'drop_queue of q1, rolled back');
is(try_send('postgres', 'q5'), '53400', 'a rolled-back drop_queue frees no entry: q5 still fails with 53400');
l1('postgres', "SELECT mq.drop_queue('q1')");
is(try_send('postgres', 'q5'), 'ok', 'after drop_queue of q1, sending to q5 succeeds');
is(l1('postgres', "SELECT concat_ws('|', ready, total_sent) FROM mq.metrics('q5')"),
	'1|1', 'q5 has its message, counted');

# the lock table still has its shared memory
my ($ret, $out, $err) = $lim->psql('postgres',
	"BEGIN;
	 DO \$\$ BEGIN FOR i IN 1 .. 300 LOOP
	   EXECUTE format('CREATE TEMP TABLE lk_%s (a int)', i);
	 END LOOP; END \$\$;
	 SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid();
	 COMMIT;");
ok($ret == 0 && $out >= 300, 'a transaction taking 300 locks succeeds')
  or diag("psql returned $ret: $out $err");

# DROP EXTENSION frees the entries of its database's queues
l1('postgres', 'DROP EXTENSION mq');

# cycles of DROP EXTENSION / CREATE EXTENSION, 3 queues each time
l1('postgres', 'CREATE DATABASE cyc');
l1('cyc', 'CREATE EXTENSION mq');
for my $cycle (1 .. 3)
{
	my @r = map { try_send('cyc', "e${cycle}_$_") } 1 .. 3;
	is(join(',', @r), 'ok,ok,ok',
		"DROP EXTENSION cycle $cycle: create 3 queues and send to each");
	l1('cyc', 'DROP EXTENSION mq');
	l1('cyc', 'CREATE EXTENSION mq');
}

# cycles of CREATE DATABASE / DROP DATABASE, 3 queues each time
for my $cycle (1 .. 3)
{
	l1('postgres', "CREATE DATABASE dbc$cycle");
	l1("dbc$cycle", 'CREATE EXTENSION mq');
	my @r = map { try_send("dbc$cycle", "d${cycle}_$_") } 1 .. 3;
	is(join(',', @r), 'ok,ok,ok',
		"DROP DATABASE cycle $cycle: create 3 queues and send to each");
	l1('postgres', "DROP DATABASE dbc$cycle");
}

# nothing leaked: all 4 entries are free for another database
my @last = map { try_send('cyc', "after_$_") } 1 .. 4;
is(join(',', @last), 'ok,ok,ok,ok',
	'after the cycles, sends to 4 queues in another database succeed (no entry leaked)');
is(l1('cyc', "SELECT sum(ready) FROM mq.metrics()"), '4', 'and their metrics count one message each');

$lim->stop;
done_testing();
