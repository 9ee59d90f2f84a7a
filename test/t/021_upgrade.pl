
# Copyright: mq authors; PostgreSQL License.
#
# Issue 9, "Upgrade": ALTER EXTENSION mq UPDATE from 0.1 to 0.2 moves
# existing queues to the new ownership and privileges, and loses nothing.
#
# mq 0.1 is installed for real: the 0.1 C library is built from git history
# (commit 6299253, the last 0.1 commit) and preloaded, and queues are filled
# with it: ready, delayed and in-flight messages, dead letters (in a
# dead-letter queue and in mq.dead_letters), an archive (retention), a dedup
# key, topic subscriptions, and a queue created by a non-superuser role
# ("tenant") that was given the rights 0.1 needed for that (USAGE and CREATE
# on schema mq, EXECUTE, table grants); a role "app" got the README recipe of
# 0.1 (table grants on everything in schema mq), plus default privileges for
# tables created later.  Then the server restarts with the new library.
#
# Part A: a tenant-planted trigger on one of its queue tables (it would run
# as the extension owner after the update) makes the update fail with the
# script's error naming the table, and nothing changes (version, owners,
# grants, rows); once the trigger is gone the update works.
# Part B, after the update: every queue table is owned by the extension
# owner; tenant is recorded as the owner of its queue and holds every
# privilege on it (send, receive, observe, manage), and nothing on the other
# queues; no role keeps a table or sequence grant of the 0.1 recipe, nor
# CREATE on schema mq, and a queue created after the update grants nothing
# to them; all messages are still there: ready ones received by a role
# granted receive with mq.grant and by the superuser, in-flight ones acked,
# delayed ones still delayed (and a short delay comes due); the dedup key
# still deduplicates; dead letters are visible through mq.dead_letters to
# observers of their queue only, and redrive works; the archive is kept;
# subscriptions still route publishes; metrics (gauges and totals) are the
# same as before the update, and count the work done after it exactly.
# Part C (issue 9 item 1 through the update): other code tenant attached to
# its 0.1 queue tables (CHECK constraint, expression index, column default,
# child table with a trigger, expression statistics) must not survive the
# update in a form that runs as the extension owner: the update refuses it,
# or nothing of it runs afterwards (tenant's rolsuper stays false).
# Part D: the update works while an administrator's view depends on
# mq.queues and mq.subscriptions (the script must not need to drop them).
# Part E (issue 9 item 2 through the update): functions tenant created in
# schema mq in 0.1 (it had CREATE there) with the signatures that capture an
# administrator's mq.grant / mq.grant_create calls after the update: the
# update refuses, or those calls reach mq and run no code of tenant.
#
# How the 0.1 library is loaded: functions of a 0.1 install point at
# '$libdir/mq' (the installed, new library), so the old one is reached by
# pointing their probin at 'mq' (found through dynamic_library_path, where
# the old build comes first) while 0.1 runs, and back at '$libdir/mq'
# before the update.  Skipped (with the reason) when the git history or a
# build of commit 6299253 is not available: tools/test.sh passes the
# original tree as MQ_REPO_ROOT.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);
use Cwd qw(realpath);

my $old_commit = '6299253';

# ---- the 0.1 library, built from git history ------------------------------

my @git = ('git', '-c', 'safe.directory=*');
my $repo;
for my $cand ($ENV{MQ_REPO_ROOT}, $ENV{MQ_SRCDIR}, '..', '.')
{
	next unless defined $cand && -d $cand;
	my ($out, $err) = ('', '');
	my $ok = eval {
		IPC::Run::run([ @git, '-C', $cand, 'rev-parse', '-q', '--verify', "$old_commit^{commit}" ],
			'>', \$out, '2>', \$err);
	};
	if ($ok)
	{
		$repo = $cand;
		last;
	}
}
plan skip_all => "no git history with commit $old_commit (mq 0.1) found in MQ_REPO_ROOT, "
  . "MQ_SRCDIR or the parent directory; run from a clone with its history"
  unless defined $repo;

my $old_dir = PostgreSQL::Test::Utils::tempdir('mq01');
my $pg_config = $ENV{PG_CONFIG} // 'pg_config';
{
	my ($err1, $err2, $build_log) = ('', '', '');
	my $t0 = time();
	my $ok = eval {
		IPC::Run::run([ @git, '-C', $repo, 'archive', $old_commit ], '2>', \$err1,
			'|', [ 'tar', '-x', '-C', $old_dir ], '2>', \$err2);
	};
	plan skip_all => "could not extract commit $old_commit from $repo: $err1 $err2 $@"
	  unless $ok;
	$ok = eval {
		IPC::Run::run([ 'make', '-C', $old_dir, '-j2', "PG_CONFIG=$pg_config", 'mq.so' ],
			'>&', \$build_log);
	};
	if (!$ok || !-f "$old_dir/mq.so")
	{
		my @tail = (split /\n/, $build_log)[-15 .. -1];
		plan skip_all => "could not build the 0.1 library (commit $old_commit) with $pg_config: "
		  . join(' / ', grep { defined } @tail);
	}
	note sprintf('built the 0.1 library from %s in %.1f s', $repo, time() - $t0);
}

# ---- a 0.1 installation -------------------------------------------------

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', "mq.worker_enabled = off");
$node->start;

# sql(query[, user[, database]]): output of a statement that must succeed
sub sql
{
	my ($query, $user, $db) = @_;
	return $node->safe_psql($db // 'postgres', $query,
		defined $user ? (extra_params => [ '-U', $user ]) : ());
}

# (exit status, stdout, stderr) of a statement that may fail
sub try_sql
{
	my ($query, $user, $db) = @_;
	my ($out, $err) = ('', '');
	my $rc = $node->psql($db // 'postgres', $query, stdout => \$out, stderr => \$err,
		on_error_stop => 1, defined $user ? (extra_params => [ '-U', $user ]) : ());
	return ($rc, $out, $err);
}

# Code a tenant can attach to a table it owns (0.1 queue tables are the
# creator's): harmless while it runs as tenant, it makes tenant a superuser
# as soon as a superuser runs it.  iboom is an IMMUTABLE wrapper, as index
# and statistics expressions need.
my $boom_sql = q{
  CREATE FUNCTION tenant.boom() RETURNS boolean LANGUAGE plpgsql AS $$
  BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
      EXECUTE 'ALTER ROLE tenant SUPERUSER';
    END IF;
    RETURN true;
  END $$;
  CREATE FUNCTION tenant.tboom() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM tenant.boom();
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  END $$;
  CREATE FUNCTION tenant.iboom(bigint) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$
  BEGIN
    PERFORM tenant.boom();
    RETURN $1;
  END $$;
};

# The install script of 0.1 (kept in sql/ and installed by the new build)
# runs here without mq preloaded: its C functions are validated against the
# installed library, as a real 0.1 install was against its own.  Then they
# are pointed at 'mq', which dynamic_library_path resolves to the 0.1 build.
sql("CREATE EXTENSION mq VERSION '0.1'");
is(sql("SELECT extversion FROM pg_extension WHERE extname = 'mq'"), '0.1', 'mq 0.1 installed');
sql(q{UPDATE pg_proc SET probin = 'mq' WHERE probin = '$libdir/mq'});

# Roles: tenant creates queues the 0.1 way; app gets the README recipe of
# 0.1; consumer and observer only get mq.grant privileges after the update.
sql(q{
  CREATE ROLE tenant LOGIN;
  CREATE ROLE app LOGIN;
  CREATE ROLE consumer LOGIN;
  CREATE ROLE observer LOGIN;
  CREATE SCHEMA tenant AUTHORIZATION tenant;
  -- what creating and using a queue took in 0.1 (functions ran as the caller)
  GRANT USAGE, CREATE ON SCHEMA mq TO tenant;
  GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA mq TO tenant;
  GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA mq TO tenant;
  GRANT USAGE, SELECT ON SEQUENCE mq.message_id_seq TO tenant;  -- SELECT: lane discovery
});
sql($boom_sql, 'tenant');

# Other 0.1 installations, one per database (copies of this one): one per
# kind of tenant code on a queue table (part C), one with a user view on
# mq's views (part D), one with functions tenant put in schema mq (part E).
my %planted = (
	v_check => q{ALTER TABLE mq.w_tq ADD CONSTRAINT planted CHECK (tenant.boom())},
	v_index => q{CREATE INDEX planted ON mq.q_tq (tenant.iboom(id))},
	v_default =>
	  q{ALTER TABLE mq.q_tq ALTER COLUMN last_error SET DEFAULT (CASE WHEN tenant.boom() THEN NULL END)},
	v_inherit => q{CREATE TABLE tenant.kid () INHERITS (mq.q_tq);
                   INSERT INTO tenant.kid (seq, id, priority, attempt, enqueued_at, message)
                     VALUES (0, 1000000, 1, 0, now(), '{"kid": 1}');
                   CREATE TRIGGER planted BEFORE DELETE ON tenant.kid
                     FOR EACH ROW EXECUTE FUNCTION tenant.tboom()},
	v_stats => q{CREATE STATISTICS tenant.planted ON (tenant.iboom(id)) FROM mq.q_tq},
);
my @variants = sort keys %planted;
sql("CREATE DATABASE $_ TEMPLATE postgres") for (@variants, 'v_view', 'v_schema');

$node->stop;
$node->append_conf('postgresql.conf', qq{shared_preload_libraries = 'mq'
dynamic_library_path = '$old_dir:\$libdir'});
$node->start;
# the postmaster preloaded the 0.1 build, not the installed library
SKIP:
{
	my $pid = (split /\n/, PostgreSQL::Test::Utils::slurp_file($node->data_dir . '/postmaster.pid'))[0];
	skip 'no /proc', 1 unless -r "/proc/$pid/maps";
	my $maps = PostgreSQL::Test::Utils::slurp_file("/proc/$pid/maps");
	my @libs = sort keys %{ { map { $_ => 1 } $maps =~ m{(\S*/mq\.so)\s*$}mg } };
	is("@libs", realpath("$old_dir/mq.so"), 'the 0.1 library is the one loaded');
}

# The superuser's queues.
sql(q{
  SELECT mq.create_queue('jobs_dead');
  SELECT mq.create_queue('jobs', max_attempts => 1, visibility_timeout => '1 hour',
                         dead_letter_queue => 'jobs_dead', retention => '1 day');
  SELECT mq.create_queue('plain', max_attempts => 1);
  SELECT mq.create_queue('soon');
});
sql(q{SELECT count(*) FROM mq.send_batch('jobs',
        (SELECT array_agg(jsonb_build_object('j', i) ORDER BY i) FROM generate_series(1, 10) i))});
sql(q{SELECT mq.send('jobs', '{"j": "p5"}', priority => 5)});
sql(q{SELECT mq.send('jobs', '{"j": "later"}', delay => '1 day')});
my $key_id = sql(q{SELECT mq.send('jobs', '{"j": "key"}', dedup_key => 'key-1')});
# p5, 1, 2, 3 in flight for an hour; p5 and 1 acked (archived)
is(sql(q{SELECT string_agg(message->>'j', ',' ORDER BY id) FROM mq.receive('jobs', 4)}),
	'1,2,3,p5', '0.1: four messages leased');
sql(q{SELECT mq.ack('jobs', id) FROM mq.w_jobs WHERE message->>'j' IN ('p5', '1')});
# 4: leased, nacked, dead-lettered into jobs_dead
sql(q{SELECT mq.nack('jobs', id, error => 'boom') FROM mq.receive('jobs')});
my %inflight;
$inflight{jobs} = sql(q{SELECT string_agg(id::text, ',' ORDER BY id) FROM mq.w_jobs WHERE leased});
sql(q{SELECT mq.subscribe('jobs', 'orders.#')});
# a dead letter in mq.dead_letters
sql(q{SELECT mq.send('plain', '{"bad": true}')});
sql(q{SELECT mq.nack('plain', id, error => 'boom') FROM mq.receive('plain')});

# tenant's queue, made and used by tenant with the 0.1 library
sql(q{
  SELECT mq.create_queue('t_jobs', max_attempts => 1, visibility_timeout => '1 hour');
  SELECT count(*) FROM mq.send_batch('t_jobs',
      (SELECT array_agg(jsonb_build_object('t', i) ORDER BY i) FROM generate_series(1, 5) i));
  SELECT mq.send('t_jobs', '{"t": "later"}', delay => '1 day');
  SELECT count(*) FROM mq.receive('t_jobs', 2);
  SELECT mq.nack('t_jobs', id, error => 'boom') FROM mq.receive('t_jobs');
  SELECT mq.subscribe('t_jobs', 'orders.*.paid');
}, 'tenant');
$inflight{t_jobs} = sql(q{SELECT string_agg(id::text, ',' ORDER BY id) FROM mq.w_t_jobs WHERE leased});
is(sql(q{SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'mq.w_t_jobs'::regclass}),
	'tenant', '0.1: the queue tables of t_jobs are owned by tenant');

# Part C's databases: tenant's queue tq, with tenant code attached to it.
for my $db (@variants)
{
	sql(qq{
      SELECT mq.create_queue('tq', visibility_timeout => '1 hour');
      SELECT count(*) FROM mq.send_batch('tq', ARRAY['{"n": 1}', '{"n": 2}']::jsonb[], priority => 1);
      $planted{$db};
    }, 'tenant', $db);
}
# Part D's database: an administrator's view over mq.queues and mq.subscriptions.
sql(q{
  SELECT mq.create_queue('vq');
  SELECT mq.subscribe('vq', 'v.#');
  CREATE VIEW public.ops_overview AS
    SELECT q.queue, q.max_attempts,
           (SELECT count(*) FROM mq.subscriptions s WHERE s.queue = q.queue) AS subscriptions
      FROM mq.queues q;
}, undef, 'v_view');

# Part E's database: functions tenant made in schema mq (0.1 gave it CREATE
# there to make queues) that 0.1 does not have, with the signatures an
# administrator's call of 0.2's mq.grant and mq.grant_create resolves to
# (text beats regrole for a quoted literal).
sql(q{
  SELECT mq.create_queue('tq');
  CREATE FUNCTION mq.grant_create(role text) RETURNS void LANGUAGE plpgsql AS $$
  BEGIN PERFORM tenant.boom(); END $$;
  CREATE FUNCTION mq.grant(queue text, role text, privileges text[]) RETURNS void LANGUAGE plpgsql AS $$
  BEGIN PERFORM tenant.boom(); END $$;
}, 'tenant', 'v_schema');

# app: the README recipe of 0.1, once every queue exists, and default
# privileges so that queues made later are covered too
sql(q{
  GRANT USAGE ON SCHEMA mq TO app;
  GRANT EXECUTE ON FUNCTION mq.send(text, jsonb, jsonb, interval, integer, text) TO app;
  GRANT EXECUTE ON FUNCTION mq.receive(text, integer, interval, interval),
                            mq.ack(text, bigint), mq.nack(text, bigint, interval, text) TO app;
  GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA mq TO app;
  GRANT USAGE ON SEQUENCE mq.message_id_seq TO app;
  ALTER DEFAULT PRIVILEGES IN SCHEMA mq GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO app;
});
ok(sql(q{SELECT mq.send('t_jobs', '{"t": "app"}')}, 'app') > 0, '0.1: app sends with its table grants');

# comes due about when the update is done
sql(q{SELECT mq.send('soon', '{"s": 1}', delay => '1 second')});
sql(q{SELECT mq.maintain()});    # saves the totals

my $metrics_sql = q{SELECT string_agg(concat_ws('/', queue, ready, in_flight, delayed, dead,
                                                total_sent, total_acked, total_dead_lettered),
                                      ' ' ORDER BY queue)
                      FROM mq.metrics() WHERE queue <> 'soon'};
my $metrics_01 = sql($metrics_sql);
is($metrics_01,
	'jobs/7/2/1/0/13/2/1 jobs_dead/1/0/0/0/1/0/0 plain/0/0/0/1/1/0/1 t_jobs/3/2/1/1/7/0/1',
	'0.1: metrics as built (queue/ready/in_flight/delayed/dead/sent/acked/dead_lettered)');

# ---- the new library, 0.1 schema ------------------------------------------

$node->stop;
$node->append_conf('postgresql.conf', q{dynamic_library_path = '$libdir'});
$node->start;
# back to what a 0.1 install has
sql(q{UPDATE pg_proc SET probin = '$libdir/mq' WHERE probin = 'mq'}, undef, $_)
  for ('postgres', @variants, 'v_view', 'v_schema');

# Everything an update must leave alone when it fails.
my $raw_state_sql = q{
  SELECT concat_ws(E'\n',
    (SELECT extversion FROM pg_extension WHERE extname = 'mq'),
    (SELECT string_agg(c.relname || ':' || c.relkind::text || ':' || pg_get_userbyid(c.relowner)
                       || ':' || coalesce(c.relacl::text, '-'), ' ' ORDER BY c.relname)
       FROM pg_class c WHERE c.relnamespace = 'mq'::regnamespace),
    (SELECT count(*) FROM pg_proc WHERE pronamespace = 'mq'::regnamespace),
    (SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
      WHERE attrelid = 'mq.queue_catalog'::regclass AND attnum > 0 AND NOT attisdropped),
    (SELECT string_agg(message::text, ',' ORDER BY id) FROM mq.q_jobs),
    (SELECT string_agg(message::text || vt::text, ',' ORDER BY id) FROM mq.w_jobs),
    (SELECT string_agg(message::text, ',' ORDER BY id) FROM mq.q_t_jobs),
    (SELECT string_agg(message::text || vt::text, ',' ORDER BY id) FROM mq.w_t_jobs),
    (SELECT string_agg(queue || message::text, ',' ORDER BY id) FROM mq.dead_letters),
    (SELECT string_agg(queue || message::text, ',' ORDER BY id) FROM mq.archive),
    (SELECT string_agg(queue || dedup_key || id, ',') FROM mq.dedup_keys),
    (SELECT string_agg(queue || pattern, ',' ORDER BY queue) FROM mq.subscription_catalog),
    (SELECT string_agg(queue || total_sent || total_acked || total_dead_lettered, ',' ORDER BY queue)
       FROM mq.queue_totals))
};

# ---- part A: a tenant-planted trigger stops the update ----------------------

# The trigger would run as whoever writes the table: after the update, the
# extension owner, i.e. a superuser.
sql(q{
  CREATE FUNCTION tenant.trap() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    EXECUTE 'ALTER ROLE tenant SUPERUSER';
    RETURN NULL;
  END $$;
  CREATE TRIGGER trap AFTER INSERT ON mq.w_t_jobs FOR EACH ROW EXECUTE FUNCTION tenant.trap();
}, 'tenant');

my $raw_before = sql($raw_state_sql);
my ($rc, $out, $err) = try_sql("ALTER EXTENSION mq UPDATE");
isnt($rc, 0, 'A: the update fails while a queue table has a trigger of its own');
like($err, qr/ERROR:.*w_t_jobs/, 'A: the error names the queue table with the trigger');
is(sql($raw_state_sql), $raw_before,
	'A: the failed update changed nothing (version, owners, grants, columns, rows)');

($rc, $out, $err) = try_sql("DROP TRIGGER trap ON mq.w_t_jobs", 'tenant');
is($rc, 0, 'A: tenant removes its trigger') or diag $err;
($rc, $out, $err) = try_sql("ALTER EXTENSION mq UPDATE");
is($rc, 0, 'A: then the update works') or diag $err;
is(sql("SELECT extversion FROM pg_extension WHERE extname = 'mq'"), '0.2', 'mq is at 0.2');

# ---- part B: what the update made of the queues -----------------------------

my $admin = sql("SELECT current_user");
is(sql($metrics_sql), $metrics_01, 'B: metrics (gauges and totals) are the same as before the update');

is( sql(q{SELECT coalesce(string_agg(c.relname || '=' || pg_get_userbyid(c.relowner), ', ' ORDER BY c.relname), 'none')
            FROM pg_class c, pg_extension e
           WHERE e.extname = 'mq' AND c.relnamespace = 'mq'::regnamespace
             AND c.relowner <> e.extowner}),
	'none', 'B: every table, view, index and sequence of schema mq is owned by the extension owner');
is(sql(q{SELECT string_agg(queue || '=' || owner, ',' ORDER BY queue) FROM mq.queues}),
	"jobs=$admin,jobs_dead=$admin,plain=$admin,soon=$admin,t_jobs=tenant",
	'B: mq.queues.owner: tenant for its queue, the superuser for the others');

# a group key compares byte by byte in every table of an updated queue, as
# in a new one (src/queues.c)
is( sql(q{SELECT string_agg(c.relname || ':' || a.attcollation::regcollation::text, ',' ORDER BY c.relname)
            FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'group_key'
           WHERE c.relnamespace = 'mq'::regnamespace AND c.relname ~ '^[bgqw]_jobs$'}),
	'b_jobs:"C",g_jobs:"C",q_jobs:"C",w_jobs:"C"', 'B: the group keys of an updated queue have collation "C"');

# no 0.1 grant is left
is( sql(q{SELECT coalesce(string_agg(c.relname || ':' || a.grantee::regrole || ':' || a.privilege_type, ', '
                                     ORDER BY c.relname, a.privilege_type), 'none')
            FROM pg_class c, aclexplode(c.relacl) a
           WHERE c.relnamespace = 'mq'::regnamespace
             AND a.grantee IN ('tenant'::regrole, 'app'::regrole)}),
	'none', 'B: the table and sequence grants of 0.1 to tenant and app are gone');
($rc, $out, $err) = try_sql("SELECT count(*) FROM mq.q_jobs", 'app');
like($err, qr/permission denied/, 'B: app cannot read a queue table any more');
($rc, $out, $err) = try_sql("SELECT count(*) FROM mq.dead_letter_store", 'tenant');
like($err, qr/permission denied/, 'B: tenant cannot read the dead-letter store any more');
is( sql(q{SELECT coalesce(string_agg(r.rolname, ','), 'none') FROM pg_roles r
           WHERE r.rolname IN ('tenant', 'app', 'consumer', 'observer')
             AND has_schema_privilege(r.oid, 'mq', 'CREATE')}),
	'none', 'B: no role keeps CREATE on schema mq (it could plant objects in mq\'s schema)');

# dedup key, before its message is received
is(sql(q{SELECT mq.send('jobs', '{"j": "dup"}', dedup_key => 'key-1')}), $key_id,
	'B: the dedup key of 0.1 still deduplicates');

# subscriptions still route
is(sql(q{SELECT string_agg(queue || ':' || pattern, ',' ORDER BY queue) FROM mq.subscriptions}),
	'jobs:orders.#,t_jobs:orders.*.paid', 'B: subscriptions kept');
is(sql(q{SELECT mq.publish('orders.eu.paid', '{"o": "paid"}')}), '2',
	'B: a publish reaches both subscribed queues');
is(sql(q{SELECT mq.publish('orders.eu.new', '{"o": "new"}')}), '1',
	'B: a publish reaches only the matching subscription');

# tenant: every privilege on t_jobs, none on the others
is(sql(q{SELECT string_agg(queue || '=' || owner, ',' ORDER BY queue) FROM mq.queues}, 'tenant'),
	't_jobs=tenant', 'B: tenant observes its queue (and only it) in mq.queues');
($rc, $out, $err) = try_sql(q{SELECT mq.grant('t_jobs', 'consumer', '{receive}')}, 'tenant');
is($rc, 0, 'B: tenant manages its queue: grants receive on it') or diag $err;
sql(q{SELECT mq.grant('jobs', 'consumer', '{receive}');
      SELECT mq.grant('plain', 'observer', '{observe}');
      SELECT mq.grant('jobs', 'observer', '{observe}')});
is( sql(q{SELECT string_agg(queue || ':' || grantee || ':' || privilege, ',' ORDER BY queue, privilege)
            FROM mq.queue_privileges WHERE grantee::text IN ('consumer', 'observer')}),
	'jobs:observer:observe,jobs:consumer:receive,plain:observer:observe,t_jobs:consumer:receive',
	'B: mq.queue_privileges shows the grants');
($rc, $out, $err) = try_sql(q{SELECT mq.send('jobs', '{"j": "tenant"}')}, 'tenant');
like($err, qr/permission denied|42501/, 'B: tenant may not send to a queue it did not create');

# ready messages, received by a role granted receive
is( sql(q{SELECT string_agg(coalesce(message->>'t', message->>'o'), ',' ORDER BY id)
            FROM mq.receive('t_jobs', 100)}, 'consumer'),
	'4,5,app,paid', 'B: consumer receives every ready message of t_jobs (0.1 and published)');
is( sql(q{SELECT string_agg(coalesce(message->>'j', message->>'o'), ',' ORDER BY id)
            FROM mq.receive('jobs', 100)}, 'consumer'),
	'5,6,7,8,9,10,key,paid,new', 'B: consumer receives every ready message of jobs');
is(sql(q{SELECT string_agg(message->>'j', ',') FROM mq.receive('jobs_dead', 100)}),
	'4', 'B: the superuser receives the dead letter routed to jobs_dead');

# in-flight messages of 0.1 are still leased, and can be acked
for my $q ('jobs', 't_jobs')
{
	is( sql(qq{SELECT string_agg(mq.ack('$q', id::bigint)::text, ',')
                FROM unnest('{$inflight{$q}}'::bigint[]) id}, 'consumer'),
		'true,true', "B: the two messages in flight in $q since 0.1 are acked by consumer");
}

# delayed messages of 0.1
is(sql(q{SELECT string_agg(message->>'j', ',') FROM mq.w_jobs WHERE NOT leased}), 'later',
	'B: the message delayed by a day in jobs is still delayed');
is(sql(q{SELECT count(*) FROM mq.receive('soon', 1, wait => '10 seconds')}), '1',
	'B: a message delayed in 0.1 comes due and is received');

# tenant uses its queue: send, receive, observe
ok(sql(q{SELECT mq.send('t_jobs', '{"t": "after"}')}, 'tenant') > 0, 'B: tenant sends to its queue');
is(sql(q{SELECT string_agg(message->>'t', ',') FROM mq.receive('t_jobs', 10)}, 'tenant'),
	'after', 'B: tenant receives from its queue');

# dead letters: visible to observers of their queue only
is(sql(q{SELECT string_agg(queue || message::text, ',' ORDER BY queue) FROM mq.dead_letters}),
	'plain{"bad": true},t_jobs{"t": 3}', 'B: the superuser sees both dead letters');
is(sql(q{SELECT string_agg(queue || message::text, ',' ORDER BY queue) FROM mq.dead_letters}, 'observer'),
	'plain{"bad": true}', 'B: observer sees the dead letter of plain only');
is(sql(q{SELECT string_agg(queue || message::text, ',' ORDER BY queue) FROM mq.dead_letters}, 'tenant'),
	't_jobs{"t": 3}', 'B: tenant sees the dead letter of its queue only');
is(sql(q{SELECT count(*) FROM mq.dead_letters}, 'app'), '0', 'B: app sees no dead letter');
is(sql(q{SELECT mq.redrive('t_jobs')}, 'tenant'), '1', 'B: tenant redrives its dead letter');
is(sql(q{SELECT string_agg(message->>'t', ',') FROM mq.receive('t_jobs', 10)}, 'consumer'),
	'3', 'B: the redriven message is received');

# archive
is(sql(q{SELECT string_agg(message->>'j', ',' ORDER BY message->>'j') FROM mq.archive}, 'observer'),
	'1,2,3,p5', 'B: the archive of jobs is kept (1, p5 acked in 0.1; 2, 3 since) and visible to its observer');
is(sql(q{SELECT count(*) FROM mq.archive}, 'tenant'), '0', 'B: tenant sees no archive of other queues');

# metrics count the work done after the update
is( sql(q{SELECT string_agg(concat_ws('/', queue, ready, in_flight, delayed, dead,
                                       total_sent, total_acked, total_dead_lettered),
                             ' ' ORDER BY queue)
            FROM mq.metrics() WHERE queue <> 'soon'}),
	'jobs/0/9/1/0/15/4/1 jobs_dead/0/1/0/0/1/0/0 plain/0/0/0/1/1/0/1 t_jobs/0/6/1/0/9/2/1',
	'B: metrics after the work done since the update');
is(sql(q{SELECT string_agg(queue, ',' ORDER BY queue) FROM mq.metrics()}, 'observer'),
	'jobs,plain', 'B: observer gets the metrics of the queues it observes');

# a queue made after the update: the 0.1 default privileges grant nothing
sql(q{SELECT mq.create_queue('fresh')});
is( sql(q{SELECT coalesce(string_agg(c.relname || ':' || a.grantee::regrole || ':' || a.privilege_type, ', '
                                     ORDER BY c.relname, a.privilege_type), 'none')
            FROM pg_class c, aclexplode(c.relacl) a
           WHERE c.relnamespace = 'mq'::regnamespace AND c.relname IN ('q_fresh', 'w_fresh')
             AND a.grantee <> c.relowner}),
	'none', 'B: a queue created after the update grants its tables to nobody');

# message groups (issue 13): an updated queue has the columns, indexes and
# tables a fresh one has; the new tables are not members of the extension
# (pg_dump dumps their rows); grouped messages work on it
my $shape_sql = q{
	SELECT string_agg(x, ' ' ORDER BY x) FROM (
	  SELECT regexp_replace(c.relname, '_%Q%$', '_Q') || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod)
	         || CASE WHEN a.attnotnull THEN '!' ELSE '' END AS x
	    FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
	   WHERE c.relnamespace = 'mq'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
	     AND c.relname IN ('q_%Q%', 'w_%Q%', 'g_%Q%', 'b_%Q%', 'r_%Q%')
	  UNION ALL
	  SELECT replace(pg_get_indexdef(i.indexrelid), '%Q%', 'Q')
	    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
	   WHERE c.relnamespace = 'mq'::regnamespace AND c.relname IN ('q_%Q%', 'w_%Q%', 'g_%Q%', 'b_%Q%', 'r_%Q%')
	  UNION ALL
	  SELECT c.relname || ' ' || coalesce(array_to_string(c.reloptions, ','), '') || ' ' || c.relpersistence::text
	    FROM pg_class c
	   WHERE c.relnamespace = 'mq'::regnamespace AND c.relname IN ('g_%Q%', 'b_%Q%', 'r_%Q%')) s};
(my $shape_jobs = $shape_sql) =~ s/%Q%/jobs/g;
(my $shape_fresh = $shape_sql) =~ s/%Q%/fresh/g;
my $fresh_shape = sql($shape_fresh);
$fresh_shape =~ s/fresh/jobs/g;
is(sql($shape_jobs), $fresh_shape,
	'B: an updated queue has the columns, indexes and group tables of a fresh one');
is( sql(q{SELECT count(*) FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
           WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e'
             AND c.relname IN ('g_jobs', 'b_jobs', 'r_jobs', 'g_plain', 'b_plain', 'r_plain')}),
	'0', 'B: the group tables made by the update are not members of the extension');
sql(q{SELECT mq.send('plain', jsonb_build_object('g', n), group_key => 'k') FROM generate_series(1, 3) n});
is(sql(q{SELECT string_agg(message->>'g' || '/' || group_key, ',') FROM mq.receive('plain', 10)}),
	'1/k', 'B: an updated queue hands out one message of a group at a time');
sql(q{SELECT mq.ack('plain', id) FROM mq.w_plain WHERE group_key = 'k'});
is(sql(q{SELECT string_agg(message->>'g', ',') FROM mq.receive('plain', 10)}),
	'2', 'B: and the next one after the ack');
sql(q{SELECT mq.purge_queue('plain')});

# the SQL surface of the update is that of a fresh install: functions with
# their arguments and defaults, the columns of types and views
my $surface_sql = q{
	SELECT string_agg(x, E'\n' ORDER BY x) FROM (
	  SELECT 'function ' || p.proname || '(' || pg_get_function_arguments(p.oid) || ') '
	         || pg_get_function_result(p.oid) || ' ' || p.provolatile::text || p.proisstrict::text AS x
	    FROM pg_proc p WHERE p.pronamespace = 'mq'::regnamespace
	  UNION ALL
	  SELECT 'column ' || c.relname || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod)
	    FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
	   WHERE c.relnamespace = 'mq'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
	     AND c.relkind IN ('v', 'c')) s};
sql("CREATE DATABASE v_fresh TEMPLATE template0");
sql("CREATE EXTENSION mq", undef, 'v_fresh');
is(sql($surface_sql), sql($surface_sql, undef, 'v_fresh'),
	'B: functions, types and views of the update are those of a fresh install');

# the trap never ran
is(sql(q{SELECT rolsuper FROM pg_roles WHERE rolname = 'tenant'}), 'f', 'tenant is no superuser');

# ---- part C: other tenant code on a queue table -----------------------------

# Whatever else tenant attached to a queue table it owned in 0.1 (a CHECK
# constraint, an expression index, a column default, a child table with a
# trigger, an expression statistics object) runs as whoever writes (or
# analyzes) the table, which after the update is the extension owner.  The
# update must refuse it like a trigger (naming the queue, nothing changed),
# or leave nothing of it that runs: after the update, ANALYZE (as autovacuum
# does), sends, receives, acks and maintain by the superuser must not make
# tenant a superuser.
sql(q{ALTER ROLE tenant NOSUPERUSER});    # each part on its own, whatever happened above
for my $db (@variants)
{
	($rc, $out, $err) = try_sql("ALTER EXTENSION mq UPDATE", undef, $db);
	if ($rc != 0)
	{
		like($err, qr/ERROR:.*(\btq\b|_tq\b|kid)/,
			"C/$db: the update refuses, naming the queue's table");
		is(sql(q{SELECT extversion || ':' || pg_get_userbyid(relowner) FROM pg_extension, pg_class
                  WHERE extname = 'mq' AND pg_class.oid = 'mq.q_tq'::regclass}, undef, $db),
			'0.1:tenant', "C/$db: and changes nothing");
		next;
	}
	try_sql($_, undef, $db)
	  for (q{ANALYZE mq.q_tq, mq.w_tq},
		q{SELECT mq.send('tq', '{"n": 3}')},
		q{SELECT count(*) FROM mq.send_batch('tq', ARRAY['{"n": 4}']::jsonb[])},
		q{SELECT mq.ack('tq', id) FROM mq.receive('tq', 10)},
		q{SELECT mq.maintain()});
	is(sql(q{SELECT rolsuper FROM pg_roles WHERE rolname = 'tenant'}), 'f',
		"C/$db: the update went through, and no code of tenant ran as a superuser since");
	sql(q{ALTER ROLE tenant NOSUPERUSER});
}

# ---- part D: a view of the administrator's over mq's views --------------------

($rc, $out, $err) = try_sql("ALTER EXTENSION mq UPDATE", undef, 'v_view');
is($rc, 0, 'D: the update works while a user view depends on mq.queues and mq.subscriptions')
  or diag $err;
is(sql(q{SELECT string_agg(queue || ':' || subscriptions, ',') FROM public.ops_overview}, undef, 'v_view'),
	'vq:1', 'D: and the view still works');

# ---- part E: functions tenant made in schema mq -------------------------------

# After the update, an administrator follows the README: mq.grant_create and
# mq.grant with quoted literals.  They must reach mq's functions, never
# tenant's (which would run as the superuser); refusing the update (naming
# what is in the way, nothing changed) is fine too.
($rc, $out, $err) = try_sql("ALTER EXTENSION mq UPDATE", undef, 'v_schema');
if ($rc != 0)
{
	like($err, qr/ERROR:.*grant/, 'E: the update refuses, naming the functions of tenant in schema mq');
	is(sql(q{SELECT extversion FROM pg_extension WHERE extname = 'mq'}, undef, 'v_schema'),
		'0.1', 'E: and changes nothing');
}
else
{
	try_sql(q{SELECT mq.grant_create('consumer')}, undef, 'v_schema');
	try_sql(q{SELECT mq.grant('tq', 'consumer', '{receive}')}, undef, 'v_schema');
	is(sql(q{SELECT rolsuper FROM pg_roles WHERE rolname = 'tenant'}), 'f',
		'E: the update went through, and the administrator\'s mq.grant calls ran no code of tenant');
	is( sql(q{SELECT count(*) FROM mq.queue_privileges WHERE queue = 'tq' AND grantee = 'consumer'::regrole},
			undef, 'v_schema'),
		'1', 'E: mq.grant reached mq');
	sql(q{ALTER ROLE tenant NOSUPERUSER});
}

$node->stop;
done_testing();
