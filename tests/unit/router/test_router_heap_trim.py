"""Freed memory goes back to the system once a big request is done, and only then."""

from __future__ import annotations

import asyncio

import pytest

from kingpost_router.heap_trim import keep_trimmed

MB = 1024 * 1024


class Process:
    """A resident size that big requests raise and trims lower; `sleep` steps through its history."""

    def __init__(self, at_rest: int, ticks: list[tuple[int, int]]) -> None:
        # Each tick: (resident size when measured, what a trim then leaves).
        self.resident = at_rest
        self.ticks = iter(ticks)
        self.after_trim = at_rest
        self.trims: list[int] = []
        self.collected = 0

    def measure(self) -> int:
        return self.resident

    def trim(self) -> None:
        assert self.collected == len(self.trims) + 1, "a trim without a collection before it"
        self.trims.append(self.resident)
        self.resident = self.after_trim

    def collect(self) -> None:
        self.collected += 1

    async def sleep(self, _interval: float) -> None:
        try:
            self.resident, self.after_trim = next(self.ticks)
        except StopIteration:
            raise asyncio.CancelledError from None


async def run(process: Process) -> list[int]:
    with pytest.raises(asyncio.CancelledError):
        await keep_trimmed(process.measure, process.trim, threshold=64 * MB, sleep=process.sleep,
                           collect=process.collect)
    return process.trims


async def test_growth_within_the_threshold_is_left_alone() -> None:
    assert await run(Process(70 * MB, [(100 * MB, 70 * MB), (134 * MB, 70 * MB)])) == []


async def test_after_a_big_request_the_process_is_trimmed_back() -> None:
    assert await run(Process(70 * MB, [(271 * MB, 90 * MB), (95 * MB, 90 * MB)])) == [271 * MB]


async def test_a_trim_during_a_request_does_not_raise_the_size_at_rest() -> None:
    # Mid-request a trim returns little (the body is still in use); once the request is done, the
    # process is still measured against its size at rest, so it is trimmed again.
    trims = await run(Process(70 * MB, [(694 * MB, 515 * MB), (250 * MB, 72 * MB), (75 * MB, 72 * MB)]))
    assert trims == [694 * MB, 250 * MB]
