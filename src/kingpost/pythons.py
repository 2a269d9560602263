"""Finding a Python interpreter of a given version on this machine (the builder and the agent agree on it).

Never downloads one. Candidates: `pythonX.Y` on PATH, pyenv's versions, /usr/bin and /usr/local/bin;
each is run once to check it really is that version (a pyenv shim may exist and fail).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path


def platform_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


@functools.lru_cache(maxsize=32)
def find_python(version: str) -> str | None:
    """An interpreter for `version` ("3.11"), or None. The platform's own one first."""
    if version == platform_version():
        return sys.executable
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    candidates = [shutil.which(f"python{version}")]
    if pyenv.is_dir():
        candidates += [str(p / "bin" / f"python{version}") for p in sorted(pyenv.glob(f"{version}.*"), reverse=True)]
    candidates += [f"/usr/local/bin/python{version}", f"/usr/bin/python{version}"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and _reports(candidate, version):
            return candidate
    return None


def _reports(python: str, version: str) -> bool:
    try:
        out = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == version
