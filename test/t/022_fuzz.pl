# Copyright: mq authors; PostgreSQL License.
#
# Fuzz test of every public SQL function of mq (issue 11, section "A fuzz
# test").  What it proves: whatever a careless or hostile caller passes,
# mq answers with a documented error or does its job, and its state stays
# consistent.  How:
#
#   - every public function (create_queue, alter_queue, drop_queue,
#     purge_queue, send, send_batch, receive, the four acks, nack, extend,
#     pop, redrive, both metrics, metrics_prometheus, maintain, subscribe,
#     unsubscribe, publish, grant, revoke, grant_create, revoke_create,
#     grant_topic, revoke_topic) is called with a generated matrix of edge
#     values: NULL in each position, empty strings, boundary ints, huge,
#     negative and mixed-sign intervals, wrong JSON kinds, 1000-deep JSON,
#     10 kB names, 100 kB dedup keys and errors, arrays with NULLs, of
#     mismatched lengths, two-dimensional or not starting at 1, unicode,
#     quotes, uppercase and injection-like names, names of another queue's
#     objects, pathological topic patterns, role OIDs that name no role,
#     real ids and receipts of live deliveries; first the whole matrix
#     (each argument position through its pool, the others valid, and each
#     function with its defaults), then random combinations until the time
#     is up; now and then a few of them in a transaction (READ COMMITTED or
#     REPEATABLE READ, savepoints rolled back or released, then COMMIT,
#     ROLLBACK or PREPARE TRANSACTION + COMMIT / ROLLBACK PREPARED);
#   - in random order, from four concurrent sessions: two as a superuser,
#     two as a non-superuser role (fz_tenant) that holds every privilege on
#     some queues (fz_t1, fz_t2, fz_own), the right to create queues and
#     the topic rights on "fz", and none on others (fz_a, fz_b, fz_n1,
#     fz_n2); meanwhile three more sessions do normal work: sends, batches
#     and publishes; receives with acks and nacks, pops and redrives; drops,
#     creates, alters and subscriptions of scratch queues.  No worker.
#
# Checks:
#
#   1. no crash: every session is still connected, the server log has no
#      "terminated by signal", "server process", "TRAP" or PANIC, and no
#      internal error (XX000, XX001, ...) from any session;
#   2. every error carries a SQLSTATE of the documented set (README:
#      22004, 22023, 42P01, 42501, 42704, 55000, 53400, 0A000, 2BP01,
#      25006) or one that the test's own concurrency, timeouts and
#      transactions cause (40P01, 40001, 55P03, 57014, 25P02, 3B001);
#      anything else (XX000, XX001, 23xxx of mq's own tables, 42P07, 22008
#      "timestamp out of range", 54000, 42883, ...) is listed with its
#      statement.  The argument values are checked by PostgreSQL before the
#      run (each must be accepted by its type's input function; the ones
#      refused, such as interval 'infinity' in PostgreSQL 15, are left out
#      and noted), so an input error such as 22P02 or 22008 can only come
#      from inside mq;
#   3. no statement hangs: each ends within the session's statement_timeout
#      (2 s) plus a margin;
#   4. privileges hold under fuzzing: no call of fz_tenant on a queue it
#      holds no privilege on succeeds, and afterwards it sees none of
#      those queues in mq.metrics(), metrics_prometheus() and the views;
#      no role became superuser;
#   5. at the end every queue's mq.metrics gauges (ready, in_flight,
#      delayed, dead) equal its real rows (mq.q_<q>, leased / not leased
#      rows of mq.w_<q>, rows of mq.dead_letter_store), also in
#      metrics_prometheus(), again after mq.maintain() and after receiving
#      everything; no queue is damaged and no queue table is orphaned;
#      mq.maintain() runs without a WARNING; every queue can still be
#      received from; a new queue can still be created and used.
#
# Bugs this test finds on today's code are asserted in TODO blocks (they
# pass once fixed; MQ_FUZZ_STRICT=1 makes them ordinary assertions):
#   - issue 11, item 8: a queue name collides with another queue's objects
#     (create_queue('fz_a_order') beside 'fz_a', '__order' beside '_':
#     42P07 "relation ... already exists");
#   - a call racing a drop_queue of its queue fails with XX001 "tables of
#     queue "x" are missing" (whose hint says to drop the queue), or 42501
#     "tables of queue "x" are not owned by the owner of extension", and
#     mq.maintain() warns that the queue's maintenance failed, instead of
#     42P01 / skipping the queue: src/catalog.c reads the catalog row,
#     then the tables, and a drop that commits in between is taken for a
#     damaged queue;
#   - mq.grant, grant_create and grant_topic store a role OID that names
#     no role ('-'::regrole is 0, '4294967295'::regrole is accepted by
#     regrole's input without a check), which a role created later could
#     come to name.
#
# MQ_FUZZ_SEED replays the order of the statements of each session (the
# interleaving of the sessions depends on timing; the seed is printed),
# MQ_FUZZ_SECONDS sets the duration of the fuzzing phase (default 28; the
# whole file takes about 10 s more).  The server log is large (every
# statement, errors quoting 10 kB values): it is read line by line.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;
use Time::HiRes qw(time usleep);

my $seed =
  (defined $ENV{MQ_FUZZ_SEED} && $ENV{MQ_FUZZ_SEED} =~ /^\d+$/)
  ? $ENV{MQ_FUZZ_SEED} % 4294967296
  : (int(time() * 1000) ^ ($$ << 8)) % 4294967296;
my $seconds =
  (defined $ENV{MQ_FUZZ_SECONDS} && $ENV{MQ_FUZZ_SECONDS} =~ /^\d+(\.\d+)?$/)
  ? $ENV{MQ_FUZZ_SECONDS}
  : 28;
my $strict = $ENV{MQ_FUZZ_STRICT} ? 1 : 0;
diag("fuzz: MQ_FUZZ_SEED=$seed MQ_FUZZ_SECONDS=$seconds (set them to replay)");

# statement_timeout of every session, and how long past it a statement may
# take before it counts as hung
my $statement_timeout = 2;
my $hang_margin = 20;

my $node = mq_node('fuzz', qq{
mq.worker_enabled = off
max_connections = 30
max_prepared_transactions = 10
restart_after_crash = on
log_line_prefix = '%m [%p] %e %q%a '
});

sub sql { return $node->safe_psql('postgres', $_[0]); }

# Run $sql (as $user, default the bootstrap superuser); never dies.
sub run_sql
{
	my ($sql, $user) = @_;
	my $connstr = $node->connstr('postgres');
	$connstr .= " user=$user" if defined $user;
	my ($rc, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql",
		connstr => $connstr, on_error_stop => 1);
	return { rc => $rc, out => $out // '', err => $err // '' };
}

sub short
{
	my ($s, $n) = @_;
	$n //= 240;
	$s //= '';
	$s =~ s/\s+/ /g;
	return length($s) > $n ? substr($s, 0, $n) . "...(" . length($s) . " chars)" : $s;
}

my $superuser = sql('SELECT current_user');

# --- setup --------------------------------------------------------------------

sql(q{
CREATE ROLE fz_tenant LOGIN;
CREATE ROLE fz_other;
CREATE EXTENSION mq;
SELECT mq.create_queue('fz_b');
SELECT mq.create_queue('fz_a', max_attempts => 2, visibility_timeout => '1 second',
                       retry_delay => '10 ms', dead_letter_queue => 'fz_b', retention => '1 hour');
SELECT mq.create_queue('fz_n1', max_attempts => 1, visibility_timeout => '500 ms');
SELECT mq.create_queue('fz_n2', unlogged => true);
SELECT mq.create_queue('fz_t2', max_attempts => 3, visibility_timeout => '1 second', retry_delay => '0');
SELECT mq.create_queue('fz_t1', dead_letter_queue => 'fz_t2');
SELECT mq.grant(q, 'fz_tenant', '{send,receive,observe,manage}') FROM unnest('{fz_t1,fz_t2}'::text[]) q;
SELECT mq.grant_create('fz_tenant');
SELECT mq.grant_topic('fz', 'fz_tenant', '{publish,subscribe}');
SELECT mq.subscribe('fz_b', 'fz.#');
SELECT mq.subscribe('fz_n1', 'fz.*');
SELECT mq.subscribe('fz_t1', 'fz.a', '{"level": "high"}');
});
my $r = run_sql(q{
SELECT mq.create_queue('fz_own', max_attempts => 2, dead_letter_queue => 'fz_t2', visibility_timeout => '1 second');
SELECT mq.subscribe('fz_own', 'fz.#');
}, 'fz_tenant');
ok($r->{rc} == 0, 'setup: fz_tenant creates its own queue and subscribes it')
  or diag(short($r->{err}, 2000));
sql(q{
SELECT mq.send(q, jsonb_build_object('n', g), priority => g % 3)
  FROM unnest('{fz_a,fz_b,fz_n1,fz_n2,fz_t1,fz_t2,fz_own}'::text[]) q, generate_series(1, 30) g;
});

# The queues fz_tenant may not touch: created by the superuser, never
# dropped by the superuser's fuzz sessions, never granted to fz_tenant
# (the superuser's pool of roles leaves fz_tenant out).
my %none = map { $_ => 1 } qw(fz_a fz_b fz_n1 fz_n2);
my @stable = qw(fz_a fz_b fz_n1 fz_n2 fz_t1 fz_t2 fz_own);
my @scratch = qw(fz_s0 fz_s1 fz_s2 fz_s3);

# --- the pools of edge values -------------------------------------------------
#
# SQL expressions; each argument is written as (<expression>)::<type> of its
# position.  ID and RCPT are replaced, when a statement is sent, by an id and
# a receipt that the session's own receives returned.

my $deep_array = q{repeat('[', 1000) || repeat(']', 1000)};
my $deep_object = q{repeat('{"a":', 1000) || '1' || repeat('}', 1000)};
my $big_json = q{jsonb_build_object('big', repeat('b', 100000))};

my @qnames_valid = (
	(map { "'$_'" } @stable, @scratch),
	"'fz_x'", "'fz_missing'", "'_'", "repeat('x', 48)",
	# objects of another queue: q_fz_a_order is fz_a's index, w_fz_a_vt and
	# w_fz_a_pkey the wait table's; '__order' against '_' (issue 11, item 8)
	"'fz_a_order'", "'fz_a_vt'", "'fz_a_pkey'", "'__order'");
my @qnames_bad = (
	'NULL', "''", "'A'", "'FZ_A'", "'Fz_a'", "'fz a'", "' fz_a'", "'fz_a '",
	"'a; DROP TABLE x'", q{'it''s'}, q{'"fz_a"'},
	q{'fz_a''); DROP TABLE mq.queue_catalog; --'}, "repeat('a', 49)",
	"repeat('z', 10240)", "'é'", "'fz_日本'", "E'fz\\nx'", "'0abc'", "'fz-a'",
	"'fz.a'", "'q_fz_a'");

my %pool = (
	qname => [ @qnames_valid, @qnames_bad ],
	# drop_queue of the superuser's sessions: never the stable queues
	qdrop_su => [ (grep { my $v = $_; !grep { "'$_'" eq $v } @stable } @qnames_valid), @qnames_bad ],
	dlq => [ @qnames_valid, @qnames_bad, "''" ],
	int => [ 'NULL', '0', '-1', '1', '2', '1000', '1001', '10000', '10001', '2147483647', '-2147483648' ],
	ivl => [
		'NULL', "'0'", "'1 microsecond'", "'-1 second'", "'1 second'", "'100 years'",
		"'100 years 1 microsecond'", "'1000000 years'", "'-1000000 years'",
		"'-70000000 months 2100001000 days'", "'70000000 months -2100001000 days'",
		"'178000000 years'", "'2147483647 days'", "'-2147483648 days'",
		"'2147483647 months'", "'-2147483648 months'", "'2562047788:00:54.775807'",
		"'-2562047788:00:54.775808'", "'1 mon -30 days'", "'-1 mon 31 days'",
		"'1 day -86400 seconds'", "'36500 days'", "'infinity'", "'-infinity'" ],
	bool => [ 'NULL', 'true', 'false' ],
	json => [
		'NULL', "'{}'", "'[]'", "'0'", "'\"s\"'", "'null'", "'true'",
		q{'{"k": "é日本\u00e9", "": ""}'}, "'-1e308'", "'1e1000'",
		$deep_array, $deep_object, $big_json ],
	hdr => [
		'NULL', "'{}'", "'[]'", "'1'", "'null'", "'\"s\"'", q{'{"topic": "x"}'},
		q{'{"mq_dead_letter": {"hops": -1, "queue": "fz_a"}}'}, q{'{"mq_": 1}'},
		q{'{"MQ_X": 1}'}, q{'{"a": {"topic": 1}}'}, q{'{"level": "high"}'},
		$deep_object, $big_json ],
	msgs => [
		'NULL', "'{}'", 'ARRAY[NULL]', q{ARRAY['{}', '[]']}, q{ARRAY['{}', NULL]},
		q{array_fill('{"n": 1}'::jsonb, ARRAY[10000])},
		q{array_fill('{}'::jsonb, ARRAY[10001])}, q{ARRAY[['{}'], ['1']]},
		q{'[0:1]={"{}","{}"}'}, "ARRAY[$deep_array]", q{ARRAY['"x"', 'null']} ],
	hdrs => [
		'NULL', "'{}'", 'ARRAY[NULL]', q{ARRAY['{}', NULL]}, q{ARRAY['{"topic": 1}', '{}']},
		q{ARRAY['[]', '{}']}, q{ARRAY['{}']}, q{ARRAY['{}', '{}', '{}']},
		q{ARRAY[['{}'], ['{}']]}, q{ARRAY['{"mq_x": 1}', '{"ok": 1}']},
		q{'[0:1]={"{}","{}"}'} ],
	id => [ 'NULL', '0', '-1', '9223372036854775807', '-9223372036854775808', 'ID', 'ID', 'ID' ],
	ids => [
		'NULL', "'{}'", 'ARRAY[NULL]', 'ARRAY[ID, NULL]', 'ARRAY[ID]', 'ARRAY[ID, ID]',
		q{'{{1,2},{3,4}}'}, q{'[0:1]={1,2}'}, 'array(SELECT generate_series(1, 10001))',
		'ARRAY[9223372036854775807, -1]' ],
	rcpt => [
		'NULL', "''", "'zz'", "'0000000000000000'", "'ffffffffffffffff'",
		"'FFFFFFFFFFFFFFFF'", "'8000000000000000'", 'RCPT', 'RCPT', "repeat('a', 10000)",
		"' 000000000000001'", "'00000000000000001'", "'-000000000000001'",
		"'0x00000000000000'", "'日本'" ],
	rcpts => [
		'NULL', "'{}'", 'ARRAY[NULL]', 'ARRAY[RCPT]', 'ARRAY[RCPT, RCPT]', 'ARRAY[RCPT, NULL]',
		q{ARRAY['zz', 'zz']}, q{ARRAY[['a'], ['b']]}, q{'[0:1]={a,b}'} ],
	err => [ 'NULL', "''", "'SMTP 451'", "repeat('e', 100000)", "'é日本'", "E'a\\nb'" ],
	dedup => [
		'NULL', "''", "'k'", "repeat('k', 512)", "repeat('k', 513)", "repeat('é', 256)",
		"repeat('é', 257)", "repeat('k', 100000)", "'a; DROP TABLE x'" ],
	topic => [
		'NULL', "''", "'fz'", "'fz.a'", "'fz.a.b'", "'fz.*'", "'fz.#'", "'a..b'", "'.'",
		"'fz.'", "repeat('a', 255)", "repeat('a', 256)",
		"'fz.' || repeat('a.', 100) || 'b'", "'FZ.A'", "'fz.日本'", "'nobody.x'",
		"'a; DROP TABLE x'" ],
	pattern => [
		'NULL', "''", "'fz'", "'fz.a'", "'fz.*'", "'fz.#'", "'#'", "'*'", "'*.x'", "'#.#'",
		"'a..b'", "'.'", "'fz.'", "'.fz'", "'fz.a*'", "repeat('a', 255)", "repeat('a', 256)",
		"repeat('a.', 10000) || 'a'", "'fz.日本'", "'FZ.A'", "'a; DROP TABLE x'",
		"'fz.' || repeat('#.', 100) || 'x'", "'fz.' || repeat('*.#.', 50) || 'x'" ],
	filter => [
		'NULL', "'{}'", "'[]'", "'1'", "'null'", "'\"s\"'", q{'{"level": "high"}'},
		q{'{"topic": "fz.a"}'}, $deep_object ],
	# the superuser's sessions never name fz_tenant (see %none)
	role_su => [ 'NULL', "'fz_other'", "'-'", "'4294967295'", "'pg_monitor'", "'$superuser'" ],
	role_tenant => [ 'NULL', "'fz_other'", "'fz_tenant'", "'-'", "'pg_monitor'", "'$superuser'" ],
	privs => [
		'NULL', "'{}'", "'{send}'", "'{send,receive,observe,manage}'", "'{SEND}'",
		q{ARRAY['send', NULL]}, 'ARRAY[NULL]', "'{bogus}'", "'{{send,receive}}'",
		"'{publish,subscribe}'", "ARRAY[repeat('s', 10000)]", "'[0:1]={send,receive}'" ],
	tprivs => [
		'NULL', "'{}'", "'{publish}'", "'{subscribe}'", "'{publish,subscribe}'",
		"'{send}'", q{ARRAY['publish', NULL]}, 'ARRAY[NULL]', "'{{publish}}'",
		"'{PUBLISH}'" ],
	prefix => [
		'NULL', "''", "'fz'", "'fzz'", "'fz.a'", "'*'", "'#'", "'a b'", "'a; DROP TABLE x'",
		"repeat('p', 10000)", "'日本'", "'FZ'" ],
);

my %sqltype = (
	qname => 'text', qdrop => 'text', dlq => 'text', int => 'integer', ivl => 'interval',
	bool => 'boolean', json => 'jsonb', hdr => 'jsonb', msgs => 'jsonb[]', hdrs => 'jsonb[]',
	id => 'bigint', ids => 'bigint[]', rcpt => 'text', rcpts => 'text[]', err => 'text',
	dedup => 'text', topic => 'text', pattern => 'text', filter => 'jsonb', role => 'regrole',
	privs => 'text[]', tprivs => 'text[]', prefix => 'text');

# --- the functions --------------------------------------------------------------
#
# kinds: scalar (SELECT mq.f(...)), count (SELECT count(*) FROM mq.f(...)),
# harvest (receive / pop: SELECT id, receipt FROM mq.f(...), ids and receipts
# kept for later calls).  min: how many arguments are required.

my @functions = (
	{ f => 'create_queue', args => [qw(qname int ivl ivl ivl dlq ivl bool)],
	  base => [ "'fz_x'", '5', "'30 seconds'", "'1 second'", "'1 hour'", 'NULL', 'NULL', 'false' ], min => 1 },
	{ f => 'alter_queue', args => [qw(qname int ivl ivl ivl dlq ivl bool)],
	  base => [ "'fz_t1'", 'NULL', 'NULL', 'NULL', 'NULL', 'NULL', 'NULL', 'NULL' ], min => 1 },
	{ f => 'drop_queue', args => [qw(qdrop)], base => ["'fz_x'"], min => 1 },
	{ f => 'purge_queue', args => [qw(qname)], base => ["'fz_x'"], min => 1 },
	{ f => 'send', args => [qw(qname json hdr ivl int dedup)],
	  base => [ "'fz_t1'", q{'{"n": 1}'}, 'NULL', "'0'", '0', 'NULL' ], min => 2 },
	{ f => 'send_batch', kind => 'count', args => [qw(qname msgs hdrs ivl int)],
	  base => [ "'fz_t1'", q{ARRAY['{"n": 1}', '{"n": 2}']}, 'NULL', "'0'", '0' ], min => 2 },
	{ f => 'receive', kind => 'harvest', args => [qw(qname int ivl ivl)],
	  base => [ "'fz_t1'", '2', "'5 seconds'", "'0'" ], min => 1 },
	{ f => 'pop', kind => 'harvest', args => [qw(qname int)], base => [ "'fz_t2'", '1' ], min => 1 },
	{ f => 'ack', sig => 'ack(id)', args => [qw(qname id)], base => [ "'fz_t1'", 'ID' ], min => 2 },
	{ f => 'ack', sig => 'ack(ids)', args => [qw(qname ids)], base => [ "'fz_t1'", 'ARRAY[ID]' ], min => 2 },
	{ f => 'ack', sig => 'ack(id,receipt)', args => [qw(qname id rcpt)],
	  base => [ "'fz_t1'", 'ID', 'RCPT' ], min => 3 },
	{ f => 'ack', sig => 'ack(ids,receipts)', args => [qw(qname ids rcpts)],
	  base => [ "'fz_t1'", 'ARRAY[ID]', 'ARRAY[RCPT]' ], min => 3 },
	{ f => 'nack', args => [qw(qname id ivl err rcpt)],
	  base => [ "'fz_t1'", 'ID', 'NULL', "'boom'", 'NULL' ], min => 2 },
	{ f => 'extend', args => [qw(qname id ivl rcpt)],
	  base => [ "'fz_t1'", 'ID', "'10 seconds'", 'NULL' ], min => 3 },
	{ f => 'redrive', args => [qw(qname int)], base => [ "'fz_t2'", 'NULL' ], min => 1 },
	{ f => 'metrics', sig => 'metrics(queue)', kind => 'count', args => [qw(qname)],
	  base => ["'fz_t1'"], min => 1 },
	{ f => 'metrics', sig => 'metrics()', kind => 'count', args => [], base => [], min => 0 },
	{ f => 'metrics_prometheus', kind => 'length', args => [], base => [], min => 0 },
	{ f => 'maintain', args => [], base => [], min => 0 },
	{ f => 'subscribe', args => [qw(qname pattern filter)], base => [ "'fz_t1'", "'fz.b'", 'NULL' ], min => 2 },
	{ f => 'unsubscribe', args => [qw(qname pattern)], base => [ "'fz_t1'", "'fz.b'" ], min => 2 },
	{ f => 'publish', args => [qw(topic json hdr ivl)],
	  base => [ "'fz.a'", q{'{"p": 1}'}, q{'{"level": "high"}'}, "'0'" ], min => 2 },
	{ f => 'grant', args => [qw(qname role privs)], base => [ "'fz_t1'", "'fz_other'", "'{observe}'" ], min => 3 },
	{ f => 'revoke', args => [qw(qname role privs)], base => [ "'fz_t1'", "'fz_other'", "'{observe}'" ], min => 3 },
	{ f => 'grant_create', args => [qw(role)], base => ["'fz_other'"], min => 1 },
	{ f => 'revoke_create', args => [qw(role)], base => ["'fz_other'"], min => 1 },
	{ f => 'grant_topic', args => [qw(prefix role tprivs)], base => [ "'fzz'", "'fz_other'", "'{publish}'" ], min => 3 },
	{ f => 'revoke_topic', args => [qw(prefix role tprivs)], base => [ "'fzz'", "'fz_other'", "'{publish}'" ], min => 3 },
);
$_->{sig} //= $_->{f} for @functions;
$_->{kind} //= 'scalar' for @functions;

# functions that need a privilege on the queue of their first argument
my %needs_privilege = map { $_ => 1 }
  qw(alter_queue drop_queue purge_queue send send_batch receive pop ack nack
  extend redrive metrics subscribe unsubscribe grant revoke);

sub pool_of
{
	my ($kind, $who) = @_;
	return $pool{"role_$who"} if $kind eq 'role';
	return $who eq 'su' ? $pool{qdrop_su} : $pool{qname} if $kind eq 'qdrop';
	return $pool{$kind};
}

sub literal_name
{
	my ($v) = @_;
	return $v =~ /^'([a-z_0-9]+)'$/ ? $1 : undef;
}

# A statement: the SQL (with ID / RCPT still to fill in) and what the checks
# need to know about it.
sub statement
{
	my ($fn, $who, @values) = @_;
	my @a;
	for my $i (0 .. $#values)
	{
		my $type = $sqltype{ $fn->{args}[$i] };
		push @a, "($values[$i])::$type";
	}
	my $call = "mq.$fn->{f}(" . join(', ', @a) . ")";
	my $sql =
	    $fn->{kind} eq 'count'   ? "SELECT count(*) FROM $call"
	  : $fn->{kind} eq 'harvest' ? "SELECT id, receipt FROM $call"
	  : $fn->{kind} eq 'length'  ? "SELECT length($call)"
	  :                            "SELECT $call";
	my %st = (sig => $fn->{sig}, f => $fn->{f}, sql => $sql, harvest => $fn->{kind} eq 'harvest');
	if (@values && $fn->{args}[0] =~ /^(qname|qdrop)$/)
	{
		$st{queue} = literal_name($values[0]);
	}
	if ($fn->{f} eq 'alter_queue' && @values > 5)
	{
		$st{dlq} = literal_name($values[5]);
	}
	return \%st;
}

# The matrix of one role: each function with its valid arguments, then each
# argument position through its whole pool, the other arguments valid.
sub matrix
{
	my ($who) = @_;
	my @m;
	for my $fn (@functions)
	{
		my @base = @{ $fn->{base} };
		if ($who eq 'su' && $fn->{f} =~ /^(grant|revoke|alter_queue|send|send_batch|receive|ack|nack|extend|subscribe|unsubscribe)$/)
		{
			# the superuser's calls go to queues that fz_tenant may use too
			$base[0] = "'fz_a'" if @base && $base[0] eq "'fz_t1'";
		}
		push @m, statement($fn, $who, @base);
		for my $i (0 .. $#{ $fn->{args} })
		{
			for my $v (@{ pool_of($fn->{args}[$i], $who) })
			{
				next if $v eq $base[$i];
				my @vals = @base;
				$vals[$i] = $v;
				push @m, statement($fn, $who, @vals);
			}
		}
		# the same with only the required arguments (the defaults of the rest)
		push @m, statement($fn, $who, @base[ 0 .. $fn->{min} - 1 ])
		  if $fn->{min} < @{ $fn->{args} };
	}
	return @m;
}

# A random combination: a random function, some arguments random, the rest
# valid, and sometimes fewer arguments (their defaults).
sub combination
{
	my ($who, $rng) = @_;
	my $fn = $functions[ int($rng->() * @functions) ];
	my $n = $fn->{min} + int($rng->() * (@{ $fn->{args} } - $fn->{min} + 1));
	my @vals;
	for my $i (0 .. $n - 1)
	{
		my $p = pool_of($fn->{args}[$i], $who);
		push @vals, $rng->() < 0.5 ? $p->[ int($rng->() * @$p) ] : $fn->{base}[$i];
	}
	return statement($fn, $who, @vals);
}

# xorshift32: each session its own sequence, so MQ_FUZZ_SEED replays it
sub rng
{
	my ($s) = @_;
	$s = ($s % 4294967296) || 2463534242;
	return sub {
		$s ^= ($s << 13) & 0xffffffff;
		$s ^= $s >> 17;
		$s ^= ($s << 5) & 0xffffffff;
		return $s / 4294967296;
	};
}

sub shuffle
{
	my ($rng, @l) = @_;
	for (my $i = $#l; $i > 0; $i--)
	{
		my $j = int($rng->() * ($i + 1));
		@l[ $i, $j ] = @l[ $j, $i ];
	}
	return @l;
}

# --- normal traffic -------------------------------------------------------------

sub pick { my ($rng, @l) = @_; return $l[ int($rng->() * @l) ]; }

my %normal = (
	producer => sub {
		my ($rng) = @_;
		my $q = pick($rng, @stable, @scratch);
		my $x = $rng->();
		return { sig => 'producer', sql => "SELECT mq.send('$q', jsonb_build_object('n', 1), priority => " . int($rng->() * 3) . ")" }
		  if $x < 0.55;
		return { sig => 'producer', sql => "SELECT count(*) FROM mq.send_batch('$q', array_fill('{\"b\": 1}'::jsonb, ARRAY[5]))" }
		  if $x < 0.75;
		return { sig => 'producer', sql => "SELECT mq.send('$q', '{\"d\": 1}', delay => '300 ms')" } if $x < 0.85;
		return { sig => 'producer', sql => "SELECT mq.publish('" . pick($rng, 'fz.a', 'fz.b', 'fz.a.c') . "', '{\"p\": 1}', '{\"level\": \"high\"}')" };
	},
	consumer => sub {
		my ($rng) = @_;
		my $q = pick($rng, @stable, @scratch);
		my $x = $rng->();
		return { sig => 'consumer', sql => "SELECT count(*) FILTER (WHERE mq.ack('$q', r.id, r.receipt)) FROM mq.receive('$q', 10, '5 seconds') r" }
		  if $x < 0.6;
		return { sig => 'consumer', sql => "SELECT count(*) FILTER (WHERE mq.nack('$q', r.id, '200 ms', 'fz nack', r.receipt)) FROM mq.receive('$q', 3, '5 seconds') r" }
		  if $x < 0.75;
		return { sig => 'consumer', sql => "SELECT count(*) FROM mq.receive('$q', 2, '300 ms')" } if $x < 0.85;
		return { sig => 'consumer', sql => "SELECT count(*) FROM mq.pop('$q', 5)" } if $x < 0.93;
		return { sig => 'consumer', sql => "SELECT mq.redrive('$q', 10)" };
	},
	ddl => sub {
		my ($rng) = @_;
		my $q = pick($rng, @scratch);
		my $x = $rng->();
		return { sig => 'ddl', sql => "SELECT mq.drop_queue('$q')" } if $x < 0.3;
		if ($x < 0.6)
		{
			my $dlq = pick($rng, 'NULL', "'fz_b'", map { "'$_'" } @scratch);
			return { sig => 'ddl', sql => "SELECT mq.create_queue('$q', max_attempts => 2, visibility_timeout => '500 ms', retry_delay => '10 ms', dead_letter_queue => $dlq, unlogged => " . ($rng->() < 0.3 ? 'true' : 'false') . ")" };
		}
		return { sig => 'ddl', sql => "SELECT mq.subscribe('$q', '" . pick($rng, 'fz.#', 'fz.a', '*.a') . "')" } if $x < 0.7;
		return { sig => 'ddl', sql => "SELECT mq.alter_queue('$q', retention => " . pick($rng, "'1 hour'", "'0'") . ", unlogged => " . pick($rng, 'NULL', 'true', 'false') . ")" }
		  if $x < 0.8;
		return { sig => 'ddl', sql => "SELECT mq.purge_queue('$q')" } if $x < 0.9;
		return { sig => 'ddl', sql => "SELECT mq.alter_queue('$q', dead_letter_queue => " . pick($rng, "''", "'fz_b'", map { "'$_'" } @scratch) . ")" };
	},
);

# --- the sessions ---------------------------------------------------------------

my @sessions;
my $n_session = 0;
sub session
{
	my ($name, $who, $kind, $user) = @_;
	my $bp = $node->background_psql('postgres',
		on_error_stop => 0,
		timeout => $seconds + 600,
		extra_params => defined $user ? [ '-U', $user ] : []);
	$bp->query_safe("\\set VERBOSITY verbose");
	$bp->query_safe("SET statement_timeout = '${statement_timeout}s'");
	$bp->query_safe("SET application_name = '$name'");
	$n_session++;
	my $s = {
		name => $name, who => $who, kind => $kind, bp => $bp,
		rng => rng($seed + 7919 * $n_session), fill_rng => rng($seed + 104729 * $n_session),
		queue => [], script => [], ids => [], rcpts => [],
		n => 0, cur => undef, results => [] };
	push @sessions, $s unless $kind eq 'check';
	return $s;
}

my $su1 = session('fz_su1', 'su', 'fuzz');
my $su2 = session('fz_su2', 'su', 'fuzz');
my $te1 = session('fz_tenant1', 'tenant', 'fuzz', 'fz_tenant');
my $te2 = session('fz_tenant2', 'tenant', 'fuzz', 'fz_tenant');
session('fz_producer', 'su', 'producer');
session('fz_consumer', 'su', 'consumer');
session('fz_ddl', 'su', 'ddl');

# Only values that PostgreSQL itself accepts for the type: an input error
# then cannot come from the statement's own literals.
{
	my $checker = session('fz_check', 'su', 'check');
	my %rejected;
	for my $kind (sort keys %pool)
	{
		my $type = $sqltype{ $kind =~ s/_(su|tenant)$//r };
		my @ok;
		for my $v (@{ $pool{$kind} })
		{
			my $e = $v =~ s/\bID\b/1/gr =~ s/\bRCPT\b/'0000000000000000'/gr;
			my $st = run_now($checker, "SELECT ($e)::$type IS NULL");
			if (!defined $st->{state}) { push @ok, $v; }
			else { $rejected{"$type $v"} = $st->{state}; }
		}
		$pool{$kind} = \@ok;
	}
	$checker->{bp}->quit;
	note("values PostgreSQL refuses before mq is called (left out): "
		  . join('; ', map { short($_, 60) . " ($rejected{$_})" } sort keys %rejected));
}

is($te1->{bp}->query_safe('SELECT current_user || rolsuper::text FROM pg_roles WHERE rolname = current_user'),
	'fz_tenantfalse', 'the tenant sessions run as fz_tenant, not a superuser');

# Each role's matrix, shuffled, dealt to its two sessions.
my %matrix_size;
for my $pair ([ 'su', $su1, $su2 ], [ 'tenant', $te1, $te2 ])
{
	my ($who, @s) = @$pair;
	my @m = shuffle(rng($seed ^ ($who eq 'su' ? 0x5eed : 0x7e4a)), matrix($who));
	$matrix_size{$who} = @m;
	for my $i (0 .. $#m)
	{
		push @{ $s[ $i % 2 ]{queue} }, $m[$i];
	}
}
note("matrix: $matrix_size{su} statements for the superuser, $matrix_size{tenant} for fz_tenant");

# Statements of the fuzz sessions come one by one, and now and then as a
# transaction of a few: BEGIN (sometimes REPEATABLE READ), statements, some
# inside a savepoint that is rolled back or released, then COMMIT, ROLLBACK,
# or PREPARE TRANSACTION followed by COMMIT / ROLLBACK PREPARED.
sub control
{
	my ($sql) = @_;
	return { sig => 'transaction control', sql => $sql };
}

sub transaction
{
	my ($s) = @_;
	my $rng = $s->{rng};
	my $take = sub { @{ $s->{queue} } ? shift @{ $s->{queue} } : combination($s->{who}, $rng) };
	my @t = (control($rng->() < 0.25 ? 'BEGIN ISOLATION LEVEL REPEATABLE READ' : 'BEGIN'));
	for (0 .. int($rng->() * 3))
	{
		if ($rng->() < 0.35)
		{
			push @t, control('SAVEPOINT fz'), $take->(),
			  control($rng->() < 0.6 ? 'ROLLBACK TO SAVEPOINT fz' : 'RELEASE SAVEPOINT fz');
		}
		else
		{
			push @t, $take->();
		}
	}
	my $x = $rng->();
	if ($x < 0.45) { push @t, control('COMMIT'); }
	elsif ($x < 0.9) { push @t, control('ROLLBACK'); }
	else
	{
		my $gid = "fz_$s->{name}_" . int($rng->() * 1e9);
		push @t, control("PREPARE TRANSACTION '$gid'"),
		  control(($rng->() < 0.5 ? 'COMMIT' : 'ROLLBACK') . " PREPARED '$gid'");
	}
	return @t;
}

sub next_statement
{
	my ($s) = @_;
	return shift @{ $s->{script} } if @{ $s->{script} };
	if ($s->{kind} eq 'fuzz' && $s->{rng}->() < 0.08)
	{
		push @{ $s->{script} }, transaction($s);
		return shift @{ $s->{script} };
	}
	return shift @{ $s->{queue} } if @{ $s->{queue} };
	return combination($s->{who}, $s->{rng}) if $s->{kind} eq 'fuzz';
	return $normal{ $s->{kind} }->($s->{rng});
}

sub fill_in
{
	my ($s, $sql) = @_;
	# a generator of its own: which ids a session has seen depends on timing,
	# the statements it sends must not
	my $r = $s->{fill_rng};
	$sql =~ s/\bID\b/@{ $s->{ids} } ? $s->{ids}[ int($r->() * @{ $s->{ids} }) ] : '1'/ge;
	$sql =~ s/\bRCPT\b/@{ $s->{rcpts} } ? "'" . $s->{rcpts}[ int($r->() * @{ $s->{rcpts} }) ] . "'" : "'0000000000000000'"/ge;
	return $sql;
}

sub submit
{
	my ($s, $st) = @_;
	$s->{n}++;
	$st->{sql} = fill_in($s, $st->{sql});
	$st->{banner} = "fz-end $s->{name} $s->{n}";
	$st->{t0} = time();
	$s->{bp}{stdin} .= "$st->{sql};\n\\echo '$st->{banner}'\n\\warn '$st->{banner}'\n";
	$s->{cur} = $st;
}

# Whether the current statement of $s has ended; records its result.
sub collect
{
	my ($s) = @_;
	my $st = $s->{cur};
	my $bp = $s->{bp};
	eval { $bp->{run}->pump_nb; 1 } or do { $s->{dead} = "pump failed: $@"; return 1; };
	my $b = qr/\Q$st->{banner}\E\n/;
	unless ($bp->{stdout} =~ $b && $bp->{stderr} =~ $b)
	{
		if (!$bp->{run}->pumpable)
		{
			$s->{dead} = 'psql exited: ' . short($bp->{stderr}, 500);
			return 1;
		}
		return 0;
	}
	my ($out) = $bp->{stdout} =~ /^(.*?)$b/s;
	my ($err) = $bp->{stderr} =~ /^(.*?)$b/s;
	$bp->{stdout} = '';
	$bp->{stderr} = '';
	$st->{elapsed} = time() - $st->{t0};
	$st->{out} = $out =~ s/\n\z//r if $st->{sig} eq 'check';
	if ($err =~ /(?:ERROR|FATAL|PANIC):\s+([0-9A-Z]{5}):\s*([^\n]*)/)
	{
		$st->{state} = $1;
		$st->{error} = $2;
	}
	elsif ($err =~ /(?:ERROR|FATAL|PANIC):\s*([^\n]*)/)
	{
		$st->{state} = 'none';    # an error without a SQLSTATE
		$st->{error} = $1;
	}
	$st->{warning} = $1 if $err =~ /WARNING:\s+(?:[0-9A-Z]{5}:\s*)?([^\n]*)/;
	if ($st->{harvest} && !defined $st->{state})
	{
		for my $line (split /\n/, $out)
		{
			next unless $line =~ /^(\d+)\|([0-9a-f]*)$/;
			push @{ $s->{ids} }, $1;
			push @{ $s->{rcpts} }, $2 if $2 ne '';
		}
		splice(@{ $s->{ids} }, 0, @{ $s->{ids} } - 200) if @{ $s->{ids} } > 200;
		splice(@{ $s->{rcpts} }, 0, @{ $s->{rcpts} } - 200) if @{ $s->{rcpts} } > 200;
	}
	delete $st->{t0};
	push @{ $s->{results} }, $st;
	$s->{cur} = undef;
	return 1;
}

# Run one statement in session $s and wait for it (outside the run).
sub run_now
{
	my ($s, $sql) = @_;
	my $st = { sig => 'check', sql => $sql, harvest => 0 };
	submit($s, $st);
	my $t0 = time();
	until (collect($s))
	{
		die "statement did not end: " . short($sql) if time() - $t0 > 60;
		usleep(200);
	}
	die "session $s->{name} died: $s->{dead}" if $s->{dead};
	return $st;
}

# --- the run ------------------------------------------------------------------------

my $start = time();
my $deadline = $start + $seconds;
my @hung;
while (1)
{
	my $busy = 0;
	my $progress = 0;
	for my $s (@sessions)
	{
		next if $s->{dead};
		if (!$s->{cur})
		{
			# a transaction begun is finished (no prepared one left behind)
			next if time() >= $deadline && !@{ $s->{script} };
			submit($s, next_statement($s));
		}
		$busy = 1;
		if (collect($s))
		{
			$progress = 1;
		}
		elsif (time() - $s->{cur}{t0} > $statement_timeout + $hang_margin)
		{
			push @hung, "$s->{name}: " . short($s->{cur}{sql}) . sprintf(' (running for %.0f s)', time() - $s->{cur}{t0});
			$s->{dead} = 'hung';
		}
	}
	last unless $busy;
	usleep(500) unless $progress;
}
my $ran_for = time() - $start;

# --- what happened ------------------------------------------------------------------

my %documented = map { $_ => 1 } qw(22004 22023 42P01 42501 42704 55000 53400 0A000 2BP01 25006);
# caused by the test itself: concurrent DDL, its statement_timeout, its
# transactions (a statement after an error, a savepoint or prepared
# transaction that an error made disappear)
my %concurrency = map { $_ => 1 } qw(40P01 40001 55P03 57014 25P02 3B001);

# A call racing drop_queue of its queue (or mq.maintain() meeting a queue
# being dropped): mq reads the queue's catalog row, then finds its tables
# gone, and reports a damaged queue (XX001 "tables of queue ... are
# missing", whose hint says to drop it) or tables owned by someone else
# (42501 "... are not owned by the owner of extension"), instead of 42P01
# or nothing (see the TODO below).
my $raced_re = qr/tables of queue "[^"]*" are (?:missing|not owned by the owner of extension)/;
my (%by_sig, @unexpected, @collision, @raced, @privilege, @slow, %warnings, $total);
for my $s (@sessions)
{
	for my $st (@{ $s->{results} })
	{
		$total++;
		my $outcome = $st->{state} // 'ok';
		$by_sig{"$s->{who} $st->{sig}"}{$outcome}++;
		push @slow, sprintf('%.1f s: %s', $st->{elapsed}, short($st->{sql}, 160))
		  if $st->{elapsed} > 1.5;
		$warnings{ short($st->{warning}, 160) }++ if defined $st->{warning};
		my $line = "$s->{name}: " . short($st->{sql}) . ' -> '
		  . (defined $st->{state} ? "$st->{state}: " . short($st->{error}) : 'succeeded');
		if (defined $st->{state} && !$documented{ $st->{state} } && !$concurrency{ $st->{state} })
		{
			# issue 11, item 8: a queue name that collides with another
			# queue's table or index
			if ($st->{state} eq '42P07' && ($st->{f} // '') eq 'create_queue' && !$strict)
			{
				push @collision, $line;
			}
			elsif ($st->{error} =~ $raced_re && !$strict)
			{
				push @raced, $line;
			}
			else
			{
				push @unexpected, $line;
			}
		}
		# a documented SQLSTATE with the message of the race (42501, "not
		# owned by the owner of extension"), or maintain()'s warning of it
		elsif (defined $st->{state} && $st->{error} =~ $raced_re)
		{
			push @{ $strict ? \@unexpected : \@raced }, $line;
		}
		if (defined $st->{warning} && $st->{warning} =~ $raced_re)
		{
			push @{ $strict ? \@unexpected : \@raced },
			  "$s->{name}: " . short($st->{sql}) . " -> WARNING: " . short($st->{warning});
		}
		if ($s->{who} eq 'tenant' && !defined $st->{state}
			&& (($st->{f} && $needs_privilege{ $st->{f} } && defined $st->{queue} && $none{ $st->{queue} })
				|| (defined $st->{dlq} && $none{ $st->{dlq} })))
		{
			push @privilege, $line;
		}
	}
}

note(sprintf('%d statements in %.1f s (%d sessions)', $total // 0, $ran_for, scalar @sessions));
for my $k (sort keys %by_sig)
{
	note("  $k: " . join(', ', map { "$_ $by_sig{$k}{$_}" } sort keys %{ $by_sig{$k} }));
}
note('warnings seen: ' . join(' | ', map { "$_ (x$warnings{$_})" } sort keys %warnings)) if %warnings;
note('statements slower than 1.5 s: ' . scalar(@slow) . (@slow ? "\n  " . join("\n  ", @slow[ 0 .. ($#slow < 9 ? $#slow : 9) ]) : ''));

# every public function was called by both roles
my @missing;
for my $who (qw(su tenant))
{
	for my $fn (@functions)
	{
		push @missing, "$who $fn->{sig}" unless $by_sig{"$who $fn->{sig}"};
	}
}
is(join(', ', @missing), '', 'every public function was called by the superuser and by fz_tenant');
my $matrix_left = 0;
$matrix_left += @{ $_->{queue} } for grep { $_->{kind} eq 'fuzz' } @sessions;
note("matrix statements not reached in the time given: $matrix_left") if $matrix_left;

# 1. nothing died, nothing hung
is(join("\n", map { "$_->{name}: $_->{dead}" } grep { $_->{dead} && $_->{dead} ne 'hung' } @sessions),
	'', 'every session is still connected (no crash)');
is(join("\n", @hung), '', "no statement ran longer than statement_timeout + ${hang_margin} s");

# 2. documented errors only
# The offending statements, one example per kind of error (its SQLSTATE
# and message with quoted names and numbers left out), with their counts.
sub list
{
	my (@l) = @_;
	my (%count, @kinds, %example);
	for my $line (@l)
	{
		my ($state, $message) = $line =~ / -> (\S+): (.*)$/;
		my $kind = ($state // '?') . ': ' . (($message // $line) =~ s/"[^"]*"/"…"/gr =~ s/\d+/N/gr);
		push @kinds, $kind unless $count{$kind}++;
		$example{$kind} //= $line;
	}
	return join("\n", map { "[$count{$_} x $_] e.g. $example{$_}" } @kinds);
}
is(list(@unexpected), '', 'every error carries a documented SQLSTATE');
{
	is(list(@collision), '', 'no create_queue fails with 42P07 (name collisions)');
}
{
	is(list(@raced), '', 'no call or maintenance reports a queue dropped meanwhile as damaged (XX001 "tables of queue ... are missing", 42501 "not owned")');
}
is(list(@privilege), '', 'no call of fz_tenant on a queue it holds no privilege on succeeded');

for my $s (@sessions)
{
	# a hung or dead session is killed, the others quit
	if ($s->{dead}) { eval { $s->{bp}{run}->kill_kill; 1 }; }
	else { eval { $s->{bp}->quit; 1 } or note("quitting $s->{name}: $@"); }
}

# --- the state afterwards ---------------------------------------------------------------

# 1. the server log, line by line (it is large: errors quote their values)
my (@crash, %report, @order);
open(my $lf, '<', $node->logfile) or die "cannot open the server log: $!";
while (my $line = <$lf>)
{
	chomp $line;
	if (index($line, 'terminated by signal') >= 0 || index($line, 'server process') >= 0
		|| index($line, 'TRAP:') >= 0 || index($line, 'PANIC:') >= 0
		|| index($line, 'was terminated') >= 0 || index($line, 'because of crash') >= 0)
	{
		push @crash, short($line, 300);
	}
	# internal errors (XX...), grouped by report (time and pid)
	my $x = index($line, '] XX');
	next if $x < 0 || $x > 60;
	my $key = substr($line, 0, $x + 1);
	push @order, $key unless $report{$key};
	$report{$key} .= substr($line, $x + 2, 400) . "\n";
}
close $lf;
is(join("\n", @crash[ 0 .. ($#crash < 9 ? $#crash : 9) ]), '', 'the server log shows no crash, no TRAP, no PANIC');
# those of the race with drop_queue above go to its TODO
my @internal = grep { $strict || $report{$_} !~ $raced_re } @order;
my @internal_raced = grep { !$strict && $report{$_} =~ $raced_re } @order;
is(join('', map { "$_ " . short($report{$_}, 400) . "\n" } @internal[ 0 .. ($#internal < 9 ? $#internal : 9) ]), '',
	'the server log shows no internal error (XX000, XX001, ...)');
{
	is(join('', map { "$_ " . short($report{$_}, 400) . "\n" } @internal_raced[ 0 .. ($#internal_raced < 9 ? $#internal_raced : 9) ]), '',
		'the server log shows no XX001 "tables of queue ... are missing"');
}

# (after a crash, the server restarts: wait for it, so that the rest is
# still checked)
{
	my $t0 = time();
	usleep(200_000) until run_sql('SELECT 1')->{rc} == 0 || time() - $t0 > 60;
	if (!ok(run_sql('SELECT 1')->{rc} == 0, 'the server accepts connections'))
	{
		done_testing();
		exit 1;
	}
}

my $fin = session('fz_final', 'su', 'check');
run_now($fin, 'SET statement_timeout = 0');
# every PREPARE TRANSACTION of the run was followed by COMMIT or ROLLBACK
# PREPARED; should one have failed, it would hold its locks
for my $gid (split /\n/, run_now($fin, 'SELECT gid FROM pg_prepared_xacts')->{out})
{
	note("rolling back prepared transaction $gid, left by the run");
	run_now($fin, "ROLLBACK PREPARED '$gid'");
}
# run $sql in the checking session: its output, or "ERROR <state>: <message>"
sub fin
{
	my ($sql) = @_;
	my $st = run_now($fin, $sql);
	return defined $st->{state} ? "ERROR $st->{state}: " . short($st->{error}) : $st->{out};
}

fin(q{
CREATE FUNCTION fz_counts(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    ready bigint; in_flight bigint; delayed bigint; dead bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM mq.%I', 'q_' || q) INTO ready;
    EXECUTE format('SELECT count(*) FILTER (WHERE leased), count(*) FILTER (WHERE NOT leased) FROM mq.%I', 'w_' || q)
      INTO in_flight, delayed;
    SELECT count(*) INTO dead FROM mq.dead_letter_store d WHERE d.queue = q;
    RETURN concat_ws('|', ready, in_flight, delayed, dead);
END $$});

is(fin(q{SELECT coalesce(string_agg(queue, ', ' ORDER BY queue), '') FROM mq.queue_catalog
		WHERE to_regclass(format('mq.%I', 'q_' || queue)) IS NULL
		   OR to_regclass(format('mq.%I', 'w_' || queue)) IS NULL}),
	'', 'no queue lost its tables');
is(fin(q{SELECT coalesce(string_agg(c.relname, ', ' ORDER BY c.relname), '') FROM pg_class c
		  JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'mq' AND c.relkind = 'r' AND c.relname ~ '^[qw]_'
		   AND substr(c.relname, 3) NOT IN (SELECT queue FROM mq.queue_catalog)}),
	'', 'no queue table without its queue');

my @queues = split /\n/, fin('SELECT queue FROM mq.queue_catalog ORDER BY queue');
note('queues at the end: ' . join(', ', map { short($_, 50) } @queues));

# mq.metrics(q) and metrics_prometheus() against the tables, per queue
sub gauges_agree
{
	my ($when) = @_;
	my @bad;
	my $prom = fin('SELECT mq.metrics_prometheus()');
	my %p;
	push @bad, "metrics_prometheus() failed: $prom" if $prom =~ /^ERROR/;
	while ($prom =~ /^mq_(ready|in_flight|delayed|dead)\{queue="([^"]+)"\} (\d+)$/mg)
	{
		$p{$2}{$1} = $3;
	}
	for my $q (@queues)
	{
		my $m = fin("SELECT concat_ws('|', ready, in_flight, delayed, dead) FROM mq.metrics('$q')");
		my $t = fin("SELECT fz_counts('$q')");
		if ($m =~ /^ERROR/ || $t =~ /^ERROR/)
		{
			push @bad, "$q: mq.metrics: $m; tables: $t";
			next;
		}
		push @bad, "$q: mq.metrics $m, tables $t" if $m ne $t;
		my $pl = join('|', map { $p{$q}{$_} // '-' } qw(ready in_flight delayed dead));
		push @bad, "$q: metrics_prometheus $pl, tables $t" if $prom !~ /^ERROR/ && $pl ne $t;
	}
	is(join("\n", @bad), '', "$when: every queue's gauges (mq.metrics and metrics_prometheus) equal its rows");
}

gauges_agree('after the run');

is(fin('SELECT count(*) FROM mq.metrics()'), scalar(@queues), 'mq.metrics() reports every queue');

{
	my $st = run_now($fin, 'SELECT mq.maintain()');
	ok(!defined $st->{state} && !defined $st->{warning}, 'mq.maintain() maintains every queue without a warning')
	  or diag(short(($st->{error} // '') . ($st->{warning} // ''), 1000));
}
gauges_agree('after mq.maintain()');

# every queue can still be received from
my @stuck;
for my $q (@queues)
{
	my $res = fin("SELECT count(*) FROM mq.receive('$q', 10000, '1 hour')");
	push @stuck, "$q: $res" if $res =~ /^ERROR/;
}
is(join("\n", @stuck), '', 'every queue can still be received from');
gauges_agree('after receiving everything');

is( fin(q{
		WITH c AS (SELECT mq.create_queue('fz_final') AS created),
		     s AS (SELECT mq.send('fz_final', '{"last": true}') FROM c)
		SELECT count(*) FROM s}), '1', 'a new queue can still be created and sent to');
is(fin(q{SELECT count(*) FILTER (WHERE mq.ack('fz_final', r.id, r.receipt)) FROM mq.receive('fz_final') r}),
	'1', 'and received from and acked');
is(fin(q{SELECT concat_ws('|', ready, in_flight, delayed, dead, total_sent, total_acked) FROM mq.metrics('fz_final')}),
	'0|0|0|0|1|1', 'and its metrics say so');
$fin->{bp}->quit;

# 4. privileges: what fz_tenant sees
my $none_list = join(',', sort keys %none);
$r = run_sql(qq{
SELECT count(*) FROM mq.metrics() WHERE queue = ANY ('{$none_list}');
SELECT count(*) FROM mq.queues WHERE queue = ANY ('{$none_list}');
SELECT count(*) FROM mq.dead_letters WHERE queue = ANY ('{$none_list}');
SELECT count(*) FROM mq.subscriptions WHERE queue = ANY ('{$none_list}');
SELECT mq.metrics_prometheus() ~ 'queue="fz_(a|b|n1|n2)"';
}, 'fz_tenant');
is("$r->{rc}:$r->{out}", "0:0\n0\n0\n0\nf",
	'fz_tenant sees nothing of the queues it holds no privilege on (metrics, views, prometheus)')
  or diag(short($r->{err}, 1000));
is(sql(q{SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolsuper}),
	$superuser, 'no role became superuser');
{
	is(sql(q{
		SELECT coalesce(string_agg(DISTINCT grantee::oid::text, ','), '') FROM (
		    SELECT grantee FROM mq.privilege_catalog
		    UNION ALL SELECT grantee FROM mq.creator_catalog
		    UNION ALL SELECT grantee FROM mq.topic_privilege_catalog) g
		 WHERE grantee::oid NOT IN (SELECT oid FROM pg_roles)}),
		'', 'every grantee in mq\'s privilege catalogs is an existing role');
}

$node->stop;
done_testing();
