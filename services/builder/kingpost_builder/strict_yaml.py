"""YAML as truss reads a config: safe, a mapping at the top, and a duplicate key refused naming its
line (PyYAML would keep the last one silently)."""

from __future__ import annotations

from typing import Any

import yaml

from kingpost.errors import InvalidArgument

class _NoDuplicatesLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys in a mapping, as truss does."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise InvalidArgument(f"duplicate key {key!r} (line {key_node.start_mark.line + 1})")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_NoDuplicatesLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml_mapping(text: str, *, source: str = "config.yaml") -> dict[str, Any]:
    try:
        data = yaml.load(text, Loader=_NoDuplicatesLoader)  # noqa: S506 - a SafeLoader subclass
    except InvalidArgument as e:
        raise InvalidArgument(f"{source}: {e.message}") from None
    except yaml.YAMLError as e:
        raise InvalidArgument(f"{source} is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidArgument(f"{source} must be a mapping of keys to values, not a {type(data).__name__}")
    return {str(k): v for k, v in data.items()}
