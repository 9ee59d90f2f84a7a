-- W12 mq: W1's send on queue :q (pgbench -D q=...).
SELECT mq.send(:q, '{"order": 12345, "customer": "c-42", "amount": 99.5}');
