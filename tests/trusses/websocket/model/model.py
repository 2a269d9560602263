"""A Truss that serves a websocket (and no predict), written as for truss-server: Starlette's `ws` API.

Text is echoed, bytes are echoed, `json` makes the next message read and answered as JSON, `raise`
makes the model fail (1011), `bye` makes it return (1000).
"""


class Model:
    async def websocket(self, ws):
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is None:
                await ws.send_bytes(message["bytes"])
                continue
            text = message["text"]
            if text == "raise":
                raise ValueError("This is test error.")
            if text == "bye":
                return
            if text == "json":
                await ws.send_json({"echo": await ws.receive_json()})
                continue
            await ws.send_text(text)
