"""The OpenAPI document users get at /v1/openapi.json: the REST routes and bodies as Envoy serves them."""

from __future__ import annotations

import json
from importlib import resources

import pytest
import schemathesis
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from kingpost import openapi

DOCUMENT = json.loads(resources.files("kingpost").joinpath("envoy", "openapi.json").read_text())
SCHEMAS = DOCUMENT["components"]["schemas"]


def test_it_is_an_openapi_document_a_client_generator_can_load() -> None:
    schema = schemathesis.openapi.from_dict(DOCUMENT)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {(op.method.upper(), op.path) for op in operations} >= {
        ("GET", "/v1/openapi.json"), ("GET", "/v1/models"), ("POST", "/models/{model_id}/production/predict")}


def test_a_fixed_path_segment_is_literal_and_a_variable_one_a_parameter() -> None:
    predict = DOCUMENT["paths"]["/models/{model_id}/environments/{environment}/predict"]["post"]
    parameters = [(p["name"], p["in"]) for p in predict["parameters"]]
    assert parameters == [("model_id", "path"), ("environment", "path")]
    assert "/models/{model_id}/production/predict" in DOCUMENT["paths"]  # {target=production}
    assert not any("{target" in path or path.startswith("/kingpost.v1.") for path in DOCUMENT["paths"])


def test_predict_takes_and_gives_raw_json_or_msgpack() -> None:
    predict = DOCUMENT["paths"]["/production/predict"]["post"]
    assert set(predict["requestBody"]["content"]) == {"application/json", "application/octet-stream"}
    assert set(predict["responses"]["200"]["content"]) == {"application/json", "application/octet-stream"}


def test_a_json_body_leaves_out_what_the_path_binds() -> None:
    path = "/v1/models/{model_id}/deployments/{deployment_id}/autoscaling_settings"
    patch = DOCUMENT["paths"][path]["patch"]
    body = patch["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert "model_id" not in body and "deployment_id" not in body
    assert body["min_replica"] == {"type": "integer", "format": "int32"}


def test_a_get_takes_the_other_fields_as_query_parameters() -> None:
    logs = DOCUMENT["paths"]["/v1/models/{model_id}/logs"]["get"]
    query = {p["name"]: p["schema"]["type"] for p in logs["parameters"] if p["in"] == "query"}
    assert query == {"deployment_id": "string", "build_id": "string", "build_only": "boolean",
                     "replica_only": "boolean", "limit": "integer"}


def test_fields_are_typed_as_the_transcoder_writes_them() -> None:
    node = SCHEMAS["NodeStatus"]["properties"]
    assert node["memory_bytes"] == {"type": "string", "format": "int64"}  # int64: a JSON string
    assert node["last_seen"] == {"type": "string", "format": "date-time"}  # Timestamp: RFC 3339
    assert node["replica_ids"] == {"type": "array", "items": {"type": "string"}}
    traffic = SCHEMAS["Environment"]["properties"]["traffic"]
    assert traffic["additionalProperties"] == {"type": "integer", "format": "int32"}  # a map
    assert SCHEMAS["Environment"]["properties"]["promotion_settings"] == {
        "$ref": "#/components/schemas/PromotionSettings"}


def test_proto_comments_become_descriptions() -> None:
    status = SCHEMAS["Deployment"]["properties"]["status"]
    assert "ACTIVE" in status["description"] and "SCALED_TO_ZERO" in status["description"]
    create = DOCUMENT["paths"]["/v1/models"]["post"]
    assert create["description"].startswith("CreateDeployment is what a push")


def test_every_error_is_documented_in_one_shape() -> None:
    assert SCHEMAS["Error"]["required"] == ["error"]
    for path, operations in DOCUMENT["paths"].items():
        for verb, operation in operations.items():
            if path != openapi.DOCUMENT_PATH:
                assert operation["responses"]["default"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"}, (verb, path)


def _one_route(template: str) -> descriptor_pb2.FileDescriptorSet:
    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="kingpost/v1/x.proto", package="kingpost.v1",
                                              syntax="proto3")
    file.message_type.add(name="Req").field.add(name="name", number=1, type=field.TYPE_STRING,
                                                 label=field.LABEL_OPTIONAL)
    file.message_type.add(name="Res")
    method = file.service.add(name="ManagementService").method.add(
        name="Get", input_type=".kingpost.v1.Req", output_type=".kingpost.v1.Res")
    method.options.Extensions[annotations_pb2.http].get = template
    return descriptor_pb2.FileDescriptorSet(file=[file])


def test_a_path_template_it_cannot_express_is_refused_by_name() -> None:
    assert "/v1/things/{name}" in openapi.build(_one_route("/v1/things/{name}"))["paths"]
    with pytest.raises(openapi.UnsupportedTemplate, match=r"'/v1/\{name=things/\*\}'"):
        openapi.build(_one_route("/v1/{name=things/*}"))
    with pytest.raises(openapi.UnsupportedTemplate, match="binds 'nope'"):
        openapi.build(_one_route("/v1/things/{nope}"))
