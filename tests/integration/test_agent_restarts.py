"""Replicas that heal on their node, and runners that outlive their agent (issue 21).

A runner that ends after its replica was ready is restarted by the agent (at once, then backing off
while it keeps ending); a hard-stopped agent leaves its runners serving and the next agent on the
same work dir adopts them. Real NATS, real runner processes, the agent in-process (and, once, as its
own process killed with SIGKILL).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kingpost import rpc
from kingpost.bus import subjects
from kingpost.errors import Unavailable
from kingpost.bus.nats_bus import NatsBus
from kingpost.v1 import agent_pb2, events_pb2
from kingpost_worker_agent.artifacts import ArtifactStore, BuilderArtifacts
from kingpost_worker_agent.replicas import ReplicaSupervisor
from tests.integration.test_agent import (  # noqa: F401  (fixtures)
    ECHO_MODEL, Agent, BuilderDouble, Events, _start_in, agent, agent_process, builder, bus, contained,
    predict, process_exists, runner_python, state_is, tmp_path, truss_tarball, wait_until_gone, watch,
)

STARTING = events_pb2.REPLICA_STATE_STARTING
READY = events_pb2.REPLICA_STATE_READY
FAILED = events_pb2.REPLICA_STATE_FAILED
STOPPED = events_pb2.REPLICA_STATE_STOPPED
RESTARTING = events_pb2.REPLICA_STATE_RESTARTING

CRASH_ON_PREDICT_MODEL = """
import os, sys

class Model:
    def predict(self, model_input):
        print(f"about to crash on {model_input}", flush=True)
        print("the crash's own words on stderr", file=sys.stderr, flush=True)
        os._exit(3)
"""

COUNTING_MODEL = """
class Model:
    def predict(self, model_input):
        print(f"predicting {model_input['n']}", flush=True)
        return {"n": model_input["n"]}
"""


def runners_under(directory: Path) -> list[int]:
    """Live runner processes started from `directory` (a test's own work dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "kingpost_runner" in cmdline and str(directory) in cmdline and process_exists(int(entry.name)):
            found.append(int(entry.name))
    return found


def nth(seen: Events, state: int, n: int):
    """The n-th (1-based) event in `state`, for Events.wait_for."""
    return lambda e: e.state == state and [x for x in seen.items if x.state == state].index(e) == n - 1


def delay_of(event: events_pb2.ReplicaEvent) -> float:
    return (event.next_restart_at.ToNanoseconds() - event.at.ToNanoseconds()) / 1e9


@pytest.fixture
async def second_agent(bus: NatsBus, builder: tuple[BuilderDouble, str], tmp_path: Path,  # noqa: F811
                       ) -> AsyncIterator[ReplicaSupervisor]:
    """Another agent on the first one's work dir, as `kingpost up` starts after the first died."""
    _, builder_address = builder
    artifacts = BuilderArtifacts(builder_address, "")
    supervisor = ReplicaSupervisor(
        node_id="node_second", artifacts=ArtifactStore(tmp_path / "agent" / "artifacts", artifacts.fetch),
        publisher=bus, work_dir=tmp_path / "agent", stop_grace_seconds=5.0, runner_python=runner_python(),
        containment=contained(tmp_path / "agent", "node_second"),
    )
    yield supervisor
    await supervisor.shutdown()
    await artifacts.close()


async def test_a_runner_killed_after_ready_is_restarted_at_once_and_serves_again(
    agent: Agent, bus: NatsBus, builder: tuple[BuilderDouble, str]  # noqa: F811
) -> None:
    double, _ = builder
    digest = double.add(truss_tarball(ECHO_MODEL, "phoenix"))
    seen = await watch(bus, subjects.replica_subject("rep_phoenix"), events_pb2.ReplicaEvent)
    await agent.start("rep_phoenix", digest)
    await seen.wait_for(state_is(READY), "READY")
    killed = await agent.pid_of("rep_phoenix")
    os.kill(killed, signal.SIGKILL)

    restarting = await seen.wait_for(state_is(RESTARTING), "RESTARTING")
    assert restarting.restarts == 1 and restarting.address == ""
    assert restarting.last_exit.signal == signal.SIGKILL and restarting.last_exit.status_known
    assert "runner was killed by signal 9 (SIGKILL)" in restarting.message
    assert "tiny model loading" in restarting.last_exit.last_lines  # the killed runner's own output
    assert delay_of(restarting) == 0  # the first restart after serving: at once
    assert "rep_phoenix" in agent.supervisor.running_ids()  # the heartbeat keeps listing it

    again = await seen.wait_for(nth(seen, READY, 2), "READY again")
    assert [e.state for e in seen.items] == [STARTING, READY, RESTARTING, READY]
    assert again.restarts == 1 and again.last_exit.signal == signal.SIGKILL
    assert await predict(again.address, {"x": 2}) == {"echo": {"x": 2}, "loaded": True}
    assert await agent.pid_of("rep_phoenix") not in (0, killed)


async def test_a_model_that_exits_on_every_predict_restarts_ever_later_with_its_last_output(
    agent: Agent, bus: NatsBus, builder: tuple[BuilderDouble, str], tmp_path: Path  # noqa: F811
) -> None:
    double, _ = builder
    digest = double.add(truss_tarball(CRASH_ON_PREDICT_MODEL, "crashy"))
    seen = await watch(bus, subjects.replica_subject("rep_crashy"), events_pb2.ReplicaEvent)
    await agent.start("rep_crashy", digest)
    for n in (1, 2, 3):
        ready = await seen.wait_for(nth(seen, READY, n), f"READY {n}")
        with pytest.raises(Unavailable):  # the runner died mid-request
            await predict(ready.address, {"n": n})
        crashed = await seen.wait_for(nth(seen, RESTARTING, n), f"RESTARTING {n}")
        assert crashed.restarts == n
        assert crashed.last_exit.exit_code == 3 and crashed.last_exit.signal == 0
        assert f"about to crash on {{'n': {n}}}" in crashed.last_exit.last_lines
        assert "the crash's own words on stderr" in crashed.last_exit.last_lines
        assert crashed.message.startswith("runner exited with code 3; last ")
    delays = [delay_of(e) for e in seen.items if e.state == RESTARTING]
    assert delays == [0.0, 1.0, 2.0]  # RestartPolicy's defaults: at once, then 1 s doubling
    assert FAILED not in [e.state for e in seen.items]

    # Stopped while it waits out its backoff: it stops at once, and no runner is left or started.
    await rpc.call(agent.stub.StopReplica, agent_pb2.StopReplicaRequest(replica_id="rep_crashy"))
    await seen.wait_for(state_is(STOPPED), "STOPPED")
    assert runners_under(tmp_path) == []
    assert not (tmp_path / "agent" / "replicas" / "rep_crashy.json").exists()


async def test_a_model_that_fails_to_load_at_first_start_fails_and_is_not_restarted(
    agent: Agent, bus: NatsBus, builder: tuple[BuilderDouble, str], tmp_path: Path  # noqa: F811
) -> None:
    double, _ = builder
    digest = double.add(truss_tarball('raise SystemExit("no weights here")\n', "unloadable"))
    seen = await watch(bus, subjects.replica_subject("rep_unloadable"), events_pb2.ReplicaEvent)
    await agent.start("rep_unloadable", digest)
    failed = await seen.wait_for(state_is(FAILED), "FAILED")
    assert [e.state for e in seen.items] == [STARTING, FAILED]
    assert "before it was ready" in failed.message and "no weights here" in failed.message
    assert failed.restarts == 0 and not failed.HasField("last_exit")
    assert runners_under(tmp_path) == [] and "rep_unloadable" not in agent.supervisor.running_ids()
    assert not (tmp_path / "agent" / "replicas" / "rep_unloadable.json").exists()  # nothing to adopt


async def test_the_next_agent_adopts_the_runner_a_hard_stopped_agent_left_serving(
    agent: Agent, second_agent: ReplicaSupervisor, bus: NatsBus, builder: tuple[BuilderDouble, str],  # noqa: F811
    tmp_path: Path,  # noqa: F811
) -> None:
    double, _ = builder
    digest = double.add(truss_tarball(COUNTING_MODEL, "counting"))
    seen = await watch(bus, subjects.replica_subject("rep_kept"), events_pb2.ReplicaEvent)
    logs = await watch(bus, subjects.replica_log_subject("dep_test", "rep_kept"), events_pb2.LogLine)
    await agent.start("rep_kept", digest)
    ready = await seen.wait_for(state_is(READY), "READY")
    pid = await agent.pid_of("rep_kept")
    assert await predict(ready.address, {"n": 1}) == {"n": 1}
    await logs.wait_for(lambda m: m.text == "predicting 1", "the first prediction's line")

    await agent.supervisor.detach()  # the agent is gone; its runner is not
    assert process_exists(pid)
    assert await predict(ready.address, {"n": 2}) == {"n": 2}  # served with no agent at all

    assert await second_agent.adopt() == ["rep_kept"]
    assert second_agent.running_ids() == ["rep_kept"]  # its first heartbeat lists the replica
    adopted = await seen.wait_for(nth(seen, READY, 2), "READY from the adopting agent")
    assert adopted.address == ready.address and adopted.node_id == "node_second"
    assert adopted.http_address == ready.http_address != ""  # its HTTP data plane too
    assert [r.pid for r in second_agent.list()] == [pid] and runners_under(tmp_path) == [pid]
    assert await predict(adopted.address, {"n": 3}) == {"n": 3}

    # The line written while no agent watched, and the one after adoption, reach NATS and the file.
    await logs.wait_for(lambda m: m.text == "predicting 3", "the line after adoption")
    texts = [m.text for m in logs.items]
    assert [t for t in texts if t.startswith("predicting")] == ["predicting 1", "predicting 2", "predicting 3"]
    assert "predicting 3" in (tmp_path / "agent" / "logs" / "rep_kept.log").read_text()

    # Adopted, it is restarted like any runner when it ends, and stopped by the adopting agent.
    os.kill(pid, signal.SIGKILL)
    restarting = await seen.wait_for(state_is(RESTARTING), "RESTARTING")
    assert restarting.restarts == 1
    await seen.wait_for(nth(seen, READY, 3), "READY after the restart")
    await second_agent.stop("rep_kept")
    assert runners_under(tmp_path) == []


async def test_a_runner_that_ended_while_no_agent_watched_is_restarted_by_the_next(
    agent: Agent, second_agent: ReplicaSupervisor, bus: NatsBus, builder: tuple[BuilderDouble, str],  # noqa: F811
    tmp_path: Path,  # noqa: F811
) -> None:
    double, _ = builder
    digest = double.add(truss_tarball(ECHO_MODEL, "orphaned"))
    seen = await watch(bus, subjects.replica_subject("rep_lost"), events_pb2.ReplicaEvent)
    await agent.start("rep_lost", digest)
    await seen.wait_for(state_is(READY), "READY")
    pid = await agent.pid_of("rep_lost")
    await agent.supervisor.detach()
    os.kill(pid, signal.SIGKILL)
    await wait_until_gone(pid)

    assert await second_agent.adopt() == []  # nothing alive to adopt
    restarting = await seen.wait_for(state_is(RESTARTING), "RESTARTING")
    assert "runner ended while the agent was away" in restarting.message
    again = await seen.wait_for(nth(seen, READY, 2), "READY again")
    assert await predict(again.address, {}) == {"echo": {}, "loaded": True}
    assert runners_under(tmp_path) == [p.pid for p in second_agent.list()]


async def test_only_one_agent_holds_a_work_dir(
    second_agent: ReplicaSupervisor, bus: NatsBus, builder: tuple[BuilderDouble, str], tmp_path: Path  # noqa: F811
) -> None:
    await second_agent.adopt()
    fetcher = BuilderArtifacts(builder[1], "")
    third = ReplicaSupervisor(node_id="node_third", artifacts=ArtifactStore(tmp_path / "third", fetcher.fetch),
                              publisher=bus, work_dir=tmp_path / "agent")
    with pytest.raises(Unavailable, match="another worker agent is running with work dir"):
        await third.adopt()
    await fetcher.close()


async def test_a_killed_agent_process_leaves_its_runner_serving_and_its_successor_adopts_it(
    agent_process, bus: NatsBus, builder: tuple[BuilderDouble, str], tmp_path: Path  # noqa: F811
) -> None:
    start, log_path = agent_process
    double, _ = builder
    digest = double.add(truss_tarball(ECHO_MODEL, "survivor"))
    seen = await watch(bus, subjects.replica_subject("rep_survivor"), events_pb2.ReplicaEvent)
    first, address = start()
    await _start_in(address, "rep_survivor", digest)
    ready = await seen.wait_for(state_is(READY), "READY")
    runner_pid = next(iter(runners_under(tmp_path)))

    first.send_signal(signal.SIGKILL)
    await asyncio.to_thread(first.wait, 30)
    assert await predict(ready.address, {"alone": True}) == {"echo": {"alone": True}, "loaded": True}

    second, address = start()
    adopted = await seen.wait_for(nth(seen, READY, 2), "READY from the successor")
    assert adopted.address == ready.address
    stub = await _start_in(address, "rep_survivor", digest)  # a retried StartReplica changes nothing
    reply = await rpc.call(stub.ListReplicas, agent_pb2.ListReplicasRequest())
    assert [(r.replica_id, r.pid) for r in reply.replicas] == [("rep_survivor", runner_pid)]
    assert runners_under(tmp_path) == [runner_pid]

    second.send_signal(signal.SIGTERM)  # a clean stop still stops its runners, adopted ones included
    assert await asyncio.to_thread(second.wait, 30) == 0, log_path.read_text()
    await seen.wait_for(state_is(STOPPED), "STOPPED")
    assert not process_exists(runner_pid)
