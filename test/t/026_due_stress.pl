
# Copyright: mq authors; PostgreSQL License.
#
# Randomized stress of messages that come due (issue 10 item 6: a promoted
# row takes the seq of its due time, possibly behind a lane head, and the
# promoter's commit moves the head back to it).  016_model restarts and
# fails over between its phases, which resets every head and so hides a
# message left behind a head before that; here nothing restarts: the drain
# at the end runs on the heads the load left, with receive alone, so a row
# that a head passed is never received and shows as lost.
#
# Load (MQ_STRESS_SECONDS, default 20 s), every actor a background_psql
# session driven from one loop, each step in its own transaction unless
# said otherwise; bookkeeping rows are written in the same transaction as
# the mq call, so they commit or roll back with it:
#   producers: send / send_batch with random priorities (queue sa: 4
#     lanes, sb: 8 lanes, the most that have heads), delays of 0 (half)
#     or up to 400 ms, publish to a topic sa subscribes to, savepoints
#     rolled back, transactions rolled back, transactions kept open across
#     steps;
#   consumers: receive (1-5, leases of 150-600 ms), then in the same
#     transaction ack (most), nack with a delay (0, 50 or 200 ms) or leave
#     the lease to expire; transactions rolled back, failing (division by
#     zero), receives in savepoints rolled back, pop, blocking receives,
#     REPEATABLE READ, transactions kept open across steps; they also
#     drain sd, sb's dead-letter queue (sb dead-letters after 3
#     deliveries);
#   promoters: mq.maintain() (the worker's pass) in transactions kept open
#     for 0.1-0.8 s, one in ten rolled back;
#   the worker is switched on and off every 3 s (ALTER SYSTEM + reload).
# Checks: every committed message (by its unique number n, which a dead
# letter keeps) is acked or popped exactly once, in its queue or, for sb,
# in sd; nothing acked that was not committed; no delivery after the ack;
# the queues are empty after the drain; no error the actors did not cause.
# MQ_STRESS_SEED replays a seed (similar, not identical: concurrency).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;
use Time::HiRes qw(time usleep);

$SIG{PIPE} = 'IGNORE';

my $LOAD_SECONDS = $ENV{MQ_STRESS_SECONDS} // 20;
my $SEED = $ENV{MQ_STRESS_SEED} // (1 + int(rand(2_000_000_000)));
diag("026_due_stress: seed $SEED, $LOAD_SECONDS s of load (replay: MQ_STRESS_SEED=$SEED)");
my $T_START = time();

my $node = mq_node('due_stress', qq{
mq.worker_enabled = off
mq.worker_naptime = '100ms'
max_connections = 40
});

sub sql { return $node->safe_psql('postgres', $_[0]); }

my $opts = "visibility_timeout => '300 ms', retry_delay => '20 ms', retry_delay_max => '150 ms'";
sql(qq{
CREATE EXTENSION mq;
SELECT mq.create_queue('sa', max_attempts => 1000, $opts);
SELECT mq.create_queue('sd', max_attempts => 1000, $opts);
SELECT mq.create_queue('sb', max_attempts => 3, dead_letter_queue => 'sd', $opts);
SELECT mq.subscribe('sa', 'st.#');
CREATE TABLE sent (n bigint NOT NULL, queue text NOT NULL, prio int, delay interval, actor text NOT NULL);
CREATE TABLE leases (n bigint NOT NULL, id bigint NOT NULL, receipt text, queue text NOT NULL,
                     actor text NOT NULL, t_from timestamptz NOT NULL, t_until timestamptz NOT NULL,
                     attempt int, settled boolean NOT NULL DEFAULT false,
                     xid bigint NOT NULL DEFAULT txid_current());
CREATE INDEX ON leases (xid);
CREATE TABLE acked (n bigint NOT NULL, queue text NOT NULL, actor text NOT NULL, how text NOT NULL,
                    at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE nacked (n bigint NOT NULL, queue text NOT NULL, actor text NOT NULL,
                     at timestamptz NOT NULL DEFAULT clock_timestamp());
});

# ---------------------------------------------------------------------------
# random numbers per actor (Park-Miller), from the seed

sub rng_new
{
	my ($k) = @_;
	my $s = ($SEED * 7 + $k * 7919) % 2147483647;
	return $s <= 0 ? 1 : $s;
}
sub rnd { my ($ac) = @_; $ac->{rng} = ($ac->{rng} * 48271) % 2147483647; return ($ac->{rng} - 1) / 2147483646; }
sub rint { my ($ac, $lo, $hi) = @_; return $lo + int(rnd($ac) * ($hi - $lo + 1)); }
sub chance { my ($ac, $p) = @_; return rnd($ac) < $p; }
sub pick { my ($ac, @l) = @_; return $l[ int(rnd($ac) * @l) ]; }

# ---------------------------------------------------------------------------
# asynchronous sessions (as in 016_model)

my $step_no = 0;
my $closing = 0;
my @unexpected;
my %stats;

sub connect_actor
{
	my ($ac) = @_;
	$ac->{sess} = $node->background_psql('postgres', on_error_stop => 0, timeout => 300);
	$ac->{sess}->query_safe("SET application_name = '$ac->{name}'; SET statement_timeout = '30s'");
	$ac->{busy} = 0;
	$ac->{txn} = undef;
	$ac->{next_at} = time();
	return;
}

sub submit
{
	my ($ac, $sql) = @_;
	my $banner = "\@\@step " . (++$step_no) . "\@\@";
	my $s = $ac->{sess};
	$s->{stdout} = '';
	$s->{stderr} = '';
	$s->{stdin} .= "$sql\n\\echo '$banner'\n\\warn '$banner'\n";
	$ac->{banner} = $banner;
	$ac->{busy} = 1;
	$ac->{sql} = $sql;
	$stats{steps}++;
	eval { $s->{run}->pump_nb; 1; };
	return;
}

# Errors an actor may cause itself; anything else is mq's.
sub check_errors
{
	my ($ac, $err) = @_;
	for my $line (split /\n/, $err)
	{
		next unless $line =~ /\b(?:ERROR|FATAL|PANIC):\s+(.*)$/;
		my $msg = $1;
		$stats{"error: $msg"}++;
		next if $msg =~ /^(division by zero|current transaction is aborted)/;
		# leases that expired and were taken again in other open transactions
		next if $msg =~ /^deadlock detected/;
		# REPEATABLE READ consumers
		next if $msg =~ /^could not serialize access/;
		push @unexpected, "$ac->{name}: $msg  during: $ac->{sql}";
	}
	return;
}

sub poll_actor
{
	my ($ac) = @_;
	my $s = $ac->{sess};
	my $alive = eval { $s->{run}->pump_nb; 1; };
	my $banner = $ac->{banner};
	if ($s->{stdout} =~ /\Q$banner\E\r?\n/ && $s->{stderr} =~ /\Q$banner\E\r?\n/)
	{
		$ac->{busy} = 0;
		check_errors($ac, $s->{stderr});
		return 1;
	}
	if (!$alive || !$s->{run}->pumpable)
	{
		push @unexpected, "$ac->{name}: session died during: $ac->{sql}\n$s->{stderr}";
		$ac->{dead} = 1;
		$ac->{busy} = 0;
		return 1;
	}
	return 0;
}

# ---------------------------------------------------------------------------
# producers

my $n_no = 0;

sub queue_prio
{
	my ($ac) = @_;
	return chance($ac, 0.5) ? ('sa', rint($ac, 0, 3)) : ('sb', rint($ac, 0, 7));
}

sub delay_of
{
	my ($ac) = @_;
	return chance($ac, 0.5) ? '0 s' : sprintf('%d ms', rint($ac, 1, 400));
}

sub send_sql
{
	my ($ac) = @_;
	my ($q, $p) = queue_prio($ac);
	my $d = delay_of($ac);
	my $n = ++$n_no;
	return "INSERT INTO sent SELECT $n, '$q', $p, '$d', '$ac->{name}'"
	  . " WHERE mq.send('$q', '{\"n\": $n}', NULL, '$d', $p) IS NOT NULL;";
}

sub batch_sql
{
	my ($ac) = @_;
	my ($q, $p) = queue_prio($ac);
	my $d = delay_of($ac);
	my @n = map { ++$n_no } 1 .. rint($ac, 1, 5);
	my $arr = 'ARRAY[' . join(', ', map { "'{\"n\": $_}'" } @n) . ']::jsonb[]';
	return "INSERT INTO sent SELECT n, '$q', $p, '$d', '$ac->{name}' FROM unnest('{"
	  . join(',', @n) . "}'::bigint[]) n"
	  . " WHERE (SELECT count(*) FROM mq.send_batch('$q', $arr, NULL, '$d', $p)) = " . scalar(@n) . ";";
}

sub publish_sql
{
	my ($ac) = @_;
	my $d = delay_of($ac);
	my $n = ++$n_no;
	return "INSERT INTO sent SELECT $n, 'sa', 0, '$d', '$ac->{name}'"
	  . " WHERE mq.publish('st.x', '{\"n\": $n}', NULL, '$d') = 1;";
}

sub produce_sql
{
	my ($ac) = @_;
	my $r = rnd($ac);
	return $r < 0.55 ? send_sql($ac) : $r < 0.8 ? batch_sql($ac) : publish_sql($ac);
}

sub producer_step
{
	my ($ac) = @_;
	my $t = $ac->{txn};
	if ($t)
	{
		if ($closing || $t->{left}-- <= 0)
		{
			$ac->{txn} = undef;
			submit($ac, chance($ac, 0.85) ? 'COMMIT;' : 'ROLLBACK;');
		}
		else { submit($ac, produce_sql($ac)); }
		$ac->{next_at} = time() + rint($ac, 20, 200) / 1000;
		return;
	}
	return if $closing;
	my $r = rnd($ac);
	my $sql;
	if ($r < 0.6)
	{
		$sql = 'BEGIN; ' . join(' ', map { produce_sql($ac) } 1 .. rint($ac, 1, 3))
		  . (chance($ac, 0.08) ? ' ROLLBACK;' : ' COMMIT;');
	}
	elsif ($r < 0.75)
	{
		$sql = 'BEGIN; ' . produce_sql($ac) . ' SAVEPOINT s; ' . produce_sql($ac)
		  . ' ROLLBACK TO SAVEPOINT s; ' . produce_sql($ac) . ' COMMIT;';
	}
	else
	{
		$ac->{txn} = { left => rint($ac, 2, 8) };
		$sql = 'BEGIN; ' . produce_sql($ac);
		$stats{'producer long transactions'}++;
	}
	submit($ac, $sql);
	$ac->{next_at} = time() + rint($ac, 0, 40) / 1000;
	return;
}

# ---------------------------------------------------------------------------
# consumers

sub receive_sql
{
	my ($ac, %o) = @_;
	my $q = $o{queue} // pick($ac, 'sa', 'sb', 'sb', 'sd');
	my $k = rint($ac, 1, 5);
	my $vt = pick($ac, '150 ms', '300 ms', '600 ms');
	my $wait = $o{wait} ? ", wait => '$o{wait}'" : '';
	return "INSERT INTO leases (n, id, receipt, queue, actor, t_from, t_until, attempt)"
	  . " SELECT (r.message->>'n')::bigint, r.id, r.receipt, '$q', '$ac->{name}', clock_timestamp(),"
	  . " r.visible_at, r.attempt FROM mq.receive('$q', $k, '$vt'$wait) r;";
}

# settle every lease this transaction took: ack most, nack some, leave some
sub settle_sql
{
	my ($ac) = @_;
	my $d = pick($ac, "'0 s'", "'50 ms'", "'200 ms'");
	my $who = $ac->{name};
	return
	    "WITH mine AS MATERIALIZED (SELECT l.*, random() AS r FROM leases l"
	  . "   WHERE xid = txid_current() AND actor = '$who' AND NOT settled),"
	  . " s AS (UPDATE leases l SET settled = true FROM mine m WHERE l.xid = m.xid AND l.id = m.id AND l.queue = m.queue),"
	  . " a AS (INSERT INTO acked (n, queue, actor, how) SELECT n, queue, '$who', 'ack' FROM mine"
	  . "   WHERE r < 0.8 AND mq.ack(queue, id, receipt) RETURNING 1),"
	  . " k AS (INSERT INTO nacked (n, queue, actor) SELECT n, queue, '$who' FROM mine"
	  . "   WHERE r >= 0.8 AND r < 0.93 AND mq.nack(queue, id, $d, 'stress', receipt) RETURNING 1)"
	  . " SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM k);";
}

sub pop_sql
{
	my ($ac) = @_;
	my $q = pick($ac, 'sa', 'sb', 'sd');
	return "WITH p AS (SELECT *, clock_timestamp() AS t FROM mq.pop('$q', " . rint($ac, 1, 3) . ")),"
	  . " l AS (INSERT INTO leases (n, id, queue, actor, t_from, t_until, attempt, settled)"
	  . "   SELECT (message->>'n')::bigint, id, '$q', '$ac->{name}', t, t, attempt, true FROM p)"
	  . " INSERT INTO acked (n, queue, actor, how, at) SELECT (message->>'n')::bigint, '$q', '$ac->{name}', 'pop', t FROM p;";
}

sub consumer_step
{
	my ($ac) = @_;
	my $t = $ac->{txn};
	if ($t)
	{
		if ($closing || $t->{left}-- <= 0)
		{
			my $r = rnd($ac);
			$ac->{txn} = undef;
			submit($ac, $r < 0.75 ? settle_sql($ac) . ' COMMIT;' : $r < 0.9 ? 'ROLLBACK;' : 'SELECT 1/0; COMMIT;');
		}
		else
		{
			my $r = rnd($ac);
			submit($ac, $r < 0.5 ? receive_sql($ac) : $r < 0.7 ? settle_sql($ac) : $r < 0.8 ? pop_sql($ac) : 'SELECT 1;');
		}
		$ac->{next_at} = time() + rint($ac, 20, 250) / 1000;
		return;
	}
	return if $closing;
	my $r = rnd($ac);
	my $sql;
	if ($r < 0.45) { $sql = 'BEGIN; ' . receive_sql($ac) . ' ' . settle_sql($ac) . ' COMMIT;'; }
	elsif ($r < 0.52) { $sql = 'BEGIN; ' . receive_sql($ac) . ' ROLLBACK;'; }
	elsif ($r < 0.57) { $sql = 'BEGIN; ' . receive_sql($ac) . ' SELECT 1/0; COMMIT;'; }
	elsif ($r < 0.65)
	{
		$sql = 'BEGIN; SAVEPOINT s; ' . receive_sql($ac) . ' ' . settle_sql($ac)
		  . ' ROLLBACK TO SAVEPOINT s; ' . receive_sql($ac) . ' ' . settle_sql($ac) . ' COMMIT;';
		$stats{'receives in rolled-back savepoints'}++;
	}
	elsif ($r < 0.70) { $sql = 'BEGIN; ' . pop_sql($ac) . ' COMMIT;'; }
	elsif ($r < 0.77)
	{
		$sql = 'BEGIN; ' . receive_sql($ac, wait => pick($ac, '100 ms', '300 ms')) . ' ' . settle_sql($ac) . ' COMMIT;';
		$stats{'blocking receives'}++;
	}
	elsif ($r < 0.82)
	{
		$sql = 'BEGIN ISOLATION LEVEL REPEATABLE READ; ' . receive_sql($ac) . ' ' . settle_sql($ac) . ' COMMIT;';
		$stats{'repeatable read receives'}++;
	}
	elsif ($r < 0.86)
	{
		# a receive whose leases all expire (and are redelivered)
		$sql = 'BEGIN; ' . receive_sql($ac) . ' COMMIT;';
	}
	else
	{
		$ac->{txn} = { left => rint($ac, 1, 6) };
		$sql = 'BEGIN; ' . receive_sql($ac);
		$stats{'consumer long transactions'}++;
	}
	submit($ac, $sql);
	$ac->{next_at} = time() + rint($ac, 0, 40) / 1000;
	return;
}

# ---------------------------------------------------------------------------
# promoters: the worker's pass in transactions kept open

sub promoter_step
{
	my ($ac) = @_;
	my $t = $ac->{txn};
	if ($t)
	{
		$ac->{txn} = undef;
		submit($ac, chance($ac, 0.9) ? 'COMMIT;' : 'ROLLBACK;');
		$ac->{next_at} = time() + rint($ac, 0, 150) / 1000;
		return;
	}
	return if $closing;
	$ac->{txn} = {};
	submit($ac, 'BEGIN; SELECT mq.maintain();');
	$stats{'promoter transactions'}++;
	$ac->{next_at} = time() + rint($ac, 100, 800) / 1000;
	return;
}

# ---------------------------------------------------------------------------

my @actors;
my $k = 0;
push @actors, { name => "P$_", step => \&producer_step, rng => rng_new(++$k) } for 1 .. 3;
push @actors, { name => "C$_", step => \&consumer_step, rng => rng_new(++$k) } for 1 .. 4;
push @actors, { name => "M$_", step => \&promoter_step, rng => rng_new(++$k) } for 1 .. 2;
connect_actor($_) for @actors;

sub tick
{
	my $did = 0;
	for my $ac (@actors)
	{
		next if $ac->{dead};
		if ($ac->{busy}) { $did += poll_actor($ac); }
		elsif (time() >= $ac->{next_at}) { $ac->{step}->($ac); $did++ if $ac->{busy}; }
	}
	usleep(1000) unless $did;
	return;
}

my $worker_on = 0;
my $toggle_at = time() + 3;
my $load_end = time() + $LOAD_SECONDS;
while (time() < $load_end)
{
	tick();
	if (time() >= $toggle_at)
	{
		$worker_on = !$worker_on;
		$stats{'worker toggles'}++;
		sql("ALTER SYSTEM SET mq.worker_enabled = " . ($worker_on ? 'on' : 'off') . "; SELECT pg_reload_conf();");
		$toggle_at = time() + 3;
	}
}

# finish every transaction
$closing = 1;
my $settle_end = time() + 30;
while (time() < $settle_end && grep { !$_->{dead} && ($_->{busy} || $_->{txn}) } @actors) { tick(); }
is(join(', ', map { $_->{name} } grep { !$_->{dead} && ($_->{busy} || $_->{txn}) } @actors), '',
	'every actor finished its transactions');
$_->{sess}->quit for grep { !$_->{dead} } @actors;
sql("ALTER SYSTEM SET mq.worker_enabled = off; SELECT pg_reload_conf();");
note(sprintf('load done at %.1f s', time() - $T_START));

# ---------------------------------------------------------------------------
# drain with receive alone, on the heads as the load left them

my $drained = 0;
my $idle = 0;
my $drain_end = time() + 20;
while (time() < $drain_end)
{
	my $got = 0;
	for my $q (qw(sa sb sd))
	{
		$got += sql("BEGIN; INSERT INTO leases (n, id, receipt, queue, actor, t_from, t_until, attempt)"
			  . " SELECT (r.message->>'n')::bigint, r.id, r.receipt, '$q', 'drain', clock_timestamp(), r.visible_at, r.attempt"
			  . " FROM mq.receive('$q', 1000, '1 min') r;"
			  . " WITH a AS (INSERT INTO acked (n, queue, actor, how) SELECT n, queue, 'drain', 'ack' FROM leases"
			  . "   WHERE xid = txid_current() AND mq.ack(queue, id, receipt) RETURNING 1) SELECT count(*) FROM a; COMMIT;");
	}
	$drained += $got;
	my $pending = sql("SELECT (SELECT count(*) FROM mq.w_sa WHERE vt > clock_timestamp())"
		  . " + (SELECT count(*) FROM mq.w_sb WHERE vt > clock_timestamp())"
		  . " + (SELECT count(*) FROM mq.w_sd WHERE vt > clock_timestamp())");
	if ($got == 0 && $pending == 0) { last if ++$idle >= 3; }
	else { $idle = 0; }
	usleep(100_000) if $got == 0;
}

my $summary = sql(qq{
SELECT concat_ws(' ', 'sent', (SELECT count(*) FROM sent), 'delayed', (SELECT count(*) FROM sent WHERE delay > '0'),
  'leases', (SELECT count(*) FROM leases WHERE actor <> 'drain'),
  'redeliveries', (SELECT count(*) FROM leases WHERE attempt > 1),
  'acked', (SELECT count(*) FROM acked WHERE how = 'ack'), 'popped', (SELECT count(*) FROM acked WHERE how = 'pop'),
  'nacked', (SELECT count(*) FROM nacked), 'dead-lettered into sd', (SELECT count(*) FROM acked WHERE queue = 'sd'),
  'drained', $drained)});
diag("026_due_stress: $summary");
diag("026_due_stress: " . join(', ', map { "$_ $stats{$_}" } sort keys %stats));

# ---------------------------------------------------------------------------
# checks

my $lost = sql(q{
WITH s AS (SELECT * FROM sent),
l AS (SELECT s.*, CASE
        WHEN EXISTS (SELECT 1 FROM mq.q_sa q WHERE (q.message->>'n')::bigint = s.n)
          OR EXISTS (SELECT 1 FROM mq.q_sb q WHERE (q.message->>'n')::bigint = s.n)
          OR EXISTS (SELECT 1 FROM mq.q_sd q WHERE (q.message->>'n')::bigint = s.n) THEN 'ready but not received'
        WHEN EXISTS (SELECT 1 FROM mq.w_sa q WHERE (q.message->>'n')::bigint = s.n)
          OR EXISTS (SELECT 1 FROM mq.w_sb q WHERE (q.message->>'n')::bigint = s.n)
          OR EXISTS (SELECT 1 FROM mq.w_sd q WHERE (q.message->>'n')::bigint = s.n) THEN 'still waiting'
        ELSE 'gone' END AS place
      FROM s WHERE NOT EXISTS (SELECT 1 FROM acked a WHERE a.n = s.n))
SELECT coalesce(string_agg(format('%s messages %s (queue %s): n %s', c, place, queue, ns), E'\n'), '')
  FROM (SELECT place, queue, count(*) AS c, (array_agg(n ORDER BY n))[1:10] AS ns FROM l GROUP BY 1, 2) x});
is($lost, '', 'no loss: every committed message was acked or popped');
if ($lost ne '')
{
	diag(sql(q{SELECT string_agg(format('%s n=%s prio %s seq %s enqueued %s', t, n, priority, seq, enqueued_at), E'\n' ORDER BY t, priority, seq)
	  FROM (SELECT 'sa' AS t, (message->>'n')::bigint AS n, * FROM mq.q_sa
	        UNION ALL SELECT 'sb', (message->>'n')::bigint, * FROM mq.q_sb
	        UNION ALL SELECT 'sd', (message->>'n')::bigint, * FROM mq.q_sd) x}));
}

is(sql(q{SELECT coalesce(string_agg(n || ' x' || c, ', '), '') FROM
  (SELECT n, count(*) AS c FROM acked GROUP BY n HAVING count(*) > 1) d}),
	'', 'no message acked or popped twice');
is(sql(q{SELECT coalesce(string_agg(a.n::text, ', '), '') FROM acked a
  WHERE NOT EXISTS (SELECT 1 FROM sent s WHERE s.n = a.n)}),
	'', 'nothing acked that was not sent and committed');
is(sql(q{SELECT coalesce(string_agg(a.n::text, ', '), '') FROM acked a
  WHERE a.queue = 'sd' AND NOT EXISTS (SELECT 1 FROM sent s WHERE s.n = a.n AND s.queue = 'sb')}),
	'', 'the dead-letter queue holds only messages of sb');
is(sql(q{SELECT coalesce(string_agg(format('n %s acked at %s, delivered again at %s by %s', a.n, a.at, l.t_from, l.actor), E'\n'), '')
  FROM acked a JOIN leases l ON l.n = a.n WHERE l.t_from > a.at}),
	'', 'no delivery after the ack');
is(sql("SELECT (SELECT count(*) FROM mq.q_sa) + (SELECT count(*) FROM mq.w_sa) + (SELECT count(*) FROM mq.q_sb)"
		  . " + (SELECT count(*) FROM mq.w_sb) + (SELECT count(*) FROM mq.q_sd) + (SELECT count(*) FROM mq.w_sd)"),
	'0', 'the queues are empty after the drain');
is(join("\n", @unexpected[0 .. ($#unexpected < 9 ? $#unexpected : 9)]), '',
	'no error the actors did not cause (' . scalar(@unexpected) . ')');
my ($n_delayed, $n_redelivered) = split /\|/, sql("SELECT (SELECT count(*) FROM sent WHERE delay > '0') || '|' ||"
	  . " (SELECT count(*) FROM leases WHERE attempt > 1 AND actor <> 'drain')");
ok($n_delayed >= 100 && $n_redelivered >= 20,
	"the load promoted many messages ($n_delayed delayed sends, $n_redelivered redeliveries)");
my $crashes = join("\n", grep { /terminated by signal|PANIC/ } split /\n/, slurp_file($node->logfile));
is($crashes, '', 'no server process crashed');

$node->stop;
note(sprintf('total %.1f s', time() - $T_START));
done_testing();
