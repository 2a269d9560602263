"""The pure cores import no grpc, NATS or SQL, not even through something they import.

Each module is imported alone in a fresh interpreter, so what ends up in `sys.modules` is exactly
what importing it costs; a failure names the chain of imports that pulled the plumbing in.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Every pure decision module of the platform. A new pure module belongs here.
PURE_MODULES = (
    "kingpost.errors",
    "kingpost.key_scopes",
    "kingpost_autoscaler.decision",
    "kingpost_autoscaler.window",
    "kingpost_scheduler.placement",
    "kingpost_scheduler.resources",
    "kingpost_scheduler.nodes",
    "kingpost_scheduler.metrics_targets",
    "kingpost_scheduler.deployment_stats",
    "kingpost_scheduler.canary",
    "kingpost_scheduler.promotion",
    "kingpost_scheduler.reconcile",
    "kingpost_scheduler.lifecycle",
    "kingpost_scheduler.facts",
    "kingpost_scheduler.healing",
    "kingpost_scheduler.route_table",
    "kingpost_scheduler.deployment_defaults",
    "kingpost_scheduler.liveness",
    "kingpost_scheduler.promotion_steps",
    "kingpost_scheduler.timers",
    "kingpost.autoscaling_settings",
    "kingpost.deployment_status",
    "kingpost.trace_phases",
    "kingpost_runner.request_log",
    "kingpost.bus.subjects",
    "kingpost.environment_manifest",
    "kingpost.instance_types",
    "kingpost_router.balancer",
    "kingpost_router.routes",
    "kingpost_router.slots",
    "kingpost_router.sampling",
    "kingpost_router.envoy_stats",
    "kingpost_router.xds",
    "kingpost_router.envoy_keys",
    "kingpost_router.async_input",
    "kingpost_router.async_policy",
    "kingpost_router.sync_request",
    "kingpost_router.ws_path",
    "kingpost.docker_server",
    "kingpost_builder.custom_server",
    "kingpost_builder.truss_config",
    "kingpost_builder.strict_yaml",
    "kingpost_builder.requirements",
    "kingpost_builder.dockerfile",
    "kingpost_worker_agent.truss_resources",
    "kingpost_worker_agent.runner_env",
    "kingpost_worker_agent.cgroups",
    "kingpost.chains.graph",
    "kingpost.chains.signatures",
    "kingpost.chains.remote_errors",
    "kingpost.chains.codegen",
    "kingpost.gateway_direct",
)

PLUMBING = ("grpc", "nats", "sqlalchemy", "asyncpg", "aiosqlite")
# Decision modules that are plain data structures, driven by a thin asyncio layer: no event loop either.
NO_EVENT_LOOP = ("kingpost_router.slots", "kingpost_router.xds", "kingpost_router.xds_cluster", "kingpost_router.envoy_keys",
                 "kingpost_router.async_input",
                 "kingpost_router.async_policy")

# Run in the child: import the module; for each plumbing package imported, the chain of modules
# whose top level was running when it was first asked for (outermost first).
_PROBE = """
import importlib, json, sys

PLUMBING = set(sys.argv[2].split(","))
chains = {}

class Recorder:
    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        if top in PLUMBING and top not in chains:
            frame, chain = sys._getframe(1), []
            while frame is not None:
                if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") != "__main__":
                    chain.append(frame.f_globals.get("__name__", "?"))
                frame = frame.f_back
            chains[top] = list(reversed(chain)) + [fullname]
        return None

sys.meta_path.insert(0, Recorder())
importlib.import_module(sys.argv[1])
print(json.dumps({top: chains.get(top, ["?"]) for top in PLUMBING if top in sys.modules}))
"""


@pytest.mark.parametrize(("module", "plumbing"), [*((m, PLUMBING) for m in PURE_MODULES),
                                                   *((m, (*PLUMBING, "asyncio")) for m in NO_EVENT_LOOP)])
def test_a_pure_module_imports_no_plumbing(module: str, plumbing: tuple[str, ...]) -> None:
    child = subprocess.run([sys.executable, "-c", _PROBE, module, ",".join(plumbing)],
                           capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, f"importing {module} failed:\n{child.stderr}"
    imported = json.loads(child.stdout)
    assert not imported, f"{module} must stay pure, but importing it imports " + "; ".join(
        f"{top} (via {' -> '.join(chain)})" for top, chain in sorted(imported.items()))
