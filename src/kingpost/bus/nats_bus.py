"""The event bus on NATS JetStream (nats-py): the contract of `kingpost.bus.interface`, at one seam.

Streams and buckets are those of `kingpost.bus.subjects`; `connect` creates or updates every
stream, `key_value` its bucket. NATS's errors become kingpost errors here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Generic

import nats
import nats.errors
import nats.js.errors
from google.protobuf.message import Message
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, KeyValueConfig, RetentionPolicy, StreamConfig
from nats.js.kv import KV_DEL, KV_PURGE
from nats.js.kv import KeyValue as NatsKeyValue

from kingpost.bus import subjects
from kingpost.bus.connection import ConnectionLog, shown_url
from kingpost.bus.interface import (
    Entry,
    Handler,
    KeyExists,
    M,
    RevisionMismatch,
    Subscription,
    check_key,
    check_key_pattern,
    parse,
)
from kingpost.bus.subjects import BucketSpec, StreamSpec
from kingpost.errors import InvalidArgument, KingpostError, Unavailable

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """NATS's failures (no server, no stream, a timeout) as Unavailable, naming what was tried."""
    try:
        yield
    except KingpostError:
        raise
    except (nats.errors.Error, asyncio.TimeoutError, OSError) as e:
        raise Unavailable(f"NATS cannot {what}: {type(e).__name__} {e}".rstrip()) from e


def stream_config(spec: StreamSpec) -> StreamConfig:
    return StreamConfig(
        name=spec.name, subjects=list(spec.subjects), max_age=spec.max_age_seconds, max_bytes=spec.max_bytes,
        retention=RetentionPolicy.WORK_QUEUE if spec.work_queue else RetentionPolicy.LIMITS,
    )


def _stored_in(subject: str) -> StreamSpec:
    stream = subjects.stream_of(subject)
    if stream is None:
        raise InvalidArgument(f"no stream stores {subject!r} (kingpost.bus.subjects names every stream)")
    return stream


class NatsBus:
    """A NATS connection that speaks protobuf. Create with `await NatsBus.connect(url, name)`;
    `nc` and `js` are there for what the bus does not cover (the artifact bucket)."""

    def __init__(self, nc: Client, js: JetStreamContext) -> None:
        self.nc = nc
        self.js = js
        self._pulls: list[JetStreamContext.PullSubscription] = []

    @classmethod
    async def connect(cls, url: str, name: str, *, timeout: float = 10.0) -> NatsBus:
        try:
            nc = Client()
            await nc.connect(
                url, name=name, connect_timeout=2, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                allow_reconnect=True, **ConnectionLog(url, nc).callbacks(),
            )
        except Exception as e:  # nats raises several unrelated types for "cannot connect"
            raise Unavailable(f"cannot connect to NATS at {shown_url(url)}: {e}") from e
        bus = cls(nc, nc.jetstream(timeout=timeout))
        try:
            await bus.ensure_streams()
        except BaseException:
            await nc.close()
            raise
        return bus

    async def ensure_streams(self) -> None:
        for spec in subjects.STREAMS:
            config = stream_config(spec)
            with _translated(f"create the stream {spec.name}"):
                try:
                    await self.js.add_stream(config)
                except nats.js.errors.BadRequestError:  # it exists, with other limits
                    await self.js.update_stream(config)

    async def publish(self, subject: str, message: Message) -> None:
        stream = _stored_in(subject)
        with _translated(f"store a message on {subject}"):
            await self.js.publish(subject, message.SerializeToString(), stream=stream.name)

    async def publish_fast(self, subject: str, message: Message) -> None:
        with _translated(f"publish on {subject}"):
            await self.nc.publish(subject, message.SerializeToString())

    async def subscribe(self, subject: str, message_type: type[M], handler: Handler[M]) -> Subscription:
        async def on_message(msg: Msg) -> None:
            parsed = parse(message_type, msg.data, msg.subject)
            if parsed is None:
                return
            try:
                await handler(parsed)
            except Exception:
                log.exception("handling %s failed (a plain subscription: it is not redelivered)", msg.subject)

        with _translated(f"subscribe to {subject}"):
            return await self.nc.subscribe(subject, cb=on_message)

    async def consume(self, subject: str, durable: str, message_type: type[M], handler: Handler[M], *,
                      retry_delay: float = 1.0, max_deliveries: int = 20) -> Subscription:
        stream = _stored_in(subject)

        async def on_message(msg: Msg) -> None:
            parsed = parse(message_type, msg.data, msg.subject)
            if parsed is None:
                await msg.term()
                return
            try:
                await handler(parsed)
            except Exception:
                log.exception("handling %s failed; it will be redelivered", msg.subject)
                await msg.nak(delay=retry_delay)
                return
            await msg.ack()

        with _translated(f"consume {subject} as {durable}"):
            return await self.js.subscribe(
                subject, durable=durable, stream=stream.name, cb=on_message, manual_ack=True,
                config=ConsumerConfig(ack_wait=30, max_deliver=max_deliveries),
            )

    async def read_stream(self, subject: str, message_type: type[M], *, limit: int = 1000,
                          since: float | None = None) -> list[M]:
        stream = _stored_in(subject)
        with _translated(f"read {stream.name}"):
            info = await self.js.stream_info(stream.name, subjects_filter=subject)
            total = sum((info.state.subjects or {}).values()) if info.state.subjects else info.state.messages
            if not total:
                return []
            config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
            if since is not None:  # JetStream starts at the first message stored then
                config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME,
                                        opt_start_time=datetime.datetime.fromtimestamp(since, datetime.timezone.utc))
            sub = await self.js.subscribe(subject, stream=stream.name, ordered_consumer=True, config=config)
            if since is not None:
                consumer = await sub.consumer_info()
                if consumer.num_pending == 0 and not (consumer.delivered and consumer.delivered.consumer_seq):
                    await sub.unsubscribe()
                    return []  # nothing stored since: no need to wait for a first message
        out: list[M] = []
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=0.5)
                except (TimeoutError, asyncio.TimeoutError, nats.errors.TimeoutError):
                    break
                parsed = parse(message_type, msg.data, subject)
                if parsed is not None:
                    out.append(parsed)
                if msg.metadata.num_pending == 0:
                    break
        finally:
            await sub.unsubscribe()
        return out[-limit:]

    async def work_queue(self, subject: str, durable: str, message_type: type[M], *,
                         max_deliveries: int = 5, ack_wait: float = 30.0) -> NatsWorkQueue[M]:
        stream = _stored_in(subject)
        # No cap on jobs fetched and not yet settled (NATS's default is 1,000): the fetchers bound
        # what they take, and a job held while its webhook is retried must not stop the queue.
        config = ConsumerConfig(durable_name=durable, ack_wait=ack_wait, max_deliver=max_deliveries,
                                filter_subject=subject, max_ack_pending=-1)
        with _translated(f"open the work queue {durable} on {subject}"):
            # Create, or update one an earlier configuration made (a changed ack_wait takes effect).
            await self.js.add_consumer(stream.name, config)
            pull = await self.js.pull_subscribe_bind(durable, stream.name)
        self._pulls.append(pull)
        return NatsWorkQueue(pull, message_type, max_deliveries)

    async def key_value(self, bucket: BucketSpec) -> NatsKeyValueStore:
        with _translated(f"open the key-value bucket {bucket.name}"):
            try:
                kv = await self.js.key_value(bucket.name)
            except nats.js.errors.BucketNotFoundError:
                kv = await self.js.create_key_value(KeyValueConfig(
                    bucket=bucket.name, history=bucket.history, ttl=bucket.ttl_seconds or None))
        return NatsKeyValueStore(kv, bucket.name)

    async def flush(self) -> None:
        with _translated("flush"):
            await self.nc.flush()

    async def close(self, timeout: float = 3.0) -> None:
        # A pull subscription's leftover replies (a fetch's timeout) are never taken, so draining
        # it would wait out `timeout`: it has nothing to deliver, so it goes first.
        for pull in self._pulls:
            with contextlib.suppress(Exception):
                await pull.unsubscribe()
        self._pulls.clear()
        try:
            if self.nc.is_connected:
                await asyncio.wait_for(self.nc.drain(), timeout)
        except Exception:  # closing a broken connection is not worth a traceback
            pass
        if not self.nc.is_closed:
            await self.nc.close()


class NatsJob(Generic[M]):
    def __init__(self, msg: Msg, message: M) -> None:
        self._msg = msg
        self.message = message
        self.subject = msg.subject
        self.deliveries = msg.metadata.num_delivered

    async def ack(self) -> None:
        with _translated(f"ack a job on {self.subject}"):
            await self._msg.ack()

    async def nak(self, delay: float = 0.0) -> None:
        with _translated(f"nak a job on {self.subject}"):
            await self._msg.nak(delay=delay or None)

    async def term(self) -> None:
        with _translated(f"term a job on {self.subject}"):
            await self._msg.term()

    async def in_progress(self) -> None:
        with _translated(f"extend a job on {self.subject}"):
            await self._msg.in_progress()


class NatsWorkQueue(Generic[M]):
    def __init__(self, pull: JetStreamContext.PullSubscription, message_type: type[M],
                 max_deliveries: int) -> None:
        self._pull = pull
        self._type = message_type
        self.max_deliveries = max_deliveries

    async def fetch(self, batch: int = 1, *, timeout: float) -> list[NatsJob[M]]:
        with _translated("fetch from a work queue"):
            try:
                msgs = await self._pull.fetch(batch, timeout=timeout)
            except asyncio.TimeoutError:  # nothing came in time (nats.errors.TimeoutError is one)
                return []
        jobs = []
        for msg in msgs:
            parsed = parse(self._type, msg.data, msg.subject)
            if parsed is None:
                with _translated("drop a job that does not parse"):
                    await msg.term()
                continue
            jobs.append(NatsJob(msg, parsed))
        return jobs

    async def pending(self) -> tuple[int, int]:
        with _translated("count a work queue's pending jobs"):
            info = await self._pull.consumer_info()
        return info.num_pending or 0, info.num_ack_pending or 0


def _entry(entry: NatsKeyValue.Entry) -> Entry:
    deleted = entry.operation in (KV_DEL, KV_PURGE)
    return Entry(entry.key, b"" if deleted else (entry.value or b""), entry.revision or 0, deleted)


class NatsKeyValueStore:
    def __init__(self, kv: NatsKeyValue, bucket: str) -> None:
        self._kv = kv
        self.bucket = bucket

    async def get(self, key: str) -> Entry | None:
        check_key(key)
        with _translated(f"get {key!r} from {self.bucket}"):
            try:
                return _entry(await self._kv.get(key))
            except nats.js.errors.KeyNotFoundError:  # deleted keys too
                return None

    async def put(self, key: str, value: bytes) -> int:
        check_key(key)
        with _translated(f"put {key!r} into {self.bucket}"):
            return await self._kv.put(key, value)

    async def create(self, key: str, value: bytes) -> int:
        check_key(key)
        with _translated(f"create {key!r} in {self.bucket}"):
            try:
                return await self._kv.create(key, value)
            except nats.js.errors.KeyWrongLastSequenceError:
                raise KeyExists(f"key {key!r} already exists in {self.bucket}") from None

    async def update(self, key: str, value: bytes, revision: int) -> int:
        check_key(key)
        with _translated(f"update {key!r} in {self.bucket}"):
            try:
                return await self._kv.update(key, value, last=revision)
            except nats.js.errors.KeyWrongLastSequenceError:
                raise RevisionMismatch(
                    f"key {key!r} in {self.bucket} is no longer at revision {revision}") from None

    async def delete(self, key: str) -> None:
        check_key(key)
        with _translated(f"delete {key!r} from {self.bucket}"):
            await self._kv.delete(key)

    @contextlib.asynccontextmanager
    async def watch(self, keys: str = ">") -> AsyncIterator[AsyncIterator[Entry]]:
        check_key_pattern(keys)
        with _translated(f"watch {keys!r} in {self.bucket}"):
            watcher = await self._kv.watch(keys)
        try:
            yield _Changes(watcher)
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()


class _Changes:
    def __init__(self, watcher: NatsKeyValue.KeyWatcher) -> None:
        self._watcher = watcher

    def __aiter__(self) -> _Changes:
        return self

    async def __anext__(self) -> Entry:
        while True:
            entry = await self._watcher.__anext__()
            if entry is not None:  # None: "the current entries are all delivered"
                return _entry(entry)
