# Copyright: mq authors; PostgreSQL License.
#
# Message groups under concurrency (issue 13, "TAP stress"): 4 producers
# send to the same 200 groups, each in its own shuffled order, round after
# round, one send per transaction; 4 consumers receive (1 to 5 at a time),
# hold each message a moment, then nack about one in ten (a retry at once)
# and ack the rest, each with its delivery's receipt; one consumer is
# killed (pg_terminate_backend) while it holds leases, which then run out
# and are delivered again.
#
# Each send takes the next number of its group from a counter row locked in
# the same transaction before the send, so the numbers of a group are in
# the order its sends committed, which is the order mq promises.  Consumers
# log every delivery when the receive commits (the lease is theirs from
# then on) and every ack or nack before it commits (clock_timestamp()), so
# a delivery is held from its logged receive to its logged settle (or, if
# never settled, to its lease's end).  Afterwards: every message sent was
# acked, exactly once (none lost, none acked twice); within each group the
# acks came in number order; no two deliveries of one group to different
# sessions were held at once; the queue and its group tables are empty.
#
# Producers are paced slower than the consumers, so that groups empty and
# start again all the time, and each send holds its group a few ms before
# it commits: acks of a group's last message meet sends in progress to it
# (about ten times a run).
#
# Checked to fail: with every grouped send made its group's current message
# (no backlog), order and "held at once" fail; with an emptying ack that
# waits for the send in progress but does not look again, messages are
# lost (stranded in the backlog) and order fails.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use MqTest;
use Time::HiRes qw(time sleep);

my $groups = 200;
my $rounds = 3;
my $producers = 4;
my $consumers = 4;
my $total = $groups * $rounds * $producers;

my $node = mq_node('groups_stress', "max_connections = 40");

sub q1
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', $sql);
}

q1("CREATE EXTENSION mq");
q1("SELECT mq.create_queue('gs', retry_delay => '0',
                            retry_delay_max => '0', max_attempts => 1000)");
q1("CREATE TABLE counters (g text PRIMARY KEY, n int NOT NULL)");
q1("INSERT INTO counters SELECT 'g' || i, 0 FROM generate_series(1, $groups) i");
q1("CREATE TABLE sent (g text, n int, id bigint, PRIMARY KEY (g, n))");
q1("CREATE TABLE deliveries (id bigint, g text, n int, who text, attempt int, got_at timestamptz,
                             lease_end timestamptz, settled_at timestamptz, how text)");
q1("CREATE TABLE acked (id bigint, g text, n int, who text, at timestamptz)");

my $producer_sql = qq{
DO \$\$
DECLARE order_ int[]; k int; v int; mid bigint;
BEGIN
  FOR r IN 1 .. $rounds LOOP
    order_ := ARRAY(SELECT i FROM generate_series(1, $groups) i ORDER BY random());
    FOREACH k IN ARRAY order_ LOOP
      UPDATE counters SET n = n + 1 WHERE g = 'g' || k RETURNING n INTO v;
      mid := mq.send('gs', jsonb_build_object('g', 'g' || k, 'n', v), group_key => 'g' || k);
      INSERT INTO sent VALUES ('g' || k, v, mid);
      -- the send holds its group a moment: acks of the group's last
      -- message meet it
      PERFORM pg_sleep(random() * 0.003);
      COMMIT;
      -- slower than the consumers, so that groups empty and fill again
      PERFORM pg_sleep(0.005);
    END LOOP;
  END LOOP;
END \$\$;
};

# A consumer: receive, commit (the leases are ours), hold each message a
# moment, settle each in its own transaction; until every message is acked.
# Leases last $vt (the killed consumer's are short; the others' long enough
# for the slowest machine, so that only the killed one's run out).
sub consumer_sql
{
	my ($who, $vt, $hold) = @_;
	# each -c of psql is a statement of its own: the DO block can COMMIT
	return ('-c', "SET application_name = '$who'", '-c', 'SET client_min_messages = warning', '-c', qq{
DO \$\$
DECLARE m record; ok boolean; idle int := 0;
BEGIN
  LOOP
    EXIT WHEN (SELECT count(*) FROM acked) >= $total;
    CREATE TEMP TABLE IF NOT EXISTS mine (id bigint, g text, n int, receipt text, lease_end timestamptz);
    TRUNCATE mine;
    INSERT INTO mine
      SELECT id, message->>'g', (message->>'n')::int, receipt, visible_at
        FROM mq.receive('gs', 1 + (random() * 4)::int, visibility_timeout => '$vt');
    INSERT INTO deliveries
      SELECT r.id, r.g, r.n, '$who', NULL, clock_timestamp(), r.lease_end, NULL, NULL
        FROM mine r;
    COMMIT;
    IF NOT EXISTS (SELECT 1 FROM mine) THEN
      idle := idle + 1;
      EXIT WHEN idle > 3000;
      PERFORM pg_sleep(0.005);
      CONTINUE;
    END IF;
    idle := 0;
    FOR m IN SELECT * FROM mine ORDER BY g, n LOOP
      PERFORM pg_sleep(random() * $hold);
      IF random() < 0.1 THEN
        UPDATE deliveries SET settled_at = clock_timestamp(), how = 'nack'
         WHERE id = m.id AND who = '$who' AND settled_at IS NULL;
        PERFORM mq.nack('gs', m.id, delay => '0', receipt => m.receipt);
      ELSE
        UPDATE deliveries SET settled_at = clock_timestamp(), how = 'ack'
         WHERE id = m.id AND who = '$who' AND settled_at IS NULL;
        ok := mq.ack('gs', m.id, m.receipt);
        IF ok THEN
          INSERT INTO acked VALUES (m.id, m.g, m.n, '$who', clock_timestamp());
        END IF;
      END IF;
      COMMIT;
    END LOOP;
  END LOOP;
END \$\$;
});
}

my (@runs, %out);
my $t0 = time();
for my $i (1 .. $producers)
{
	push @runs, mq_psql_start($node, "p$i", '-c', $producer_sql);
}
for my $i (1 .. $consumers)
{
	# c4, the one killed, holds its messages longer (so that it is killed
	# holding some), and has short leases: they run out soon after
	my ($vt, $hold) = $i == 4 ? ('1 second', 0.2) : ('30 seconds', 0.002);
	push @runs, mq_psql_start($node, "c$i", consumer_sql("c$i", $vt, $hold));
}

# Kill consumer c4 once it holds leases (a delivery logged, not settled).
my $killed = 0;
for (1 .. 400)
{
	my $pid = q1("SELECT a.pid FROM pg_stat_activity a
	               WHERE a.application_name = 'c4'
	                 AND EXISTS (SELECT 1 FROM deliveries d WHERE d.who = 'c4' AND d.settled_at IS NULL)
	                 AND (SELECT count(*) FROM deliveries WHERE who = 'c4') > 5");
	if ($pid ne '')
	{
		q1("SELECT pg_terminate_backend($pid)");
		$killed = 1;
		last;
	}
	sleep(0.05);
}
ok($killed, 'consumer c4 was killed while it held leases');

for my $run (@runs)
{
	my ($name, $h, $o, $e) = @$run;
	my $ok = eval { $h->finish; 1 };
	if ($name eq 'c4')
	{
		like($$e, qr/terminat/, 'c4 ended by its termination');
		next;
	}
	ok($ok && $h->result == 0, "$name finished cleanly") or diag("$name: $$e");
}
note(sprintf('all sessions done in %.1f s', time() - $t0));

is(q1("SELECT count(*) FROM sent"), $total, "$total messages sent");
is(q1("SELECT count(*) FROM acked"), $total, 'as many acked');
is(q1("SELECT count(*) FROM sent s WHERE NOT EXISTS (SELECT 1 FROM acked a WHERE a.id = s.id)"),
	'0', 'none lost: every message sent was acked');
is(q1("SELECT count(*) - count(DISTINCT id) FROM acked"), '0', 'none acked twice');
is( q1(
		"SELECT count(*) FROM (
		   SELECT g, n, lag(n) OVER (PARTITION BY g ORDER BY at) AS prev FROM acked) s
		  WHERE prev IS NOT NULL AND n <> prev + 1"),
	'0', 'within each group, the messages were acked in send (commit) order');
is( q1(
		"SELECT count(*) FROM deliveries a JOIN deliveries b
		    ON a.g = b.g AND a.who <> b.who AND a.ctid < b.ctid
		 WHERE tstzrange(a.got_at, coalesce(a.settled_at, a.lease_end))
		    && tstzrange(b.got_at, coalesce(b.settled_at, b.lease_end))"),
	'0', 'no two sessions held messages of one group at the same time');
ok(q1("SELECT count(*) FROM deliveries WHERE how = 'nack'") > 0, 'some deliveries were nacked');
ok( q1("SELECT count(*) FROM deliveries d WHERE d.who = 'c4' AND d.settled_at IS NULL
          AND EXISTS (SELECT 1 FROM acked a WHERE a.id = d.id AND a.who <> 'c4')") > 0,
	'the killed consumer\'s leases ran out and others acked those messages');
is( q1("SELECT concat_ws('|', ready, in_flight, delayed, dead, groups, groups_ready, groups_in_flight)
          FROM mq.metrics('gs')"),
	'0|0|0|0|0|0|0', 'gauges: the queue is empty, no group left');
is(q1("SELECT (SELECT count(*) FROM mq.q_gs) + (SELECT count(*) FROM mq.w_gs)
            + (SELECT count(*) FROM mq.g_gs) + (SELECT count(*) FROM mq.b_gs)"),
	'0', 'the queue\'s tables, group tables included, are empty');

$node->stop;
done_testing();
