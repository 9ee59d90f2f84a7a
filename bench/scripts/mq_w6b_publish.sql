-- W6b mq: publish to a topic that none of the 1,000 subscriptions matches;
-- the comparison is one plain send (mq_send.sql).
SELECT mq.publish('billing.refunded', '{"order": 12345, "customer": "c-42", "amount": 99.5}');
