"""Helper of test_mq_client.SigtermTest: a Worker (concurrency 1) whose
handler prints "start ID", sleeps SECONDS, prints "done ID"; exits with
run()'s status.  usage: sigterm_worker.py DSN QUEUE SECONDS"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from mq_client import Worker  # noqa: E402


def handle(msg):
    print(f"start {msg.id}", flush=True)
    time.sleep(float(sys.argv[3]))
    print(f"done {msg.id}", flush=True)


sys.exit(Worker(sys.argv[1], sys.argv[2], handle, concurrency=1, wait=30).run())
