"""mq_client: Python client for mq, message queues inside PostgreSQL.

    Queue(conn, name)      send / send_batch / publish in the caller's
                           transaction, receive / ack / nack / extend
    Worker(dsn, queue, handler, concurrency=N)
                           the consumer loop: blocking receive, ack on
                           return, nack with the error on raise, lease
                           heartbeat, clean stop on SIGTERM/SIGINT,
                           reconnect with backoff
    Message                one delivery of a message
"""

from .queue import Message, Queue, publish
from .worker import Worker

__all__ = ["Message", "Queue", "Worker", "publish"]
