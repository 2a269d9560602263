"""`{prefix}/websocket`: which deployment a WebSocket request's path names. Pure: a path in, a target out.

    /models/{model_id}/production/websocket              /production/websocket           (Host model-{id}.…)
    /models/{model_id}/development/websocket             /development/websocket
    /models/{model_id}/environments/{env}/websocket      /environments/{env}/websocket
    /models/{model_id}/deployment/{deployment_id}/websocket   /deployment/{deployment_id}/websocket

Chains' paths (`/chains/{chain_id}/…/websocket`) name the chain's entrypoint model, as run_remote does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from kingpost.errors import NotFound

_PATH = re.compile(
    r"^(?:/(?:models|chains)/(?P<model>[^/]+))?"
    r"/(?:(?P<target>production|development)|environments/(?P<environment>[^/]+)|deployment/(?P<deployment>[^/]+))"
    r"/websocket/?$"
)


@dataclass(frozen=True, slots=True)
class WebsocketTarget:
    model_id: str  # "" : the Host names the model (model-{id}.…)
    target: str  # "production" / "development" / ""
    environment: str
    deployment_id: str


def parse(path: str) -> WebsocketTarget:
    """The target a `…/websocket` path names; NotFound (404) naming the path otherwise."""
    match = _PATH.match(path.split("?", 1)[0])
    if match is None:
        raise NotFound(f"{path} is not a websocket route: use /models/{{model_id}}/production/websocket, "
                       "/development/websocket, /environments/{env}/websocket or /deployment/{id}/websocket")
    model, target, environment, deployment = (unquote(g or "") for g in match.group(
        "model", "target", "environment", "deployment"))
    return WebsocketTarget(model, target, environment, deployment)
