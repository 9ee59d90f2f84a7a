"""Queue: mq's SQL functions on a psycopg 3 connection the caller owns.

Nothing here commits or rolls back: every call runs in the caller's
transaction (with a non-autocommit connection, a send is part of the
business transaction and vanishes if it rolls back: the outbox).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence, Union

from psycopg.types.json import Jsonb

Interval = Union[None, int, float, str, _dt.timedelta]


def _interval(value: Interval) -> Union[None, str, _dt.timedelta]:
    """Seconds (int/float), a timedelta or a PostgreSQL interval string."""
    if value is None or isinstance(value, (str, _dt.timedelta)):
        return value
    if isinstance(value, bool):
        raise TypeError("an interval cannot be a bool")
    return _dt.timedelta(seconds=value)


def _jsonb(value: Any) -> Optional[Jsonb]:
    return None if value is None else Jsonb(value)


@dataclass(frozen=True)
class Message:
    """One delivery of a message (a row of mq.receive)."""

    queue: str
    id: int
    message: Any
    headers: Optional[dict]
    attempt: int
    enqueued_at: _dt.datetime
    visible_at: Optional[_dt.datetime] = None
    priority: int = 0
    receipt: Optional[str] = None
    group_key: Optional[str] = None
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def topic(self) -> Optional[str]:
        """The topic of a copy made by mq.publish, else None."""
        return (self.headers or {}).get("topic")


_MSG_COLS = "id, message, headers, attempt, enqueued_at, visible_at, priority, receipt, group_key"


def _message(queue: str, row: Sequence[Any]) -> Message:
    return Message(queue, row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7],
                   row[8])


def publish(conn, topic: str, message: Any, headers: Optional[dict] = None,
            delay: Interval = None, group_key: Optional[str] = None) -> int:
    """mq.publish: one copy to every subscribed queue; returns how many.
    With group_key, each copy joins that message group of its queue."""
    row = conn.execute(
        "SELECT mq.publish(%s, %s, %s, coalesce(%s::interval, '0'), %s)",
        (topic, Jsonb(message), _jsonb(headers), _interval(delay), group_key)).fetchone()
    return row[0]


class Queue:
    """A queue of mq, used through `conn` (a psycopg.Connection)."""

    def __init__(self, conn, name: str):
        self.conn = conn
        self.name = name

    def __repr__(self) -> str:
        return f"Queue({self.name!r})"

    # --- producing (the caller's transaction) -----------------------------

    def send(self, message: Any, headers: Optional[dict] = None, delay: Interval = None,
             priority: int = 0, dedup_key: Optional[str] = None,
             group_key: Optional[str] = None) -> int:
        """mq.send; returns the message id.  group_key: its message group."""
        row = self.conn.execute(
            "SELECT mq.send(%s, %s, %s, coalesce(%s::interval, '0'), %s, %s, %s)",
            (self.name, Jsonb(message), _jsonb(headers), _interval(delay), priority,
             dedup_key, group_key)).fetchone()
        return row[0]

    def send_batch(self, messages: Iterable[Any], headers: Optional[Iterable[Optional[dict]]] = None,
                   delay: Interval = None, priority: int = 0, group_key: Optional[str] = None,
                   group_keys: Optional[Iterable[Optional[str]]] = None) -> list:
        """mq.send_batch; returns the ids in input order.  group_key: one
        group for the batch; group_keys: one per message (None: no group)."""
        msgs = [Jsonb(m) for m in messages]
        hdrs = None if headers is None else [_jsonb(h) for h in headers]
        keys = None if group_keys is None else list(group_keys)
        cur = self.conn.execute(
            "SELECT id FROM mq.send_batch(%s, %s::jsonb[], %s::jsonb[],"
            " coalesce(%s::interval, '0'), %s, %s, %s::text[]) AS id",
            (self.name, msgs, hdrs, _interval(delay), priority, group_key, keys))
        return [r[0] for r in cur.fetchall()]

    def publish(self, topic: str, message: Any, headers: Optional[dict] = None,
                delay: Interval = None, group_key: Optional[str] = None) -> int:
        """mq.publish on this queue's connection (topics are not per queue:
        the copies go to every subscribed queue)."""
        return publish(self.conn, topic, message, headers, delay, group_key)

    # --- consuming ---------------------------------------------------------

    def receive(self, quantity: int = 1, visibility_timeout: Interval = None,
                wait: Interval = None, per_group: int = 1) -> list:
        """mq.receive: lease up to `quantity` messages; `wait` blocks;
        per_group: messages of one group handed out together, in order."""
        cur = self.conn.execute(
            f"SELECT {_MSG_COLS} FROM mq.receive(%s, %s, %s::interval,"
            " coalesce(%s::interval, '0'), %s)",
            (self.name, quantity, _interval(visibility_timeout), _interval(wait), per_group))
        return [_message(self.name, r) for r in cur.fetchall()]

    def ack(self, msg: Union[Message, int], receipt: Optional[str] = None) -> bool:
        """mq.ack, fenced by the delivery's receipt when given a Message."""
        mid, receipt = self._id_receipt(msg, receipt)
        return self.conn.execute("SELECT mq.ack(%s, %s::bigint, %s::text)",
                                 (self.name, mid, receipt)).fetchone()[0]

    def ack_many(self, msgs: Sequence[Union[Message, int]]) -> int:
        """mq.ack of an array in one call, fenced by each delivery's receipt
        when all are Messages; returns how many were acked."""
        ids = [m.id if isinstance(m, Message) else m for m in msgs]
        receipts = [m.receipt if isinstance(m, Message) else None for m in msgs]
        if all(r is not None for r in receipts):
            row = self.conn.execute("SELECT mq.ack(%s, %s::bigint[], %s::text[])",
                                    (self.name, ids, receipts)).fetchone()
        else:
            row = self.conn.execute("SELECT mq.ack(%s, %s::bigint[])", (self.name, ids)).fetchone()
        return row[0]

    def nack(self, msg: Union[Message, int], error: Optional[str] = None,
             delay: Interval = None, receipt: Optional[str] = None) -> bool:
        """mq.nack: retry after `delay` (default: the queue's backoff)."""
        mid, receipt = self._id_receipt(msg, receipt)
        return self.conn.execute(
            "SELECT mq.nack(%s, %s::bigint, %s::interval, %s::text, %s::text)",
            (self.name, mid, _interval(delay), error, receipt)).fetchone()[0]

    def extend(self, msg: Union[Message, int], visibility_timeout: Interval,
               receipt: Optional[str] = None) -> _dt.datetime:
        """mq.extend: the lease now ends `visibility_timeout` from now."""
        mid, receipt = self._id_receipt(msg, receipt)
        return self.conn.execute(
            "SELECT mq.extend(%s, %s::bigint, %s::interval, %s::text)",
            (self.name, mid, _interval(visibility_timeout), receipt)).fetchone()[0]

    def metrics(self) -> dict:
        cur = self.conn.execute("SELECT * FROM mq.metrics(%s)", (self.name,))
        row = cur.fetchone()
        return dict(zip([d.name for d in cur.description], row))

    @staticmethod
    def _id_receipt(msg, receipt):
        if isinstance(msg, Message):
            return msg.id, receipt if receipt is not None else msg.receipt
        return msg, receipt
