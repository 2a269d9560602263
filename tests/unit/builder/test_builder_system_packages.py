"""system_packages' pure decisions: which names apt gets, what the layer is cached by, apt's options
and messages, and symlinks kept inside the layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from kingpost.errors import InvalidArgument
from kingpost_builder import system_packages as sp

OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'


def test_package_names_are_sorted_once_each_and_an_entry_may_hold_several() -> None:
    assert sp.package_names(["tidy", "hello libsndfile1", "hello", "python3:amd64", "jq=1.6-2.1"]) == [
        "hello", "jq=1.6-2.1", "libsndfile1", "python3:amd64", "tidy"]
    assert sp.package_names(None) == [] and sp.package_names([]) == []


@pytest.mark.parametrize(("value", "named"), [
    (["-o=APT::Foo=1"], "'-o=APT::Foo=1' is not a Debian package name"),  # never an apt option
    (["ffmpeg; rm -rf /"], "'ffmpeg;' is not a Debian package name"),
    (["FFmpeg"], "'FFmpeg' is not a Debian package name"),
    ([3], "3 is not a Debian package name"),
    ("ffmpeg", "'ffmpeg' is not a list of Debian package names"),
])
def test_a_bad_package_name_is_refused_naming_it(value: object, named: str) -> None:
    with pytest.raises(InvalidArgument, match="system_packages: " + named.replace("(", r"\(")):
        sp.package_names(value)


def test_the_layer_is_keyed_by_the_names_and_the_base_os() -> None:
    bookworm = sp.platform_id(OS_RELEASE, "amd64")
    assert bookworm == "debian 12 amd64"
    key = sp.layer_key(["hello", "tidy"], bookworm)
    assert key.startswith("system-") and key == sp.layer_key(["tidy", "hello", "tidy"], bookworm)
    assert key != sp.layer_key(["hello"], bookworm)
    assert key != sp.layer_key(["hello", "tidy"], sp.platform_id(OS_RELEASE, "arm64"))
    assert key != sp.layer_key(["hello", "tidy"], sp.platform_id(OS_RELEASE.replace('"12"', '"13"'), "amd64"))


def test_multiarch_of_debian_architectures() -> None:
    assert sp.multiarch_of("amd64") == "x86_64-linux-gnu"
    assert sp.multiarch_of("arm64") == "aarch64-linux-gnu"


def test_package_lists_are_recognised_compressed_or_not() -> None:
    assert sp.has_package_lists(["lock", "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4"])
    assert sp.has_package_lists(["x_main_binary-arm64_Packages"])
    assert not sp.has_package_lists(["lock", "partial", "auxfiles", "x_InRelease"])


def test_apt_keeps_to_the_scratch_directory_and_takes_no_lock(tmp_path: Path) -> None:
    options = sp.apt_options(tmp_path, lists=None, root=False)
    pairs = dict(o.split("=", 1) for o in options[1::2])
    assert options[::2] == ["-o"] * len(pairs)
    assert pairs["Debug::NoLocking"] == "1"
    assert pairs["Dir::Cache"] == str(tmp_path / "cache")
    assert pairs["Dir::Cache::archives"] == f"{tmp_path / 'archives'}/"
    assert "Dir::State::Lists" not in pairs and "APT::Sandbox::User" not in pairs  # the builder's lists, read only
    own = dict(o.split("=", 1) for o in sp.apt_options(tmp_path, lists=tmp_path / "lists", root=True)[1::2])
    assert own["Dir::State::Lists"] == f"{tmp_path / 'lists'}/" and own["APT::Sandbox::User"] == "root"
    argv = sp.download_argv(["hello"], options)
    assert argv[0] == "apt-get" and argv[-2:] == ["--", "hello"]
    assert {"install", "--download-only", "--reinstall", "--no-install-recommends"} <= set(argv)


def test_apt_errors_and_stale_lists() -> None:
    lines = ["Reading package lists...", "E: Unable to locate package kp-nope", "W: something"]
    assert sp.apt_errors(lines) == ["E: Unable to locate package kp-nope"]
    assert not sp.lists_are_stale(sp.apt_errors(lines))
    update = ["Hit:1 http://deb.debian.org/debian bookworm InRelease",
              "W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Could not connect",
              "W: Some index files failed to download. They have been ignored, or old ones used instead.",
              "W: Target Packages is configured multiple times"]
    assert sp.update_errors(update) == [line.strip() for line in update[1:3]]  # apt-get update exits 0 on these
    assert sp.lists_are_stale(["E: Failed to fetch http://deb.debian.org/debian/pool/main/h/hello.deb  404  Not Found"])


@pytest.mark.parametrize(("name", "target", "expected"), [
    ("usr/lib/x86_64-linux-gnu/libtidy.so.5deb1", "libtidy.so.5.6.0", "libtidy.so.5.6.0"),
    ("usr/bin/figlet", "/etc/alternatives/figlet", "../../etc/alternatives/figlet"),  # absolute: into the layer
    ("usr/share/doc/tidy", "/usr/share/doc/libtidy5deb1", "libtidy5deb1"),
    ("usr/bin/x", "../../../../bin/sh", None),  # would leave the layer: dropped
    ("lib", "usr/lib", "usr/lib"),
])
def test_symlinks_are_kept_inside_the_layer(name: str, target: str, expected: str | None) -> None:
    assert sp.relink(name, target) == expected
