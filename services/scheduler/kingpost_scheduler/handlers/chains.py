"""ChainService: a chain's versions, each a set of Chainlet deployments made by one push.

The Chainlets' models and deployments are made by ManagementService.CreateDeployment (the CLI
pushes them, dependencies first); CreateChainDeployment then records them as one version, after
checking each names a live deployment of the model it says, so a version never points at
something missing. Promotion promotes the entrypoint's deployment: dependencies are pinned per
version (their addresses are in the entrypoint's artifact).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kingpost import autoscaling_settings, deployment_status, management_shapes
from kingpost.errors import InvalidArgument, NotFound
from kingpost.grpc_status import abort_on_error
from kingpost.ids import new_id
from kingpost.v1 import chains_pb2, chains_pb2_grpc, management_pb2
from kingpost_scheduler import chain_store, convert, records, store
from kingpost_scheduler.control import Control
from kingpost_scheduler.tables import ChainDeploymentRecord, ChainRecord, DeploymentRecord

log = logging.getLogger(__name__)

# Worst first: a version's status is its least ready Chainlet's.
_STATUS_ORDER = (deployment_status.FAILED, deployment_status.INACTIVE, deployment_status.BUILDING,
                 deployment_status.DEPLOYING, deployment_status.WAKING_UP, deployment_status.SCALED_TO_ZERO,
                 deployment_status.ACTIVE)

def chain_key_name(chain: str) -> str:
    """The name of the API key a push mints for a chain's Chainlets (kingpost.chain_push)."""
    return f"chain-{chain}"


Promote = Callable[[management_pb2.PromoteDeploymentRequest, Any], Awaitable[Any]]


def _version_status(statuses: list[str]) -> str:
    for status in _STATUS_ORDER:
        if status in statuses:
            return status
    return statuses[0] if statuses else ""


async def describe_chain(session: AsyncSession, chain: ChainRecord) -> chains_pb2.Chain:
    return chains_pb2.Chain(id=chain.id, name=chain.name, created_at=convert.timestamp(chain.created_at),
                            deployments_count=len(await chain_store.chain_deployments(session, chain.id)),
                            entrypoint_model_id=chain.entrypoint_model_id, team_name=management_shapes.TEAM_NAME)


async def describe_version(session: AsyncSession, version: ChainDeploymentRecord) -> chains_pb2.ChainDeployment:
    ready = await store.ready_counts(session)
    chainlets, environment = [], ""
    for c in version.chainlets:
        d = await session.get(DeploymentRecord, c["deployment_id"])
        status = d.status if d is not None and not d.deleted else "DELETED"
        if c.get("is_entrypoint") and d is not None:
            environment = d.environment
        chainlet = chains_pb2.Chainlet(id=c["deployment_id"], name=c["name"], model_id=c["model_id"],
                                       deployment_id=c["deployment_id"], is_entrypoint=bool(c.get("is_entrypoint")),
                                       status=status, active_replica_count=ready.get(c["deployment_id"], 0),
                                       instance_type_name=convert.instance_type_name(d))
        if d is not None:
            chainlet.autoscaling_settings.CopyFrom(management_pb2.AutoscalingSettings(
                **autoscaling_settings.as_dict(records.autoscaling_of(d))))
        chainlets.append(chainlet)
    return chains_pb2.ChainDeployment(
        id=version.id, chain_id=version.chain_id, created_at=convert.timestamp(version.created_at),
        is_development=version.is_development, environment=environment, chainlets=chainlets,
        status=_version_status([c.status for c in chainlets]))


class ChainServicer(chains_pb2_grpc.ChainServiceServicer):
    def __init__(self, control: Control, promote: Promote) -> None:
        self.control = control
        self._promote = promote

    @abort_on_error
    async def CreateChainDeployment(self, request: chains_pb2.CreateChainDeploymentRequest, context: Any) -> Any:
        if not request.chain_name:
            raise InvalidArgument("chain_name is required")
        entrypoints = [c for c in request.chainlets if c.is_entrypoint]
        if len(entrypoints) != 1:
            raise InvalidArgument(f"a chain deployment has exactly one entrypoint Chainlet; "
                                  f"this one has {len(entrypoints)}")
        names = [c.name for c in request.chainlets]
        if len(set(names)) != len(names):
            raise InvalidArgument(f"Chainlet names must be unique: {names}")
        now = self.control.clock()

        async def create(session: AsyncSession) -> tuple[ChainRecord, ChainDeploymentRecord]:
            is_development = False
            for c in request.chainlets:
                model = await store.find_model(session, c.model_id)
                d = await session.get(DeploymentRecord, c.deployment_id)
                if d is None or d.deleted or d.model_id != model.id:
                    raise NotFound(f"Chainlet `{c.name}`: deployment {c.deployment_id!r} of model "
                                   f"{c.model_id!r} not found")
                if c.is_entrypoint:
                    is_development = d.is_development
            entry = entrypoints[0]
            chain = await chain_store.chain_by_name(session, request.chain_name)
            if chain is None:
                chain = await chain_store.add_chain(session, new_id("chn"), request.chain_name, entry.model_id, now)
            elif chain.entrypoint_model_id != entry.model_id:
                raise InvalidArgument(f"chain {request.chain_name!r} is served by model {chain.entrypoint_model_id}, "
                                      f"not {entry.model_id}")
            chainlets = [{"name": c.name, "model_id": c.model_id, "deployment_id": c.deployment_id,
                          "is_entrypoint": c.is_entrypoint} for c in request.chainlets]
            version = await chain_store.add_chain_deployment(session, entry.deployment_id, chain.id,
                                                             is_development, chainlets, now)
            return chain, version

        async def reply(session: AsyncSession, made: tuple[ChainRecord, ChainDeploymentRecord]) -> Any:
            chain, version = made
            return chains_pb2.CreateChainDeploymentResponse(chain=await describe_chain(session, chain),
                                                            deployment=await describe_version(session, version))

        answer = await self.control.write(f"recording a version of chain {request.chain_name}", create, reply)
        log.info("chain %s: version %s (%d Chainlets)", answer.chain.id, answer.deployment.id,
                 len(request.chainlets))
        return answer

    @abort_on_error
    async def ListChains(self, request: chains_pb2.ListChainsRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> list[chains_pb2.Chain]:
            return [await describe_chain(session, c) for c in await chain_store.list_chains(session)]

        return chains_pb2.ListChainsResponse(chains=await self.control.read("listing chains", run))

    @abort_on_error
    async def GetChain(self, request: chains_pb2.GetChainRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> chains_pb2.Chain:
            return await describe_chain(session, await chain_store.find_chain(session, request.chain_id))

        return await self.control.read("reading a chain", run)

    @abort_on_error
    async def ListChainDeployments(self, request: chains_pb2.ListChainDeploymentsRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> list[chains_pb2.ChainDeployment]:
            chain = await chain_store.find_chain(session, request.chain_id)
            return [await describe_version(session, v) for v in await chain_store.chain_deployments(session, chain.id)]

        return chains_pb2.ListChainDeploymentsResponse(
            deployments=await self.control.read("listing a chain's deployments", run))

    @abort_on_error
    async def PromoteChainDeployment(self, request: chains_pb2.PromoteChainDeploymentRequest, context: Any) -> Any:
        if not request.deployment_id:
            raise InvalidArgument("deployment_id is required: the chain deployment to promote")

        async def run(session: AsyncSession) -> tuple[str, str]:
            chain = await chain_store.find_chain(session, request.chain_id)
            versions = await chain_store.chain_deployments(session, chain.id)
            wanted = [v for v in versions if v.id == request.deployment_id
                      or (request.deployment_id == "development" and v.is_development)]
            if not wanted:
                raise NotFound(f"deployment {request.deployment_id!r} of chain {chain.name!r} not found")
            return chain.entrypoint_model_id, wanted[0].id

        model_id, version_id = await self.control.read("reading a chain deployment", run)
        promoted = await self._promote(management_pb2.PromoteDeploymentRequest(
            model_id=model_id, env_name=request.env_name, deployment_id=version_id), context)

        async def describe(session: AsyncSession) -> chains_pb2.ChainDeployment:
            version = await session.get(ChainDeploymentRecord, version_id)
            if version is None:
                raise NotFound(f"deployment {version_id!r} of chain {request.chain_id!r} not found")
            return await describe_version(session, version)

        answer = await self.control.read("reading a chain deployment", describe)
        answer.promoted_entrypoint_deployment_id = promoted.id
        return answer

    @abort_on_error
    async def DeleteChain(self, request: chains_pb2.DeleteChainRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> str:
            chain = await chain_store.find_chain(session, request.chain_id)
            model_ids = {c["model_id"] for v in await chain_store.chain_deployments(session, chain.id)
                         for c in v.chainlets} | {chain.entrypoint_model_id}
            await chain_store.delete_chain(session, chain)
            for key in await store.list_api_keys(session):  # the keys its pushes minted for its Chainlets
                if key.name == chain_key_name(chain.name):
                    await store.revoke_api_key(session, key.prefix)
            for model_id in sorted(model_ids):
                try:
                    await store.delete_model(session, await store.find_model(session, model_id))
                except NotFound:
                    pass  # deleted on its own already
            return chain.id

        chain_id = await self.control.write(f"deleting chain {request.chain_id}", run)
        return chains_pb2.DeleteChainResponse(success=True, id=chain_id, deleted=True)
