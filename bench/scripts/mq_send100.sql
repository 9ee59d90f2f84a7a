-- W3 mq: a batch of 100 messages per transaction.
SELECT count(*) FROM mq.send_batch('bench', array_fill('{"order": 12345, "customer": "c-42", "amount": 99.5}'::jsonb, ARRAY[100]));
