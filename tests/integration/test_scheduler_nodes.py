"""NodeService on a real scheduler (real NATS and databases) and a fake clock: join tokens that
expire, a node that joins, the secret it joins again with, names that clash, a token that is no API
key, and nodes listed, drained, lost and removed. The stand-ins are test_scheduler.py's."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kingpost import rpc
from kingpost.errors import Conflict, NotFound, Unauthenticated
from kingpost.v1 import events_pb2, management_pb2, nodes_pb2, nodes_pb2_grpc
from tests.integration.test_scheduler import Harness, builder, bus, settings  # noqa: F401  (fixtures)
from tests.integration.test_scheduler_canary import FakeClock, clocked  # noqa: F401  (fixture)
from tests.integration.test_scheduler import ADMIN_KEY


def stub(h: Harness) -> nodes_pb2_grpc.NodeServiceStub:
    return nodes_pb2_grpc.NodeServiceStub(h.channel)


async def call(h: Harness, method: str, request, key: str = ADMIN_KEY):  # type: ignore[no-untyped-def]
    return await rpc.call(getattr(stub(h), method), request, auth=rpc.api_key(key), attempts=1)


async def join(h: Harness, token: str, node_id: str, name: str, secret: str = "", gpus: int = 2):  # type: ignore[no-untyped-def]
    # JoinNode carries no API key: the token (or the node's secret) is its credential.
    return await rpc.call(stub(h).JoinNode, nodes_pb2.JoinNodeRequest(
        token=token, node_secret=secret, node_id=node_id, name=name, address=f"127.0.0.1:{7000 + len(name)}",
        cpu_count=8, memory_bytes=32 << 30, labels={"pool": "h100"},
        gpus=[events_pb2.Gpu(name="NVIDIA H100 80GB HBM3", memory_bytes=80 << 30)] * gpus), attempts=1)


async def test_a_node_joins_with_a_token_and_again_with_its_secret_once_the_token_expired(
        clocked: tuple[Harness, FakeClock]) -> None:  # noqa: F811
    h, clock = clocked
    made = await call(h, "CreateJoinToken", nodes_pb2.CreateJoinTokenRequest(ttl_seconds=60))
    token = made.token
    assert token.startswith("kpjoin_") and made.expires_at.ToDatetime().replace(tzinfo=clock.now.tzinfo) == \
        clock.now + timedelta(seconds=60)

    # The token is no API key: the management API and NodeService's other methods refuse it.
    with pytest.raises(Unauthenticated, match="invalid API key"):
        await h.call("ListModels", management_pb2.ListModelsRequest(), key=token)
    with pytest.raises(Unauthenticated):
        await call(h, "ListNodes", nodes_pb2.ListNodesRequest(), key=token)
    with pytest.raises(Unauthenticated, match="not a kingpost join token"):
        await join(h, "kp_1234", "node_gpu1", "gpu-1")
    with pytest.raises(Unauthenticated, match=r"join token kpjoin_\w{8}\.\.\. is not valid"):
        await join(h, token[:-3] + "xyz", "node_gpu1", "gpu-1")

    joined = await join(h, token, "node_gpu1", "gpu-1")
    assert joined.node_id == "node_gpu1" and joined.nats_url and joined.node_secret
    listed = (await call(h, "ListNodes", nodes_pb2.ListNodesRequest())).nodes
    (node,) = [n for n in listed if n.name == "gpu-1"]
    assert (node.state, node.cpu_count, len(node.gpus), list(node.free_gpu_indices), dict(node.labels)) == (
        "READY", 8, 2, [0, 1], {"pool": "h100"})
    assert node.joined_at.seconds > 0

    # Another agent under a live node's name is refused, not merged.
    with pytest.raises(Conflict, match="a live node is already named 'gpu-1'"):
        await join(h, token, "node_other", "gpu-1")

    clock.now += timedelta(seconds=120)  # the token has expired
    with pytest.raises(Unauthenticated, match="expired at"):
        await join(h, token, "node_gpu2", "gpu-2")
    # The node restarts: its secret lets it in; a wrong one does not.
    with pytest.raises(Unauthenticated, match="expired at"):
        await join(h, token, "node_gpu1", "gpu-1", secret="wrong")
    again = await join(h, token, "node_gpu1", "gpu-1", secret=joined.node_secret)
    assert again.node_secret and again.node_secret != joined.node_secret  # rotated

    # Drain and undo; then the node goes quiet, is LOST, and can be removed (not before).
    drained = await call(h, "DrainNode", nodes_pb2.DrainNodeRequest(node="gpu-1"))
    assert drained.state == "DRAINING"
    assert (await call(h, "DrainNode", nodes_pb2.DrainNodeRequest(node="node_gpu1", undo=True))).state == "READY"
    with pytest.raises(Conflict, match="is live"):
        await call(h, "RemoveNode", nodes_pb2.RemoveNodeRequest(node="gpu-1"))
    clock.now += timedelta(seconds=16)  # past the node timeout (15 s)
    assert (await call(h, "GetNode", nodes_pb2.GetNodeRequest(node="gpu-1"))).state == "LOST"
    # A lost node's name goes to the next agent that joins with it.
    fresh = await call(h, "CreateJoinToken", nodes_pb2.CreateJoinTokenRequest())
    await join(h, fresh.token, "node_gpu3", "gpu-1")
    with pytest.raises(NotFound):
        await call(h, "GetNode", nodes_pb2.GetNodeRequest(node="node_gpu1"))
    clock.now += timedelta(seconds=16)
    await call(h, "RemoveNode", nodes_pb2.RemoveNodeRequest(node="gpu-1"))
    with pytest.raises(NotFound, match="'gpu-1' not found"):
        await call(h, "GetNode", nodes_pb2.GetNodeRequest(node="gpu-1"))
