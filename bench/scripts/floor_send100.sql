-- W3 floor: a batch of 100 messages per transaction.
INSERT INTO floor_q (message) SELECT m FROM unnest(array_fill('{"order": 12345, "customer": "c-42", "amount": 99.5}'::jsonb, ARRAY[100])) AS m;
