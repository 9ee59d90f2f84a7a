"""Tests of mq_client (issue 14, Python slice) against a temporary cluster
(tests/cluster.py): outbox sends, the Worker's ack/nack/retry/dead letter,
lease heartbeat, SIGTERM, reconnection, and exactly-once processing by
concurrent workers.  Run: PYTHONPATH=clients/python python3 -m unittest -v
discover -s clients/python/tests (tools/test.sh does, in `make test`)."""

import collections
import datetime as _dt
import decimal
import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

import psycopg
from psycopg.types.json import set_json_loads

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import cluster  # noqa: E402
from mq_client import Message, Queue, Worker  # noqa: E402
from mq_client import queue as mq_queue  # noqa: E402

DSN = None


def setUpModule():
    global DSN
    DSN = cluster.dsn()


def tearDownModule():
    cluster.stop()


def admin():
    return psycopg.connect(DSN, autocommit=True)


def make_queue(name, **opts):
    with admin() as c:
        c.execute("SELECT mq.drop_queue(%s)", (name,))
        args = ", ".join(f"{k} => %s" for k in opts)
        c.execute(f"SELECT mq.create_queue(%s{', ' + args if args else ''})",
                  (name, *opts.values()))


def metrics(name):
    with admin() as c:
        return Queue(c, name).metrics()


def poll(cond, timeout, what):
    """Wait until cond() is true (checked every 20 ms) or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class QueueTest(unittest.TestCase):
    def test_rolled_back_send_is_never_delivered(self):
        make_queue("py_outbox")
        with psycopg.connect(DSN) as conn:          # not autocommit: the caller's transaction
            q = Queue(conn, "py_outbox")
            q.send({"n": "rolled back"})
            q.send_batch([{"n": "rb batch 1"}, {"n": "rb batch 2"}])
            conn.rollback()
            kept = q.send({"n": "committed"}, headers={"tenant": "acme"}, priority=3)
            conn.commit()
        with admin() as c:
            got = Queue(c, "py_outbox").receive(10)
        self.assertEqual([(m.id, m.message) for m in got], [(kept, {"n": "committed"})],
                         "only the committed send is delivered")
        m = got[0]
        self.assertIsInstance(m, Message)
        self.assertEqual((m.headers, m.attempt, m.priority), ({"tenant": "acme"}, 1, 3))
        self.assertRegex(m.receipt, r"^[0-9a-f]{16}$")
        self.assertIsNotNone(m.enqueued_at.tzinfo)

    def test_publish_in_the_callers_transaction(self):
        make_queue("py_topic")
        with admin() as c:
            c.execute("SELECT mq.subscribe('py_topic', 'py.#')")
        with psycopg.connect(DSN) as conn:
            q = Queue(conn, "py_topic")
            self.assertEqual(q.publish("py.a", {"x": 1}), 1)
            conn.rollback()
            self.assertEqual(q.publish("py.b", {"x": 2}), 1)
            conn.commit()
        with admin() as c:
            got = Queue(c, "py_topic").receive(10)
        self.assertEqual([(m.message, m.topic) for m in got], [({"x": 2}, "py.b")])

    def test_receive_loads_each_field_as_psycopg_loads_the_row(self):
        # receive fetches a batch as one JSON text value and parses it in
        # Python: every field must come out as psycopg loads the columns of
        # mq.receive, also in a time zone with a half-hour offset.
        make_queue("py_fields")
        payloads = [({"s": 'q"uote\\back\u00e9', "f": 99.5, "big": 2 ** 62, "l": [None, True]},
                     {"tenant": "acme", "n": [1, 2]}, 5),
                    ("just a string", None, 0), (12345, {}, -3), (None, None, 0)]
        with admin() as c:
            q = Queue(c, "py_fields")
            for msg, hdr, prio in payloads:
                q.send(msg, headers=hdr, priority=prio)
        with psycopg.connect(DSN) as conn:
            conn.execute("SET TimeZone = 'Asia/Kolkata'")
            conn.commit()
            # a receive rolled back gives its messages back (as one more attempt)
            rows = conn.execute("SELECT id, message, headers, attempt, enqueued_at, visible_at,"
                                " priority, receipt FROM mq.receive('py_fields', 10)").fetchall()
            conn.rollback()
            got = Queue(conn, "py_fields").receive(10)
            conn.commit()
        self.assertEqual(len(got), len(payloads))
        self.assertEqual(len(rows), len(payloads))
        for row, m in zip(rows, got):
            mine = (m.id, m.message, m.headers, m.attempt, m.enqueued_at, m.priority)
            theirs = (row[0], row[1], row[2], row[3] + 1, row[4], row[6])
            self.assertEqual(mine, theirs)
            self.assertEqual([type(v) for v in mine], [type(v) for v in theirs])
            self.assertEqual(m.enqueued_at.tzinfo, row[4].tzinfo)
            self.assertEqual(m.enqueued_at.utcoffset(), _dt.timedelta(hours=5, minutes=30))
            self.assertEqual((m.visible_at.tzinfo, type(m.receipt)), (row[5].tzinfo, str))
        self.assertEqual([m.priority for m in got], [5, 0, 0, -3], "priority order kept")
        with admin() as c:
            self.assertEqual(Queue(c, "py_fields").ack_many(got), len(payloads))
            self.assertEqual(Queue(c, "py_fields").receive(10), [], "none left")

    def test_receive_applies_the_connections_json_loads_to_the_message_only(self):
        # each message comes as one json value, loaded as psycopg loads json:
        # a connection's set_json_loads applies to message and headers as it
        # did to the jsonb columns, and not to id, attempt or priority
        make_queue("py_loads")
        with admin() as c:
            q = Queue(c, "py_loads")
            sent = q.send({"amount": 99.5, "n": 7}, headers={"rate": 0.25}, priority=2)
            set_json_loads(lambda data: json.loads(data, parse_float=decimal.Decimal,
                                                   parse_int=decimal.Decimal), c)
            got = q.receive(10)
            self.assertEqual(len(got), 1)
            m = got[0]
            self.assertEqual((m.message, m.headers),
                             ({"amount": decimal.Decimal("99.5"), "n": 7}, {"rate": decimal.Decimal("0.25")}))
            self.assertIsInstance(m.message["amount"], decimal.Decimal)
            self.assertEqual([type(v) for v in (m.id, m.attempt, m.priority)], [int, int, int])
            self.assertEqual((m.id, m.attempt, m.priority), (sent, 1, 2))
            self.assertEqual(q.ack_many(got), 1)

    def test_array_literals_and_old_python_timestamps(self):
        with admin() as c:
            for values, typ in ((["a", 'q"', "b\\s", "{x,y}", " sp ", "", None, "NULL"], "text"),
                                (["0123456789abcdef", "x y"], "text"), ([], "text"),
                                ([1, -2, 2 ** 62, None], "bigint"), ([7, -8], "bigint"),
                                ([], "bigint")):
                got = c.execute(f"SELECT %s::text::{typ}[]",
                                (mq_queue._array_literal(values),)).fetchone()[0]
                self.assertEqual(got, values)
        self.assertEqual(mq_queue._iso_for_old_python("2026-01-02T03:04:05.5+05:30"),
                         "2026-01-02T03:04:05.500000+05:30")
        self.assertEqual(mq_queue._iso_for_old_python("2026-01-02T03:04:05-08:00"),
                         "2026-01-02T03:04:05-08:00")
        self.assertEqual(mq_queue._timestamp("2026-01-02T03:04:05.25-08:00", _dt.timezone.utc),
                         _dt.datetime(2026, 1, 2, 11, 4, 5, 250000, tzinfo=_dt.timezone.utc))


    def test_message_groups(self):
        make_queue("py_groups")
        with admin() as c:
            q = Queue(c, "py_groups")
            q.send({"n": 1}, group_key="a")
            q.send_batch([{"n": 2}, {"n": 3}], group_key="a")
            q.send_batch([{"n": 4}, {"n": 5}], group_keys=["b", None])
            got = q.receive(10)
            self.assertEqual(sorted((m.message["n"], m.group_key) for m in got),
                             [(1, "a"), (4, "b"), (5, None)],
                             "one message per group, and the ungrouped one")
            for m in got:
                q.ack(m)
            run = q.receive(10, per_group=2)
            self.assertEqual([(m.message["n"], m.group_key) for m in run],
                             [(2, "a"), (3, "a")], "per_group: a run of group a, in order")
            self.assertEqual(q.metrics()["groups_in_flight"], 2)


class WorkerTest(unittest.TestCase):
    def run_worker(self, worker, done, timeout, what):
        worker.start()
        try:
            poll(done, timeout, what)
        finally:
            worker.stop()
            self.assertTrue(worker.join(30), "worker threads end after stop()")

    def test_success_acks(self):
        make_queue("py_ok")
        with admin() as c:
            ids = Queue(c, "py_ok").send_batch([{"i": i} for i in range(20)])
        seen = []
        w = Worker(DSN, "py_ok", lambda m: seen.append(m.id), concurrency=2, wait=1)
        self.run_worker(w, lambda: w.stats["acked"] == 20, 20, "20 acks")
        self.assertEqual(sorted(seen), sorted(ids), "each message handled once")
        m = metrics("py_ok")
        self.assertEqual((m["ready"], m["in_flight"], m["delayed"], m["total_acked"]),
                         (0, 0, 0, 20), "all acked, none left")

    def test_a_dropped_queue_stops_the_worker_and_run_raises(self):
        make_queue("py_gone")
        w = Worker(DSN, "py_gone", lambda m: None, concurrency=2, wait=1)
        with admin() as c:
            c.execute("SELECT mq.drop_queue('py_gone')")
        result = {}

        def runner():
            try:
                result["rc"] = w.run(install_signals=False)
            except Exception as e:  # noqa: BLE001 - the error is the point
                result["error"] = e

        t = threading.Thread(target=runner)
        t.start()
        t.join(20)
        self.assertFalse(t.is_alive(), "run() returns once the queue is gone")
        self.assertIsInstance(result.get("error"), psycopg.errors.UndefinedTable,
                              "run() raises the receive's error (42P01), not 0")

    def test_raise_nacks_with_error_retries_then_dead_letters(self):
        make_queue("py_fail_dlq")
        make_queue("py_fail", max_attempts=3, retry_delay="200 milliseconds",
                   retry_delay_max="1 second", dead_letter_queue="py_fail_dlq")
        with admin() as c:
            mid = Queue(c, "py_fail").send({"job": "doomed"})
        calls = []

        def handler(m):
            calls.append((m.attempt, time.monotonic()))
            raise ValueError(f"boom {m.attempt}")

        w = Worker(DSN, "py_fail", handler, concurrency=1, wait=1)
        self.run_worker(w, lambda: metrics("py_fail_dlq")["ready"] == 1, 20,
                        "the dead letter")
        self.assertEqual([a for a, _ in calls], [1, 2, 3], "delivered 3 times (max_attempts)")
        gaps = [b - a for (_, a), (_, b) in zip(calls, calls[1:])]
        self.assertTrue(all(g >= 0.09 for g in gaps), f"retried after a backoff: {gaps}")
        self.assertEqual(w.stats["nacked"], 3)
        self.assertEqual(w.stats["acked"], 0)
        with admin() as c:
            dl = Queue(c, "py_fail_dlq").receive(1)[0]
        info = dl.headers["mq_dead_letter"]
        self.assertEqual((info["id"], info["attempts"], info["queue"]), (mid, 3, "py_fail"))
        self.assertEqual(info["last_error"], "ValueError: boom 3", "nack carried the error text")
        m = metrics("py_fail")
        self.assertEqual((m["ready"], m["in_flight"], m["delayed"]), (0, 0, 0))

    def test_heartbeat_keeps_a_long_job_leased(self):
        make_queue("py_hb", visibility_timeout="1 second")
        with admin() as c:
            Queue(c, "py_hb").send({"job": "3 seconds"})
        started = threading.Event()
        calls = []

        def handler(m):
            calls.append(m.attempt)
            started.set()
            time.sleep(3)

        w = Worker(DSN, "py_hb", handler, concurrency=1, wait=1)
        w.start()
        stolen = []
        try:
            self.assertTrue(started.wait(10), "handler started")
            with admin() as c:
                q = Queue(c, "py_hb")
                end = time.monotonic() + 3.2
                while time.monotonic() < end:     # a competing consumer
                    stolen += q.receive(1)
                    time.sleep(0.1)
            poll(lambda: w.stats["acked"] == 1, 10, "the ack")
        finally:
            w.stop()
            self.assertTrue(w.join(30))
        self.assertEqual(stolen, [], "nobody else got the message while its handler ran")
        self.assertEqual(calls, [1], "handled once, in its first attempt")
        self.assertGreaterEqual(w.stats["extended"], 3, "the lease was extended")
        m = metrics("py_hb")
        self.assertEqual((m["ready"], m["in_flight"], m["delayed"], m["total_acked"]),
                         (0, 0, 0, 1))

    def test_heartbeat_also_keeps_the_messages_of_a_batch_waiting_their_turn(self):
        n = 200
        make_queue("py_hb_batch", visibility_timeout="1 second")
        with admin() as c:
            Queue(c, "py_hb_batch").send_batch([{"i": i} for i in range(n)])
        handled = collections.Counter()
        lock = threading.Lock()
        slow = []

        def handler(m):
            with lock:
                handled[m.id] += 1
                go_slow = len(handled) == 60 and not slow   # by now a slot takes batches
                if go_slow:
                    slow.append(m.id)
            if go_slow:
                time.sleep(2.5)                  # the rest of its batch waits 2.5 s

        w = Worker(DSN, "py_hb_batch", handler, concurrency=2, wait=1)
        self.run_worker(w, lambda: w.stats["acked"] + w.stats["settle_failed"] >= n
                        and metrics("py_hb_batch")["in_flight"] == 0, 30, "every message settled")
        self.assertEqual([i for i, k in handled.items() if k > 1], [], "none handled twice")
        self.assertGreaterEqual(w.stats["extended"], 2, "leases were extended")
        self.assertEqual((w.stats["acked"], w.stats["settle_failed"]), (n, 0))
        m = metrics("py_hb_batch")
        self.assertEqual((m["ready"], m["in_flight"], m["delayed"], m["total_acked"]),
                         (0, 0, 0, n))

    def test_sigterm_mid_message_finishes_it_and_exits_0(self):
        make_queue("py_term")
        with admin() as c:
            Queue(c, "py_term").send_batch([{"i": i} for i in range(3)])
        p = subprocess.Popen([sys.executable, os.path.join(HERE, "sigterm_worker.py"),
                              DSN, "py_term", "1.5"], stdout=subprocess.PIPE, text=True)
        try:
            first = p.stdout.readline().split()
            self.assertEqual(first[0], "start", "the handler started")
            p.send_signal(signal.SIGTERM)
            out, _ = p.communicate(timeout=20)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 0, "exit status 0")
        self.assertEqual(out.split(), ["done", first[1]],
                         "the message in hand finished, no other was started")
        m = metrics("py_term")
        self.assertEqual((m["ready"], m["in_flight"], m["delayed"], m["total_acked"]),
                         (2, 0, 0, 1), "the finished one acked, the others untouched")

    def test_terminated_connections_reconnect_nothing_lost_or_acked_twice(self):
        n = 300
        make_queue("py_kill", visibility_timeout="3 seconds")
        with admin() as c:
            ids = Queue(c, "py_kill").send_batch([{"i": i} for i in range(n)])
        handled = collections.Counter()
        lock = threading.Lock()
        killed = 0
        ack_killed = []
        blocker = []

        def kill_all():
            nonlocal killed
            with admin() as c:
                killed += c.execute(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
                    " FROM pg_stat_activity WHERE application_name = 'py_kill_worker'"
                ).fetchone()[0]

        # Kill every worker connection from outside while the worker runs
        # (receives, waits), and once while an ack is in flight: the handler
        # of message 130 has another session lock the leased rows
        # (mq.w_py_kill), so that its batch's ack waits, and kills the
        # workers' connections 300 ms later; the ack must be repeated on a
        # new connection.
        def block_ack_then_kill():
            c = psycopg.connect(DSN)
            c.execute("SELECT 1 FROM mq.w_py_kill FOR UPDATE")

            def later():
                time.sleep(0.3)
                ack_killed.append(c.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'py_kill_worker'"
                    " AND wait_event_type = 'Lock' AND query LIKE '%%mq.ack%%'").fetchone()[0])
                kill_all()
                c.commit()
                c.close()
            t = threading.Thread(target=later)
            t.start()
            blocker.append(t)

        def handler(m):
            time.sleep(0.005)
            with lock:
                first = m.message["i"] == 130 and m.id not in handled
            if first:
                block_ack_then_kill()
            with lock:
                handled[m.id] += 1

        w = Worker(DSN, "py_kill", handler, concurrency=3, wait=1,
                   application_name="py_kill_worker", backoff=(0.05, 0.5))
        w.start()
        try:
            for at in (80, 180):
                poll(lambda: sum(handled.values()) >= at, 30, f"{at} messages handled")
                kill_all()
            poll(lambda: w.stats["acked"] + w.stats["settle_failed"] >= n
                 and metrics("py_kill")["ready"] == 0, 40, "every message settled")
        finally:
            w.stop()
            self.assertTrue(w.join(30))
            for t in blocker:
                t.join(10)
        self.assertGreaterEqual(ack_killed[0] if ack_killed else 0, 1,
                                "an ack was waiting when its connection was terminated")
        self.assertGreaterEqual(killed, 5, "worker connections were terminated")
        self.assertGreaterEqual(w.stats["reconnects"], 3, "the worker reconnected")
        self.assertEqual(set(handled), set(ids), "no message lost")
        self.assertEqual([i for i, k in handled.items() if k > 1], [], "none handled twice")
        self.assertEqual((w.stats["acked"], w.stats["settle_failed"]), (n, 0),
                         "each ack acted exactly once")
        m = metrics("py_kill")
        self.assertEqual((m["ready"], m["in_flight"], m["delayed"], m["total_acked"]),
                         (0, 0, 0, n))

    def test_four_concurrent_workers_process_10000_messages_exactly_once(self):
        n = 10000
        make_queue("py_many")
        with admin() as c:
            ids = []
            for k in range(0, n, 1000):
                ids += Queue(c, "py_many").send_batch([{"i": i} for i in range(k, k + 1000)])
        handled = collections.Counter()
        lock = threading.Lock()

        def handler(m):
            with lock:
                handled[m.id] += 1

        w = Worker(DSN, "py_many", handler, concurrency=4, wait=1)
        t0 = time.monotonic()
        self.run_worker(w, lambda: w.stats["acked"] >= n, 50, f"{n} acks")
        rate = n / (time.monotonic() - t0)
        print(f"\n  4 workers: {n} messages in {n / rate:.2f}s ({rate:.0f} msg/s)",
              file=sys.stderr)
        self.assertEqual(sorted(handled), sorted(ids), "every message handled")
        self.assertEqual(max(handled.values()), 1, "none twice")
        self.assertEqual(w.stats["acked"], n)
        m = metrics("py_many")
        self.assertEqual((m["ready"], m["in_flight"], m["delayed"], m["total_acked"]),
                         (0, 0, 0, n))


if __name__ == "__main__":
    unittest.main()
