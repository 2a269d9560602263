import asyncio


class Model:
    async def predict(self, model_input):
        await asyncio.sleep(float(model_input.get("sleep", 0.2)))
        return model_input
