#!/usr/bin/env python3
"""bench/clients/worker.py QUEUE COUNT CONCURRENCY [BATCH]: the Python client's
Worker (clients/python) with an empty handler, on libpq's PG* variables,
until COUNT messages are acked; prints "acked N in S s: R msg/s; cpu U us/msg"
(U: this process's CPU time, user + system, per acked message: unlike the
rate, other load on the machine hardly moves it) and exits 0, or 1 if not
every message was acked within 10 minutes (bench/run.sh, workload WC)."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "clients", "python"))
from mq_client import Worker  # noqa: E402

queue, count, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
batch = int(sys.argv[4]) if len(sys.argv) > 4 else 50
w = Worker("", queue, lambda m: None, concurrency=concurrency, wait=1, batch=batch,
           application_name="mq_bench_py")
t0 = time.monotonic()
cpu0 = time.process_time()
w.start()
deadline = t0 + 600
while w.stats["acked"] < count and time.monotonic() < deadline:
    time.sleep(0.005)
secs = time.monotonic() - t0
cpu = time.process_time() - cpu0
w.stop()
w.join()
acked = w.stats["acked"]
print(f"acked {acked} in {secs:.3f} s: {acked / secs:.0f} msg/s; "
      f"cpu {cpu * 1e6 / max(acked, 1):.1f} us/msg; stats {w.stats}", flush=True)
sys.exit(0 if acked == count else 1)
