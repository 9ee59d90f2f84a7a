
# Copyright: mq authors; PostgreSQL License.
#
# Many queues, most of them idle (issue 16, W11): the background worker's
# pass costs what the queues with something due cost, found in shared
# memory, not one transaction per queue.
#
# Part 1: with N idle queues (MQ_MANY_QUEUES, default 200), once the worker
#   has seen them all, its passes run no transaction per queue: the
#   database's xact_commit grows by a few per pass, not by N.  (The code
#   before this visited every queue at every pass: N per pass.)
# Part 2: what the worker must still do in otherwise idle queues, found
#   from shared state: a delayed message comes due and is made ready, an
#   expired lease of the last attempt is dead-lettered, archived messages
#   past retention are deleted, with no client call; and after a restart
#   (shared memory empty, entries made lazily) the same, found by the
#   worker's first pass over the catalog.
# Part 3: creating N queues (one per statement), using each (its shared
#   entry), and dropping them all leaves shared memory where it started
#   (pg_shmem_allocations, every row) and every entry free (mq.max_queues
#   = N + 10: N + 10 new queues get one each).
# Part 4: a backend keeps the kept plans of at most mq.cached_queues
#   queues; a queue evicted and used again in the same transaction works;
#   a backend that touched 200 queues holds far less memory with a small
#   bound than without.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;
use Time::HiRes qw(time usleep);

my $N = $ENV{MQ_MANY_QUEUES} // 200;
my $MAXQ = $N + 10;

my $node = mq_node('many', qq{
mq.max_queues = $MAXQ
mq.worker_naptime = '200ms'
max_locks_per_transaction = 128
});

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub shmem
{
	return sql("SELECT string_agg(coalesce(name, '<free>') || '=' || allocated_size, ',' ORDER BY name)"
		  . " FROM pg_shmem_allocations");
}

sub passes { return sql('SELECT coalesce(max(passes), 0) FROM mq.workers'); }

# xact_commit of the database and passes of its worker over $secs seconds
sub idle_cost
{
	my ($secs) = @_;
	my $q = "SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'";
	sql('SELECT pg_stat_clear_snapshot()');
	my ($x0, $p0) = (sql($q), passes());
	usleep($secs * 1_000_000);
	my ($x1, $p1) = (sql($q), passes());
	# our own two statements above are transactions too
	return ($x1 - $x0 - 2, $p1 - $p0);
}

my $shmem0 = shmem();

sql('CREATE EXTENSION mq');
ok(wait_for(sub { sql('SELECT count(*) FROM mq.workers') eq '1' }, 10), 'the worker runs');

# one queue per statement
my $script = join('', map { sprintf("SELECT mq.create_queue('idle_%04d');\n", $_) } 1 .. $N);
$node->safe_psql('postgres', $script);
is(sql('SELECT count(*) FROM mq.queue_catalog'), $N, "$N queues created");

# =========================================================================
# Part 1: idle queues cost no transaction each
# =========================================================================

# the worker has seen every queue once (its shared entry exists) when its
# passes go on after the creations
my $p0 = passes();
ok(wait_for(sub { passes() >= $p0 + 3 }, 60), 'the worker makes passes') or diag(passes());
my ($xacts, $passes) = idle_cost(2);
ok($passes >= 3, "the worker made $passes passes in 2 s");
ok($xacts <= 3 * $passes + 5,
	"$N idle queues: $xacts transactions in $passes passes (a few per pass, none per queue)")
  or diag("xact_commit grew by $xacts in $passes passes");

# =========================================================================
# Part 2: due work in otherwise idle queues, before and after a restart
# =========================================================================

sub due_work
{
	my ($tag) = @_;
	sql("SELECT mq.create_queue('${tag}_delayed')");
	sql("SELECT mq.create_queue('${tag}_lease', max_attempts => 1)");
	sql("SELECT mq.create_queue('${tag}_kept', retention => '1 s')");
	sql("SELECT mq.send('${tag}_delayed', '{\"n\": 1}', delay => '2 s')");
	sql("SELECT mq.send('${tag}_lease', '{\"n\": 2}')");
	is(sql("SELECT count(*) FROM mq.receive('${tag}_lease', visibility_timeout => '2 s')"), '1',
		"$tag: a message leased for 2 s, its last attempt");
	sql("SELECT mq.send('${tag}_kept', '{\"n\": 3}')");
	is(sql("SELECT count(*) FROM (SELECT mq.ack('${tag}_kept', id) FROM mq.receive('${tag}_kept')) a"),
		'1', "$tag: a message acked into the archive (retention 1 s)");
	is(sql("SELECT count(*) FROM mq.q_${tag}_delayed"), '0', "$tag: the delayed message is not ready yet");
}

sub due_done
{
	my ($tag, $when) = @_;
	ok(wait_for(sub { sql("SELECT count(*) FROM mq.q_${tag}_delayed") eq '1' }, 30),
		"$tag: $when, the worker makes the delayed message ready, with no client call");
	ok(wait_for(sub { sql("SELECT count(*) FROM mq.dead_letters WHERE queue = '${tag}_lease'") eq '1' }, 30),
		"$tag: $when, the worker dead-letters the expired lease of the last attempt");
	ok(wait_for(sub { sql("SELECT count(*) FROM mq.archive WHERE queue = '${tag}_kept'") eq '0' }, 30),
		"$tag: $when, the worker deletes the archived message past its retention");
}

due_work('live');
due_done('live', 'without restart');

due_work('rs');
$node->stop('fast');
$node->start;
due_done('rs', 'after a restart');

$p0 = passes();
ok(wait_for(sub { passes() >= $p0 + 3 }, 60), 'after the restart, the worker makes passes');
($xacts, $passes) = idle_cost(2);
ok($xacts <= 3 * $passes + 5,
	"after the restart, idle again: $xacts transactions in $passes passes")
  or diag("xact_commit grew by $xacts in $passes passes");

# =========================================================================
# Part 3: create, use, drop: shared memory where it started, entries free
# =========================================================================

$node->safe_psql('postgres',
	join('', map { sprintf("SELECT mq.drop_queue('%s');\n", $_) }
		  split(/\n/, sql('SELECT queue FROM mq.queue_catalog ORDER BY queue'))));
sql('DROP EXTENSION mq');
is(shmem(), $shmem0, "after $N queues created, used and dropped, pg_shmem_allocations is as it was");

sql('CREATE EXTENSION mq');
$script = join('', map { sprintf("SELECT mq.create_queue('new_%04d');\nSELECT mq.send('new_%04d', '{}');\n", $_, $_) } 1 .. $MAXQ);
my ($rc, $out, $err) = $node->psql('postgres', $script, on_error_stop => 1);
is($rc, 0, "all $MAXQ entries (mq.max_queues) are free again: $MAXQ new queues each get one")
  or diag($err);
($rc, $out, $err) = $node->psql('postgres',
	"SELECT mq.create_queue('one_more'); SELECT mq.send('one_more', '{}');");
like($err, qr/too many queues in use/, 'and one more fails with 53400');

# =========================================================================
# Part 4: a backend keeps the plans of at most mq.cached_queues queues
# =========================================================================

sql('DROP EXTENSION mq');
sql('CREATE EXTENSION mq');
sql("SELECT mq.create_queue('lru_' || i) FROM generate_series(1, 200) i");

# eviction between calls of one statement and of one transaction: a queue
# evicted and used again in the same transaction works
is($node->safe_psql('postgres', q{
SET mq.cached_queues = 2;
BEGIN;
SELECT count(mq.send('lru_' || i, jsonb_build_object('n', i))) FROM generate_series(1, 6) i;
SELECT string_agg((SELECT (message->>'n') FROM mq.receive('lru_' || i)), ',' ORDER BY i)
  FROM generate_series(1, 6) i;
SELECT count(mq.send('lru_' || i, jsonb_build_object('n', i))) FROM generate_series(6, 1, -1) i;
SELECT sum(n) FROM (SELECT mq.ack('lru_' || i, id)::int AS n
                      FROM generate_series(1, 6) i, mq.receive('lru_' || i)) a;
COMMIT;
SELECT sum(ready) || '/' || sum(in_flight) FROM mq.metrics() WHERE queue LIKE 'lru_%';
}), "6
1,2,3,4,5,6
6
6
0/6",
	'mq.cached_queues = 2: six queues used in turn in one transaction, each evicted and used again, all correct');

# memory of a backend that touched 200 queues (send, receive, ack each)
sub touched_memory
{
	my ($cached) = @_;
	return $node->safe_psql('postgres', qq{
SET mq.cached_queues = $cached;
SELECT count(*) FROM (SELECT mq.ack('lru_' || i, (SELECT id FROM mq.receive('lru_' || i)))
                        FROM generate_series(1, 200) i, LATERAL (SELECT mq.send('lru_' || i, '{}')) s) a;
SELECT sum(total_bytes) FROM pg_backend_memory_contexts;
}) =~ s/.*\n//sr;
}
my $unbounded = touched_memory(1000000);
my $bounded = touched_memory(20);
ok($bounded < $unbounded / 2,
	"after touching 200 queues, a backend with mq.cached_queues = 20 holds $bounded bytes, one without bound $unbounded")
  or diag("bounded $bounded, unbounded $unbounded");

$node->stop;
done_testing();
