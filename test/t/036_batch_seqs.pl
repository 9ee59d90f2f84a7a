
# Copyright: mq authors; PostgreSQL License.
#
# A ready send_batch takes its n seqs with one exchange, the first of n
# consecutive ones above every seq handed out before, and its statement
# adds each row's place (src/insert.c, mq_ready_seq; src/plans.c,
# MQP_INSERT_READY_BATCH).  Under concurrent single sends and batches:
# no two ready rows share a seq, each batch's rows have consecutive seqs
# in their input order, and a consumer that runs meanwhile, moving the lane
# heads, skips no row: everything sent is received and acked once.
#
# Phase 1: two clients send 1,000 batches of 20 each, two send 3,000
# messages each, one per transaction, nobody consumes; the ready table is
# checked.
# Phase 2: the same with a consumer (receive 50, ack) running, then a
# drain: acked = sent, nothing left.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MqTest;
use IPC::Run;

my $node = mq_node('batch_seqs', qq{
mq.worker_enabled = off
max_connections = 20
});

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1("CREATE EXTENSION mq");
q1("SELECT mq.create_queue('bs')");

my $dir = PostgreSQL::Test::Utils::tempdir('batch_seqs');
my %script = (
	batch => q{\set b random(1, 1000000000)
SELECT count(*) FROM mq.send_batch('bs', ARRAY(SELECT jsonb_build_object('b', :b, 'i', i)
  FROM generate_series(1, 20) i ORDER BY i));
},
	single => q{SELECT mq.send('bs', '{"s": 1}');
},
	consume => q{SELECT mq.ack('bs', coalesce(array_agg(id), '{}')) FROM mq.receive('bs', 50);
});
my %transactions = (batch => 1000, single => 3000, consume => 500);
for my $k (keys %script)
{
	open my $fh, '>', "$dir/$k.sql" or die;
	print $fh $script{$k};
	close $fh;
}

# run the scripts named at once, each by its own pgbench with 2 clients
sub run_clients
{
	my @h;
	for my $k (@_)
	{
		my ($out, $err) = ('', '');
		push @h, [ IPC::Run::start(
				[ 'pgbench', '-n', '-c', '2', '-t', $transactions{$k}, '-f', "$dir/$k.sql",
				  '-h', $node->host, '-p', $node->port, 'postgres' ],
				'>', \$out, '2>', \$err), \$out, \$err, $k ];
	}
	for my $x (@h)
	{
		my ($h, $out, $err, $k) = @$x;
		$h->finish;
		is($h->result(0), 0, "pgbench $k ran") or diag($$err);
	}
}

# phase 1: producers only
run_clients('batch', 'single');
my $ready = q1("SELECT count(*) FROM mq.q_bs");
is($ready, 2 * 1000 * 20 + 2 * 3000, "phase 1: $ready messages sent");
is(q1("SELECT count(*) FROM (SELECT seq FROM mq.q_bs GROUP BY seq HAVING count(*) > 1) d"),
	'0', 'phase 1: no two ready rows share a seq');
is( q1(q{SELECT count(*) FROM (
	       SELECT message->'b' AS b, max(seq) - min(seq) AS span, count(*) AS n,
	              bool_and(o_seq = o_i) AS in_order
	         FROM (SELECT message, seq,
	                      row_number() OVER (PARTITION BY message->'b' ORDER BY seq) AS o_seq,
	                      row_number() OVER (PARTITION BY message->'b' ORDER BY (message->>'i')::int) AS o_i
	                 FROM mq.q_bs WHERE message ? 'b') r
	        GROUP BY 1) g
	    WHERE n <> 20 OR span <> 19 OR NOT in_order}),
	'0', 'phase 1: every batch has 20 consecutive seqs, in input order');

# phase 2: producers and a consumer at once, then a drain
run_clients('batch', 'single', 'consume');
q1(q{DO $$
BEGIN
    LOOP
        EXIT WHEN (SELECT mq.ack('bs', coalesce(array_agg(id), '{}')) FROM mq.receive('bs', 1000)) = 0;
    END LOOP;
END $$});
is(q1("SELECT concat_ws('|', ready, in_flight, delayed, total_sent = total_acked) FROM mq.metrics('bs')"),
	'0|0|0|t', 'phase 2: every message sent was received and acked');
is(q1("SELECT count(*) FROM mq.q_bs") . '|' . q1("SELECT count(*) FROM mq.w_bs"), '0|0',
	'phase 2: nothing left in the tables');

$node->stop;
done_testing();
