"""Containment's decisions (docs/isolation.md): what a runner's environment holds, how much memory a
Truss gets, where the agent's cgroup is, and which uid a new replica gets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kingpost_worker_agent.cgroups import oom_kills_in, own_cgroup, parse_mountinfo, parse_proc_cgroup
from kingpost_worker_agent.runner_env import runner_env, work_area_env
from kingpost_worker_agent.runner_users import NoFreeId, RunnerIds
from kingpost_worker_agent.truss_resources import BadMemory, memory_bytes, memory_of

AGENT_ENV = {
    "PATH": "/usr/local/bin:/usr/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC",
    "HOME": "/root", "USER": "root", "LOGNAME": "root",
    "CUDA_VISIBLE_DEVICES": "0", "HTTPS_PROXY": "http://proxy:3128", "SSL_CERT_FILE": "/etc/ssl/cert.pem",
    "KINGPOST_LOG_LEVEL": "DEBUG", "KINGPOST_GRPC_KEEPALIVE_SECONDS": "20",
    # The platform's own, and whatever else the operator exported: never a model's.
    "KINGPOST_HOME": "/root/.kingpost", "KINGPOST_ADMIN_KEY": "kp_admin", "KINGPOST_INTERNAL_TOKEN": "tok",
    "KINGPOST_NATS_URL": "nats://127.0.0.1:4222", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
    "AWS_SECRET_ACCESS_KEY": "aws", "VIRTUAL_ENV": "/srv/kingpost/.venv", "PYTHONPATH": "/srv/kingpost/src",
    "KINGPOST_ENVIRONMENT": "production", "KINGPOST_PARENT_PID": "1",
}


def test_a_runner_gets_only_the_allowed_part_of_the_agents_environment() -> None:
    assert runner_env(AGENT_ENV, own_user=True) == {
        "PATH": "/usr/local/bin:/usr/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC",
        "CUDA_VISIBLE_DEVICES": "0", "HTTPS_PROXY": "http://proxy:3128", "SSL_CERT_FILE": "/etc/ssl/cert.pem",
        "KINGPOST_LOG_LEVEL": "DEBUG", "KINGPOST_GRPC_KEEPALIVE_SECONDS": "20", "PYTHONUNBUFFERED": "1",
    }


def test_a_runner_of_the_agents_own_user_keeps_its_home() -> None:
    env = runner_env(AGENT_ENV, own_user=False)
    assert (env["HOME"], env["USER"], env["LOGNAME"]) == ("/root", "root", "root")
    assert "KINGPOST_HOME" not in env and "AWS_SECRET_ACCESS_KEY" not in env


def test_a_runner_without_path_gets_the_standard_one() -> None:
    assert runner_env({}, own_user=True)["PATH"] == (
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")


def test_the_working_area_is_tmpdir_and_under_its_own_user_home_too() -> None:
    area = Path("/srv/agent/homes/rep_1")
    assert work_area_env(area, None) == {"TMPDIR": str(area)}
    assert work_area_env(area, 70003) == {"TMPDIR": str(area), "HOME": str(area), "USER": "kingpost-70003",
                                          "LOGNAME": "kingpost-70003"}


@pytest.mark.parametrize(("quantity", "expected"), [
    ("2Gi", 2 * 1024**3), ("512Mi", 512 * 1024**2), ("1.5G", 1_500_000_000), ("100k", 100_000),
    ("1073741824", 1073741824), ("0.5Ti", 1024**4 // 2),
])
def test_memory_quantities_are_read_as_kubernetes_and_truss_read_them(quantity: str, expected: int) -> None:
    assert memory_bytes(quantity) == expected


def test_a_truss_without_resources_gets_truss_default_of_2gi() -> None:
    assert memory_of("model_name: x\n") == ("2Gi", 2 * 1024**3)
    assert memory_of("resources:\n  cpu: '1'\n") == ("2Gi", 2 * 1024**3)
    assert memory_of("resources:\n  memory: 256Mi\n") == ("256Mi", 256 * 1024**2)


def test_a_memory_that_is_not_a_quantity_is_named() -> None:
    with pytest.raises(BadMemory, match="resources.memory '2 gigs' is not a number with an optional unit"):
        memory_of("resources:\n  memory: 2 gigs\n")


# This machine's: cgroup v1 controllers beside an (almost empty) v2 hierarchy.
HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_CGROUP = "4:memory:/process_api/d196\n1:cpu:/\n0::/\n"
# A current distribution under systemd: the unified hierarchy only.
UNIFIED_MOUNTINFO = ("30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - "
                     "cgroup2 cgroup2 rw,nsdelegate\n")
UNIFIED_CGROUP = "0::/system.slice/kingpost.service\n"
# Docker without a cgroup namespace, v1: the container's own cgroup is mounted at the mount point.
DOCKER_MOUNTINFO = "700 690 0:33 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n"
DOCKER_CGROUP = "9:memory:/docker/abc\n"


def test_the_agents_own_cgroup_is_found_in_each_hierarchy() -> None:
    hybrid = parse_mountinfo(HYBRID_MOUNTINFO)
    assert own_cgroup(hybrid, parse_proc_cgroup(HYBRID_CGROUP), 1) == Path(
        "/sys/fs/cgroup/memory/process_api/d196")
    assert own_cgroup(hybrid, parse_proc_cgroup(HYBRID_CGROUP), 2) == Path("/sys/fs/cgroup/unified")
    unified = parse_mountinfo(UNIFIED_MOUNTINFO)
    assert own_cgroup(unified, parse_proc_cgroup(UNIFIED_CGROUP), 2) == Path(
        "/sys/fs/cgroup/system.slice/kingpost.service")
    assert own_cgroup(unified, parse_proc_cgroup(UNIFIED_CGROUP), 1) is None
    docker = parse_mountinfo(DOCKER_MOUNTINFO)
    assert own_cgroup(docker, parse_proc_cgroup(DOCKER_CGROUP), 1) == Path("/sys/fs/cgroup/memory")


def test_a_cgroup_above_the_mounted_part_is_not_found() -> None:
    docker = parse_mountinfo(DOCKER_MOUNTINFO)
    assert own_cgroup(docker, parse_proc_cgroup("9:memory:/elsewhere\n"), 1) is None


def test_oom_kills_are_read_from_v2_events_and_v1_oom_control() -> None:
    assert oom_kills_in("low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n") == 2
    assert oom_kills_in("oom_kill_disable 0\nunder_oom 0\noom_kill 5\n") == 5
    assert oom_kills_in("oom_kill_disable 0\nunder_oom 0\n") == 0  # before Linux 4.13


def test_a_new_replica_gets_the_next_uid_not_the_one_a_stopped_replica_just_had(tmp_path: Path) -> None:
    ids = RunnerIds(tmp_path / "runner_ids.json", start=70000, count=4)
    assert [ids.allocate_uid(set()) for _ in range(3)] == [70000, 70001, 70002]
    # 70001 stopped; the next replica still gets a uid no one had lately, and ids wrap past the end.
    assert ids.allocate_uid({70000, 70002}) == 70003
    assert ids.allocate_uid({70002, 70003}) == 70000
    again = RunnerIds(tmp_path / "runner_ids.json", start=70000, count=4)  # an agent restarted
    assert again.allocate_uid(set()) == 70001


def test_when_every_uid_is_taken_the_error_says_so(tmp_path: Path) -> None:
    ids = RunnerIds(tmp_path / "runner_ids.json", start=70000, count=2)
    with pytest.raises(NoFreeId, match="all 2 runner uids from 70000 are in use"):
        ids.allocate_uid({70000, 70001})


def test_each_piece_of_content_keeps_its_own_group(tmp_path: Path) -> None:
    ids = RunnerIds(tmp_path / "runner_ids.json", start=70000, count=2)
    a, b = ids.content_gid("/work/artifacts/aa"), ids.content_gid("/work/envs/bb")
    assert (a, b) == (70002, 70003)
    restarted = RunnerIds(tmp_path / "runner_ids.json", start=70000, count=2)
    assert restarted.content_gid("/work/artifacts/aa") == a
    with pytest.raises(NoFreeId, match="all 2 content groups from 70002 are in use"):
        ids.content_gid("/work/artifacts/cc")


def test_two_agents_on_one_machine_claim_uid_ranges_that_do_not_overlap(tmp_path: Path) -> None:
    from kingpost_worker_agent.runner_users import RangeTaken, claim_range

    locks = tmp_path / "run"
    first, first_lock = claim_range(locks, 3_000_000, 16)
    second, second_lock = claim_range(locks, 3_000_000, 16)
    assert first == 3_000_000 and second == 3_000_032  # uids and content groups move together
    # The second agent restarts: it takes the range it had (its runners may still be alive).
    os.close(second_lock)
    again, again_lock = claim_range(locks, 3_000_000, 16, remembered=3_000_032)
    assert again == 3_000_032
    with pytest.raises(RangeTaken, match="no runner uid range is free"):
        claim_range(locks, 3_000_000, 16, tries=2)
    os.close(first_lock)
    os.close(again_lock)


def test_a_range_remembered_from_another_start_starts_afresh(tmp_path: Path) -> None:
    ids = RunnerIds(tmp_path / "runner_ids.json", start=70000, count=4)
    ids.allocate_uid(set())
    moved = RunnerIds(tmp_path / "runner_ids.json", start=70008, count=4)
    assert moved.allocate_uid(set()) == 70008


def test_a_replica_sees_only_the_gpus_it_was_given() -> None:
    from kingpost_worker_agent.runner_env import gpu_env

    assert gpu_env((1, 3)) == {"CUDA_VISIBLE_DEVICES": "1,3", "NVIDIA_VISIBLE_DEVICES": "1,3"}
    # None given: an empty CUDA_VISIBLE_DEVICES hides every GPU, whatever the agent's own says.
    assert gpu_env(()) == {"CUDA_VISIBLE_DEVICES": "", "NVIDIA_VISIBLE_DEVICES": "void"}


def test_a_replicas_request_logging_reaches_its_runner_as_the_runner_reads_it() -> None:
    from kingpost_runner import request_log
    from kingpost_worker_agent.runner_env import request_logging_env

    assert request_logging_env(0.0, 1024) == {}  # off: nothing set, the runner logs nothing
    env = request_logging_env(0.25, 2048)
    assert request_log.from_env(env) == request_log.Policy(0.25, 2048)
    # The agent's own setting of the log format goes on to its runners.
    assert runner_env({"KINGPOST_LOG_FORMAT": "json"}, own_user=True)["KINGPOST_LOG_FORMAT"] == "json"
