"""The instance-type catalog (reference/baseten-docs.md, "Instance Type Reference") and the
smallest type that meets a Truss's `resources`.

Pure: no I/O. "Smallest" is cheapest per minute, as Baseten provisions "the smallest instance that
meets the specified constraints" (cpu "3" or "4" → a 4-core instance).

    smallest_fit(Request(cpu_millis=4000, memory_bytes=16 * GIB, gpu_type="A10G", gpu_count=1))
    # → InstanceType("A10Gx4x16", ...); InvalidArgument naming the value and the choices if none does
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from kingpost.errors import InvalidArgument

GIB = 2**30


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_gib: int
    gpu_type: str = ""  # "" for CPU-only
    gpu_count: int = 0
    vram_gib: int = 0  # across all its GPUs
    usd_per_minute: float = 0.0


@dataclass(frozen=True)
class Request:
    """What a Truss asks for. `gpu_type` "" with `use_gpu` means any GPU; `instance_type` names one."""
    cpu_millis: int = 1000
    memory_bytes: int = 2 * GIB
    gpu_type: str = ""
    gpu_count: int = 0
    use_gpu: bool = False
    instance_type: str = ""


def _t(name: str, price: float, vcpus: int, memory_gib: int, gpu: str = "", count: int = 0,
       vram: int = 0) -> InstanceType:
    return InstanceType(name, vcpus, memory_gib, gpu, count, vram, price)


# The table as the reference lists it (vCPU and RAM as given, even where a name says otherwise).
CATALOG: tuple[InstanceType, ...] = (
    _t("1x2", 0.00058, 1, 2), _t("1x4", 0.00086, 1, 4), _t("2x8", 0.00173, 2, 8),
    _t("4x16", 0.00346, 4, 16), _t("8x32", 0.00691, 8, 32), _t("16x64", 0.01382, 16, 64),
    _t("T4x4x16", 0.01052, 4, 16, "T4", 1, 16), _t("T4x8x32", 0.01504, 8, 32, "T4", 1, 16),
    _t("T4x16x64", 0.02408, 16, 64, "T4", 1, 16),
    _t("L4x4x16", 0.01414, 4, 16, "L4", 1, 24), _t("L4:2x4x16", 0.04002, 24, 96, "L4", 2, 48),
    _t("L4:4x48x192", 0.08003, 48, 192, "L4", 4, 96),
    _t("A10Gx4x16", 0.02012, 4, 16, "A10G", 1, 24), _t("A10Gx8x32", 0.02424, 8, 32, "A10G", 1, 24),
    _t("A10Gx16x64", 0.03248, 16, 64, "A10G", 1, 24), _t("A10G:2x24x96", 0.05672, 24, 96, "A10G", 2, 48),
    _t("A10G:4x48x192", 0.11344, 48, 192, "A10G", 4, 96),
    _t("A10G:8x192x768", 0.32576, 192, 768, "A10G", 8, 188),
    _t("V100x8x61", 0.06120, 16, 61, "V100", 1, 16),
    *(_t(f"A100{f':{n}' if n > 1 else ''}x{12 * n}x{144 * n}", round(0.10240 * n, 5), 12 * n, 144 * n,
         "A100", n, 80 * n) for n in range(1, 9)),
    *(_t(f"H100{f':{n}' if n > 1 else ''}x{26 * n}x{234 * n}", round(0.16640 * n, 5), 26 * n, 234 * n,
         "H100", n, 80 * n) for n in (1, 2, 4, 8)),
    _t("H100MIG:3gx13x117", 0.08250, 13, 117, "H100MIG", 1, 40),
)


def meets(t: InstanceType, r: Request) -> bool:
    """`t` has at least the CPUs, memory and GPUs of the kind `r` asks for (none if it asks none)."""
    if t.vcpus * 1000 < r.cpu_millis or t.memory_gib * GIB < r.memory_bytes:
        return False
    if r.gpu_type:
        return t.gpu_type == r.gpu_type and t.gpu_count >= max(1, r.gpu_count)
    return t.gpu_count >= 1 if r.use_gpu else t.gpu_count == 0


def smallest_fit(r: Request, catalog: tuple[InstanceType, ...] = CATALOG) -> InstanceType:
    """The cheapest type in `catalog` that meets `r`; InvalidArgument naming the value and the choices."""
    if r.instance_type:
        # Truss spells one-GPU types "L4:4x16"; the catalog "L4x4x16".
        spellings = (r.instance_type, r.instance_type.replace(":", "x", 1))
        named = [t for t in catalog if t.name in spellings][:1]
        if not named:
            raise InvalidArgument(f"resources.instance_type {r.instance_type!r} is not an instance type; "
                                  f"the choices: {', '.join(t.name for t in catalog)}")
        if not meets(named[0], replace(r, use_gpu=r.use_gpu or named[0].gpu_count > 0)):
            raise InvalidArgument(f"resources.instance_type {r.instance_type!r} does not meet the "
                                  f"other resources ({describe(r)})")
        return named[0]
    fits = [t for t in catalog if meets(t, r)]
    if fits:
        return min(fits, key=lambda t: (t.usd_per_minute, t.name))
    if r.gpu_type:
        offered = [f"{t.gpu_type}:{t.gpu_count}" for t in catalog if t.gpu_type]
        choices = ", ".join(dict.fromkeys(offered))
        raise InvalidArgument(f"resources.accelerator {accelerator_text(r)!r}: no instance type offers it "
                              f"with {describe(r)}; the choices: {choices}")
    kind = [t for t in catalog if (t.gpu_count > 0) == r.use_gpu]
    largest = ", ".join(f"{t.name} ({t.vcpus} vCPU, {t.memory_gib} GiB)"
                        for t in sorted(kind, key=lambda t: -t.usd_per_minute)[:3])
    raise InvalidArgument(f"no instance type meets resources {describe(r)}; the largest: {largest}")


_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def request_of(cpu: str, memory: str, accelerator: str | None, *, use_gpu: bool = False,
               instance_type: str | None = None) -> Request:
    """A Truss's `resources` as config.yaml spells them ("500m", "2Gi", "H100:2") → a Request.
    The values are validated already (the builder's truss_config); a bad one raises InvalidArgument."""
    c, m = _QUANTITY.match(cpu.strip()), _QUANTITY.match(memory.strip())
    if c is None or c.group(2) not in (None, "m") or m is None or m.group(2) == "m":
        raise InvalidArgument(f"resources: cpu {cpu!r} or memory {memory!r} is not a quantity")
    kind, _, count = (accelerator or "").partition(":")
    return Request(cpu_millis=round(float(c.group(1)) * (1 if c.group(2) else 1000)),
                   memory_bytes=int(float(m.group(1)) * _UNITS[m.group(2) or ""]),
                   gpu_type=kind, gpu_count=(int(count) if count else 1) if kind else 0,
                   use_gpu=use_gpu or bool(kind), instance_type=instance_type or "")


def accelerator_text(r: Request) -> str:
    return f"{r.gpu_type}:{r.gpu_count}" if r.gpu_count > 1 else r.gpu_type


def describe(r: Request) -> str:
    gpu = f", accelerator {accelerator_text(r)}" if r.gpu_type else (", use_gpu" if r.use_gpu else "")
    return f"cpu {r.cpu_millis / 1000:g}, memory {r.memory_bytes / GIB:g}Gi{gpu}"
