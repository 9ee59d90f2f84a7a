-- W5 floor producer: the message carries its send time (ms since the epoch).
INSERT INTO floor_q (message) VALUES (jsonb_build_object('order', 12345, 'customer', 'c-42', 'amount', 99.5, 'sent_ms', extract(epoch FROM clock_timestamp()) * 1000));
