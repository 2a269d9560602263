"""One build, as a list of steps over a `BuildWork`.

    intake:  extract the upload safely            (a bad archive is a bad request: INVALID_ARGUMENT)
    steps:   validate_config → check_build_settings → resolve_dependencies → install_system_packages
             → package → store_artifact
             (a failure here is a FAILED build, with the step's message)

Two content-addressed artifacts come out of a Truss with requirements:
- the dependency layer: `lock.txt` (uv's lock, with the runner's own packages at the platform's
  versions), `python_version`, `wheels/*.whl`. Cached by `dependency_key(lock, python)` through a
  store ref, so a Truss whose lock did not change never downloads or builds a wheel again;
- the code layer: the Truss itself plus `.kingpost/environment.json`, which names the dependency
  artifact's digest (so the code digest changes when the dependencies do, and not otherwise).
A Truss without requirements has no dependency layer: the worker agent runs it in its base environment
(the runner's declared packages only, linked from the platform's installation).
A Truss with `system_packages` (where allowed) gets a system layer too (system_packages.py: the .debs
apt downloads, unpacked), cached by its package names and the builder's OS, named by the manifest's `system`.

Steps are plain synchronous functions (file and subprocess work); the servicer runs each in a
thread and publishes the log lines each one writes while it runs.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kingpost import environment_manifest, pythons, triton_repository
from kingpost.environment_manifest import EnvironmentManifest
from kingpost.errors import InvalidArgument
from kingpost_builder import archive, environment, requirements, system_packages, triton_build, truss_config
from kingpost_builder.store import ArtifactStore
from kingpost_builder.truss_config import ParsedConfig


@dataclass
class LogEntry:
    level: str
    text: str


@dataclass
class BuildWork:
    build_id: str
    work_dir: Path
    upload: Path
    max_unpacked_bytes: int
    source_dir: Path = field(init=False)
    files: set[str] = field(default_factory=set)
    parsed: ParsedConfig | None = None
    warnings: list[str] = field(default_factory=list)
    artifact: Path | None = None
    digest: str = ""
    cached: bool = False
    # system_packages and build_commands run only where the builder's settings allow them.
    allow_build_commands: bool = False
    # Wheels this builder fetched or built before, per Python version (None: fetch every time).
    wheelhouse: Path | None = None
    dependencies: str = ""  # the dependency artifact's digest; "" = none
    dependencies_cached: bool = False
    system: str = ""  # the system layer's digest; "" = none
    triton: str = ""  # a Triton model repository's summary; "" = a Truss
    log: list[LogEntry] = field(default_factory=list)
    _log_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.source_dir = self.work_dir / "source"

    def _add(self, entry: LogEntry) -> None:
        with self._log_lock:  # steps log from a worker thread while the servicer drains
            self.log.append(entry)

    def info(self, text: str) -> None:
        self._add(LogEntry("INFO", text))

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        self._add(LogEntry("WARNING", text))

    def error(self, text: str) -> None:
        self._add(LogEntry("ERROR", text))

    def take_log(self) -> list[LogEntry]:
        with self._log_lock:
            out, self.log = self.log, []
        return out

    @property
    def config(self) -> truss_config.TrussConfig:
        assert self.parsed is not None, "validate_config runs first"
        return self.parsed.config


Step = Callable[[BuildWork, ArtifactStore], None]


def intake(work: BuildWork, store: ArtifactStore) -> None:
    work.source_dir.mkdir()
    work.files = archive.extract(work.upload, work.source_dir, max_unpacked_bytes=work.max_unpacked_bytes)
    work.upload.unlink()
    work.info(f"extracted {len(work.files)} files")


def validate_config(work: BuildWork, store: ArtifactStore) -> None:
    if triton_repository.is_repository(work.files):
        validate_triton_repository(work)
        return
    name = truss_config.find_config_file(work.files)
    path = work.source_dir / name
    if path.is_symlink():
        raise InvalidArgument(f"{name} is a symlink; it must be a file")
    work.parsed = truss_config.parse_truss_config(path.read_text(errors="replace"), source=name)
    truss_config.check_layout(work.config, work.files)
    for warning in work.parsed.warnings:
        work.warn(warning)
    config = work.config
    accelerator = config.resources.accelerator or "no accelerator"
    serves = (f"custom server `{config.docker_server['start_command']}` on port "
              f"{config.docker_server['server_port']}" if config.docker_server is not None
              else f"class {config.model_class_name} in {config.model_file}")
    work.info(f"config.yaml is valid: model {config.model_name or '(unnamed)'}, {serves}, cpu "
              f"{config.resources.cpu}, memory {config.resources.memory}, {accelerator}, predict_concurrency {config.runtime.predict_concurrency}")


def validate_triton_repository(work: BuildWork) -> None:
    repository = triton_build.prepare(work.source_dir, work.files)
    work.parsed = truss_config.parse_truss_config((work.source_dir / truss_config.CONFIG_FILE).read_text())
    for warning in work.parsed.warnings:
        work.warn(warning)
    config = work.config
    work.triton = repository.summary()
    work.info(f"Triton model repository is valid: {work.triton}")
    work.info(f"config.yaml: cpu {config.resources.cpu}, memory {config.resources.memory}, "
              f"predict_concurrency {config.runtime.predict_concurrency}")


def check_build_settings(work: BuildWork, store: ArtifactStore) -> None:
    """system_packages and build_commands: refused unless this builder allows them."""
    raw = work.parsed.raw if work.parsed is not None else {}
    asked = [key for key in ("system_packages", "build_commands") if raw.get(key)]
    if not asked:
        return
    if not work.allow_build_commands:
        raise InvalidArgument(f"{' and '.join(asked)}: this builder does not run them (its setting "
                              "allow_build_commands is false); ask the operator, or drop them from config.yaml")
    system_packages.package_names(raw.get("system_packages"))  # bad names fail before anything runs
    for command in raw.get("build_commands") or []:
        work.info(f"$ {command}")
        code = environment.run_logged(["/bin/sh", "-c", str(command)], cwd=work.source_dir, line=work.info)
        if code != 0:
            raise InvalidArgument(f"build_commands: {command!r} exited with code {code}")


def _requirement_inputs(work: BuildWork) -> tuple[list[str], Path | None, str]:
    """(requirement lines, a file to resolve as it is, how to name the source in messages)."""
    config = work.config
    if not config.requirements_file:
        return list(config.requirements), None, "requirements"
    name = config.requirements_path or ""
    path = work.source_dir / name
    source = f"requirements_file {name}"
    if path.is_symlink() or not path.resolve().is_relative_to(work.source_dir.resolve()):
        raise InvalidArgument(f"{source} must be a file inside the truss, not a symlink")
    if name.endswith(".lock"):
        exported = environment.export_uv_lock(path.parent, out=work.work_dir / "uv-lock.txt", line=work.info)
        return requirements.requirement_lines(exported.read_text()), exported, source
    if name.endswith(".toml"):
        return [], path, source
    return requirements.requirement_lines(path.read_text(errors="replace")), path, source


def resolve_dependencies(work: BuildWork, store: ArtifactStore) -> None:
    """Lock the Truss's requirements with uv and store their wheels as the dependency artifact."""
    environment_manifest.remove(work.source_dir)
    lines, path, source = _requirement_inputs(work)
    if not lines and path is None:
        return
    pins = requirements.runner_pins()
    requirements.check_runner_conflicts(lines, pins, source=source)
    wanted = requirements.python_of(work.config.python_version)
    python = pythons.find_python(wanted)
    if python is None:
        python, found = pythons.find_python(pythons.platform_version()), pythons.platform_version()
        assert python is not None
        work.warn(f"python_version: Python {wanted} is not on the builder; locked for the platform's {found}")
        wanted = found
    runner_in = work.work_dir / "runner.in"
    runner_in.write_text("\n".join(requirements.runner_input_lines(pins)) + "\n")
    inputs = [path] if path is not None else []
    if path is None:
        user_in = work.work_dir / "requirements.in"
        user_in.write_text("\n".join(lines) + "\n")
        inputs = [user_in]
    lock_path = work.work_dir / "pylock.toml"
    input_key = requirements.input_key([p.read_text(errors="replace") for p in [*inputs, runner_in]], wanted)
    locked_before = store.get_ref(input_key) if input_key else None
    if locked_before is not None:  # the same requirements were locked before: same content, same build
        lock = store.get(locked_before).decode()
        lock_path.write_text(lock)
        work.info(f"requirements unchanged since they were locked: reusing that lock ({locked_before})")
    else:
        lock = environment.compile_lock([*inputs, runner_in], wanted, cwd=work.source_dir, out=lock_path,
                                        line=work.info)
        if input_key:
            staged = work.work_dir / "pylock.staged"
            staged.write_bytes(lock.encode())
            lock_digest = "sha256:" + hashlib.sha256(lock.encode()).hexdigest()
            store.put(lock_digest, staged)
            store.put_ref(input_key, lock_digest)
    key = requirements.dependency_key(lock, wanted)
    packages = requirements.locked_packages(lock, wanted)
    work.info(f"locked {len(packages)} packages for Python {wanted}: {', '.join(p.pin for p in packages)}")
    digest = store.get_ref(key)
    if digest is None:
        layer = work.work_dir / "dependencies"
        environment.fetch_wheels(packages, layer / "wheels", python, wanted, line=work.info,
                                 wheelhouse=work.wheelhouse)
        (layer / "lock.txt").write_text(requirements.lock_requirements(packages))
        shutil.copyfile(lock_path, layer / "pylock.toml")
        (layer / "python_version").write_text(wanted + "\n")
        staged = work.work_dir / "dependencies.tar.gz"
        with open(staged, "wb") as out:
            digest = archive.write_canonical(layer, out, compresslevel=1)  # wheels are zips already
        size = staged.stat().st_size
        store.put(digest, staged)
        store.put_ref(key, digest)
        work.info(f"dependency layer {digest} stored ({archive.human_bytes(size)})")
    else:
        work.dependencies_cached = True
        work.info(f"dependency layer {digest} already stored (cached): no wheel fetched")
    work.dependencies = digest
    environment_manifest.write(work.source_dir, EnvironmentManifest(digest, wanted, key))


def install_system_packages(work: BuildWork, store: ArtifactStore) -> None:
    """system_packages (check_build_settings allowed them): the system layer, named by the manifest."""
    names = system_packages.package_names(work.parsed.raw.get("system_packages") if work.parsed else None)
    if not names:
        return
    work.system, _ = system_packages.system_layer(names, work.work_dir / "apt", store, line=work.info)
    # resolve_dependencies wrote one, or there is none
    manifest = environment_manifest.read(work.source_dir) or EnvironmentManifest()
    environment_manifest.write(work.source_dir, manifest.with_system(work.system))


def package(work: BuildWork, store: ArtifactStore) -> None:
    work.artifact = work.work_dir / "artifact.tar.gz"
    with open(work.artifact, "wb") as out:
        work.digest = archive.write_canonical(work.source_dir, out)
    size = work.artifact.stat().st_size
    work.info(f"packaged {archive.human_bytes(size)} as {work.digest}")


def store_artifact(work: BuildWork, store: ArtifactStore) -> None:
    assert work.artifact is not None, "package runs first"
    work.cached = not store.put(work.digest, work.artifact)
    work.info(f"artifact {work.digest} {'already stored (cached)' if work.cached else 'stored'}")


STEPS: tuple[Step, ...] = (validate_config, check_build_settings, resolve_dependencies, install_system_packages,
                           package, store_artifact)
