"""One build, as a list of steps over a `BuildWork`: the shape later steps slot into.

    intake:  extract the upload safely            (a bad archive is a bad request: INVALID_ARGUMENT)
    steps:   validate_config → check_dependencies → package → store_artifact
             (a failure here is a FAILED build, with the step's message)

Steps are plain synchronous functions (file work); the servicer runs each in a thread and
publishes the log lines each one wrote. Resolving and locking requirements with uv replaces
`check_dependencies` (and adds its wheels to what `package` writes); nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kingpost.errors import InvalidArgument
from kingpost_builder import archive, requirements, truss_config
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
    log: list[LogEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.source_dir = self.work_dir / "source"

    def info(self, text: str) -> None:
        self.log.append(LogEntry("INFO", text))

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        self.log.append(LogEntry("WARNING", text))

    def error(self, text: str) -> None:
        self.log.append(LogEntry("ERROR", text))

    def take_log(self) -> list[LogEntry]:
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
    work.info(f"config.yaml is valid: model {config.model_name or '(unnamed)'}, class "
              f"{config.model_class_name} in {config.model_file}, cpu {config.resources.cpu}, memory "
              f"{config.resources.memory}, {accelerator}, predict_concurrency {config.runtime.predict_concurrency}")


def check_dependencies(work: BuildWork, store: ArtifactStore) -> None:
    """Until isolated environments: accept only requirements the platform already satisfies."""
    config = work.config
    if config.requirements_file:
        name = config.requirements_path or ""
        if name.endswith((".toml", ".lock")):
            raise requirements_not_yet(name)
        lines = requirements.requirement_lines((work.source_dir / name).read_text(errors="replace"))
        source = f"requirements_file {name}"
    else:
        lines, source = list(config.requirements), "requirements"
    for warning in requirements.check_requirements(lines, source=source):
        work.warn(warning)
    if lines:
        work.info(f"{len(lines)} requirements, all present in the platform")


def requirements_not_yet(name: str) -> InvalidArgument:
    return InvalidArgument(f"requirements_file {name}: pyproject.toml and uv.lock files cannot be honoured: "
                           f"{requirements.NOT_YET}")


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


STEPS: tuple[Step, ...] = (validate_config, check_dependencies, package, store_artifact)
