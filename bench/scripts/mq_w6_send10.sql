-- W6 comparison (the "floor" column): the same 10 copies by hand, 10 sends
-- in one statement (one round trip, one transaction, like the publish).
SELECT mq.send('w6_q1', '{"order": 12345, "customer": "c-42", "amount": 99.5}'),
       mq.send('w6_q2', '{"order": 12345, "customer": "c-42", "amount": 99.5}'),
       mq.send('w6_q3', '{"order": 12345, "customer": "c-42", "amount": 99.5}'),
       mq.send('w6_q4', '{"order": 12345, "customer": "c-42", "amount": 99.5}'),
       mq.send('w6_q5', '{"order": 12345, "customer": "c-42", "amount": 99.5}'),
       mq.send('w6_q6', '{"order": 12345, "customer": "c-42", "amount": 99.5}'),
       mq.send('w6_q7', '{"order": 12345, "customer": "c-42", "amount": 99.5}'),
       mq.send('w6_q8', '{"order": 12345, "customer": "c-42", "amount": 99.5}'),
       mq.send('w6_q9', '{"order": 12345, "customer": "c-42", "amount": 99.5}'),
       mq.send('w6_q10', '{"order": 12345, "customer": "c-42", "amount": 99.5}');
