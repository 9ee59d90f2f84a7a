
# Copyright: mq authors; PostgreSQL License.
#
# Blocking receive (mq.receive with wait > 0): a waiter is woken by a commit
# in another session, not by a rolled-back send; it returns empty when the
# wait ends; cancel and statement_timeout interrupt it; a delayed message
# coming due wakes it with no worker; one message wakes one of many waiters.
# (isolationtester only sees waits on heavyweight locks, not on condition
# variables, so these run here with background psql sessions.)

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;
use Time::HiRes qw(time usleep);

my $node = mq_node('blocking', qq{
mq.worker_enabled = off
});

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub waiting
{
	return sql("SELECT count(*) FROM pg_stat_activity
	             WHERE wait_event_type = 'Extension' AND backend_type = 'client backend'");
}

# start a blocking receive in a background session; returns the session
sub start_wait
{
	my ($wait, $label) = @_;
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	$s->query_until(qr/started/,
		"\\echo started\nSELECT '$label:' || coalesce(string_agg(message->>'n', ','), 'none') FROM mq.receive('bq', 1, wait => '$wait');\n");
	return $s;
}

sql("CREATE EXTENSION mq");
sql("SELECT mq.create_queue('bq')");

# --- a commit wakes the waiter at once ---------------------------------------
my $w = start_wait('20 s', 'r1');
ok(wait_for(sub { waiting() eq '1' }, 5), 'the receive is waiting');
is(sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Extension'
         AND backend_type = 'client backend' AND backend_xmin IS NULL"), '1',
	'and holds back no xmin while it sleeps');
my $t0 = time();
sql("SELECT mq.send('bq', '{\"n\": \"one\"}')");
my $out = $w->query_safe("SELECT 'done'");
my $elapsed = time() - $t0;
like($out, qr/r1:one/, 'the waiter received the committed message');
ok($elapsed < 5, "woken by the commit, not by the end of the wait ($elapsed s)");
$w->quit;

# --- a rolled-back send does not end the wait --------------------------------
$w = start_wait('20 s', 'r2');
ok(wait_for(sub { waiting() eq '1' }, 5), 'waiting again');
sql("BEGIN; SELECT mq.send('bq', '{\"n\": \"ghost\"}'); ROLLBACK;");
usleep(300_000);
is(waiting(), '1', 'still waiting after a rolled-back send');
sql("SELECT mq.send('bq', '{\"n\": \"two\"}')");
like($w->query_safe("SELECT 'done'"), qr/r2:two/, 'then a committed send ends it');
$w->quit;

# --- the wait ends empty -----------------------------------------------------
$t0 = time();
is(sql("SELECT count(*) FROM mq.receive('bq', 1, wait => '300 ms')"), '0',
	'nothing to receive: no rows when the wait ends');
$elapsed = time() - $t0;
ok($elapsed >= 0.3 && $elapsed < 5, "and it waited for the wait ($elapsed s)");

# --- cancel and statement_timeout interrupt it -------------------------------
$w = start_wait('60 s', 'r3');
ok(wait_for(sub { waiting() eq '1' }, 5), 'waiting for a minute');
$t0 = time();
sql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity
      WHERE wait_event_type = 'Extension' AND backend_type = 'client backend'");
my ($stdout, $stderr);
$w->query("SELECT 'done'");
$elapsed = time() - $t0;
like($w->{stderr}, qr/canceling statement due to user request/, 'cancel interrupts the wait');
ok($elapsed < 5, "at once ($elapsed s)");
$w->quit;
my ($ret, $o, $e) = $node->psql('postgres',
	"SET statement_timeout = '200ms'; SELECT count(*) FROM mq.receive('bq', 1, wait => '60 s')");
like($e, qr/canceling statement due to statement timeout/, 'statement_timeout interrupts the wait');
is(waiting(), '0', 'nobody is left waiting');

# --- a delayed message coming due wakes the waiter, with no worker -----------
sql("SELECT mq.send('bq', '{\"n\": \"later\"}', delay => '500 ms')");
$t0 = time();
is(sql("SELECT string_agg(message->>'n', ',') FROM mq.receive('bq', 1, wait => '20 s')"), 'later',
	'a delayed message is received when it comes due');
$elapsed = time() - $t0;
ok($elapsed >= 0.4 && $elapsed < 3, "when it comes due, not at the end of the wait ($elapsed s)");

# --- one message, many waiters: one gets it, the others keep waiting ---------
my @ws = map { start_wait('20 s', "m$_") } 1 .. 4;
ok(wait_for(sub { waiting() eq '4' }, 5), 'four receivers waiting');
sql("SELECT mq.send('bq', '{\"n\": \"solo\"}')");
ok(wait_for(sub { waiting() eq '3' }, 5), 'one message: one waiter returns, three still wait');
sql("SELECT count(*) FROM mq.send_batch('bq', ARRAY['{\"n\": \"a\"}', '{\"n\": \"b\"}', '{\"n\": \"c\"}']::jsonb[])");
my $all = join('', map { $_->query_safe("SELECT 'done'") } @ws);
my @got = sort ($all =~ /m\d:(\w+)/g);
is(join(',', @got), 'a,b,c,solo', 'every message went to exactly one waiter');
$_->quit for @ws;
is(sql("SELECT concat_ws('|', ready, in_flight) FROM mq.metrics('bq')"), '0|7',
	'nothing left ready; the seven received messages are in flight');

$node->stop;
done_testing();
