"""Webhook delivery: POST the signed body, try again on the schedule of `async_policy.WEBHOOK_DELAYS`.

    sender = WebhookSender(secrets=lambda: ["whsec_..."])    # read at each delivery
    delivered, why = await sender.deliver("https://example.com/hook", body)

What counts as delivered and what is worth another try are `async_policy`'s decisions; this module
only sends. The body is signed once with every active secret (`X-BASETEN-SIGNATURE: v1=…,v1=…`).
Unless internal webhooks are allowed, a host name is resolved here, at each connection, and its
loopback, private or link-local addresses are never connected to: a public name pointing inside
(or re-pointed there after the request was queued) is refused, not followed.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from kingpost_router import async_policy
from kingpost_router.async_input import is_internal_host

log = logging.getLogger(__name__)
PER_RECEIVER = 64  # connections open at once to one webhook host


class InternalAddress(OSError):
    """A webhook host that resolves to none but internal addresses."""


class PublicOnly(AbstractResolver):
    """A resolver that drops loopback, private and link-local addresses (and fails when none is left)."""

    def __init__(self, resolver: AbstractResolver | None = None) -> None:
        self._resolver = resolver or aiohttp.DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        public = [address for address in found if not is_internal_host(address["host"])]
        if not public:
            shown = ", ".join(sorted({address["host"] for address in found}))
            raise InternalAddress(f"{host} resolves to internal addresses only ({shown}); this platform's "
                                  "configuration refuses those (router allow_internal_webhooks)")
        return public

    async def close(self) -> None:
        await self._resolver.close()


class WebhookSender:
    def __init__(self, secrets: Callable[[], Sequence[str]], *, delays: Sequence[float] = async_policy.WEBHOOK_DELAYS,
                 timeout: float = 30.0, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 allow_internal: bool = False, resolver: AbstractResolver | None = None) -> None:
        """`resolver`: how host names are resolved (aiohttp's default, checked unless `allow_internal`)."""
        self._secrets = secrets
        self._delays = tuple(delays)
        self._sleep = sleep
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._allow_internal = allow_internal
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None  # made in the running loop, on first use

    def headers(self, body: bytes) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        signature = async_policy.signature_header(body, self._secrets())
        if signature:
            headers[async_policy.SIGNATURE_HEADER] = signature
        return headers

    async def send(self, url: str, body: bytes) -> tuple[int, str]:
        """One try: (HTTP status, what happened); status 0 when no answer came."""
        try:
            async with self._client().post(url, data=body, headers=self.headers(body),
                                           allow_redirects=False) as response:
                await response.read()
                return response.status, f"HTTP {response.status}"
        except aiohttp.ClientConnectorError as e:
            if isinstance(e.os_error, InternalAddress):  # the same answer on every try: not retried
                return async_policy.REFUSED_ADDRESS, str(e.os_error)
            return 0, f"{type(e).__name__}: {e}".rstrip(": ")
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            return 0, f"{type(e).__name__}: {e}".rstrip(": ")

    async def deliver(self, url: str, body: bytes, *, tried: tuple[int, str] | None = None) -> tuple[bool, str]:
        """(True, "") once a try answered 2xx; (False, why the last try failed) after the last.
        `tried`: the first try's outcome, when the caller made it already (`send`)."""
        why = ""
        for attempt, delay in enumerate((0.0, *self._delays)):
            if attempt == 0 and tried is not None:
                status, why = tried
            else:
                if delay:
                    await self._sleep(delay)
                status, why = await self.send(url, body)
            if async_policy.webhook_delivered(status):
                return True, ""
            if not async_policy.webhook_retry(status):
                break
            log.info("webhook %s: try %d failed (%s)", url, attempt + 1, why)
        return False, why

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            resolver = self._resolver if self._allow_internal else PublicOnly(self._resolver)
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                # Per receiver, not in all: one slow receiver must not hold back everyone else's.
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=PER_RECEIVER, resolver=resolver),
                auto_decompress=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
