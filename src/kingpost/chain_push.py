"""Push a Chain: check the file, then every Chainlet as its own Truss and deployment (dependencies
first, so each caller's artifact names the deployments it calls), then record them as one chain
version. The CLI (`kingpost chains push`) goes through `push_chain`; it prints nothing itself.

Nothing half-pushed: a file that fails the checks is refused before anything is sent; a Chainlet
that fails to build or to start deletes what this push made (its deployments, models it created,
the key it minted) and raises PushFailed naming that Chainlet, with its log.
"""

from __future__ import annotations

import asyncio
import pathlib
import tempfile
import time
from collections.abc import Callable
from typing import Any
from dataclasses import dataclass, field

from kingpost import push as truss_push
from kingpost import rpc
from kingpost.chains.codegen import chainlet_config, image_dir, write_truss
from kingpost.chains.graph import ChainGraph
from kingpost.chains.loading import load_chain
from kingpost.chains.public_types import DeployedServiceDescriptor
from kingpost.client_config import ClientConfig
from kingpost.errors import KingpostError
from kingpost.v1 import chains_pb2, chains_pb2_grpc, management_pb2, management_pb2_grpc

PushFailed = truss_push.PushFailed


@dataclass
class ChainPushResult:
    graph: ChainGraph
    chain: chains_pb2.Chain
    deployment: chains_pb2.ChainDeployment
    run_remote_url: str
    curl: str
    warnings: list[str] = field(default_factory=list)


def run_remote_path(chain_id: str, deployment: chains_pb2.ChainDeployment, environment: str) -> str:
    if deployment.is_development:
        return f"/chains/{chain_id}/development/run_remote"
    if environment and environment != "production":
        return f"/chains/{chain_id}/environments/{environment}/run_remote"
    return f"/chains/{chain_id}/production/run_remote"


async def push_chain(
    config: ClientConfig,
    chain_file: pathlib.Path,
    *,
    publish: bool = True,
    environment: str = "",
    wait: bool = True,
    timeout: float = 900.0,
    on_chainlet: Callable[[str, str], None] = lambda chainlet, what: None,
    clock: Callable[[], float] = time.monotonic,
) -> ChainPushResult:
    module, graph = load_chain(chain_file)  # ChainValidationError: nothing was sent
    key = config.require_api_key()
    auth = rpc.api_key(key)
    if not publish:
        environment = ""
    elif not environment:
        environment = "production"
    async with rpc.channel(config.grpc) as channel:
        management = management_pb2_grpc.ManagementServiceStub(channel)
        chains = chains_pb2_grpc.ChainServiceStub(channel)
        minted = await rpc.call(management.CreateApiKey,
                                management_pb2.CreateApiKeyRequest(name=f"chain-{graph.name}"), auth=auth)
        made: list[tuple[str, truss_push.PushResult]] = []
        try:
            services: dict[str, DeployedServiceDescriptor] = {}
            warnings: list[str] = []
            with tempfile.TemporaryDirectory(prefix="kingpost-chain-") as tmp:
                for chainlet in graph.chainlets:
                    is_entry = chainlet.name == graph.entrypoint
                    root = chain_file.resolve().parent
                    truss_dir = write_truss(
                        pathlib.Path(tmp) / chainlet.name, root,
                        chainlet_config(graph, chainlet, module.__name__, router=config.grpc,
                                        api_key=minted.api_key, services=services, chain_root=root),
                        image_dir(chainlet.cls.remote_config.docker_image.data_dir, "data_dir", chainlet.name, root))
                    on_chainlet(chainlet.name, "building")
                    try:
                        result = await truss_push.push(
                            config, truss_dir, publish=publish, environment=environment if is_entry else "",
                            wait=False, clock=clock)
                    except PushFailed as e:
                        raise PushFailed(f"Chainlet `{chainlet.name}`: {e}", log_lines=e.log_lines,
                                         build_id=e.build_id) from e
                    made.append((chainlet.name, result))
                    warnings += [f"{chainlet.name}: {w}" for w in result.warnings]
                    d = result.deployment
                    services[chainlet.name] = DeployedServiceDescriptor(
                        name=chainlet.name, display_name=chainlet.name, model=result.model.id,
                        deployment_id="" if d.is_development else d.id,
                        target="development" if d.is_development else "")
                    on_chainlet(chainlet.name, f"deployment {d.id} created")
            if wait:
                await asyncio.gather(*(_wait(management, name, r, auth, timeout, clock, on_chainlet)
                                       for name, r in made))
            recorded = await rpc.call(chains.CreateChainDeployment, chains_pb2.CreateChainDeploymentRequest(
                chain_name=graph.name,
                chainlets=[chains_pb2.Chainlet(name=name, model_id=r.model.id, deployment_id=r.deployment.id,
                                               is_entrypoint=name == graph.entrypoint) for name, r in made]),
                auth=auth)
        except BaseException:
            await _undo(management, made, minted.prefix, auth)
            raise
    url = config.url + run_remote_path(recorded.chain.id, recorded.deployment, environment)
    example = {name: 0 for name, _, _ in graph.by_name(graph.entrypoint).endpoint.params}
    return ChainPushResult(graph=graph, chain=recorded.chain, deployment=recorded.deployment,
                           run_remote_url=url, curl=truss_push.curl_command(url, key, example),
                           warnings=warnings)


async def _wait(management: management_pb2_grpc.ManagementServiceStub, name: str,
                result: truss_push.PushResult, auth: rpc.Metadata, timeout: float,
                clock: Callable[[], float], on_chainlet: Callable[[str, str], None]) -> None:
    try:
        await truss_push._wait_active(management, result.model.id, result.deployment, auth,
                                      lambda d: on_chainlet(name, truss_push.describe_status(d)),
                                      timeout=timeout, clock=clock)
    except PushFailed as e:
        raise PushFailed(f"Chainlet `{name}`: {e}", log_lines=e.log_lines, build_id=e.build_id,
                         deployment=e.deployment) from e


async def _undo(management: management_pb2_grpc.ManagementServiceStub,
                made: list[tuple[str, truss_push.PushResult]], key_prefix: str, auth: rpc.Metadata) -> None:
    """Best effort: what this push made goes. A model this push created goes whole; in a model that
    existed before, the new deployment goes (its promotion cancelled first, when it was one)."""
    async def quietly(method: Any, request: Any) -> Any:
        try:
            return await rpc.call(method, request, auth=auth, attempts=1)
        except KingpostError:
            return None

    for _, r in reversed(made):
        model_id, deployment_id = r.model.id, r.deployment.id
        left = await quietly(management.ListDeployments, management_pb2.ListDeploymentsRequest(model_id=model_id))
        others = [d for d in (left.deployments if left else []) if d.id != deployment_id]
        if left is not None and not others:
            await quietly(management.DeleteModel, management_pb2.DeleteModelRequest(model_id=model_id))
            continue
        delete = management_pb2.DeleteDeploymentRequest(model_id=model_id, deployment_id=deployment_id)
        if await quietly(management.DeleteDeployment, delete) is None and r.deployment.environment:
            await quietly(management.CancelPromotion, management_pb2.CancelPromotionRequest(
                model_id=model_id, env_name=r.deployment.environment))
            await quietly(management.DeleteDeployment, delete)
    await quietly(management.RevokeApiKey, management_pb2.RevokeApiKeyRequest(prefix=key_prefix))
