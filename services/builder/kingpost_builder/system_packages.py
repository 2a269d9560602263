"""A Truss's `system_packages`: Debian packages, downloaded and unpacked into a system layer (no Docker, no root).

The way Heroku's apt buildpack does it: apt resolves the packages against the builder's own package
state and downloads the .debs the builder lacks (`apt-get install --download-only --reinstall`: the
named packages always, their dependencies only when the builder has not got them), `dpkg-deb -x`
unpacks each into one tree, and that tree is stored as a content-addressed artifact. Nothing is
installed and nothing root-owned on the builder changes: apt's archives, caches and (when it needs
them) package lists go to the build's scratch directory, with locking off (`Debug::NoLocking`).

Nodes are assumed to run the same base OS (distribution, release, architecture) as the builder: the
layer holds only what the builder lacked, and its programs link against the node's own libc and
friends. No maintainer script runs, so what a package sets up in its postinst (alternatives such as
figlet's `/usr/bin/figlet` link, users, generated files) is not there; programs that look for their
data under a compiled-in /usr path do not find the layer's copy.

Package lists: the builder's own (/var/lib/apt/lists) when it has them (read only); else, or when a
download fails because they are stale, `apt-get update` into the build's scratch directory (logged).

Pure decisions first (names, the cache key, apt's options and messages, symlinks); then the shell
(`system_layer`), whose every apt line goes to the build log.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shutil
import subprocess
import sysconfig
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from kingpost.errors import InvalidArgument
from kingpost_builder import archive, environment
from kingpost_builder.store import ArtifactStore

Line = Callable[[str], None]

# Written into the layer: what it was built from, and the multiarch triplet its libraries live under.
METADATA = ".kingpost/system.json"
SYSTEM_LISTS = Path("/var/lib/apt/lists")
OS_RELEASE = Path("/etc/os-release")

# name[:arch][=version], as `apt-get install` takes them (Debian policy §5.6.1 for the name).
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?(=[A-Za-z0-9.+~:-]+)?$")
# Debian architecture → multiarch triplet (where its shared libraries live: usr/lib/<triplet>).
MULTIARCH = {
    "amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu", "armhf": "arm-linux-gnueabihf",
    "armel": "arm-linux-gnueabi", "i386": "i386-linux-gnu", "ppc64el": "powerpc64le-linux-gnu",
    "s390x": "s390x-linux-gnu", "riscv64": "riscv64-linux-gnu", "mips64el": "mips64el-linux-gnuabi64",
}


# --- pure --------------------------------------------------------------------------------------


def package_names(value: object) -> list[str]:
    """config.yaml's `system_packages` → the package names, sorted, once each ([] when unset).

    truss joins the list into one `apt-get install` line, so an entry may hold several names."""
    if value is None or value == []:
        return []
    if not isinstance(value, list):
        raise InvalidArgument(f"system_packages: {value!r} is not a list of Debian package names")
    names: set[str] = set()
    for entry in value:
        if not isinstance(entry, str):
            raise InvalidArgument(f"system_packages: {entry!r} is not a Debian package name")
        for name in entry.split():
            if not _PACKAGE.fullmatch(name):
                raise InvalidArgument(f"system_packages: {name!r} is not a Debian package name "
                                      "(name[:arch][=version], lowercase letters, digits, '+', '-', '.')")
            names.add(name)
    return sorted(names)


def platform_id(os_release: str, architecture: str) -> str:
    """`"debian 12 amd64"`: the base OS a layer is built for (from /etc/os-release and dpkg's arch)."""
    fields = {}
    for line in os_release.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip("'\"")
    release = fields.get("VERSION_ID") or fields.get("VERSION_CODENAME") or "unknown"
    return f"{fields.get('ID', 'unknown')} {release} {architecture}"


def layer_key(names: Iterable[str], platform: str) -> str:
    """What the system layer is cached by: the package names and the base OS they were resolved on."""
    digest = hashlib.sha256(json.dumps([platform, sorted(set(names))]).encode()).hexdigest()
    return f"system-{digest}"


def multiarch_of(architecture: str) -> str:
    return MULTIARCH.get(architecture) or str(sysconfig.get_config_var("MULTIARCH") or f"{architecture}-linux-gnu")


def has_package_lists(names: Iterable[str]) -> bool:
    """Whether a lists directory's file names include a Packages index (`..._Packages`, `.lz4`, `.xz`, ...)."""
    return any(re.search(r"_Packages(\.[a-z0-9]+)?$", name) for name in names)


def apt_options(scratch: Path, *, lists: Path | None, root: bool) -> list[str]:
    """apt's options: its archives and caches in `scratch`, no locks, the builder's dpkg status read as is;
    `lists`: package lists of our own (None: the builder's)."""
    options = {
        "Debug::NoLocking": "1",
        "Dir::Cache": str(scratch / "cache"),
        "Dir::Cache::archives": str(scratch / "archives") + "/",
        "Dir::Cache::pkgcache": "",
        "Dir::Cache::srcpkgcache": "",
        "APT::Get::Assume-Yes": "true",
        "APT::Install-Recommends": "false",
        "APT::Install-Suggests": "false",
    }
    if lists is not None:
        options["Dir::State::Lists"] = str(lists) + "/"
    if root:  # apt would hand downloads to its `_apt` user, which cannot write into our private scratch
        options["APT::Sandbox::User"] = "root"
    return [arg for key, value in options.items() for arg in ("-o", f"{key}={value}")]


def download_argv(names: Sequence[str], options: Sequence[str]) -> list[str]:
    return ["apt-get", *options, "install", "--download-only", "--reinstall", "--no-install-recommends",
            "--", *names]


def apt_errors(lines: Iterable[str]) -> list[str]:
    """apt's error lines (`E: ...`), as it printed them."""
    return [line.strip() for line in lines if line.startswith("E:")]


def update_errors(lines: Iterable[str]) -> list[str]:
    """What went wrong in an `apt-get update`: its errors, and the warnings it gives (exiting 0) when an
    index could not be fetched, which would leave lists without the packages asked for."""
    return [line.strip() for line in lines if line.startswith("E:")
            or (line.startswith("W:") and ("Failed to fetch" in line or "failed to download" in line))]


def lists_are_stale(errors: Iterable[str]) -> bool:
    """A download that failed because the package lists name files the archive no longer has."""
    return any("Failed to fetch" in e or "404" in e for e in errors)


def relink(name: str, target: str) -> str | None:
    """A symlink at `name` (relative to the layer) pointing at `target`, as a link that stays inside
    the layer: absolute targets become relative to the layer's root; None when it would leave it."""
    if posixpath.isabs(target):
        resolved = posixpath.normpath(target.lstrip("/"))
    else:
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    if resolved in ("..", ".") or resolved.startswith("../"):
        return None
    return posixpath.relpath(resolved, posixpath.dirname(name) or ".")


def metadata_json(names: Sequence[str], debs: Sequence[str], platform: str, multiarch: str) -> str:
    return json.dumps({"packages": list(names), "debs": list(debs), "platform": platform, "multiarch": multiarch},
                      indent=2, sort_keys=True) + "\n"


# --- shell -------------------------------------------------------------------------------------


def builder_platform() -> tuple[str, str]:
    """(platform_id, Debian architecture) of this builder; InvalidArgument when it has no apt."""
    missing = [tool for tool in ("apt-get", "dpkg", "dpkg-deb") if shutil.which(tool) is None]
    if missing:
        raise InvalidArgument(f"system_packages: this builder has no {', '.join(missing)} (system packages "
                              "are downloaded with apt: the builder must run Debian or Ubuntu, as the nodes do)")
    architecture = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                                  check=True).stdout.strip()
    os_release = OS_RELEASE.read_text() if OS_RELEASE.is_file() else ""
    return platform_id(os_release, architecture), architecture


def system_layer(names: Sequence[str], scratch: Path, store: ArtifactStore, *, line: Line) -> tuple[str, bool]:
    """The system layer of `names`: (its digest, whether it was stored already)."""
    platform, architecture = builder_platform()
    key = layer_key(names, platform)
    digest = store.get_ref(key)
    if digest is not None:
        line(f"system layer {digest} already stored (cached): system_packages {' '.join(names)} "
             "not downloaded again")
        return digest, True
    scratch.mkdir(parents=True, exist_ok=True)
    debs = download(names, scratch, line=line)
    tree = scratch / "tree"
    multiarch = multiarch_of(architecture)
    unpack(debs, tree, line=line)
    (tree / METADATA).parent.mkdir(parents=True, exist_ok=True)
    (tree / METADATA).write_text(metadata_json(names, [d.name for d in debs], platform, multiarch))
    staged = scratch / "system.tar.gz"
    with open(staged, "wb") as out:
        digest = archive.write_canonical(tree, out)
    size = staged.stat().st_size
    store.put(digest, staged)
    store.put_ref(key, digest)
    line(f"system layer {digest} stored ({archive.human_bytes(size)}, {len(debs)} packages for {platform})")
    shutil.rmtree(tree, ignore_errors=True)
    return digest, False


def download(names: Sequence[str], scratch: Path, *, line: Line) -> list[Path]:
    """The .debs apt picks for `names` that this builder lacks (the named packages always)."""
    root = os.geteuid() == 0
    own_lists = scratch / "lists"
    lists: Path | None = None
    if not (SYSTEM_LISTS.is_dir() and has_package_lists(p.name for p in SYSTEM_LISTS.iterdir())):
        line(f"the builder has no apt package lists in {SYSTEM_LISTS}: fetching them for this build")
        lists = update_lists(own_lists, scratch, root=root, line=line)
    for attempt in (1, 2):
        archives = scratch / "archives"
        shutil.rmtree(archives, ignore_errors=True)
        (archives / "partial").mkdir(parents=True)
        tail: deque[str] = deque(maxlen=environment.TAIL_LINES)
        argv = download_argv(names, apt_options(scratch, lists=lists, root=root))
        line(f"$ apt-get install --download-only --reinstall --no-install-recommends {' '.join(names)}")
        code = environment.run_logged(argv, cwd=scratch, line=line, tail=tail)
        if code == 0:
            debs = sorted(archives.glob("*.deb"))
            line(f"downloaded {len(debs)} packages: {', '.join(d.name for d in debs)}")
            return debs
        errors = apt_errors(tail)
        if attempt == 1 and lists is None and lists_are_stale(errors):
            line("the builder's apt package lists are out of date: fetching fresh ones for this build")
            lists = update_lists(own_lists, scratch, root=root, line=line)
            continue
        reason = "; ".join(errors) or f"apt-get exited with code {code}"
        raise InvalidArgument(f"system_packages: cannot download {' '.join(names)}: {reason}")
    raise AssertionError("unreachable")


def update_lists(lists: Path, scratch: Path, *, root: bool, line: Line) -> Path:
    """`apt-get update` into `lists` (the build's own), from the builder's sources.list."""
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    tail: deque[str] = deque(maxlen=environment.TAIL_LINES)
    line("$ apt-get update (package lists for this build only)")
    code = environment.run_logged(["apt-get", *apt_options(scratch, lists=lists, root=root), "update"],
                                  cwd=scratch, line=line, tail=tail)
    errors = update_errors(tail)
    if code != 0 or errors:
        reason = "; ".join(errors) or f"apt-get exited with code {code}"
        raise InvalidArgument(f"system_packages: cannot fetch apt's package lists: {reason}")
    return lists


def unpack(debs: Sequence[Path], tree: Path, *, line: Line) -> None:
    """`dpkg-deb -x` each .deb into `tree`; then every symlink made to stay inside it."""
    tree.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        result = subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            raise InvalidArgument(f"system_packages: dpkg-deb cannot unpack {deb.name}: "
                                  f"{result.stderr.strip() or result.returncode}")
    dropped = []
    for dirpath, dirnames, filenames in os.walk(tree):
        os.chmod(dirpath, 0o755)  # the layer is ours to remove later, whatever the package said
        for entry in [*dirnames, *filenames]:
            path = Path(dirpath, entry)
            if not path.is_symlink():
                continue
            name = path.relative_to(tree).as_posix()
            target = relink(name, os.readlink(path))
            path.unlink()
            if target is None:
                dropped.append(name)
            else:
                path.symlink_to(target)
    if dropped:
        line(f"dropped {len(dropped)} symlinks that point outside the packages: {', '.join(sorted(dropped))}")
