"""Baseten's management API schema, vendored as data (tests/e2e/baseten_sdk/management-schema.json,
written from the pinned `baseten` SDK by tests/e2e/baseten_sdk/schema.py): which of its routes a
request is, and what in an answer does not meet that route's response schema.

Extra fields are allowed (kingpost's extras beside Baseten's); a missing required field, a wrong type
or an enum value Baseten does not spell is a problem. Formats are checked (timestamps as ISO 8601).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

SCHEMA = Path(__file__).parent / "baseten_sdk" / "management-schema.json"


@dataclass(frozen=True)
class BasetenRoute:
    method: str
    path: str  # path parameters as `{}`: "/v1/models/{}/deployments/production"
    response: str  # "#/$defs/Deployment"

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and _pattern(self.path).fullmatch(path) is not None


@cache
def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("[^/]+".join(re.escape(piece) for piece in template.split("{}")))


@cache
def _document() -> dict[str, Any]:
    return json.loads(SCHEMA.read_text())


@cache
def routes() -> tuple[BasetenRoute, ...]:
    return tuple(BasetenRoute(r["method"], r["path"], r["response"]) for r in _document()["routes"])


def route_of(method: str, path: str) -> BasetenRoute | None:
    """Baseten's route for a request, the most literal one where several match
    (`/deployments/production` before `/deployments/{}`); None where Baseten has none."""
    path = path.partition("?")[0]
    found = [r for r in routes() if r.matches(method, path)]
    return max(found, key=lambda r: len(r.path.replace("{}", "")), default=None)


@cache
def _validator(ref: str) -> Any:
    return jsonschema_rs.validator_for({"$ref": ref, "$defs": _document()["$defs"]}, validate_formats=True)


def problems(route: BasetenRoute, answer: Any) -> list[str]:
    """What in `answer` does not meet `route`'s response schema, each naming where it is."""
    return [f"{'/'.join(map(str, e.instance_path)) or '(the answer)'}: {e.message}"
            for e in _validator(route.response).iter_errors(answer)]
