from pathlib import Path

import pytest

from kingpost.errors import InvalidArgument
from kingpost_worker_agent.node import Gpu, node_facts, node_id, parse_fake_gpus, parse_meminfo, parse_nvidia_smi

MIB = 1024 * 1024


def test_nvidia_smi_csv_gives_each_gpu_with_its_memory_in_bytes() -> None:
    text = "NVIDIA H100 80GB HBM3, 81559\nNVIDIA H100 80GB HBM3, 81559\n\n"
    assert parse_nvidia_smi(text) == (Gpu("NVIDIA H100 80GB HBM3", 81559 * MIB),) * 2


def test_nvidia_smi_name_with_a_comma_keeps_the_whole_name() -> None:
    assert parse_nvidia_smi("Tesla T4, rev 2, 15360") == (Gpu("Tesla T4, rev 2", 15360 * MIB),)


def test_nvidia_smi_no_gpus_is_an_empty_tuple() -> None:
    assert parse_nvidia_smi("") == ()


@pytest.mark.parametrize("line", ["NVIDIA A10G", "NVIDIA A10G, [N/A]"])
def test_nvidia_smi_garbage_is_reported_with_the_line(line: str) -> None:
    with pytest.raises(InvalidArgument, match="nvidia-smi line"):
        parse_nvidia_smi(line)


def test_fake_gpus_pretend_the_named_cards() -> None:
    gpus = parse_fake_gpus("H100:2, T4")
    assert [g.name for g in gpus] == ["H100", "H100", "T4"]
    assert gpus[0].memory_bytes == 81559 * MIB and gpus[2].memory_bytes == 15360 * MIB


def test_fake_gpus_bad_count_names_the_setting() -> None:
    with pytest.raises(InvalidArgument, match="fake_gpus"):
        parse_fake_gpus("H100:two")


def test_meminfo_total_in_bytes() -> None:
    assert parse_meminfo("MemTotal:       16384 kB\nMemFree:  1 kB\n") == 16384 * 1024
    assert parse_meminfo("nothing") == 0


def test_node_id_is_made_once_and_kept(tmp_path: Path) -> None:
    first = node_id(tmp_path / "agent")
    assert first.startswith("node_")
    assert node_id(tmp_path / "agent") == first
    assert (tmp_path / "agent" / "node_id").read_text().strip() == first


def test_node_facts_with_fake_gpus(tmp_path: Path) -> None:
    facts = node_facts(tmp_path, "A10G:1")
    assert facts.cpu_count >= 1 and facts.memory_bytes > 0
    assert [g.name for g in facts.gpus] == ["A10G"]
