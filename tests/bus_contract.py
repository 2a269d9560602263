"""The event bus's contract, one suite for every implementation (kingpost.bus.interface).

A test module subclasses `BusContract` and provides three fixtures: `bus` (a connected Bus),
`connect` (an async factory for another connection to the same server, closed by the fixture) and
`publish_raw` (put bytes that are no protobuf on a subject). tests/unit/test_memory_bus.py runs it on
MemoryBus, tests/integration/test_nats_bus.py on NatsBus against a real NATS server.

Waits have generous deadlines and assert what happened and in which order; a "nothing came" check
waits a fixed while, and can only pass wrongly (a slow machine hides a late message), never fail wrongly.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from kingpost.bus import Bus, Job, KeyExists, RevisionMismatch
from kingpost.bus import subjects as s
from kingpost.bus.subjects import BucketSpec
from kingpost.errors import InvalidArgument
from kingpost.v1 import events_pb2

WAIT_S = 10.0
QUIET_S = 0.5  # how long "nothing more comes" is watched
BUCKET = BucketSpec("KP_BUS_CONTRACT")

Connect = Callable[[], Awaitable[Bus]]
PublishRaw = Callable[[str, bytes], Awaitable[None]]


class Seen:
    """What a handler was given, in order."""

    def __init__(self, fail_first: int = 0, fail_always: bool = False) -> None:
        self.items: list[Any] = []
        self._fail_first = fail_first
        self._fail_always = fail_always
        self._changed = asyncio.Event()

    async def add(self, message: Any) -> None:
        self.items.append(message)
        self._changed.set()
        if self._fail_always or len(self.items) <= self._fail_first:
            raise RuntimeError("the handler failed (on purpose)")

    async def wait_for(self, count: int) -> list[Any]:
        async def enough() -> None:
            while len(self.items) < count:
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(enough(), WAIT_S)
        except TimeoutError:
            raise AssertionError(f"{count} messages expected, {len(self.items)} came: {self.items}") from None
        return self.items


def build(build_id: str, message: str = "") -> events_pb2.BuildEvent:
    return events_pb2.BuildEvent(build_id=build_id, message=message)


def line(text: str) -> events_pb2.LogLine:
    return events_pb2.LogLine(source="replica", text=text)


def texts(messages: list[Any]) -> list[str]:
    return [m.text for m in messages]


async def eventually_stored(bus: Bus, subject: str, count: int) -> list[Any]:
    """read_stream until it has `count` lines (publish_fast is not acked, so storing may lag)."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        lines = await bus.read_stream(subject, events_pb2.LogLine)
        if len(lines) >= count or asyncio.get_running_loop().time() > deadline:
            return lines
        await asyncio.sleep(0.05)


class BusContract:
    # A subclass may shorten these where its bus is in memory.
    quiet_s = QUIET_S
    ack_wait_s = 2.0

    @pytest.fixture
    def uid(self) -> str:
        return uuid.uuid4().hex[:10]

    # --- facts and streams -------------------------------------------------------------------

    async def test_a_published_fact_is_stored_and_read_back_oldest_first_up_to_a_limit(
        self, bus: Bus, uid: str
    ) -> None:
        for message in ("queued", "building", "succeeded"):
            await bus.publish(s.build_subject(f"bld_{uid}"), build(f"bld_{uid}", message))
        read = await bus.read_stream(s.build_subject(f"bld_{uid}"), events_pb2.BuildEvent)
        assert [m.message for m in read] == ["queued", "building", "succeeded"]
        last = await bus.read_stream(s.build_subject(f"bld_{uid}"), events_pb2.BuildEvent, limit=2)
        assert [m.message for m in last] == ["building", "succeeded"]
        assert await bus.read_stream(s.build_subject(f"bld_other{uid}"), events_pb2.BuildEvent) == []

    async def test_publishing_a_fact_no_stream_stores_is_refused_naming_the_subject(
        self, bus: Bus, uid: str
    ) -> None:
        with pytest.raises(InvalidArgument, match=f"kp.node.node_{uid}"):
            await bus.publish(s.node_subject(f"node_{uid}"), events_pb2.NodeHeartbeat())

    async def test_fast_publishing_reaches_subscribers_in_order_and_the_stream_keeps_logs(
        self, bus: Bus, uid: str
    ) -> None:
        seen = Seen()
        await bus.subscribe(s.replica_logs_of(f"dep_{uid}"), events_pb2.LogLine, seen.add)
        await bus.flush()
        for i, replica in enumerate(["rep_a", "rep_b", "rep_a"]):
            await bus.publish_fast(s.replica_log_subject(f"dep_{uid}", replica), line(f"line {i}"))
        await bus.publish_fast(s.replica_log_subject(f"dep_other{uid}", "rep_a"), line("another deployment"))
        assert texts(await seen.wait_for(3)) == ["line 0", "line 1", "line 2"]
        stored = await eventually_stored(bus, s.replica_log_subject(f"dep_{uid}", "rep_a"), 2)
        assert texts(stored) == ["line 0", "line 2"]

    async def test_a_subscriber_drops_what_does_not_parse_and_gets_the_rest(
        self, bus: Bus, publish_raw: PublishRaw, uid: str
    ) -> None:
        seen = Seen()
        await bus.subscribe(s.node_subject(f"node_{uid}"), events_pb2.NodeHeartbeat, seen.add)
        await bus.flush()
        await publish_raw(s.node_subject(f"node_{uid}"), b"\x0a\xff not a protobuf")
        await bus.publish_fast(s.node_subject(f"node_{uid}"), events_pb2.NodeHeartbeat(node_id="after"))
        assert [m.node_id for m in await seen.wait_for(1)] == ["after"]

    async def test_a_failing_subscriber_is_not_redelivered_and_keeps_receiving(
        self, bus: Bus, uid: str
    ) -> None:
        seen = Seen(fail_first=1)
        await bus.subscribe(s.scale_poke_subject(f"dep_{uid}"), events_pb2.ScalePoke, seen.add)
        await bus.flush()
        for queued in (1, 2):
            await bus.publish_fast(s.scale_poke_subject(f"dep_{uid}"), events_pb2.ScalePoke(queued=queued))
        assert [m.queued for m in await seen.wait_for(2)] == [1, 2]

    async def test_an_unsubscribed_handler_hears_nothing_more(self, bus: Bus, uid: str) -> None:
        seen, after = Seen(), Seen()
        subscription = await bus.subscribe(s.node_subject(f"node_{uid}"), events_pb2.NodeHeartbeat, seen.add)
        await bus.subscribe(s.node_subject(f"node_{uid}"), events_pb2.NodeHeartbeat, after.add)
        await bus.flush()
        await subscription.unsubscribe()
        await bus.publish_fast(s.node_subject(f"node_{uid}"), events_pb2.NodeHeartbeat(node_id="late"))
        await after.wait_for(1)  # a subscription made before it got the message
        assert seen.items == []

    # --- durable consumers -------------------------------------------------------------------

    async def test_a_durable_consumer_gets_facts_from_before_it_started_then_resumes_where_it_left_off(
        self, bus: Bus, connect: Connect, uid: str
    ) -> None:
        subject = s.build_subject(f"bld_{uid}")
        await bus.publish(subject, build(f"bld_{uid}", "before"))
        first_run = await connect()
        seen = Seen()
        await first_run.consume(subject, f"durable-{uid}", events_pb2.BuildEvent, seen.add)
        await bus.publish(subject, build(f"bld_{uid}", "while"))
        assert [m.message for m in await seen.wait_for(2)] == ["before", "while"]
        await first_run.close()

        await bus.publish(subject, build(f"bld_{uid}", "after"))
        second_run = await connect()
        resumed = Seen()
        await second_run.consume(subject, f"durable-{uid}", events_pb2.BuildEvent, resumed.add)
        assert [m.message for m in await resumed.wait_for(1)] == ["after"]

    async def test_a_fact_whose_handler_fails_is_handed_again_without_holding_back_the_next(
        self, bus: Bus, uid: str
    ) -> None:
        subject = s.replica_subject(f"rep_{uid}")
        seen = Seen(fail_first=1)
        await bus.consume(subject, f"durable-{uid}", events_pb2.ReplicaEvent, seen.add, retry_delay=0.1)
        await bus.publish(subject, events_pb2.ReplicaEvent(message="first"))
        await bus.publish(subject, events_pb2.ReplicaEvent(message="second"))
        items = [m.message for m in await seen.wait_for(3)]
        assert items[0] == "first" and sorted(items[1:]) == ["first", "second"]

    async def test_a_fact_that_always_fails_is_given_up_after_max_deliveries(
        self, bus: Bus, uid: str
    ) -> None:
        subject = s.replica_subject(f"rep_{uid}")
        seen = Seen(fail_always=True)
        await bus.consume(subject, f"durable-{uid}", events_pb2.ReplicaEvent, seen.add, retry_delay=0.01,
                          max_deliveries=3)
        await bus.publish(subject, events_pb2.ReplicaEvent(message="poison"))
        await seen.wait_for(3)
        await asyncio.sleep(self.quiet_s)
        assert [m.message for m in seen.items] == ["poison"] * 3

    async def test_a_stored_message_that_does_not_parse_is_dropped_not_redelivered(
        self, bus: Bus, publish_raw: PublishRaw, uid: str
    ) -> None:
        subject = s.build_subject(f"bld_{uid}")
        await publish_raw(subject, b"\x0a\xff not a protobuf")
        await bus.publish(subject, build(f"bld_{uid}", "good"))
        seen = Seen()
        await bus.consume(subject, f"durable-{uid}", events_pb2.BuildEvent, seen.add)
        await seen.wait_for(1)
        await asyncio.sleep(self.quiet_s)
        assert [m.message for m in seen.items] == ["good"]

    # --- the work queue ----------------------------------------------------------------------

    async def test_each_job_goes_to_one_fetcher_and_an_acked_one_never_comes_back(
        self, bus: Bus, connect: Connect, uid: str
    ) -> None:
        subject = s.async_request_subject(f"dep_{uid}", 0)
        for i in range(6):
            await bus.publish(subject, line(f"job {i}"))
        mine = await bus.work_queue(subject, f"workers-{uid}", events_pb2.LogLine)
        theirs = await (await connect()).work_queue(subject, f"workers-{uid}", events_pb2.LogLine)
        first = await mine.fetch(4, timeout=WAIT_S)
        second = await theirs.fetch(6, timeout=WAIT_S)
        taken = texts([j.message for j in first]) + texts([j.message for j in second])
        assert sorted(taken) == [f"job {i}" for i in range(6)]
        assert all(j.deliveries == 1 and j.subject == subject for j in [*first, *second])
        for job in [*first, *second]:
            await job.ack()
        assert await mine.fetch(1, timeout=self.quiet_s) == []

    async def test_pending_counts_what_waits_and_what_is_fetched_but_not_settled(
        self, bus: Bus, uid: str
    ) -> None:
        subject = s.async_request_subject(f"dep_{uid}", 2)
        queue = await bus.work_queue(subject, f"workers-{uid}", events_pb2.LogLine)
        for i in range(3):
            await bus.publish(subject, line(f"job {i}"))
        assert await queue.pending() == (3, 0)
        [job] = await queue.fetch(1, timeout=WAIT_S)
        assert await queue.pending() == (2, 1)
        await job.ack()
        await bus.flush()  # an ack is fire-and-forget: the server has it after a flush, applies it soon after
        for _ in range(100):
            if await queue.pending() == (2, 0):
                break
            await asyncio.sleep(0.02)
        assert await queue.pending() == (2, 0)

    async def test_a_fetch_waits_for_a_job_published_while_it_waits(self, bus: Bus, uid: str) -> None:
        subject = s.async_request_subject(f"dep_{uid}", 1)
        queue = await bus.work_queue(subject, f"workers-{uid}", events_pb2.LogLine)
        assert await queue.fetch(1, timeout=0.2) == []
        waiting = asyncio.create_task(queue.fetch(1, timeout=WAIT_S))
        await asyncio.sleep(0.1)
        await bus.publish(subject, line("late"))
        [job] = await waiting
        assert job.message.text == "late"
        await job.ack()

    async def test_a_nakd_job_comes_back_counted_and_a_delayed_one_not_before_its_delay(
        self, bus: Bus, uid: str
    ) -> None:
        subject = s.async_request_subject(f"dep_{uid}", 0)
        queue = await bus.work_queue(subject, f"workers-{uid}", events_pb2.LogLine)
        await bus.publish(subject, line("retry me"))
        [job] = await queue.fetch(1, timeout=WAIT_S)
        await job.nak()
        [again] = await queue.fetch(1, timeout=WAIT_S)
        assert (again.message.text, again.deliveries) == ("retry me", 2)
        await again.nak(delay=60)
        assert await queue.fetch(1, timeout=self.quiet_s) == []

    async def test_a_termd_job_and_one_past_max_deliveries_never_come_back(self, bus: Bus, uid: str) -> None:
        subject = s.async_request_subject(f"dep_{uid}", 2)
        queue = await bus.work_queue(subject, f"workers-{uid}", events_pb2.LogLine, max_deliveries=2)
        assert queue.max_deliveries == 2
        await bus.publish(subject, line("terminate me"))
        await bus.publish(subject, line("fail me twice"))
        term, fail = await queue.fetch(2, timeout=WAIT_S)
        assert (term.message.text, fail.message.text) == ("terminate me", "fail me twice")
        await term.term()
        await fail.nak()
        [last] = await queue.fetch(2, timeout=WAIT_S)
        assert (last.message.text, last.deliveries) == ("fail me twice", 2)
        await last.nak()
        assert await queue.fetch(2, timeout=self.quiet_s) == []

    async def test_a_job_not_settled_within_ack_wait_goes_to_the_next_fetch(self, bus: Bus, uid: str) -> None:
        subject = s.async_request_subject(f"dep_{uid}", 0)
        queue = await bus.work_queue(subject, f"workers-{uid}", events_pb2.LogLine,
                                     ack_wait=self.ack_wait_s / 2)
        await bus.publish(subject, line("abandoned"))
        [job] = await queue.fetch(1, timeout=WAIT_S)
        [again] = await queue.fetch(1, timeout=WAIT_S)  # the first taker went quiet
        assert (again.message.text, again.deliveries) == ("abandoned", 2)
        await again.ack()

    async def test_jobs_fetched_and_not_yet_settled_are_not_capped(self, bus: Bus, uid: str) -> None:
        """More than NATS's default cap (1,000) held at once, as while a slow webhook is retried:
        the queue goes on handing out jobs."""
        subject = s.async_request_subject(f"dep_{uid}", 0)
        queue = await bus.work_queue(subject, f"workers-{uid}", events_pb2.LogLine)
        for i in range(1100):
            await bus.publish(subject, line(f"job {i}"))
        held: list[Job[events_pb2.LogLine]] = []
        while len(held) < 1100:
            jobs = await queue.fetch(500, timeout=WAIT_S)
            assert jobs, f"the queue stopped handing out jobs with {len(held)} held"
            held += jobs
        assert sorted(int(j.message.text.split()[1]) for j in held) == list(range(1100))
        for job in held:
            await job.ack()

    async def test_a_work_queue_opened_again_with_another_ack_wait_uses_it(self, bus: Bus, uid: str) -> None:
        subject = s.async_request_subject(f"dep_{uid}", 0)
        await bus.work_queue(subject, f"workers-{uid}", events_pb2.LogLine, ack_wait=3600)
        queue = await bus.work_queue(subject, f"workers-{uid}", events_pb2.LogLine, ack_wait=self.ack_wait_s / 2)
        await bus.publish(subject, line("abandoned"))
        [job] = await queue.fetch(1, timeout=WAIT_S)
        [again] = await queue.fetch(1, timeout=WAIT_S)  # handed out again after the new ack_wait
        assert (again.message.text, again.deliveries) == ("abandoned", 2)
        await again.ack()

    async def test_in_progress_keeps_a_long_job_from_other_fetchers(
        self, bus: Bus, connect: Connect, uid: str
    ) -> None:
        subject = s.async_request_subject(f"dep_{uid}", 0)
        queue = await bus.work_queue(subject, f"workers-{uid}", events_pb2.LogLine, ack_wait=self.ack_wait_s)
        other = await (await connect()).work_queue(subject, f"workers-{uid}", events_pb2.LogLine,
                                                   ack_wait=self.ack_wait_s)
        await bus.publish(subject, line("long"))
        [job] = await queue.fetch(1, timeout=WAIT_S)

        async def keep_working() -> None:
            while True:
                await asyncio.sleep(self.ack_wait_s / 10)
                await job.in_progress()

        worker = asyncio.create_task(keep_working())
        try:
            assert await other.fetch(1, timeout=2 * self.ack_wait_s) == []
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
        await job.ack()

    # --- key-value ---------------------------------------------------------------------------

    async def test_create_only_once_put_always_and_revisions_grow(self, bus: Bus, uid: str) -> None:
        kv = await bus.key_value(BUCKET)
        first = await kv.create(f"{uid}.req", b"QUEUED")
        with pytest.raises(KeyExists, match=f"{uid}.req"):
            await kv.create(f"{uid}.req", b"QUEUED again")
        second = await kv.put(f"{uid}.req", b"IN_PROGRESS")
        assert second > first
        entry = await kv.get(f"{uid}.req")
        assert entry is not None
        assert (entry.key, entry.value, entry.revision) == (f"{uid}.req", b"IN_PROGRESS", second)
        assert await kv.get(f"{uid}.absent") is None

    async def test_update_succeeds_only_at_the_expected_revision(self, bus: Bus, uid: str) -> None:
        kv = await bus.key_value(BUCKET)
        created = await kv.create(f"{uid}.req", b"QUEUED")
        updated = await kv.update(f"{uid}.req", b"IN_PROGRESS", created)
        with pytest.raises(RevisionMismatch, match=f"revision {created}"):
            await kv.update(f"{uid}.req", b"CANCELED", created)  # someone else moved it on
        with pytest.raises(RevisionMismatch):
            await kv.update(f"{uid}.absent", b"x", updated)
        entry = await kv.get(f"{uid}.req")
        assert entry is not None and (entry.value, entry.revision) == (b"IN_PROGRESS", updated)

    async def test_a_deleted_key_reads_as_absent_and_can_be_created_again(self, bus: Bus, uid: str) -> None:
        kv = await bus.key_value(BUCKET)
        await kv.put(f"{uid}.req", b"SUCCEEDED")
        await kv.delete(f"{uid}.req")
        assert await kv.get(f"{uid}.req") is None
        await kv.create(f"{uid}.req", b"QUEUED")
        entry = await kv.get(f"{uid}.req")
        assert entry is not None and entry.value == b"QUEUED"

    async def test_a_bucket_is_shared_by_every_connection(self, bus: Bus, connect: Connect, uid: str) -> None:
        await (await bus.key_value(BUCKET)).put(f"{uid}.req", b"QUEUED")
        entry = await (await (await connect()).key_value(BUCKET)).get(f"{uid}.req")
        assert entry is not None and entry.value == b"QUEUED"

    async def test_a_watch_gives_current_entries_then_each_change_of_matching_keys(
        self, bus: Bus, uid: str
    ) -> None:
        kv = await bus.key_value(BUCKET)
        await kv.put(f"{uid}.a", b"QUEUED")
        await kv.put(f"other{uid}.a", b"not watched")
        async with kv.watch(f"{uid}.>") as changes:
            await kv.put(f"{uid}.b", b"QUEUED")
            await kv.put(f"{uid}.a", b"SUCCEEDED")
            await kv.delete(f"{uid}.b")
            seen = []
            async with asyncio.timeout(WAIT_S):
                async for entry in changes:
                    seen.append((entry.key, entry.value, entry.deleted))
                    if len(seen) == 4:
                        break
        assert seen == [(f"{uid}.a", b"QUEUED", False), (f"{uid}.b", b"QUEUED", False),
                        (f"{uid}.a", b"SUCCEEDED", False), (f"{uid}.b", b"", True)]

    async def test_a_bad_key_is_refused_naming_it(self, bus: Bus) -> None:
        kv = await bus.key_value(BUCKET)
        with pytest.raises(InvalidArgument, match="'has space'"):
            await kv.put("has space", b"x")
        with pytest.raises(InvalidArgument, match="'.leading'"):
            await kv.get(".leading")
