"""`kingpost predict --async` and `kingpost async status|cancel`: async inference from the shell.

    kingpost predict my-model --data '{"x": 1}' --async --webhook https://example.com/hook
    kingpost async status <request_id>          # Baseten's status object
    kingpost async cancel <request_id>          # only while QUEUED
"""

from __future__ import annotations

import json
from typing import Any

import click

from kingpost import rpc
from kingpost.cli.app import call, cli, json_option, print_json, run_async, to_dict
from kingpost.client_config import ClientConfig
from kingpost.errors import InvalidArgument
from kingpost.v1 import inference_pb2, inference_pb2_grpc


def async_body(body: bytes, *, webhook: str, priority: int | None, max_time_in_queue: float | None) -> bytes:
    """Baseten's async body around the input `predict` read (JSON only: it is `model_input`)."""
    try:
        model_input = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("--async takes JSON input (it becomes the request's model_input)") from None
    wrapped: dict[str, Any] = {"model_input": model_input}
    if webhook:
        wrapped["webhook_endpoint"] = webhook
    if priority is not None:
        wrapped["priority"] = priority
    if max_time_in_queue is not None:
        wrapped["max_time_in_queue_seconds"] = max_time_in_queue
    return json.dumps(wrapped).encode()


async def async_predict(config: ClientConfig, target: inference_pb2.PredictRequest, body: bytes) -> str:
    request = inference_pb2.AsyncPredictRequest(
        model_id=target.model_id, target=target.target, environment=target.environment,
        deployment_id=target.deployment_id)
    request.body.content_type, request.body.data = "application/json", body
    async with rpc.channel(config.grpc) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        reply = await rpc.call(stub.AsyncPredict, request, auth=rpc.api_key(config.require_api_key()))
    return reply.request_id


async def _call(method: str, request: Any) -> Any:
    return await call(inference_pb2_grpc.InferenceServiceStub, method, request)


@cli.group("async")
def async_group() -> None:
    """Async requests (`kingpost predict --async` queues one)."""


@async_group.command("status")
@click.argument("request_id")
@click.option("--model", default="", help="The request's model (id or name); another model's is not found.")
@json_option
def async_status(request_id: str, model: str, as_json: bool) -> None:
    """Show an async request's status: QUEUED, IN_PROGRESS, SUCCEEDED, FAILED, EXPIRED, CANCELED,
    WEBHOOK_FAILED, with its webhook's status, times and errors (and its result, if it was stored)."""
    reply = run_async(_call("GetAsyncRequest",
                            inference_pb2.GetAsyncRequestRequest(model_id=model, request_id=request_id)))
    shown = to_dict(reply)
    if not reply.HasField("result"):
        shown.pop("result", None)
    if as_json:
        print_json(shown)
        return
    click.echo(f"{reply.request_id}  {reply.status}  webhook {reply.webhook_status}  "
               f"model {reply.model_id}  deployment {reply.deployment_id}")
    click.echo(f"created {reply.created_at}  status since {reply.status_at}")
    for error in reply.errors:
        click.echo(f"error {error.code}: {error.message}")
    if reply.HasField("result"):
        click.echo(json.dumps(shown["result"]))


@async_group.command("cancel")
@click.argument("request_id")
@click.option("--model", default="", help="The request's model (id or name).")
@json_option
def async_cancel(request_id: str, model: str, as_json: bool) -> None:
    """Cancel an async request that is still QUEUED: it never reaches the model."""
    reply = run_async(_call("CancelAsyncRequest",
                            inference_pb2.CancelAsyncRequestRequest(model_id=model, request_id=request_id)))
    if as_json:
        print_json(to_dict(reply))
    else:
        click.echo(reply.message)
    if not reply.canceled:
        raise SystemExit(1)
