"""Local ports for runners: ask the OS for a free one, and never hand out one a live replica holds.

The OS may offer a port again as soon as the probe socket closes, before the runner binds it;
the reserved set keeps two replicas that start at the same time off the same port.
"""

from __future__ import annotations

import socket
from collections.abc import Callable


def probe_free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class PortAllocator:
    def __init__(self, probe: Callable[[], int] = probe_free_port, attempts: int = 50) -> None:
        self._probe = probe
        self._attempts = attempts
        self._reserved: set[int] = set()

    def allocate(self) -> int:
        for _ in range(self._attempts):
            port = self._probe()
            if port not in self._reserved:
                self._reserved.add(port)
                return port
        raise RuntimeError(f"no free local port after {self._attempts} tries")

    def reserve(self, *ports: int) -> None:
        """Keep `ports` from being handed out: a runner adopted from the agent before holds them (0: none)."""
        self._reserved.update(p for p in ports if p)

    def release(self, *ports: int) -> None:
        self._reserved.difference_update(ports)

    @property
    def reserved(self) -> frozenset[int]:
        return frozenset(self._reserved)
