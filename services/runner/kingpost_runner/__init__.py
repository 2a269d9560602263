"""kingpost runner: serves one Truss model over gRPC.

What the runner needs inside a model's environment is declared here, once: the builder locks it
beside a Truss's requirements, and the worker agent gives a Truss without requirements an
environment of exactly this (linked from the platform's own installation), so a model never
imports a platform package it did not ask for.
"""

# Distributions the runner itself imports: kept at the platform's versions (the generated kingpost.v1
# code must match protobuf), so a model's requirement that excludes one of them fails the build.
REQUIRED = ("grpcio", "protobuf", "googleapis-common-protos", "pyyaml", "msgpack", "anyio")

# What Truss's server image gives every model without asking, and the model contract relies on
# (pydantic-annotated predict inputs); a model's own requirement on one of these wins.
PROVIDED = ("pydantic",)
