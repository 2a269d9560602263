"""`kingpost build --dockerfile OUT DIR`: render an OCI build context (Dockerfile + files) for a Truss."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import click

from kingpost.cli.app import cli
from kingpost.errors import InvalidArgument


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # found, not imported: its files go into the image
    assert spec is not None and spec.origin, f"{name} is not installed"
    return Path(spec.origin).parent


def _runner_code(out: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(_package_dir("kingpost_runner"), out / "kingpost_runner", ignore=ignore)
    platform = _package_dir("kingpost")
    (out / "kingpost").mkdir()
    for name in ("__init__.py", "errors.py", "grpc_status.py", "keepalive.py", "trace_phases.py", "wire_limits.py",
                 "triton_install.py", "environment_manifest.py", "docker_server.py", "log_format.py"):
        shutil.copyfile(platform / name, out / "kingpost" / name)
    shutil.copytree(platform / "v1", out / "kingpost" / "v1", ignore=ignore)


@cli.command("build")
@click.argument("truss_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--dockerfile", "out", required=True, type=click.Path(path_type=Path),
              help="Write the build context (Dockerfile, requirements.txt, truss/, runner code) here.")
def build_command(truss_dir: Path, out: Path) -> None:
    """Render an OCI build context for the Truss in DIR (`docker build OUT` makes its image)."""
    # This command runs the builder's own code in-process (as `kingpost builder` does), so it imports
    # that service here, lazily: the rest of the CLI never loads a service package.
    from kingpost_builder import dockerfile, requirements, truss_config

    if out.exists() and any(out.iterdir()):
        raise InvalidArgument(f"{out} is not empty")
    parsed = truss_config.parse_truss_config((truss_dir / "config.yaml").read_text())
    config = parsed.config
    if config.requirements_file:
        lines = requirements.requirement_lines((truss_dir / (config.requirements_path or "")).read_text())
    else:
        lines = list(config.requirements)
    pins = requirements.runner_pins()
    requirements.check_runner_conflicts(lines, pins, source="requirements")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(truss_dir, out / "truss", ignore=shutil.ignore_patterns("__pycache__", ".git"))
    _runner_code(out)
    (out / "requirements.txt").write_text(dockerfile.render_requirements(lines, pins))
    (out / "Dockerfile").write_text(dockerfile.render_dockerfile(config, parsed.raw))
    click.echo(f"build context written to {out}: docker build -t MODEL {out}")
