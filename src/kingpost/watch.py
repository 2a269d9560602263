"""`kingpost watch DIR`: live reload of the development deployment while the Truss is edited.

The directory is polled (file mtimes and sizes, the files `kingpost push` would upload). A change to
model code reaches the running development replicas as a patch (ManagementService.PatchDevelopment:
the agent writes the files into the replica's own copy of the Truss and its runner re-imports the
model) in well under a second, without a build. A change to what the model's environment or
process depends on (config.yaml beyond the few keys below, the requirements file, .truss_ignore)
is a full push instead, as is a patch that finds no running replica (scaled to zero).

`classify` is the rule, pure; `watch` is the loop.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kingpost import rpc
from kingpost.client_config import ClientConfig
from kingpost.errors import KingpostError, Unavailable
from kingpost.v1 import management_pb2, management_pb2_grpc

CONFIG_FILE = "config.yaml"
IGNORE_FILE = ".truss_ignore"
# config.yaml keys the runner reads again on reload; a change to any other key is a push.
RELOADABLE_CONFIG_KEYS = frozenset({
    "model_metadata", "description", "model_class_name", "model_class_filename", "model_module_dir",
    "data_dir", "examples_filename", "live_reload",
})
POLL_SECONDS = 0.2

Snapshot = dict[str, tuple[int, int]]  # relative path → (mtime_ns, size)


class Action(enum.Enum):
    NONE = "none"
    RELOAD = "reload"
    PUSH = "push"


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str = ""


def diff(old: Snapshot, new: Snapshot) -> tuple[set[str], set[str]]:
    """(changed or new paths, deleted paths)."""
    changed = {p for p, stat in new.items() if old.get(p) != stat}
    return changed, set(old) - set(new)


def _requirements_files(config: Mapping[str, Any] | None) -> set[str]:
    name = (config or {}).get("requirements_file")
    return {str(Path(str(name)).as_posix()).removeprefix("./")} if name else set()


def classify(changed: set[str], deleted: set[str], old_config: Mapping[str, Any] | None,
             new_config: Mapping[str, Any] | None) -> Decision:
    """What a set of edits needs: nothing, a live reload, or a push (with the reason)."""
    touched = changed | deleted
    if not touched:
        return Decision(Action.NONE)
    if CONFIG_FILE in touched:
        if old_config is None or new_config is None:
            return Decision(Action.PUSH, "config.yaml is missing or unreadable")
        keys = {k for k in set(old_config) | set(new_config) if old_config.get(k) != new_config.get(k)}
        if keys - RELOADABLE_CONFIG_KEYS:
            return Decision(Action.PUSH, f"config.yaml: {', '.join(sorted(keys - RELOADABLE_CONFIG_KEYS))} changed")
    requirements = touched & (_requirements_files(old_config) | _requirements_files(new_config))
    if requirements:
        return Decision(Action.PUSH, f"{', '.join(sorted(requirements))} changed")
    if IGNORE_FILE in touched:
        return Decision(Action.PUSH, f"{IGNORE_FILE} changed")
    return Decision(Action.RELOAD)


def read_config(truss_dir: Path) -> dict[str, Any] | None:
    try:
        config = yaml.safe_load((truss_dir / CONFIG_FILE).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    return config if isinstance(config, dict) else None


def snapshot(truss_dir: Path) -> Snapshot:
    """The files a push would upload, with their mtimes and sizes."""
    from kingpost.truss_archive import archive_members

    out: Snapshot = {}
    for rel in archive_members(truss_dir):
        path = truss_dir / rel
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            out[rel] = (st.st_mtime_ns, st.st_size)
    return out


@dataclass(frozen=True)
class Reloaded:
    paths: tuple[str, ...]
    seconds: float  # from seeing the change to the new code serving
    reply: management_pb2.PatchDevelopmentResponse


async def patch_development(config: ClientConfig, model: str, truss_dir: Path, changed: set[str],
                            deleted: set[str]) -> management_pb2.PatchDevelopmentResponse:
    files = {}
    for rel in sorted(changed):
        try:
            files[rel] = (truss_dir / rel).read_bytes()
        except FileNotFoundError:
            deleted = deleted | {rel}
    async with rpc.channel(config.grpc) as channel:
        stub = management_pb2_grpc.ManagementServiceStub(channel)
        return await rpc.call(stub.PatchDevelopment, management_pb2.PatchDevelopmentRequest(
            model_id=model, files=files, deleted=sorted(deleted)), auth=rpc.api_key(config.require_api_key()),
            timeout=600.0, attempts=1)


async def watch(
    config: ClientConfig,
    truss_dir: Path,
    *,
    push: Callable[[], Any],
    on_reload: Callable[[Reloaded], None],
    on_push: Callable[[str], None],
    on_error: Callable[[str], None],
    interval: float = POLL_SECONDS,
    stop: asyncio.Event | None = None,
) -> None:
    """Push once, then reload or push on every change until `stop` is set (or forever)."""
    stop = stop or asyncio.Event()
    truss_dir = truss_dir.resolve()
    result = await push()
    model = result.model.id
    old, old_config = snapshot(truss_dir), read_config(truss_dir)
    pending = ""  # the reason of a push that failed: the next change is a push too
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
            return
        except asyncio.TimeoutError:
            pass
        new = await asyncio.to_thread(snapshot, truss_dir)
        changed, deleted = diff(old, new)
        new_config = read_config(truss_dir)
        decision = classify(changed, deleted, old_config, new_config)
        if decision.action is Action.NONE:
            continue
        if pending and decision.action is Action.RELOAD:
            decision = Decision(Action.PUSH, pending)
        seen = time.monotonic()
        old, old_config = new, new_config
        if decision.action is Action.RELOAD:
            try:
                reply = await patch_development(config, model, truss_dir, changed, deleted)
            except Unavailable as e:
                decision = Decision(Action.PUSH, e.message)
            except KingpostError as e:
                on_error(f"reload failed: {e.message}")
                continue
            else:
                for line in reply.errors:
                    on_error(f"reload failed (the previous code keeps serving): {line}")
                if reply.reloaded:
                    on_reload(Reloaded(tuple(sorted(changed | deleted)), time.monotonic() - seen, reply))
                continue
        on_push(decision.reason)
        try:
            result = await push()
            model, pending = result.model.id, ""
        except KingpostError as e:
            pending = decision.reason
            on_error(f"push failed: {e.message}")
