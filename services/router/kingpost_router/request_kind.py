"""What kind of call a request to the router is, for the runner and for the metrics' labels."""

from __future__ import annotations

from kingpost.v1 import inference_pb2
from kingpost_router.routes import DEVELOPMENT, PRODUCTION


def v2_path_of(request: object) -> str:
    """The V2 call a request is (kingpost_router.v2_grpc's calls and V2Infer), "" for predict."""
    if type(request) is inference_pb2.PredictRequest:
        return ""
    if type(request) is inference_pb2.V2InferRequest:
        return f"/v2/models/{request.v2_model}/infer"  # type: ignore[attr-defined]
    return getattr(request, "v2_path", "")


def environment_label(request: inference_pb2.PredictRequest) -> str:
    """The `environment` label of a resolved request: the one it named (production by default),
    "development", or "" when it named the deployment itself."""
    if request.deployment_id:
        return ""
    if request.environment:
        return request.environment
    return DEVELOPMENT if request.target == DEVELOPMENT else PRODUCTION
