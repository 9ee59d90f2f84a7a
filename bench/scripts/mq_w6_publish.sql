-- W6 mq: publish one message to a topic that the 10 queues w6_q1..w6_q10
-- subscribe to ('orders.*'): 10 copies, one transaction.
SELECT mq.publish('orders.paid', '{"order": 12345, "customer": "c-42", "amount": 99.5}');
