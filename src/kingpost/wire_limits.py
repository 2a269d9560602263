"""Sizes every gRPC server and channel of the platform accepts, the runner's included: plain data,
no grpc import (the runner reads it inside a model's environment too)."""

from __future__ import annotations

MAX_MESSAGE_BYTES = 256 * 1024 * 1024

# The largest request body the platform takes by default (Envoy's buffer, the router, the runner's
# HTTP data plane); kingpost.gateway renders it into Envoy's config.
DEFAULT_MAX_BODY_BYTES = 100 * 1024 * 1024

# Request headers reach services as gRPC metadata. gRPC's own limits (8 KiB, past which calls fail
# at random, up to 16 KiB, past which all do, as RESOURCE_EXHAUSTED → 429, naming every header)
# would refuse what Envoy accepts; Envoy answers 431 itself above its max_request_headers_kb (32),
# and this leaves room for twice that (x-kingpost-host repeats the Host) and what Envoy adds.
MAX_METADATA_BYTES = 96 * 1024
METADATA_OPTIONS = (
    ("grpc.max_metadata_size", MAX_METADATA_BYTES),
    ("grpc.absolute_max_metadata_size", MAX_METADATA_BYTES),
)
MESSAGE_LIMITS = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    *METADATA_OPTIONS,
)
