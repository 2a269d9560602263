"""NATS, at one seam: subjects, JetStream streams, and protobuf messages in and out.

Facts that must not be lost (builds, replicas) go to the JetStream stream KP_EVENTS and are
consumed by durable consumers; logs go to KP_LOGS, which is also where `kingpost logs` reads
them; heartbeats and metrics are plain NATS subjects, where the next message supersedes a lost one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats
from google.protobuf.message import DecodeError, Message
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import BadRequestError

from kingpost.errors import Unavailable

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

EVENTS_STREAM = "KP_EVENTS"
LOGS_STREAM = "KP_LOGS"


def shown_url(url: str) -> str:
    """A NATS URL as logs and errors may show it: `nats://user:***@host:port`, `nats://***@host:port`
    (a token), without the secret."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at:
        return url
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}://{user + ':' if colon else ''}***@{host}"


def build_subject(build_id: str) -> str:
    return f"kp.build.{build_id}"


def replica_subject(replica_id: str) -> str:
    return f"kp.replica.{replica_id}"


def node_subject(node_id: str) -> str:
    return f"kp.node.{node_id}"


def concurrency_subject(router_id: str) -> str:
    return f"kp.metrics.concurrency.{router_id}"


def scale_poke_subject(deployment_id: str) -> str:
    return f"kp.metrics.poke.{deployment_id}"


def build_log_subject(build_id: str) -> str:
    return f"kp.logs.build.{build_id}"


def replica_log_subject(deployment_id: str, replica_id: str) -> str:
    return f"kp.logs.replica.{deployment_id}.{replica_id}"


_STREAMS = (
    StreamConfig(name=EVENTS_STREAM, subjects=["kp.build.>", "kp.replica.>"], max_age=7 * 24 * 3600),
    StreamConfig(name=LOGS_STREAM, subjects=["kp.logs.>"], max_age=14 * 24 * 3600, max_bytes=1 << 30),
)


class ConnectionLog:
    """nats-py's callbacks for `client`, as one log line per event: its default logs a traceback for
    every failed reconnect attempt (a NATS restart filled every service's log with them).

        nc = Client()
        await nc.connect(url, ..., **ConnectionLog(url, nc).callbacks())
    """

    def __init__(self, url: str, client: Client) -> None:
        self._url = shown_url(url)
        self._client = client
        self._down = False

    async def _error(self, e: Exception) -> None:
        if not self._down:  # while reconnecting, each failed attempt says the same
            log.warning("NATS at %s: %s", self._url, str(e) or type(e).__name__)

    async def _disconnected(self) -> None:
        if not self._down and not self._client.is_closed:  # closed: this service is stopping
            self._down = True
            log.warning("lost the connection to NATS at %s; reconnecting", self._url)

    async def _reconnected(self) -> None:
        self._down = False
        log.info("reconnected to NATS at %s", self._url)

    def callbacks(self) -> dict[str, Callable[..., Awaitable[None]]]:
        return {"error_cb": self._error, "disconnected_cb": self._disconnected,
                "reconnected_cb": self._reconnected}


class EventBus:
    """A NATS connection that speaks protobuf. Create with `await EventBus.connect(url, name)`."""

    def __init__(self, nc: Client, js: JetStreamContext) -> None:
        self.nc = nc
        self.js = js

    @classmethod
    async def connect(cls, url: str, name: str, *, timeout: float = 10.0) -> EventBus:
        try:
            nc = Client()
            await nc.connect(
                url, name=name, connect_timeout=2, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                allow_reconnect=True, **ConnectionLog(url, nc).callbacks(),
            )
        except Exception as e:  # nats raises several unrelated types for "cannot connect"
            raise Unavailable(f"cannot connect to NATS at {shown_url(url)}: {e}") from e
        js = nc.jetstream(timeout=timeout)
        bus = cls(nc, js)
        await bus.ensure_streams()
        return bus

    async def ensure_streams(self) -> None:
        for config in _STREAMS:
            try:
                await self.js.add_stream(config)
            except BadRequestError:
                await self.js.update_stream(config)

    async def publish(self, subject: str, message: Message) -> None:
        """Publish a fact and wait for the stream's ack (or plain publish for non-stream subjects)."""
        data = message.SerializeToString()
        if subject.startswith(("kp.build.", "kp.replica.")):
            await self.js.publish(subject, data)
        else:
            await self.nc.publish(subject, data)

    async def publish_fast(self, subject: str, message: Message) -> None:
        """Fire and forget (logs, metrics): the stream still stores it if it covers the subject."""
        await self.nc.publish(subject, message.SerializeToString())

    async def subscribe(self, subject: str, message_type: type[M], handler: Callable[[M], Awaitable[None]]):
        """Plain subscription; a message that does not parse is logged and skipped."""

        async def on_message(msg: Msg) -> None:
            parsed = _parse(message_type, msg.data, subject)
            if parsed is not None:
                await handler(parsed)

        return await self.nc.subscribe(subject, cb=on_message)

    async def consume(
        self, subject: str, durable: str, message_type: type[M], handler: Callable[[M], Awaitable[None]]
    ):
        """Durable JetStream consumer: acked after `handler` returns, redelivered if it raises."""

        async def on_message(msg: Msg) -> None:
            parsed = _parse(message_type, msg.data, subject)
            if parsed is None:
                await msg.term()
                return
            try:
                await handler(parsed)
            except Exception:
                log.exception("handling %s failed; it will be redelivered", msg.subject)
                await msg.nak(delay=1)
                return
            await msg.ack()

        return await self.js.subscribe(
            subject, durable=durable, cb=on_message, manual_ack=True,
            config=ConsumerConfig(ack_wait=30, max_deliver=20),
        )

    async def read_stream(self, stream: str, subject: str, message_type: type[M], *, limit: int = 1000) -> list[M]:
        """The last `limit` messages on `subject` (wildcards allowed), oldest first."""
        try:
            info = await self.js.stream_info(stream, subjects_filter=subject)
        except Exception as e:
            raise Unavailable(f"cannot read {stream}: {e}") from e
        total = sum((info.state.subjects or {}).values()) if info.state.subjects else info.state.messages
        if not total:
            return []
        sub = await self.js.subscribe(
            subject, ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        out: list[M] = []
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=0.5)
                except (TimeoutError, asyncio.TimeoutError, nats.errors.TimeoutError):
                    break
                parsed = _parse(message_type, msg.data, subject)
                if parsed is not None:
                    out.append(parsed)
                if msg.metadata.num_pending == 0:
                    break
        finally:
            await sub.unsubscribe()
        return out[-limit:]

    async def close(self, timeout: float = 3.0) -> None:
        """Drain (deliver what is pending), but never wait on a server that is gone."""
        try:
            if self.nc.is_connected:
                await asyncio.wait_for(self.nc.drain(), timeout)
        except Exception:  # closing a broken connection is not worth a traceback
            pass
        if not self.nc.is_closed:
            await self.nc.close()


def _parse(message_type: type[M], data: bytes, subject: str) -> M | None:
    message = message_type()
    try:
        message.ParseFromString(data)
    except DecodeError:
        log.warning("dropping a message on %s that is not a %s", subject, message_type.__name__)
        return None
    return message
