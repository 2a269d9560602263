"""A replica's secrets as truss mounts them: one file per name (`/secrets/<name>` in a truss image),
here `<work area>/secrets/<name>`, the directory 0700 and each file 0400, its runner's user's alone.

Written at each start from what the scheduler sent (a restart after the agent's own restart reuses
the files already there); the runner's `secrets["NAME"]` reads them (kingpost_runner.truss_secrets).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

DIRECTORY = "secrets"


def write(work_area: Path, uid: int | None, secrets: Iterable[tuple[str, str]]) -> Path:
    """The replica's secrets directory, holding `secrets` (when given: exactly those). Raises OSError."""
    directory = work_area / DIRECTORY
    directory.mkdir(mode=0o700, exist_ok=True)
    if uid is not None:
        os.chown(directory, uid, uid)
    os.chmod(directory, 0o700)
    given = dict(secrets)
    if not given:
        return directory
    for stale in directory.iterdir():
        if stale.name not in given:
            stale.unlink()
    for name, value in given.items():
        path = directory / name
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(fd, "w") as f:
            f.write(value)
        if uid is not None:
            os.chown(path, uid, uid)
    return directory
