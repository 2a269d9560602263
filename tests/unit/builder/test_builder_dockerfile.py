"""`kingpost build --dockerfile`: the OCI build context a Truss renders to."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from click.testing import CliRunner

from kingpost.cli.app import cli
from kingpost_builder.dockerfile import render_dockerfile, render_requirements
from kingpost_builder.truss_config import parse_truss_config


def test_dockerfile_has_python_env_system_packages_build_commands_and_the_runner() -> None:
    parsed = parse_truss_config("python_version: py311\nenvironment_variables: {MODE: fast}\n"
                                "system_packages: [ffmpeg]\nbuild_commands: ['echo hi']\n"
                                "secrets: {token: null}\n")
    text = render_dockerfile(parsed.config, parsed.raw)
    lines = text.splitlines()
    assert lines[0] == "FROM python:3.11-slim"
    assert 'ENV MODE="fast"' in lines
    assert any(line.startswith("RUN apt-get update") and "ffmpeg" in line for line in lines)
    assert "RUN cd /app/truss && echo hi" in lines
    assert "token" not in text  # secrets are mounted at run time, never baked in
    assert lines[-1].startswith('CMD ["python", "-m", "kingpost_runner", "--truss", "/app/truss"')
    # The runner's packages pinned; what Truss's server provides (pydantic) unpinned, so a model's own pin wins.
    assert render_requirements(["six==1.16.0"], {"grpcio": "1.81.1"}) == "six==1.16.0\ngrpcio==1.81.1\npydantic\n"


def test_cli_writes_the_context(tmp_path: Path) -> None:
    truss = tmp_path / "t"
    (truss / "model").mkdir(parents=True)
    (truss / "config.yaml").write_text("requirements: [six==1.16.0]\n")
    (truss / "model" / "model.py").write_text("class Model:\n    pass\n")
    result = CliRunner().invoke(cli, ["build", str(truss), "--dockerfile", str(tmp_path / "ctx")])
    assert result.exit_code == 0, result.output
    ctx = tmp_path / "ctx"
    assert (ctx / "truss" / "model" / "model.py").is_file() and (ctx / "kingpost_runner" / "__main__.py").is_file()
    # The platform code in the context is all the runner imports: the image's `python -m kingpost_runner`
    # starts with the context and the runner's requirements only (-S: no editable install of kingpost).
    packages = sysconfig.get_paths()
    child = subprocess.run(
        [sys.executable, "-S", "-c", "import kingpost, kingpost_runner.__main__; print(kingpost.__file__)"],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ctx), packages["purelib"], packages["platlib"]])},
        cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    assert Path(child.stdout.strip()).is_relative_to(ctx / "kingpost")
    assert (ctx / "requirements.txt").read_text().startswith("six==1.16.0\n")
    assert "FROM python:3.13-slim" in (ctx / "Dockerfile").read_text()
