"""Worker: the consumer loop of mq on psycopg 3.

    worker = Worker(dsn, "emails", handle, concurrency=4)
    worker.run()        # until SIGTERM/SIGINT (or worker.stop()); returns 0

Each of the `concurrency` slots is a thread with its own connection
(autocommit): it blocks in mq.receive(wait => ...), calls handler(message)
for each message it got, acks on return and nacks with the exception text
on raise, each fenced by the delivery's receipt.

Batches: a slot receives one message at a time until it knows how long the
handler takes, then as many as the handler gets through in `batch_time`
seconds (at most `batch`), and acks them with one call (mq.ack(queue,
ids[], receipts[])) once the batch is handled: two round trips per batch
instead of two per message for fast handlers, one message per receive for
slow ones, and what a slot holds is done within about `batch_time`.

A heartbeat thread (own connection) extends the lease of every message in
hand (received, not yet settled) once it has been held for half the
visibility timeout. stop() (SIGTERM/SIGINT under run()) lets the messages in hand
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
    batch: most messages per receive (handled one after the other); fewer
      for slow handlers: what the handler gets through in batch_time
      seconds (and a quarter of the visibility timeout), 1 until known.
    heartbeat: extend leases of messages held past half the timeout.
    backoff: (first, max) seconds between reconnection attempts.
    """

    def __init__(self, dsn: str, queue: str, handler: Callable[[Message], object],
                 concurrency: int = 1, *, visibility_timeout: Interval = None,
                 wait: Interval = 5.0, batch: int = 50, batch_time: float = 0.1,
                 heartbeat: bool = True,
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
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.batch = batch
        self.batch_time = batch_time
        self._avg_handler: Optional[float] = None   # seconds per message, moving average
        self.heartbeat = heartbeat
        self.backoff = backoff
        self.application_name = application_name
        self.connect_kwargs = dict(connect_kwargs or {})
        self.stats = {"received": 0, "acked": 0, "nacked": 0, "settle_failed": 0,
                      "extended": 0, "reconnects": 0}
        self._stats_lock = threading.Lock()
        self._stopping = threading.Event()
        self._slots = [_Slot(i) for i in range(concurrency)]
        # in hand: (slot index, message id) -> [message, monotonic lease start]
        self._inflight: dict = {}
        self._inflight_lock = threading.Lock()
        self._hb_thread: Optional[threading.Thread] = None
        self.error: Optional[Exception] = None  # what stopped the worker, if not stop()
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
        """start(), stop on SIGTERM/SIGINT, wait for the end; returns 0, or
        raises the error that stopped the worker (a receive that failed
        other than by a lost connection: the queue dropped, a privilege
        revoked)."""
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
        if self.error is not None:
            raise self.error
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

    def _quantity(self) -> int:
        """Messages per receive: 1 until the handler's speed is known, then
        what it gets through in batch_time (and a quarter of the lease)."""
        avg = self._avg_handler
        if self.batch <= 1 or avg is None:
            return 1
        budget = min(self.batch_time, (self.vt or 30.0) / 4.0)
        return max(1, min(self.batch, int(budget / max(avg, 1e-6))))

    def _slot_loop(self, slot: _Slot) -> None:
        try:
            self._slot_run(slot)
        except Exception as e:  # noqa: BLE001 - anything but a lost connection
            # the queue dropped, a privilege revoked, a bug: retrying cannot
            # help.  The worker stops (the other slots finish what they
            # hold), and run() raises it.
            log.error("mq worker %s/%d: %s; stopping", self.queue, slot.index, _oneline(e))
            if self.error is None:
                self.error = e
            self.stop()
            self._drop_conn(slot)

    def _slot_run(self, slot: _Slot) -> None:
        while not self._stopping.is_set():
            conn = self._slot_conn(slot)
            if conn is None:
                break
            with slot.lock:
                if self._stopping.is_set():
                    break
                slot.state = _RECEIVING
            sent = time.monotonic()
            try:
                msgs = Queue(conn, self.queue).receive(self._quantity(), self.vt, self.wait)
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
                self._handle_batch(slot, msgs, max(sent, time.monotonic() - 0.1))
            with slot.lock:
                slot.state = _IDLE
        self._drop_conn(slot)

    def _handle_batch(self, slot: _Slot, msgs: list, lease_start: float) -> None:
        self._count("received", len(msgs))
        entries = []
        with self._inflight_lock:
            for msg in msgs:
                key = (slot.index, msg.id)
                entry = [msg, lease_start]
                self._inflight[key] = entry
                entries.append((key, entry))
        done = []
        try:
            for key, entry in entries:
                msg = entry[0]
                t0 = time.monotonic()
                error = None
                try:
                    self.handler(msg)
                except Exception as e:  # the handler failed: nack with its error
                    error = f"{type(e).__name__}: {e}"
                    log.info("mq worker %s: message %d failed: %s", self.queue, msg.id, error)
                took = time.monotonic() - t0
                avg = self._avg_handler
                self._avg_handler = took if avg is None else avg * 0.8 + took * 0.2
                if error is None:
                    done.append((key, entry))
                else:
                    self._settle(slot, [(key, entry)], error[:2000])
        finally:
            if done:
                self._settle(slot, done, None)

    def _settle(self, slot: _Slot, entries: list, error: Optional[str]) -> None:
        """ack (error None; one call for all of `entries`) or nack (one
        entry), repeated over lost connections for as long as the leases
        may still be ours (the receipts fence them)."""
        give_up_at = time.monotonic() + max(self.vt or 30.0, 5.0) * 2
        what = "ack" if error is None else "nack"
        msgs = [entry[0] for _, entry in entries]
        failures = 0
        try:
            while True:
                conn = self._slot_conn(slot, give_up_at)
                if conn is None:
                    break
                try:
                    q = Queue(conn, self.queue)
                    if error is not None:
                        settled = 1 if q.nack(msgs[0], error=error) else 0
                        self._count("nacked", settled)
                    elif len(msgs) == 1:
                        settled = 1 if q.ack(msgs[0]) else 0
                        self._count("acked", settled)
                    else:
                        settled = q.ack_many(msgs)
                        self._count("acked", settled)
                    if settled < len(msgs):
                        self._count("settle_failed", len(msgs) - settled)
                        log.warning("mq worker %s: %s of %d of %d message(s) found the lease gone",
                                    self.queue, what, len(msgs) - settled, len(msgs))
                    return
                except (psycopg.OperationalError, pgerrors.QueryCanceled) as e:
                    failures += 1
                    log.warning("mq worker %s/%d: %s failed (%s); retrying",
                                self.queue, slot.index, what, _oneline(e))
                    if not isinstance(e, pgerrors.QueryCanceled):
                        self._drop_conn(slot)
                    if time.monotonic() > give_up_at:
                        break
                    if self._stopping.is_set():
                        time.sleep(0.05 * failures)
                    else:
                        self._sleep_backoff(failures)
                except psycopg.Error as e:
                    log.error("mq worker %s: %s failed: %s", self.queue, what, _oneline(e))
                    break
            self._count("settle_failed", len(msgs))
            log.error("mq worker %s: could not %s message(s) %s; delivered again when the "
                      "lease ends", self.queue, what, ", ".join(str(m.id) for m in msgs))
        finally:
            with self._inflight_lock:
                for key, entry in entries:
                    if self._inflight.get(key) is entry:
                        del self._inflight[key]

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
