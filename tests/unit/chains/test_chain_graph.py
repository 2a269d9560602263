"""A chain file's rules, checked before anything is built: one entrypoint, no cycles, typed (No `from __future__ import annotations`: Chains need real types.)
run_remote with sendable types, dependencies only through depends(), unique names. Each error
names the Chainlet and its file:line."""

import pathlib

import pydantic
import pytest

import kingpost.chains as chains
from kingpost.chains.codegen import model_name
from kingpost.chains.graph import ChainValidationError, build_graph


class Leaf(chains.ChainletBase):
    async def run_remote(self, x: int) -> int:
        return x


class Middle(chains.ChainletBase):
    def __init__(self, leaf: Leaf = chains.depends(Leaf, retries=2), context=chains.depends_context()) -> None:
        self.leaf = leaf

    async def run_remote(self, xs: list[int]) -> dict[str, int]:
        return {}


class Entry(chains.ChainletBase):
    def __init__(self, middle: Middle = chains.depends(Middle), leaf: Leaf = chains.depends(Leaf)) -> None:
        pass

    async def run_remote(self, text: str, n: int = 3) -> tuple[str, int]:
        return text, n


chains.mark_entrypoint("My-Chain")(Entry)


def test_orders_dependencies_before_callers_and_names_the_chain():
    graph = build_graph([Leaf, Middle, Entry])
    assert graph.name == "My-Chain"
    assert graph.entrypoint == "Entry"
    names = [c.name for c in graph.chainlets]
    assert names.index("Leaf") < names.index("Middle") < names.index("Entry")
    middle = graph.by_name("Middle")
    assert middle.dependencies[0][:2] == ("leaf", "Leaf")
    assert middle.dependencies[0][2].retries == 2
    assert middle.takes_context


def test_no_entrypoint_is_refused_naming_the_chainlets():
    with pytest.raises(ChainValidationError, match=r"no entrypoint.*Leaf"):
        build_graph([Leaf], source="chain.py")


def test_two_entrypoints_are_refused_naming_both_with_lines():
    @chains.mark_entrypoint
    class A(chains.ChainletBase):
        async def run_remote(self) -> None:
            return None

    @chains.mark_entrypoint
    class B(chains.ChainletBase):
        async def run_remote(self) -> None:
            return None

    with pytest.raises(ChainValidationError) as info:
        build_graph([A, B])
    message = str(info.value)
    assert "2 entrypoints" in message and "`A`" in message and "`B`" in message
    assert "test_chain_graph.py:" in message


def test_a_cycle_is_refused_naming_its_path():
    class X(chains.ChainletBase):
        async def run_remote(self) -> int:
            return 1

    class Y(chains.ChainletBase):
        def __init__(self, x: X = chains.depends(X)) -> None:
            pass

        async def run_remote(self) -> int:
            return 1

    # Close the loop after the fact, as a module-level forward reference would.
    def x_init(self, y: Y = chains.depends(Y)) -> None:
        pass

    X.__init__ = x_init
    chains.mark_entrypoint(Y)
    with pytest.raises(ChainValidationError, match=r"dependency cycle: (X -> Y -> X|Y -> X -> Y)"):
        build_graph([X, Y])


def test_untyped_and_unsendable_run_remote_are_refused_naming_the_parameter():
    class Opaque:
        pass

    @chains.mark_entrypoint
    class Bad(chains.ChainletBase):
        async def run_remote(self, a, b: Opaque) -> int:  # noqa: ANN001
            return 1

    with pytest.raises(ChainValidationError) as info:
        build_graph([Bad])
    assert "parameter `a` of `Bad.run_remote` has no type annotation" in str(info.value)
    assert "Bad` (" in str(info.value)


def test_unsendable_type_and_missing_return_are_named():
    class Opaque:
        pass

    @chains.mark_entrypoint
    class Bad(chains.ChainletBase):
        async def run_remote(self, b: Opaque):
            return 1

    with pytest.raises(ChainValidationError, match=r"parameter `b` of `Bad.run_remote` has type .*Opaque"):
        build_graph([Bad])


def test_init_parameters_must_be_dependencies_or_context():
    @chains.mark_entrypoint
    class Bad(chains.ChainletBase):
        def __init__(self, size: int = 3) -> None:
            pass

        async def run_remote(self) -> int:
            return 1

    with pytest.raises(ChainValidationError, match=r"`__init__` parameter `size` is neither a dependency"):
        build_graph([Bad])


def test_pydantic_and_nested_types_are_allowed():
    class Item(pydantic.BaseModel):
        name: str

    @chains.mark_entrypoint
    class Good(chains.ChainletBase):
        async def run_remote(self, items: list[Item], extra: dict[str, float] | None = None) -> list[Item]:
            return items

    endpoint = build_graph([Good]).by_name("Good").endpoint
    assert endpoint.parse_input({"items": [{"name": "a"}]}) == {"items": [Item(name="a")]}
    assert endpoint.dump_output([Item(name="b")]) == [{"name": "b"}]


def test_chainlets_cannot_be_instantiated_outside_run_local():
    with pytest.raises(chains.ChainsUsageError, match="cannot be instantiated directly"):
        Middle()


def test_run_local_injects_dependencies_and_accepts_mocks():
    class FakeLeaf:
        async def run_remote(self, x: int) -> int:
            return -x

    with chains.run_local(secrets={"s": "v"}):
        middle = Middle(leaf=FakeLeaf())
        assert isinstance(middle.leaf, FakeLeaf)
        entry = Entry()
        assert isinstance(entry, Entry)


def test_model_names_put_the_entrypoint_at_the_chain_name():
    assert model_name("poems", "Entry", True) == "poems"
    assert model_name("poems", "Phi", False) == "poems.Phi"


def test_numpy_fields_travel_as_truss_json_and_back_bit_exact():
    import numpy as np

    @chains.mark_entrypoint
    class Arrays(chains.ChainletBase):
        async def run_remote(self, a: chains.NumpyArrayField) -> chains.NumpyArrayField:
            return a

    endpoint = build_graph([Arrays]).by_name("Arrays").endpoint
    array = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    wire = endpoint.dump_input({"a": chains.NumpyArrayField(array)})
    assert set(wire["a"]) == {"data_b64", "shape", "dtype"} and wire["a"]["shape"] == [2, 3]
    back = endpoint.parse_input(wire)["a"].array
    assert back.dtype == array.dtype and np.array_equal(back, array)
    assert endpoint.dump_input({"a": array}, mode="python")["a"] is array  # msgpack (use_binary) gets the array


def test_a_chainlets_compute_maps_to_the_smallest_instance_type_through_its_truss_config():
    import yaml

    from kingpost.chains.codegen import chainlet_config
    from kingpost.errors import InvalidArgument
    from kingpost_builder.truss_config import instance_type, parse_truss_config

    def config_of(compute: chains.Compute) -> str:
        class Gpu(chains.ChainletBase):
            remote_config = chains.RemoteConfig(compute=compute)

            async def run_remote(self) -> None:
                return None

        chains.mark_entrypoint("Gpu-Chain")(Gpu)
        graph = build_graph([Gpu])
        return yaml.safe_dump(chainlet_config(graph, graph.by_name("Gpu"), "m", router="r", api_key="k", services={}))

    parsed = parse_truss_config(config_of(chains.Compute(cpu_count=4, memory="16Gi", gpu="A10G")))
    assert instance_type(parsed.config, parsed.raw).name == "A10Gx4x16"
    parsed = parse_truss_config(config_of(chains.Compute(gpu="H100", gpu_count=2, instance_type="H100:2x52x468")))
    assert instance_type(parsed.config, parsed.raw).name == "H100:2x52x468"
    with pytest.raises(InvalidArgument, match=r"resources.accelerator 'T4:2': no instance type offers it"):
        parse_truss_config(config_of(chains.Compute(gpu="T4", gpu_count=2)))


def test_a_chainlets_requirements_files_join_its_pip_requirements(tmp_path: pathlib.Path):
    from kingpost.chains.codegen import chainlet_config

    (tmp_path / "requirements.txt").write_text("# pinned\nnumpy>=1.26\n\n  rich  \n")
    (tmp_path / "more.txt").write_text("httpx\n")

    def config_of(image: chains.DockerImage) -> dict:
        class Reqs(chains.ChainletBase):
            remote_config = chains.RemoteConfig(docker_image=image)

            async def run_remote(self) -> None:
                return None

        chains.mark_entrypoint("Reqs-Chain")(Reqs)
        graph = build_graph([Reqs])
        return chainlet_config(graph, graph.by_name("Reqs"), "m", router="r", api_key="k", services={},
                               chain_root=tmp_path)

    image = chains.DockerImage(pip_requirements=["pydantic>=2"],
                               pip_requirements_file=str(tmp_path / "requirements.txt"), requirements_file="more.txt")
    assert config_of(image)["requirements"] == ["pydantic>=2", "numpy>=1.26", "rich", "httpx"]
    with pytest.raises(ChainValidationError, match=r"`Reqs`: its DockerImage names the requirements file "
                                                   r".*missing.txt, which cannot be read \(No such file"):
        config_of(chains.DockerImage(requirements_file="missing.txt"))
