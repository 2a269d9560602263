"""The REST API as an OpenAPI 3.0 document, generated from the compiled protos.

The protos' `google.api.http` annotations are the REST routes (Envoy's gRPC-JSON transcoder serves
them), and their messages are the JSON bodies, as the transcoder writes them: proto field names,
int64 as strings, enums by name, Timestamps as RFC 3339 text. `scripts/gen_protos.py` writes the
document to `kingpost/envoy/openapi.json` (package data, served by Envoy at GET /v1/openapi.json)
and a test regenerates it, so it cannot drift from protos/.

    build(FileDescriptorSet) -> dict   # the document
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

PUBLIC_SERVICES = ("kingpost.v1.InferenceService", "kingpost.v1.ManagementService", "kingpost.v1.ChainService",
                   "kingpost.v1.NodeService")
DOCUMENT_PATH = "/v1/openapi.json"
_PACKAGE_PREFIX = "kingpost.v1."
_VERBS = ("get", "put", "post", "delete", "patch")

FieldProto = descriptor_pb2.FieldDescriptorProto
_SCALARS: dict[int, dict[str, Any]] = {
    FieldProto.TYPE_STRING: {"type": "string"},
    FieldProto.TYPE_BYTES: {"type": "string", "format": "byte"},
    FieldProto.TYPE_BOOL: {"type": "boolean"},
    FieldProto.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldProto.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldProto.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldProto.TYPE_UINT32: {"type": "integer", "minimum": 0, "maximum": 4294967295},
    FieldProto.TYPE_FIXED32: {"type": "integer", "minimum": 0, "maximum": 4294967295},
    # 64-bit integers are JSON strings in proto3's mapping (numbers are accepted on input too).
    FieldProto.TYPE_INT64: {"type": "string", "format": "int64"},
    FieldProto.TYPE_SINT64: {"type": "string", "format": "int64"},
    FieldProto.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    FieldProto.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FieldProto.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    FieldProto.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldProto.TYPE_DOUBLE: {"type": "number", "format": "double"},
}
# Well-known types have JSON forms of their own.
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "example": "1.5s"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.FieldMask": {"type": "string"},
}

# Successes that are not 200, as Baseten answers them (the service sends x-http-status; Envoy's Lua
# filter applies it).
SUCCESS_STATUS = {"kingpost.v1.InferenceService.Wake": "202"}

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error: an honest HTTP status and this body.",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
    "additionalProperties": False,
}
# google.api.HttpBody: the raw body with its Content-Type (predict). Models take JSON, or msgpack
# with `Content-Type: application/octet-stream`, as truss does; a generator model streams chunks.
_RAW_BODY = {
    "application/json": {"schema": {}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
}


class UnsupportedTemplate(ValueError):
    """A path template this generator (and the REST surface) does not use."""


@dataclass(frozen=True)
class _Types:
    """Every message and enum in the descriptor set, by full name (no leading dot), with comments."""

    messages: dict[str, descriptor_pb2.DescriptorProto]
    enums: dict[str, descriptor_pb2.EnumDescriptorProto]
    comments: dict[tuple[str, ...], str]  # (message,) / (message, field) / (service, method)

    @classmethod
    def of(cls, files: descriptor_pb2.FileDescriptorSet) -> _Types:
        messages: dict[str, descriptor_pb2.DescriptorProto] = {}
        enums: dict[str, descriptor_pb2.EnumDescriptorProto] = {}
        comments: dict[tuple[str, ...], str] = {}
        for file in files.file:
            by_path = {tuple(loc.path): " ".join(loc.leading_comments.split())
                       for loc in file.source_code_info.location if loc.leading_comments.strip()}

            def walk(prefix: str, path: tuple[int, ...], message: descriptor_pb2.DescriptorProto) -> None:
                name = f"{prefix}.{message.name}" if prefix else message.name
                messages[name] = message
                if path in by_path:
                    comments[(name,)] = by_path[path]
                for i, field in enumerate(message.field):
                    if (*path, 2, i) in by_path:
                        comments[(name, field.name)] = by_path[(*path, 2, i)]
                for i, nested in enumerate(message.nested_type):
                    walk(name, (*path, 3, i), nested)
                for enum in message.enum_type:
                    enums[f"{name}.{enum.name}"] = enum

            for i, message in enumerate(file.message_type):
                walk(file.package, (4, i), message)
            for enum in file.enum_type:
                enums[f"{file.package}.{enum.name}"] = enum
            for s, service in enumerate(file.service):
                for m, method in enumerate(service.method):
                    if (6, s, 2, m) in by_path:
                        comments[(f"{file.package}.{service.name}", method.name)] = by_path[(6, s, 2, m)]
        return cls(messages, enums, comments)


def _component(full_name: str) -> str:
    return full_name.removeprefix(_PACKAGE_PREFIX)


def _ref(full_name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{_component(full_name)}"}


class _Builder:
    def __init__(self, types: _Types) -> None:
        self.types = types
        self.schemas: dict[str, Any] = {}

    def field_schema(self, field: descriptor_pb2.FieldDescriptorProto, owner: str) -> dict[str, Any]:
        type_name = field.type_name.lstrip(".")
        if field.type == FieldProto.TYPE_MESSAGE and self.types.messages[type_name].options.map_entry:
            value = self.types.messages[type_name].field[1]
            schema: dict[str, Any] = {"type": "object", "additionalProperties": self.value_schema(value)}
        elif field.label == FieldProto.LABEL_REPEATED:
            schema = {"type": "array", "items": self.value_schema(field)}
        else:
            schema = dict(self.value_schema(field))
        description = self.types.comments.get((owner, field.name))
        if description:
            schema = {"allOf": [schema], "description": description} if "$ref" in schema else \
                {**schema, "description": description}
        return schema

    def value_schema(self, field: descriptor_pb2.FieldDescriptorProto) -> dict[str, Any]:
        type_name = field.type_name.lstrip(".")
        if field.type == FieldProto.TYPE_MESSAGE:
            if type_name in _WELL_KNOWN:
                return dict(_WELL_KNOWN[type_name])
            self.message_schema(type_name)
            return _ref(type_name)
        if field.type == FieldProto.TYPE_ENUM:
            return {"type": "string", "enum": [v.name for v in self.types.enums[type_name].value]}
        return dict(_SCALARS[field.type])

    def message_schema(self, full_name: str) -> None:
        """Add the message (and what it refers to) to components/schemas."""
        name = _component(full_name)
        if name in self.schemas:
            return
        self.schemas[name] = {}  # placeholder: recursive messages refer to it by name
        self.schemas[name] = self.object_schema(full_name)

    def object_schema(self, full_name: str, *, leave_out: frozenset[str] = frozenset()) -> dict[str, Any]:
        message = self.types.messages[full_name]
        schema: dict[str, Any] = {"type": "object"}
        if (full_name,) in self.types.comments:
            schema["description"] = self.types.comments[(full_name,)]
        schema["properties"] = {f.name: self.field_schema(f, full_name)
                                for f in message.field if f.name not in leave_out}
        return schema


def _path(template: str) -> tuple[str, dict[str, str | None]]:
    """'/models/{model_id}/{target=production}/predict' → the OpenAPI path and the fields it binds
    ({"model_id": None, "target": "production"}: None for a path parameter, else the fixed value)."""
    bound: dict[str, str | None] = {}

    def variable(match: re.Match[str]) -> str:
        field, _, pattern = match.group(1).partition("=")
        if pattern in ("", "*", "**"):  # `**`: the rest of the path, slashes and all
            bound[field] = None
            return "{" + field + "}"
        if re.fullmatch(r"[A-Za-z0-9_.~-]+", pattern):
            bound[field] = pattern
            return pattern
        raise UnsupportedTemplate(f"path template {template!r}: variable {match.group(0)} is not supported")

    return re.sub(r"\{([^}]*)\}", variable, template), bound


def _operation(builder: _Builder, service: str, method: descriptor_pb2.MethodDescriptorProto,
               rule: Any, operation_id: str) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """The path, its verbs (a custom `*` rule, a passthrough, answers every one) and the operation."""
    verb = next((v for v in _VERBS if rule.HasField(v)), None)
    if verb is not None:
        verbs, template = (verb,), getattr(rule, verb)
    elif rule.HasField("custom") and rule.custom.kind == "*":
        verbs, template = _VERBS, rule.custom.path
    else:
        raise UnsupportedTemplate(f"{service}.{method.name}: only {', '.join(_VERBS)} and custom '*' "
                                  "routes are supported")
    path, bound = _path(template)
    request_type = method.input_type.lstrip(".")
    request = builder.types.messages[request_type]
    fields = {f.name: f for f in request.field}
    for name in bound:
        if name not in fields:
            raise UnsupportedTemplate(
                f"{service}.{method.name}: {path} binds {name!r}, not a field of {request_type}")
    operation: dict[str, Any] = {"operationId": operation_id, "tags": [_component(service)]}
    description = builder.types.comments.get((service, method.name))
    if description:
        operation["description"] = description
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": builder.value_schema(fields[name])}
        for name, fixed in bound.items() if fixed is None
    ]
    if not rule.body:  # the other fields are query parameters
        for field in request.field:
            if field.name not in bound and field.type != FieldProto.TYPE_MESSAGE:
                parameters.append({"name": field.name, "in": "query", "required": False,
                                   "schema": builder.field_schema(field, request_type)})
    if parameters:
        operation["parameters"] = parameters
    if rule.body == "*":
        body = builder.object_schema(request_type, leave_out=frozenset(bound))
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    elif rule.body:
        operation["requestBody"] = {"required": True, "content": dict(_RAW_BODY)}
    response_type = method.output_type.lstrip(".")
    if response_type == "google.api.HttpBody":
        ok = {"description": "The model's output: JSON, msgpack for a msgpack request, or a generator "
                             "model's chunks as they come", "content": dict(_RAW_BODY)}
    else:
        if rule.response_body:  # the answer is that one field of the response, unwrapped (Baseten's shape)
            field = next((f for f in builder.types.messages[response_type].field
                          if f.name == rule.response_body), None)
            if field is None or field.type != FieldProto.TYPE_MESSAGE:
                raise UnsupportedTemplate(f"{service}.{method.name}: response_body {rule.response_body!r} "
                                          f"is not a message field of {response_type}")
            response_type = field.type_name.lstrip(".")
        builder.message_schema(response_type)
        ok = {"description": "OK", "content": {"application/json": {"schema": _ref(response_type)}}}
    operation["responses"] = {
        SUCCESS_STATUS.get(f"{service}.{method.name}", "200"): ok,
        "default": {"description": "An error", "content": {"application/json": {"schema": _ref("Error")}}},
    }
    return path, verbs, operation


def build(files: descriptor_pb2.FileDescriptorSet) -> dict[str, Any]:
    """The OpenAPI document of the public services' REST routes in `files`."""
    types = _Types.of(files)
    builder = _Builder(types)
    builder.schemas["Error"] = ERROR_SCHEMA
    paths: dict[str, dict[str, Any]] = {
        DOCUMENT_PATH: {"get": {
            "operationId": "GetOpenApi", "tags": ["openapi"], "security": [],
            "description": "This document.",
            "responses": {"200": {"description": "OK",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}},
        }},
    }
    for file in files.file:
        for service in file.service:
            full_service = f"{file.package}.{service.name}"
            if full_service not in PUBLIC_SERVICES:
                continue
            for method in service.method:
                if not method.options.HasExtension(annotations_pb2.http):
                    continue  # gRPC only (NodeService.JoinNode)
                http = method.options.Extensions[annotations_pb2.http]
                rules = [http, *http.additional_bindings]
                for i, rule in enumerate(rules):
                    operation_id = method.name if i == 0 else f"{method.name}{i + 1}"
                    path, verbs, operation = _operation(builder, full_service, method, rule, operation_id)
                    for verb in verbs:
                        if verb in paths.setdefault(path, {}):
                            raise UnsupportedTemplate(f"{verb.upper()} {path} is bound twice")
                        paths[path][verb] = (operation if len(verbs) == 1
                                             else {**operation, "operationId": f"{operation_id}_{verb}"})
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "kingpost",
            "version": "v1",  # the protos' package, kingpost.v1
            "description": "Generated from protos/ by scripts/gen_protos.py. Send `Authorization: "
                           "Api-Key <key>` (or `Bearer <key>`) with every request.",
        },
        "security": [{"ApiKey": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "Authorization",
                                           "description": "`Api-Key <key>` or `Bearer <key>`"}},
            "schemas": dict(sorted(builder.schemas.items())),
        },
    }


def dumps(document: dict[str, Any]) -> str:
    """The document as the text shipped and served."""
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"
