"""Flat TOML text for the config files `kingpost up` and the CLI write.

Not in kingpost.settings, so that the CLI, which writes the client config, does not load pydantic.
"""

from __future__ import annotations

from typing import Any


def to_toml(values: dict[str, Any]) -> str:
    """Flat TOML for the config files `kingpost up` writes (strings, numbers, booleans, lists of strings)."""
    lines = []
    for key, value in values.items():
        if isinstance(value, list):
            lines.append(f"{key} = [{', '.join(_toml_string(str(v)) for v in value)}]")
        elif isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, (int, float)):
            lines.append(f"{key} = {value}")
        else:
            lines.append(f"{key} = {_toml_string(str(value))}")
    return "\n".join(lines) + "\n"


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
