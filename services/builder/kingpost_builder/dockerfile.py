"""An OCI build context for a Truss, for clusters that want images: `kingpost build --dockerfile OUT DIR`.

Pure: a parsed config and the runner's pins in, the Dockerfile's and requirements.txt's text out.
The context laid out by the CLI:

    Dockerfile  requirements.txt  truss/  kingpost_runner/  kingpost/ (errors.py, grpc_status.py, trace_phases.py, ..., v1/)

The image runs the same runner as the agent does (`python -m kingpost_runner`), on port 8080.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from kingpost_builder import requirements
from kingpost_builder.truss_config import TrussConfig

PORT = 8080


def render_requirements(lines: Sequence[str], pins: Mapping[str, str]) -> str:
    return "".join(f"{line}\n" for line in [*lines, *requirements.runner_input_lines(pins)])


def render_dockerfile(config: TrussConfig, raw: Mapping[str, object]) -> str:
    python = requirements.python_of(config.python_version)
    out = [f"FROM python:{python}-slim", "WORKDIR /app", "ENV PYTHONUNBUFFERED=1 PYTHONPATH=/app"]
    for name, value in sorted(config.environment_variables.items()):
        out.append(f"ENV {name}={json.dumps(value)}")
    system = [str(p) for p in (raw.get("system_packages") or [])]  # type: ignore[union-attr]
    if system:
        out.append("RUN apt-get update && apt-get install -y --no-install-recommends "
                   + " ".join(system) + " && rm -rf /var/lib/apt/lists/*")
    out += ["COPY requirements.txt /app/requirements.txt",
            "RUN pip install --no-cache-dir -r /app/requirements.txt",
            "COPY kingpost_runner /app/kingpost_runner", "COPY kingpost /app/kingpost", "COPY truss /app/truss"]
    for command in raw.get("build_commands") or []:  # type: ignore[union-attr]
        out.append(f"RUN cd /app/truss && {command}")
    # Secrets are never baked in: mount them at /secrets (one file per name) when the container runs.
    out.append(f"EXPOSE {PORT}")
    out.append(f'CMD ["python", "-m", "kingpost_runner", "--truss", "/app/truss", "--port", "{PORT}", '
               '"--host", "0.0.0.0"]')
    return "\n".join(out) + "\n"
