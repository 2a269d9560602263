"""Generate Python code, Envoy's descriptor set and the OpenAPI document from protos/ — the only
command that does.

Usage: python scripts/gen_protos.py [OUT_ROOT]
OUT_ROOT defaults to the repository; tests/unit/test_protos.py generates into a
temporary directory and compares, so generated code cannot drift from protos/.
"""

from __future__ import annotations

import sys
import tempfile
from importlib import resources
from pathlib import Path

from google.protobuf import descriptor_pb2
from grpc_tools import protoc

from kingpost import openapi

ROOT = Path(__file__).resolve().parent.parent
PY_OUT = Path("src")  # kingpost/v1/*_pb2.py lands in src/kingpost/v1/
DESCRIPTOR = Path("src/kingpost/envoy/kingpost.binpb")  # package data: `kingpost up` and cluster Envoys use it
# Package data beside the descriptor: Envoy serves it at GET /v1/openapi.json.
OPENAPI = Path("src/kingpost/envoy/openapi.json")


def generate(out_root: Path) -> None:
    protos = sorted(str(p.relative_to(ROOT / "protos")) for p in (ROOT / "protos").rglob("*.proto"))
    wkt = str(resources.files("grpc_tools") / "_proto")
    py_out = out_root / PY_OUT
    (py_out / "kingpost" / "v1").mkdir(parents=True, exist_ok=True)
    (out_root / DESCRIPTOR).parent.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{ROOT / 'protos'}",
        f"-I{ROOT / 'third_party' / 'googleapis'}",
        f"-I{wkt}",
        f"--python_out={py_out}",
        f"--pyi_out={py_out}",
        f"--grpc_python_out={py_out}",
        f"--descriptor_set_out={out_root / DESCRIPTOR}",
        "--include_imports",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    with tempfile.TemporaryDirectory() as tmp:  # the same, with comments: the document's descriptions
        described = Path(tmp) / "described.binpb"
        base = [a for a in args if not a.startswith(("--python_out", "--pyi_out", "--grpc_python_out",
                                                       "--descriptor_set_out"))]
        if protoc.main([*base, f"--descriptor_set_out={described}", "--include_source_info"]) != 0:
            raise SystemExit("protoc failed")
        files = descriptor_pb2.FileDescriptorSet.FromString(described.read_bytes())
    (out_root / OPENAPI).write_text(openapi.dumps(openapi.build(files)))
    init = py_out / "kingpost" / "v1" / "__init__.py"
    init.write_text('"""Generated from protos/kingpost/v1 by scripts/gen_protos.py. Do not edit."""\n')


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
