"""What this node is: a stable id, CPUs, memory and GPUs. Parsers are pure; readers touch only files."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kingpost.errors import InvalidArgument
from kingpost.ids import new_id

# Memory of a GPU we only pretend to have: sizes of the real cards, in MiB, else 16 GiB.
_FAKE_GPU_MIB = {"T4": 15360, "L4": 23034, "A10G": 23028, "V100": 16384, "A100": 81920, "A100_40GB": 40960,
                 "H100": 81559, "H100_40GB": 40960, "H200": 143771, "B200": 183359, "L40S": 46068}


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_bytes: int


@dataclass(frozen=True)
class NodeFacts:
    node_id: str
    cpu_count: int
    memory_bytes: int
    gpus: tuple[Gpu, ...]
    name: str = ""
    labels: tuple[tuple[str, str], ...] = ()


def parse_nvidia_smi(text: str) -> tuple[Gpu, ...]:
    """`nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits` → GPUs (memory in MiB)."""
    gpus = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, memory = line.rpartition(",")
        if not sep:
            raise InvalidArgument(f"nvidia-smi line {line!r} is not 'name, memory'")
        try:
            mib = int(float(memory.strip()))
        except ValueError:
            raise InvalidArgument(
                f"nvidia-smi line {line!r}: memory {memory.strip()!r} is not a number") from None
        gpus.append(Gpu(name=name.strip(), memory_bytes=mib * 1024 * 1024))
    return tuple(gpus)


def parse_fake_gpus(spec: str) -> tuple[Gpu, ...]:
    """`"H100:2,T4"` → two H100s and one T4."""
    gpus = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, count = part.partition(":")
        try:
            n = int(count) if count else 1
        except ValueError:
            raise InvalidArgument(
                f"fake_gpus = {spec!r}: count {count!r} of {name!r} is not a number") from None
        if n < 0:
            raise InvalidArgument(f"fake_gpus = {spec!r}: count of {name!r} must be >= 0")
        mib = _FAKE_GPU_MIB.get(name.upper(), 16384)
        gpus.extend(Gpu(name=name, memory_bytes=mib * 1024 * 1024) for _ in range(n))
    return tuple(gpus)


def parse_meminfo(text: str) -> int:
    """/proc/meminfo → MemTotal in bytes (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            fields = line.split()
            return int(fields[1]) * 1024 if len(fields) >= 2 else 0
    return 0


def memory_bytes() -> int:
    try:
        return parse_meminfo(Path("/proc/meminfo").read_text())
    except OSError:
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            return 0


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def nvml_gpus() -> tuple[Gpu, ...] | None:
    """The GPUs NVML sees, by index (None when NVML is not installed or finds no driver)."""
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total
            gpus.append(Gpu(name=name.decode() if isinstance(name, bytes) else str(name), memory_bytes=int(memory)))
        return tuple(gpus)
    except pynvml.NVMLError:
        return None
    finally:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()


def detect_gpus(fake_gpus: str = "") -> tuple[Gpu, ...]:
    """Declared GPUs (`fake_gpus`: tests, dev machines), else NVML's, else nvidia-smi's, else none."""
    if fake_gpus:
        return parse_fake_gpus(fake_gpus)
    found = nvml_gpus()
    if found is not None:
        return found
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return ()
    try:
        result = subprocess.run(
            [binary, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=20, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return ()  # a driver that does not answer means no usable GPU
    return parse_nvidia_smi(result.stdout)


def node_id(work_dir: Path) -> str:
    """The id stored in `<work_dir>/node_id`, made once: a node keeps its id across restarts."""
    path = work_dir / "node_id"
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    work_dir.mkdir(parents=True, exist_ok=True)
    made = new_id("node")
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(made + "\n")
    os.replace(tmp, path)
    return made


def node_facts(work_dir: Path, fake_gpus: str = "", name: str = "",
               labels: dict[str, str] | None = None) -> NodeFacts:
    return NodeFacts(node_id=node_id(work_dir), cpu_count=cpu_count(), memory_bytes=memory_bytes(),
                     gpus=detect_gpus(fake_gpus), name=name or socket.gethostname(),
                     labels=tuple(sorted((labels or {}).items())))
