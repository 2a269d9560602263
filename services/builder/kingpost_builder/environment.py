"""The shell around `requirements.py`: uv locks, pip fetches (or builds) the wheels.

    lock_text = compile_lock(inputs, python_version, cwd, line)   # `uv pip compile`; InvalidArgument on failure

    fetch_wheels(packages, dest, ...)                            # the wheels the lock names (sdists: pip wheel)

Every line either tool prints goes to `line` as it arrives (the build log). uv never downloads a
Python here (UV_PYTHON_DOWNLOADS=never); the machine's pip configuration is ignored (`--isolated`),
so what is built depends on the Truss alone.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
import uv

from kingpost.errors import InvalidArgument
from kingpost_builder.requirements import LockedPackage, lock_requirements

Line = Callable[[str], None]

TAIL_LINES = 30


def uv_bin() -> str:
    return uv.find_uv_bin()


def tool_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["NO_COLOR"] = "1"
    return env


def run_logged(argv: Sequence[str], *, cwd: Path, line: Line, tail: deque[str] | None = None) -> int:
    """Run `argv`, passing each output line (stdout and stderr merged) to `line` as it comes."""
    with subprocess.Popen(list(argv), cwd=cwd, env=tool_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace") as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            text = raw.rstrip("\r\n")
            if not text.strip():
                continue
            line(text)
            if tail is not None:
                tail.append(text)
    return proc.returncode


def compile_lock(inputs: Sequence[Path], python_version: str, *, cwd: Path, out: Path, line: Line) -> str:
    """Resolve `inputs` (requirements files or a pyproject.toml) for `python_version` on this platform;
    the lock's text (`out` must be named pylock.toml: PEP 751, with the one wheel uv picked per package)."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    argv = [uv_bin(), "pip", "compile", *map(str, inputs), "--python-version", python_version,
            "--no-header", "--no-annotate", "--quiet", "-o", str(out)]
    line(f"$ uv pip compile {' '.join(p.name for p in inputs)} --python-version {python_version}")
    code = run_logged(argv, cwd=cwd, line=line, tail=tail)
    if code != 0:
        reason = "\n".join(t for t in tail if t.strip()) or f"uv exited with code {code}"
        raise InvalidArgument(f"cannot resolve the requirements: {reason}")
    return out.read_text()


def export_uv_lock(project_dir: Path, *, out: Path, line: Line) -> Path:
    """A uv.lock (with its pyproject.toml beside it) as a requirements file."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    argv = [uv_bin(), "export", "--frozen", "--no-hashes", "--no-header", "--no-emit-project",
            "--format", "requirements-txt", "--quiet", "-o", str(out), "--directory", str(project_dir)]
    line("$ uv export --frozen --format requirements-txt")
    code = run_logged(argv, cwd=project_dir, line=line, tail=tail)
    if code != 0:
        raise InvalidArgument("cannot read uv.lock: " + ("\n".join(tail) or f"uv exited with code {code}"))
    return out


def fetch_wheels(packages: Sequence[LockedPackage], dest: Path, python: str, python_version: str, *,
                 line: Line, wheelhouse: Path | None = None) -> None:
    """Every locked package as a wheel in `dest`.

    The wheel uv picked: from the builder's wheelhouse (wheels fetched or built before, per Python
    version, named as on the index), else downloaded and checked against the lock's sha256. A package
    with no wheel for the target is built from its sdist by pip (the compiler output is logged).
    """
    dest.mkdir(parents=True, exist_ok=True)
    house = wheelhouse / python_version if wheelhouse is not None else dest
    house.mkdir(parents=True, exist_ok=True)
    reused, fetched, to_build = 0, [], []
    for package in packages:
        if not package.wheel_url:
            to_build.append(package)
            continue
        name = package.wheel_name
        if (house / name).is_file():
            reused += 1
        else:
            fetched.append(package)
    if reused:
        line(f"{reused} wheels from the builder's wheelhouse")
    if fetched:
        _download_all(fetched, house, line=line)
    if house != dest:
        for package in packages:
            if package.wheel_url:
                _link(house / package.wheel_name, dest / package.wheel_name)
    if to_build:
        todo = dest.parent / "build-from-sdist.txt"
        todo.write_text(lock_requirements(to_build))
        line(f"no wheel for {', '.join(p.pin for p in to_build)}: building from source")
        _pip_fetch(todo, dest, python, python_version, line=line)
        if house != dest:
            for wheel in dest.glob("*.whl"):
                if not (house / wheel.name).exists():
                    _link(wheel, house / wheel.name)
    stray = [p.name for p in dest.iterdir() if not p.name.endswith(".whl")]
    if stray:
        raise InvalidArgument(f"pip left files that are not wheels: {', '.join(stray)}")


def _download_all(packages: Sequence[LockedPackage], house: Path, *, line: Line) -> None:
    with httpx.Client(timeout=httpx.Timeout(60.0, connect=15.0), follow_redirects=True) as client:
        for package in packages:
            started = time.monotonic()
            size = _download(client, package, house)
            line(f"downloaded {package.wheel_name} ({size / 1e6:.1f} MB, {time.monotonic() - started:.1f}s)")


def _download(client: httpx.Client, package: LockedPackage, house: Path) -> int:
    target = house / package.wheel_name
    tmp = house / f".{package.wheel_name}.{os.getpid()}.{threading.get_ident()}.tmp"
    digest = hashlib.sha256()
    size = 0
    try:
        if package.wheel_url.startswith("file://"):
            shutil.copyfile(package.wheel_url.removeprefix("file://"), tmp)
            digest.update(tmp.read_bytes())
            size = tmp.stat().st_size
        else:
            with client.stream("GET", package.wheel_url) as reply, open(tmp, "wb") as out:
                if reply.status_code != 200:
                    raise InvalidArgument(f"cannot download {package.wheel_name}: HTTP {reply.status_code}")
                for chunk in reply.iter_bytes(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        if package.wheel_sha256 and digest.hexdigest() != package.wheel_sha256:
            raise InvalidArgument(f"{package.wheel_name}: sha256 {digest.hexdigest()} does not match the lock's "
                                  f"{package.wheel_sha256}")
        os.replace(tmp, target)
    except httpx.HTTPError as e:
        raise InvalidArgument(f"cannot download {package.wheel_name}: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)
    return size


def _pip_fetch(lock: Path, dest: Path, python: str, python_version: str, *, line: Line) -> None:
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    if _has_pip(python):
        argv = [python, "-m", "pip", "--isolated", "--disable-pip-version-check", "wheel", "--no-deps",
                "--progress-bar", "off", "-r", str(lock), "-w", str(dest)]
        line(f"$ pip wheel --no-deps -r {lock.name} (python {python_version})")
    else:  # no pip beside that Python: binary wheels only, fetched by the platform's pip
        argv = [sys.executable, "-m", "pip", "--isolated", "--disable-pip-version-check", "download", "--no-deps",
                "--only-binary=:all:", "--python-version", python_version, "--progress-bar", "off", "-r", str(lock), "-d", str(dest)]
        line(f"$ pip download --only-binary=:all: --python-version {python_version} -r {lock.name}")
    code = run_logged(argv, cwd=lock.parent, line=line, tail=tail)
    if code != 0:
        raise InvalidArgument("cannot build the wheels for the requirements (the build log has the full output): "
                              + "\n".join(list(tail)[-8:]))


def _has_pip(python: str) -> bool:
    try:
        return subprocess.run([python, "-m", "pip", "--version"], capture_output=True, timeout=30,
                              env=tool_env(), check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _link(source: Path, target: Path) -> None:
    """A hard link where the file system allows it (wheels are read-only once written), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
