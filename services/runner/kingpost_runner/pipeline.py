"""One request through a loaded model: decode → preprocess → predict → postprocess → encode.

- sync methods run in worker threads, async ones are awaited, (async) generators are streamed;
- only `predict` runs inside the semaphore of `runtime.predict_concurrency`; a streaming predict
  holds its slot until its generator is exhausted (or fails, or the caller goes away), and is drained
  into a queue as fast as it produces, so a slow reader does not hold the slot (as truss does);
- the gap between two chunks is bounded by `runtime.streaming_read_timeout`;
- a stream is gathered into one JSON string when the caller sends `accept: application/json`
  (unless its user agent is OpenAI's SDK, which sends that header while expecting a stream).
Every failure leaves here as a `kingpost.errors.KingpostError` carrying the exact HTTP status.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread

from kingpost import errors

from kingpost_runner import codec
from kingpost_runner.model_request import ModelRequest
from kingpost_runner.observe import Phases
from kingpost_runner.truss_model import ArgMode, Method, ModelMethods
from kingpost_runner.user_errors import MODEL_ERROR_MESSAGE, from_user_exception

log = logging.getLogger(__name__)

_END = object()


@dataclasses.dataclass(frozen=True)
class Reply:
    """A whole (non-streaming) response."""

    body: bytes
    content_type: str


def wants_gathered_stream(request: ModelRequest) -> bool:
    if "openai" in request.headers.get("user-agent", "").lower():
        return False
    return request.headers.get("accept") == codec.JSON


async def _call(method: Method, inputs: Any, request: ModelRequest) -> Any:
    args = method.call_args(inputs, request)
    try:
        if method.is_generator:
            return method.fn(*args)  # not awaited: its iterator is streamed
        if method.is_async:
            return await method.fn(*args)
        return await anyio.to_thread.run_sync(method.fn, *args)
    except errors.KingpostError:
        raise
    except Exception as e:
        raise from_user_exception(e, method.name) from e


class ChunkStream:
    """A model's generator, drained by a background task into a queue and read with a timeout."""

    def __init__(self, generator: Any, read_timeout_s: float, release: Callable[[], None]) -> None:
        self._generator = generator
        self._timeout = read_timeout_s
        self._release_slot: Callable[[], None] | None = release
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._task = asyncio.create_task(self._produce())
        self._task.add_done_callback(lambda _: self._release())
        self._done = False

    async def _produce(self) -> None:
        gen = self._generator
        try:
            if inspect.isasyncgen(gen):
                async for chunk in gen:
                    self._queue.put_nowait(codec.encode_chunk(chunk))
            else:
                while (chunk := await anyio.to_thread.run_sync(next, gen, _END)) is not _END:
                    self._queue.put_nowait(codec.encode_chunk(chunk))
            self._queue.put_nowait(_END)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._queue.put_nowait(from_user_exception(e, "predict (while streaming)"))
        finally:
            if inspect.isasyncgen(gen):
                await gen.aclose()
            elif inspect.isgenerator(gen):
                gen.close()

    def _release(self) -> None:
        # Exactly once, when the producer task ends however it ends (even cancelled before it ran).
        release, self._release_slot = self._release_slot, None
        if release is not None:
            release()

    def __aiter__(self) -> ChunkStream:
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout=self._timeout)
        except TimeoutError:
            await self.aclose()
            raise errors.DeadlineExceeded(
                f"Streaming read timeout: the model sent no chunk for {self._timeout:g} s."
            ) from None
        if item is _END:
            self._done = True
            raise StopAsyncIteration
        if isinstance(item, errors.KingpostError):
            self._done = True
            raise item
        return item

    async def aclose(self) -> None:
        """Stop the generator (the caller left, or timed out); its slot frees when it has stopped.

        Not awaited: a sync generator blocked in `next()` in its thread stops only when that returns.
        """
        self._done = True
        self._task.cancel()


class Pipeline:
    def __init__(
        self, methods: ModelMethods, predict_concurrency: int, streaming_read_timeout_s: float
    ) -> None:
        self.methods = methods
        self._slots = anyio.Semaphore(predict_concurrency)
        self._read_timeout = streaming_read_timeout_s

    async def run(self, body: bytes, content_type: str, request: ModelRequest,
                  phases: Phases | None = None) -> Reply | ChunkStream:
        """`phases` (a traced request) records preprocess, predict and postprocess; a stream's
        predict phase is ended by the caller, at its last chunk."""
        m = self.methods
        if m.predict is None:
            raise errors.NotFound("this model serves a `websocket` and no `predict`: connect to {prefix}/websocket")
        binary = codec.is_binary(content_type)
        inputs: Any = None
        if not m.skip_input_parsing:
            try:
                inputs = codec.decode_body(body, content_type, m.input_type)
            except codec.InputError as e:
                raise errors.InvalidArgument(str(e)) from e
        if m.preprocess is not None:
            if phases is not None:
                phases.start("preprocess")
            inputs = await _call(m.preprocess, inputs, request)
            if phases is not None:
                phases.end("preprocess")

        await self._slots.acquire()
        if phases is not None:
            phases.start("predict")
        try:
            result = await _call(m.predict, inputs, request)
        except BaseException:
            self._slots.release()
            raise
        if not (inspect.isgenerator(result) or inspect.isasyncgen(result)):
            self._slots.release()
            if phases is not None:
                phases.end("predict")
            if m.postprocess is not None:
                if phases is not None:
                    phases.start("postprocess")
                result = await _call(m.postprocess, result, request)
                if phases is not None:
                    phases.end("postprocess")
            return self._encode(result, binary)

        stream = ChunkStream(result, self._read_timeout, self._slots.release)
        if m.postprocess is not None:
            await stream.aclose()
            log.error("`postprocess` cannot be used with a `predict` that streams (returns a generator)")
            raise errors.ModelError(MODEL_ERROR_MESSAGE)
        if wants_gathered_stream(request):
            try:
                chunks = [chunk async for chunk in stream]
            finally:
                await stream.aclose()
            if phases is not None:
                phases.end("predict")
            return self._encode(codec.join_chunks(chunks), binary)
        return stream

    async def run_method(self, method: Method, body: bytes, content_type: str, request: ModelRequest
                         ) -> Reply | ChunkStream:
        """One of the model's OpenAI-style methods (`chat_completions`, ...): the body decoded as for
        predict, no pre/postprocess, outside predict's concurrency slots (as truss runs them)."""
        inputs: Any = None
        if method.args is not ArgMode.REQUEST:
            try:
                inputs = codec.decode_body(body, content_type, method.input_type)
            except codec.InputError as e:
                raise errors.InvalidArgument(str(e)) from e
        result = await _call(method, inputs, request)
        if inspect.isgenerator(result) or inspect.isasyncgen(result):
            return ChunkStream(result, self._read_timeout, lambda: None)
        return self._encode(result, codec.is_binary(content_type))

    @staticmethod
    def _encode(result: Any, binary: bool) -> Reply:
        try:
            body, content_type = codec.encode_result(result, binary)
        except Exception as e:
            log.error("Cannot serialize the model's result", exc_info=e)
            raise errors.ModelError(MODEL_ERROR_MESSAGE) from e
        return Reply(body, content_type)

    async def is_healthy(self) -> bool:
        check = self.methods.is_healthy
        if check is None:
            return True
        try:
            if inspect.iscoroutinefunction(check):
                return bool(await check())
            return bool(await anyio.to_thread.run_sync(check))
        except Exception:
            log.exception("is_healthy raised")
            return False

