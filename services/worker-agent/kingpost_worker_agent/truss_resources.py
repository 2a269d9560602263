"""What a Truss's `resources` ask of this node that the agent enforces: `memory`, as bytes.

Pure: config.yaml's text in, bytes out. The builder has already validated the value
(kingpost_builder/truss_config.py); truss's default, "2Gi", applies when it is absent.
"""

from __future__ import annotations

import re

import yaml

DEFAULT_MEMORY = "2Gi"

_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


class BadMemory(ValueError):
    """`resources.memory` is not a quantity such as "2Gi" or "512Mi"."""


def memory_bytes(quantity: str) -> int:
    """`"2Gi"` → 2147483648, `"1.5G"` → 1500000000 (Kubernetes' quantities, as truss takes them)."""
    match = _QUANTITY.match(quantity.strip())
    if match is None:
        raise BadMemory(f"resources.memory {quantity!r} is not a number with an optional unit "
                        '("2Gi", "512Mi")')
    return int(float(match.group(1)) * _UNITS[match.group(2) or ""])


def memory_of(config_yaml: str) -> tuple[str, int]:
    """The Truss's `resources.memory` as written (truss's default when absent) and in bytes."""
    try:
        config = yaml.safe_load(config_yaml) or {}
    except yaml.YAMLError as e:
        raise BadMemory(f"config.yaml is not valid YAML: {e}") from e
    resources = config.get("resources") if isinstance(config, dict) else None
    value = resources.get("memory") if isinstance(resources, dict) else None
    text = DEFAULT_MEMORY if value is None or value == "" else str(value)
    return text, memory_bytes(text)
