"""The event bus contract (tests/bus_contract.py) on NATS JetStream, against a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kingpost.bus.nats_bus import NatsBus
from tests.bus_contract import BusContract, Connect, PublishRaw


class TestNatsBus(BusContract):
    @pytest.fixture
    async def bus(self, nats_url: str) -> AsyncIterator[NatsBus]:
        bus = await NatsBus.connect(nats_url, "bus-contract")
        yield bus
        await bus.close()

    @pytest.fixture
    async def connect(self, nats_url: str) -> AsyncIterator[Connect]:
        opened: list[NatsBus] = []

        async def connect() -> NatsBus:
            opened.append(await NatsBus.connect(nats_url, "bus-contract-other"))
            return opened[-1]

        yield connect
        for bus in opened:
            await bus.close()

    @pytest.fixture
    def publish_raw(self, bus: NatsBus) -> PublishRaw:
        async def publish_raw(subject: str, data: bytes) -> None:
            await bus.nc.publish(subject, data)
            await bus.nc.flush()

        return publish_raw

