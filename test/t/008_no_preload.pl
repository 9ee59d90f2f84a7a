
# Copyright: mq authors; PostgreSQL License.
#
# Without shared_preload_libraries everything still works: sends, receives,
# retries and dead letters (receive does them itself), dedup, topics,
# metrics (counted from the tables, totals NULL), maintain, and a blocking
# receive (which then looks again every 50 ms).  Nothing needs a worker.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = PostgreSQL::Test::Cluster->new('no_preload');
$node->init;
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

is(sql("SHOW shared_preload_libraries"), '', 'mq is not preloaded');
sql("CREATE EXTENSION mq");
is(sql("SELECT count(*) FROM mq.workers"), '0', 'no workers without preload');

sql("SELECT mq.create_queue('np', max_attempts => 2, visibility_timeout => '200 ms',
                            retry_delay => '50 ms')");
my $id = sql("SELECT mq.send('np', '{\"n\": 1}', dedup_key => 'k')");
is(sql("SELECT mq.send('np', '{\"n\": 2}', dedup_key => 'k')"), $id, 'dedup works');
sql("SELECT mq.send('np', '{\"n\": 3}', priority => 5)");
is(sql("SELECT string_agg(message->>'n', ',') FROM mq.receive('np', 10)"), '3,1',
	'receive in priority order');
is(sql("SELECT concat_ws('|', ready, in_flight, delayed, dead, total_sent IS NULL) FROM mq.metrics('np')"),
	'0|2|0|0|t', 'metrics count from the tables; totals are NULL without preload');

# leases expire, retry, and dead-letter with nothing but receive
usleep(400_000);
is(sql("SELECT string_agg(message->>'n' || ':' || attempt, ',') FROM mq.receive('np', 10)"),
	'3:2,1:2', 'expired leases come back as attempt 2');
usleep(400_000);
is(sql("SELECT count(*) FROM mq.receive('np', 10)"), '0', 'then nothing');
is(sql("SELECT count(*) FROM mq.dead_letters WHERE queue = 'np'"), '2',
	'both dead-lettered by receive itself');
is(sql("SELECT mq.redrive('np')"), '2', 'redrive');
is(sql("SELECT count(*) FROM mq.receive('np', 10)"), '2', 'redriven messages are received');

# topics
sql("SELECT mq.create_queue('np2')");
sql("SELECT mq.subscribe('np2', 'a.#')");
is(sql("SELECT mq.publish('a.b', '{}')"), '1', 'publish delivers');

# delayed messages and maintain
sql("SELECT mq.send('np2', '{\"d\": 1}', delay => '200 ms')");
usleep(300_000);
ok(sql("SELECT mq.maintain()") >= 1, 'maintain promotes the due message');
is(sql("SELECT count(*) FROM mq.receive('np2', 10)"), '2', 'both are received');

# a blocking receive still works, by looking again
my $t0 = time();
is(sql("SELECT count(*) FROM mq.receive('np2', 1, wait => '300 ms')"), '0',
	'a blocking receive on an empty queue returns no rows');
my $elapsed = time() - $t0;
ok($elapsed >= 0.3 && $elapsed < 5, "after its wait ($elapsed s)");
sql("SELECT mq.send('np2', '{\"late\": 1}', delay => '300 ms')");
is(sql("SELECT string_agg(message->>'late', ',') FROM mq.receive('np2', 1, wait => '10 s')"), '1',
	'and receives a message that comes due while it waits');

# prometheus text has no counters without preload
unlike(sql("SELECT mq.metrics_prometheus()"), qr/mq_sent_total/, 'no totals in the Prometheus text');
like(sql("SELECT mq.metrics_prometheus()"), qr/mq_ready\{queue="np"\} \d+\n/, 'gauges are there');

$node->stop;
done_testing();
