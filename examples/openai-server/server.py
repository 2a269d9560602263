"""A tiny OpenAI-compatible chat server in plain asyncio (standard library only): it "generates" by
echoing the last user message back word by word, streamed as Server-Sent Events when asked.

    python server.py --port 8000
    GET  /health                 -> {"status": "ok"}
    GET  /v1/models              -> the one model, "echo"
    POST /v1/chat/completions    -> a chat completion; {"stream": true} streams chunks then [DONE]

Stand-in for vLLM, SGLang or TGI: swap start_command for theirs and keep the rest of config.yaml.
`--token-delay S` spaces the streamed tokens (default 0.02 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

MODEL = "echo"


def completion_text(body: dict) -> str:
    messages = body.get("messages") or []
    last = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "") or ""
    return f"You said: {last}" if isinstance(last, str) else "You said something."


def chunk(cid: str, created: int, delta: dict, finish: str | None = None) -> bytes:
    data = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(data).encode() + b"\n\n"


async def respond(writer: asyncio.StreamWriter, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    writer.write(b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
                 % (status, b"OK" if status == 200 else b"Error", len(data)) + data)
    await writer.drain()


async def stream(writer: asyncio.StreamWriter, text: str, delay: float) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
                 b"transfer-encoding: chunked\r\n\r\n")
    cid, created = f"chatcmpl-{uuid.uuid4().hex[:12]}", int(time.time())
    pieces = [chunk(cid, created, {"role": "assistant", "content": ""})]
    pieces += [chunk(cid, created, {"content": (" " if i else "") + word}) for i, word in enumerate(text.split())]
    pieces += [chunk(cid, created, {}, "stop"), b"data: [DONE]\n\n"]
    for piece in pieces:
        writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        await writer.drain()
        await asyncio.sleep(delay)
    writer.write(b"0\r\n\r\n")
    await writer.drain()


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    try:
        while request_line := await reader.readline():
            method, path, _ = request_line.decode("latin-1").split(" ", 2)
            headers = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length") or 0))
            path = path.split("?", 1)[0]
            if method == "GET" and path == "/health":
                await respond(writer, 200, {"status": "ok"})
            elif method == "GET" and path == "/v1/models":
                await respond(writer, 200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
            elif method == "POST" and path == "/v1/chat/completions":
                try:
                    request = json.loads(body or b"{}")
                except ValueError:
                    await respond(writer, 400, {"error": {"message": "the body is not JSON"}})
                    continue
                text = completion_text(request)
                if request.get("stream"):
                    await stream(writer, text, delay)
                else:
                    words = len(text.split())
                    await respond(writer, 200, {
                        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion",
                        "created": int(time.time()), "model": MODEL,
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": text}}],
                        "usage": {"prompt_tokens": words, "completion_tokens": words, "total_tokens": 2 * words}})
            else:
                await respond(writer, 404, {"error": {"message": f"no route {method} {path}"}})
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--token-delay", type=float, default=0.02)
    args = parser.parse_args()
    server = await asyncio.start_server(lambda r, w: handle(r, w, args.token_delay), args.host, args.port)
    print(f"openai-server listening on {args.host}:{args.port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
