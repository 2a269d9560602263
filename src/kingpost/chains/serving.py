"""A Chainlet served by kingpost's runner: the generated Truss's `Model` (codegen.py writes
`class Model(ChainletModel)`). It imports the chain file from the bundled packages/, builds the
Chainlet with a stub per dependency (stub.py), and answers `predict` with `run_remote`:

- the body's keys are `run_remote`'s parameters; a mismatch is a 400 naming the parameter;
- the return value is sent as JSON (pydantic models as their JSON, tuples as arrays); a streaming
  `run_remote` (an async generator) is handed to the runner as it is, which sends each chunk as it
  comes (str as UTF-8);
- an exception is a 500 whose message is the `RemoteErrorDetail` JSON, which the caller's stub
  raises again (remote_errors.py); an exception carrying `status_code` keeps that status.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import pathlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pydantic

from kingpost.chains import framework
from kingpost.chains.loading import install_alias
from kingpost.chains.public_types import DeployedServiceDescriptor, DeploymentContext, Environment
from kingpost.chains.remote_errors import ChainletHTTPError, detail_of
from kingpost.chains.signatures import describe_validation_error, read_endpoint
from kingpost.chains.stub import calling_for, make_stub

METADATA_KEY = "chains"
# A router's gRPC address, set by the node's agent (kingpost up sets it); else the address the chain
# was pushed to (Envoy's gRPC port), baked in at push.
ROUTER_ENV = "KINGPOST_CHAIN_ROUTER"
API_KEY_SECRET = "baseten_chain_api_key"


class _RemoteInjector(framework.Injector):
    def __init__(self, stubs: dict[str, Any], context: DeploymentContext) -> None:
        self._stubs = stubs
        self._context = context

    def kwargs_for(self, cls: type) -> dict[str, Any]:
        deps, takes_context = framework.init_markers(cls)
        kwargs: dict[str, Any] = {name: self._stubs[name] for name in deps}
        if takes_context:
            kwargs[framework.CONTEXT_PARAM] = self._context
        return kwargs


def _http_error(e: Exception) -> ChainletHTTPError:
    """The Chainlet's exception as the runner answers it: its own `status_code` (else 500) and the detail."""
    status = getattr(e, "status_code", 500)
    status = status if isinstance(status, int) and 400 <= status < 600 else 500
    return ChainletHTTPError(status, detail_of(e).model_dump())


class ChainletModel:
    def __init__(self, config: dict[str, Any], secrets: Any = None, data_dir: pathlib.Path | None = None,
                 environment: Any = None, **_: Any) -> None:
        self._meta = (config.get("model_metadata") or {})[METADATA_KEY]
        self._secrets = secrets
        self._data_dir = data_dir
        self._environment = environment
        self._chainlet: Any = None

    def load(self) -> None:
        install_alias()
        module = importlib.import_module(self._meta["module"])
        cls = getattr(module, self._meta["class_name"])
        self._endpoint = read_endpoint(cls)
        self._fn_name = "run_remote"
        services = {name: DeployedServiceDescriptor.model_validate(d)
                    for name, d in (self._meta.get("chainlet_to_service") or {}).items()}
        secret_names = list(self._meta.get("secret_keys") or []) + [API_KEY_SECRET]
        secrets = {}
        for name in secret_names:
            try:
                secrets[name] = self._secrets[name]
            except (KeyError, TypeError):
                pass
        api_key = secrets.get(API_KEY_SECRET, "")
        deps, _ = framework.init_markers(cls)
        stubs = {}
        for param, marker in deps.items():
            dep_name = framework.display_name(marker.chainlet_cls)
            stubs[param] = make_stub(services[dep_name], read_endpoint(marker.chainlet_cls),
                                     os.environ.get(ROUTER_ENV) or self._meta["router"], api_key)
        env_name = self._environment.get("name") if isinstance(self._environment, dict) else None
        context = DeploymentContext(chainlet_to_service=services, secrets=secrets, data_dir=self._data_dir,
                                    environment=Environment(name=env_name) if env_name else None)
        with framework.injecting(_RemoteInjector(stubs, context)):
            self._chainlet = cls()

    def is_healthy(self) -> bool:
        return self._chainlet is not None

    @staticmethod
    async def _stream(chunks: AsyncIterator[str | bytes], caller: Mapping[str, str]) -> AsyncIterator[str | bytes]:
        """The Chainlet's chunks; its exception as for a non-streaming call (the status and the detail
        end the stream, so the caller's stub raises it again, even after the first chunk). Its
        dependency calls, made while it is iterated, pass on the caller's trace and request id."""
        try:
            with calling_for(caller):
                async for chunk in chunks:
                    yield chunk
        except Exception as e:
            raise _http_error(e) from e
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    async def predict(self, inputs: Any, request=None) -> Any:  # unannotated: the runner passes its request
        caller = request.headers if request is not None else {}
        with calling_for(caller):
            return await self._predict(inputs, caller)

    async def _predict(self, inputs: Any, caller: Mapping[str, str]) -> Any:
        try:
            kwargs = self._endpoint.parse_input(inputs if inputs is not None else {})
        except pydantic.ValidationError as e:
            raise ChainletHTTPError(400, describe_validation_error(e)) from None
        fn = getattr(self._chainlet, self._fn_name)
        if self._endpoint.is_streaming:
            return self._stream(fn(**kwargs), caller)
        try:
            if self._endpoint.is_async:
                result = await fn(**kwargs)
            else:
                result = await asyncio.to_thread(fn, **kwargs)
        except Exception as e:
            raise _http_error(e) from e
        try:
            return self._endpoint.dump_output(result)
        except pydantic.ValidationError as e:
            err = TypeError(f"`{self._meta['class_name']}.run_remote` returned a value that does not match its "
                            f"return type: {e.errors()[0].get('msg', e)}")
            raise ChainletHTTPError(500, detail_of(err).model_dump()) from e
