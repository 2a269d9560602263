"""A chain file written for Truss (`import truss_chains as chains`) loads and runs unchanged: the docs'
Hello World, checked, and run locally with a mock as the docs' FakePhiLLM example does."""

import asyncio
from pathlib import Path

import truss_chains

import kingpost.chains
from kingpost.chains.loading import load_chain

HELLO = Path(__file__).resolve().parents[2] / "chains" / "hello.py"


def test_truss_chains_is_kingpost_chains():
    assert truss_chains.ChainletBase is kingpost.chains.ChainletBase
    assert truss_chains.depends is kingpost.chains.depends
    from truss_chains.pydantic_numpy import NumpyArrayField
    assert NumpyArrayField is kingpost.chains.NumpyArrayField


def test_the_docs_hello_world_loads_checks_and_runs_locally_with_a_mock():
    module, graph = load_chain(HELLO)
    assert (graph.name, [c.name for c in graph.chainlets]) == ("HelloWorld", ["RandInt", "HelloWorld"])
    assert graph.by_name("HelloWorld").dependencies[0][2].retries == 3

    class FakeRandInt(truss_chains.ChainletBase):
        async def run_remote(self, max_value: int) -> int:
            return 2

    with truss_chains.run_local():
        assert asyncio.run(module.HelloWorld(rand_int=FakeRandInt()).run_remote(10)) == "Hello World! " * 2
        real = asyncio.run(module.HelloWorld().run_remote(1))
    assert real == "Hello World! "
