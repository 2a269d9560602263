"""The chain bench/chain_hop.py measures: `Caller` times its calls to `Leaf`, made the way a Chainlet
makes them (the stub, through the router), and the same body sent straight to Leaf's runner."""

import time

import truss_chains as chains


class Leaf(chains.ChainletBase):
    remote_config = chains.RemoteConfig(compute=chains.Compute(predict_concurrency=32))

    async def run_remote(self, x: int) -> int:
        return x


@chains.mark_entrypoint("hop-bench")
class Caller(chains.ChainletBase):
    remote_config = chains.RemoteConfig(compute=chains.Compute(predict_concurrency=32))

    def __init__(self, leaf: Leaf = chains.depends(Leaf), context=chains.depends_context()) -> None:
        self._leaf = leaf
        self._context = context

    async def run_remote(self, n: int, runner_address: str, alt_address: str = "",
                         blocks: int = 10) -> dict[str, list[float]]:
        import grpc
        from google.api import httpbody_pb2

        from kingpost.chains.signatures import read_endpoint
        from kingpost.chains.stub import make_stub
        from kingpost.v1 import runner_pb2, runner_pb2_grpc

        # The same stub pointed elsewhere (the bench: Envoy's gRPC port, the address the chain was pushed to).
        alt = make_stub(self._context.get_service_descriptor("Leaf"), read_endpoint(Leaf),
                        alt_address, self._context.get_baseten_api_key()) if alt_address else None

        channel = grpc.aio.insecure_channel(runner_address)
        runner = runner_pb2_grpc.RunnerServiceStub(channel)
        direct_request = runner_pb2.RunnerPredictRequest(
            body=httpbody_pb2.HttpBody(content_type="application/json", data=b'{"x": 1}'))

        async def direct() -> None:
            async for _ in runner.Predict(direct_request):
                pass

        async def hop() -> None:
            await self._leaf.run_remote(1)

        async def alt_hop() -> None:
            await alt.run_remote(1)

        paths = {"direct": direct, "chain": hop}
        if alt is not None:
            paths["alt"] = alt_hop
        out: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(50):  # warm every path
            for call in paths.values():
                await call()
        for _ in range(blocks):  # interleaved blocks: every path sees the same machine
            for name, call in paths.items():
                for _ in range(max(1, n // blocks)):
                    start = time.perf_counter()
                    await call()
                    out[name].append((time.perf_counter() - start) * 1000)
        await channel.close()
        return out
