"""A runner's environment: an allow-list of the agent's, never the whole of it.

The agent's environment holds the platform's own (KINGPOST_HOME, service settings, tokens, NATS
and OpenTelemetry endpoints, whatever its operator exported); a model gets none of that. It gets
what a process needs to run (PATH, locale, time zone), to reach the network the way the node does
(proxies, CA bundles), to see its GPUs, the runner's own knobs (log level, secrets dir, gRPC
keepalive), and a working area of its own as TMPDIR (and HOME, when it runs as a user of its own;
else the agent's HOME, so that a developer's caches in ~/.cache still serve). Its config.yaml's `environment_variables` are
set by the runner itself (kingpost_runner/loader.py). OpenTelemetry is not passed: the router
sends the trace context with each request, and the runner makes no spans of its own.

Pure: the agent's environment in, the runner's out.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

PASSED = (
    "PATH", "LANG", "LANGUAGE", "TZ", "TERM",
    "LD_LIBRARY_PATH", "CUDA_HOME", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "KINGPOST_LOG_LEVEL", "KINGPOST_LOG_FORMAT", "KINGPOST_SECRETS_DIR", "KINGPOST_GRPC_KEEPALIVE_SECONDS",
    # where this node's tritonserver is, for a Triton deployment's runner (kingpost.triton_install)
    "KINGPOST_TRITON_HOME",
    # Where a Chainlet calls its dependencies: a router's gRPC address (else the platform address
    # the chain was pushed to, through Envoy: one proxy more per hop).
    "KINGPOST_CHAIN_ROUTER",
)
PASSED_PREFIXES = ("LC_",)
# Who the runner is, when it runs as the agent's own user.
OWN_USER = ("HOME", "USER", "LOGNAME")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def runner_env(agent_env: Mapping[str, str], *, own_user: bool) -> dict[str, str]:
    """The environment a runner starts with, less its replica's (`work_area_env`, KINGPOST_ENVIRONMENT).
    `own_user`: it runs as a user of its own, so the agent's HOME, USER and LOGNAME are not its."""
    env = {k: v for k, v in agent_env.items() if k in PASSED or k.startswith(PASSED_PREFIXES)}
    env.setdefault("PATH", DEFAULT_PATH)
    if not own_user:
        env.update({k: agent_env[k] for k in OWN_USER if k in agent_env})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def gpu_env(gpus: tuple[int, ...]) -> dict[str, str]:
    """The GPUs a replica may see, by their index on the node: the scheduler gave them to it alone.
    None given: it sees none (an empty CUDA_VISIBLE_DEVICES hides every GPU from CUDA)."""
    visible = ",".join(str(i) for i in gpus)
    return {"CUDA_VISIBLE_DEVICES": visible, "NVIDIA_VISIBLE_DEVICES": visible or "void"}


def request_logging_env(sample_rate: float, max_bytes: int) -> dict[str, str]:
    """The deployment's request logging, for its runner (kingpost_runner/request_log.py); none when off."""
    if not sample_rate > 0:
        return {}
    return {"KINGPOST_REQUEST_LOG_SAMPLE_RATE": repr(float(sample_rate)),
            "KINGPOST_REQUEST_LOG_MAX_BYTES": str(max_bytes)}


def work_area_env(work_area: Path, uid: int | None) -> dict[str, str]:
    """The variables that name a replica's working area (TMPDIR; HOME too under its own user `uid`)
    and, under its own user, who it is."""
    env = {"TMPDIR": str(work_area)}
    if uid is not None:
        env["HOME"] = str(work_area)
        # getpass.getuser() reads these first: there is no passwd entry for the uid to find.
        env["USER"] = env["LOGNAME"] = f"kingpost-{uid}"
    return env
