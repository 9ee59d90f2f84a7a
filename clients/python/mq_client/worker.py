"""Worker: the consumer loop of mq on psycopg 3.

    worker = Worker(dsn, "emails", handle, concurrency=4)
    worker.run()        # until SIGTERM/SIGINT (or worker.stop()); returns 0

Each of the `concurrency` slots is a thread with its own connection
(autocommit): it blocks in mq.receive(wait => ...), calls handler(message),
acks on return and nacks with the exception text on raise, each fenced by
the delivery's receipt. A heartbeat thread (own connection) extends the
lease of every message whose handler has run past half the visibility
timeout. stop() (SIGTERM/SIGINT under run()) lets the messages in hand
finish and be settled, receives no more (a waiting receive is cancelled,
which gives its messages back), and run() returns 0. A lost connection is
reopened with exponential backoff; an ack or nack whose connection broke is
repeated on the new one with the same receipt, so it acts at most once and
never on another consumer's lease.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from typing import Callable, Optional

import psycopg
from psycopg import errors as pgerrors

from .queue import Interval, Message, Queue, _interval

log = logging.getLogger("mq_client")

_IDLE, _RECEIVING, _HANDLING = "idle", "receiving", "handling"


def _oneline(e) -> str:
    return " ".join(str(e).split("\n")[0].split()) or type(e).__name__


def _seconds(value) -> float:
    iv = _interval(value)
    if isinstance(iv, str):
        raise TypeError("give the Worker's intervals as seconds or timedelta")
    return iv.total_seconds()


class _Slot:
    def __init__(self, index: int):
        self.index = index
        self.conn: Optional[psycopg.Connection] = None
        self.state = _IDLE
        self.lock = threading.Lock()      # state, and cancel() of a receive
        self.thread: Optional[threading.Thread] = None
        self.failures = 0                 # consecutive connection failures
        self.connected = False            # has had a connection before


class Worker:
    """Consume `queue` with `handler(message)` on `concurrency` connections.

    dsn: libpq connection string or URI ("" uses PGHOST, PGPORT, ... only).
    visibility_timeout: lease per delivery in seconds (default: the queue's).
    wait: longest blocking receive in seconds (a commit wakes it at once).
    batch: messages per receive (handled one after the other).
    heartbeat: extend leases of handlers running past half the timeout.
    backoff: (first, max) seconds between reconnection attempts.
    """

    def __init__(self, dsn: str, queue: str, handler: Callable[[Message], object],
                 concurrency: int = 1, *, visibility_timeout: Interval = None,
                 wait: Interval = 5.0, batch: int = 1, heartbeat: bool = True,
                 backoff: tuple = (0.1, 5.0), application_name: str = "mq_worker",
                 connect_kwargs: Optional[dict] = None):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.dsn = dsn
        self.queue = queue
        self.handler = handler
        self.concurrency = concurrency
        self.vt = None if visibility_timeout is None else _seconds(visibility_timeout)
        self.wait = _seconds(wait)
        self.batch = batch
        self.heartbeat = heartbeat
        self.backoff = backoff
        self.application_name = application_name
        self.connect_kwargs = dict(connect_kwargs or {})
        self.stats = {"received": 0, "acked": 0, "nacked": 0, "settle_failed": 0,
                      "extended": 0, "reconnects": 0}
        self._stats_lock = threading.Lock()
        self._stopping = threading.Event()
        self._slots = [_Slot(i) for i in range(concurrency)]
        # in flight: (slot index, message id) -> [message, monotonic lease start]
        self._inflight: dict = {}
        self._inflight_lock = threading.Lock()
        self._hb_thread: Optional[threading.Thread] = None
        self._started = False

    # --- public ------------------------------------------------------------

    def start(self) -> "Worker":
        """Start the slots (and heartbeat) in threads; returns at once."""
        if self._started:
            raise RuntimeError("worker already started")
        self._started = True
        for slot in self._slots:
            slot.thread = threading.Thread(target=self._slot_loop, args=(slot,),
                                           name=f"mq-worker-{self.queue}-{slot.index}",
                                           daemon=True)
            slot.thread.start()
        if self.heartbeat:
            self._hb_thread = threading.Thread(target=self._heartbeat_loop, daemon=True,
                                               name=f"mq-heartbeat-{self.queue}")
            self._hb_thread.start()
        return self

    def stop(self) -> None:
        """Receive no more; messages in hand are finished and settled."""
        self._stopping.set()
        for slot in self._slots:
            with slot.lock:
                if slot.state == _RECEIVING and slot.conn is not None:
                    try:
                        slot.conn.cancel()
                    except Exception:  # a broken connection: nothing to cancel
                        pass

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def join(self, timeout: Optional[float] = None) -> bool:
        """Wait for the slots to end; True when all have ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        threads = [s.thread for s in self._slots if s.thread] + \
                  ([self._hb_thread] if self._hb_thread else [])
        for t in threads:
            while t.is_alive():
                left = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
                if left <= 0:
                    return False
                t.join(left)
        return True

    def run(self, install_signals: bool = True) -> int:
        """start(), stop on SIGTERM/SIGINT, wait for the end; returns 0."""
        old = {}
        if install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                old[sig] = signal.signal(sig, lambda signum, frame: self.stop())
        try:
            self.start()
            self.join()
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
        return 0

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self.join()

    # --- connections -------------------------------------------------------

    def _connect(self, role: str) -> psycopg.Connection:
        kwargs = dict(self.connect_kwargs)
        kwargs.setdefault("application_name", self.application_name)
        conn = psycopg.connect(self.dsn, autocommit=True, **kwargs)
        if self.vt is None:
            row = conn.execute("SELECT extract(epoch FROM visibility_timeout)::float8"
                               " FROM mq.queues WHERE queue = %s", (self.queue,)).fetchone()
            if row is None:
                conn.close()
                raise psycopg.errors.UndefinedTable(f'queue "{self.queue}" does not exist')
            self.vt = row[0]
        return conn

    def _sleep_backoff(self, failures: int) -> None:
        first, most = self.backoff
        delay = min(most, first * (2 ** min(failures, 20))) * random.uniform(0.5, 1.0)
        self._stopping.wait(delay)

    def _slot_conn(self, slot: _Slot, give_up_at: Optional[float] = None) -> Optional[psycopg.Connection]:
        """The slot's open connection, reconnecting with backoff. None when
        stopping (and give_up_at passed or is None)."""
        while True:
            if slot.conn is not None and not slot.conn.closed and not slot.conn.broken:
                return slot.conn
            if slot.conn is not None:
                self._drop_conn(slot)
            if self._stopping.is_set() and (give_up_at is None or time.monotonic() > give_up_at):
                return None
            try:
                conn = self._connect("slot")
            except psycopg.OperationalError as e:
                slot.failures += 1
                log.warning("mq worker %s/%d: connect failed (%s), retrying", self.queue,
                            slot.index, _oneline(e))
                self._sleep_backoff(slot.failures)
                if give_up_at is not None and time.monotonic() > give_up_at:
                    return None
                continue
            if slot.connected:
                self._count("reconnects")
            slot.connected = True
            with slot.lock:
                slot.conn = conn
            slot.failures = 0
            return conn

    def _drop_conn(self, slot: _Slot) -> None:
        with slot.lock:
            conn, slot.conn = slot.conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def _count(self, key: str, n: int = 1) -> None:
        with self._stats_lock:
            self.stats[key] += n

    # --- the loop ----------------------------------------------------------

    def _slot_loop(self, slot: _Slot) -> None:
        while not self._stopping.is_set():
            conn = self._slot_conn(slot)
            if conn is None:
                break
            with slot.lock:
                if self._stopping.is_set():
                    break
                slot.state = _RECEIVING
            try:
                msgs = Queue(conn, self.queue).receive(self.batch, self.vt, self.wait)
            except pgerrors.QueryCanceled:
                msgs = []              # stop() cancelled the wait
            except psycopg.OperationalError as e:
                log.warning("mq worker %s/%d: receive failed (%s); reconnecting",
                            self.queue, slot.index, _oneline(e))
                msgs = []
                slot.failures += 1
                self._drop_conn(slot)
                self._sleep_backoff(slot.failures)
            finally:
                with slot.lock:
                    slot.state = _HANDLING
            if msgs:
                self._count("received", len(msgs))
            for msg in msgs:
                self._handle(slot, msg)
            with slot.lock:
                slot.state = _IDLE
        self._drop_conn(slot)

    def _handle(self, slot: _Slot, msg: Message) -> None:
        key = (slot.index, msg.id)
        with self._inflight_lock:
            self._inflight[key] = [msg, time.monotonic()]
        error = None
        try:
            self.handler(msg)
        except Exception as e:  # the handler failed: nack with its error
            error = f"{type(e).__name__}: {e}"
            log.info("mq worker %s: message %d failed: %s", self.queue, msg.id, error)
        try:
            self._settle(slot, msg, error)
        finally:
            with self._inflight_lock:
                self._inflight.pop(key, None)

    def _settle(self, slot: _Slot, msg: Message, error: Optional[str]) -> None:
        """ack (error None) or nack, repeated over lost connections for as
        long as the lease may still be ours (the receipt fences it)."""
        give_up_at = time.monotonic() + max(self.vt or 30.0, 5.0) * 2
        failures = 0
        while True:
            conn = self._slot_conn(slot, give_up_at)
            if conn is None:
                break
            try:
                q = Queue(conn, self.queue)
                if error is None:
                    ok = q.ack(msg)
                    self._count("acked" if ok else "settle_failed")
                else:
                    ok = q.nack(msg, error=error[:2000])
                    self._count("nacked" if ok else "settle_failed")
                if not ok:
                    log.warning("mq worker %s: message %d: %s found its lease gone",
                                self.queue, msg.id, "ack" if error is None else "nack")
                return
            except (psycopg.OperationalError, pgerrors.QueryCanceled) as e:
                failures += 1
                log.warning("mq worker %s/%d: settling message %d failed (%s); retrying",
                            self.queue, slot.index, msg.id, _oneline(e))
                if isinstance(e, psycopg.OperationalError) and not isinstance(e, pgerrors.QueryCanceled):
                    self._drop_conn(slot)
                if time.monotonic() > give_up_at:
                    break
                self._sleep_backoff(failures) if not self._stopping.is_set() else time.sleep(0.05 * failures)
        self._count("settle_failed")
        log.error("mq worker %s: could not settle message %d; it will be delivered again "
                  "when its lease ends", self.queue, msg.id)

    # --- heartbeat ---------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        conn = None
        failures = 0
        while True:
            with self._inflight_lock:
                items = list(self._inflight.items())
            if self._stopping.is_set() and not items and \
                    not any(s.thread and s.thread.is_alive() for s in self._slots):
                break
            vt = self.vt
            if vt is None:
                time.sleep(0.05)
                continue
            tick = max(0.02, min(vt / 10.0, 1.0))
            now = time.monotonic()
            due = [(k, v) for k, v in items if now - v[1] >= vt / 2.0]
            for key, entry in due:
                msg = entry[0]
                try:
                    if conn is None or conn.closed or conn.broken:
                        conn = self._connect("heartbeat")
                    start = time.monotonic()
                    Queue(conn, self.queue).extend(msg, vt)
                    entry[1] = start
                    failures = 0
                    self._count("extended")
                except pgerrors.ObjectNotInPrerequisiteState:
                    # not in flight any more (settled meanwhile, or the lease was lost)
                    with self._inflight_lock:
                        if self._inflight.get(key) is entry:
                            entry[1] = float("inf")
                except psycopg.Error as e:
                    failures += 1
                    log.warning("mq worker %s: heartbeat failed (%s)", self.queue, _oneline(e))
                    if conn is not None:
                        try:
                            conn.close()
                        except Exception:
                            pass
                    conn = None
                    time.sleep(min(tick, 0.1 * failures))
                    break
            time.sleep(tick)
        if conn is not None:
            conn.close()
