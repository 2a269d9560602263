"""Webhook delivery to a real local receiver, with host names resolved by a stand-in DNS (the one
thing here from outside the machine): unless internal webhooks are allowed, a name that resolves to
loopback or private addresses is refused at once, naming the name and the addresses, and nothing is
sent; allowed, the same name gets the signed body.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from kingpost_router.async_policy import SIGNATURE_HEADER, verify
from kingpost_router.webhooks import PER_RECEIVER, PublicOnly, WebhookSender

SECRET = "whsec_webhookTest0123456789"


class StandInDns(AbstractResolver):
    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host=ip, port=port, family=socket.AF_INET, proto=0,
                              flags=socket.AI_NUMERICHOST) for ip in self.names[host]]

    async def close(self) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[int, list[tuple[dict[str, str], bytes]]]]:
    got: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            got.append(({k.lower(): v for k, v in self.headers.items()},
                        self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], got
    server.shutdown()


async def test_a_name_that_resolves_inside_is_refused_at_once_and_nothing_is_sent(receiver) -> None:
    port, got = receiver
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    sender = WebhookSender(lambda: [SECRET], resolver=StandInDns({"hooks.example.com": ["127.0.0.1"]}),
                           delays=(1.0, 2.0), sleep=sleep)
    try:
        delivered, why = await sender.deliver(f"http://hooks.example.com:{port}/hook", b'{"n": 1}')
    finally:
        await sender.close()
    assert not delivered
    assert why.startswith("hooks.example.com resolves to internal addresses only (127.0.0.1)"), why
    assert "allow_internal_webhooks" in why
    assert got == [] and slept == []  # refused, not tried again


async def test_allowed_internal_webhooks_follow_the_name_and_are_signed(receiver) -> None:
    port, got = receiver
    sender = WebhookSender(lambda: [SECRET], resolver=StandInDns({"hooks.example.com": ["127.0.0.1"]}),
                           allow_internal=True)
    try:
        assert await sender.deliver(f"http://hooks.example.com:{port}/hook", b'{"n": 2}') == (True, "")
    finally:
        await sender.close()
    ((headers, body),) = got
    assert body == b'{"n": 2}' and verify(body, headers[SIGNATURE_HEADER.lower()], SECRET)


async def test_only_the_public_addresses_of_a_mixed_answer_are_kept() -> None:
    resolver = PublicOnly(StandInDns({"both.example.com": ["10.0.0.7", "93.184.216.34", "169.254.169.254"]}))
    assert [a["host"] for a in await resolver.resolve("both.example.com", 443)] == ["93.184.216.34"]


async def test_a_receiver_that_never_answers_holds_back_no_other_receiver(receiver) -> None:
    """Hundreds of deliveries stuck on one receiver (more than any total cap would allow) and a
    delivery to another receiver still goes out at once."""
    port, got = receiver
    accepted: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        await reader.read()  # until the sender gives up

    stuck_server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    stuck_port = stuck_server.sockets[0].getsockname()[1]
    names = {"stuck.example.com": ["127.0.0.1"], "fine.example.com": ["127.0.0.1"]}
    sender = WebhookSender(lambda: [SECRET], resolver=StandInDns(names), allow_internal=True, timeout=300)
    stuck = [asyncio.create_task(sender.send(f"http://stuck.example.com:{stuck_port}/hook", b"{}"))
             for _ in range(300)]
    try:
        while len(accepted) < PER_RECEIVER:
            await asyncio.sleep(0.01)
        status, why = await asyncio.wait_for(sender.send(f"http://fine.example.com:{port}/hook", b'{"n": 3}'), 10)
        assert (status, [body for _, body in got]) == (204, [b'{"n": 3}']), why
        assert not any(task.done() for task in stuck)
    finally:
        for task in stuck:
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
        await sender.close()
        stuck_server.close()
        for writer in accepted:
            writer.close()
