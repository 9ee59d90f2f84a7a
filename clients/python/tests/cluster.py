"""A throwaway PostgreSQL cluster with mq preloaded, for the client tests.

MQ_TEST_DSN set: use that database instead (it must have CREATE EXTENSION
rights). Otherwise initdb/pg_ctl from PG_BINDIR (or PATH) start a cluster in
a temporary directory, reachable only through a Unix socket there.
"""

import atexit
import os
import shutil
import subprocess
import tempfile

_state = {}


def _bin(name):
    bindir = os.environ.get("PG_BINDIR")
    if bindir:
        return os.path.join(bindir, name)
    return shutil.which(name) or name


def dsn():
    """Start the cluster once per process; returns its DSN."""
    if "dsn" in _state:
        return _state["dsn"]
    if os.environ.get("MQ_TEST_DSN"):
        _state["dsn"] = os.environ["MQ_TEST_DSN"]
        return _state["dsn"]
    d = tempfile.mkdtemp(prefix="mq-pytest-")
    data = os.path.join(d, "data")
    subprocess.run([_bin("initdb"), "-D", data, "-U", "postgres", "-A", "trust",
                    "-E", "UTF8", "--no-sync"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    with open(os.path.join(data, "postgresql.conf"), "a") as f:
        f.write(f"""
listen_addresses = ''
unix_socket_directories = '{d}'
port = 5432
shared_preload_libraries = 'mq'
mq.worker_enabled = off
max_connections = 60
fsync = off
""")
    subprocess.run([_bin("pg_ctl"), "-D", data, "-l", os.path.join(d, "log"), "-w",
                    "-t", "60", "start"], check=True, stdout=subprocess.DEVNULL)
    _state["dir"] = d
    atexit.register(stop)
    _state["dsn"] = f"host={d} port=5432 user=postgres dbname=postgres"
    import psycopg
    with psycopg.connect(_state["dsn"], autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS mq")
    return _state["dsn"]


def stop():
    d = _state.pop("dir", None)
    if d:
        subprocess.run([_bin("pg_ctl"), "-D", os.path.join(d, "data"), "-m", "immediate",
                        "-w", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if os.environ.get("MQ_KEEP_TMP") != "1":
            shutil.rmtree(d, ignore_errors=True)
