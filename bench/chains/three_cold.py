"""bench/chain_cold_start.py's chain: an entrypoint that calls two no-op dependencies."""

import truss_chains as chains


class Left(chains.ChainletBase):
    async def run_remote(self, x: int) -> int:
        return x


class Right(chains.ChainletBase):
    async def run_remote(self, x: int) -> int:
        return -x


@chains.mark_entrypoint("three-cold")
class Both(chains.ChainletBase):
    def __init__(self, left: Left = chains.depends(Left), right: Right = chains.depends(Right)) -> None:
        self._left, self._right = left, right

    async def run_remote(self, x: int) -> list[int]:
        return [await self._left.run_remote(x), await self._right.run_remote(x)]
