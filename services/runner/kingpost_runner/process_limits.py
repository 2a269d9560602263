"""What a runner does to itself before it reads its Truss, as the worker agent asks (its containment).

- `become(uid, gid, groups)`: a standby runner, started as root, becomes its replica's user. (A runner
  started fresh is already that user: the agent's subprocess call set it, between fork and exec.)
- `no_new_privileges()`: no program it runs gains privileges (set-user-ID binaries, file
  capabilities), so a model cannot climb back out of its user through sudo, su, mount or ping.
- `limit_data(n)`: RLIMIT_DATA at n bytes, where the node has no memory cgroup: an allocation past
  it fails (MemoryError in Python) instead of starving the node. It counts the private writable
  memory the process has mapped (heap, anonymous mmaps, thread stacks), not what it has touched,
  and not the large PROT_NONE reservations that runtimes such as CUDA, JAX and Go make (RLIMIT_AS
  would count those, and break them).
"""

from __future__ import annotations

import os
import resource
import sys

PR_SET_NO_NEW_PRIVS = 38


def become(uid: int, gid: int, groups: list[int]) -> None:
    """Drop root for good: supplementary groups, then group, then user. Raises OSError."""
    os.setgroups(groups)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def no_new_privileges() -> None:
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")


def limit_data(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
