"""Webhook delivery: POST the signed body, try again on the schedule of `async_policy.WEBHOOK_DELAYS`.

    sender = WebhookSender(secrets=lambda: ["whsec_..."])    # read at each delivery
    delivered, why = await sender.deliver("https://example.com/hook", body)

What counts as delivered and what is worth another try are `async_policy`'s decisions; this module
only sends. The body is signed once with every active secret (`X-BASETEN-SIGNATURE: v1=…,v1=…`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import aiohttp

from kingpost_router import async_policy

log = logging.getLogger(__name__)


class WebhookSender:
    def __init__(self, secrets: Callable[[], Sequence[str]], *, delays: Sequence[float] = async_policy.WEBHOOK_DELAYS,
                 timeout: float = 30.0, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._secrets = secrets
        self._delays = tuple(delays)
        self._sleep = sleep
        self._timeout = aiohttp.ClientTimeout(total=timeout)
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
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(limit=256), auto_decompress=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
