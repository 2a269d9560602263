"""`kingpost up`'s process plumbing with stand-in processes: readiness, a death, stopping, ports, key."""

from __future__ import annotations

import os
import signal
import socket
import sys
import textwrap
from pathlib import Path

import pytest

from kingpost.client_config import ClientConfig, write
from kingpost.up import Supervisor, UpError, admin_key_for, pick_ports
from kingpost.up_plan import Layout, ProcessSpec


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listener(port: int, *, grandchild: bool = False) -> tuple[str, ...]:
    """A stand-in service: listens on `port` (and maybe starts a child of its own), then waits."""
    code = textwrap.dedent(f"""
        import socket, subprocess, sys, time
        if {grandchild}:
            p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            print("grandchild", p.pid, flush=True)
        s = socket.socket(); s.bind(("127.0.0.1", {port})); s.listen()
        print("listening", flush=True)
        time.sleep(600)
    """)
    return (sys.executable, "-c", code)


def spec(tmp_path: Path, name: str, argv: tuple[str, ...], port: int, timeout: float = 20.0) -> ProcessSpec:
    return ProcessSpec(name=name, argv=argv, env={"STANDIN": name}, files={tmp_path / f"{name}.toml": "x = 1\n"},
                       ready_ports=(port,), log_path=tmp_path / "logs" / f"{name}.log", start_timeout=timeout)


def gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2] == "Z"


def test_starts_in_order_and_stops_every_process_group(tmp_path):
    supervisor = Supervisor(say=lambda line: None)
    a, b = free_port(), free_port()
    try:
        supervisor.start(spec(tmp_path, "first", listener(a, grandchild=True), a))
        supervisor.start(spec(tmp_path, "second", listener(b), b))
        assert (tmp_path / "first.toml").read_text() == "x = 1\n"
        pids = [r.process.pid for r in supervisor.running]
        # Each child leads its own process group, so Ctrl-C in a terminal reaches only `up`.
        assert all(os.getpgid(pid) == pid for pid in pids)
        assert supervisor.dead() is None
        log = (tmp_path / "logs" / "first.log").read_text()
        grandchild = int(log.split("grandchild ")[1].split()[0])
    finally:
        supervisor.stop()
    assert all(gone(pid) for pid in pids)
    assert gone(grandchild)


def test_a_process_that_dies_while_starting_is_named_with_its_log(tmp_path):
    supervisor = Supervisor(say=lambda line: None)
    argv = (sys.executable, "-c", "print('cannot open the database'); raise SystemExit(3)")
    with pytest.raises(UpError) as info:
        supervisor.start(spec(tmp_path, "scheduler", argv, free_port()))
    supervisor.stop()
    message = str(info.value)
    assert "scheduler exited while starting (code 3)" in message
    assert str(tmp_path / "logs" / "scheduler.log") in message
    assert "cannot open the database" in info.value.detail


def test_a_process_that_never_listens_times_out_with_its_name(tmp_path):
    supervisor = Supervisor(say=lambda line: None)
    argv = (sys.executable, "-c", "import time; time.sleep(600)")
    port = free_port()
    with pytest.raises(UpError, match=rf"builder did not accept connections on port {port} within 1 s"):
        supervisor.start(spec(tmp_path, "builder", argv, port, timeout=1.0))
    supervisor.stop()


def test_an_unexpected_death_is_reported(tmp_path):
    supervisor = Supervisor(say=lambda line: None)
    port = free_port()
    try:
        supervisor.start(spec(tmp_path, "router", listener(port), port))
        process = supervisor.running[0].process
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        died = supervisor.dead()
    finally:
        supervisor.stop()
    assert died is not None
    message = str(died)
    assert message.startswith("router exited unexpectedly (signal 9)")
    assert str(tmp_path / "logs" / "router.log") in message


def test_a_taken_public_port_names_the_flag():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UpError, match=rf"port {port} is in use; use --port"):
            pick_ports(port, free_port())
        with pytest.raises(UpError, match=rf"port {port} is in use; use --grpc-port"):
            pick_ports(free_port(), port)


def test_internal_ports_are_distinct_and_avoid_the_public_ones():
    rest, grpc = free_port(), free_port()
    ports = pick_ports(rest, grpc)
    internal = ports.internal()
    assert len(set(internal)) == len(internal)
    assert not {rest, grpc} & set(internal)


def test_the_admin_key_is_made_once_and_reused(tmp_path):
    layout = Layout(tmp_path)
    key, first = admin_key_for(layout)
    assert first and key.startswith("kp_")
    write(tmp_path, ClientConfig(api_key=key))
    assert admin_key_for(layout) == (key, False)
