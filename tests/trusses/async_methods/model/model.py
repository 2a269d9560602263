import asyncio
from typing import Any, Dict


class Model:
    def __init__(self, **kwargs) -> None:
        self._loaded = False

    def load(self):
        self._loaded = True

    async def preprocess(self, model_input: Dict):
        await asyncio.sleep(0)
        return {"preprocess_value": "value", **model_input}

    async def predict(self, model_input: Any) -> Dict:
        await asyncio.sleep(0)
        return {"loaded": self._loaded, **model_input}

    async def postprocess(self, response: Dict):
        return {"postprocess_value": "value", **response}
