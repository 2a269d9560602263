"""Where this machine's `tritonserver` is, and how to install one from the package registries.

    python -m kingpost.triton_install DIR      # what `make test` runs: DIR = .tools/triton

Triton ships as a container; the one build that installs from PyPI is the `tritonserver` 2.51
inside `nvidia-pytriton` 0.7.0 (a manylinux wheel: the server, its libraries, the Python backend and
one backend stub per Python version). It runs on the CPU. Installed here with `--no-deps` into its
own folder, because nvidia-pytriton requires numpy < 2 and the platform does not.

The Python backend's stub embeds the system's libpython3.11 (Debian's `libpython3.11`), so the
environment its models import from must be a virtual environment of that same interpreter,
`/usr/bin/python3.11` (any other 3.11 build fails inside the stub on a stdlib mismatch); it holds
numpy < 2, which the backend's own `triton_python_backend_utils` needs.

Layout of DIR (`TritonHome`): `site/` (the wheel), `backends/python/` (the backend with the 3.11
stub beside it, where Triton looks for it), `python-env/` (the backend's environment).
The agent finds DIR through `KINGPOST_TRITON_HOME`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PYTRITON = "nvidia-pytriton==0.7.0"
STUB_PYTHON = "/usr/bin/python3.11"
STUB_VERSION = "3.11"
BACKEND_NUMPY = "numpy>=1.21,<2"
HOME_ENV = "KINGPOST_TRITON_HOME"


@dataclass(frozen=True)
class TritonHome:
    root: Path

    @property
    def site(self) -> Path:
        return self.root / "site"

    @property
    def binary(self) -> Path:
        return self.site / "pytriton" / "tritonserver" / "bin" / "tritonserver"

    @property
    def libs(self) -> Path:
        return self.site / "nvidia_pytriton.libs"

    @property
    def caches(self) -> Path:
        return self.site / "pytriton" / "tritonserver" / "caches"

    @property
    def backends(self) -> Path:
        return self.root / "backends"

    @property
    def python_env(self) -> Path:
        return self.root / "python-env"

    def missing(self) -> str | None:
        """None when complete; else what is missing, in words."""
        for path in (self.binary, self.backends / "python" / "triton_python_backend_stub",
                     self.python_env / "bin" / "python"):
            if not path.exists():
                return (f"{path} is missing: install Triton with `python -m kingpost.triton_install "
                        f"{self.root}`")
        return None


def find_home(env: dict[str, str] | os._Environ[str] = os.environ) -> TritonHome | None:
    value = env.get(HOME_ENV)
    return TritonHome(Path(value)) if value else None


def install(root: Path, *, python: str = sys.executable) -> TritonHome:
    home = TritonHome(root.resolve())
    if home.missing() is None:
        return home
    root.mkdir(parents=True, exist_ok=True)
    if not home.binary.exists():
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                        "--target", str(home.site), PYTRITON], check=True)
    stubs = home.site / "pytriton" / "tritonserver"
    backend = home.backends / "python"
    backend.mkdir(parents=True, exist_ok=True)
    for item in (stubs / "backends" / "python").iterdir():
        if item.is_file():
            shutil.copy2(item, backend / item.name)
    shutil.copy2(stubs / "python_backend_stubs" / STUB_VERSION / "triton_python_backend_stub",
                 backend / "triton_python_backend_stub")
    if not (home.python_env / "bin" / "python").exists():
        if not Path(STUB_PYTHON).exists():
            raise SystemExit(f"{STUB_PYTHON} is missing: the Python backend's stub needs Debian's python3.11 "
                             "(apt-get install python3.11 python3.11-venv libpython3.11)")
        subprocess.run([STUB_PYTHON, "-m", "venv", str(home.python_env)], check=True)
        subprocess.run([str(home.python_env / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", BACKEND_NUMPY], check=True)
    return home


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kingpost.triton_install",
                                     description="Install a CPU tritonserver (from nvidia-pytriton) into DIR.")
    parser.add_argument("dir", type=Path)
    args = parser.parse_args(argv)
    home = install(args.dir)
    print(f"tritonserver ready: {HOME_ENV}={home.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
