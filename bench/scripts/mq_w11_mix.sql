-- W11: one of :nq active queues (w11_a_1 .. w11_a_<nq>) at random: send a
-- message, then lease one and ack it, in one transaction.
\set q random(1, :nq)
\set id 0
BEGIN;
SELECT mq.send('w11_a_' || :q, '{"order": 12345, "customer": "c-42", "amount": 99.5}');
SELECT id FROM mq.receive('w11_a_' || :q, 1) \aset
SELECT mq.ack('w11_a_' || :q, :id::bigint);
END;
