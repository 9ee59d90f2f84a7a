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

# A receive fetches each message as ONE json value, an array of its fields,
# which psycopg hands to json.loads (the C json module, or what
# psycopg.types.json.set_json_loads configured, as for the jsonb columns
# before).  psycopg without its C extension (Debian 12's python3-psycopg
# has none) reads every value of a result through ctypes and parses it in
# Python: 8 columns a message were most of the 55 us a Worker spent per
# message on one connection, and each ctypes call releases and re-takes
# the GIL, which 4 threads then fought over (160-180 us per message;
# now about 20: bench/RESULTS.md, WC).  Not one value per batch
# (json_agg): a text value holds at most 1 GB while a message may hold
# 256 MB, and aggregating large messages costs the server more than
# sending them as rows.
_RECEIVE_SQL = (f"SELECT json_build_array({_MSG_COLS})"
                " FROM mq.receive(%s, %s, %s::interval, coalesce(%s::interval, '0'), %s)")


def _timestamp(text: Optional[str], tz) -> Optional[_dt.datetime]:
    """A timestamptz as json_build_array writes it (ISO 8601 with offset) as
    psycopg loads one: an aware datetime in the connection's time zone."""
    if text is None:
        return None
    try:
        ts = _dt.datetime.fromisoformat(text)
    except ValueError:
        ts = _dt.datetime.fromisoformat(_iso_for_old_python(text))
    return ts.astimezone(tz)


def _iso_for_old_python(text: str) -> str:
    """Python < 3.11 parses only 0, 3 or 6 digits of a second's fraction;
    PostgreSQL drops trailing zeros ("12:00:00.5+00:00")."""
    head, dot, rest = text.partition(".")
    if not dot:
        return text
    digits = len(rest) - len(rest.lstrip("0123456789"))
    return f"{head}.{rest[:digits].ljust(6, '0')}{rest[digits:]}"


def _messages(queue: str, rows: Sequence[Sequence[Any]], tz) -> list:
    """The Messages of _RECEIVE_SQL's rows."""
    seen: dict = {}                     # a batch's messages share their visible_at,
    out = []                            # often their enqueued_at (datetimes are immutable)
    for (fields,) in rows:
        mid, message, headers, attempt, enqueued_at, visible_at, priority, receipt, group_key = fields
        enq = seen.get(enqueued_at)
        if enq is None:
            enq = seen[enqueued_at] = _timestamp(enqueued_at, tz)
        vis = seen.get(visible_at)
        if vis is None:
            vis = seen[visible_at] = _timestamp(visible_at, tz)
        # int(): a set_json_loads(parse_int=...) applies to the message, not to these
        out.append(Message(queue, int(mid), message, headers, int(attempt), enq, vis,
                           int(priority), receipt, group_key))
    return out


def _array_literal(values: Sequence[Any]) -> str:
    """A PostgreSQL array literal of ints or strings (NULL for None), one
    text parameter instead of psycopg dumping the list element by element."""
    if all(type(v) is int for v in values):
        return "{" + ",".join(map(str, values)) + "}"
    if all(type(v) is str for v in values):
        flat = "".join(values)          # receipts: hexadecimal digits, nothing to escape
        if '"' not in flat and "\\" not in flat:
            return '{"' + '","'.join(values) + '"}' if values else "{}"
    parts = []
    for v in values:
        if v is None:
            parts.append("NULL")
        elif isinstance(v, int) and not isinstance(v, bool):
            parts.append(str(v))
        else:
            v = str(v)
            parts.append('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


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
        rows = self.conn.execute(
            _RECEIVE_SQL,
            (self.name, quantity, _interval(visibility_timeout), _interval(wait),
             per_group)).fetchall()
        return _messages(self.name, rows, self.conn.info.timezone) if rows else []

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
            row = self.conn.execute("SELECT mq.ack(%s, %s::text::bigint[], %s::text::text[])",
                                    (self.name, _array_literal(ids),
                                     _array_literal(receipts))).fetchone()
        else:
            row = self.conn.execute("SELECT mq.ack(%s, %s::text::bigint[])",
                                    (self.name, _array_literal(ids))).fetchone()
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
