
# Copyright: mq authors; PostgreSQL License.
#
# Failover drill: a primary and a SYNCHRONOUS standby, traffic running, the
# primary stopped with -m immediate, the standby promoted.  Issue 12,
# item 3 (first point): the result the issue measured by hand ("mq lost no
# committed message and delivered none after its ack across a promotion;
# leases survived promotion and expired on time; the worker started") holds
# on today's code; this test keeps it true.
#
# Set-up: both nodes preload mq with the worker on (naptime 200 ms);
# synchronous_standby_names on the primary names the standby.  Queues:
#   work    traffic: 2 producers (psql, one autocommit mq.send at a time,
#           priorities 0-3, each id logged by the client once its COMMIT
#           returned) and 2 consumers (receive 3 + ack, the received and the
#           acked ids logged by the client once each COMMIT returned), over
#           a backlog of 2,000 messages; lease 3 s, retry delay 200 ms;
#   drill   at the switch: 10 messages in flight (lease 3 s, priority 3),
#           10 delayed by 2 s (priority 2), 40 ready at priorities 0, 1, 5, 9;
#   poison  max_attempts 1: 5 received and nacked (dead letters), 1 in
#           flight with a 3 s lease (dead-lettered when it expires);
#   wake    empty, for a blocking receive and a LISTENer after promotion;
#   scratch an UNLOGGED queue with 5 messages (not replicated: empty after
#           the promotion, and usable), created once the monitor below has
#           read the standby.
# A monitor reads mq.metrics() on the standby during the traffic (it works
# with the four logged queues).  With the unlogged queue there too (a bug
# this drill found, fixed: an unlogged queue shows as empty on a standby).
#
# Proves, on the promoted standby:
#   - every send whose commit returned to the client is there (ready, in
#     flight, delayed, dead) or was acked (an ack whose commit returned);
#     the only others allowed missing are the messages of an ack in flight
#     at the crash; nothing whose ack returned is there again; the only
#     messages that were not confirmed are the one send in flight per
#     producer at the crash;
#   - within the ready messages, priority order holds (higher first; one
#     producer's messages of one priority in its send order);
#   - leases held at the switch are not redelivered before they end and are
#     redelivered (attempt 2) within 3 s after; a lease of the last attempt
#     ends in mq.dead_letters; delayed messages are delivered after their
#     delay, not before, and within 3 s;
#   - the 5 nacked poison messages are in mq.dead_letters (attempts 1);
#   - the worker runs on the new primary (mq.workers) within 10 s;
#   - a blocking receive (wait => '10 s') and a LISTENer (LISTEN mq_wake)
#     on the new primary are woken by a send there;
#   - mq.metrics equals the real counts of every queue's tables;
#   - new sends get ids above every id the old primary handed out;
#   - the unlogged queue is empty on the new primary (its rows were never
#     replicated), its metrics say so, and it takes sends and receives.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;
use Time::HiRes qw(time usleep);

my $mq_conf = qq{
shared_preload_libraries = 'mq'
mq.worker_enabled = on
mq.worker_naptime = '200ms'
};

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', $mq_conf);
$primary->start;

sub on_primary { return $primary->safe_psql('postgres', $_[0]); }

on_primary("CREATE EXTENSION mq");
on_primary("SELECT mq.create_queue('work', visibility_timeout => '3 s', retry_delay => '200 ms')");
on_primary("SELECT mq.create_queue('drill', visibility_timeout => '3 s', retry_delay => '100 ms')");
on_primary("SELECT mq.create_queue('poison', max_attempts => 1, visibility_timeout => '3 s')");
on_primary("SELECT mq.create_queue('wake')");

# --- the synchronous standby ------------------------------------------------
$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;
# The standby's walreceiver connects with application_name = its
# cluster_name, which PostgreSQL::Test::Cluster sets to the node's name.
$primary->append_conf('postgresql.conf', "synchronous_standby_names = 'standby'\n");
$primary->reload;
ok( defined wait_for(
		sub {
			on_primary("SELECT count(*) FROM pg_stat_replication
			             WHERE application_name = 'standby' AND sync_state = 'sync'") eq '1';
		},
		30),
	'the standby replicates synchronously (pg_stat_replication.sync_state = sync)');
is(on_primary("SHOW synchronous_commit"), 'on', 'commits wait for the standby to flush their WAL');

# --- backlog: 2,000 ready messages of producer 0 ------------------------------
# %sent: id => "producer:n" of every send whose commit returned.
my %sent;
foreach my $line (split /\n/,
	on_primary("SELECT mq.send('work', jsonb_build_object('p', 0, 'n', i), priority => i % 4) || ' ' || i
	              FROM generate_series(1, 2000) i"))
{
	my ($id, $n) = split / /, $line;
	$sent{$id} = "0:$n";
}
is(scalar(keys %sent), 2000, 'backlog: 2000 messages sent to work');

# --- traffic: 2 producers and 2 consumers (psql, one statement at a time) ---
my $tmp = PostgreSQL::Test::Utils::tempdir;

# A loop of 200 x 500 iterations without a 100,000-line file: a file of
# 200 iterations included 500 times.
sub write_loop
{
	my ($name, $init, $body) = @_;
	open my $f, '>', "$tmp/$name.body.sql" or die $!;
	print $f $body x 200;
	close $f;
	open $f, '>', "$tmp/$name.sql" or die $!;
	print $f $init, "\\ir $name.body.sql\n" x 500;
	close $f;
	return "$tmp/$name.sql";
}

my @clients;
foreach my $p (1, 2)
{
	# "S n id": printed only once the autocommit send's COMMIT returned
	my $file = write_loop("producer$p", "\\set n 0\n", qq{SELECT mq.send('work', jsonb_build_object('p', $p, 'n', :n + 1), priority => (:n + 1) % 4) AS id, :n + 1 AS n \\gset
\\echo S :n :id
});
	push @clients, { name => "producer $p", p => $p, file => $file };
}
foreach my $c (1, 2)
{
	# "R ids": the receive's COMMIT returned; "A n|ids": the ack's COMMIT
	# returned, n of ids acked
	my $file = write_loop("consumer$c", '', q{SELECT coalesce(string_agg(id::text, ','), '') AS ids FROM mq.receive('work', 3) \gset
\echo R :ids
SELECT 'A ' || mq.ack('work', string_to_array(:'ids', ',')::bigint[]) || '|' || :'ids';
});
	push @clients, { name => "consumer $c", file => $file };
}
foreach my $cl (@clients)
{
	(my $base = $cl->{name}) =~ s/ //g;
	$cl->{out} = "$tmp/$base.out";
	$cl->{err} = "$tmp/$base.err";
	$cl->{h} = IPC::Run::start(
		[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $primary->connstr('postgres'),
		  '-f', $cl->{file} ],
		'<', \undef, '>', $cl->{out}, '2>', $cl->{err});
}

sub work_totals
{
	return split /\|/, on_primary("SELECT total_sent || '|' || total_acked FROM mq.metrics('work')");
}
ok( defined wait_for(
		sub { my ($s, $a) = work_totals(); return $s >= 2300 && $a >= 300; }, 60),
	'traffic runs: 300 sends and 300 acks committed on the primary');

# A monitor reads the replica while the traffic runs.
my ($ret, $out, $err) = $standby->psql('postgres',
	"SELECT string_agg(queue, ',' ORDER BY queue) FROM mq.metrics()");
is($ret, 0, 'monitoring the standby: mq.metrics() runs there during the traffic') or diag($err);
is($out, 'drill,poison,wake,work', 'monitoring the standby: it lists the four queues');

# An unlogged queue (its tables cannot be read during recovery) must not
# stop the monitoring of the other queues: mq.metrics() and
# mq.metrics_prometheus() failed on the standby as soon as one queue was
# unlogged ("cannot access temporary or unlogged relations during
# recovery"), a bug found by this drill.
on_primary("SELECT mq.create_queue('scratch', unlogged => true)");
$primary->wait_for_catchup($standby);
{
	($ret, $out, $err) = $standby->psql('postgres',
		"SELECT string_agg(queue, ',' ORDER BY queue) FROM mq.metrics() WHERE queue <> 'scratch'");
	is($ret, 0, 'monitoring the standby with an unlogged queue: mq.metrics() runs') or diag($err);
	is($out, 'drill,poison,wake,work', 'and it lists the four logged queues');
	($ret, $out, $err) = $standby->psql('postgres', "SELECT mq.metrics_prometheus()");
	like($out, qr/^mq_ready\{queue="work"\} \d+$/m,
		'and mq.metrics_prometheus() reports the logged queues') or diag($err);
}

# --- the state at the switch ------------------------------------------------
# poison: 5 dead letters (max_attempts 1 + nack), 1 in flight for 3 s
my @poison_dead = split /\n/, on_primary(
	"SELECT mq.send('poison', jsonb_build_object('n', i)) FROM generate_series(1, 5) i");
is(on_primary("SELECT count(*) FROM mq.receive('poison', 5) r WHERE mq.nack('poison', r.id)"), '5',
	'poison: 5 messages received and nacked on their last attempt');
my $poison_held = on_primary("SELECT mq.send('poison', '{\"n\": 6}')");
my ($ph_id, $poison_held_end) = split /\|/, on_primary(
	"SELECT id || '|' || extract(epoch FROM visible_at) FROM mq.receive('poison', 1, visibility_timeout => '3 s')");
is($ph_id, $poison_held, 'poison: one more in flight (lease 3 s, last attempt)');

# drill: 10 in flight at priority 3 (lease 3 s)
on_primary("SELECT mq.send('drill', jsonb_build_object('k', 'held', 'n', i), priority => 3)
              FROM generate_series(1, 10) i");
my %held;    # id => end of the lease (epoch)
foreach my $line (split /\n/, on_primary(
	"SELECT id || '|' || extract(epoch FROM visible_at) FROM mq.receive('drill', 10, visibility_timeout => '3 s')"))
{
	my ($id, $end) = split /\|/, $line;
	$held{$id} = $end;
}
is(scalar(keys %held), 10, 'drill: 10 messages in flight, leased for 3 s');
# 10 delayed by 2 s, priority 2
on_primary("SELECT mq.send('drill', jsonb_build_object('k', 'delayed', 'n', i), delay => '2 s', priority => 2)
              FROM generate_series(1, 10) i");
my %delayed;    # id => when it is due (epoch)
foreach my $line (split /\n/, on_primary(
	"SELECT id || '|' || extract(epoch FROM vt) FROM mq.w_drill WHERE NOT leased"))
{
	my ($id, $due) = split /\|/, $line;
	$delayed{$id} = $due;
}
is(scalar(keys %delayed), 10, 'drill: 10 messages delayed by 2 s');
on_primary("SELECT mq.send('scratch', jsonb_build_object('n', i)) FROM generate_series(1, 5) i");
# 40 ready, priorities 9, 0, 1, 5, 9, 0, ... in send order (n = 1..40)
my @prio = (0, 1, 5, 9);
on_primary("SELECT mq.send('drill', jsonb_build_object('k', 'ready', 'n', i),
                           priority => (ARRAY[0, 1, 5, 9])[i % 4 + 1])
              FROM generate_series(1, 40) i");
my @ready_expected;    # "priority:n" in delivery order
foreach my $pr (reverse @prio)
{
	push @ready_expected, map { "$pr:$_" } grep { $prio[ $_ % 4 ] == $pr } 1 .. 40;
}
is( on_primary("SELECT concat_ws('|', ready, in_flight, delayed, dead) FROM mq.metrics('drill')"),
	'40|10|10|0', 'drill on the primary: 40 ready, 10 in flight, 10 delayed');

# --- the switch ---------------------------------------------------------------
my ($s_before, $a_before) = work_totals();
$primary->stop('immediate');
my $t_stop = time();
$standby->promote;
my $t_promoted = time();
note(sprintf("primary stopped (immediate) with %d sends and %d acks committed to work; "
	  . "standby promoted %.2f s later", $s_before, $a_before, $t_promoted - $t_stop));

sub on_new { return $standby->safe_psql('postgres', $_[0]); }
is(on_new("SELECT pg_is_in_recovery()"), 'f', 'the standby is promoted');

# receive from drill until $pred holds of what was received; each row:
# [id, priority, attempt, kind, n, received at (epoch)]
my @drill_rows;
sub drill_receive
{
	my $o = on_new(
		"SELECT concat_ws('|', id, priority, attempt, message->>'k', message->>'n',
		                  extract(epoch FROM clock_timestamp()))
		   FROM mq.receive('drill', 1000, visibility_timeout => '1 hour')");
	my @rows = map { [ split /\|/ ] } grep { $_ ne '' } split /\n/, $o;
	push @drill_rows, @rows;
	return @rows;
}

# The first receive after promotion: everything ready, in priority order.
my @first = drill_receive();
my @first_ready = map { "$_->[1]:$_->[4]" } grep { $_->[3] eq 'ready' } @first;
is(join(',', @first_ready), join(',', @ready_expected),
	'new primary: the 40 ready messages, priority 9, 5, 1, 0, each in send order');
my @first_prios = map { $_->[1] } @first;
ok(!grep({ $first_prios[$_] > $first_prios[ $_ - 1 ] } 1 .. $#first_prios),
	'new primary: the first receive returns higher priorities first')
  or diag("priorities: @first_prios");

# The worker starts on the new primary.
my $t_worker = wait_for(
	sub { on_new("SELECT count(*) FROM mq.workers WHERE database = 'postgres'") eq '1' }, 10);
ok(defined $t_worker, 'the worker runs on the new primary (mq.workers) within 10 s of the promotion')
  or diag('mq.workers: ' . on_new("SELECT * FROM mq.workers"));

# Held leases and delayed messages come back, each on time.
my $done = wait_for(
	sub {
		drill_receive();
		my %seen = map { $_->[0] => 1 } @drill_rows;
		return !grep { !$seen{$_} } (keys %held, keys %delayed);
	},
	20);
ok(defined $done, 'new primary: the 10 leased and the 10 delayed messages are all received again');
my %count;
$count{ $_->[0] }++ foreach @drill_rows;
is(scalar(grep { $count{$_} > 1 } keys %count), 0, 'drill: no message received twice on the new primary');
is(scalar(@drill_rows), 60, 'drill: 60 messages received in all (40 ready, 10 leased, 10 delayed)');
my (@early, @late, @attempt);
foreach my $r (@drill_rows)
{
	my ($id, $at) = ($r->[0], $r->[5]);
	my $due = $held{$id} // $delayed{$id};
	next unless defined $due;
	push @early, "$r->[3] $id at $at < $due" if $at < $due;
	my $latest = ($due > $t_promoted ? $due : $t_promoted) + 3;
	push @late, "$r->[3] $id at $at > $latest" if $at > $latest;
	my $want = $held{$id} ? 2 : 1;
	push @attempt, "$r->[3] $id: attempt $r->[2]" if $r->[2] != $want;
}
is(join('; ', @early), '', 'no lease ends early, no delayed message comes before its time');
is(join('; ', @late), '',
	'expired leases are redelivered, and delayed messages delivered, within 3 s of their time');
is(join('; ', @attempt), '', 'expired leases come back as attempt 2, delayed messages as attempt 1');

# Dead letters: the 5 nacked ones at once, the held one once its lease ends.
is( on_new("SELECT string_agg(id || ':' || attempts, ',' ORDER BY id) FROM mq.dead_letters
             WHERE queue = 'poison' AND id IN (" . join(',', @poison_dead) . ")"),
	join(',', map { "$_:1" } sort { $a <=> $b } @poison_dead),
	'the 5 nacked poison messages are in mq.dead_letters (1 attempt each)');
my $poison_received = 0;
ok( defined wait_for(
		sub {
			$poison_received += on_new("SELECT count(*) FROM mq.receive('poison')");
			on_new("SELECT count(*) FROM mq.dead_letters WHERE id = $poison_held") eq '1';
		},
		($poison_held_end + 5 - time() > 2 ? $poison_held_end + 5 - time() : 2)),
	'the poison message leased at the switch is dead-lettered once its lease ends');
is($poison_received, 0, 'and it is never delivered again');

# --- blocking receive and LISTEN on the new primary ------------------------
my $listener = $standby->background_psql('postgres');
$listener->query_safe('LISTEN mq_wake');
my $waiter = $standby->background_psql('postgres', on_error_stop => 0);
$waiter->query_until(qr/started/,
	"\\echo started\nSELECT 'got:' || coalesce(string_agg(message->>'w', ','), 'none') FROM mq.receive('wake', 1, wait => '10 s');\n");
ok( defined wait_for(
		sub {
			on_new("SELECT count(*) FROM pg_stat_activity
			         WHERE wait_event_type = 'Extension' AND backend_type = 'client backend'") eq '1';
		},
		5),
	'new primary: a blocking receive on wake is waiting');
my $t0 = time();
on_new("SELECT mq.send('wake', '{\"w\": \"up\"}')");
$out = $waiter->query_safe("SELECT 'done'");
my $woken = time() - $t0;
like($out, qr/got:up/, 'new primary: the blocking receive gets the message sent there');
ok($woken < 5, sprintf('new primary: woken by the send, not by the end of its wait (%.2f s)', $woken));
$waiter->quit;
my $notes = '';
wait_for(sub { $notes .= $listener->query_safe('SELECT 1'); $notes =~ /Asynchronous notification/ }, 5);
like($notes, qr/Asynchronous notification "mq_wake" with payload "wake"/,
	'new primary: LISTEN mq_wake gets the notification of the send');
$listener->quit;

# --- the traffic's clients: all were running when the primary went away ----
my (%acked, %uncertain, %last_n);
foreach my $cl (@clients)
{
	my $finished = eval {
		$cl->{h}->finish(IPC::Run::timeout(20));
		1;
	};
	$cl->{h}->kill_kill unless $finished;
	my $rc = $finished ? $cl->{h}->result(0) : -1;
	my $stderr = slurp_file($cl->{err});
	# psql exits 2 when the connection is lost, 3 when the stop hit a
	# statement of its script first (a WARNING, then the connection closed)
	ok($rc == 2 || $rc == 3, "$cl->{name} ran until the primary went away (psql exit 2 or 3: connection lost; got $rc)")
	  or diag("stderr: $stderr");
	my @lines = split /\n/, slurp_file($cl->{out});
	if ($cl->{p})
	{
		foreach (@lines)
		{
			next unless /^S (\d+) (\d+)$/;
			$sent{$2} = "$cl->{p}:$1";
			$last_n{ $cl->{p} } = $1;
		}
		note("$cl->{name}: " . ($last_n{ $cl->{p} } // 0) . " sends confirmed");
		next;
	}
	my $pending;    # ids received whose ack did not return
	my $acks = 0;
	foreach (@lines)
	{
		if (/^R ([\d,]*)$/) { $pending = $1; }
		elsif (/^A (\d+)\|([\d,]*)$/)
		{
			my @ids = grep { $_ ne '' } split /,/, $2;
			my $into = ($1 == @ids) ? \%acked : \%uncertain;
			$into->{$_} = 1 foreach @ids;
			$acks += @ids;
			$pending = undef;
		}
	}
	$uncertain{$_} = 1 foreach grep { $_ ne '' } split /,/, ($pending // '');
	note("$cl->{name}: $acks acks confirmed");
}

# --- metrics equal the tables, once nothing is due any more ---------------
ok(defined wait_for(sub { on_new("SELECT count(*) FROM mq.w_work") eq '0' }, 15),
	'work: the leases of the consumers at the switch expired and came back');
foreach my $queue (qw(work drill poison wake scratch))
{
	is( on_new("SELECT concat_ws('|', ready, in_flight, delayed, dead) FROM mq.metrics('$queue')"),
		on_new("SELECT concat_ws('|',
		           (SELECT count(*) FROM mq.q_$queue),
		           (SELECT count(*) FROM mq.w_$queue WHERE leased),
		           (SELECT count(*) FROM mq.w_$queue WHERE NOT leased),
		           (SELECT count(*) FROM mq.dead_letters WHERE queue = '$queue'))"),
		"new primary: mq.metrics('$queue') equals the counts of its tables");
}
is(on_new("SELECT concat_ws('|', ready, in_flight, delayed, dead) FROM mq.metrics('drill')"),
	'0|60|0|0', 'drill: all 60 in flight');
is(on_new("SELECT concat_ws('|', ready, in_flight, delayed, dead) FROM mq.metrics('poison')"),
	'0|0|0|6', 'poison: 6 dead letters');
is(on_new("SELECT count(*) FROM mq.dead_letters WHERE queue = 'work'"), '0', 'work: no dead letter');
is(on_new("SELECT concat_ws('|', ready, in_flight, delayed, dead) FROM mq.metrics('scratch')"),
	'0|0|0|0', 'scratch (unlogged): empty on the new primary, and mq.metrics says so');

# --- every committed send is there; nothing acked is ----------------------
my (@present, %present, %dup);
while (1)
{
	my $o = on_new(
		"SELECT concat_ws('|', id, priority, attempt, message->>'p', message->>'n')
		   FROM mq.receive('work', 5000, visibility_timeout => '1 hour')");
	last if $o eq '';
	foreach (split /\n/, $o)
	{
		my @r = split /\|/;
		$dup{ $r[0] } = 1 if $present{ $r[0] };
		$present{ $r[0] } = 1;
		push @present, \@r;
	}
}
note(sprintf("work: %d sends confirmed, %d acks confirmed, %d with an ack in flight at the switch, "
	  . "%d messages on the new primary", scalar(keys %sent), scalar(keys %acked),
	  scalar(keys %uncertain), scalar(@present)));
ok(scalar(keys %acked) >= 300, 'the consumers acked at least 300 messages before the switch');
is(scalar(keys %dup), 0, 'work: every message received once from the new primary');
my @lost = sort { $a <=> $b } grep { !$present{$_} && !$acked{$_} && !$uncertain{$_} } keys %sent;
is(scalar(@lost), 0, 'every send whose commit returned is on the new primary, or was acked')
  or diag('lost: ' . join(',', @lost[ 0 .. ($#lost > 20 ? 20 : $#lost) ]));
my @back = sort { $a <=> $b } grep { $present{$_} } keys %acked;
is(scalar(@back), 0, 'nothing whose ack returned is on the new primary')
  or diag('acked and back: ' . join(',', @back));
ok(scalar(keys %uncertain) <= 6, 'at most one ack in flight per consumer at the switch ('
	  . scalar(keys %uncertain) . ' messages)');
# Messages nobody was told about: only the send in flight of each producer.
my @unknown = map { "$_->[0] ($_->[3]:$_->[4])" }
  grep { !$sent{ $_->[0] } && !($_->[3] >= 1 && $_->[4] == ($last_n{ $_->[3] } // 0) + 1) } @present;
is(join(', ', @unknown), '',
	'every other message on the new primary is the send in flight of a producer at the switch');
my @prios = map { $_->[1] } @present;
ok(!grep({ $prios[$_] > $prios[ $_ - 1 ] } 1 .. $#prios),
	'work: the ready messages come out higher priority first');
my (%last, @disorder);
foreach my $r (grep { $_->[2] == 1 } @present)
{
	my $key = "$r->[1]/$r->[3]";
	push @disorder, "producer $r->[3] priority $r->[1]: n $r->[4] after $last{$key}"
	  if defined $last{$key} && $r->[4] < $last{$key};
	$last{$key} = $r->[4];
}
is(join('; ', @disorder[ 0 .. ($#disorder > 5 ? 5 : $#disorder) ]), '',
	"work: within a priority, each producer's first deliveries come in its send order");
is(on_new("SELECT mq.ack('work', array(SELECT id FROM mq.w_work))"), scalar(@present),
	'work: everything acked on the new primary');
is(on_new("SELECT concat_ws('|', ready, in_flight, delayed, dead) FROM mq.metrics('work')"),
	'0|0|0|0', 'work: metrics show an empty queue');

# --- new sends continue above every id handed out before -----------------
my $max_old = 0;
foreach (keys %sent, keys %present, keys %held, keys %delayed, @poison_dead)
{
	$max_old = $_ if $_ > $max_old;
}
my $new_id = on_new("SELECT mq.send('work', '{\"after\": true}')");
ok($new_id > $max_old, "a send on the new primary gets a new id ($new_id > $max_old)");

on_new("SELECT mq.send('scratch', '{\"after\": true}')");
is(on_new("SELECT string_agg(message::text, ',') FROM mq.receive('scratch', 10)"), '{"after": true}',
	'scratch (unlogged): a send and a receive work on the new primary');

$standby->stop;
done_testing();
