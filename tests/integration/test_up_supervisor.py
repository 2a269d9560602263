"""`kingpost up`'s process manager with stand-in processes: readiness, restarts, giving up, stopping
in stages, ports, keys."""

from __future__ import annotations

import os
import signal
import socket
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kingpost.client_config import ClientConfig, write
from kingpost.restart_policy import RestartPolicy
from kingpost.up import admin_key_for, nats_credentials_for, pick_ports
from kingpost.up_plan import Layout, ProcessSpec
from kingpost.up_supervisor import Supervisor, UpError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listener(port: int, *, grandchild: bool = False, exit_after: float = 600.0) -> tuple[str, ...]:
    """A stand-in service: listens on `port` (and maybe starts a child of its own), then waits
    (and exits with code 3 after `exit_after` seconds)."""
    code = textwrap.dedent(f"""
        import socket, subprocess, sys, time
        if {grandchild}:
            p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            print("grandchild", p.pid, flush=True)
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", {port})); s.listen()
        print("listening", flush=True)
        time.sleep({exit_after})
        print("cannot go on", flush=True)
        sys.exit(3)
    """)
    return (sys.executable, "-c", code)


def accepts(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def supervise_until(supervisor: Supervisor, done, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the supervisor did not get there in time"
        supervisor.supervise_once()
        time.sleep(0.02)


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
        assert all(r.process.poll() is None for r in supervisor.running)
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


def test_a_process_that_dies_is_started_again_on_its_port_and_its_death_is_said(tmp_path):
    said: list[str] = []
    supervisor = Supervisor(say=said.append)
    port = free_port()
    try:
        supervisor.start(spec(tmp_path, "router", listener(port), port))
        first = supervisor.running[0].process
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        supervise_until(supervisor, lambda: any(" is back " in line for line in said))
        second = supervisor.running[0].process
        assert second.pid != first.pid and second.poll() is None
        assert accepts(port)  # the same port: clients and Envoy find it where it was
    finally:
        supervisor.stop()
    assert said[0] == ("router exited (signal 9, SIGKILL); starting it again in 0.1 s "
                       f"(log: {tmp_path}/logs/router.log)")
    assert said[1].startswith(f"router is back (pid {second.pid}), ")
    log = (tmp_path / "logs" / "router.log").read_text()
    assert log.count("--- kingpost up: starting ") == 2 and log.count("\nlistening\n") == 2
    assert "--- kingpost up: router exited (signal 9, SIGKILL); starting it again in 0.1 s" in log
    # Its config was written again, for its owner only.
    assert (tmp_path / "router.toml").stat().st_mode & 0o777 == 0o600


def test_a_process_that_keeps_dying_is_reported_and_then_given_up_on_with_its_log(tmp_path):
    said: list[str] = []
    policy = RestartPolicy(first_delay=0.01, max_delay=0.05, healthy_after=30.0, report_after=2,
                           give_up_after=3)
    supervisor = Supervisor(say=said.append, policy=policy)
    port = free_port()
    try:
        supervisor.start(spec(tmp_path, "autoscaler", listener(port, exit_after=0.2), port))
        with pytest.raises(UpError) as info:
            supervise_until(supervisor, lambda: False)
    finally:
        supervisor.stop()
    assert str(info.value) == (
        "autoscaler exited (code 3) and died 3 times in a row, each within 30 s of starting; giving up. "
        f"Its log is {tmp_path}/logs/autoscaler.log")
    assert "cannot go on" in info.value.detail
    assert [line.split(";")[0] for line in said if line.startswith("autoscaler exited")] == [
        "autoscaler exited (code 3)"] * 2
    assert sum("autoscaler keeps dying: 2 times in a row" in line for line in said) == 1


def test_stopping_goes_stage_by_stage(tmp_path):
    """A stage starts stopping only when the one before it has exited."""
    stopped = tmp_path / "stopped"

    def stand_in(name: str, port: int, linger: float) -> tuple[str, ...]:
        code = textwrap.dedent(f"""
            import signal, socket, sys, time
            def on_term(*_):
                time.sleep({linger})
                with open({str(stopped)!r}, "a") as f:
                    f.write("{name}\\n")
                sys.exit(0)
            signal.signal(signal.SIGTERM, on_term)
            s = socket.socket(); s.bind(("127.0.0.1", {port})); s.listen()
            while True:
                time.sleep(1)
        """)
        return (sys.executable, "-c", code)

    supervisor = Supervisor(say=lambda line: None)
    ports = {name: free_port() for name in ("nats", "scheduler", "router")}
    try:
        supervisor.start_together([
            spec(tmp_path, name, stand_in(name, port, linger=0.5 if name == "scheduler" else 0), port)
            for name, port in ports.items()])
    finally:
        supervisor.stop([("scheduler",), ("router",), ("nats",)])
    assert stopped.read_text().split() == ["scheduler", "router", "nats"]


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


def test_the_nats_credentials_are_made_once_kept_private_and_reused(tmp_path):
    layout = Layout(tmp_path)
    made = nats_credentials_for(layout)
    assert made.user == "kingpost" and len(made.password) >= 32
    assert layout.nats_credentials.stat().st_mode & 0o777 == 0o600
    assert nats_credentials_for(layout) == made
    assert nats_credentials_for(Layout(tmp_path / "other")).password != made.password
