"""Publishing to RabbitMQ (or another AMQP 0-9-1 broker) through aio-pika.

One robust connection per worker (a shared resource), and a channel with publisher confirms
per message: a publish returns once the broker has routed the message to a queue, so a
delivery job that succeeded was delivered; a message no queue takes raises (the delivery is
retried). A channel of its own, because the broker closes a channel on an error such as a
missing exchange. aio-pika is an optional dependency: ``pip install jobline[amqp]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jobline import conf
from jobline.exceptions import Fail
from jobline.redact import masked_text
from jobline.worker.resources import shared

if TYPE_CHECKING:
    import aio_pika

CONNECTION_KEY = "jobline.amqp.connection"


async def _open() -> aio_pika.abc.AbstractRobustConnection:
    try:
        import aio_pika  # optional: the amqp extra
    except ImportError:
        raise Fail("AMQP subscriptions need aio-pika: pip install 'jobline[amqp]'") from None
    url = conf.get("JOBLINE_AMQP_URL")
    try:
        return await aio_pika.connect_robust(url)
    except aio_pika.exceptions.AMQPConnectionError as exc:  # retried: the broker may be back
        raise ConnectionError(f"AMQP broker at {masked_text(url)}: {exc}") from None


async def _close(connection: aio_pika.abc.AbstractRobustConnection) -> None:
    await connection.close()


async def publish(
    exchange: str, routing_key: str, body: bytes, *, message_id: str, headers: dict[str, Any]
) -> None:
    """Publish a persistent JSON message; returns once the broker confirmed it. A missing
    exchange fails the job; a message no queue took raises, so the job is retried."""
    import aio_pika

    message = aio_pika.Message(
        body,
        content_type="application/json",
        message_id=message_id,
        headers=headers,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    async with (
        shared(CONNECTION_KEY, _open, _close) as connection,
        connection.channel(publisher_confirms=True, on_return_raises=True) as channel,
    ):
        try:
            target = (
                await channel.get_exchange(exchange, ensure=True)
                if exchange
                else channel.default_exchange
            )
        except aio_pika.exceptions.ChannelNotFoundEntity as exc:
            raise Fail(f"AMQP exchange {exchange!r} does not exist: {exc}") from None
        await target.publish(message, routing_key=routing_key, mandatory=True)
