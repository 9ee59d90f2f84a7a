-- W7 producer: one message per transaction carrying clock_timestamp() taken
-- just before the commit, then a 5 ms pause so that the consumer is asleep
-- again when the next one commits.  The first message of the session
-- (pgbench -D warmup=1) is marked: its send plans mq's statements after
-- the clock was read, so the consumer does not count it.
SELECT mq.send('w7', jsonb_build_object('t', clock_timestamp(), 'warmup', :warmup::int));
\set warmup 0
\sleep 5 ms
