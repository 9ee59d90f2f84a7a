# MqWait: waiting in TAP tests for something the worker or another session
# does in its own time (006, 018, 020, 023, 027, 030).
package MqWait;

use strict;
use warnings;
use Exporter 'import';
use Time::HiRes qw(time usleep);

our @EXPORT = qw(wait_for);

# Run $check every 50 ms until it returns true or $seconds have passed.
# Returns the seconds it took (more than 0), or undef if it never did.
sub wait_for
{
	my ($check, $seconds) = @_;
	my $start = time();
	while (time() - $start < $seconds)
	{
		return time() - $start || 1e-6 if $check->();
		usleep(50_000);
	}
	return undef;
}

1;
