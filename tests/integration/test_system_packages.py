"""system_packages end to end with real apt against Debian's archive: the builder downloads and unpacks
the .debs into a system layer; the agent materialises it and its runner finds the layer's programs
and libraries first (not /usr/bin's).

`hello` (a program) and `tidy` (a program and its own library, libtidy5deb1): tiny, and not on a
stock machine. Without apt, or when no apt source (or proxy) accepts a connection, the tests skip locally
and fail under CI=true; any other failure of apt fails them.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import tarfile
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from kingpost.bus import subjects
from kingpost.bus.nats_bus import NatsBus
from kingpost.environment_manifest import EnvironmentManifest
from kingpost.errors import InvalidArgument
from kingpost.v1 import events_pb2
from kingpost_worker_agent import archive, system_layer
from kingpost_worker_agent.artifacts import ArtifactStore
from kingpost_worker_agent.replicas import ReplicaSpec, ReplicaSupervisor
from kingpost_builder.build import STEPS, BuildWork, intake
from kingpost_builder.store import FileArtifactStore
from tests.fixtures.archives import tar_of
from tests.fixtures.servers import unavailable
from tests.integration.test_agent import (  # noqa: F401  (fixtures)
    ENV_MODEL, BuilderDouble, builder, bus, predict, state_is, tmp_path, truss_tarball, watch,
)
from tests.integration.test_agent_standby import supervisor  # noqa: F401  (a fixture)

READY = events_pb2.REPLICA_STATE_READY
PACKAGES = "[hello, tidy]"
APT_ETC = Path("/etc/apt")

MODEL = """
import shutil, subprocess

class Model:
    def predict(self, request):
        hello = shutil.which("hello")
        says = subprocess.run([hello], capture_output=True, text=True).stdout.strip() if hello else ""
        tidy = subprocess.run(["tidy", "-v"], capture_output=True, text=True)
        return {"hello": hello, "says": says, "tidy": tidy.stdout.strip(), "tidy_code": tidy.returncode}
"""


def build(store: FileArtifactStore, config: str, *, allow: bool = True) -> BuildWork:
    work_dir = store.scratch_dir()
    upload = work_dir / "upload.tar.gz"
    upload.write_bytes(tar_of({"config.yaml": config.encode(), "model/model.py": textwrap.dedent(MODEL).encode()}))
    work = BuildWork(build_id="bld_test", work_dir=work_dir, upload=upload, max_unpacked_bytes=1 << 24,
                     allow_build_commands=allow)
    for step in (intake, *STEPS):
        step(work, store)
    return work


def apt_servers() -> set[tuple[str, int]]:
    """Where apt connects: its proxy when one is configured, else the hosts of its enabled sources."""
    config = run(["apt-config", "dump"]).stdout
    urls = re.findall(r'^Acquire::https?::Proxy "(https?://[^"]+)";', config, re.MULTILINE)
    if not urls:
        files = [APT_ETC / "sources.list", *sorted((APT_ETC / "sources.list.d").glob("*.list")),
                 *sorted((APT_ETC / "sources.list.d").glob("*.sources"))]
        for text in (f.read_text() for f in files if f.is_file()):
            urls += re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.MULTILINE)
            urls += [u for line in re.findall(r"^URIs:(.*)$", text, re.MULTILINE) for u in line.split()]
    servers = set()
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.hostname:
            servers.add((parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)))
    return servers


def archive_unreachable() -> str | None:
    """Why apt cannot reach its archive from here, or None when it can. Asked before building, so that
    a build that fails for any other reason (a 404 from the mirror, a bad package) fails the test."""
    servers = apt_servers()
    for host, port in sorted(servers):
        try:
            socket.create_connection((host, port), timeout=5).close()
            return None
        except OSError:
            continue
    return f"no apt source or proxy accepts a connection from here (tried {sorted(servers) or 'none found'})"


def build_or_skip(store: FileArtifactStore, config: str) -> BuildWork:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        unavailable("apt-get and dpkg-deb are needed (a Debian or Ubuntu machine)")
    if (offline := archive_unreachable()) is not None:
        unavailable(f"Debian's package archive cannot be reached: {offline}")
    return build(store, config)


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)


def installed(package: str) -> bool:
    return run(["dpkg", "-s", package]).returncode == 0


def fetcher(store: FileArtifactStore) -> Callable[[str], AsyncIterator[bytes]]:
    async def fetch(digest: str) -> AsyncIterator[bytes]:
        yield store.get(digest)
    return fetch


async def test_the_builder_makes_a_system_layer_and_the_agent_runs_its_programs(
    tmp_path: Path,  # noqa: F811
) -> None:
    store = FileArtifactStore(tmp_path / "builder")
    work = build_or_skip(store, f"system_packages: {PACKAGES}\n")
    log = [e.text for e in work.log]
    assert any(line.startswith("Get:") and " hello " in line for line in log)  # apt's output is the build log
    assert work.system.startswith("sha256:") and work.dependencies == ""
    with tarfile.open(fileobj=io.BytesIO(store.get(work.digest)), mode="r:gz") as tar:
        manifest = EnvironmentManifest.from_json(tar.extractfile(".kingpost/environment.json").read().decode())  # type: ignore[union-attr]
    assert manifest.system == work.system and manifest.dependencies == ""

    # The agent's path: the code artifact, its manifest, the layer, the runner's PATH and LD_LIBRARY_PATH.
    artifacts = ArtifactStore(tmp_path / "node" / "artifacts", fetcher(store))
    truss_dir = archive.truss_root(await artifacts.materialise(work.digest))
    layer = await system_layer.materialise(truss_dir, artifacts)
    assert layer is not None and layer.is_relative_to(tmp_path / "node")
    env = {**os.environ, **system_layer.layer_env(layer, os.environ)}
    hello = shutil.which("hello", path=env["PATH"])
    assert hello is not None and Path(hello).is_relative_to(layer)  # the layer's, not /usr/bin's
    assert run([hello], env).stdout == "Hello, world!\n"
    tidy = run(["tidy", "-v"], env)
    assert tidy.returncode == 0 and "HTML Tidy" in tidy.stdout, tidy.stderr
    if not installed("libtidy5deb1"):  # its library is the layer's: without LD_LIBRARY_PATH tidy cannot start
        bare = run([str(layer / "usr/bin/tidy"), "-v"])
        assert bare.returncode != 0 and "libtidy" in bare.stderr

    # Pushed again (any code change): the layer is the stored one, apt is not asked.
    again = build(store, f"system_packages: {PACKAGES}\nmodel_name: again\n")
    assert again.system == work.system and again.digest != work.digest
    assert not any(e.text.startswith("$ apt-get") for e in again.log)
    assert any("already stored (cached)" in e.text for e in again.log)


def test_with_requirements_the_manifest_names_both_layers(
    tmp_path: Path,  # noqa: F811
) -> None:
    store = FileArtifactStore(tmp_path / "builder")
    work = build_or_skip(store, f"system_packages: {PACKAGES}\nrequirements: [six==1.16.0]\npython_version: py311\n")
    assert work.dependencies and work.system
    with tarfile.open(fileobj=io.BytesIO(store.get(work.digest)), mode="r:gz") as tar:
        manifest = EnvironmentManifest.from_json(tar.extractfile(".kingpost/environment.json").read().decode())  # type: ignore[union-attr]
    assert (manifest.dependencies, manifest.system) == (work.dependencies, work.system) and manifest.python_version


def test_a_package_apt_cannot_find_fails_the_build_naming_it(
    tmp_path: Path,  # noqa: F811
) -> None:
    store = FileArtifactStore(tmp_path / "builder")
    with pytest.raises(InvalidArgument) as failed:
        build_or_skip(store, "system_packages: [hello, kingpost-no-such-package]\n")
    assert "Unable to locate package kingpost-no-such-package" in failed.value.message
    assert failed.value.message.startswith("system_packages: ")


def test_without_the_setting_the_build_fails_naming_it(
    tmp_path: Path,  # noqa: F811
) -> None:
    with pytest.raises(InvalidArgument, match="allow_build_commands is false"):
        build(FileArtifactStore(tmp_path / "builder"), f"system_packages: {PACKAGES}\n", allow=False)


async def test_a_replica_with_system_packages_starts_fresh_with_the_layer_first(
    supervisor: ReplicaSupervisor, bus: NatsBus, builder: tuple[BuilderDouble, str], tmp_path: Path  # noqa: F811
) -> None:
    double, _ = builder
    store = FileArtifactStore(tmp_path / "builder")
    work = build_or_skip(store, f"system_packages: {PACKAGES}\n")
    for digest in (work.digest, work.system):
        double.add(store.get(digest))
    # A plain replica first, so an idle standby runner is waiting.
    plain = await watch(bus, subjects.replica_subject("rep_plain"), events_pb2.ReplicaEvent)
    await supervisor.start(ReplicaSpec("rep_plain", "dep_plain", "mdl_test", double.add(truss_tarball(ENV_MODEL))))
    await plain.wait_for(state_is(READY), "READY")
    await supervisor.standby.wait_started()

    seen = await watch(bus, subjects.replica_subject("rep_sys"), events_pb2.ReplicaEvent)
    await supervisor.start(ReplicaSpec("rep_sys", "dep_sys", "mdl_test", work.digest))
    ready = await seen.wait_for(state_is(READY), "READY")
    assert supervisor.standby.taken == 0  # its PATH was fixed before the layer: not used
    answer = await predict(ready.address, {})
    assert Path(answer["hello"]).is_relative_to(tmp_path / "agent" / "artifacts")
    assert answer["says"] == "Hello, world!"
    assert answer["tidy_code"] == 0 and "HTML Tidy" in answer["tidy"]
