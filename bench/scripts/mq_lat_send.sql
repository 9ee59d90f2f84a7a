-- W5 mq producer: the message carries its send time (ms since the epoch).
SELECT mq.send('bench', jsonb_build_object('order', 12345, 'customer', 'c-42', 'amount', 99.5, 'sent_ms', extract(epoch FROM clock_timestamp()) * 1000));
