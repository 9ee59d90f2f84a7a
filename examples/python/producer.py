#!/usr/bin/env python3
"""producer.py QUEUE COUNT [DSN]: send COUNT "hello" messages in one
transaction, then exit.  Connects with DSN, or libpq's PGHOST, PGPORT,
PGUSER, PGDATABASE, ...  Run with PYTHONPATH=clients/python."""

import sys

import psycopg

from mq_client import Queue

if len(sys.argv) not in (3, 4):
    sys.exit(__doc__)
queue, count = sys.argv[1], int(sys.argv[2])
dsn = sys.argv[3] if len(sys.argv) == 4 else ""

with psycopg.connect(dsn) as conn:
    conn.execute("SELECT mq.create_queue(%s)", (queue,))
    q = Queue(conn, queue)
    ids = q.send_batch([{"hello": i} for i in range(1, count + 1)]) if count else []
    conn.commit()            # the messages appear now, all together
print(f"sent {len(ids)} messages to {queue}")
