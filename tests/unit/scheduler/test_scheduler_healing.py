"""Replicas that heal (issue 21), the scheduler's decisions: what an agent's report does to a replica,
when a deployment is ACTIVE, UNHEALTHY or FAILED, what the reconcile pass does with a crashed
replica, and that a FAILED deployment may be activated again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kingpost_scheduler import healing, lifecycle, timers
from kingpost_scheduler.facts import FAILED, PENDING, READY, RESTARTING, STARTING, STOPPING, Node, Replica
from kingpost_scheduler.healing import Report
from kingpost_scheduler.lifecycle import DeploymentFacts
from kingpost_scheduler.reconcile import Failure, plan

T0 = datetime(2025, 1, 1, tzinfo=UTC)
KILLED = ("runner was killed by signal 9 (SIGKILL); last 3 lines of its log:\n"
          "loading\nserving on 127.0.0.1:9001\nabout to crash")


def rep(rid: str = "r1", state: str = READY, *, since: datetime = T0, looping: bool = False,
        restarts: int = 0, message: str = "", dep: str = "d1") -> Replica:
    return Replica(rid, dep, "node_a", state, since, address="10.0.0.1:9001" if state == READY else "",
                   message=message, restarts=restarts, crash_looping=looping)


def restarting(*, held_back_s: float = 0.0, restarts: int = 1, message: str = KILLED) -> Report:
    return Report(healing.REPORT_RESTARTING, message=message, restarts=restarts, at=T0,
                  next_restart_at=T0 + timedelta(seconds=held_back_s))


def dep(**kw: object) -> DeploymentFacts:
    values: dict[str, object] = {"id": "d1", "name": "deployment-1", "status": lifecycle.ACTIVE,
                                 "artifact_digest": "sha256:ab", "has_served": True}
    values.update(kw)
    return DeploymentFacts(**values)  # type: ignore[arg-type]


# --- what a report does to a replica -------------------------------------------------------------


def test_a_crash_after_ready_is_restarting_unrouted_with_its_last_output() -> None:
    change = healing.after_report(rep(), restarting())
    assert change is not None
    assert (change.state, change.address, change.restarts, change.crash_looping) == (RESTARTING, "", 1, False)
    assert change.http_address == ""  # nor does Envoy call it straight
    assert change.message == KILLED


def test_a_restart_held_back_is_a_crash_loop() -> None:
    change = healing.after_report(rep(state=RESTARTING, restarts=1), restarting(held_back_s=2, restarts=2))
    assert change is not None and change.crash_looping and change.restarts == 2


def test_ready_again_takes_the_new_address_keeps_the_last_exit_and_is_no_cold_start() -> None:
    change = healing.after_report(rep(state=RESTARTING, restarts=1, message=KILLED),
                                  Report(healing.REPORT_READY, address="10.0.0.1:9002", restarts=1,
                                         http_address="10.0.0.1:9003"))
    assert change is not None
    assert (change.state, change.address, change.http_address, change.crash_looping, change.cold_start) == (
        READY, "10.0.0.1:9002", "10.0.0.1:9003", False, False)
    assert change.message is None  # unchanged: `deployments get` still shows how it last ended
    first = healing.after_report(rep(state=STARTING), Report(healing.REPORT_READY, address="10.0.0.1:9001"))
    assert first is not None and first.cold_start


def test_reports_about_unknown_or_stopping_replicas_change_nothing() -> None:
    for report in (restarting(), Report(healing.REPORT_STOPPED), Report(healing.REPORT_READY, address="x:1")):
        assert healing.after_report(None, report) is None
        assert healing.after_report(rep(state=STOPPING), report) is None


def test_restart_counts_never_go_back_and_stopped_forgets() -> None:
    change = healing.after_report(rep(state=READY, restarts=4), restarting(restarts=2))
    assert change is not None and change.restarts == 4
    stopped = healing.after_report(rep(), Report(healing.REPORT_STOPPED))
    assert stopped is not None and stopped.forget
    assert healing.after_report(rep(state=READY), Report(healing.REPORT_STARTING)) is None
    starting = healing.after_report(rep(state=PENDING), Report(healing.REPORT_STARTING))
    assert starting is not None and starting.state == STARTING


# --- the deployment's status ---------------------------------------------------------------------


def test_a_deployment_stays_active_while_a_replica_serves_or_restarts_at_once() -> None:
    assert lifecycle.deployment_status(dep(), [rep(state=RESTARTING)]).status == lifecycle.ACTIVE
    assert lifecycle.deployment_status(dep(), [rep("r1", RESTARTING, looping=True), rep("r2")]
                                       ).status == lifecycle.ACTIVE


def test_unhealthy_only_when_every_replica_crash_loops_naming_their_last_lines() -> None:
    looping = [rep("r1", RESTARTING, looping=True, restarts=3, message=KILLED),
               rep("r2", RESTARTING, looping=True, restarts=5, message="runner exited with status 3")]
    status = lifecycle.deployment_status(dep(), looping)
    assert status.status == lifecycle.UNHEALTHY
    assert status.reason.startswith("every replica is crash-looping; replica r1 crash-looping after 3 "
                                    "restart(s): runner was killed by signal 9")
    assert "about to crash" in status.reason and "r2 crash-looping after 5" in status.reason
    assert lifecycle.not_serving_reason(status.status, status.reason) == status.reason
    # One still starting afresh: not every replica crash-loops (a STOPPING one does not count).
    assert lifecycle.deployment_status(dep(), [looping[0], rep("r3", STARTING)]).status != lifecycle.UNHEALTHY
    assert lifecycle.deployment_status(dep(), [looping[0], rep("r3", STOPPING)]).status == lifecycle.UNHEALTHY
    # Ready again: ACTIVE again.
    assert lifecycle.deployment_status(dep(status=lifecycle.UNHEALTHY), [rep()]).status == lifecycle.ACTIVE


def test_a_load_failure_crash_loops_only_a_deployment_that_has_served() -> None:
    failed = [rep(state=FAILED, message="ImportError: no torch")]
    assert lifecycle.deployment_status(dep(), failed).status == lifecycle.UNHEALTHY
    new = dep(status=lifecycle.DEPLOYING, has_served=False)
    assert lifecycle.deployment_status(new, failed).status == lifecycle.DEPLOYING  # the pass fails it
    assert lifecycle.has_served(new, lifecycle.ACTIVE) and not lifecycle.has_served(new, lifecycle.DEPLOYING)


def test_a_failed_deployment_with_a_build_can_be_activated_again_as_new() -> None:
    failed = dep(status=lifecycle.FAILED, status_reason="ImportError", has_served=False)
    assert lifecycle.activated(failed) == lifecycle.Status(lifecycle.DEPLOYING)
    assert lifecycle.desired_replicas(failed) == 0
    assert lifecycle.desired_replicas(dep(status=lifecycle.DEPLOYING, has_served=False)) == 1
    build_failed = dep(status=lifecycle.FAILED, status_reason="build failed", artifact_digest="")
    assert lifecycle.activated(build_failed).status == lifecycle.FAILED
    assert lifecycle.activated(dep(status=lifecycle.INACTIVE)).status == lifecycle.INACTIVE


# --- the reconcile pass --------------------------------------------------------------------------

NODES = [Node("node_a", "node_a:7000", T0)]


def run(replicas: list[Replica], now: datetime = T0, served: tuple[str, ...] = ("d1",), want: int = 1):  # type: ignore[no-untyped-def]
    return plan({"d1": want}, replicas, NODES, now=now, node_timeout=timedelta(seconds=15),
                start_timeout=timedelta(seconds=300), served=served)


def test_a_restarting_replica_keeps_its_place_nothing_starts_or_stops() -> None:
    for looping in (False, True):
        p = run([rep(state=RESTARTING, looping=looping, since=T0 - timedelta(hours=1))])
        assert p.empty, p


def test_surplus_goes_restarting_before_ready() -> None:
    p = run([rep("r1"), rep("r2", RESTARTING, looping=True)], want=1)
    assert p.stops == ("r2",)


def test_a_load_failure_before_serving_fails_the_deployment_and_starts_nothing() -> None:
    p = run([rep(state=FAILED, message="ImportError: no torch")], served=())
    assert p.failures == (Failure("d1", "ImportError: no torch"),)
    assert p.stops == ("r1",) and not p.starts


def test_a_load_failure_after_serving_waits_then_is_replaced() -> None:
    failed = rep(state=FAILED, message="ImportError: no torch")
    assert run([failed], now=T0 + timedelta(seconds=5)).empty
    p = run([failed], now=T0 + healing.REPLACE_FAILED_AFTER)
    assert not p.failures and p.stops == ("r1",) and len(p.starts) == 1
    due = timers.next_due(now=T0, replicas=[failed], start_timeout=timedelta(seconds=300), demoted_at=[],
                          drain=timedelta(seconds=30), canaries=[])
    assert due == T0 + healing.REPLACE_FAILED_AFTER


def test_the_tail_keeps_how_it_ended_and_the_last_lines() -> None:
    long = "runner exited with status 1; last 30 lines of its log:\n" + "\n".join(f"line {i}" for i in range(30))
    assert healing.tail(long, 2) == "runner exited with status 1; last 30 lines of its log:\n...\nline 28\nline 29"
    assert healing.tail(long, 0) == "runner exited with status 1; last 30 lines of its log:"
    assert healing.tail("one line", 3) == "one line"


def test_an_agents_event_reads_as_a_report_held_back_when_its_restart_waits() -> None:
    from google.protobuf.timestamp_pb2 import Timestamp

    from kingpost.v1 import events_pb2
    from kingpost_scheduler.events import report_of

    def ts(at: datetime) -> Timestamp:
        out = Timestamp()
        out.FromDatetime(at)
        return out

    event = events_pb2.ReplicaEvent(replica_id="r1", state=events_pb2.REPLICA_STATE_RESTARTING, message=KILLED,
                                    restarts=3, at=ts(T0), next_restart_at=ts(T0 + timedelta(seconds=4)))
    report = report_of(event)
    assert (report.state, report.restarts, report.message, report.held_back) == (
        healing.REPORT_RESTARTING, 3, KILLED, True)
    event.next_restart_at.CopyFrom(ts(T0))
    assert not report_of(event).held_back  # restarted at once: not a crash loop
    event.state = 42  # type: ignore[assignment]  # a newer agent's state
    assert healing.after_report(rep(), report_of(event)) is None
