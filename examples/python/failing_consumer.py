#!/usr/bin/env python3
"""failing_consumer.py [DSN]: a handler that always raises.  Creates queue
"flaky" (3 attempts, short backoff, dead letters to "flaky_dead"), sends
one message, and runs the worker until the message has been nacked 3 times
and lands in "flaky_dead", whose message it prints.  Connects with DSN or
libpq's PG* variables.  Run with PYTHONPATH=clients/python."""

import sys
import threading

import psycopg

from mq_client import Queue, Worker

dsn = sys.argv[1] if len(sys.argv) > 1 else ""
with psycopg.connect(dsn, autocommit=True) as conn:
    conn.execute("SELECT mq.create_queue('flaky_dead')")
    conn.execute("SELECT mq.create_queue('flaky', max_attempts => 3,"
                 " retry_delay => '200 milliseconds', dead_letter_queue => 'flaky_dead')")
    Queue(conn, "flaky").send({"charge": 42})

failed = threading.Semaphore(0)


def handle(msg):
    print(f"flaky #{msg.id} attempt {msg.attempt}: failing", flush=True)
    failed.release()
    raise RuntimeError(f"payment gateway down (attempt {msg.attempt})")


worker = Worker(dsn, "flaky", handle, wait=1).start()
for _ in range(3):
    failed.acquire()
worker.stop()
worker.join()
with psycopg.connect(dsn, autocommit=True) as conn:
    for m in Queue(conn, "flaky_dead").receive(1, wait=5):
        print(f"dead letter in flaky_dead: {m.message} {m.headers['mq_dead_letter']}")
        Queue(conn, "flaky_dead").ack(m)
