"""The pure side of locking: requirement lines, the runner's pins, clashes with them, the lock's cache key."""

from __future__ import annotations

import platform
import sys

import pytest

from kingpost.errors import InvalidArgument
from kingpost_builder.requirements import (
    RUNNER_PACKAGES,
    check_runner_conflicts,
    dependency_key,
    input_key,
    installed_version,
    lock_requirements,
    locked_names,
    locked_packages,
    pin_lines,
    python_of,
    requirement_lines,
    runner_pins,
)

PLATFORM = {"grpcio": "1.81.1", "protobuf": "6.33.0", "googleapis-common-protos": "1.70.0", "pyyaml": "6.0.2",
            "msgpack": "1.1.0", "anyio": "4.9.0", "uvicorn": "0.55.0", "httptools": "0.9.0", "uvloop": "0.23.0"}
PINS = runner_pins(PLATFORM.get)


def test_runner_pins_are_the_platform_versions_of_the_runner_packages() -> None:
    assert PINS == PLATFORM
    assert pin_lines(PINS)[0] == "anyio==4.9.0"
    assert set(runner_pins()) == {"grpcio", "protobuf", "googleapis-common-protos", "pyyaml", "msgpack", "anyio",
                                  "uvicorn", "httptools", "uvloop"}
    assert len(RUNNER_PACKAGES) == 9


def test_compatible_requirements_pass() -> None:
    check_runner_conflicts(["six==1.16.0", "protobuf>=6", "PyYAML", "grpcio; python_version < '3'", "--index-url x"],
                           PINS, source="requirements")


@pytest.mark.parametrize(
    ("line", "named"),
    [("protobuf==3.20.0", "protobuf==3.20.0 but the kingpost runner needs protobuf==6.33.0"),
     ("PyYAML<6", "PyYAML<6 but the kingpost runner needs pyyaml==6.0.2"),
     ("grpcio @ https://example.com/g.whl", "the kingpost runner needs grpcio==1.81.1")],
)
def test_a_clash_with_the_runner_names_both_sides(line: str, named: str) -> None:
    with pytest.raises(InvalidArgument, match=named.replace("(", r"\(")) as e:
        check_runner_conflicts(["six", line], PINS, source="requirements")
    assert e.value.message.startswith("requirements asks for")


def test_invalid_requirement_is_named() -> None:
    with pytest.raises(InvalidArgument, match="'numpy>>1' is not a valid requirement"):
        check_runner_conflicts(["numpy>>1"], PINS, source="requirements")


def test_dependency_key_follows_lock_and_python_only() -> None:
    lock = "six==1.16.0\n"
    assert dependency_key(lock, "3.11") == dependency_key(lock, "3.11")
    assert dependency_key(lock, "3.11") != dependency_key(lock, "3.12")
    assert dependency_key(lock, "3.11") != dependency_key("six==1.15.0\n", "3.11")
    assert dependency_key(lock, "3.11").startswith("deps-")


def test_requirement_lines_and_locked_names() -> None:
    text = "# comment\nnumpy>=1.20  # why\n\n  pydantic==2.*\n-r other.txt\n"
    assert requirement_lines(text) == ["numpy>=1.20", "pydantic==2.*", "-r other.txt"]
    assert locked_names("idna==3.10\ntyping-extensions==4.12.2 ; python_full_version < '3.13'\n") == [
        "idna==3.10", "typing-extensions==4.12.2"]


def test_python_of() -> None:
    assert python_of("py311") == "3.11" and python_of("py39") == "3.9"


def test_installed_version_reads_this_environment() -> None:
    assert installed_version("pyyaml")
    assert installed_version("surely-not-installed-pkg") is None


PYLOCK = '''lock-version = "1.0"
created-by = "uv"

[[packages]]
name = "PyYAML"
version = "6.0.2"
sdist = { url = "https://x/pyyaml-6.0.2.tar.gz" }
wheels = [
  { url = "https://x/PyYAML-6.0.2-cp311-cp311-win_amd64.whl", hashes = { sha256 = "aa" } },
  { url = "https://x/PyYAML-6.0.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", hashes = { sha256 = "bb" } },
  { url = "https://x/PyYAML-6.0.2-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", hashes = { sha256 = "cc" } },
]

[[packages]]
name = "six"
version = "1.16.0"
marker = "python_version >= '3'"
wheels = [{ url = "https://x/six-1.16.0-py2.py3-none-any.whl", hashes = { sha256 = "dd" } }]

[[packages]]
name = "only-sdist"
version = "1.0"
sdist = { url = "https://x/only_sdist-1.0.tar.gz" }
'''


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.machine() != "x86_64", reason="linux x86_64 tags")
def test_locked_packages_pick_the_wheel_for_the_target_python() -> None:
    packages = {p.name: p for p in locked_packages(PYLOCK, "3.11")}
    assert packages["pyyaml"].wheel_sha256 == "bb" and packages["pyyaml"].wheel_name.startswith("PyYAML-6.0.2-cp311")
    assert packages["six"].wheel_name == "six-1.16.0-py2.py3-none-any.whl"
    assert packages["only-sdist"].wheel_url == ""  # built from its sdist
    assert {p.name: p for p in locked_packages(PYLOCK, "3.13")}["pyyaml"].wheel_sha256 == "cc"
    assert lock_requirements(packages.values()) == (
        "only-sdist==1.0\npyyaml==6.0.2\nsix==1.16.0 ; python_version >= '3'\n")


def test_input_key_covers_the_inputs_and_python_and_refuses_includes() -> None:
    assert input_key(["six\n", "grpcio==1\n"], "3.11") == input_key(["six\n", "grpcio==1\n"], "3.11")
    assert input_key(["six\n"], "3.11") != input_key(["six\n"], "3.12")
    assert input_key(["six\n"], "3.11") != input_key(["six==1\n"], "3.11")
    assert input_key(["-r other.txt\n"], "3.11") == ""
    assert input_key(["six\n"], "3.11").startswith("lock-")


def test_path_and_vcs_requirements_are_refused_by_name() -> None:
    with pytest.raises(InvalidArgument, match="mypkg comes from a directory"):
        locked_packages('[[packages]]\nname = "mypkg"\ndirectory = { path = "./mypkg" }\n', "3.11")
