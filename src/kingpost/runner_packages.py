"""What the runner needs inside a model's environment, declared once for the services that provide it:
the builder locks these beside a Truss's requirements (`kingpost_builder.requirements`), and the
worker agent gives a Truss without requirements an environment of exactly these, linked from the
platform's own installation (`kingpost_worker_agent.environments`), so a model never imports a
platform package it did not ask for. The runner (`kingpost_runner`) imports nothing outside them,
the standard library, `kingpost` and itself.
"""

# Distributions the runner itself imports: kept at the platform's versions (the generated kingpost.v1
# code must match protobuf), so a model's requirement that excludes one of them fails the build.
# uvicorn and httptools (with uvloop) serve the HTTP data plane Envoy calls (kingpost_runner.http_plane).
REQUIRED = ("grpcio", "protobuf", "googleapis-common-protos", "pyyaml", "msgpack", "anyio",
            "uvicorn", "httptools", "uvloop")

# What Truss's server image gives every model without asking, and the model contract relies on
# (pydantic-annotated predict inputs); a model's own requirement on one of these wins.
PROVIDED = ("pydantic",)
