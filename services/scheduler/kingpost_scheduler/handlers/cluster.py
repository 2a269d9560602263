"""NodeService: join tokens, agents joining, and `kingpost nodes list|get|drain|remove`.

The rules are in nodes.py (pure); this shell reads and writes rows, and keeps the heartbeat
cache (heartbeats.py) in step, since the reconcile pass reads nodes from there.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kingpost import instance_types
from kingpost.auth import join_token_prefix, key_digest, new_join_token
from kingpost.errors import Conflict, InvalidArgument
from kingpost.grpc_status import abort_on_error
from kingpost.v1 import events_pb2, nodes_pb2, nodes_pb2_grpc
from kingpost_scheduler import cluster_store, convert, facts, nodes, records, store
from kingpost_scheduler.control import Control
from kingpost_scheduler.liveness import NodeReport
from kingpost_scheduler.tables import NodeRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JoinOffer:
    """What a joining agent is told (SchedulerSettings.join_*)."""

    nats_url: str
    internal_token: str
    builder_address: str
    artifact_store: str
    artifact_bucket: str
    heartbeat_interval_seconds: float


class NodeServicer(nodes_pb2_grpc.NodeServiceServicer):
    def __init__(self, control: Control, offer: JoinOffer) -> None:
        self.control = control
        self.offer = offer

    # --- joining ------------------------------------------------------------------------------

    @abort_on_error
    async def CreateJoinToken(self, request: nodes_pb2.CreateJoinTokenRequest, context: Any) -> Any:
        ttl = nodes.token_ttl(request.ttl_seconds)
        token, now = new_join_token(), self.control.clock()
        prefix = join_token_prefix(token)
        assert prefix is not None

        async def add(session: AsyncSession) -> None:
            await cluster_store.add_join_token(session, prefix=prefix, sha256=key_digest(token),
                                       description=request.description[:128], now=now, expires_at=now + ttl)

        await self.control.write("making a join token", add)
        log.info("join token %s... made, valid until %s", prefix, now + ttl)
        return nodes_pb2.CreateJoinTokenResponse(token=token, expires_at=convert.timestamp(now + ttl))

    @abort_on_error
    async def JoinNode(self, request: nodes_pb2.JoinNodeRequest, context: Any) -> Any:
        now = self.control.clock()
        prefix = join_token_prefix(request.token)

        async def check(session: AsyncSession) -> NodeRecord | None:
            known = await session.get(NodeRecord, request.node_id) if request.node_id else None
            rejoin = bool(request.node_secret) and known is not None and bool(known.secret_sha256) \
                and hmac.compare_digest(known.secret_sha256, key_digest(request.node_secret))
            if not rejoin:  # a node seen before joins again with its secret; a new one needs a token
                found = await cluster_store.join_token(session, prefix) if prefix else None
                valid = found is not None and found.sha256 == key_digest(request.token)
                nodes.check_token(prefix, valid, found.expires_at if found else None, now)
            # Only once the token is good does the request's content matter.
            nodes.validate_name(request.name)
            if not request.node_id or not request.address:
                raise InvalidArgument("JoinNode needs the agent's node_id and address")
            holder = nodes.name_holder(request.name, request.node_id, self._facts(await store.all_nodes(session)),
                                       now, self.control.reconciler.node_timeout)
            return holder

        holder = await self.control.read("checking a join", check)
        report = NodeReport(id=request.node_id, address=request.address, cpu_count=request.cpu_count,
                            memory_bytes=request.memory_bytes,
                            gpus=tuple((g.name, g.memory_bytes) for g in request.gpus), name=request.name,
                            labels=tuple(sorted(request.labels.items())))
        if holder is not None:
            log.info("node %s takes the name %r of lost node %s, which is removed", report.id, report.name,
                     holder.id)
            self.control.heartbeats.forget(holder.id)
        self.control.heartbeats.joined(report, now)

        secret = secrets.token_urlsafe(32)

        async def join(session: AsyncSession) -> None:
            if holder is not None:
                await cluster_store.delete_node(session, holder.id)
            node = await store.upsert_node(session, report, now)
            node.joined_at = node.joined_at or now
            node.secret_sha256 = key_digest(secret)

        await self.control.write(f"joining node {report.id}", join)
        self.control.heartbeats.stored(report, now)
        log.info("node %s (%s) joined at %s: %d CPUs, %d MiB, GPUs %s", report.name, report.id, report.address,
                 report.cpu_count, report.memory_bytes >> 20, [g for g, _ in report.gpus] or "none")
        o = self.offer
        return nodes_pb2.JoinNodeResponse(
            node_id=report.id, nats_url=o.nats_url, internal_token=o.internal_token,
            builder_address=o.builder_address, artifact_store=o.artifact_store, artifact_bucket=o.artifact_bucket,
            heartbeat_interval_seconds=o.heartbeat_interval_seconds, node_secret=secret)

    # --- what users see and do ----------------------------------------------------------------

    @abort_on_error
    async def ListNodes(self, request: nodes_pb2.ListNodesRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> list[nodes_pb2.Node]:
            return await self._describe(session, await store.all_nodes(session))

        return nodes_pb2.ListNodesResponse(nodes=await self.control.read("listing nodes", run))

    @abort_on_error
    async def ListInstanceTypes(self, request: nodes_pb2.ListInstanceTypesRequest, context: Any) -> Any:
        return nodes_pb2.ListInstanceTypesResponse(instance_types=[
            convert.instance_type(t) for t in sorted(instance_types.CATALOG, key=lambda t: t.usd_per_minute)])

    @abort_on_error
    async def GetNode(self, request: nodes_pb2.GetNodeRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> nodes_pb2.Node:
            return (await self._describe(session, [await cluster_store.find_node(session, request.node)]))[0]

        return await self.control.read("reading a node", run)

    @abort_on_error
    async def DrainNode(self, request: nodes_pb2.DrainNodeRequest, context: Any) -> Any:
        async def drain(session: AsyncSession) -> str:
            node = await cluster_store.find_node(session, request.node)
            node.draining = not request.undo
            # In the cache before the write's own reconcile pass reads it.
            (self.control.heartbeats.draining.discard if request.undo else self.control.heartbeats.draining.add)(
                node.id)
            return node.id

        async def reply(session: AsyncSession, node_id: str) -> nodes_pb2.Node:
            return (await self._describe(session, [await cluster_store.find_node(session, node_id)]))[0]

        node = await self.control.write(f"draining node {request.node}", drain, reply)
        log.info("node %s (%s): %s", node.name, node.id, "drain undone" if request.undo else "draining")
        return node

    @abort_on_error
    async def RemoveNode(self, request: nodes_pb2.RemoveNodeRequest, context: Any) -> Any:
        now = self.control.clock()

        async def remove(session: AsyncSession) -> str:
            node = await cluster_store.find_node(session, request.node)
            fact = self._facts([node])[0]
            if nodes.state(fact, now, self.control.reconciler.node_timeout) != nodes.LOST:
                raise Conflict(f"node {node.name or node.id} is live (its agent heartbeats): stop its agent "
                               f"first (drain it before, to move its replicas without failing a request)")
            await cluster_store.delete_node(session, node.id)
            return node.id

        node_id = await self.control.write(f"removing node {request.node}", remove)
        self.control.heartbeats.forget(node_id)
        return nodes_pb2.RemoveNodeResponse(success=True)

    # --- helpers ------------------------------------------------------------------------------

    def _facts(self, rows: list[NodeRecord] | Any) -> list[facts.Node]:
        """Rows, with the heartbeat cache's newer reports and last-seen times."""
        hb = self.control.heartbeats
        out = []
        for n in rows:
            seen = max(n.last_seen, hb.last_seen.get(n.id, n.last_seen))
            out.append(records.report_facts(hb.report(n.id) or records.node_report(n), seen,
                                            draining=n.draining))
        return out

    async def _describe(self, session: AsyncSession, rows: list[NodeRecord] | Any) -> list[nodes_pb2.Node]:
        now = self.control.clock()
        replicas = [records.replica_facts(r) for r in await store.all_replicas(session)]
        on: dict[str, list[facts.Replica]] = defaultdict(list)
        for r in replicas:
            on[r.node_id].append(r)
        demands = {d.id: records.demand_of(d) for d in await store.live_deployments(session)}
        over = self.control.reconciler.overcommit
        out = []
        for row, n in zip(rows, self._facts(rows)):
            report = self.control.heartbeats.report(n.id) or records.node_report(row)
            free = nodes.free(n, on[n.id], demands, over)
            out.append(nodes_pb2.Node(
                id=n.id, name=n.name, address=n.address, cpu_count=n.cpu_count, memory_bytes=n.memory_bytes,
                gpus=[events_pb2.Gpu(name=g, memory_bytes=m) for g, m in report.gpus], labels=dict(report.labels),
                state=nodes.state(n, now, self.control.reconciler.node_timeout),
                last_seen=convert.timestamp(n.last_seen), replica_ids=sorted(r.id for r in on[n.id]),
                cpus_free=free.cpus, memory_free_bytes=free.memory_bytes, free_gpu_indices=list(free.gpus),
                joined_at=convert.timestamp(row.joined_at) if row.joined_at else None,
                cpu_overcommit=over.cpu, memory_overcommit=over.memory))
        return out
