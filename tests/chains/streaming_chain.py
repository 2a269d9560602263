"""A streaming chain: `Counter` yields numbers as text (AsyncIterator[str]); the entrypoint `Relay` reads
that stream as it comes and re-sends each number as a framed pydantic item (chains.streaming), between
a header and a footer.

`hold_until`: Counter yields "0", then makes the rest only once that file exists (the test creates it
when it holds the first item), so a chunk that arrives before the file exists was streamed, not
buffered. `fail_at`: Counter raises ValueError instead of yielding that number; Relay catches it (the
same class, across the hop, mid-stream) and names it in the footer; Relay depends on Counter with
`retries=2`, and a stream is retried only before its first chunk, so that error is not retried.
`fail_once`: Counter raises before its first chunk the first time it sees that key; the retry streams.
"""

import asyncio
import os
from collections.abc import AsyncIterator

import pydantic

import truss_chains as chains


class Header(pydantic.BaseModel):
    n: int


class Item(pydantic.BaseModel):
    number: int


class Footer(pydantic.BaseModel):
    count: int
    error: str = ""


TYPES = chains.streaming.stream_types(Item, header_type=Header, footer_type=Footer)


async def _wait_for(path: str) -> None:
    for _ in range(1000):  # 50 s at most (under the 60 s streaming_read_timeout)
        if os.path.exists(path):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{path} never appeared: the first chunk did not reach the caller while the stream "
                       f"was still open")


class Counter(chains.ChainletBase):
    remote_config = chains.RemoteConfig(compute=chains.Compute(cpu_count=1, memory="1Gi"))

    def __init__(self) -> None:
        self._seen: set[str] = set()

    async def run_remote(self, n: int, hold_until: str = "", fail_at: int = -1,
                         fail_once: str = "") -> AsyncIterator[str]:
        if fail_once and fail_once not in self._seen:
            self._seen.add(fail_once)
            raise RuntimeError(f"first try of {fail_once}")
        for i in range(n):
            if i == fail_at:
                raise ValueError(f"no number {i}")
            if i == 1 and hold_until:
                await _wait_for(hold_until)
            yield str(i)


@chains.mark_entrypoint("streaming-chain")
class Relay(chains.ChainletBase):
    def __init__(self, counter: Counter = chains.depends(Counter, retries=2)) -> None:
        self._counter = counter

    async def run_remote(self, n: int, hold_until: str = "", fail_at: int = -1,
                         fail_once: str = "") -> AsyncIterator[bytes]:
        writer = chains.streaming.stream_writer(TYPES)
        yield writer.yield_header(Header(n=n))
        count, error = 0, ""
        try:
            async for text in self._counter.run_remote(n, hold_until=hold_until, fail_at=fail_at,
                                                       fail_once=fail_once):
                count += 1
                yield writer.yield_item(Item(number=int(text)))
        except Exception as e:  # noqa: BLE001 - reported in the footer, class and all
            error = f"caught {type(e).__name__}: {str(e).splitlines()[-1].lstrip('│ ')}"
        yield writer.yield_footer(Footer(count=count, error=error))
