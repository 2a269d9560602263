"""One `kingpost up` for the e2e modules that take `platform` without defining it (builder_envs,
custom_servers, lifecycle, rest_hostile, route_settings, truss_compat, watch) or build theirs on it
(chains).

Each of them pushes models of its own names and calls only those, so one platform serves them all,
started once instead of once a module. A module that kills or restarts parts of the platform, counts
what runs on it, lists everything it has, or starts it with settings of its own defines a `platform`
fixture of its own (module-scoped, with `platform_up`), which takes the place of this one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.test_truss_compat import Platform, platform_up


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform_up(tmp_path_factory, "shared") as platform:
        yield platform
