-- W13 producer: one message per transaction carrying clock_timestamp()
-- taken just before the commit, then a 20 ms pause (the woken waiter is
-- asleep again when the next one commits).  The session's first message
-- (pgbench -D warmup=1) plans mq's statements after the clock was read:
-- it is marked and not counted.
SELECT mq.send('w13', jsonb_build_object('t', clock_timestamp(),
               'side', CASE WHEN :warmup = 1 THEN 'warmup' ELSE 'w13' END));
\set warmup 0
\sleep 20 ms
