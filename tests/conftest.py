"""Shared fixtures for every test: the real servers live in tests/fixtures/servers.py."""

import os

# As in every kingpost process (kingpost/cli/__init__.py): the in-process worker agent forks
# runners while gRPC threads are busy, and gRPC's fork handlers then crash the child.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

pytest_plugins = ["tests.fixtures.servers"]
