import asyncio
from typing import Any


class Model:
    async def predict(self, model_input: Any):
        for i in range(5):
            if model_input.get("stall_after") == i:
                await asyncio.sleep(5)
            if model_input.get("fail_after") == i:
                raise RuntimeError("stream broke")
            yield f"chunk-{i};"
