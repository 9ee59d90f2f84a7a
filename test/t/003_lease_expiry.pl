
# Copyright: mq authors; PostgreSQL License.
#
# Expired leases count as failed attempts: the message comes back after the
# backoff, and once max_attempts are used it is dead-lettered (into
# mq.dead_letters, or into the queue's dead_letter_queue).  No background
# worker runs here: receive and mq.maintain() drive it.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('lease_expiry');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'mq'");
$node->start;

sub q1
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', $sql);
}

# lease 200 ms; backoff after attempt 1 is 50..100 ms (100 ms with jitter)
my $opts = "max_attempts => 2, visibility_timeout => '200 ms', retry_delay => '100 ms'";
q1("CREATE EXTENSION mq");
q1("SELECT mq.create_queue('le', $opts)");
q1("SELECT mq.create_queue('le_dlq')");
q1("SELECT mq.create_queue('le_routed', $opts, dead_letter_queue => 'le_dlq')");
q1("SELECT mq.create_queue('le_maint', $opts)");

sub expire { usleep(400_000); }    # past a 200 ms lease plus 100 ms backoff

# --- receive drives it; no dead_letter_queue --------------------------------
my $id = q1("SELECT mq.send('le', '{\"job\": 1}', headers => '{\"h\": 1}')");
is( q1(
		"SELECT concat_ws('|', r.id = $id, r.attempt) FROM mq.receive('le') r;
		 SELECT count(*) FROM mq.receive('le');"),
	"t|1\n0",
	'receive: attempt 1, then nothing while the lease lasts');
expire();
is(q1("SELECT concat_ws('|', r.id = $id, r.attempt, r.message) FROM mq.receive('le') r"),
	't|2|{"job": 1}', 'after lease and backoff: the same message as attempt 2');
expire();
is(q1("SELECT count(*) FROM mq.receive('le')"), '0',
	'after the last lease ended: receive returns nothing');
is( q1(
		"SELECT concat_ws('|', id = $id, attempts, message, headers, last_error IS NULL)
		   FROM mq.dead_letters WHERE queue = 'le'"),
	't|2|{"job": 1}|{"h": 1}|t',
	'the message is in mq.dead_letters with attempts 2');
is(q1("SELECT concat_ws('|', ready, in_flight, delayed, dead, total_dead_lettered) FROM mq.metrics('le')"),
	'0|0|0|1|1', 'metrics: dead 1, nothing else');
is(q1("SELECT (SELECT count(*) FROM mq.q_le) + (SELECT count(*) FROM mq.w_le)"),
	'0', 'the queue tables are empty');

# --- with a dead_letter_queue ---------------------------------------------
$id = q1("SELECT mq.send('le_routed', '{\"job\": 2}', headers => '{\"h\": 2}')");
is(q1("SELECT attempt FROM mq.receive('le_routed')"), '1', 'routed: attempt 1');
expire();
is(q1("SELECT attempt FROM mq.receive('le_routed')"), '2', 'routed: attempt 2');
expire();
is(q1("SELECT count(*) FROM mq.receive('le_routed')"), '0',
	'routed: nothing after the last lease ended');
is(q1("SELECT count(*) FROM mq.dead_letters WHERE queue = 'le_routed'"), '0',
	'routed: nothing in mq.dead_letters');
is( q1(
		"SELECT concat_ws('|', r.message, r.attempt, r.headers->'h',
		                  r.headers->'mq_dead_letter'->>'queue',
		                  (r.headers->'mq_dead_letter'->>'id')::bigint = $id,
		                  r.headers->'mq_dead_letter'->>'attempts')
		   FROM mq.receive('le_dlq', 10) r"),
	'{"job": 2}|1|2|le_routed|t|2',
	'routed: a new message in le_dlq, headers keep the original and carry mq_dead_letter {queue, id, attempts}');
is(q1("SELECT concat_ws('|', ready, in_flight, delayed, dead, total_dead_lettered) FROM mq.metrics('le_routed')"),
	'0|0|0|0|1', 'routed: metrics of the source queue');

# --- mq.maintain() drives it (no receive after the first) --------------------
$id = q1("SELECT mq.send('le_maint', '{\"job\": 3}')");
is(q1("SELECT attempt FROM mq.receive('le_maint')"), '1', 'maintain: attempt 1');
expire();
q1("SELECT mq.maintain()");
is( q1(
		"SELECT concat_ws('|', (SELECT count(*) FROM mq.q_le_maint), (SELECT count(*) FROM mq.w_le_maint))"),
	'1|0', 'maintain: the expired lease went back to the ready table');
is(q1("SELECT attempt FROM mq.receive('le_maint')"), '2', 'maintain: received as attempt 2');
expire();
q1("SELECT mq.maintain()");
is(q1("SELECT concat_ws('|', id = $id, attempts) FROM mq.dead_letters WHERE queue = 'le_maint'"),
	't|2', 'maintain: dead-lettered with attempts 2 without any receive');
is(q1("SELECT concat_ws('|', ready, in_flight, delayed, dead) FROM mq.metrics('le_maint')"),
	'0|0|0|1', 'maintain: metrics');

$node->stop;
done_testing();
