"""`kingpost predict MODEL`: call a model through the gRPC InferenceService; stream the answer."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from google.api import httpbody_pb2

from kingpost import rpc
from kingpost.cli.app import cli, json_option, load_config, print_json, run_async
from kingpost.cli.async_commands import async_body, async_predict
from kingpost.client_config import ClientConfig
from kingpost.errors import InvalidArgument
from kingpost.v1 import inference_pb2, inference_pb2_grpc, management_pb2, management_pb2_grpc

JSON = "application/json"
BINARY = "application/octet-stream"


def read_body(data: str | None, file: Path | None) -> tuple[bytes, str]:
    """The request body and its content type: JSON from --data, or a file's bytes
    (JSON if it parses as JSON, else application/octet-stream, e.g. msgpack)."""
    if data is not None and file is not None:
        raise InvalidArgument("give the input with --data or --file, not both")
    if data is not None:
        try:
            json.loads(data)
        except json.JSONDecodeError as e:
            raise InvalidArgument(f"--data is not valid JSON: {e}") from e
        return data.encode(), JSON
    if file is not None:
        body = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
        try:
            json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return body, BINARY
        return body, JSON
    raise InvalidArgument("give the input with --data JSON or --file F")


def target_request(model: str, *, environment: str, deployment: str, development: bool,
                   has_development: bool | None) -> inference_pb2.PredictRequest:
    """Which deployment to call. With no flag: the development deployment if the model has
    one, else production (`has_development` is None when the caller has not looked yet)."""
    chosen = [flag for flag, on in (("--environment", bool(environment)), ("--deployment", bool(deployment)),
                                    ("--development", development)) if on]
    if len(chosen) > 1:
        raise InvalidArgument(f"{' and '.join(chosen)} pick different targets: give one")
    if environment:
        return inference_pb2.PredictRequest(model_id=model, environment=environment)
    if deployment:
        return inference_pb2.PredictRequest(model_id=model, deployment_id=deployment)
    if development or has_development:
        return inference_pb2.PredictRequest(model_id=model, target="development")
    return inference_pb2.PredictRequest(model_id=model, target="production")


async def predict(config: ClientConfig, model: str, *, environment: str, deployment: str, development: bool,
                  body: bytes, content_type: str) -> None:
    auth = rpc.api_key(config.require_api_key())
    async with rpc.channel(config.grpc) as channel:
        has_development: bool | None = None
        if not (environment or deployment or development):
            management = management_pb2_grpc.ManagementServiceStub(channel)
            reply = await rpc.call(management.GetModel, management_pb2.GetModelRequest(model_id=model), auth=auth)
            has_development = bool(reply.development_deployment_id)
        request = target_request(model, environment=environment, deployment=deployment,
                                 development=development, has_development=has_development)
        request.body.CopyFrom(httpbody_pb2.HttpBody(content_type=content_type, data=body))
        inference = inference_pb2_grpc.InferenceServiceStub(channel)
        out = sys.stdout.buffer
        last = b""
        async for chunk in rpc.stream(inference.Predict, request, auth=auth):
            if chunk.data:
                out.write(chunk.data)
                out.flush()
                last = chunk.data
        if sys.stdout.isatty() and not last.endswith(b"\n"):
            out.write(b"\n")
            out.flush()


@cli.command("predict")
@click.argument("model")
@click.option("--environment", default="", help="Call the deployment in this environment.")
@click.option("--deployment", "deployment", default="", help="Call this deployment (by id).")
@click.option("--development", is_flag=True, help="Call the development deployment.")
@click.option("--data", default=None, help="The input, as JSON.")
@click.option("--file", "file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default=None,
              help="Read the input from a file ('-' for stdin): JSON, or binary such as msgpack.")
@click.option("--async", "is_async", is_flag=True,
              help="Queue the request (async_predict) and print its request id at once.")
@click.option("--webhook", default="", help="With --async: where the result is POSTed, signed.")
@click.option("--priority", type=click.IntRange(0, 2), default=None, help="With --async: 0 (soonest) to 2.")
@click.option("--max-time-in-queue", type=float, default=None,
              help="With --async: seconds it may wait before it expires (10 to 259200; 600 by default).")
@json_option
def predict_command(model: str, environment: str, deployment: str, development: bool, data: str | None,
                    file: Path | None, is_async: bool, webhook: str, priority: int | None,
                    max_time_in_queue: float | None, as_json: bool) -> None:
    """Call MODEL (id or name) and stream its answer to stdout.

    With no target flag it calls the development deployment if the model has one, else production.
    The answer is the model's body as it arrives, so --json changes nothing for a JSON model.
    With --async the request is queued instead and its id printed (`kingpost async status ID`).
    """
    if file is not None and str(file) != "-" and not file.exists():
        raise click.UsageError(f"--file {file} does not exist")
    try:
        body, content_type = read_body(data, file)
        target_request(model, environment=environment, deployment=deployment, development=development,
                       has_development=None)  # flag conflicts fail before any connection
    except InvalidArgument as e:
        raise click.UsageError(e.message) from None
    if not is_async:
        if webhook or priority is not None or max_time_in_queue is not None:
            raise click.UsageError("--webhook, --priority and --max-time-in-queue go with --async")
        run_async(predict(load_config(), model, environment=environment, deployment=deployment,
                          development=development, body=body, content_type=content_type))
        return
    try:
        wrapped = async_body(body, webhook=webhook, priority=priority, max_time_in_queue=max_time_in_queue)
    except InvalidArgument as e:
        raise click.UsageError(e.message) from None
    config = load_config()
    if environment or deployment or development:
        target = target_request(model, environment=environment, deployment=deployment, development=development,
                                has_development=None)
    else:
        target = run_async(_default_target(config, model))
    request_id = run_async(async_predict(config, target, wrapped))
    if as_json:
        print_json({"request_id": request_id})
    else:
        click.echo(request_id)


async def _default_target(config: ClientConfig, model: str) -> inference_pb2.PredictRequest:
    """As `predict` picks it: development when the model has one, else production."""
    auth = rpc.api_key(config.require_api_key())
    async with rpc.channel(config.grpc) as channel:
        management = management_pb2_grpc.ManagementServiceStub(channel)
        reply = await rpc.call(management.GetModel, management_pb2.GetModelRequest(model_id=model), auth=auth)
    return target_request(model, environment="", deployment="", development=False,
                          has_development=bool(reply.development_deployment_id))
