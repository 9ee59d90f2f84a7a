
# Copyright: mq authors; PostgreSQL License.
#
# Queues survive pg_dump / pg_restore: the catalog, ready, delayed and
# in-flight messages, dead letters, dedup keys, the archive and the id
# sequence come back, and the restored queues work.  DROP EXTENSION mq
# removes queue tables without CASCADE.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump_restore');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'mq'");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('postgres', 'CREATE DATABASE dst');

sub src { return $node->safe_psql('src', $_[0]); }
sub dst { return $node->safe_psql('dst', $_[0]); }

src("CREATE EXTENSION mq");
src("SELECT mq.create_queue('jobs_dead')");
src("SELECT mq.create_queue('jobs', max_attempts => 2, dead_letter_queue => 'jobs_dead',
                            retention => '1 day')");
src("SELECT mq.create_queue('plain', max_attempts => 1)");
src("SELECT count(*) FROM mq.send_batch('jobs',
       (SELECT array_agg(jsonb_build_object('i', i)) FROM generate_series(1, 20) i))");
src("SELECT mq.send('jobs', '{\"later\": true}', delay => '1 day')");
src("SELECT mq.send('jobs', '{\"k\": 1}', dedup_key => 'key-1', priority => 3)");
# 5 in flight, 2 acked (archived)
src("SELECT count(*) FROM mq.receive('jobs', 5)");
src("SELECT mq.ack('jobs', id) FROM (SELECT id FROM mq.w_jobs WHERE leased ORDER BY id LIMIT 2) s");
# one dead letter in the table
src("SELECT mq.send('plain', '{\"bad\": true}')");
src("SELECT mq.nack('plain', id, error => 'boom') FROM mq.receive('plain')");

my $state_sql = q{
  SELECT concat_ws('|',
    (SELECT string_agg(queue || ':' || max_attempts || ':' || coalesce(dead_letter_queue, '-')
                       || ':' || coalesce(retention::text, '-'), ',' ORDER BY queue) FROM mq.queues),
    (SELECT count(*) FROM mq.q_jobs), (SELECT count(*) FROM mq.w_jobs WHERE leased),
    (SELECT count(*) FROM mq.w_jobs WHERE NOT leased),
    (SELECT count(*) FROM mq.dead_letters), (SELECT count(*) FROM mq.archive),
    (SELECT count(*) FROM mq.dedup_keys),
    (SELECT string_agg(m::text, ',') FROM (SELECT ready || '/' || in_flight || '/' || delayed || '/' || dead AS m
                                            FROM mq.metrics() ORDER BY queue) s))
};
my $before = src($state_sql);
is($before, 'jobs:2:jobs_dead:1 day,jobs_dead:5:-:-,plain:1:-:-|16|3|1|1|2|1|16/3/1/0,0/0/0/0,0/0/0/1',
	'source state as built');
my $max_id = src("SELECT max(id) FROM (SELECT id FROM mq.q_jobs UNION ALL SELECT id FROM mq.w_jobs
                   UNION ALL SELECT id FROM mq.dead_letters) s");

my $dump = $node->basedir . '/src.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('src'), '-f', $dump ], 'pg_dump');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('dst'), $dump ],
	'pg_restore');

is(dst($state_sql), $before, 'catalog, messages, dead letters, archive and dedup keys restored');

# the restored queues work, and new ids do not collide with restored ones
my $new_id = dst("SELECT mq.send('jobs', '{\"new\": true}')");
cmp_ok($new_id, '>', $max_id, 'the id sequence continues after the restored ids');
is(dst("SELECT mq.send('jobs', '{\"k\": 2}', dedup_key => 'key-1') = id FROM mq.dedup_keys WHERE dedup_key = 'key-1'"),
	't', 'a restored dedup key still deduplicates');
dst("SELECT mq.send('jobs', '{\"p\": 9}', priority => 9)");
is(dst("SELECT string_agg(message::text, ',') FROM mq.receive('jobs', 3)"),
	'{"p": 9},{"i": 5},{"i": 6}', 'restored and new messages are received in priority order');
is(dst("SELECT mq.redrive('plain')"), '1', 'a restored dead letter can be redriven');

# After the restore too (issue 11, item 10): the restored tables got their
# dependency on the extension back at their first use above.
is(dst("SELECT count(*) FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
         WHERE d.refclassid = 'pg_extension'::regclass AND c.relname ~ '^[qw]_(jobs|jobs_dead|plain)\$'"),
	'6', 'restored queue tables depend on the extension again');
dst("DROP EXTENSION mq");
is(dst("SELECT count(*) FROM pg_class WHERE relname ~ '^[qw]_(jobs|jobs_dead|plain)\$'"), '0',
	'DROP EXTENSION mq removed the restored queue tables');

# DROP EXTENSION without CASCADE removes the queue tables
src("DROP EXTENSION mq");
is(src("SELECT count(*) FROM pg_class WHERE relname ~ '^[qw]_(jobs|jobs_dead|plain)\$'"), '0',
	'DROP EXTENSION mq removed the queue tables');
src("CREATE EXTENSION mq");
is(src("SELECT mq.create_queue('jobs')"), 't', 'the extension can be created again');
is(src("SELECT count(*) FROM mq.receive('jobs')"), '0', 'and starts empty');

$node->stop;
done_testing();
