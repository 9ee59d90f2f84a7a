
# Copyright: mq authors; PostgreSQL License.
#
# The worker's passes do not walk a wait table's dead entries under a held
# xmin horizon, however many passes it makes (issue 12 item 4, left over by
# the W10 soak: one pass in 60 promoted over the whole wait table, "in case
# the system clock stepped back", reading every lease acked since the
# horizon was pinned; under a long hold that grew without bound).
#
# Writers now never use a clock below the one a promoter used
# (mq_slot_note_wait, src/shmem.c), so no row can be below the low mark and
# no pass needs to look below it.  Here: the worker makes a pass every 50
# ms; while a REPEATABLE READ transaction holds the horizon, 1,500 messages
# are sent, received (1 s leases) and acked, leaving 1,500 dead wait rows
# whose vt has passed; one more message stays leased for an hour.
# A message delayed 1 s in that queue is promoted by the worker alone
# (nobody receives): the worker still does the work that is due.  Then,
# over 130 more passes (two of the old full ones), the worker must read
# fewer than 300 entries of the wait table's vt index (the old code: at
# least 1,500 per full pass).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;
use Time::HiRes qw(usleep time);
use MqHeldHorizon;

my $n = 1500;

my $node = mq_node('worker_held_horizon', qq{
mq.worker_enabled = on
mq.worker_naptime = 50
autovacuum = off
log_statement = none
});

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1("CREATE EXTENSION mq");
q1("SELECT mq.create_queue('wh', visibility_timeout => '1 s')");

sub passes { return q1("SELECT coalesce(sum(passes), 0) FROM mq.workers"); }

# wait until the worker serves the database
my $t0 = time();
usleep(100_000) while passes() < 2 && time() - $t0 < 20;
cmp_ok(passes(), '>=', 2, 'the worker makes passes');

my $holder = hold_horizon($node);
cycle_leases($node, 'wh', $n);
is(q1("SELECT concat_ws('|', ready, in_flight, total_acked) FROM mq.metrics('wh')"),
	"0|0|$n", "$n messages sent, received and acked under the held horizon");

# their leases' ends pass (the rows are dead: acked); one message stays
# leased for an hour, so the queue has a wait row (a full pass visits it)
usleep(1_200_000);
q1("SELECT mq.send('wh', '\"held\"')");
is(q1("SELECT message #>> '{}' FROM mq.receive('wh', 1, visibility_timeout => '1 hour')"), 'held',
	'one message is leased for an hour');

my $read_sql = "SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelid = 'mq.wi_wh'::regclass";

# one message due in 1 s, received by nobody: the worker's promotion (its
# look for the next due time walks the dead entries once, from the low mark
# to the end of the index: that look is not what is measured)
q1("SELECT mq.send('wh', '\"late\"', delay => '1 s')");
$t0 = time();
usleep(100_000) while q1("SELECT ready FROM mq.metrics('wh')") ne '1' && time() - $t0 < 20;
is(q1("SELECT ready FROM mq.metrics('wh')"), '1',
	'the delayed message was promoted by the worker (nobody received)');

# the worker flushes its statistics after a pass, at most once a second
sub settle
{
	usleep(1_100_000);
	my $p = passes();
	usleep(50_000) while passes() < $p + 3 && time() - $t0 < 120;
}
settle();
my $before = q1($read_sql);

my $p0 = passes();
usleep(100_000) while passes() < $p0 + 130 && time() - $t0 < 120;
my $made = passes() - $p0;
cmp_ok($made, '>=', 130, "the worker made $made passes meanwhile");
settle();
my $read = q1($read_sql) - $before;
note("the worker's passes read $read entries of mq.wi_wh");
horizon_still_held($holder);
cmp_ok($read, '<', 300,
	"over more than 120 passes the worker did not walk the $n dead leases (read $read entries)");

is(q1("SELECT message #>> '{}' FROM mq.receive('wh', 1)"), 'late', 'the delayed message is delivered');

release_horizon($holder);
$node->stop;
done_testing();
