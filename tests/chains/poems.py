"""The docs' poem chain (Getting started, "Poetry with LLMs"), its entrypoint as written there, with a
CPU stand-in for the Phi-3 Chainlet.

The stand-in proves the entrypoint's calls overlap: each call waits (up to a minute) until as many
calls as there are words in flight are running at once — `EXPECTED_CONCURRENT`, three, as the docs'
example sends — and its poem says how many were in flight together at the most."""

import asyncio
from typing import List

import pydantic

import truss_chains as chains

EXPECTED_CONCURRENT = 3


class Messages(pydantic.BaseModel):
    messages: List[dict[str, str]]


class PhiLLM(chains.ChainletBase):
    # The real one: gpu="T4" and transformers; this stand-in runs three calls at once on one CPU replica.
    remote_config = chains.RemoteConfig(compute=chains.Compute(cpu_count=1, memory="1Gi", predict_concurrency=3))

    def __init__(self) -> None:
        self._in_flight = 0
        self._peak = 0
        self._all_in = asyncio.Event()

    async def run_remote(self, messages: Messages) -> str:
        word = messages.messages[-1]["content"].split(" ")[-1]
        self._in_flight += 1
        self._peak = max(self._peak, self._in_flight)
        if self._in_flight >= EXPECTED_CONCURRENT:
            self._all_in.set()
        try:
            await asyncio.wait_for(self._all_in.wait(), timeout=60)
        except TimeoutError:
            pass
        finally:
            self._in_flight -= 1
        return f"A poem about {word} (written with {self._peak} at once)"


@chains.mark_entrypoint
class PoemGenerator(chains.ChainletBase):
    def __init__(self, phi_llm: PhiLLM = chains.depends(PhiLLM)) -> None:
        self._phi_llm = phi_llm

    async def run_remote(self, words: list[str]) -> list[str]:
        tasks = []
        for word in words:
            messages = Messages(
                messages=[
                    {
                        "role": "system",
                        "content": (
                            "You are poet who writes short, "
                            "lighthearted, amusing poetry."
                        ),
                    },
                    {"role": "user", "content": f"Write a poem about {word}"},
                ]
            )
            tasks.append(asyncio.ensure_future(self._phi_llm.run_remote(messages)))
            await asyncio.sleep(0)  # Yield to event loop, to allow starting tasks.
        return list(await asyncio.gather(*tasks))
