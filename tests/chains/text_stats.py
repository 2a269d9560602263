"""Three Chainlets: the entrypoint calls `Shout` once per word (in a loop) and `Count` once.
`Shout` raises ValueError on the word "boom"; the entrypoint catches it when asked to."""

import pydantic

import truss_chains as chains


class Stats(pydantic.BaseModel):
    words: int
    shouted: list[str]


class Shout(chains.ChainletBase):
    remote_config = chains.RemoteConfig(compute=chains.Compute(cpu_count=1, memory="1Gi"))

    async def run_remote(self, word: str) -> str:
        if word == "boom":
            raise ValueError(f"cannot shout {word!r}")
        return word.upper()


class Count(chains.ChainletBase):
    def run_remote(self, text: str) -> int:
        return len(text.split())


@chains.mark_entrypoint("text-stats")
class TextStats(chains.ChainletBase):
    def __init__(self, shout: Shout = chains.depends(Shout, retries=2),
                 count: Count = chains.depends(Count)) -> None:
        self._shout = shout
        self._count = count

    async def run_remote(self, text: str, catch: bool = False) -> Stats:
        shouted = []
        for word in text.split():
            try:
                shouted.append(await self._shout.run_remote(word))
            except ValueError as e:
                if not catch:
                    raise
                shouted.append(f"caught ValueError: {str(e).splitlines()[-1]}")
        return Stats(words=self._count.run_remote(text=text), shouted=shouted)
