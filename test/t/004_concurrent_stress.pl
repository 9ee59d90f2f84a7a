
# Copyright: mq authors; PostgreSQL License.
#
# Randomised concurrency: pgbench clients send (three priorities, so three
# lanes), receive+ack and pop at the same time, and a fifth of their
# transactions roll back (some only to a savepoint).  Each client records
# what it sent and what it consumed in the same transaction, so a rollback
# undoes the record too.  Afterwards every committed message must have been
# consumed exactly once: none lost (behind a lane head, say), none twice.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('stress');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'mq'\nmax_connections = 40");
$node->start;

sub q1
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', $sql);
}

q1("CREATE EXTENSION mq");
# Rolled-back deliveries count as attempts: enough of them that none of the
# consumers' rollbacks dead-letters a message.
q1("SELECT mq.create_queue('s', visibility_timeout => '1 hour', max_attempts => 1000)");
q1("CREATE TABLE sent (id bigint)");
q1("CREATE TABLE got (id bigint, how text)");
# a head start, so consumers have something from the beginning
q1("INSERT INTO sent SELECT mq.send('s', jsonb_build_object('p', g % 3), priority => g % 3) FROM generate_series(1, 500) g");

my $end = q(
\set rb random(1, 5)
\if :rb = 1
ROLLBACK;
\else
COMMIT;
\endif
);

my %scripts = (
	'mq_send@3' => q(
\set p random(0, 2)
\set k random(1, 5)
BEGIN;
INSERT INTO sent SELECT mq.send('s', jsonb_build_object('p', :p), priority => :p) FROM generate_series(1, :k);
) . $end,
	'mq_receive_ack@4' => q(
\set q random(1, 20)
BEGIN;
WITH r AS (SELECT id FROM mq.receive('s', :q)),
     ins AS (INSERT INTO got SELECT id, 'receive' FROM r RETURNING id)
SELECT mq.ack('s', array(SELECT id FROM ins));
) . $end,
	'mq_pop@2' => q(
\set q random(1, 10)
BEGIN;
INSERT INTO got SELECT id, 'pop' FROM mq.pop('s', :q);
) . $end,
	'mq_savepoint@1' => q(
\set q random(1, 10)
BEGIN;
WITH r AS (SELECT id FROM mq.receive('s', :q)),
     ins AS (INSERT INTO got SELECT id, 'receive' FROM r RETURNING id)
SELECT mq.ack('s', array(SELECT id FROM ins));
SAVEPOINT sp;
WITH r AS (SELECT id FROM mq.receive('s', :q)),
     ins AS (INSERT INTO got SELECT id, 'receive' FROM r RETURNING id)
SELECT mq.ack('s', array(SELECT id FROM ins));
ROLLBACK TO SAVEPOINT sp;
COMMIT;
),);

$node->pgbench(
	'--no-vacuum --client=12 --jobs=4 --time=10',
	0,
	[qr{processed: [1-9]}],
	[qr{^$}],
	'pgbench: concurrent send / receive+ack / pop with rollbacks',
	\%scripts);

my $counts = q1("SELECT concat_ws('|', (SELECT count(*) FROM sent), (SELECT count(*) FROM got))");
note("during the run: sent|consumed = $counts");

# Drain what is left.
my $drained = 0;
for (1 .. 1000)
{
	my $n = q1(
		"WITH r AS (SELECT id FROM mq.receive('s', 1000)),
		      ins AS (INSERT INTO got SELECT id, 'drain' FROM r RETURNING id)
		 SELECT mq.ack('s', array(SELECT id FROM ins))");
	last if $n == 0;
	$drained += $n;
}
note("drained $drained");

is(q1("SELECT count(*) - count(DISTINCT id) FROM got"), '0', 'no message consumed twice');
is(q1("SELECT count(*) FROM sent WHERE id NOT IN (SELECT id FROM got)"), '0',
	'every committed message was consumed (none lost)');
is(q1("SELECT count(*) FROM got WHERE id NOT IN (SELECT id FROM sent)"), '0',
	'nothing consumed that was not sent and committed');
is(q1("SELECT concat_ws('|', ready, in_flight, delayed, dead) FROM mq.metrics('s')"),
	'0|0|0|0', 'gauges: the queue is empty');
is(q1("SELECT (SELECT count(*) FROM mq.q_s) + (SELECT count(*) FROM mq.w_s)"), '0',
	'the queue tables are empty');
is( q1(
		"SELECT concat_ws('|', total_sent = (SELECT count(*) FROM sent), total_acked = (SELECT count(*) FROM got))
		   FROM mq.metrics('s')"),
	't|t', 'totals match what was committed');

# The same for totals, deterministically: work undone by ROLLBACK TO
# SAVEPOINT is not counted.
q1("SELECT mq.create_queue('sp')");
q1("SELECT mq.send('sp', '{}') FROM generate_series(1, 3)");
q1(<<'SQL');
BEGIN;
SAVEPOINT s;
SELECT mq.ack('sp', array_agg(id)) FROM mq.receive('sp', 3);
SELECT mq.send('sp', '{}');
ROLLBACK TO SAVEPOINT s;
COMMIT;
SQL
is(q1("SELECT concat_ws('|', ready, in_flight, total_sent, total_acked) FROM mq.metrics('sp')"),
	'3|0|3|0', 'a receive+ack and a send rolled back to a savepoint do not count in the totals');

$node->stop;
done_testing();
