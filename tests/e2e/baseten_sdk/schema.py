"""Writes Baseten's management API schema, as the pinned `baseten` SDK carries it, as data:

    .tools/baseten-sdk/bin/python tests/e2e/baseten_sdk/schema.py > tests/e2e/baseten_sdk/management-schema.json

Runs in the SDK's own virtual environment (`make baseten-sdk`). The SDK is generated from Baseten's
published OpenAPI document; each of its ManagementClient calls names its method, path and response
model. This prints, for every call that answers JSON, `{"method", "path"}` (path parameters as `{}`)
and the JSON Schema of its response model, all models' definitions in one `$defs`. The file is
committed (tests/e2e/test_surface.py validates kingpost's answers against it), so a new SDK version
changes it only when someone reruns this and commits the difference.
"""

from __future__ import annotations

import inspect
import json
from importlib.metadata import version
from typing import Any

from pydantic.json_schema import models_json_schema

from baseten.client.managementapi import _client


def calls() -> list[tuple[str, str, type]]:
    """(method, path_fmt, response model) of every JSON-answering call of the SDK's sync client."""
    seen: list[tuple[str, str, type]] = []

    class Recorder(_client.ApiClient):
        def __init__(self) -> None:  # no HTTP client: nothing is sent
            pass

        def _do_json(self, response_type: type, request: Any) -> Any:
            seen.append((request.method, request.path_fmt, response_type))

        def _do_no_response(self, request: Any) -> None:
            pass

    recorder = Recorder()
    for name, fn in inspect.getmembers(_client.ApiClient, inspect.isfunction):
        if name.startswith("_"):
            continue
        params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
        fn(recorder, **{p.name: "x" for p in params if p.default is inspect.Parameter.empty})
    return sorted(set(seen), key=lambda c: (c[1], c[0]))


def main() -> None:
    found = calls()
    models = sorted({c[2] for c in found}, key=lambda m: m.__name__)
    refs, schema = models_json_schema([(m, "validation") for m in models], ref_template="#/$defs/{model}")
    routes = [{"method": method, "path": path, "response": refs[(model, "validation")]["$ref"]}
              for method, path, model in found]
    print(json.dumps({"sdk": f"baseten {version('baseten')}", "routes": routes, "$defs": schema["$defs"]},
                     indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
