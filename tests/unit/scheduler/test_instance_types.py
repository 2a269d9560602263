"""Instance types read off the nodes, named as Baseten names its own."""

from __future__ import annotations

from kingpost_scheduler.instance_types import NO_NODE, catalog, default

GIB = 1024 ** 3


def test_each_node_shape_is_one_instance_type_smallest_first() -> None:
    types = catalog([(4, 16 * GIB, []), (2, 8 * GIB, []), (4, 16 * GIB, []),
                     (16, 128 * GIB, [{"name": "H100", "memory_bytes": 80 * GIB}] * 2)])
    assert [t.name for t in types] == ["2x8", "4x16", "2xH100:16x128"]
    gpu = types[-1]
    assert (gpu.gpu_count, gpu.gpu_type, gpu.gpu_memory_limit_mib, gpu.millicpu_limit) == (2, "H100", 81920, 16000)
    assert default(types).name == "2x8"
    assert default([]) is NO_NODE
