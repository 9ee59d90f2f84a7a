-- W1 floor: one message per transaction.
INSERT INTO floor_q (message) VALUES ('{"order": 12345, "customer": "c-42", "amount": 99.5}');
