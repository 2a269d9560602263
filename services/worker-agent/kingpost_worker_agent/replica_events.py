"""The ReplicaEvent an agent publishes for each change of a replica (the contract is in events.proto),
and the replica gauge."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from google.protobuf.timestamp_pb2 import Timestamp

from kingpost.v1 import events_pb2

from kingpost_worker_agent import metrics
STARTING = events_pb2.REPLICA_STATE_STARTING
READY = events_pb2.REPLICA_STATE_READY
FAILED = events_pb2.REPLICA_STATE_FAILED
STOPPED = events_pb2.REPLICA_STATE_STOPPED
RESTARTING = events_pb2.REPLICA_STATE_RESTARTING


def timestamp_at(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def runner_exit(returncode: int | None, at: float, last_lines: Sequence[str]) -> events_pb2.RunnerExit:
    """How a runner ended: `returncode` as Popen has it (-N: signal N), None when unknown."""
    if returncode is None:
        return events_pb2.RunnerExit(status_known=False, at=timestamp_at(at), last_lines=last_lines)
    return events_pb2.RunnerExit(exit_code=max(returncode, 0), signal=max(-returncode, 0), status_known=True,
                                 at=timestamp_at(at), last_lines=last_lines)


def replica_event(*, replica_id: str, deployment_id: str, node_id: str, state: int, at: float, address: str = "",
                  http_address: str = "", message: str = "", restarts: int = 0,
                  last_exit: events_pb2.RunnerExit | None = None, next_restart_at: float = 0.0
                  ) -> events_pb2.ReplicaEvent:
    return events_pb2.ReplicaEvent(
        replica_id=replica_id, deployment_id=deployment_id, node_id=node_id, state=state,
        address=address if state == READY else "", http_address=http_address if state == READY else "",
        message=message, at=timestamp_at(at), restarts=restarts,
        last_exit=last_exit, next_restart_at=timestamp_at(next_restart_at) if state == RESTARTING else None,
    )


def update_gauge(states: Iterable[int]) -> None:
    counts = {name: 0 for name in ("STARTING", "READY", "RESTARTING", "FAILED")}
    for state in states:
        name = events_pb2.ReplicaState.Name(state).removeprefix("REPLICA_STATE_")
        if name in counts:
            counts[name] += 1
    for name, n in counts.items():
        metrics.REPLICAS.labels(name.lower()).set(n)
