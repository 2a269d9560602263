"""The event bus every service talks through: facts, durable consumers, a work queue, key-value.

    Publisher                 publish (a fact: returns once its stream stored it), publish_fast
    Bus(Publisher)            subscribe, consume (durable), read_stream, work_queue, key_value, flush, close
    WorkQueue[M] → Job[M]     fetch with a deadline, pending counts; ack, nak (with a delay), term, in_progress
    KeyValue → Entry          get, put, create (if absent), update (expected revision), delete, watch

Messages are protobufs; a message that does not parse as the expected type is logged and dropped
(never redelivered). `kingpost.bus.nats_bus.NatsBus` is the real one (NATS JetStream);
`kingpost.bus.memory_bus.MemoryBus` keeps the same contract in memory, for unit tests. One test
suite (tests/bus_contract.py) runs against both.

Errors: InvalidArgument for a subject no stream stores (publish) or a bad key; KeyExists and
RevisionMismatch (both Conflict) for a refused create or update; Unavailable when NATS cannot answer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from google.protobuf.message import DecodeError, Message

from kingpost.bus.subjects import BucketSpec
from kingpost.errors import Conflict, InvalidArgument

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)
M_co = TypeVar("M_co", bound=Message, covariant=True)


class KeyExists(Conflict):
    """`create` found the key already there."""


class RevisionMismatch(Conflict):
    """`update` expected a revision the key no longer (or never) had."""


class Subscription(Protocol):
    async def unsubscribe(self) -> None: ...


class Publisher(Protocol):
    async def publish(self, subject: str, message: Message) -> None:
        """A fact: returns once the stream that stores `subject` has it (InvalidArgument when none does)."""
        ...

    async def publish_fast(self, subject: str, message: Message) -> None:
        """Fire and forget (logs, heartbeats, metrics); a stream that stores `subject` still keeps it."""
        ...


class Job(Protocol[M_co]):
    """One request taken from a work queue. Settle it once: ack, nak or term."""

    @property
    def message(self) -> M_co: ...

    @property
    def subject(self) -> str: ...

    @property
    def deliveries(self) -> int:
        """1 the first time it is fetched; the queue stops at its `max_deliveries`."""
        ...

    async def ack(self) -> None:
        """Done: it leaves the queue."""
        ...

    async def nak(self, delay: float = 0.0) -> None:
        """Not done: fetchable again after `delay` seconds (if deliveries are left)."""
        ...

    async def term(self) -> None:
        """Never again, whatever deliveries are left."""
        ...

    async def in_progress(self) -> None:
        """Still working: the queue waits another `ack_wait` before giving it to someone else."""
        ...


class WorkQueue(Protocol[M_co]):
    """A pull consumer: every job goes to one fetcher at a time; one not settled within `ack_wait`
    seconds (counted from the fetch or the last `in_progress`) is fetched again."""

    @property
    def max_deliveries(self) -> int: ...

    async def fetch(self, batch: int = 1, *, timeout: float) -> list[Job[M_co]]:
        """Up to `batch` jobs, waiting at most `timeout` seconds for the first; [] when none came."""
        ...

    async def pending(self) -> tuple[int, int]:
        """(waiting to be fetched, fetched and not yet settled), over every fetcher of the queue."""
        ...


@dataclass(frozen=True)
class Entry:
    key: str
    value: bytes
    revision: int  # grows with every write to the bucket
    deleted: bool = False  # only a watch shows deletions (`get` answers None)


class KeyWatch(Protocol):
    """`async with kv.watch(keys) as changes: async for entry in changes`: each matching key's
    current entry first, then every put and delete as it happens."""

    async def __aenter__(self) -> AsyncIterator[Entry]: ...

    async def __aexit__(self, *exc: object) -> None: ...


class KeyValue(Protocol):
    @property
    def bucket(self) -> str: ...

    async def get(self, key: str) -> Entry | None: ...

    async def put(self, key: str, value: bytes) -> int:
        """Write whatever was there; the new revision."""
        ...

    async def create(self, key: str, value: bytes) -> int:
        """Write only if the key is absent (or deleted); KeyExists otherwise."""
        ...

    async def update(self, key: str, value: bytes, revision: int) -> int:
        """Write only if the key's revision is still `revision`; RevisionMismatch otherwise."""
        ...

    async def delete(self, key: str) -> None: ...

    def watch(self, keys: str = ">") -> KeyWatch:
        """`keys`: a key, or a pattern with `*` (one dot-separated part) and `>` (the rest)."""
        ...


Handler = Callable[[M], Awaitable[None]]


class Bus(Publisher, Protocol):
    async def subscribe(self, subject: str, message_type: type[M], handler: Handler[M]) -> Subscription:
        """Every message published on `subject` (wildcards allowed) from now on; none is redelivered."""
        ...

    async def consume(self, subject: str, durable: str, message_type: type[M], handler: Handler[M], *,
                      retry_delay: float = 1.0, max_deliveries: int = 20) -> Subscription:
        """Every stored message on `subject`, resuming where the consumer named `durable` left off:
        acked once `handler` returns, handed again after `retry_delay` seconds when it raises."""
        ...

    async def read_stream(self, subject: str, message_type: type[M], *, limit: int = 1000,
                          since: float | None = None) -> list[M]:
        """The last `limit` stored messages on `subject` (wildcards allowed), oldest first; with `since`
        (Unix seconds) those stored from then on (a hint: a bus may return older ones too)."""
        ...

    async def work_queue(self, subject: str, durable: str, message_type: type[M], *,
                         max_deliveries: int = 5, ack_wait: float = 30.0) -> WorkQueue[M]:
        """The work queue of the stored messages on `subject`, shared by every fetcher of `durable`."""
        ...

    async def key_value(self, bucket: BucketSpec) -> KeyValue:
        """The bucket, created when it does not exist yet."""
        ...

    async def flush(self) -> None:
        """Returns once the server has every subscription made and message published before it."""
        ...

    async def close(self) -> None:
        """Deliver what is pending, then stop; never waits on a server that is gone."""
        ...


# NATS key-value keys: letters, digits and `-/_=.`, not starting or ending with a dot.
_KEY = re.compile(r"^[-/_=a-zA-Z0-9]+(\.[-/_=a-zA-Z0-9]+)*$")
_KEY_PATTERN = re.compile(r"^([-/_=a-zA-Z0-9]+|\*)(\.([-/_=a-zA-Z0-9]+|\*))*(\.>)?$|^>$")


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise InvalidArgument(f"key-value key {key!r} is not valid: letters, digits and '-/_=.' only, "
                              "and not starting or ending with '.'")
    return key


def check_key_pattern(keys: str) -> str:
    if not _KEY_PATTERN.match(keys):
        raise InvalidArgument(f"key-value pattern {keys!r} is not valid: key parts, '*' for any one part, "
                              "'>' for the rest")
    return keys


def parse(message_type: type[M], data: bytes, subject: str) -> M | None:
    """`data` as a `message_type`; None (and a warning naming the subject) when it is not one."""
    message = message_type()
    try:
        message.ParseFromString(data)
    except DecodeError:
        log.warning("dropping a message on %s that is not a %s", subject, message_type.__name__)
        return None
    return message
