
# Copyright: mq authors; PostgreSQL License.
#
# Groups' trails under load (src/group.c, README "Storage design"): the
# settle that takes a group's next message from its backlog by an index
# scan notes the index entries after it, and the group's next settles take
# those rows by TID after checking them.  What a trail points at changes
# all the time here: sends roll back (their entries stay in the index),
# runs (receive's per_group) take trail rows out of the backlog, consumers
# nack, VACUUM of the backlog in a loop frees the places of rows gone (new
# messages take them), and rows are updated by hand (a new row version
# elsewhere).
#
# 3 producers send to 4 groups, 1 to 3 messages a transaction, a quarter
# of the transactions rolled back; each send takes its group's next number
# from a counter row updated in the same transaction, so the numbers a
# group's committed messages have are the order mq must keep.  3 consumers
# receive 1 to 4 at a time, with per_group 1 to 4, log each delivery with
# the number of its receive, and settle what they got in random order (so
# that any message of a run may be its last), each after a moment: a nack
# (a retry at once) about one time in eight, else an ack.  Afterwards:
# every committed message was acked once (none lost, stranded in a
# backlog); no message of a rolled back send was delivered; within a
# group, no message was first delivered by an earlier receive than a
# message before it; the queue's tables are empty.  About 5 s.
#
# Checked to fail (3 runs of 3 each): with mqg_is_wanted taking any row at
# the trail's TID (no gseq check), a message of the group that took the
# place of a row a run had taken is moved up before the ones between, which
# stay stranded in the backlog ("none lost" and "tables empty" fail); with a
# trail's row that fails its checks taken as the group having nothing more
# (no scan after it), likewise.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use MqTest;
use Time::HiRes qw(time sleep);

my $groups = 4;
my $txns = 150;			# per producer
my $producers = 3;
my $consumers = 3;

# autovacuum off: only the loop below vacuums the backlog (an autovacuum of
# it would make the loop's VACUUM wait)
my $node = mq_node('group_trails', "max_connections = 40\nautovacuum = off");

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1("CREATE EXTENSION mq");
q1("SELECT mq.create_queue('gt', retry_delay => '0', retry_delay_max => '0', max_attempts => 1000)");
q1("CREATE TABLE counters (g text PRIMARY KEY, n int NOT NULL)");
q1("INSERT INTO counters SELECT 'g' || i, 0 FROM generate_series(1, $groups) i");
q1("CREATE TABLE sent (g text, n int, id bigint, PRIMARY KEY (g, n))");
q1("CREATE TABLE deliveries (id bigint, g text, n int, who text, batch bigint, how text)");
q1("CREATE TABLE acked (id bigint, g text, n int, who text)");
q1("CREATE SEQUENCE batches");
q1("CREATE TABLE done (producers int NOT NULL)");
q1("INSERT INTO done VALUES (0)");

my $producer_sql = qq{
DO \$\$
DECLARE k text; v int; mid bigint;
BEGIN
  FOR t IN 1 .. $txns LOOP
    k := 'g' || (1 + floor(random() * $groups))::int;
    FOR s IN 1 .. 1 + floor(random() * 3)::int LOOP
      UPDATE counters SET n = n + 1 WHERE g = k RETURNING n INTO v;
      mid := mq.send('gt', jsonb_build_object('g', k, 'n', v), group_key => k);
      INSERT INTO sent VALUES (k, v, mid);
    END LOOP;
    PERFORM pg_sleep(random() * 0.002);
    IF random() < 0.25 THEN
      ROLLBACK;
    ELSE
      COMMIT;
    END IF;
    PERFORM pg_sleep(random() * 0.01);
  END LOOP;
  UPDATE done SET producers = producers + 1;
  COMMIT;
END \$\$;
};

sub consumer_sql
{
	my ($who) = @_;
	return ('-c', 'SET client_min_messages = warning', '-c', qq{
DO \$\$
DECLARE m record; b bigint; idle int := 0;
BEGIN
  CREATE TEMP TABLE mine (id bigint, g text, n int, receipt text);
  LOOP
    EXIT WHEN (SELECT producers FROM done) = $producers
          AND (SELECT count(*) FROM acked) >= (SELECT count(*) FROM sent);
    TRUNCATE mine;
    INSERT INTO mine
      SELECT id, message->>'g', (message->>'n')::int, receipt
        FROM mq.receive('gt', 1 + floor(random() * 4)::int, visibility_timeout => '60 seconds',
                        per_group => 1 + floor(random() * 4)::int);
    b := nextval('batches');
    INSERT INTO deliveries SELECT id, g, n, '$who', b, NULL FROM mine;
    COMMIT;
    IF NOT EXISTS (SELECT 1 FROM mine) THEN
      idle := idle + 1;
      EXIT WHEN idle > 2000;
      PERFORM pg_sleep(0.005);
      CONTINUE;
    END IF;
    idle := 0;
    FOR m IN SELECT * FROM mine ORDER BY random() LOOP
      PERFORM pg_sleep(random() * 0.01);
      IF random() < 0.125 THEN
        UPDATE deliveries SET how = 'nack' WHERE id = m.id AND batch = b;
        PERFORM mq.nack('gt', m.id, delay => '0', receipt => m.receipt);
      ELSIF mq.ack('gt', m.id, m.receipt) THEN
        UPDATE deliveries SET how = 'ack' WHERE id = m.id AND batch = b;
        INSERT INTO acked VALUES (m.id, m.g, m.n, '$who');
      END IF;
      COMMIT;
    END LOOP;
  END LOOP;
END \$\$;
});
}

# VACUUM of the backlog in a loop, and now and then a row of it updated by
# hand (a new version, elsewhere on the page or on another one)
my $chores = join('', map {
	"VACUUM mq.b_gt;\n"
	  . ($_ % 3 == 0
		? "UPDATE mq.b_gt SET headers = headers WHERE id = (SELECT id FROM mq.b_gt ORDER BY random() LIMIT 1);\n"
		: '')
	  . "SELECT pg_sleep(0.003);\n"
} 1 .. 600);

my @conn = ('-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'));
my @runs;
my $t0 = time();
for my $i (1 .. $producers)
{
	push @runs, mq_psql_start($node, "p$i", '-c', $producer_sql);
}
for my $i (1 .. $consumers)
{
	push @runs, mq_psql_start($node, "c$i", consumer_sql("c$i"));
}
# (from a file: a scalar fed to stdin only goes in while its harness is pumped)
my $dir = PostgreSQL::Test::Utils::tempdir();
PostgreSQL::Test::Utils::append_to_file("$dir/chores.sql", $chores);
my $vacuum = IPC::Run::start([ 'psql', @conn, '-f', "$dir/chores.sql" ],
	'>', "$dir/chores.out", '2>', "$dir/chores.err");

for my $run (@runs)
{
	my ($name, $h, $o, $e) = @$run;
	my $ok = eval { $h->finish; 1 };
	ok($ok && $h->result == 0, "$name finished cleanly") or diag("$name: $$e");
}
$vacuum->kill_kill;
my $chores_err = PostgreSQL::Test::Utils::slurp_file("$dir/chores.err");
is($chores_err, '', 'VACUUM and the updates by hand ran without error');
note(sprintf('all sessions done in %.1f s', time() - $t0));

my $sent = q1("SELECT count(*) FROM sent");
ok($sent > 300, "messages sent and committed ($sent)");
is(q1("SELECT count(*) FROM sent s WHERE NOT EXISTS (SELECT 1 FROM acked a WHERE a.id = s.id)"),
	'0', 'none lost: every committed message was acked');
is(q1("SELECT count(*) - count(DISTINCT id) FROM acked"), '0', 'none acked twice');
is(q1("SELECT count(*) FROM deliveries d WHERE NOT EXISTS (SELECT 1 FROM sent s WHERE s.id = d.id)"),
	'0', 'no message of a rolled back send was delivered');
is( q1(
		"SELECT count(*) FROM (
		   SELECT g, n, first, max(first) OVER (PARTITION BY g ORDER BY n
		                                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
		     FROM (SELECT g, n, min(batch) AS first FROM deliveries GROUP BY g, n) f) s
		  WHERE first < before"),
	'0', 'within each group, no message was first delivered before one sent before it');
ok(q1("SELECT count(*) FROM deliveries WHERE how = 'nack'") > 0, 'some deliveries were nacked');
ok(q1("SELECT count(*) FROM deliveries GROUP BY batch, g HAVING count(*) > 1 LIMIT 1") ne '',
	'some deliveries were runs');
is( q1("SELECT (SELECT count(*) FROM mq.q_gt) + (SELECT count(*) FROM mq.w_gt)
             + (SELECT count(*) FROM mq.g_gt) + (SELECT count(*) FROM mq.b_gt)"),
	'0', 'the queue\'s tables, group tables included, are empty');

$node->stop;
done_testing();
