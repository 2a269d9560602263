"""Shared fixtures for every test: the real servers live in tests/fixtures/servers.py."""

# First, before anything imports grpc: the gRPC settings every kingpost process runs with
# (kingpost/__init__.py), e.g. no fork handlers, which crash runners the in-process agent forks.
import kingpost  # noqa: F401

pytest_plugins = ["tests.fixtures.servers"]
