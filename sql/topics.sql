-- topics: pattern routing, filters, fan-out, subscribe/unsubscribe, errors
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;

-- Routing table: one queue per pattern, one message per topic; each row
-- lists the topics the pattern's queue received.
CREATE TEMP TABLE rt (queue text, pattern text);
INSERT INTO rt VALUES
  ('rt_01', 'orders.eu.paid'),
  ('rt_02', 'orders'),
  ('rt_03', 'orders.*.paid'),
  ('rt_04', '*.eu.*'),
  ('rt_05', '*.*.paid'),
  ('rt_06', 'orders.*'),
  ('rt_07', '*'),
  ('rt_08', 'orders.#'),
  ('rt_09', '#.paid'),
  ('rt_10', '#'),
  ('rt_11', 'orders.#.paid'),
  ('rt_12', '#.eu.#'),
  ('rt_13', '*.#'),
  ('rt_14', '#.*'),
  ('rt_15', 'orders.*.#'),
  ('rt_16', '#.#'),
  ('rt_17', '#.x.#.x'),
  ('rt_18', '*.#.*');
SELECT bool_and(mq.create_queue(queue)) AS created FROM rt;
SELECT bool_and(mq.subscribe(queue, pattern)) AS subscribed FROM rt;
CREATE TEMP TABLE topics (n int, topic text);
INSERT INTO topics VALUES
  (1, 'orders'),
  (2, 'orders.eu'),
  (3, 'orders.eu.paid'),
  (4, 'orders.us.paid'),
  (5, 'orders.eu.paid.late'),
  (6, 'orders.paid'),
  (7, 'orders.eu.x.paid'),
  (8, 'shipping.eu.paid'),
  (9, 'x'),
  (10, 'a.x.b.x'),
  (11, 'x.x.x'),
  (12, 'a.x.b');
-- how many queues each topic reached
SELECT n, topic, mq.publish(topic, jsonb_build_object('n', n)) AS delivered
  FROM topics ORDER BY n;
-- which topics each pattern received (by topic number)
SELECT rt.pattern,
       coalesce(string_agg(m.message->>'n', ' ' ORDER BY (m.message->>'n')::int), '-') AS topics
  FROM rt LEFT JOIN LATERAL mq.receive(rt.queue, 100) m ON true
 GROUP BY rt.queue, rt.pattern ORDER BY rt.queue;
-- every copy carries its topic in its headers
SELECT count(*) AS copies, bool_and(w.headers = jsonb_build_object('topic', t.topic)) AS topic_header
  FROM mq.w_rt_10 w JOIN topics t ON t.n = (w.message->>'n')::int;

-- Copies are ordinary messages: own ids, headers with "topic", counted as sent
SELECT mq.purge_queue(queue) >= 0 AS purged FROM rt WHERE queue IN ('rt_08', 'rt_10') ORDER BY queue;
SELECT mq.publish('orders.eu.paid', '{"k": 1}', headers => '{"h": "x", "topic": "ignored"}') AS delivered;
SELECT count(DISTINCT id) AS ids, min(headers::text) AS headers FROM (
  SELECT id, headers FROM mq.receive('rt_08', 10)
  UNION ALL SELECT id, headers FROM mq.receive('rt_10', 10)) s;
SELECT total_sent FROM mq.metrics('rt_01');
-- delivered in queue-name order: ids increase with the queue name
SELECT string_agg(queue, ' ' ORDER BY id) AS by_id FROM (
  SELECT 'rt_03' AS queue, id FROM mq.receive('rt_03')
  UNION ALL SELECT 'rt_01', id FROM mq.receive('rt_01')
  UNION ALL SELECT 'rt_05', id FROM mq.receive('rt_05')) s;
SELECT bool_and(mq.drop_queue(queue)) AS dropped FROM rt;

-- Fan-out: each subscribed queue gets one copy; a queue bound by several
-- matching patterns still gets one (publish counts queues, not bindings)
SELECT mq.create_queue('fa'), mq.create_queue('fb'), mq.create_queue('fc');
SELECT mq.subscribe('fa', 'app.#'), mq.subscribe('fa', 'app.*.created'),
       mq.subscribe('fa', '#.created'), mq.subscribe('fb', 'app.user.*'),
       mq.subscribe('fc', 'other.#');
SELECT mq.publish('app.user.created', '{"id": 7}') AS delivered;
SELECT mq.publish('app.user.deleted', '{"id": 8}') AS delivered;
SELECT mq.publish('other', '{"id": 9}') AS delivered;
SELECT mq.publish('nobody.listens', '{"id": 10}') AS delivered;
SELECT queue, ready, total_sent FROM mq.metrics() WHERE queue IN ('fa', 'fb', 'fc') ORDER BY queue;
SELECT message FROM mq.receive('fa', 10) ORDER BY id;

-- The subscriptions view
SELECT queue, pattern, filter, created_at <= now() AS created
  FROM mq.subscriptions WHERE queue LIKE 'f_' ORDER BY queue, pattern;

-- Filters: headers @> filter, matched against the copy's headers (the
-- published headers plus "topic")
SELECT mq.create_queue('flt_eu'), mq.create_queue('flt_nested'), mq.create_queue('flt_topic');
SELECT mq.subscribe('flt_eu', 'sensors.#', '{"region": "eu"}');
SELECT mq.subscribe('flt_nested', 'sensors.#', '{"meta": {"tags": ["hot"]}}');
SELECT mq.subscribe('flt_topic', 'sensors.#', '{"topic": "sensors.temp"}');
SELECT mq.publish('sensors.temp', '{"v": 1}', '{"region": "eu", "site": 3}') AS eu_and_topic;
SELECT mq.publish('sensors.temp', '{"v": 2}', '{"region": "us"}') AS topic_only;
SELECT mq.publish('sensors.temp', '{"v": 3}') AS no_headers;
SELECT mq.publish('sensors.rain', '{"v": 4}', '{"region": "eu", "meta": {"tags": ["hot", "dry"], "x": 1}}') AS eu_and_nested;
SELECT mq.publish('sensors.rain', '{"v": 5}', '{"meta": {"tags": ["cold"]}}') AS none;
SELECT 'flt_eu' AS queue, string_agg(message->>'v', ' ' ORDER BY id) AS got FROM mq.receive('flt_eu', 10)
UNION ALL SELECT 'flt_nested', string_agg(message->>'v', ' ' ORDER BY id) FROM mq.receive('flt_nested', 10)
UNION ALL SELECT 'flt_topic', string_agg(message->>'v', ' ' ORDER BY id) FROM mq.receive('flt_topic', 10);
-- one binding's filter fails, another binding of the queue matches: one copy
SELECT mq.subscribe('flt_eu', 'sensors.temp');
SELECT mq.publish('sensors.temp', '{"v": 6}', '{"region": "us"}') AS delivered;
SELECT mq.publish('sensors.temp', '{"v": 7}', '{"region": "eu"}') AS delivered;
SELECT string_agg(message->>'v', ' ' ORDER BY id) AS got FROM mq.receive('flt_eu', 10);
SELECT mq.unsubscribe('flt_eu', 'sensors.temp');

-- Subscribing again: false; the new filter replaces the old one, NULL removes it
SELECT mq.subscribe('flt_eu', 'sensors.#', '{"region": "us"}') AS again;
SELECT pattern, filter FROM mq.subscriptions WHERE queue = 'flt_eu';
SELECT mq.publish('sensors.temp', '{"v": 8}', '{"region": "eu"}') AS eu_now_filtered;
SELECT mq.publish('sensors.temp', '{"v": 9}', '{"region": "us"}') AS us_now_delivered;
SELECT mq.subscribe('flt_eu', 'sensors.#') AS again_without_filter;
SELECT pattern, filter FROM mq.subscriptions WHERE queue = 'flt_eu';
SELECT mq.publish('sensors.temp', '{"v": 10}', '{"region": "xx"}') AS delivered;
SELECT string_agg(message->>'v', ' ' ORDER BY id) AS got FROM mq.receive('flt_eu', 10);

-- Unsubscribe: true once, then false; an unknown queue is false too
SELECT mq.unsubscribe('flt_eu', 'sensors.#') AS first, mq.unsubscribe('flt_eu', 'sensors.#') AS second;
SELECT mq.unsubscribe('no_such_queue', 'a.b') AS unknown_queue;
SELECT count(*) FROM mq.subscriptions WHERE queue = 'flt_eu';
SELECT mq.publish('sensors.temp', '{"v": 11}', '{"region": "eu"}') AS delivered;
SELECT count(*) FROM mq.receive('flt_eu', 10);

-- A publish belongs to the publisher's transaction: rolled back, no copies
SELECT mq.purge_queue('fa') >= 0 AS purged, mq.purge_queue('fb') >= 0 AS purged;
BEGIN;
SELECT mq.publish('app.user.created', '{"tx": 1}') AS delivered;
SELECT count(*) AS seen_inside FROM mq.receive('fa', 10);
ROLLBACK;
SELECT queue, ready, in_flight, total_sent FROM mq.metrics() WHERE queue IN ('fa', 'fb') ORDER BY queue;
SELECT (SELECT count(*) FROM mq.q_fa) + (SELECT count(*) FROM mq.w_fa)
     + (SELECT count(*) FROM mq.q_fb) + (SELECT count(*) FROM mq.w_fb) AS rows_left;
-- a failing statement takes its publish with it
SELECT pg_temp.err($$SELECT mq.publish('app.user.created', '{"tx": 2}') / 0$$);
SELECT count(*) FROM mq.receive('fa', 10);
-- a subscription made in a transaction is used at once, and gone after rollback
BEGIN;
SELECT mq.subscribe('fc', 'tx.#');
SELECT mq.publish('tx.one', '{"tx": 3}') AS delivered_inside;
ROLLBACK;
SELECT mq.publish('tx.one', '{"tx": 4}') AS delivered_after;
SELECT count(*) FROM mq.subscriptions WHERE pattern = 'tx.#';

-- Delayed publish: every copy waits
SELECT mq.purge_queue('fa') >= 0 AS purged, mq.purge_queue('fb') >= 0 AS purged;
SELECT mq.publish('app.user.created', '{"later": true}', delay => '1 hour') AS delivered;
SELECT count(*) FROM mq.receive('fa', 10);
SELECT queue, ready, delayed FROM mq.metrics() WHERE queue IN ('fa', 'fb') ORDER BY queue;
SELECT min(vt) > now() + interval '59 minutes' AS waits_an_hour FROM mq.w_fa;

-- Dropping a queue drops its subscriptions
SELECT count(*) FROM mq.subscriptions WHERE queue = 'fa';
SELECT mq.drop_queue('fa');
SELECT count(*) FROM mq.subscriptions WHERE queue = 'fa';
SELECT mq.publish('app.user.created', '{"id": 12}') AS delivered;
-- a new queue of that name starts without subscriptions
SELECT mq.create_queue('fa');
SELECT mq.publish('app.user.created', '{"id": 13}') AS delivered;
SELECT count(*) FROM mq.receive('fa');

-- Bad patterns (22023), naming the value
SELECT p AS pattern, pg_temp.err(format('SELECT mq.subscribe(%L, %L)', 'fb', p))
  FROM unnest(ARRAY['', '.', 'a.', '.a', 'a..b', 'a*', '*a', 'a#', '#b', 'a.*b',
                    '**', '##', '*#', 'a.b#.c']) p;
SELECT length(p), left(pg_temp.err(format('SELECT mq.subscribe(%L, %L)', 'fb', p)), 40)
  FROM (VALUES (repeat('a.', 127) || 'a'), (repeat('a.', 127) || 'ab'), (repeat('#.', 127) || '*')) v(p);
SELECT mq.unsubscribe('fb', repeat('a.', 127) || 'a'), mq.unsubscribe('fb', repeat('#.', 127) || '*');
SELECT pg_temp.err($$SELECT mq.unsubscribe('fb', 'a.*b')$$);
-- the details say what is wrong
SELECT mq.subscribe('fb', 'orders.*paid');
SELECT mq.subscribe('fb', 'orders..paid');
SELECT mq.subscribe('fb', '');
SELECT mq.publish('orders.#', '{}');
SELECT mq.publish(repeat('x', 256), '{}') IS NULL;
SELECT mq.subscribe('fb', 'a.b', '[1]');
-- bad topics (22023): wildcards belong to patterns
SELECT t AS topic, pg_temp.err(format('SELECT mq.publish(%L, %L)', t, '{}'))
  FROM unnest(ARRAY['', '.', 'a.', '.a', 'a..b', '*', '#', 'a.*', 'a.#', 'a*b', 'x#']) t;
SELECT length(t), left(pg_temp.err(format('SELECT mq.publish(%L, %L)', t, '{}')), 40)
  FROM (VALUES (repeat('x', 255)), (repeat('x', 256))) v(t);
-- words are anything but dots: spaces, case and non-ASCII letters count
SELECT mq.subscribe('fb', 'Café.Größe.a b');
SELECT mq.publish('Café.Größe.a b', '{}') AS delivered, mq.publish('café.Größe.a b', '{}') AS other_case;
-- other errors
SELECT pg_temp.err($$SELECT mq.subscribe('no_such_queue', 'a.b')$$);
SELECT pg_temp.err($$SELECT mq.subscribe('Bad', 'a.b')$$);
SELECT pg_temp.err($$SELECT mq.subscribe(NULL, 'a.b')$$);
SELECT pg_temp.err($$SELECT mq.subscribe('fb', NULL)$$);
SELECT pg_temp.err($$SELECT mq.subscribe('fb', 'a.b', '[1, 2]')$$);
SELECT pg_temp.err($$SELECT mq.subscribe('fb', 'a.b', '"eu"')$$);
SELECT pg_temp.err($$SELECT mq.unsubscribe(NULL, 'a.b')$$);
SELECT pg_temp.err($$SELECT mq.unsubscribe('fb', NULL)$$);
SELECT pg_temp.err($$SELECT mq.unsubscribe('Bad', 'a.b')$$);
SELECT pg_temp.err($$SELECT mq.publish(NULL, '{}')$$);
SELECT pg_temp.err($$SELECT mq.publish('a.b', NULL)$$);
SELECT pg_temp.err($$SELECT mq.publish('a.b', '{}', '[1]')$$);
SELECT pg_temp.err($$SELECT mq.publish('a.b', '{}', delay => '-1 second')$$);
-- a NULL delay is no delay; NULL headers are none
SELECT mq.subscribe('fb', 'nulls');
SELECT mq.publish('nulls', '{"n": 1}', NULL, NULL) AS delivered;
SELECT message, headers FROM mq.receive('fb', 10) WHERE message ? 'n';
-- nothing was subscribed by the failed calls
SELECT queue, pattern FROM mq.subscriptions ORDER BY queue, pattern;

SELECT mq.drop_queue(q) FROM unnest(ARRAY['fa', 'fb', 'fc', 'flt_eu', 'flt_nested', 'flt_topic']) q;
SELECT count(*) FROM mq.subscriptions;
