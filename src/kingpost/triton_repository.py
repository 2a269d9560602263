"""A Triton model repository as kingpost reads it: recognised by its layout, checked before it ships.

    DIR/<model>/config.pbtxt          # a ModelConfig in protobuf text format
    DIR/<model>/<version>/...          # one or more numbered version folders (model.py, model.onnx, ...)
    DIR/config.yaml                    # optional: model_name, resources, runtime, as a Truss has them

`is_repository(paths)` tells a pushed directory's kind from its file list; `parse(root)` reads every
model's config.pbtxt with Triton's own schema (`model_config.proto`, shipped in tritonclient) and
raises `RepositoryError` naming the file and the field at fault. What it cannot know (whether this
node's tritonserver has the named backend, whether the model file loads) Triton itself says when the
replica starts: the runner passes Triton's message on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format
from google.protobuf.message import Message

CONFIG_FILE = "config.pbtxt"
# What a Python-backend version folder must hold (Triton's default_model_filename for it).
PYTHON_MODEL_FILE = "model.py"


# Triton's platforms and the backend that serves each ("ensemble" is Triton's own scheduler).
PLATFORM_BACKENDS = {"onnxruntime_onnx": "onnxruntime", "tensorrt_plan": "tensorrt", "pytorch_libtorch": "pytorch",
                     "tensorflow_savedmodel": "tensorflow", "tensorflow_graphdef": "tensorflow", "ensemble": ""}


class RepositoryError(ValueError):
    """A model repository Triton would refuse; the message names the file and the field."""


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str  # the V2 protocol's name: FP32, INT64, BYTES, ...
    dims: tuple[int, ...]


@dataclass(frozen=True)
class TritonModel:
    name: str
    backend: str  # "python", "onnxruntime", ... or the platform ("onnxruntime_onnx") when only that is set
    max_batch_size: int
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    versions: tuple[int, ...]
    dynamic_batching: str  # "" when off; else its settings, as config.pbtxt writes them
    decoupled: bool


@dataclass(frozen=True)
class Repository:
    models: tuple[TritonModel, ...]

    def model(self, name: str | None) -> TritonModel:
        """The model a request names, or the only one when it names none."""
        if name:
            for model in self.models:
                if model.name == name:
                    return model
            raise RepositoryError(f"no model {name!r} in this repository; it serves "
                                  f"{', '.join(m.name for m in self.models)}")
        if len(self.models) == 1:
            return self.models[0]
        raise RepositoryError(f"this repository serves {len(self.models)} models "
                              f"({', '.join(m.name for m in self.models)}): name one with \"model_name\"")

    def check_backends(self, available: set[str]) -> None:
        """Each model's backend is one `available` (a tritonserver's backends folder names them)."""
        for m in self.models:
            needed = PLATFORM_BACKENDS.get(m.backend, m.backend)
            if needed and needed not in available:
                field = "platform" if m.backend in PLATFORM_BACKENDS else "backend"
                raise RepositoryError(f"{m.name}/{CONFIG_FILE}: {field}: {m.backend!r} needs the {needed!r} backend, "
                                      f"which this platform's tritonserver lacks (it has: "
                                      f"{', '.join(sorted(available)) or 'none'})")

    def summary(self) -> str:
        """One line per model: what `deployments get` and the build log show."""
        lines = []
        for m in self.models:
            batching = f"dynamic_batching {{{m.dynamic_batching}}}" if m.dynamic_batching else "no dynamic batching"
            lines.append(f"{m.name}: backend {m.backend}, versions {','.join(map(str, m.versions))}, "
                         f"max_batch_size {m.max_batch_size}, {batching}"
                         + (", decoupled" if m.decoupled else ""))
        return "; ".join(lines)


def is_repository(paths: Iterable[str]) -> bool:
    """True when some top-level folder holds a config.pbtxt (a Truss never does)."""
    for path in paths:
        parts = path.strip("/").split("/")
        if len(parts) == 2 and parts[1] == CONFIG_FILE:
            return True
    return False


def _model_config() -> Message:
    from tritonclient.grpc import model_config_pb2  # the schema tritonserver parses with

    return model_config_pb2.ModelConfig()


def _datatype(config: Message, value: int) -> str:
    name = config.DESCRIPTOR.file.enum_types_by_name["DataType"].values_by_number[value].name
    return "BYTES" if name == "TYPE_STRING" else name.removeprefix("TYPE_")


def parse_model(folder: Path) -> TritonModel:
    source = f"{folder.name}/{CONFIG_FILE}"
    config = _model_config()
    try:
        text_format.Parse((folder / CONFIG_FILE).read_text(errors="replace"), config)
    except text_format.ParseError as e:
        raise RepositoryError(f"{source} does not parse: {e}") from None
    if config.name and config.name != folder.name:  # type: ignore[attr-defined]
        raise RepositoryError(f"{source}: name: {config.name!r} differs from its folder "  # type: ignore[attr-defined]
                              f"{folder.name!r} (Triton requires them equal)")
    backend = config.backend or config.platform  # type: ignore[attr-defined]
    if not backend:
        raise RepositoryError(f"{source}: backend: missing (name one, e.g. backend: \"python\", or a platform)")
    tensors = []
    for field in ("input", "output"):
        found = []
        entries = getattr(config, field)
        if not entries and field == "output":
            raise RepositoryError(f"{source}: output: none declared")
        for i, entry in enumerate(entries):
            where = f"{source}: {field}[{i}]"
            if not entry.name:
                raise RepositoryError(f"{where}: name: missing")
            if entry.data_type == 0:
                raise RepositoryError(f"{where} ({entry.name}): data_type: missing (e.g. TYPE_FP32)")
            if not entry.dims:
                raise RepositoryError(f"{where} ({entry.name}): dims: missing (e.g. dims: [ 4 ], -1 for any)")
            found.append(Tensor(entry.name, _datatype(config, entry.data_type), tuple(entry.dims)))
        tensors.append(tuple(found))
    versions = sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())
    if not versions:
        raise RepositoryError(f"{folder.name}/: no version folder (Triton loads {folder.name}/1/, "
                              f"{folder.name}/2/, ...)")
    if backend == "python":
        for version in versions:
            filename = config.default_model_filename or PYTHON_MODEL_FILE  # type: ignore[attr-defined]
            if not (folder / str(version) / filename).is_file():
                raise RepositoryError(f"{folder.name}/{version}/{filename}: missing (the Python backend "
                                      "loads it)")
    batching = ""
    if config.HasField("dynamic_batching"):  # type: ignore[attr-defined]
        batching = text_format.MessageToString(config.dynamic_batching, as_one_line=True)  # type: ignore[attr-defined]
        batching = batching or " "
    decoupled = config.model_transaction_policy.decoupled  # type: ignore[attr-defined]
    return TritonModel(folder.name, backend, config.max_batch_size, tensors[0], tensors[1],  # type: ignore[attr-defined]
                       tuple(versions), batching, decoupled)


def parse(root: Path) -> Repository:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and (p / CONFIG_FILE).is_file())
    if not folders:
        raise RepositoryError(f"{root.name}/: no model folder with a {CONFIG_FILE}")
    return Repository(tuple(parse_model(folder) for folder in folders))
