#!/usr/bin/env python3
"""consumer.py QUEUE [DSN]: print one line per message and ack it; runs
until SIGTERM or Ctrl-C, then finishes the message in hand and exits 0.
Connects with DSN, or libpq's PGHOST, PGPORT, ...  MQ_CONCURRENCY sets the
number of connections (default 1).  Run with PYTHONPATH=clients/python."""

import os
import sys

from mq_client import Worker

if len(sys.argv) not in (2, 3):
    sys.exit(__doc__)
queue = sys.argv[1]
dsn = sys.argv[2] if len(sys.argv) == 3 else ""


def handle(msg):
    print(f"{queue} #{msg.id} attempt {msg.attempt}: {msg.message}", flush=True)


worker = Worker(dsn, queue, handle, concurrency=int(os.environ.get("MQ_CONCURRENCY", "1")))
status = worker.run()        # returns on SIGTERM / SIGINT
print(f"stopped: {worker.stats['acked']} acked", file=sys.stderr)
sys.exit(status)
