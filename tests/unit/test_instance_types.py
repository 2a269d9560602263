"""A Truss's resources map to the smallest instance type of the catalog that meets them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kingpost.errors import InvalidArgument
from kingpost.instance_types import CATALOG, GIB, Request, meets, request_of, smallest_fit


@pytest.mark.parametrize(("resources", "expected"), [
    (("1", "2Gi", None), "1x2"),  # truss's defaults
    (("3", "2Gi", None), "4x16"),  # cpu "3" or "4" → a 4-core instance, as the reference says
    (("5", "2Gi", None), "8x32"),
    (("500m", "3Gi", None), "1x4"),
    (("4", "16Gi", "A10G"), "A10Gx4x16"),  # the reference's SDXL example
    (("1", "2Gi", "H100:2"), "H100:2x52x468"),
    (("1", "2Gi", "H100:3"), "H100:4x104x936"),  # no 3-GPU H100: the next one up
    (("1", "2Gi", "T4"), "T4x4x16"),
    (("10", "2Gi", "T4"), "T4x16x64"),
])
def test_resources_map_to_the_smallest_instance_type_that_meets_them(resources, expected) -> None:
    cpu, memory, accelerator = resources
    assert smallest_fit(request_of(cpu, memory, accelerator)).name == expected


def test_use_gpu_without_an_accelerator_gets_the_cheapest_gpu_type() -> None:
    assert smallest_fit(Request(use_gpu=True)).name == "T4x4x16"


def test_an_accelerator_no_type_offers_names_the_value_and_the_choices() -> None:
    with pytest.raises(InvalidArgument, match=r"resources.accelerator 'Z100:3'.*the choices: T4:1, .*H100:8"):
        smallest_fit(request_of("1", "2Gi", "Z100:3"))
    with pytest.raises(InvalidArgument, match=r"resources.accelerator 'T4:2'.*the choices"):
        smallest_fit(request_of("1", "2Gi", "T4:2"))


def test_too_much_cpu_names_the_largest_types() -> None:
    with pytest.raises(InvalidArgument, match=r"cpu 64, memory 2Gi; the largest: 16x64 \(16 vCPU, 64 GiB\)"):
        smallest_fit(request_of("64", "2Gi", None))


def test_a_named_instance_type_must_be_in_the_catalog_and_meet_the_rest() -> None:
    assert smallest_fit(request_of("1", "2Gi", None, instance_type="8x32")).name == "8x32"
    with pytest.raises(InvalidArgument, match=r"instance_type 'L4x99'.*the choices: 1x2, 1x4"):
        smallest_fit(request_of("1", "2Gi", None, instance_type="L4x99"))
    with pytest.raises(InvalidArgument, match=r"instance_type '1x2' does not meet .*accelerator H100"):
        smallest_fit(request_of("1", "2Gi", "H100", instance_type="1x2"))


def test_the_catalog_is_the_reference_table() -> None:
    names = [t.name for t in CATALOG]
    assert len(names) == len(set(names)) == 32
    h100 = {t.name: t for t in CATALOG}["H100:8x208x1872"]
    assert (h100.vcpus, h100.memory_gib, h100.gpu_count, h100.vram_gib, h100.usd_per_minute) == (208, 1872, 8, 640, 1.3312)


requests = st.builds(
    Request,
    cpu_millis=st.integers(1, 220_000), memory_bytes=st.integers(1, 2000 * GIB),
    gpu_type=st.sampled_from(["", "T4", "L4", "A10G", "V100", "A100", "H100", "H100MIG", "Z100"]),
    gpu_count=st.integers(0, 9), use_gpu=st.booleans())


@given(requests)
def test_the_chosen_type_meets_the_request_and_no_cheaper_one_does(r: Request) -> None:
    fitting = [t for t in CATALOG if meets(t, r)]
    try:
        chosen = smallest_fit(r)
    except InvalidArgument:
        assert not fitting
        return
    assert meets(chosen, r)
    assert all(t.usd_per_minute >= chosen.usd_per_minute for t in fitting)
    if r.gpu_type:
        assert chosen.gpu_type == r.gpu_type and chosen.gpu_count >= r.gpu_count
    assert chosen.vcpus * 1000 >= r.cpu_millis and chosen.memory_gib * GIB >= r.memory_bytes


def test_truss_spelling_of_a_one_gpu_type_names_the_catalog_type() -> None:
    assert smallest_fit(request_of("1", "2Gi", None, instance_type="L4:4x16")).name == "L4x4x16"
