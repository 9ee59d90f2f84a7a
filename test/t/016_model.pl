
# Copyright: mq authors; PostgreSQL License.
#
# Randomized model test (issue 10, "Done when": the randomized model test;
# it reproduces items 1, 2a and 7 among others when they occur).
#
# Proves, for queues under randomized concurrent load with failover and
# restart, the promises users rely on:
#   - no loss: every committed send is acked exactly once (or popped) or is
#     in mq.dead_letters; nothing acked that was never committed;
#   - no double ack, no message acked and also dead-lettered;
#   - no overlapping leases: a message is delivered again only after its
#     lease ended or after it was nacked; never after it was acked;
#   - mq.metrics() gauges (ready, in flight, delayed, dead, and whether an
#     oldest ready age exists) equal the real counts of mq.q_<q>, mq.w_<q>
#     and mq.dead_letters, for every queue, once everything is settled;
#   - producers and consumers never get errors they did not cause (no
#     deadlock on relation locks, no "out of shared memory", ...);
#   - metrics polling and mq.maintain() never fail, on the primary and on a
#     hot standby (mq.metrics must work read-only there);
#   - no server process crashes, no session hangs.
#
# Actors are background_psql sessions driven asynchronously from one Perl
# loop (each gets its next step when its previous one returned, so they run
# in parallel and a lock wait delays only that actor):
#   producers: send with priorities (queue mb uses 12 distinct priorities,
#     more than the 8 lanes; queue mc changes its priorities by phase),
#     delays 0-2 s, send_batch, dedup keys, savepoints rolled back, whole
#     transactions rolled back, long transactions kept open across many
#     steps;
#   consumers: receive (1-5, leases of 150 ms - 1.2 s so they expire), ack,
#     nack, let leases expire, roll back after receive, fail after receive
#     (division by zero), savepoints, pop, blocking receive, long
#     transactions;
#   chaos: create / drop / recreate / purge OTHER queues (x_*), drops inside
#     transactions that also received, rolled-back drops (also of the
#     checked queues, which leaves them intact), mq.metrics(),
#     mq.metrics_prometheus(), mq.maintain();
#   monitors: metrics and maintain polling on the primary and on a hot
#     standby.
# Timeline: (1) primary with the worker off, metrics polled on a hot
# standby; the primary restarts; (2) primary with the worker on (ALTER
# SYSTEM + reload), standby still polled; the primary crashes (immediate
# stop) and the standby is promoted; its first transaction drops ma in a
# rolled-back savepoint, receives from another queue, drops that queue and
# sends to ma (the shape of issue 10 item 1); (3) the promoted node with the
# worker off.  Then every session finishes, the queues are drained (receive
# + ack until empty, the clock past every delay) and the checks run.
# mc uses priority 0 in phase 1, 0-3 in phase 2, 0, 4 and 5 in phase 3, and
# md (no load, drained at the end) gets a burst at a new priority just
# before the failover: lanes first used on the primary after the standby
# looked at the queue, and not used again after the promotion, hold
# messages at the promotion (issue 10 item 2a).
#
# Bookkeeping lives in ordinary tables of the same database, written in the
# same transaction as the mq call, so it commits or rolls back with it (and
# survives the failover consistently): sent, leases, acked, nacked.
#
# Default: MQ_MODEL_SECONDS=30 seconds of load (~50 s in all).  Set
# MQ_MODEL_SECONDS for longer runs and MQ_MODEL_SEED to replay a seed (the
# seed is printed; concurrency makes a replay similar, not identical).
# MQ_MODEL_NO_PRELOAD=1 checks the model itself: without
# shared_preload_libraries there are no lane heads and no shared counters
# (the README says everything is exact then), so every check must pass
# except that no worker runs.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

$SIG{PIPE} = 'IGNORE';

my $LOAD_SECONDS = $ENV{MQ_MODEL_SECONDS} // 30;
my $PRELOAD = !$ENV{MQ_MODEL_NO_PRELOAD};
$LOAD_SECONDS = 6 if $LOAD_SECONDS < 6;
my $SEED = $ENV{MQ_MODEL_SEED} // (1 + int(rand(2_000_000_000)));
diag("016_model: seed $SEED, $LOAD_SECONDS s of load"
	  . " (replay: MQ_MODEL_SEED=$SEED; longer: MQ_MODEL_SECONDS=N)");

my $T_START = time();
# queues under load, and the queues whose messages are checked: md gets no
# load, only a handful of messages at the start and a burst at a new
# priority just before the failover
my @LOADED = qw(ma mb mc);
my @CHECKED = qw(ma mb mc md);

# ---------------------------------------------------------------------------
# nodes

my $primary = PostgreSQL::Test::Cluster->new('model_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf',
	($PRELOAD ? "shared_preload_libraries = 'mq'\nmq.worker_enabled = off\nmq.worker_naptime = '200ms'" : '')
	  . qq{
max_connections = 60
hot_standby_feedback = on
max_standby_streaming_delay = -1
});
$primary->start;

sub sql_on { my ($node, $q) = @_; return $node->safe_psql('postgres', $q); }

my $queue_opts = "visibility_timeout => '500 ms', retry_delay => '50 ms', retry_delay_max => '300 ms'";
sql_on($primary, qq{
CREATE EXTENSION mq;
-- ma dead-letters after 3 deliveries; mb and mc never do
SELECT mq.create_queue('ma', max_attempts => 3, $queue_opts);
SELECT mq.create_queue('mb', max_attempts => 1000, $queue_opts);
SELECT mq.create_queue('mc', max_attempts => 1000, $queue_opts);
SELECT mq.create_queue('md', max_attempts => 1000, $queue_opts);
CREATE TABLE sent (id bigint NOT NULL, queue text NOT NULL, prio int, delay interval,
                   dedup text, actor text NOT NULL,
                   at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE leases (id bigint NOT NULL, queue text NOT NULL, actor text NOT NULL,
                     t_from timestamptz NOT NULL, t_until timestamptz NOT NULL,
                     attempt int, how text NOT NULL,
                     xid bigint NOT NULL DEFAULT txid_current());
CREATE INDEX ON leases (xid);
CREATE TABLE acked (id bigint NOT NULL, queue text NOT NULL, actor text NOT NULL,
                    how text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE nacked (id bigint NOT NULL, queue text NOT NULL, actor text NOT NULL,
                     at timestamptz NOT NULL DEFAULT clock_timestamp());
-- a head start: two lanes in ma, 12 in mb, one in mc and md
INSERT INTO sent (id, queue, prio, delay, actor)
  SELECT mq.send('ma', jsonb_build_object('seed', g), NULL, '0', g % 2), 'ma', g % 2, '0', 'setup'
    FROM generate_series(1, 150) g;
INSERT INTO sent (id, queue, prio, delay, actor)
  SELECT mq.send('mb', jsonb_build_object('seed', g), NULL, '0', g % 12 - 2), 'mb', g % 12 - 2, '0', 'setup'
    FROM generate_series(1, 150) g;
INSERT INTO sent (id, queue, prio, delay, actor)
  SELECT mq.send('mc', jsonb_build_object('seed', g), NULL, '0', 0), 'mc', 0, '0', 'setup'
    FROM generate_series(1, 150) g;
INSERT INTO sent (id, queue, prio, delay, actor)
  SELECT mq.send('md', jsonb_build_object('seed', g), NULL, '0', 0), 'md', 0, '0', 'setup'
    FROM generate_series(1, 20) g;
});

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('model_standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

# ---------------------------------------------------------------------------
# per-actor random numbers (Park-Miller), derived from the seed

sub rng_new
{
	my ($k) = @_;
	my $s = ($SEED * 7 + $k * 7919) % 2147483647;
	$s = 1 if $s <= 0;
	return $s;
}

sub rnd
{
	my ($ac) = @_;
	$ac->{rng} = ($ac->{rng} * 48271) % 2147483647;
	return ($ac->{rng} - 1) / 2147483646;
}
sub rint { my ($ac, $lo, $hi) = @_; return $lo + int(rnd($ac) * ($hi - $lo + 1)); }
sub chance { my ($ac, $p) = @_; return rnd($ac) < $p; }
sub pick { my ($ac, @l) = @_; return $l[ int(rnd($ac) * @l) ]; }

# ---------------------------------------------------------------------------
# asynchronous sessions

my $SESSION_TIMEOUT = 600 + 4 * $LOAD_SECONDS;
my $step_no = 0;
my $closing = 0;    # actors finish their transactions and start nothing new

my %unexpected;     # kind => [ "actor: error" ... ]
my %stats;

sub note_unexpected
{
	my ($kind, $what) = @_;
	push @{ $unexpected{$kind} }, $what;
	return;
}

sub connect_actor
{
	my ($ac, $node) = @_;
	$ac->{node} = $node;
	$ac->{sess} = $node->background_psql('postgres', on_error_stop => 0,
		timeout => $SESSION_TIMEOUT);
	$ac->{sess}->query_safe("SET application_name = '$ac->{name}'; SET statement_timeout = '60s'");
	$ac->{busy} = 0;
	$ac->{dead} = 0;
	$ac->{txn} = undef;
	$ac->{held} = {};
	$ac->{next_at} = time();
	return;
}

# Planned end of a session (its server goes away): nothing it reports from
# now on counts.
sub abandon_actor
{
	my ($ac) = @_;
	$ac->{dead} = 1;
	$ac->{busy} = 0;
	$ac->{txn} = undef;
	$ac->{held} = {};
	return;
}

sub reap_actor
{
	my ($ac) = @_;
	eval { $ac->{sess}{run}->kill_kill(grace => 2); 1; };
	$ac->{sess} = undef;
	return;
}

sub submit
{
	my ($ac, $sql, $on_done) = @_;
	my $banner = "\@\@step " . (++$step_no) . "\@\@";
	my $s = $ac->{sess};
	$s->{stdout} = '';
	$s->{stderr} = '';
	$s->{stdin} .= "$sql\n\\echo '$banner'\n\\warn '$banner'\n";
	$ac->{banner} = $banner;
	$ac->{busy} = 1;
	$ac->{on_done} = $on_done;
	$ac->{sql} = $sql;
	$ac->{started} = time();
	$stats{steps}++;
	eval { $s->{run}->pump_nb; 1; };
	return;
}

# errors in a step's stderr: list of [message, detail]
sub parse_errors
{
	my ($err) = @_;
	my @e;
	my $in_error = 0;
	for my $line (split /\n/, $err)
	{
		if ($line =~ /\b(?:ERROR|FATAL|PANIC):\s+(.*)$/)
		{
			push @e, [ $1, '' ];
			$in_error = 1;
		}
		elsif ($line =~ /\b(?:WARNING|NOTICE|INFO|LOG):/)
		{
			$in_error = 0;
		}
		elsif ($line =~ /^psql:[^:]*:\d+: (.*)$/)
		{
			push @e, [ $1, '' ];    # e.g. the connection was lost
			$in_error = 1;
		}
		elsif ($in_error)
		{
			$e[-1][1] .= "$line\n";
		}
	}
	return @e;
}

# Returns 1 when the actor's step finished (or its session died).
sub poll_actor
{
	my ($ac) = @_;
	my $s = $ac->{sess};
	my $alive = eval { $s->{run}->pump_nb; 1; };
	my $banner = $ac->{banner};
	if ($s->{stdout} =~ /\Q$banner\E\r?\n/ && $s->{stderr} =~ /\Q$banner\E\r?\n/)
	{
		my $out = $s->{stdout};
		my $err = $s->{stderr};
		$out =~ s/\Q$banner\E\r?\n//;
		$err =~ s/\Q$banner\E\r?\n//;
		$s->{stdout} = '';
		$s->{stderr} = '';
		$ac->{busy} = 0;
		my $elapsed = time() - $ac->{started};
		$stats{max_step_seconds} = $elapsed
		  if $elapsed > ($stats{max_step_seconds} // 0);
		my @errors = parse_errors($err);
		$ac->{prior_failed} = $ac->{txn} && $ac->{txn}{failed};
		$ac->{txn}{failed} = 1 if @errors && $ac->{txn};
		$ac->{on_done}->($ac, $out, \@errors) if $ac->{on_done};
		return 1;
	}
	if (!$alive || !$s->{run}->pumpable)
	{
		note_unexpected($ac->{kind}, "$ac->{name}: session died during: $ac->{sql}\n$s->{stderr}");
		$ac->{dead} = 1;
		$ac->{busy} = 0;
		return 1;
	}
	return 0;
}

# A deadlock with the chaos actors' DDL (drop_queue and create_queue take
# ACCESS EXCLUSIVE locks, also replayed on the standby by its startup
# process) is the DDL's doing, not the reader's: nobody reads several
# tables without that risk.
sub ddl_deadlock
{
	my ($msg, $detail) = @_;
	return $msg =~ /^deadlock detected/ && $detail =~ /AccessExclusiveLock/;
}

# Errors a producer or consumer may legitimately get: the ones it causes
# itself (division by zero, what follows it in the transaction),
# row-level deadlocks between consumers acking leases that expired and were
# taken again inside other open transactions, deadlocks with DDL.  A
# deadlock on relation locks without DDL (such as behind a metrics call),
# or any other error, is mq's.
sub check_app_errors
{
	my ($ac, $errors) = @_;
	my $seen = 0;
	for my $e (@$errors)
	{
		my ($msg, $detail) = @$e;
		my $earlier = $seen;
		$seen++ if $msg !~ /^savepoint/;
		$stats{"error: $msg"}++ if $msg =~ /^(division by zero|deadlock detected)/;
		next if $msg =~ /^division by zero/;
		next if $msg =~ /^current transaction is aborted/;
		next if $msg =~ /^deadlock detected/ && $detail !~ /on relation/;
		next if ddl_deadlock($msg, $detail);
		# after an error, ROLLBACK TO a savepoint that never got made
		next if $msg =~ /^savepoint "\w+" does not exist/ && ($ac->{prior_failed} || $earlier);
		note_unexpected('app', "$ac->{name}: $msg\n$detail  during: $ac->{sql}");
	}
	return;
}

sub check_monitor_errors
{
	my ($ac, $errors) = @_;
	for my $e (@$errors)
	{
		my $where = $ac->{on_standby} ? 'standby' : 'monitor';
		$stats{"$where error: $e->[0]"}++;
		next if ddl_deadlock(@$e);
		next if $ac->{on_standby} && $e->[0] =~ /conflict with recovery/;
		note_unexpected($where, "$ac->{name}: $e->[0]\n$e->[1]  during: $ac->{sql}");
	}
	return;
}

# Chaos DDL on other queues may fail for reasons of its own (the queue was
# dropped meanwhile, a lock timeout, a deadlock); anything else is noted.
sub check_chaos_errors
{
	my ($ac, $errors) = @_;
	for my $e (@$errors)
	{
		my ($msg, $detail) = @$e;
		$stats{"chaos error: $msg"}++;
		next if $msg =~ /does not exist|lock timeout|deadlock detected|current transaction is aborted/;
		note_unexpected('chaos', "$ac->{name}: $msg\n$detail  during: $ac->{sql}");
	}
	return;
}

sub out_lines
{
	my ($out, $tag) = @_;
	return grep { /^\Q$tag\E:/ } split /\n/, $out;
}

# ---------------------------------------------------------------------------
# producers

my $msg_no = 0;

# mc's priorities change with the phase (see the top of the file)
my $PHASE = 1;

sub mc_priority
{
	my ($ac) = @_;
	return $PHASE == 1 ? 0 : $PHASE == 2 ? rint($ac, 0, 3) : pick($ac, 0, 4, 5);
}

sub queue_and_priority
{
	my ($ac) = @_;
	my $q = pick($ac, @LOADED);
	my $p =
	    $q eq 'ma' ? rint($ac, 0, 2)
	  : $q eq 'mb' ? rint($ac, -2, 9)
	  :              mc_priority($ac);
	return ($q, $p);
}

sub random_delay
{
	my ($ac, $p) = @_;
	return chance($ac, $p) ? sprintf('%.3f s', 2 * rnd($ac)) : '0 s';
}

# one mq.send, recorded in sent; dedup only when allowed (at most one dedup
# key per transaction, so producers never wait for each other in a cycle)
sub send_sql
{
	my ($ac, $dedup_ok) = @_;
	my ($q, $p) = queue_and_priority($ac);
	my $delay = random_delay($ac, 0.25);
	my $n = ++$msg_no;
	my $dedup = 'NULL';
	$dedup = "'k" . rint($ac, 1, 40) . "'" if $dedup_ok && chance($ac, 0.2);
	my $hdr = chance($ac, 0.3) ? "'{\"h\": $n}'" : 'NULL';
	my $sql =
	    "INSERT INTO sent (id, queue, prio, delay, dedup, actor)"
	  . " SELECT mq.send('$q', '{\"a\": \"$ac->{name}\", \"n\": $n}', $hdr, '$delay', $p, $dedup),"
	  . " '$q', $p, '$delay', $dedup, '$ac->{name}';";
	return ($sql, $dedup ne 'NULL');
}

sub batch_sql
{
	my ($ac) = @_;
	my ($q, $p) = queue_and_priority($ac);
	my $delay = random_delay($ac, 0.2);
	my $k = rint($ac, 1, 6);
	my (@m, @h);
	for (1 .. $k)
	{
		my $n = ++$msg_no;
		push @m, "'{\"a\": \"$ac->{name}\", \"n\": $n, \"batch\": true}'";
		push @h, chance($ac, 0.5) ? "'{\"h\": $n}'" : 'NULL';
	}
	my $headers = chance($ac, 0.5) ? 'ARRAY[' . join(', ', @h) . ']::jsonb[]' : 'NULL';
	return
	    "INSERT INTO sent (id, queue, prio, delay, actor)"
	  . " SELECT b, '$q', $p, '$delay', '$ac->{name}'"
	  . " FROM mq.send_batch('$q', ARRAY[" . join(', ', @m) . "]::jsonb[], $headers, '$delay', $p) b;";
}

sub multi_send_sql
{
	my ($ac) = @_;
	my $q = pick($ac, 'ma', 'mb');
	my $k = rint($ac, 2, 8);
	my $n = ++$msg_no;
	return
	    "INSERT INTO sent (id, queue, prio, delay, actor)"
	  . " SELECT mq.send('$q', jsonb_build_object('a', '$ac->{name}', 'n', $n, 'g', g), NULL, '0', g % 3),"
	  . " '$q', g % 3, '0', '$ac->{name}' FROM generate_series(1, $k) g;";
}

sub producer_done
{
	my ($ac, $out, $errors) = @_;
	check_app_errors($ac, $errors);
	return;
}

sub producer_step
{
	my ($ac) = @_;
	my $t = $ac->{txn};
	if ($t)
	{
		if ($closing || $t->{left} <= 0)
		{
			my $commit = chance($ac, 0.8);
			$stats{ $commit ? 'producer long commit' : 'producer long rollback' }++;
			$ac->{txn} = undef;
			submit($ac, $commit ? 'COMMIT;' : 'ROLLBACK;', \&producer_done);
			$ac->{next_at} = time() + rint($ac, 0, 30) / 1000;
			return;
		}
		$t->{left}--;
		my $r = rnd($ac);
		my $sql;
		if ($r < 0.55)
		{
			my $dd;
			($sql, $dd) = send_sql($ac, !$t->{dedup});
			$t->{dedup} ||= $dd;
		}
		elsif ($r < 0.7) { $sql = batch_sql($ac); }
		elsif ($r < 0.85)
		{
			my ($s1) = send_sql($ac, 0);
			my $end = chance($ac, 0.6) ? 'ROLLBACK TO SAVEPOINT sp;' : 'RELEASE SAVEPOINT sp;';
			$sql = "SAVEPOINT sp; $s1 " . batch_sql($ac) . " $end";
		}
		else { $sql = 'SELECT 1;'; }
		submit($ac, $sql, \&producer_done);
		$ac->{next_at} = time() + rint($ac, 20, 250) / 1000;
		return;
	}
	return if $closing;

	my $r = rnd($ac);
	my $sql;
	if ($r < 0.38)
	{
		my ($s) = send_sql($ac, 1);
		my $end = chance($ac, 0.1) ? 'ROLLBACK;' : 'COMMIT;';
		$sql = "BEGIN; $s $end";
	}
	elsif ($r < 0.52)
	{
		my $end = chance($ac, 0.1) ? 'ROLLBACK;' : 'COMMIT;';
		$sql = "BEGIN; " . batch_sql($ac) . " $end";
	}
	elsif ($r < 0.62)
	{
		my ($s1) = send_sql($ac, 1);
		my ($s2) = send_sql($ac, 0);
		my ($s3) = send_sql($ac, 0);
		$sql = "BEGIN; $s1 SAVEPOINT sp; $s2 " . batch_sql($ac) . " ROLLBACK TO SAVEPOINT sp; $s3 COMMIT;";
	}
	elsif ($r < 0.70) { $sql = multi_send_sql($ac); }
	elsif ($r < 0.75)
	{
		my ($s1) = send_sql($ac, 1);
		$sql = "BEGIN; $s1 " . batch_sql($ac) . ' ' . multi_send_sql($ac) . " ROLLBACK;";
	}
	else
	{
		# a long transaction: open across many steps of everybody else
		my ($s1, $dd) = send_sql($ac, 1);
		$ac->{txn} = { left => chance($ac, 0.15) ? rint($ac, 20, 40) : rint($ac, 3, 12), dedup => $dd };
		$stats{'producer long transactions'}++;
		$sql = "BEGIN; $s1";
	}
	submit($ac, $sql, \&producer_done);
	$ac->{next_at} = time() + rint($ac, 0, 40) / 1000;
	return;
}

# ---------------------------------------------------------------------------
# consumers

# receive, recorded in leases from when it returned (clock_timestamp() after
# it: a lease is held from then at the latest) until its visible_at; output
# lines "TAG:id:queue:lease end (epoch)"
sub receive_sql
{
	my ($ac, $tag, %o) = @_;
	my $q = $o{queue} // pick($ac, @LOADED);
	my $n = rint($ac, 1, 5);
	my $vt = pick($ac, '150 ms', '300 ms', '600 ms', '1.2 s');
	my $wait = $o{wait} ? ", wait => '$o{wait}'" : '';
	return
	    "INSERT INTO leases (id, queue, actor, t_from, t_until, attempt, how)"
	  . " SELECT r.id, '$q', '$ac->{name}', clock_timestamp(), r.visible_at, r.attempt, 'receive'"
	  . " FROM mq.receive('$q', $n, '$vt'$wait) r"
	  . " RETURNING '$tag:' || id || ':' || queue || ':' || extract(epoch FROM t_until);";
}

# ack every lease taken in this transaction by this actor
sub ack_own_sql
{
	my ($ac) = @_;
	return
	    "WITH mine AS MATERIALIZED (SELECT id, queue FROM leases"
	  . " WHERE xid = txid_current() AND actor = '$ac->{name}')"
	  . " INSERT INTO acked (id, queue, actor, how) SELECT id, queue, '$ac->{name}', 'ack' FROM mine"
	  . " WHERE mq.ack(queue, id) RETURNING 'A:' || id;";
}

sub pop_sql
{
	my ($ac) = @_;
	my $q = pick($ac, @LOADED);
	my $n = rint($ac, 1, 5);
	return
	    "WITH p AS (SELECT *, clock_timestamp() AS t FROM mq.pop('$q', $n)),"
	  . " l AS (INSERT INTO leases (id, queue, actor, t_from, t_until, attempt, how)"
	  . " SELECT id, '$q', '$ac->{name}', t, t, attempt, 'pop' FROM p)"
	  . " INSERT INTO acked (id, queue, actor, how, at) SELECT id, '$q', '$ac->{name}', 'pop', t FROM p"
	  . " RETURNING 'P:' || id;";
}

# held: queue => { id => lease end }
sub held_list
{
	my ($ac, $valid_only) = @_;
	my @l;
	my $now = time();
	for my $q (sort keys %{ $ac->{held} })
	{
		for my $id (sort { $a <=> $b } keys %{ $ac->{held}{$q} })
		{
			my $until = $ac->{held}{$q}{$id};
			if ($until < $now - 1.0) { delete $ac->{held}{$q}{$id}; next; }
			next if $valid_only && $until < $now + 0.15;
			push @l, [ $q, $id ];
		}
	}
	return @l;
}

sub take_some
{
	my ($ac, @l) = @_;
	my @r;
	for my $x (@l)
	{
		next unless chance($ac, 0.7);
		push @r, $x;
		delete $ac->{held}{ $x->[0] }{ $x->[1] };
	}
	return @r;
}

# "INSERT ... WHERE mq.ack(q, x)" per queue; the id is recorded only when
# the ack returned true
sub settle_sql
{
	my ($ac, $how, @l) = @_;
	my %byq;
	push @{ $byq{ $_->[0] } }, $_->[1] for @l;
	my $sql = '';
	for my $q (sort keys %byq)
	{
		my $ids = "'{" . join(',', @{ $byq{$q} }) . "}'::bigint[]";
		if ($how eq 'ack')
		{
			$sql .=
			    "INSERT INTO acked (id, queue, actor, how) SELECT x, '$q', '$ac->{name}', 'ack'"
			  . " FROM unnest($ids) x WHERE mq.ack('$q', x) RETURNING 'A:' || id;";
		}
		else
		{
			my $d = pick($ac, 'NULL::interval', "'0 s'::interval", "'200 ms'::interval");
			$sql .=
			    "INSERT INTO nacked (id, queue, actor) SELECT x, '$q', '$ac->{name}'"
			  . " FROM unnest($ids) x WHERE mq.nack('$q', x, $d) RETURNING 'N:' || id;";
		}
	}
	return $sql;
}

sub add_held
{
	my ($ac, @lines) = @_;
	for my $l (@lines)
	{
		my (undef, $id, $q, $until) = split /:/, $l;
		$ac->{held}{$q}{$id} = $until;
	}
	return;
}

# A step in its own transaction: keep the leases of tag R when it
# committed without error.
sub consumer_done_single
{
	my ($ac, $out, $errors) = @_;
	check_app_errors($ac, $errors);
	$stats{acks} += scalar(out_lines($out, 'A'));
	$stats{nacks} += scalar(out_lines($out, 'N'));
	$stats{pops} += scalar(out_lines($out, 'P'));
	add_held($ac, out_lines($out, 'R')) unless @$errors;
	return;
}

sub consumer_done_in_txn
{
	my ($ac, $out, $errors) = @_;
	check_app_errors($ac, $errors);
	push @{ $ac->{txn}{pending} }, out_lines($out, 'R') if $ac->{txn};
	return;
}

sub consumer_done_commit
{
	my ($ac, $out, $errors) = @_;
	check_app_errors($ac, $errors);
	add_held($ac, @{ $ac->{pending} // [] }) unless @$errors || $ac->{pending_failed};
	$ac->{pending} = [];
	return;
}

sub consumer_step
{
	my ($ac) = @_;
	my $t = $ac->{txn};
	if ($t)
	{
		if ($closing || $t->{left} <= 0)
		{
			my $r = rnd($ac);
			my $sql = $r < 0.7 ? 'COMMIT;' : $r < 0.85 ? 'ROLLBACK;' : 'SELECT 1/0; COMMIT;';
			$stats{"consumer long end: $sql"}++;
			$ac->{pending} = $r < 0.7 ? $t->{pending} : [];
			$ac->{pending_failed} = $t->{failed};
			$ac->{txn} = undef;
			submit($ac, $sql, \&consumer_done_commit);
			$ac->{next_at} = time() + rint($ac, 0, 30) / 1000;
			return;
		}
		$t->{left}--;
		my $r = rnd($ac);
		my $sql;
		if ($r < 0.35) { $sql = receive_sql($ac, 'R'); }
		elsif ($r < 0.55)
		{
			my @own = take_some($ac, held_list($ac, 0));
			$sql = @own ? settle_sql($ac, 'ack', @own) . ' ' . ack_own_sql($ac) : ack_own_sql($ac);
		}
		elsif ($r < 0.65)
		{
			my @l = take_some($ac, held_list($ac, 1));
			$sql = @l ? settle_sql($ac, 'nack', @l) : 'SELECT 1;';
		}
		elsif ($r < 0.75) { $sql = pop_sql($ac); }
		else { $sql = 'SELECT 1;'; }
		submit($ac, $sql, \&consumer_done_in_txn);
		$ac->{next_at} = time() + rint($ac, 20, 300) / 1000;
		return;
	}
	return if $closing;

	my $r = rnd($ac);
	my $sql;
	my @held = held_list($ac, 0);
	if ($r < 0.46 && $r >= 0.28 && !@held) { $r = 0.0; }    # nothing to ack: receive
	if ($r < 0.28)
	{
		$sql = "BEGIN; " . receive_sql($ac, 'R') . " COMMIT;";
		$stats{receives}++;
	}
	elsif ($r < 0.46) { $sql = "BEGIN; " . settle_sql($ac, 'ack', take_some($ac, @held) ) . " COMMIT;"; }
	elsif ($r < 0.54)
	{
		my @l = take_some($ac, held_list($ac, 1));
		$sql = @l ? "BEGIN; " . settle_sql($ac, 'nack', @l) . " COMMIT;" : 'SELECT 1;';
	}
	elsif ($r < 0.58)
	{
		# let some leases expire
		take_some($ac, @held);
		$stats{'leases let expire'}++;
		$sql = 'SELECT 1;';
	}
	elsif ($r < 0.65)
	{
		$sql = "BEGIN; " . receive_sql($ac, 'X') . ' ' . ack_own_sql($ac) . " COMMIT;";
	}
	elsif ($r < 0.71)
	{
		$sql = "BEGIN; " . receive_sql($ac, 'X') . " ROLLBACK;";
		$stats{'receive rolled back'}++;
	}
	elsif ($r < 0.76)
	{
		$sql = "BEGIN; " . receive_sql($ac, 'X') . " SELECT 1/0; COMMIT;";
		$stats{'receive then error'}++;
	}
	elsif ($r < 0.81) { $sql = "BEGIN; " . pop_sql($ac) . " COMMIT;"; }
	elsif ($r < 0.86)
	{
		$sql =
		    "BEGIN; SAVEPOINT sp; " . receive_sql($ac, 'X') . ' ' . ack_own_sql($ac)
		  . " ROLLBACK TO SAVEPOINT sp; " . receive_sql($ac, 'R') . " COMMIT;";
		$stats{'receive in rolled-back savepoint'}++;
	}
	elsif ($r < 0.90)
	{
		# a blocking receive, alone in its statement and transaction
		$sql = receive_sql($ac, 'R', wait => pick($ac, '100 ms', '300 ms'));
		$stats{'blocking receives'}++;
	}
	else
	{
		$ac->{txn} = { left => rint($ac, 2, 8), pending => [] };
		$stats{'consumer long transactions'}++;
		submit($ac, "BEGIN; " . receive_sql($ac, 'R'), \&consumer_done_in_txn);
		$ac->{next_at} = time() + rint($ac, 20, 300) / 1000;
		return;
	}
	submit($ac, $sql, \&consumer_done_single);
	$ac->{next_at} = time() + rint($ac, 0, 40) / 1000;
	return;
}

# ---------------------------------------------------------------------------
# chaos on other queues

my $x_no = 0;
my %xq;    # chaos queues believed to exist

sub chaos_done
{
	my ($ac, $out, $errors) = @_;
	check_chaos_errors($ac, $errors);
	return;
}

sub some_x
{
	my ($ac) = @_;
	my @l = sort keys %xq;
	return @l ? pick($ac, @l) : undef;
}

sub chaos_step
{
	my ($ac) = @_;
	my $t = $ac->{txn};
	if ($t)
	{
		if ($closing || $t->{left} <= 0)
		{
			my $commit = chance($ac, 0.7);
			delete $xq{ $t->{queue} } if $commit;
			$ac->{txn} = undef;
			submit($ac, $commit ? 'COMMIT;' : 'ROLLBACK;', \&chaos_done);
		}
		else
		{
			$t->{left}--;
			submit($ac, 'SELECT 1;', \&chaos_done);
		}
		$ac->{next_at} = time() + rint($ac, 50, 300) / 1000;
		return;
	}
	return if $closing;

	my $x = some_x($ac);
	my $r = rnd($ac);
	$r = 0 if !defined $x || (keys %xq < 2 && $r < 0.6);
	$r = 0.55 if keys %xq > 5 && $r < 0.2;
	my $sql;
	if ($r < 0.15)
	{
		my $name = 'x_' . (++$x_no);
		$xq{$name} = 1;
		$sql =
		    "SELECT mq.create_queue('$name', max_attempts => 2, visibility_timeout => '100 ms',"
		  . " retry_delay => '10 ms'); SELECT count(mq.send('$name', jsonb_build_object('g', g), NULL,"
		  . " CASE WHEN g % 4 = 0 THEN '300 ms' ELSE '0' END::interval, g % 3))"
		  . " FROM generate_series(1, " . rint($ac, 1, 20) . ") g;";
		$stats{'chaos creates'}++;
	}
	elsif ($r < 0.30)
	{
		$sql =
		    "SELECT mq.send('$x', '{}', priority => " . rint($ac, 0, 3) . ");"
		  . " SELECT count(*) FROM mq.receive('$x', 3, '100 ms');"
		  . " SELECT mq.ack('$x', id) FROM mq.receive('$x', 2);"
		  . " SELECT count(*) FROM mq.pop('$x', 1);";
	}
	elsif ($r < 0.42)
	{
		# receive and drop in one transaction, kept open for a while
		$ac->{txn} = { left => rint($ac, 1, 6), queue => $x };
		$sql =
		    "BEGIN; SELECT count(*) FROM mq.receive('$x', 2, '100 ms');"
		  . " SELECT mq.send('$x', '{}'); SELECT mq.drop_queue('$x');";
		$stats{'chaos drops in open transactions'}++;
	}
	elsif ($r < 0.52)
	{
		$sql = "BEGIN; SELECT mq.drop_queue('$x'); ROLLBACK;";
		$stats{'chaos rolled-back drops'}++;
	}
	elsif ($r < 0.60)
	{
		delete $xq{$x};
		$sql = "SELECT mq.drop_queue('$x');";
		$stats{'chaos drops'}++;
	}
	elsif ($r < 0.68)
	{
		$sql =
		    "BEGIN; SELECT mq.drop_queue('$x'); SELECT mq.create_queue('$x');"
		  . " SELECT mq.send('$x', '{}', priority => 2); COMMIT;";
		$stats{'chaos drop and recreate'}++;
	}
	elsif ($r < 0.76)
	{
		$sql = "SELECT mq.purge_queue('$x');";
		$stats{'chaos purges'}++;
	}
	elsif ($r < 0.81)
	{
		# rolled back, so the checked queue keeps everything; a lock
		# timeout keeps it from stalling the others for long
		my $q = pick($ac, @LOADED);
		if (chance($ac, 0.5))
		{
			$sql = "BEGIN; SET LOCAL lock_timeout = '100ms'; SELECT mq.drop_queue('$q'); ROLLBACK;";
		}
		else
		{
			# the same in a savepoint, then take from and drop another
			# queue in that transaction (the shape of issue 10 item 1)
			delete $xq{$x};
			$sql =
			    "BEGIN; SET LOCAL lock_timeout = '100ms'; SAVEPOINT s; SELECT mq.drop_queue('$q');"
			  . " ROLLBACK TO SAVEPOINT s; SELECT count(*) FROM mq.receive('$x', 3, '100 ms');"
			  . " SELECT mq.drop_queue('$x'); COMMIT;";
		}
		$stats{'rolled-back drops of checked queues'}++;
	}
	elsif ($r < 0.88) { $sql = "SELECT count(*) FROM mq.metrics();"; }
	elsif ($r < 0.94) { $sql = "SELECT mq.maintain() >= 0;"; }
	else { $sql = "SELECT length(mq.metrics_prometheus()) > 0;"; }
	submit($ac, $sql, \&chaos_done);
	$ac->{next_at} = time() + rint($ac, 30, 250) / 1000;
	return;
}

# ---------------------------------------------------------------------------
# monitors: metrics and maintenance; every error counts

sub monitor_done
{
	my ($ac, $out, $errors) = @_;
	$stats{ $ac->{on_standby} ? 'standby polls' : 'monitor polls' }++;
	check_monitor_errors($ac, $errors);
	return;
}

sub monitor_step
{
	my ($ac) = @_;
	return if $closing;
	my $r = rnd($ac);
	my $sql;
	if ($r < 0.35) { $sql = "SELECT count(*) FROM mq.metrics();"; }
	elsif ($r < 0.55) { $sql = "SELECT length(mq.metrics_prometheus()) > 0;"; }
	elsif ($r < 0.75) { $sql = "SELECT ready FROM mq.metrics('" . pick($ac, @CHECKED) . "');"; }
	elsif ($ac->{on_standby}) { $sql = "SELECT count(*) FROM mq.metrics('mc');"; }
	else { $sql = "SELECT mq.maintain() >= 0;"; }
	submit($ac, $sql, \&monitor_done);
	$ac->{next_at} = time() + rint($ac, 80, 250) / 1000;
	return;
}

# ---------------------------------------------------------------------------
# the actors and the loop that drives them

my @actors;
my $k = 0;
push @actors, { name => "P$_", kind => 'app', step => \&producer_step, rng => rng_new(++$k) } for 1 .. 3;
push @actors, { name => "C$_", kind => 'app', step => \&consumer_step, rng => rng_new(++$k) } for 1 .. 4;
push @actors, { name => "X$_", kind => 'chaos', step => \&chaos_step, rng => rng_new(++$k) } for 1 .. 2;
push @actors, { name => 'M1', kind => 'monitor', step => \&monitor_step, rng => rng_new(++$k) };
my $standby_monitor =
  { name => 'S1', kind => 'monitor', step => \&monitor_step, rng => rng_new(++$k), on_standby => 1 };
push @actors, $standby_monitor;

my $node = $primary;
connect_actor($_, $primary) for grep { $_ != $standby_monitor } @actors;
connect_actor($standby_monitor, $standby);

sub tick
{
	my $did = 0;
	for my $ac (@actors)
	{
		next if $ac->{dead};
		if ($ac->{busy}) { $did += poll_actor($ac); }
		elsif (time() >= $ac->{next_at})
		{
			$ac->{step}->($ac);
			$did++ if $ac->{busy};
		}
	}
	usleep(1000) unless $did;
	return;
}

sub run_load
{
	my ($seconds, $until) = @_;
	my $end = time() + $seconds;
	while (time() < $end)
	{
		tick();
		last if $until && $until->();
	}
	return;
}

# finish every open transaction, wait for every step to return
sub settle_actors
{
	my ($seconds) = @_;
	$closing = 1;
	my $end = time() + $seconds;
	while (time() < $end)
	{
		tick();
		last unless grep { !$_->{dead} && ($_->{busy} || $_->{txn}) } @actors;
	}
	my @stuck = grep { !$_->{dead} && ($_->{busy} || $_->{txn}) } @actors;
	$closing = 0;
	return @stuck;
}

sub actor_count_note
{
	my ($what) = @_;
	note(sprintf("%s at %.1f s: %d steps, %d unexpected errors so far", $what, time() - $T_START,
		$stats{steps} // 0, scalar(map { @$_ } values %unexpected)));
	return;
}

my $phase = $LOAD_SECONDS / 3;

# --- phase 1: primary, worker off, metrics polled on the hot standby -------
run_load($phase);
actor_count_note('phase 1 done');

# --- the primary restarts (the standby reconnects by itself) ---------------
for my $ac (@actors) { abandon_actor($ac) unless $ac == $standby_monitor; }
$primary->restart;
reap_actor($_) for grep { $_ != $standby_monitor } @actors;
connect_actor($_, $primary) for grep { $_ != $standby_monitor } @actors;
actor_count_note('restart done');

# --- phase 2: primary, worker on (ALTER SYSTEM + reload), standby polled ---
$PHASE = 2;
if ($PRELOAD)
{
	sql_on($primary, "ALTER SYSTEM SET mq.worker_enabled = on");
	sql_on($primary, "SELECT pg_reload_conf()");
}
my $worker_seen = 0;
run_load($phase);
my $last_look = 0;
run_load($PRELOAD ? 15 : 0,
	sub {
		return 0 if time() - $last_look < 0.5;
		$last_look = time();
		$worker_seen = sql_on($primary,
			"SELECT count(*) FROM mq.workers WHERE passes > 0") ne '0';
		return $worker_seen;
	});
SKIP:
{
	skip 'no worker without shared_preload_libraries', 1 unless $PRELOAD;
	ok($worker_seen, 'the background worker ran in phase 2');
}
is(sql_on($standby, 'SELECT pg_is_in_recovery()'), 't', 'phases 1 and 2 ran with a hot standby');
actor_count_note('phase 2 done');

# A queue for the first transaction after the failover (below), with
# messages newer than most of ma's; and md's first messages at priority 6,
# after the standby has looked at md's lanes (issue 10 item 2a).  The
# actors hold no lock on either queue, so this cannot wait for them.
sql_on($primary, "SELECT mq.create_queue('x_failover');"
	  . " SELECT mq.send('x_failover', jsonb_build_object('g', g)) FROM generate_series(1, 5) g;"
	  . " INSERT INTO sent (id, queue, prio, delay, actor)"
	  . "   SELECT mq.send('md', jsonb_build_object('burst', g), NULL, '0', 6), 'md', 6, '0', 'burst'"
	  . "   FROM generate_series(1, 5) g;");
$primary->wait_for_catchup($standby);

# --- failover: the primary dies, the standby takes over --------------------
for my $ac (@actors) { abandon_actor($ac) unless $ac == $standby_monitor; }
$primary->stop('immediate');
reap_actor($_) for grep { $_ != $standby_monitor } @actors;
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or BAIL_OUT('the standby was not promoted');
$node = $standby;
# The standby's monitor finishes its step (it may have waited for a lock
# that the replay of a transaction left open by the crash held until the
# promotion) and starts no other until the next phase.
while ($standby_monitor->{busy} && !$standby_monitor->{dead}) { poll_actor($standby_monitor) or usleep(1000); }
$standby_monitor->{on_standby} = 0;
sql_on($node, "ALTER SYSTEM SET mq.worker_enabled = off; SELECT pg_reload_conf();") if $PRELOAD;

# The first transaction on the promoted node (nobody else runs yet), as an
# application may write it: it tries to drop ma but thinks better of it
# (savepoint), takes messages of another queue, drops that queue and sends
# to ma.  (Issue 10 item 1: drop_queue frees the shared entry inside
# its transaction; ma's new entry reuses it and this commit moves ma's heads
# and counters.)  Its send is recorded like any other, so the checks below
# see whether ma lost anything.
my ($ret, $out, $err) = $node->psql('postgres', q{
BEGIN;
SAVEPOINT s;
SELECT mq.drop_queue('ma');
ROLLBACK TO SAVEPOINT s;
SELECT count(*) FROM mq.receive('x_failover', 5);
SELECT mq.drop_queue('x_failover');
INSERT INTO sent (id, queue, prio, delay, actor)
  SELECT mq.send('ma', '{"after": "failover"}', NULL, '0', 0), 'ma', 0, '0', 'failover';
COMMIT;});
is($err, '', 'the first transaction after the failover ran without error');
connect_actor($_, $node) for grep { $_ != $standby_monitor } @actors;
actor_count_note('failover done');

# --- phase 3: the promoted standby, worker off -----------------------------
$PHASE = 3;
run_load($phase);
actor_count_note('phase 3 done');

my @stuck = settle_actors(30);
is(join("\n", map { "$_->{name}: $_->{sql}" } @stuck), '',
	'every actor finished its last step and transaction (nobody hung)');
if (@stuck)
{
	diag(sql_on($node,
		"SELECT string_agg(application_name || ' ' || state || ' ' || coalesce(wait_event_type, '') || ':'"
		  . " || coalesce(wait_event, '') || ' ' || left(query, 200), E'\\n')"
		  . " FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"));
	sql_on($node, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
		  . " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()");
	settle_actors(5);
}
for my $ac (@actors)
{
	eval { $ac->{sess}->quit unless $ac->{dead}; 1; } or reap_actor($ac);
}
my $load_end = time();
note(sprintf("load ran until %.1f s", $load_end - $T_START));

ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'mq worker'"),
	'no worker runs in the final phase');

# ---------------------------------------------------------------------------
# gauges against the tables, at rest

sub quote_lit { my ($s) = @_; $s =~ s/'/''/g; return "'$s'"; }

sub gauge_mismatches
{
	my @bad;
	for my $q (split /\n/, sql_on($node, "SELECT queue FROM mq.queues ORDER BY queue"))
	{
		my $l = quote_lit($q);
		my $m = sql_on($node,
			"SELECT concat_ws('|', ready, in_flight, delayed, dead, oldest_ready_age IS NOT NULL)"
			  . " FROM mq.metrics($l)");
		my $real = sql_on($node,
			"SELECT concat_ws('|', (SELECT count(*) FROM mq.q_$q),"
			  . " (SELECT count(*) FROM mq.w_$q WHERE leased),"
			  . " (SELECT count(*) FROM mq.w_$q WHERE NOT leased),"
			  . " (SELECT count(*) FROM mq.dead_letters WHERE queue = $l),"
			  . " (SELECT count(*) > 0 FROM mq.q_$q))");
		push @bad, "$q: metrics $m, tables $real (ready|in_flight|delayed|dead|has oldest age)"
		  if $m ne $real;
	}
	return join("\n", @bad);
}

is(gauge_mismatches(), '', 'at rest: mq.metrics gauges equal the real counts of every queue');

# ---------------------------------------------------------------------------
# drain: receive + ack everything until the queues are empty (the clock past
# every delay, lease and retry), with receive alone (no worker, no
# mq.maintain: the README says receive delivers everything due by itself)

my $drained = 0;
my $drain_end = time() + 20;
my $idle_rounds = 0;
while (time() < $drain_end)
{
	my $got = 0;
	for my $q (@CHECKED)
	{
		$got += sql_on($node,
			"BEGIN;"
			  . " INSERT INTO leases (id, queue, actor, t_from, t_until, attempt, how)"
			  . " SELECT id, '$q', 'drain', clock_timestamp(), visible_at, attempt, 'receive'"
			  . " FROM mq.receive('$q', 1000, '1 min');"
			  . " WITH mine AS MATERIALIZED (SELECT id FROM leases"
			  . "   WHERE xid = txid_current() AND actor = 'drain' AND queue = '$q'),"
			  . " a AS (INSERT INTO acked (id, queue, actor, how)"
			  . "   SELECT id, '$q', 'drain', 'ack' FROM mine WHERE mq.ack('$q', id) RETURNING 1)"
			  . " SELECT count(*) FROM a;"
			  . " COMMIT;");
	}
	$drained += $got;
	# rows not due yet; rows overdue are receive's to promote (the worker
	# is off: receive alone must deliver them, says the README)
	my $pending = sql_on($node,
		"SELECT " . join(' + ', map { "(SELECT count(*) FROM mq.w_$_ WHERE vt > clock_timestamp())" } @CHECKED));
	if ($got == 0 && $pending == 0)
	{
		last if ++$idle_rounds >= 3;
	}
	else { $idle_rounds = 0; }
	usleep(100_000) if $got == 0;
}
note("drained $drained messages");

# ---------------------------------------------------------------------------
# the invariants

my $in_checked = "queue IN (" . join(', ', map { "'$_'" } @CHECKED) . ")";

my $summary = sql_on($node, qq{
SELECT concat_ws(' ',
  'sent rows', (SELECT count(*) FROM sent WHERE $in_checked),
  'distinct ids', (SELECT count(DISTINCT id) FROM sent WHERE $in_checked),
  'dedup hits', (SELECT count(*) - count(DISTINCT id) FROM sent WHERE $in_checked),
  'leases', (SELECT count(*) FROM leases WHERE how = 'receive' AND actor <> 'drain'),
  'redeliveries', (SELECT count(*) FROM leases WHERE attempt > 1),
  'acked', (SELECT count(*) FROM acked WHERE how = 'ack'),
  'popped', (SELECT count(*) FROM acked WHERE how = 'pop'),
  'nacked', (SELECT count(*) FROM nacked),
  'dead', (SELECT count(*) FROM mq.dead_letters WHERE $in_checked),
  'drained', $drained,
  'queues now', (SELECT count(*) FROM mq.queues))});
diag("016_model: $summary");
diag("016_model: " . join(', ', map { "$_ $stats{$_}" } grep { $_ ne 'max_step_seconds' } sort keys %stats));
diag(sprintf("016_model: longest step %.2f s", $stats{max_step_seconds} // 0));
# not an assertion (lock waits of any kind cause it): a receive that waits
# for a lock after computing the lease end returns a lease already over
diag("016_model: leases already over when receive returned them: " . sql_on($node, qq{
SELECT count(*) || coalesce(', up to ' || max(t_from - t_until), '') FROM leases
 WHERE how = 'receive' AND t_until < t_from}));

my $lost = sql_on($node, qq{
WITH s AS (SELECT DISTINCT s.id, s.queue, min(s.prio) AS prio FROM sent s WHERE $in_checked GROUP BY 1, 2),
lost AS (
  SELECT s.*,
         CASE WHEN queue = 'ma' AND EXISTS (SELECT 1 FROM mq.q_ma q WHERE q.id = s.id) THEN 'ready in mq.q_'
              WHEN queue = 'mb' AND EXISTS (SELECT 1 FROM mq.q_mb q WHERE q.id = s.id) THEN 'ready in mq.q_'
              WHEN queue = 'mc' AND EXISTS (SELECT 1 FROM mq.q_mc q WHERE q.id = s.id) THEN 'ready in mq.q_'
              WHEN queue = 'md' AND EXISTS (SELECT 1 FROM mq.q_md q WHERE q.id = s.id) THEN 'ready in mq.q_'
              WHEN queue = 'ma' AND EXISTS (SELECT 1 FROM mq.w_ma w WHERE w.id = s.id) THEN 'overdue in mq.w_'
              WHEN queue = 'mb' AND EXISTS (SELECT 1 FROM mq.w_mb w WHERE w.id = s.id) THEN 'overdue in mq.w_'
              WHEN queue = 'mc' AND EXISTS (SELECT 1 FROM mq.w_mc w WHERE w.id = s.id) THEN 'overdue in mq.w_'
              WHEN queue = 'md' AND EXISTS (SELECT 1 FROM mq.w_md w WHERE w.id = s.id) THEN 'overdue in mq.w_'
              ELSE 'gone from ' END AS place
    FROM s
   WHERE NOT EXISTS (SELECT 1 FROM acked a WHERE a.queue = s.queue AND a.id = s.id)
     AND NOT EXISTS (SELECT 1 FROM mq.dead_letters d WHERE d.queue = s.queue AND d.id = s.id))
SELECT coalesce(string_agg(line, E'\\n' ORDER BY line), '')
  FROM (SELECT format('%s messages still %s%s, priorities %s, ids %s%s', count(*), place, queue,
                      array_agg(DISTINCT prio ORDER BY prio),
                      (array_agg(id ORDER BY id))[1:10], CASE WHEN count(*) > 10 THEN ' ...' ELSE '' END) AS line
          FROM lost GROUP BY queue, place) x});
is($lost, '', 'no loss: every committed message was acked, popped or dead-lettered');

is( sql_on($node, qq{
SELECT coalesce(string_agg(queue || ':' || id || ' x' || n || ' by ' || who, E'\\n'), '')
  FROM (SELECT queue, id, count(*) AS n, string_agg(actor || '/' || how, ',') AS who
          FROM acked GROUP BY queue, id HAVING count(*) > 1) d}),
	'', 'no double ack: no message acked (or popped) twice');

is( sql_on($node, qq{
SELECT coalesce(string_agg(a.queue || ':' || a.id, ', '), '') FROM acked a
 WHERE NOT EXISTS (SELECT 1 FROM sent s WHERE s.queue = a.queue AND s.id = a.id)}),
	'', 'nothing acked that was not sent and committed');

is( sql_on($node, qq{
SELECT coalesce(string_agg(d.queue || ':' || d.id, ', '), '') FROM mq.dead_letters d
 WHERE EXISTS (SELECT 1 FROM acked a WHERE a.queue = d.queue AND a.id = d.id)}),
	'', 'no message both acked and dead-lettered');

# A lease may follow another of the same message only once that one ended:
# its end passed, or a nack of that message came after it began.
is( sql_on($node, qq{
WITH l AS (
  SELECT queue, id, actor, how, t_from, t_until,
         lag(t_from) OVER w AS p_from, lag(t_until) OVER w AS p_until, lag(actor) OVER w AS p_actor
    FROM leases WINDOW w AS (PARTITION BY queue, id ORDER BY t_from, t_until))
SELECT coalesce(string_agg(format('%s:%s leased by %s from %s until %s, then %s by %s at %s',
         queue, id, p_actor, p_from, p_until, how, actor, t_from), E'\\n'), '')
  FROM (SELECT * FROM l
         WHERE p_until IS NOT NULL AND t_from < p_until
           AND NOT EXISTS (SELECT 1 FROM nacked n WHERE n.queue = l.queue AND n.id = l.id
                             AND n.at >= l.p_from AND n.at <= l.t_from)
         ORDER BY queue, id LIMIT 20) x}),
	'', 'no overlapping leases: redelivered only after the lease ended or a nack');

is( sql_on($node, qq{
SELECT coalesce(string_agg(format('%s:%s acked at %s, then %s by %s at %s', l.queue, l.id, a.at, l.how, l.actor, l.t_from), E'\\n'), '')
  FROM (SELECT * FROM leases) l JOIN acked a ON a.queue = l.queue AND a.id = l.id
 WHERE l.t_from > a.at}),
	'', 'no message delivered again after it was acked');

is( sql_on($node,
		"SELECT " . join(" || ' ' || ", map { "(SELECT count(*) FROM mq.q_$_) || '/' || (SELECT count(*) FROM mq.w_$_)" } @CHECKED)),
	join(' ', map { '0/0' } @CHECKED),
	'after the drain the checked queues are empty (ready/waiting per queue)');

is(gauge_mismatches(), '', 'after the drain: mq.metrics gauges equal the real counts of every queue');

sub errors_of
{
	my ($kind) = @_;
	my @e = @{ $unexpected{$kind} // [] };
	return '' unless @e;
	my $more = @e > 8 ? "\n... and " . (@e - 8) . " more" : '';
	return scalar(@e) . " errors:\n" . join("\n", @e[ 0 .. ($#e < 7 ? $#e : 7) ]) . $more;
}

is(errors_of('app'), '', 'producers and consumers got no error they did not cause');
is(errors_of('monitor'), '', 'metrics, metrics_prometheus and maintain never failed on the primary');
is(errors_of('standby'), '', 'metrics and metrics_prometheus never failed on the hot standby');
ok(($stats{'standby polls'} // 0) > 0, 'metrics were polled on the hot standby');
is(errors_of('chaos'), '', 'chaos DDL on other queues failed only for the expected reasons');

# enough happened for the checks to mean something
my ($n_sent, $n_leases, $n_redelivered) = split /\|/, sql_on($node, qq{
SELECT concat_ws('|', (SELECT count(DISTINCT id) FROM sent WHERE actor <> 'setup'),
  (SELECT count(*) FROM leases WHERE actor <> 'drain'),
  (SELECT count(*) FROM leases WHERE attempt > 1))});
ok($n_sent >= 100 && $n_leases >= 100 && $n_redelivered >= 5,
	"the model did real work (sent $n_sent, leases $n_leases, redeliveries $n_redelivered)");

# no backend crashed (the primary's log only up to its planned crash)
my $crashes = '';
for my $n ($primary, $standby)
{
	my $log = slurp_file($n->logfile);
	$log =~ s/received immediate shutdown request.*//s if $n == $primary;
	$crashes .= join("\n", grep { /terminated by signal|PANIC|server process .* exited with exit code [^0]/ } split /\n/, $log);
}
is($crashes, '', 'no server process crashed');

$node->stop;
note(sprintf("total %.1f s", time() - $T_START));
done_testing();
