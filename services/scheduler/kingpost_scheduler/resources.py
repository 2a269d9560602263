"""A Truss's `resources` as the builder summarises them ("500m", "2Gi", "H100:2") → a `Demand`.

Pure. The builder has validated the values (kingpost_builder/truss_config.py); anything that still
does not parse is an InvalidArgument naming the key and the value.
"""

from __future__ import annotations

import re

from kingpost.errors import InvalidArgument
from kingpost_scheduler.placement import Demand

DEFAULT_CPU = "1"
DEFAULT_MEMORY = "2Gi"

_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def cpu_millis(cpu: str) -> int:
    """`"1"` → 1000, `"2.5"` → 2500, `"500m"` → 500."""
    text = (cpu or DEFAULT_CPU).strip()
    try:
        value = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        raise InvalidArgument(f"resources.cpu {cpu!r} is not a number of CPUs (\"1\", \"500m\")") from None
    if value <= 0:
        raise InvalidArgument(f"resources.cpu {cpu!r} must be more than 0")
    return max(1, round(value * 1000))


def memory_bytes(memory: str) -> int:
    """`"2Gi"` → 2147483648 (Kubernetes' quantities, as truss takes them)."""
    match = _QUANTITY.match((memory or DEFAULT_MEMORY).strip())
    if match is None:
        raise InvalidArgument(f"resources.memory {memory!r} is not a number with an optional unit "
                              "(\"2Gi\", \"512Mi\")")
    return int(float(match.group(1)) * _UNITS[match.group(2) or ""])


def accelerator(value: str) -> tuple[str, int]:
    """`"H100:2"` → ("H100", 2); `"T4"` → ("T4", 1); `""` → ("", 0)."""
    if not value:
        return "", 0
    kind, sep, count = value.partition(":")
    if sep and (not count.isdigit() or int(count) < 1):
        raise InvalidArgument(f"resources.accelerator {value!r}: the count after ':' must be a whole number ≥ 1")
    return kind.strip().upper(), int(count) if sep else 1


def demand(cpu: str, memory: str, accelerator_value: str) -> Demand:
    kind, count = accelerator(accelerator_value)
    return Demand(cpu_millis=cpu_millis(cpu), memory_bytes=memory_bytes(memory), gpu_type=kind, gpu_count=count)
