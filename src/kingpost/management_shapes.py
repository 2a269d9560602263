"""Baseten's management shapes where proto3's JSON cannot say them by itself, in one place.

The REST answers are the protos of management.proto printed by Envoy's transcoder; this module
holds the few values that need a rule: an environment's `current_deployment` is a Deployment's JSON
object or null (a `google.protobuf.Value`, since a message field cannot print as null), the back-
pressure policy in Baseten's words and the team kingpost names.
"""

from __future__ import annotations

from google.protobuf import json_format, struct_pb2

from kingpost.v1 import management_pb2

# kingpost has one team; Baseten's answers name it.
TEAM_NAME = "default"

_BACKPRESSURE = {"queue": "QUEUE_ON_FULL", "reject": "REJECT_ON_FULL"}


def backpressure_settings(policy: str) -> management_pb2.RequestBackpressureSettings:
    """kingpost's `backpressure_policy` ("queue" / "reject") as Baseten's request_backpressure_settings."""
    return management_pb2.RequestBackpressureSettings(policy=_BACKPRESSURE.get(policy, ""))


def deployment_value(deployment: management_pb2.Deployment | None) -> struct_pb2.Value:
    """An environment's `current_deployment`: the Deployment's JSON object, or null."""
    value = struct_pb2.Value()
    if deployment is None:
        value.null_value = struct_pb2.NULL_VALUE
    else:
        value.struct_value.update(json_format.MessageToDict(
            deployment, preserving_proto_field_name=True, always_print_fields_with_no_presence=True))
    return value


def current_deployment(env: management_pb2.Environment) -> management_pb2.Deployment | None:
    """The Deployment an environment serves, None for none yet (the reverse of `deployment_value`)."""
    if env.current_deployment.WhichOneof("kind") != "struct_value":
        return None
    return json_format.ParseDict(json_format.MessageToDict(env.current_deployment.struct_value),
                                 management_pb2.Deployment(), ignore_unknown_fields=True)
