"""The event bus contract (tests/bus_contract.py) on the in-memory bus."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kingpost.bus import subjects
from kingpost.bus.memory_bus import MemoryBroker, MemoryBus
from tests.bus_contract import BusContract, Connect, PublishRaw


class TestMemoryBus(BusContract):
    quiet_s = 0.2
    ack_wait_s = 1.0

    @pytest.fixture
    def broker(self) -> MemoryBroker:
        return MemoryBroker()

    @pytest.fixture
    async def bus(self, broker: MemoryBroker) -> AsyncIterator[MemoryBus]:
        bus = MemoryBus(broker)
        yield bus
        await bus.close()

    @pytest.fixture
    async def connect(self, broker: MemoryBroker) -> AsyncIterator[Connect]:
        opened: list[MemoryBus] = []

        async def connect() -> MemoryBus:
            opened.append(MemoryBus(broker))
            return opened[-1]

        yield connect
        for bus in opened:
            await bus.close()

    @pytest.fixture
    def publish_raw(self, broker: MemoryBroker) -> PublishRaw:
        async def publish_raw(subject: str, data: bytes) -> None:
            broker.route(subject, data, subjects.stream_of(subject))

        return publish_raw
