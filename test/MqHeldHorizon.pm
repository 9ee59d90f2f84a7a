# MqHeldHorizon: what the held-xmin-horizon TAP tests share (028, 032, 034).
#
# A session holds a REPEATABLE READ snapshot, so no row deleted after it is
# vacuumed away; n messages are then sent, received and acked one
# transaction each, leaving n dead wait rows whose index entries a careless
# statement would walk.  The tests then count the index entries a statement
# reads (pg_stat_user_indexes.idx_tup_read).
package MqHeldHorizon;

use strict;
use warnings;
use Exporter 'import';
use Test::More;

our @EXPORT = qw(hold_horizon cycle_leases horizon_still_held release_horizon);

# A background session of $node that holds its snapshot until released.
sub hold_horizon
{
	my ($node) = @_;
	my $holder = $node->background_psql('postgres');
	$holder->query_safe("BEGIN ISOLATION LEVEL REPEATABLE READ");
	$holder->query_safe("SELECT count(*) FROM mq.queue_catalog");
	return $holder;
}

# Send, receive and ack $n messages of queue $queue, one transaction each step.
sub cycle_leases
{
	my ($node, $queue, $n) = @_;
	$node->safe_psql('postgres', qq{
DO \$\$
DECLARE
    rid bigint;
BEGIN
    FOR i IN 1 .. $n LOOP
        PERFORM mq.send('$queue', jsonb_build_object('n', i));
        COMMIT;
        SELECT id INTO rid FROM mq.receive('$queue', 1);
        PERFORM mq.ack('$queue', rid);
        COMMIT;
    END LOOP;
END
\$\$});
}

# A test that the holder kept its snapshot (else the test proved nothing).
sub horizon_still_held
{
	my ($holder) = @_;
	is($holder->query_safe(
			"SELECT count(*) FROM pg_stat_activity WHERE pid = pg_backend_pid() AND backend_xmin IS NOT NULL"),
		'1', 'the holder held its snapshot throughout');
}

sub release_horizon
{
	my ($holder) = @_;
	$holder->query_safe("COMMIT");
	$holder->quit;
}

1;
