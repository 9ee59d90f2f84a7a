-- W1 mq: one message per transaction.
SELECT mq.send('bench', '{"order": 12345, "customer": "c-42", "amount": 99.5}');
