"""The reconcile pass: at the end of every write, in its transaction, the desired state meets the actual.

In order: demoted deployments that have drained scale to zero; `reconcile.plan` (start, stop,
forget, fail replicas) is applied; each deployment's status is set (`lifecycle.deployment_status`);
each promotion in progress takes its step (`promotion_steps.step`); deleted models with no replica
left are purged. The pass leaves a `Settled`: what the shells act on until the next pass — the
agents' commands, the replicas each node should list in its heartbeats, the nodes counted live, and
when time alone makes the next pass due (`timers.next_due`).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from kingpost.ids import new_id
from kingpost_scheduler import (
    canary,
    facts,
    lifecycle,
    metrics,
    placement,
    promotion,
    promotion_steps,
    reconcile,
    records,
    store,
    timers,
)
from kingpost_scheduler.tables import DeploymentRecord, EnvironmentRecord, ReplicaRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settled:
    """What one pass leaves for the shells to act on until the next."""

    commands: tuple[reconcile.Command, ...] = ()  # for dispatch.py to send
    # Node id → the replicas we placed there, which its heartbeats should list (heartbeats.py).
    replicas_by_node: Mapping[str, tuple[facts.Replica, ...]] = field(default_factory=dict)
    live_nodes: frozenset[str] = frozenset()  # the nodes the pass counted live
    next_due: datetime | None = None  # when time alone makes the next pass due (timers.py)


class Reconciler:
    def __init__(self, *, node_timeout: timedelta, start_timeout: timedelta, drain: timedelta,
                 overcommit: placement.Overcommit = placement.Overcommit()) -> None:
        self.node_timeout = node_timeout
        self.start_timeout = start_timeout
        self.drain = drain
        self.overcommit = overcommit

    async def run(self, session: AsyncSession, now: datetime, nodes: Sequence[facts.Node]) -> Settled:
        started = time.perf_counter()
        deployments = {d.id: d for d in await store.live_deployments(session)}
        replicas = await store.all_replicas(session)
        for d in deployments.values():
            if promotion.drained(d.demoted_at, now, self.drain):
                # Demoted by a promotion and drained: it scales to zero (the autoscaler can wake it).
                d.min_replica, d.desired_replicas, d.demoted_at = 0, 0, None
        desired = {d.id: lifecycle.desired_replicas(records.deployment_facts(d))
                   for d in deployments.values()}
        demands = {d.id: records.demand_of(d) for d in deployments.values()}
        served = {d.id for d in deployments.values() if d.has_served}
        plan = reconcile.plan(desired, [records.replica_facts(r) for r in replicas], nodes, now=now,
                              node_timeout=self.node_timeout, start_timeout=self.start_timeout,
                              demands=demands, overcommit=self.overcommit, served=served)
        if not plan.empty:
            await self._apply(session, plan, deployments, replicas, now)
            replicas = await store.all_replicas(session)
        replica_facts = [records.replica_facts(r) for r in replicas]
        own: dict[str, list[facts.Replica]] = defaultdict(list)
        for r in replica_facts:
            own[r.deployment_id].append(r)
        waiting = {w.deployment_id: w.reason for w in plan.waiting}
        for d in deployments.values():
            d_facts = records.deployment_facts(d)
            status = lifecycle.deployment_status(d_facts, own[d.id], waiting=waiting.get(d.id, ""))
            if (d.status, d.status_reason) != (status.status, status.reason):
                if lifecycle.UNHEALTHY in (d.status, status.status):
                    log.warning("deployment %s: %s → %s %s", d.id, d.status, status.status, status.reason)
                d.status, d.status_reason = status.status, status.reason
            if lifecycle.has_served(d_facts, status.status) and not d.has_served:
                d.has_served = True
        environments = await store.environments(session)
        ready = Counter(r.deployment_id for r in replica_facts if r.state == facts.READY)
        _promote(environments, deployments, ready, now)
        await store.purge_deleted_models(session)
        await session.flush()
        _gauges(deployments.values(), replicas)
        metrics.DEPLOYMENT_REPLICAS.set(
            (d.model_id, d.id, d.environment, desired.get(d.id, 0), ready.get(d.id, 0)) for d in deployments.values())
        metrics.RECONCILE_SECONDS.observe(time.perf_counter() - started)
        return self._settled(now, nodes, deployments.values(), environments, replica_facts)

    async def _apply(self, session: AsyncSession, plan: reconcile.Plan,
                     deployments: dict[str, DeploymentRecord], replicas: Sequence[ReplicaRecord],
                     now: datetime) -> None:
        log.info("reconcile: start %s, stop %s, forget %s, failed %s",
                 [(s.deployment_id, s.node_id) for s in plan.starts], list(plan.stops),
                 list(plan.forget), [f.deployment_id for f in plan.failures])
        by_id = {r.id: r for r in replicas}
        await store.delete_replicas(session, plan.forget)
        for replica_id in plan.stops:
            await store.set_replica_state(session, by_id[replica_id], facts.STOPPING, now)
        for failure in plan.failures:
            d = deployments.get(failure.deployment_id)
            if d is not None and d.status != lifecycle.FAILED:
                d.status, d.status_reason = lifecycle.FAILED, failure.reason
        for s in plan.starts:
            await store.add_replica(session, new_id("rep"), s.deployment_id, s.node_id, facts.PENDING, now,
                                    gpus=s.gpus)

    def _settled(self, now: datetime, nodes: Sequence[facts.Node], deployments: Collection[DeploymentRecord],
                 environments: Sequence[EnvironmentRecord], replicas: Sequence[facts.Replica]) -> Settled:
        # A promotion's candidate starts its replicas with the environment's name already.
        promoting = {e.candidate_deployment_id: e.name for e in environments if e.candidate_deployment_id}
        specs = {d.id: reconcile.ReplicaSpec(d.id, d.model_id, d.artifact_digest,
                                             d.environment or promoting.get(d.id, ""),
                                             d.request_logging_sample_rate, d.request_logging_max_bytes)
                 for d in deployments}
        by_node: dict[str, list[facts.Replica]] = defaultdict(list)
        for r in replicas:
            by_node[r.node_id].append(r)
        due = timers.next_due(
            now=now, replicas=replicas, start_timeout=self.start_timeout,
            demoted_at=[d.demoted_at for d in deployments if d.demoted_at is not None],
            drain=self.drain,
            canaries=[timers.Canary(e.canary_duration_seconds, e.canary_started_at) for e in environments
                      if e.candidate_deployment_id and e.canary_duration_seconds])
        return Settled(
            commands=reconcile.commands(replicas, specs, {n.id: n.address for n in nodes}),
            replicas_by_node={node: tuple(rs) for node, rs in by_node.items()},
            live_nodes=frozenset(n.id for n in placement.live_nodes(nodes, now, self.node_timeout)),
            next_due=due)


def _promote(environments: Sequence[EnvironmentRecord], deployments: Mapping[str, DeploymentRecord],
             ready: Mapping[str, int], now: datetime) -> None:
    """Each promotion in progress takes its step: the swap, a canary's stage, or its end."""
    for env in environments:
        if not env.candidate_deployment_id:
            continue
        candidate = deployments.get(env.candidate_deployment_id)
        previous = deployments.get(env.deployment_id or "")
        decision = promotion_steps.step(
            records.in_progress(env), records.deployment_facts(candidate) if candidate else None,
            candidate.status if candidate else "", records.deployment_facts(previous) if previous else None,
            ready.get(env.candidate_deployment_id, 0), now)
        if decision.abort:
            log.warning("promotion to %s of model %s ended: %s", env.name, env.model_id, decision.abort)
            records.end_promotion(env, decision.abort)
        elif decision.swap and candidate is not None:
            records.swap(env, candidate, deployments.get(decision.demote) if decision.demote else None, now)
            log.info("model %s: %s now serves %s (was %s)", env.model_id, candidate.id, env.name,
                     previous.id if previous else "none")
        else:
            if decision.canary_started_at is not None:
                env.canary_started_at = decision.canary_started_at
            if decision.canary_stage is not None:
                env.canary_stage = decision.canary_stage
                log.info("model %s: canary to %s at stage %d/%d: %d %% to %s", env.model_id, env.name,
                         decision.canary_stage, canary.STAGES, 100 * decision.canary_stage // canary.STAGES,
                         env.candidate_deployment_id)


def _gauges(deployments: Iterable[DeploymentRecord], replicas: Iterable[ReplicaRecord]) -> None:
    by_state = Counter(r.state for r in replicas)
    for state in facts.REPLICA_STATES:
        metrics.REPLICAS.labels(state).set(by_state.get(state, 0))
    by_status = Counter(d.status for d in deployments)
    for status in (lifecycle.BUILDING, lifecycle.DEPLOYING, lifecycle.ACTIVE, lifecycle.SCALED_TO_ZERO,
                   lifecycle.WAKING_UP, lifecycle.INACTIVE, lifecycle.FAILED, lifecycle.UNHEALTHY):
        metrics.DEPLOYMENTS.labels(status).set(by_status.get(status, 0))
