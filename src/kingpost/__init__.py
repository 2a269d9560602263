"""kingpost: a self-hosted inference platform.

Importing this package sets the gRPC settings every kingpost process runs with. They must be in the
environment before grpc is first imported, so the CLI, tests/conftest.py and the benches import
`kingpost` first; the runners the worker agent starts inherit them. A value already set wins.

- GRPC_ENABLE_FORK_SUPPORT=0: gRPC's fork handlers, in a process whose threads are busy in gRPC,
  crashed the worker agent's freshly forked runners (SIGSEGV before exec, about one start in ten).
  No kingpost process forks and then uses gRPC in the child, so the handlers are not needed.
- GRPC_EXPERIMENTS: gRPC's EventEngine client and listener (on by default in gRPC 1.8x) cost
  the router 15% more CPU per request and ~10% of its throughput on two cores, and the runner's
  latency likewise (BENCHMARKS.md, "Router throughput"); the iomgr paths they replace are still
  gRPC's own, supported code.
"""

import os

os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
os.environ.setdefault("GRPC_EXPERIMENTS", "-event_engine_client,-event_engine_listener")

__version__ = "0.1.0"
