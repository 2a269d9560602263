"""Baseten's own SDK (PyPI `baseten`, unmodified) walked against a kingpost, run by tests/e2e/test_surface.py
in the SDK's own virtual environment (.tools/baseten-sdk): it imports nothing of kingpost's.

    walk.py '{"base": URL, "key": ADMIN_KEY, "model_id": ID, "deployment_id": ID}'

`model_id` is a model with one published deployment `deployment_id` of the echo example (made through
kingpost's own push route) and no production deployment yet. Every answer parses as the SDK's own
response model (pydantic, generated from Baseten's published schema); a step that fails raises, and the
process exits non-zero with the traceback. On success the last line of stdout is `{"ok": true, ...}`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from baseten.client import InferenceClient, ManagementClient
from baseten.client import managementapi as m
from baseten.client.inferenceapi import AsyncPredictRequest, PredictInput

T = TypeVar("T")


def until(check: Callable[[], T | None], what: str, timeout: float = 120.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def walk(base: str, key: str, model_id: str, d1: str) -> dict[str, object]:
    with ManagementClient(api_key=key, base_url_override=base) as management:
        api = management.api
        echo = next(x for x in api.get_models().models if x.name == "echo")
        assert api.get_models_model_id(model_id=echo.id) == echo and echo.team_name == "default"
        dev = api.get_models_deployments_development(model_id=echo.id)
        assert (dev.id, dev.is_development, dev.status) == (echo.development_deployment_id, True, "ACTIVE")
        assert dev in api.get_models_deployments(model_id=echo.id).deployments

        until(lambda: api.get_models_deployments_deployment_id(model_id=model_id, deployment_id=d1).status
              == "ACTIVE", "the sdk model's deployment to be ACTIVE")
        renamed = api.patch_models_deployments(model_id=model_id, deployment_id=d1,
                                               request=m.UpdateDeploymentRequest(name="sdk-blue"))
        assert (renamed.id, renamed.name) == (d1, "sdk-blue")
        scaled = api.patch_models_deployments_autoscaling_settings(
            model_id=model_id, deployment_id=d1, request=m.UpdateAutoscalingSettings(max_replica=2))
        assert scaled.status == "ACCEPTED"
        retried = api.post_models_deployments_retry(model_id=model_id, deployment_id=d1)
        assert (retried.retried, retried.deployment.id) == (False, d1)  # it is not FAILED
        promoted = api.post_models_deployments_promote(model_id=model_id, deployment_id=d1,
                                                       request=m.PromoteRequest())
        assert promoted.id == d1
        until(lambda: (api.get_models_environments_env_name(model_id=model_id, env_name="production")
                       .current_deployment or m.Deployment.model_construct(id="")).id == d1,
              "production to serve the sdk deployment")
        assert api.get_models_deployments_production(model_id=model_id).is_production is True

        staging = api.post_models_environments(model_id=model_id, request=m.CreateEnvironmentRequest(
            name="staging", autoscaling_settings=m.UpdateAutoscalingSettings(max_replica=2),
            promotion_settings=m.UpdateModelPromotionSettings(redeploy_on_promotion=False, rolling_deploy=False)))
        assert (staging.name, staging.current_deployment, staging.autoscaling_settings.max_replica) == (
            "staging", None, 2)
        assert {e.name for e in api.get_models_environments(model_id=model_id).environments} == {
            "production", "staging"}
        candidate = api.post_models_environments_promote(
            model_id=model_id, env_name="staging", request=m.PromoteToEnvironmentRequest(deployment_id=d1))
        staged = until(lambda: (e := api.get_models_environments_env_name(model_id=model_id, env_name="staging"))
                       .current_deployment and not e.candidate_deployment and e, "staging to be served")
        assert staged.current_deployment is not None and staged.current_deployment.id == candidate.id
        assert api.post_models_deployments_deactivate(model_id=model_id, deployment_id=candidate.id).success
        assert api.post_models_environments_activate(model_id=model_id, env_name="staging").no_op is False

        # Keys, secrets, instance types.
        invoker_key = api.post_api_keys(request=m.CreateAPIKeyRequest(name="sdk", type="WORKSPACE_INVOKE",
                                                                       model_ids=[model_id]))
        listed = {k.prefix: k for k in api.get_api_keys().keys}
        prefix = next(p for p in listed if invoker_key.api_key.startswith(p))
        assert (listed[prefix].type, listed[prefix].model_ids) == ("WORKSPACE_INVOKE", [model_id])
        secret = api.post_secrets(request=m.UpsertSecretRequest(name="sdk_token", value="from-the-sdk"))
        assert secret.name == "sdk_token" and "sdk_token" in {s.name for s in api.get_secrets().secrets}
        assert api.get_instance_types().instance_types[0].millicpu_limit > 0

        # Inference through the SDK's own client, on the model's prefixes.
        with InferenceClient(api_key=key, base_url_override=f"{base}/models/{model_id}") as inference:
            until(lambda: inference.api.predict_production(request=PredictInput({"n": 1})).root == {
                "echo": {"n": 1}}, "production predict through the SDK")
            assert inference.api.predict_deployment(deployment_id=d1, request=PredictInput({"n": 2})).root == {
                "echo": {"n": 2}}
            inference.api.wake_production()
            inference.api.wake(env_name="staging")
            # Async predict, its status and the queue's, as the SDK's own models read them.
            queued = inference.api.async_predict_production(request=AsyncPredictRequest(model_input={"n": 4}))
            until(lambda: inference.api.get_async_request_status(request_id=queued.request_id).status
                  == "SUCCEEDED", "the SDK's async request to succeed")
            status = inference.api.get_async_request_status(request_id=queued.request_id)
            assert (status.model_id, status.webhook_status) == (model_id, "NO_WEBHOOK_PROVIDED")
            queue = inference.api.get_async_queue_status_production()
            assert (queue.model_id, queue.num_queued_requests) == (model_id, 0)
        with InferenceClient(api_key=invoker_key.api_key, base_url_override=f"{base}/models/{model_id}") as invoker:
            until(lambda: invoker.api.predict_production(request=PredictInput({"n": 3})).root == {
                "echo": {"n": 3}}, "the SDK's invoke-only key to predict")

        assert api.delete_api_keys(api_key_prefix=prefix).prefix == prefix
        assert api.delete_secrets(secret_name="sdk_token").name == "sdk_token"
        assert api.delete_models_environments(model_id=model_id, env_name="staging").deleted
        assert api.delete_models(model_id=model_id) == m.ModelTombstone(id=model_id, deleted=True)
    return {"ok": True, "staging_deployment_id": candidate.id}


if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    print(json.dumps(walk(args["base"], args["key"], args["model_id"], args["deployment_id"])))
