"""A pushed model is contained (issue 21): it reads nothing of the platform's or of other replicas',
and it cannot take more memory than its `resources.memory`. docs/isolation.md.

The agent runs in-process with real NATS and real runners, on a home laid out and closed as
`kingpost up` lays it out. Each test exercises what this machine allows (the agent says which at
start, `Containment.summary`): users of their own where the tests run as root, memory cgroups where
one can be made, RLIMIT_DATA otherwise; a test that needs what the machine lacks is skipped saying so.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kingpost import client_config
from kingpost.bus import subjects
from kingpost.bus.nats_bus import NatsBus
from kingpost.errors import Internal, Unavailable
from kingpost.up_plan import Layout
from kingpost.v1 import events_pb2
from kingpost_worker_agent.artifacts import ArtifactStore, BuilderArtifacts
from kingpost_worker_agent.containment import Containment, ContainmentRequired
from kingpost_worker_agent.replicas import ReplicaSpec, ReplicaSupervisor
from tests.fixtures.archives import tar_of
from tests.fixtures.servers import unavailable
from tests.integration.test_agent import (  # noqa: F401  (fixtures)
    BuilderDouble, Events, builder, bus, contained, predict, process_exists, runner_python, state_is,
    tmp_path, truss_tarball, wait_until_gone, watch,
)
from tests.integration.test_agent_restarts import nth

READY = events_pb2.REPLICA_STATE_READY
RESTARTING = events_pb2.REPLICA_STATE_RESTARTING
STOPPED = events_pb2.REPLICA_STATE_STOPPED
ADMIN_KEY = "kp_admin_0123456789abcdef"

VICTIM_MODEL = """
import os

class Model:
    def load(self):
        with open(os.path.join(os.environ["TMPDIR"], "secret.txt"), "w") as f:
            f.write("the victim's own notes")

    def predict(self, request):
        return {"pid": os.getpid(), "uid": os.getuid(), "tmpdir": os.environ["TMPDIR"]}
"""

SNOOP_MODEL = """
import os

class Model:
    def predict(self, request):
        found = {}
        for path in request["read"]:
            try:
                with open(path, "rb") as f:
                    found[path] = "read: " + f.read(100).decode(errors="replace")
            except OSError as e:
                found[path] = type(e).__name__
        for path in request["list"]:
            try:
                found[path] = "listed: " + ",".join(sorted(os.listdir(path)))
            except OSError as e:
                found[path] = type(e).__name__
        for pid in request["signal"]:
            try:
                os.kill(pid, 0)  # may it signal that process?
                found[f"signal {pid}"] = "allowed"
            except OSError as e:
                found[f"signal {pid}"] = type(e).__name__
        with open(os.path.join(os.environ["HOME"], "mine.txt"), "w") as f:
            f.write("its own working area is writable")
        return {"found": found, "uid": os.getuid(), "environ": sorted(os.environ), "home": os.environ["HOME"]}
"""

HOG_MODEL = """
class Model:
    def predict(self, request):
        hog = b"x" * (request["mib"] << 20)  # touched: every page is really used
        return {"held_mib": len(hog) >> 20}
"""

LITTER_MODEL = """
import os, subprocess

class Model:
    def load(self):
        home = os.environ["TMPDIR"]
        locked = os.path.join(home, "locked")
        os.makedirs(os.path.join(locked, "deeper"))
        with open(os.path.join(locked, "deeper", "file"), "w") as f:
            f.write("x")
        os.chmod(locked, 0)  # unreadable and unsearchable, even for its owner
        # A daemon that leaves the runner's process group and session.
        self.daemon = subprocess.Popen(["sleep", "600"], start_new_session=True)

    def predict(self, request):
        return {"daemon": self.daemon.pid, "home": os.environ["TMPDIR"]}
"""


@dataclass
class Node:
    supervisor: ReplicaSupervisor
    containment: Containment
    layout: Layout
    builder: BuilderDouble
    bus: NatsBus
    adopted: list[str]  # the runners it adopted when it started

    async def start(self, replica_id: str, tarball: bytes) -> tuple[Events, events_pb2.ReplicaEvent]:
        seen = await watch(self.bus, subjects.replica_subject(replica_id), events_pb2.ReplicaEvent)
        digest = self.builder.add(tarball)
        await self.supervisor.start(ReplicaSpec(replica_id, f"dep_{replica_id}", "mdl_test", digest))
        return seen, await seen.wait_for(state_is(READY), f"{replica_id} READY")


def kingpost_home(home: Path) -> Layout:
    """A home as `kingpost up` leaves it: its directories and modes, the admin key, a database, configs."""
    layout = Layout(home)
    for d in layout.dirs():
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(layout.mode(d))
    client_config.write(home, client_config.ClientConfig(api_key=ADMIN_KEY))
    (layout.state / "kingpost.db").write_bytes(b"SQLite format 3\x00 the platform's rows")
    (layout.run / "agent.toml").write_text('internal_token = "tok_internal_secret"\n')
    layout.log("scheduler").write_text("scheduler: a line of the platform's own\n")
    return layout


async def node_on(layout: Layout, bus: NatsBus, builder: tuple[BuilderDouble, str],  # noqa: F811
                  node_id: str, **options: str) -> AsyncIterator[Node]:
    fetcher = BuilderArtifacts(builder[1], "")
    containment = contained(layout.agent, node_id, **options)
    supervisor = ReplicaSupervisor(
        node_id=node_id, artifacts=ArtifactStore(layout.agent / "artifacts", fetcher.fetch), publisher=bus,
        work_dir=layout.agent, stop_grace_seconds=5.0, runner_python=runner_python(), containment=containment)
    adopted = await supervisor.adopt()
    yield Node(supervisor, containment, layout, builder[0], bus, adopted)
    await supervisor.shutdown()
    await fetcher.close()


@pytest.fixture
async def node(bus: NatsBus, builder: tuple[BuilderDouble, str], tmp_path: Path,  # noqa: F811
               monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Node]:
    """An agent on a `kingpost up` home, with the platform's own in its environment, as `up` gives it."""
    layout = kingpost_home(tmp_path / "home")
    monkeypatch.setenv("KINGPOST_HOME", str(layout.home))
    monkeypatch.setenv("KINGPOST_ADMIN_KEY", ADMIN_KEY)
    async for n in node_on(layout, bus, builder, "node_contained"):
        yield n


def uid_of(pid: int) -> int:
    return os.stat(f"/proc/{pid}").st_uid


async def test_a_model_reads_nothing_of_the_platform_nor_of_another_replica(node: Node) -> None:
    if node.containment.ids is None:
        unavailable(f"runners cannot have users of their own here: {node.containment.summary()}")
    _, victim_ready = await node.start("rep_victim", tar_of({
        "config.yaml": b"model_name: victim\n", "model/model.py": VICTIM_MODEL.encode(),
        "data/weights.txt": b"the victim's weights"}))
    victim = await predict(victim_ready.address, {})
    victim_truss = Path(os.readlink(f"/proc/{victim['pid']}/cwd"))  # as root: the test may look
    _, snoop_ready = await node.start("rep_snoop", truss_tarball(SNOOP_MODEL, "snoop"))
    home, work = node.layout.home, node.layout.agent
    secrets = [home / "config.toml", home / "state" / "kingpost.db", home / "run" / "agent.toml",
               home / "logs" / "scheduler.log", home / "artifacts", work / "replicas" / "rep_victim.json",
               work / "logs" / "rep_victim.log", work / "runner_ids.json",
               victim_truss / "model" / "model.py", victim_truss / "data" / "weights.txt",
               Path(victim["tmpdir"]) / "secret.txt",
               Path(f"/proc/{os.getpid()}/environ"), Path(f"/proc/{victim['pid']}/environ"),
               Path(f"/proc/{victim['pid']}/cwd/model/model.py")]
    listed = [home, work, work / "artifacts", work / "envs", work / "homes", work / "logs"]
    answer = await predict(snoop_ready.address, {"read": [str(p) for p in secrets],
                                                  "list": [str(p) for p in listed],
                                                  "signal": [victim["pid"], os.getpid()]})

    got = {k: v for k, v in answer["found"].items() if v.startswith(("read:", "listed:", "allowed"))}
    assert got == {}, f"the model got at {got}"
    assert set(answer["found"].values()) <= {"PermissionError", "IsADirectoryError"}
    assert answer["uid"] not in (0, victim["uid"]) and victim["uid"] != 0
    assert not [n for n in answer["environ"] if n.startswith(("KINGPOST_HOME", "KINGPOST_ADMIN", "NATS"))]
    assert Path(answer["home"]) == work / "homes" / "rep_snoop"  # its own, and writable


async def test_a_model_allocating_beyond_its_memory_is_stopped_and_the_replica_serves_again(
    node: Node,
) -> None:
    memory = node.containment.memory
    if memory == "off":
        unavailable(f"memory limits are off here: {node.containment.summary()}")
    hog = truss_tarball(HOG_MODEL, "hog", "resources:\n  memory: 256Mi\n")
    seen, ready = await node.start("rep_hog", hog)
    assert await predict(ready.address, {"mib": 32}) == {"held_mib": 32}
    log_text = (node.layout.agent / "logs" / "rep_hog.log").read_text()
    assert "memory limit 256Mi" in log_text

    if memory.startswith("cgroup"):  # the kernel kills the runner; the agent restarts it and says why
        with pytest.raises(Unavailable):
            await predict(ready.address, {"mib": 1024})
        restarting = await seen.wait_for(state_is(RESTARTING), "RESTARTING")
        assert restarting.last_exit.signal == signal.SIGKILL
        assert "it ran out of memory, using more than its resources.memory (256Mi)" in restarting.message
        ready = await seen.wait_for(nth(seen, READY, 2), "READY again")
    else:  # RLIMIT_DATA: the allocation fails in the model, which goes on serving
        await memory_error_in(node.bus, "rep_hog", ready.address)
    assert await predict(ready.address, {"mib": 32}) == {"held_mib": 32}


async def memory_error_in(bus: NatsBus, replica_id: str, address: str) -> None:  # noqa: F811
    """A predict that allocates past RLIMIT_DATA: a 500 for the caller, MemoryError in the replica's log."""
    logs = await watch(bus, subjects.replica_log_subject(f"dep_{replica_id}", replica_id), events_pb2.LogLine)
    with pytest.raises(Internal, match="Internal Server Error"):
        await predict(address, {"mib": 1024})
    await logs.wait_for(lambda line: line.text.startswith("MemoryError"), "MemoryError in the replica's log")


async def test_without_a_cgroup_an_allocation_beyond_the_limit_raises_memory_error(
    bus: NatsBus, builder: tuple[BuilderDouble, str], tmp_path: Path,  # noqa: F811
) -> None:
    """The fallback where no cgroup can be made (no root, a read-only /sys/fs/cgroup), chosen here."""
    async for n in node_on(kingpost_home(tmp_path / "home"), bus, builder, "node_rlimit", memory="rlimit"):
        capped = truss_tarball(HOG_MODEL, "capped", "resources:\n  memory: 300Mi\n")
        seen, ready = await n.start("rep_capped", capped)
        await memory_error_in(bus, "rep_capped", ready.address)
        assert await predict(ready.address, {"mib": 16}) == {"held_mib": 16}
        assert "RLIMIT_DATA" in (n.layout.agent / "logs" / "rep_capped.log").read_text()
        assert [e.state for e in seen.items] == [events_pb2.REPLICA_STATE_STARTING, READY]  # never restarted


async def test_a_runner_of_its_own_user_is_adopted_restarted_as_that_user_and_cleaned_up(
    node: Node, bus: NatsBus, builder: tuple[BuilderDouble, str],  # noqa: F811
) -> None:
    if node.containment.ids is None:
        unavailable(f"runners cannot have users of their own here: {node.containment.summary()}")
    seen, ready = await node.start("rep_kept", truss_tarball(VICTIM_MODEL, "kept"))
    first = await predict(ready.address, {})
    await node.supervisor.detach()  # the agent dies; its runner serves on

    async for successor in node_on(node.layout, bus, builder, "node_successor"):
        assert successor.adopted == ["rep_kept"]
        adopted = await seen.wait_for(nth(seen, READY, 2), "READY from the successor")
        assert await predict(adopted.address, {}) == first  # the same runner, same user
        os.kill(first["pid"], signal.SIGKILL)
        again = await seen.wait_for(nth(seen, READY, 3), "READY after the restart")
        restarted = await predict(again.address, {})
        assert restarted["uid"] == first["uid"] and restarted["pid"] != first["pid"]

        await successor.supervisor.stop("rep_kept")
        await wait_until_gone(restarted["pid"])
        assert not Path(first["tmpdir"]).exists()  # its working area went with it
        assert not [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                    if _uid_or_none(pid) == first["uid"] and process_exists(pid)]  # nothing of its user runs


def _uid_or_none(pid: int) -> int | None:
    try:
        return uid_of(pid)
    except OSError:
        return None


async def test_what_a_runner_leaves_behind_is_killed_and_removed_when_its_replica_stops(node: Node) -> None:
    if node.containment.ids is None and node.containment.cgroups is None:
        unavailable(f"no user or cgroup holds a runner's daemons here: {node.containment.summary()}")
    seen, ready = await node.start("rep_litter", truss_tarball(LITTER_MODEL, "litter"))
    left = await predict(ready.address, {})
    assert process_exists(left["daemon"])

    await node.supervisor.stop("rep_litter")
    await seen.wait_for(state_is(STOPPED), "STOPPED")
    await wait_until_gone(left["daemon"])
    assert not Path(left["home"]).exists()


def test_an_agent_that_requires_runner_users_refuses_to_start_without_them(tmp_path: Path) -> None:  # noqa: F811
    """runner_users = "required": better no agent than runners that can read the admin key."""
    with pytest.raises(ContainmentRequired, match='runner_users = "required", but '):
        Containment.detect(tmp_path / "agent", "node_strict", runner_python=str(tmp_path / "no-such-python"),
                           users="required")


async def test_live_reload_reaches_a_runner_of_its_own_user_and_survives_its_restart(node: Node) -> None:
    """`kingpost watch`: the replica's own copy of its Truss, made by the agent, is readable by its runner."""
    seen, ready = await node.start("rep_dev", truss_tarball(VICTIM_MODEL, "dev"))
    first = await predict(ready.address, {})
    edited = VICTIM_MODEL.replace('"uid": os.getuid()', '"uid": os.getuid(), "edited": True')
    reply = await node.supervisor.patch("rep_dev", {"model/model.py": edited.encode()}, [])
    assert reply.error == ""
    assert (await predict(ready.address, {}))["edited"] is True

    os.kill(first["pid"], signal.SIGKILL)  # the restarted runner starts from the edited copy
    again = await seen.wait_for(nth(seen, READY, 2), "READY after the restart")
    restarted = await predict(again.address, {})
    assert restarted["edited"] is True and restarted["uid"] == first["uid"]
