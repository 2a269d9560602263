"""The event bus in memory, for unit tests: the contract of `kingpost.bus.interface`, no sockets.

    broker = MemoryBroker()                 # the "server": streams, consumers, buckets
    bus = MemoryBus(broker)                 # a "connection"; several may share one broker

It keeps the streams of `kingpost.bus.subjects` (messages are stored and a work queue's message
leaves when acked), durable consumers that resume where they left off, and key-value buckets with
NATS's revisions (one counter per bucket). It does not expire anything by age or TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Generic

from google.protobuf.message import Message

from kingpost.bus import subjects
from kingpost.bus.interface import (
    Entry,
    Handler,
    KeyExists,
    M,
    RevisionMismatch,
    check_key,
    check_key_pattern,
    parse,
)
from kingpost.bus.subjects import BucketSpec, StreamSpec
from kingpost.errors import InvalidArgument

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Stored:
    seq: int
    subject: str
    data: bytes


@dataclass
class _Consumer:
    """A durable consumer's place in its stream: what it has handed out, settled, and will hand again."""

    stream: str
    subject: str
    max_deliveries: int
    ack_wait: float | None  # None: a push consumer, whose handler settles every message it is given
    cursor: int = 0  # the highest sequence handed out at least once
    deliveries: dict[int, int] = field(default_factory=dict)
    in_flight: dict[int, float] = field(default_factory=dict)  # seq → when it may be handed again
    again_at: dict[int, float] = field(default_factory=dict)  # nak'd: seq → when it may be handed again
    woken: asyncio.Event = field(default_factory=asyncio.Event)


class MemoryBroker:
    def __init__(self) -> None:
        self._seq = 0
        self._streams: dict[str, list[_Stored]] = {s.name: [] for s in subjects.STREAMS}
        self._subscribers: list[tuple[str, Callable[[str, bytes], None]]] = []
        self._consumers: dict[tuple[str, str], _Consumer] = {}
        self.buckets: dict[str, MemoryKeyValue] = {}

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def route(self, subject: str, data: bytes, stream: StreamSpec | None) -> None:
        if stream is not None:
            self._seq += 1
            self._streams[stream.name].append(_Stored(self._seq, subject, data))
            for consumer in self._consumers.values():
                if consumer.stream == stream.name and subjects.matches(consumer.subject, subject):
                    consumer.woken.set()
        for pattern, deliver in list(self._subscribers):
            if subjects.matches(pattern, subject):
                deliver(subject, data)

    def stored(self, stream: str, subject: str) -> list[_Stored]:
        return [m for m in self._streams[stream] if subjects.matches(subject, m.subject)]

    def consumer(self, stream: StreamSpec, subject: str, durable: str, max_deliveries: int,
                 ack_wait: float | None) -> _Consumer:
        key = (stream.name, durable)
        if key not in self._consumers:
            self._consumers[key] = _Consumer(stream.name, subject, max_deliveries, ack_wait)
        c = self._consumers[key]
        c.max_deliveries, c.ack_wait = max_deliveries, ack_wait  # opened again: its new settings hold
        return c

    def take(self, c: _Consumer) -> tuple[_Stored, int] | None:
        """The next message `c` may hand out now (a redelivery first), counted as delivered."""
        now = self.now()
        for seq, until in list(c.in_flight.items()):  # not settled within ack_wait
            if until <= now:
                del c.in_flight[seq]
                c.again_at[seq] = now
        stored = {m.seq: m for m in self.stored(c.stream, c.subject)}
        due = sorted(seq for seq, at in c.again_at.items() if at <= now)
        for seq in due:
            del c.again_at[seq]
            if seq in stored and c.deliveries[seq] < c.max_deliveries:
                return self._hand(c, stored[seq], now)
        for seq in sorted(stored):
            if seq > c.cursor:
                c.cursor = seq
                return self._hand(c, stored[seq], now)
        return None

    def _hand(self, c: _Consumer, message: _Stored, now: float) -> tuple[_Stored, int]:
        c.deliveries[message.seq] = c.deliveries.get(message.seq, 0) + 1
        c.in_flight[message.seq] = now + c.ack_wait if c.ack_wait is not None else float("inf")
        return message, c.deliveries[message.seq]

    def next_due(self, c: _Consumer) -> float | None:
        times = [*c.again_at.values(), *(t for t in c.in_flight.values() if t != float("inf"))]
        return min(times) if times else None

    def settle(self, c: _Consumer, seq: int, *, again_in: float | None = None, extend: bool = False) -> None:
        """Ack or term (`again_in` None), nak (`again_in` seconds), or in_progress (`extend`)."""
        if extend:
            if seq in c.in_flight and c.ack_wait is not None:
                c.in_flight[seq] = self.now() + c.ack_wait
            return
        c.in_flight.pop(seq, None)
        if again_in is not None and c.deliveries.get(seq, 0) < c.max_deliveries:
            c.again_at[seq] = self.now() + again_in
            c.woken.set()

    def remove(self, stream: str, seq: int) -> None:
        self._streams[stream] = [m for m in self._streams[stream] if m.seq != seq]

    def subscribe(self, pattern: str, deliver: Callable[[str, bytes], None]) -> Callable[[], None]:
        entry = (pattern, deliver)
        self._subscribers.append(entry)
        return lambda: self._subscribers.remove(entry) if entry in self._subscribers else None


async def wait_for_work(broker: MemoryBroker, c: _Consumer, deadline: float) -> bool:
    """Sleep until `c` may have something (or `deadline`); False once `deadline` has passed."""
    now = broker.now()
    if now >= deadline:
        return False
    due = broker.next_due(c)
    until = min(deadline, due) if due is not None else deadline
    c.woken.clear()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(c.woken.wait(), None if math.isinf(until) else max(0.0, until - now))
    return True


def _stored_in(subject: str) -> StreamSpec:
    stream = subjects.stream_of(subject)
    if stream is None:
        raise InvalidArgument(f"no stream stores {subject!r} (kingpost.bus.subjects names every stream)")
    return stream


class _Task:
    """A subscription's delivery task; `unsubscribe` stops it."""

    def __init__(self, run: Callable[[], object], detach: Callable[[], None] = lambda: None) -> None:
        self._task = asyncio.get_running_loop().create_task(run())  # type: ignore[arg-type]
        self._detach = detach

    async def unsubscribe(self) -> None:
        self._detach()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


class MemoryBus:
    def __init__(self, broker: MemoryBroker | None = None) -> None:
        self.broker = broker or MemoryBroker()
        self._tasks: list[_Task] = []

    async def publish(self, subject: str, message: Message) -> None:
        self.broker.route(subject, message.SerializeToString(), _stored_in(subject))

    async def publish_fast(self, subject: str, message: Message) -> None:
        self.broker.route(subject, message.SerializeToString(), subjects.stream_of(subject))

    async def subscribe(self, subject: str, message_type: type[M], handler: Handler[M]) -> _Task:
        queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

        async def run() -> None:
            while True:
                got, data = await queue.get()
                parsed = parse(message_type, data, got)
                if parsed is not None:
                    try:
                        await handler(parsed)
                    except Exception:
                        log.exception("handling %s failed (a plain subscription: it is not redelivered)", got)

        detach = self.broker.subscribe(subject, lambda s, d: queue.put_nowait((s, d)))
        return self._keep(_Task(run, detach))

    async def consume(self, subject: str, durable: str, message_type: type[M], handler: Handler[M], *,
                      retry_delay: float = 1.0, max_deliveries: int = 20) -> _Task:
        broker = self.broker
        c = broker.consumer(_stored_in(subject), subject, durable, max_deliveries, ack_wait=None)

        async def run() -> None:
            while True:
                taken = broker.take(c)
                if taken is None:
                    await wait_for_work(broker, c, float("inf"))
                    continue
                stored, _ = taken
                parsed = parse(message_type, stored.data, stored.subject)
                if parsed is None:
                    broker.settle(c, stored.seq)
                    continue
                try:
                    await handler(parsed)
                except Exception:
                    log.exception("handling %s failed; it will be redelivered", stored.subject)
                    broker.settle(c, stored.seq, again_in=retry_delay)
                    continue
                broker.settle(c, stored.seq)

        return self._keep(_Task(run))

    async def read_stream(self, subject: str, message_type: type[M], *, limit: int = 1000,
                          since: float | None = None) -> list[M]:
        stream = _stored_in(subject)
        parsed = [parse(message_type, m.data, m.subject) for m in self.broker.stored(stream.name, subject)]
        return [p for p in parsed if p is not None][-limit:]

    async def work_queue(self, subject: str, durable: str, message_type: type[M], *,
                         max_deliveries: int = 5, ack_wait: float = 30.0) -> MemoryWorkQueue[M]:
        stream = _stored_in(subject)
        c = self.broker.consumer(stream, subject, durable, max_deliveries, ack_wait)
        return MemoryWorkQueue(self.broker, c, stream, message_type)

    async def key_value(self, bucket: BucketSpec) -> MemoryKeyValue:
        return self.broker.buckets.setdefault(bucket.name, MemoryKeyValue(bucket.name))

    async def flush(self) -> None:
        await asyncio.sleep(0)

    async def close(self) -> None:
        for task in self._tasks:
            await task.unsubscribe()
        self._tasks.clear()

    def _keep(self, task: _Task) -> _Task:
        self._tasks.append(task)
        return task


class MemoryJob(Generic[M]):
    def __init__(self, queue: MemoryWorkQueue[M], stored: _Stored, message: M, deliveries: int) -> None:
        self._queue = queue
        self._seq = stored.seq
        self.message = message
        self.subject = stored.subject
        self.deliveries = deliveries

    async def ack(self) -> None:
        self._queue.settle(self._seq, done=True)

    async def nak(self, delay: float = 0.0) -> None:
        self._queue.settle(self._seq, again_in=delay)

    async def term(self) -> None:
        self._queue.settle(self._seq)

    async def in_progress(self) -> None:
        self._queue.settle(self._seq, extend=True)


class MemoryWorkQueue(Generic[M]):
    def __init__(self, broker: MemoryBroker, consumer: _Consumer, stream: StreamSpec,
                 message_type: type[M]) -> None:
        self._broker = broker
        self._consumer = consumer
        self._stream = stream
        self._type = message_type
        self.max_deliveries = consumer.max_deliveries

    async def fetch(self, batch: int = 1, *, timeout: float) -> list[MemoryJob[M]]:
        deadline = self._broker.now() + timeout
        while True:
            jobs: list[MemoryJob[M]] = []
            while len(jobs) < batch and (taken := self._broker.take(self._consumer)) is not None:
                stored, deliveries = taken
                parsed = parse(self._type, stored.data, stored.subject)
                if parsed is None:
                    self.settle(stored.seq)
                    continue
                jobs.append(MemoryJob(self, stored, parsed, deliveries))
            if jobs or not await wait_for_work(self._broker, self._consumer, deadline):
                return jobs

    async def pending(self) -> tuple[int, int]:
        c = self._consumer
        stored = [m.seq for m in self._broker.stored(c.stream, c.subject)]
        fetched = sum(1 for seq in stored if seq in c.in_flight)
        return len(stored) - fetched, fetched

    def settle(self, seq: int, *, again_in: float | None = None, extend: bool = False,
               done: bool = False) -> None:
        self._broker.settle(self._consumer, seq, again_in=again_in, extend=extend)
        if done and self._stream.work_queue:  # a work queue's message leaves the stream when acked
            self._broker.remove(self._stream.name, seq)


class MemoryKeyValue:
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self._revision = 0
        self._entries: dict[str, Entry] = {}
        self._watchers: list[tuple[str, asyncio.Queue[Entry]]] = []

    async def get(self, key: str) -> Entry | None:
        entry = self._entries.get(check_key(key))
        return None if entry is None or entry.deleted else entry

    async def put(self, key: str, value: bytes) -> int:
        return self._write(check_key(key), value)

    async def create(self, key: str, value: bytes) -> int:
        if await self.get(key) is not None:
            raise KeyExists(f"key {key!r} already exists in {self.bucket}")
        return self._write(key, value)

    async def update(self, key: str, value: bytes, revision: int) -> int:
        current = self._entries.get(check_key(key))
        if (current.revision if current else 0) != revision:
            raise RevisionMismatch(f"key {key!r} in {self.bucket} is no longer at revision {revision}")
        return self._write(key, value)

    async def delete(self, key: str) -> None:
        self._write(check_key(key), b"", deleted=True)

    @contextlib.asynccontextmanager
    async def watch(self, keys: str = ">") -> AsyncIterator[AsyncIterator[Entry]]:
        check_key_pattern(keys)
        queue: asyncio.Queue[Entry] = asyncio.Queue()
        for entry in sorted(self._entries.values(), key=lambda e: e.revision):
            if subjects.matches(keys, entry.key):
                queue.put_nowait(entry)
        watcher = (keys, queue)
        self._watchers.append(watcher)
        try:
            yield _Changes(queue)
        finally:
            self._watchers.remove(watcher)

    def _write(self, key: str, value: bytes, *, deleted: bool = False) -> int:
        self._revision += 1
        entry = Entry(key, value, self._revision, deleted)
        self._entries[key] = entry
        for pattern, queue in self._watchers:
            if subjects.matches(pattern, key):
                queue.put_nowait(entry)
        return self._revision


class _Changes:
    def __init__(self, queue: asyncio.Queue[Entry]) -> None:
        self._queue = queue

    def __aiter__(self) -> _Changes:
        return self

    async def __anext__(self) -> Entry:
        return await self._queue.get()
