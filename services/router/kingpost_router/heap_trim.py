"""Memory that big requests used goes back to the system once they are done.

glibc keeps what a process frees in its heaps for reuse (one heap per thread that allocated, up to
eight per core), and gRPC's threads allocate a big request's body in slices. Measured on `kingpost
up` (issue 21): the router at 68 MB at rest, 271 MB after five authenticated 90 MB requests and
still there minutes later; `malloc_trim(0)` brought it to 90 MB (MALLOC_ARENA_MAX=2 alone left it
at 255 MB: the free memory sits inside the heaps, not at their tops). This loop reads the process's
resident size every few seconds and trims while it is more than `threshold` bytes above the least
it has been after a trim (its size at rest). A trim while a big request is still in flight returns
little, so it is tried again at the next tick; it runs in a thread (it walks every heap: a few
milliseconds for hundreds of MB, less when there is nothing to return).
A request that ends in an error can leave its body in a reference cycle (exception, traceback,
frame), which only Python's cyclic collector frees, and in a quiet router that may not run for a
long time: measured, 267 MB held after two refused 48 MB bodies, 166 MB with a collection before
the trim. So each trim is preceded by one (a few milliseconds on the event loop for the router's
heap). The rest, the last refused request's body (twice: as received and as sent on), stays
referenced until the next request and then goes (where it is held was not found; it is one request).
Without glibc or /proc (macOS, musl) there is nothing to do and the loop ends at once.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

THRESHOLD_BYTES = 64 * 1024 * 1024
INTERVAL_SECONDS = 5.0


def should_trim(resident: int, at_rest: int, threshold: int = THRESHOLD_BYTES) -> bool:
    """Trim while the process is more than `threshold` above its size at rest."""
    return resident - at_rest > threshold


def resident_bytes() -> int | None:
    """This process's resident set size, or None where /proc is not there."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def glibc_malloc_trim() -> Callable[[], object] | None:
    """glibc's `malloc_trim(0)`, or None under another C library."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


async def trim_after_growth() -> None:
    """The router's background loop: runs until cancelled, or ends at once where it cannot work."""
    trim = glibc_malloc_trim()
    if trim is None or resident_bytes() is None:
        log.info("no malloc_trim or /proc here: freed memory stays with the process")
        return
    await keep_trimmed(lambda: resident_bytes() or 0, trim)


async def keep_trimmed(
    resident: Callable[[], int],
    trim: Callable[[], object],
    *,
    interval: float = INTERVAL_SECONDS,
    threshold: int = THRESHOLD_BYTES,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    collect: Callable[[], object] = gc.collect,
) -> None:
    """Every `interval`, while `resident()` is over `threshold` above its size at rest: free what only
    the cyclic collector can (`collect`), then trim (in a thread)."""
    at_rest = resident()
    while True:
        await sleep(interval)
        before = resident()
        if should_trim(before, at_rest, threshold):
            collect()
            await asyncio.to_thread(trim)
            after = resident()
            at_rest = min(at_rest, after)
            if before - after > threshold // 4:  # else it is in use (requests in flight): say nothing
                log.info("returned freed memory to the system: %d MB → %d MB resident",
                         before >> 20, after >> 20)
