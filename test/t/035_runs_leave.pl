
# Copyright: mq authors; PostgreSQL License.
#
# Every way a message of a run (receive's per_group) leaves its queue
# deletes its row of the run table, mq.r_<queue>, and the last one to
# leave moves its group on, once and in order (README "Storage design",
# item 6; src/group.c).  A row left behind holds the group for ever; a run
# that moves on early hands out two messages of the group at once.
#
# For each way out, a run of three (a0 a1 a2) is leased from a group of
# five, then leaves by: expired leases dead-lettered by one promotion pass
# (src/retry.c, mq_leases_expired), also into a dead-letter queue; expired
# leases retried by one pass (one statement) and then acked; retried run
# members popped; a run member past max_attempts (alter_queue) dead-lettered
# by the receive that would hand it out again (which takes a3 in its
# place), leased or popped; nacks past the last attempt; purge while the
# run is in flight.  After each: the run table is empty, the next receive
# hands out a3 alone (never a4 with it, never a run member again), and the
# dead letters are the run's.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;
use Time::HiRes qw(usleep);

my $node = mq_node('runs_leave', qq{
mq.worker_enabled = off
});

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1("CREATE EXTENSION mq");

# a fresh queue $q (options $opts) with group k: a0..a4; a run of three leased
sub start_run
{
	my ($q, $opts, $vt) = @_;
	q1("SELECT mq.drop_queue('$q')") if q1("SELECT count(*) FROM mq.queues WHERE queue = '$q'");
	q1("SELECT mq.create_queue('$q'$opts)");
	q1(qq{SELECT count(*) FROM mq.send_batch('$q', ARRAY(SELECT jsonb_build_object('n', 'a' || i)
	        FROM generate_series(0, 4) i ORDER BY i), group_key => 'k')});
	return q1(qq{SELECT string_agg(message->>'n', ' ' ORDER BY id)
	               FROM mq.receive('$q', 3, visibility_timeout => '$vt', per_group => 3)});
}

sub names
{
	my ($q, $sql) = @_;
	return q1("SELECT coalesce(string_agg(message->>'n', ' ' ORDER BY message->>'n'), '-') FROM $sql");
}

# the run table of $q is empty, and a3 alone comes next
sub run_gone
{
	my ($q, $what) = @_;
	is(q1("SELECT count(*) FROM mq.r_$q"), '0', "$what: no row left in the run table");
	is(names($q, "mq.receive('$q', 10)"), 'a3', "$what: the group goes on with a3 alone");
}

sub dead
{
	my ($q) = @_;
	return q1("SELECT coalesce(string_agg(message->>'n', ' ' ORDER BY message->>'n'), '-')"
		  . " FROM mq.dead_letters WHERE queue = '$q'");
}

# 1. expired leases past their attempts, dead-lettered by one pass
is(start_run('r1', ', max_attempts => 1', '50 ms'), 'a0 a1 a2', 'a run of three is leased');
usleep(200_000);
cmp_ok(q1("SELECT mq.maintain()"), '>=', 3, '1: one pass handles the three ended leases');
is(dead('r1'), 'a0 a1 a2', '1: the three are dead letters');
run_gone('r1', '1 (expired, dead-lettered)');

# 2. the same into a dead-letter queue: the copies are a group of their own there
q1("SELECT mq.create_queue('r2dlq')");
start_run('r2', ", max_attempts => 1, dead_letter_queue => 'r2dlq'", '50 ms');
usleep(200_000);
q1("SELECT mq.maintain()");
is(q1("SELECT count(*) FROM mq.r_r2dlq"), '0', '2: the copies in the dead-letter queue are no run');
is(names('r2dlq', "mq.receive('r2dlq', 10)"), 'a0', '2: the dead-letter queue hands out their group one by one');
run_gone('r2', '2 (expired, into a dead-letter queue)');

# 3. expired leases retried by one pass (one statement), then received and acked
start_run('r3', ", max_attempts => 3, retry_delay => '0', retry_delay_max => '0'", '50 ms');
usleep(200_000);
q1("SELECT mq.maintain()");
is(q1("SELECT count(*) FROM mq.r_r3"), '3', '3: retried run members keep their rows');
is(q1("SELECT count(*) FROM mq.w_r3 WHERE NOT leased"), '0', '3: the pass promoted the retries at once');
is(names('r3', "mq.receive('r3', 10, per_group => 3)"), 'a0 a1 a2',
	'3: the retries come back, no new run, no a3');
q1("SELECT mq.ack('r3', array_agg(id)) FROM mq.w_r3");
run_gone('r3', '3 (expired, retried, acked)');

# 4. retried run members popped
start_run('r4', ", max_attempts => 3, retry_delay => '0', retry_delay_max => '0'", '50 ms');
usleep(200_000);
q1("SELECT mq.maintain()");
is(names('r4', "mq.pop('r4', 2)"), 'a0 a1', '4: two retried members popped');
is(q1("SELECT count(*) FROM mq.r_r4"), '1', '4: the third keeps the run');
is(names('r4', "mq.pop('r4', 10)"), 'a2', '4: then the third, and nothing of the group before it');
run_gone('r4', '4 (retried, popped)');

# 5. retried members past max_attempts (lowered meanwhile), found by the
# receive that would hand them out again: it takes a3 in their place
start_run('r5', ", max_attempts => 3, retry_delay => '0', retry_delay_max => '0'", '50 ms');
usleep(200_000);
q1("SELECT mq.maintain()");
q1("SELECT mq.alter_queue('r5', max_attempts => 1)");
is(names('r5', "mq.receive('r5', 10)"), 'a3', '5: receive dead-letters the three and hands out a3 alone');
is(dead('r5'), 'a0 a1 a2', '5: the three are dead letters');
is(q1("SELECT count(*) FROM mq.r_r5"), '0', '5: no row left in the run table');
q1("SELECT mq.ack('r5', id) FROM mq.w_r5");
is(names('r5', "mq.receive('r5', 10)"), 'a4', '5: after a3, a4');

# 6. the same found by pop
start_run('r6', ", max_attempts => 3, retry_delay => '0', retry_delay_max => '0'", '50 ms');
usleep(200_000);
q1("SELECT mq.maintain()");
q1("SELECT mq.alter_queue('r6', max_attempts => 1)");
is(names('r6', "mq.pop('r6', 10)"), 'a3', '6: pop dead-letters the three and pops a3 alone');
is(dead('r6'), 'a0 a1 a2', '6: the three are dead letters');
is(q1("SELECT count(*) FROM mq.r_r6"), '0', '6: no row left in the run table');
is(names('r6', "mq.pop('r6', 10)"), 'a4', '6: then a4');

# 7. nacks on the last attempt, one call each, in reverse order
start_run('r7', ', max_attempts => 1', '1 hour');
for my $m (qw(a2 a1 a0))
{
	q1("SELECT mq.nack('r7', id, error => 'no') FROM mq.w_r7 WHERE message->>'n' = '$m'");
	is(names('r7', "mq.receive('r7', 10)"), '-', "7: after the nack of $m nothing of the group")
	  if $m ne 'a0';
}
is(dead('r7'), 'a0 a1 a2', '7: the three are dead letters');
run_gone('r7', '7 (nacked on the last attempt)');

# 8. purge while the run is in flight, then the group starts again
start_run('r8', '', '1 hour');
q1("SELECT mq.purge_queue('r8')");
is(q1("SELECT count(*) FROM mq.r_r8"), '0', '8: purge empties the run table');
q1(qq{SELECT count(*) FROM mq.send_batch('r8', ARRAY(SELECT jsonb_build_object('n', 'a' || i)
        FROM generate_series(3, 4) i ORDER BY i), group_key => 'k')});
run_gone('r8', '8 (purged, sent again)');

$node->stop;
done_testing();
