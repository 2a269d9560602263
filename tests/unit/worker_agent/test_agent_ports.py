import pytest

from kingpost_worker_agent.ports import PortAllocator


def test_a_reserved_port_is_not_handed_out_twice() -> None:
    offers = iter([4000, 4000, 4000, 4001])
    ports = PortAllocator(probe=lambda: next(offers))
    assert ports.allocate() == 4000
    assert ports.allocate() == 4001  # the OS offered 4000 again before the first runner bound it
    assert ports.reserved == {4000, 4001}


def test_a_released_port_can_be_used_again() -> None:
    ports = PortAllocator(probe=lambda: 4000)
    assert ports.allocate() == 4000
    ports.release(4000)
    assert ports.allocate() == 4000


def test_gives_up_when_the_os_only_offers_taken_ports() -> None:
    ports = PortAllocator(probe=lambda: 4000, attempts=3)
    ports.allocate()
    with pytest.raises(RuntimeError, match="no free local port"):
        ports.allocate()


def test_a_replicas_two_ports_are_reserved_and_released_together() -> None:
    """RunnerService's port and the HTTP data plane's; 0 (an adopted runner without one) is none."""
    offers = iter([4000, 4001, 4002, 4003])
    ports = PortAllocator(probe=lambda: next(offers))
    ports.reserve(4000, 0)
    assert ports.reserved == {4000}
    assert ports.allocate() == 4001
    ports.release(4000, 4001)
    assert ports.reserved == frozenset()
