
# Copyright: mq authors; PostgreSQL License.
#
# Issue 11, item 1: plans freed while in use.  Each backend caches, per
# queue, its settings and kept SPI plans (src/catalog.c).  Any queue change
# (create, alter, drop of ANY queue) marks every cached queue stale, and the
# next mq_queue_lookup of a stale queue frees its plans and reloads it in
# place, even when a caller up the stack is executing one of those plans
# (or keeps a pointer to it, as the lane loop of receive does).  Today this
# kills the backend with a segfault (the postmaster then restarts every
# session of the cluster) or fails with an internal error ("cannot apply
# ResourceOwner to non-saved cached plan").
#
# This proves, path by path, that a statement inside mq survives a catalog
# change that arrives while it runs, and leaves the messages where they
# belong:
#   - no server process crashed (server log) and the session still answers;
#   - the statement either works, with the expected result and every message
#     where it should be, or is refused with a proper error (not an internal
#     XX error) that leaves everything as it was;
# for: receive over several priority lanes (the path of the issue; each lane
# is a separate execution of one kept plan), with the change made by a
# trigger or committed by another session; send; publish fan-out; dead
# letters routed to a dead_letter_queue (by receive and by nack); promotion
# of delayed messages (by receive and by mq.maintain); redrive; ack; pop;
# send_batch.  In each case a trigger (created by the superuser) on one of
# mq's tables calls mq again: it creates a queue (the catalog change) and
# reads mq.metrics of the queue whose statement is running (the lookup that
# frees the plans).
#
# What each case gives on today's code (PostgreSQL 15, built without
# --enable-cassert):
# segfault: promotion by mq.maintain, send, publish, dead-lettering into a
# dead_letter_queue by receive and by nack, promotion by receive, redrive,
# ack; internal error XX000 "cannot apply ResourceOwner to non-saved cached
# plan" (the next lane runs the freed plan): receive over several lanes
# (trigger or another session), pop over several lanes.
#
# The cases marked "guard" pass today and guard the fix: a trigger that
# only sleeps while another session creates a queue; a trigger that creates
# a queue and sends to another queue; send_batch (its plan is freed while it
# runs too, but the freed memory is not reused before the statement ends,
# so nothing shows); a blocking receive while other sessions create, alter
# and drop queues (no trigger at all); one statement calling mq twice around
# another session's create_queue.  Plans are freed only by a lookup of the
# same queue, and invalidations from other sessions are taken in only when
# a relation is locked for the first time in the transaction (or where mq
# asks for them, as publish does before it starts), so without a
# nested mq call on the queue in use (a trigger, or another object attached
# to mq's tables by their owner) nothing is freed under a running
# statement today.  A fix that defers or counts frees must keep these
# working.
#
# No background worker: the statements under test do the work themselves.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;
use Time::HiRes qw(usleep);

my $node = mq_node('plan_lifetime', qq{
mq.worker_enabled = off
restart_after_crash = on
});

sub sql { return $node->safe_psql('postgres', $_[0]); }

# A crashed backend makes the postmaster log one of these.
my $crash_re =
  qr/terminated by signal|was terminated by exception|terminating any other active server processes/;

# After a crash the server restarts on its own: wait until it accepts
# connections again (the next case needs it).
sub wait_ready
{
	for (1 .. 600)
	{
		my $ret = $node->psql('postgres', 'SELECT 1');
		return 1 if defined $ret && $ret == 0;
		usleep(100_000);
	}
	return 0;
}

# A session that, once another client backend waits on $event, runs $then.
sub start_helper
{
	my ($event, $then) = @_;
	my $h = $node->background_psql('postgres', on_error_stop => 0);
	$h->query_until(qr/helper started/,
		"\\echo helper started\nSELECT public.wait_for_backend('$event');\n$then\n\\echo helper done\n"
	);
	return $h;
}

sub stop_helper
{
	my ($h) = @_;
	eval {
		pump_until($h->{run}, $h->{timeout}, \$h->{stdout}, qr/helper done/);
		$h->quit;
	};
	return;
}

# One case:
#   setup    SQL run first (queues, messages, the trigger)
#   helper   [wait event, SQL]: another session runs SQL once the statement
#            waits on that event
#   stmt     the statement under test, run alone in a session of its own
#   cleanup  SQL run after it (drops the trigger)
#   state    a query over the case's queues: where the messages are
#   expect   what stmt returns when it works, and state then (after)
#   before   state if stmt was refused (a refused statement changes nothing)
# Checks: no server process crashed since the statement started, the
# statement's session still answers, and either the statement worked (its
# output and the state are right) or it was refused with a proper error,
# not an internal XX one, and changed nothing.
sub run_case
{
	my (%c) = @_;
	my $name = $c{name};
	my $h;

	sql($c{setup}) if defined $c{setup};
	my $offset = -s $node->logfile;
	$h = start_helper(@{ $c{helper} }) if defined $c{helper};
	my ($ret, $out, $err) = $node->psql(
		'postgres',
		"\\set VERBOSITY verbose\n$c{stmt};\nSELECT 'session still answers';\n",
		on_error_stop => 0,
		timeout => $PostgreSQL::Test::Utils::timeout_default);
	stop_helper($h) if defined $h;
	$out //= '';
	$err //= '';
	my $alive = ($out =~ s/\n?session still answers$//);

	ok(wait_ready(), "$name: the server accepts connections");
	ok(!$node->log_contains($crash_re, $offset), "$name: no server process crashed");
	ok($alive, "$name: the session still answers after the statement")
	  or diag("stderr: $err");

	my $state = sql(($c{cleanup} // '') . ";\n$c{state}");
	if ($alive && $err !~ /ERROR/)
	{
		is($out, $c{expect}, "$name: the statement returned what it should");
		is($state, $c{after}, "$name: every message is where it should be");
	}
	else
	{
		my ($sqlstate) = $err =~ /ERROR:\s+([0-9A-Z]{5}):/;
		ok(defined $sqlstate && $sqlstate !~ /^XX/,
			"$name: if refused, then with a proper error, not an internal one (got "
			  . ($sqlstate // 'no error, the connection was lost') . ')')
		  or diag("stderr: $err");
		is($state, $c{before}, "$name: and a refused statement changed nothing");
	}
	return;
}

sql("CREATE EXTENSION mq");

# What a superuser might hang on a queue table: provision a queue, look at
# the queue's metrics (args: the queue to look at, a prefix for the queues
# it creates, optionally a queue to drop).
sql(q{
CREATE FUNCTION public.provision_and_look() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	msg_id bigint := CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
BEGIN
	PERFORM mq.create_queue(TG_ARGV[1] || '_' || msg_id);
	IF TG_NARGS > 2 THEN
		PERFORM mq.drop_queue(TG_ARGV[2]);
	END IF;
	PERFORM ready FROM mq.metrics(TG_ARGV[0]);
	RETURN NULL;
END $$;

-- wait (up to ~10 s) until queue name exists, as committed by another session
CREATE FUNCTION public.wait_for_queue(name text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1 .. 1000 LOOP
		IF EXISTS (SELECT 1 FROM mq.queues q WHERE q.queue = name) THEN
			RETURN true;
		END IF;
		PERFORM pg_sleep(0.01);
	END LOOP;
	RETURN false;
END $$;

-- wait (up to ~10 s) until another client backend waits on event
CREATE FUNCTION public.wait_for_backend(event text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1 .. 1000 LOOP
		PERFORM pg_stat_clear_snapshot();
		IF EXISTS (SELECT 1 FROM pg_stat_activity
		            WHERE wait_event = event AND backend_type = 'client backend'
		              AND pid <> pg_backend_pid()) THEN
			RETURN true;
		END IF;
		PERFORM pg_sleep(0.01);
	END LOOP;
	RETURN false;
END $$;

-- args: a queue to wait for; then optionally a queue to send a note to and
-- a queue to look at
CREATE FUNCTION public.wait_then_look() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.wait_for_queue(TG_ARGV[0]);
	IF TG_NARGS > 1 THEN
		PERFORM mq.send(TG_ARGV[1], jsonb_build_object('leased', NEW.id));
		PERFORM ready FROM mq.metrics(TG_ARGV[2]);
	END IF;
	RETURN NULL;
END $$;

-- a trigger that sends a note to another queue and creates a queue
CREATE FUNCTION public.note_elsewhere() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM mq.create_queue(TG_ARGV[1] || '_' || NEW.id);
	PERFORM mq.send(TG_ARGV[0], jsonb_build_object('leased', NEW.id));
	RETURN NULL;
END $$;

-- sleep until every wait row of the queue is due (delayed messages, leases)
CREATE FUNCTION public.until_due(q text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	last timestamptz;
BEGIN
	EXECUTE format('SELECT max(vt) FROM mq.%I', 'w_' || q) INTO last;
	PERFORM pg_sleep(GREATEST(0, extract(epoch FROM last - clock_timestamp()) + 0.02));
END $$;
});

# number of queues whose name starts with prefix_
sub made { return "(SELECT count(*) FROM mq.queues WHERE queue LIKE '$_[0]\\_%')"; }

sub trigger
{
	my ($table, $when, $func, @args) = @_;
	return "CREATE TRIGGER look AFTER $when ON mq.$table FOR EACH ROW EXECUTE FUNCTION public.$func("
	  . join(', ', map { "'$_'" } @args) . ')';
}

# --- promotion by mq.maintain: a trigger on the ready table -----------------
# (first: maintain walks every queue of the database)
run_case(
	name => 'promotion by maintain, trigger on the ready table',
	setup => q{SELECT mq.create_queue('mt');
		SELECT mq.send('mt', '{"n": "m1"}', delay => '100 ms'), mq.send('mt', '{"n": "m2"}', delay => '100 ms');}
	  . trigger('q_mt', 'INSERT', 'provision_and_look', 'mt', 'mt_made')
	  . q{; SELECT public.until_due('mt')},
	stmt => 'SELECT mq.maintain() >= 2',
	cleanup => 'DROP TRIGGER look ON mq.q_mt',
	state => "SELECT concat_ws('|', (SELECT count(*) FROM mq.q_mt), (SELECT count(*) FROM mq.w_mt), "
	  . made('mt_made') . ')',
	expect => 't',
	after => '2|0|2',
	before => '0|2|0');

# --- receive over several lanes: a trigger on the wait table (the issue) ----
run_case(
	name => 'receive over three lanes, trigger creates a queue and looks at the queue',
	setup => q{SELECT mq.create_queue('rl');
		SELECT mq.send('rl', '{"n": "hi"}', priority => 2), mq.send('rl', '{"n": "mid"}', priority => 1),
		       mq.send('rl', '{"n": "lo"}', priority => 0);}
	  . trigger('w_rl', 'INSERT', 'provision_and_look', 'rl', 'rl_made'),
	stmt => "SELECT string_agg(message->>'n', ',') FROM mq.receive('rl', 3)",
	cleanup => 'DROP TRIGGER look ON mq.w_rl',
	state => "SELECT concat_ws('|', (SELECT count(*) FROM mq.q_rl), (SELECT count(*) FROM mq.w_rl WHERE leased), "
	  . made('rl_made') . ')',
	expect => 'hi,mid,lo',
	after => '0|3|3',
	before => '3|0|0');

# --- the same, the catalog change committed by another session --------------
# The trigger of the first lane waits until another session has created a
# queue, then sends a note to another queue (whose first lock takes in the
# invalidation) and looks at the queue being received from.
run_case(
	name => 'receive over two lanes, queue created by another session meanwhile',
	setup => q{SELECT mq.create_queue('rc'), mq.create_queue('rc_log');
		SELECT mq.send('rc', '{"n": "hi"}', priority => 1), mq.send('rc', '{"n": "lo"}', priority => 0);}
	  . trigger('w_rc', 'INSERT', 'wait_then_look', 'rc_unrelated', 'rc_log', 'rc'),
	helper => [ 'PgSleep', "SELECT mq.create_queue('rc_unrelated');" ],
	stmt => "SELECT string_agg(message->>'n', ',') FROM mq.receive('rc', 2)",
	cleanup => 'DROP TRIGGER look ON mq.w_rc',
	state => "SELECT concat_ws('|', (SELECT count(*) FROM mq.q_rc), (SELECT count(*) FROM mq.w_rc WHERE leased), "
	  . "(SELECT count(*) FROM mq.q_rc_log))",
	expect => 'hi,lo',
	after => '0|2|2',
	before => '2|0|0');

# --- guard: a trigger that only sleeps while another session creates a queue -
run_case(
	name => 'guard: receive over two lanes, trigger only sleeps while a queue is created',
	setup => q{SELECT mq.create_queue('rs');
		SELECT mq.send('rs', '{"n": "hi"}', priority => 1), mq.send('rs', '{"n": "lo"}', priority => 0);}
	  . trigger('w_rs', 'INSERT', 'wait_then_look', 'rs_unrelated'),
	helper => [ 'PgSleep', "SELECT mq.create_queue('rs_unrelated');" ],
	stmt => "SELECT string_agg(message->>'n', ',') FROM mq.receive('rs', 2)",
	cleanup => 'DROP TRIGGER look ON mq.w_rs',
	state => "SELECT concat_ws('|', (SELECT count(*) FROM mq.q_rs), (SELECT count(*) FROM mq.w_rs WHERE leased))",
	expect => 'hi,lo',
	after => '0|2',
	before => 'no refusal: the trigger does not call mq');

# --- guard: the trigger creates a queue and sends to another queue -----------
run_case(
	name => 'guard: receive over two lanes, trigger creates a queue and sends elsewhere',
	setup => q{SELECT mq.create_queue('ro'), mq.create_queue('ro_log');
		SELECT mq.send('ro', '{"n": "hi"}', priority => 1), mq.send('ro', '{"n": "lo"}', priority => 0);}
	  . trigger('w_ro', 'INSERT', 'note_elsewhere', 'ro_log', 'ro_made'),
	stmt => "SELECT string_agg(message->>'n', ',') FROM mq.receive('ro', 2)",
	cleanup => 'DROP TRIGGER look ON mq.w_ro',
	state => "SELECT concat_ws('|', (SELECT count(*) FROM mq.q_ro), (SELECT count(*) FROM mq.w_ro WHERE leased), "
	  . "(SELECT count(*) FROM mq.q_ro_log), " . made('ro_made') . ')',
	expect => 'hi,lo',
	after => '0|2|2|2',
	before => '2|0|0|0');

# --- send: a trigger on the ready table --------------------------------------
run_case(
	name => 'send, trigger on the ready table',
	setup => "SELECT mq.create_queue('sd');"
	  . trigger('q_sd', 'INSERT', 'provision_and_look', 'sd', 'sd_made'),
	stmt => q{SELECT mq.send('sd', '{"n": "one"}') IS NOT NULL},
	cleanup => 'DROP TRIGGER look ON mq.q_sd',
	state => "SELECT concat_ws('|', (SELECT count(*) FROM mq.q_sd), " . made('sd_made') . ')',
	expect => 't',
	after => '1|1',
	before => '0|0');

# --- guard: send_batch, a trigger on the ready table --------------------------
run_case(
	name => 'guard: send_batch, trigger on the ready table',
	setup => "SELECT mq.create_queue('sb');"
	  . trigger('q_sb', 'INSERT', 'provision_and_look', 'sb', 'sb_made'),
	stmt => q{SELECT count(*) FROM mq.send_batch('sb', ARRAY['{"n": 1}', '{"n": 2}', '{"n": 3}']::jsonb[])},
	cleanup => 'DROP TRIGGER look ON mq.q_sb',
	state => "SELECT concat_ws('|', (SELECT count(*) FROM mq.q_sb), " . made('sb_made') . ')',
	expect => '3',
	after => '3|3',
	before => '0|0');

# --- publish: fan-out to three queues, a trigger on the second one -----------
run_case(
	name => 'publish to three queues, trigger on one creates and drops queues',
	setup => q{SELECT mq.create_queue(q) FROM unnest(ARRAY['pa', 'pb', 'pc', 'p_old']) q;
		SELECT mq.subscribe(q, 'orders.#') FROM unnest(ARRAY['pa', 'pb', 'pc']) q;}
	  . trigger('q_pb', 'INSERT', 'provision_and_look', 'pb', 'pb_made', 'p_old'),
	stmt => q{SELECT mq.publish('orders.eu', '{"n": "o1"}')},
	cleanup => 'DROP TRIGGER look ON mq.q_pb',
	state => "SELECT concat_ws('|', (SELECT count(*) FROM mq.q_pa), (SELECT count(*) FROM mq.q_pb), "
	  . "(SELECT count(*) FROM mq.q_pc), " . made('pb_made')
	  . ", (SELECT count(*) FROM mq.queues WHERE queue = 'p_old'))",
	expect => '3',
	after => '1|1|1|1|0',
	before => '0|0|0|0|1');

# --- dead letters into a dead_letter_queue, by receive ------------------------
# Two expired leases past max_attempts: receive moves them to the DLQ.
run_case(
	name => 'receive dead-letters expired leases into a dead_letter_queue, trigger on the DLQ',
	setup => q{SELECT mq.create_queue('dd'), mq.create_queue('dx', max_attempts => 1, dead_letter_queue => 'dd');
		SELECT mq.send('dx', '{"n": 1}'), mq.send('dx', '{"n": 2}');
		SELECT count(*) FROM mq.receive('dx', 2, visibility_timeout => '10 ms');}
	  . trigger('q_dd', 'INSERT', 'provision_and_look', 'dd', 'dd_made')
	  . q{; SELECT public.until_due('dx')},
	stmt => "SELECT count(*) FROM mq.receive('dx', 2)",
	cleanup => 'DROP TRIGGER look ON mq.q_dd',
	state => "SELECT concat_ws('|', (SELECT count(*) FROM mq.q_dx) + (SELECT count(*) FROM mq.w_dx), "
	  . "(SELECT count(*) FROM mq.q_dd), " . made('dd_made') . ')',
	expect => '0',
	after => '0|2|2',
	before => '2|0|0');

# --- dead letters into a dead_letter_queue, by nack ---------------------------
my $nid = sql(q{SELECT mq.create_queue('nd'), mq.create_queue('nx', max_attempts => 1, dead_letter_queue => 'nd');
	SELECT id FROM mq.send('nx', '{"n": 1}') id; SELECT count(*) FROM mq.receive('nx');});
($nid) = (split /\n/, $nid)[1];
run_case(
	name => 'nack on the last attempt dead-letters into a dead_letter_queue, trigger on the DLQ',
	setup => trigger('q_nd', 'INSERT', 'provision_and_look', 'nd', 'nd_made'),
	stmt => "SELECT mq.nack('nx', $nid)",
	cleanup => 'DROP TRIGGER look ON mq.q_nd',
	state => "SELECT concat_ws('|', (SELECT count(*) FROM mq.w_nx), (SELECT count(*) FROM mq.q_nd), "
	  . made('nd_made') . ')',
	expect => 't',
	after => '0|1|1',
	before => '1|0|0');

# --- promotion of delayed messages by receive --------------------------------
run_case(
	name => 'receive promotes delayed messages, trigger on the ready table',
	setup => q{SELECT mq.create_queue('dl');
		SELECT mq.send('dl', '{"n": "d1"}', delay => '100 ms'), mq.send('dl', '{"n": "d2"}', delay => '100 ms');}
	  . trigger('q_dl', 'INSERT', 'provision_and_look', 'dl', 'dl_made')
	  . q{; SELECT public.until_due('dl')},
	stmt => "SELECT string_agg(message->>'n', ',' ORDER BY id) FROM mq.receive('dl', 5)",
	cleanup => 'DROP TRIGGER look ON mq.q_dl',
	state => "SELECT concat_ws('|', (SELECT count(*) FROM mq.q_dl), (SELECT count(*) FROM mq.w_dl WHERE leased), "
	  . "(SELECT count(*) FROM mq.w_dl WHERE NOT leased), " . made('dl_made') . ')',
	expect => 'd1,d2',
	after => '0|2|0|2',
	before => '0|0|2|0');

# --- redrive: a trigger on the ready table ------------------------------------
my $rid = sql(q{SELECT mq.create_queue('rr', max_attempts => 1);
	SELECT id FROM mq.send('rr', '{"n": 1}') id; SELECT count(*) FROM mq.receive('rr');});
($rid) = (split /\n/, $rid)[1];
run_case(
	name => 'redrive, trigger on the ready table',
	setup => "SELECT mq.nack('rr', $rid);"
	  . trigger('q_rr', 'INSERT', 'provision_and_look', 'rr', 'rr_made'),
	stmt => "SELECT mq.redrive('rr')",
	cleanup => 'DROP TRIGGER look ON mq.q_rr',
	state => "SELECT concat_ws('|', (SELECT count(*) FROM mq.q_rr), "
	  . "(SELECT count(*) FROM mq.dead_letters WHERE queue = 'rr'), " . made('rr_made') . ')',
	expect => '1',
	after => '1|0|1',
	before => '0|1|0');

# --- ack: a trigger on the wait table ----------------------------------------
my $aids = sql(q{SELECT mq.create_queue('ak');
	SELECT count(*) FROM (SELECT mq.send('ak', '{"n": 1}'), mq.send('ak', '{"n": 2}')) s;
	SELECT string_agg(id::text, ',') FROM mq.receive('ak', 2);});
$aids = (split /\n/, $aids)[2];
run_case(
	name => 'ack, trigger on the wait table',
	setup => trigger('w_ak', 'DELETE', 'provision_and_look', 'ak', 'ak_made'),
	stmt => "SELECT mq.ack('ak', ARRAY[$aids]::bigint[])",
	cleanup => 'DROP TRIGGER look ON mq.w_ak',
	state => "SELECT concat_ws('|', (SELECT count(*) FROM mq.w_ak), " . made('ak_made') . ')',
	expect => '2',
	after => '0|2',
	before => '2|0');

# --- pop over two lanes: a trigger on the ready table -------------------------
run_case(
	name => 'pop over two lanes, trigger on the ready table',
	setup => q{SELECT mq.create_queue('pp');
		SELECT mq.send('pp', '{"n": "hi"}', priority => 1), mq.send('pp', '{"n": "lo"}', priority => 0);}
	  . trigger('q_pp', 'DELETE', 'provision_and_look', 'pp', 'pp_made'),
	stmt => "SELECT string_agg(message->>'n', ',') FROM mq.pop('pp', 2)",
	cleanup => 'DROP TRIGGER look ON mq.q_pp',
	state => "SELECT concat_ws('|', (SELECT count(*) FROM mq.q_pp), " . made('pp_made') . ')',
	expect => 'hi,lo',
	after => '0|2',
	before => '2|0');

# --- guard, no trigger: a blocking receive while queues change ----------------
# While the receive sleeps, another session creates, alters and drops
# queues; the waiter's expired lease past max_attempts is dead-lettered into
# its dead_letter_queue after that (a lookup of another queue mid-call);
# then two messages (two lanes) wake it.
run_case(
	name => 'guard: blocking receive while other sessions create, alter and drop queues',
	setup => q{SELECT mq.create_queue('tw_dlq'), mq.create_queue('tw_old');
		SELECT mq.create_queue('tw', max_attempts => 1, dead_letter_queue => 'tw_dlq');
		SELECT mq.send('tw', '{"n": "old"}');
		SELECT count(*) FROM mq.receive('tw', 1, visibility_timeout => '1 s');},
	helper => [
		'Extension', q{
SELECT mq.create_queue('tw_new');
SELECT mq.alter_queue('tw_dlq', visibility_timeout => '1 minute');
SELECT mq.drop_queue('tw_old');
SELECT mq.alter_queue('tw', retry_delay => '2 s');
SELECT public.until_due('tw');
SELECT pg_sleep(0.3);
BEGIN;
SELECT mq.send('tw', '{"n": "n1"}', priority => 1);
SELECT mq.send('tw', '{"n": "n2"}', priority => 0);
COMMIT;
}
	],
	stmt => "SELECT string_agg(message->>'n', ',' ORDER BY id) FROM mq.receive('tw', 5, wait => '20 s')",
	state => "SELECT concat_ws('|', (SELECT count(*) FROM mq.q_tw), "
	  . "(SELECT string_agg(message->>'n', ',' ORDER BY id) FROM mq.w_tw WHERE leased), "
	  . "(SELECT string_agg(message->>'n', ',') FROM mq.q_tw_dlq), "
	  . "(SELECT string_agg(queue, ',' ORDER BY queue) FROM mq.queues WHERE queue LIKE 'tw%'))",
	expect => 'n1,n2',
	after => '0|n1,n2|old|tw,tw_dlq,tw_new',
	before => 'no refusal: nothing here calls mq from a trigger');

# --- guard, no trigger: one statement calls mq twice around a change ----------
run_case(
	name => 'guard: one statement sends twice while another session creates a queue',
	setup => "SELECT mq.create_queue('t2'), mq.create_queue('t2_other')",
	helper => [ 'PgSleep', "SELECT mq.create_queue('t2_unrelated');" ],
	stmt => q{SELECT concat_ws('|', mq.send('t2', '{"n": 1}') IS NOT NULL, public.wait_for_queue('t2_unrelated'),
		mq.send('t2_other', '{"n": 0}') IS NOT NULL, mq.send('t2', '{"n": 2}') IS NOT NULL)},
	state => "SELECT concat_ws('|', (SELECT string_agg(message->>'n', ',' ORDER BY id) FROM mq.q_t2), "
	  . "(SELECT count(*) FROM mq.q_t2_other))",
	expect => 't|t|t|t',
	after => '1,2|1',
	before => 'no refusal: nothing here calls mq from a trigger');

ok(!$node->log_contains($crash_re, 0), 'no server process crashed during the whole test');

$node->stop;
done_testing();
