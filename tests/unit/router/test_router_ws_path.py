"""`{prefix}/websocket` paths: what each names, and Envoy's route matching exactly the same paths."""

from __future__ import annotations

import re

import pytest

from kingpost.errors import NotFound
from kingpost.gateway import WEBSOCKET_REGEX
from kingpost_router.ws_path import WebsocketTarget, parse

ROUTED = {
    "/models/abc/production/websocket": WebsocketTarget("abc", "production", "", ""),
    "/models/abc/development/websocket": WebsocketTarget("abc", "development", "", ""),
    "/models/abc/environments/staging/websocket": WebsocketTarget("abc", "", "staging", ""),
    "/models/abc/deployment/d1/websocket": WebsocketTarget("abc", "", "", "d1"),
    "/models/My%20Model/production/websocket": WebsocketTarget("My Model", "production", "", ""),
    "/chains/c1/production/websocket": WebsocketTarget("c1", "production", "", ""),
    # Bare paths, on a model-{id}.<domain> host.
    "/production/websocket": WebsocketTarget("", "production", "", ""),
    "/development/websocket/": WebsocketTarget("", "development", "", ""),
    "/environments/staging/websocket": WebsocketTarget("", "", "staging", ""),
    "/deployment/d1/websocket?x=1": WebsocketTarget("", "", "", "d1"),
}
NOT_ROUTED = ("/models/abc/production/predict", "/models/abc/websocket", "/models/abc/staging/websocket",
              "/models/abc/production/websocket/more", "/websocket", "/models//production/websocket")


@pytest.mark.parametrize("path", ROUTED)
def test_each_prefix_names_its_deployment_and_envoy_routes_it(path: str) -> None:
    assert parse(path) == ROUTED[path]
    assert re.match(WEBSOCKET_REGEX, path.split("?")[0])


@pytest.mark.parametrize("path", NOT_ROUTED)
def test_other_paths_are_not_websocket_routes_for_either(path: str) -> None:
    with pytest.raises(NotFound, match="not a websocket route"):
        parse(path)
    assert not re.match(WEBSOCKET_REGEX, path)
