"""`.kingpost/environment.json` (kingpost.environment_manifest): what the builder writes is what the
agent reads, old manifests read as before, and a broken one is refused naming the file and the fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from kingpost import environment_manifest
from kingpost.environment_manifest import EnvironmentManifest
from kingpost.errors import InvalidArgument

DEPS = "sha256:" + "a" * 64
SYSTEM = "sha256:" + "b" * 64


def test_written_by_the_builder_read_by_the_agent(tmp_path: Path) -> None:
    manifest = EnvironmentManifest(DEPS, "3.11", "deps-x", SYSTEM)
    environment_manifest.write(tmp_path, manifest)
    assert (tmp_path / ".kingpost" / "environment.json").is_file()
    assert environment_manifest.read(tmp_path) == manifest


def test_a_truss_without_a_manifest_has_none_and_removing_it_twice_is_harmless(tmp_path: Path) -> None:
    assert environment_manifest.read(tmp_path) is None
    environment_manifest.write(tmp_path, EnvironmentManifest(DEPS, "3.11", "deps-x"))
    environment_manifest.remove(tmp_path)
    environment_manifest.remove(tmp_path)
    assert environment_manifest.read(tmp_path) is None


def test_without_a_system_layer_the_text_is_what_it_was_before_system_existed() -> None:
    # A Truss without system_packages keeps the code digest it had: the same bytes as before.
    text = EnvironmentManifest(DEPS, "3.11", "deps-x").to_json()
    assert text == ('{\n  "dependencies": "' + DEPS + '",\n  "lock_key": "deps-x",\n'
                    '  "python_version": "3.11"\n}\n')
    with_system = EnvironmentManifest(DEPS, "3.11", "deps-x").with_system(SYSTEM)
    read = EnvironmentManifest.from_json(with_system.to_json())
    assert read == EnvironmentManifest(DEPS, "3.11", "deps-x", SYSTEM)


def test_a_manifest_naming_a_system_layer_alone_or_unknown_keys_reads() -> None:
    only_system = EnvironmentManifest.from_json(f'{{"system": "{SYSTEM}", "from_a_newer_builder": 1}}')
    assert only_system == EnvironmentManifest(system=SYSTEM)


@pytest.mark.parametrize(("text", "fault"), [
    ("{not json", "cannot be read: Expecting property name"),
    ('["a list"]', "a JSON object is expected, not list"),
    ('{"dependencies": 3}', "'dependencies' must be a string, not 3"),
    (f'{{"dependencies": "{DEPS}"}}', "names dependencies but no python_version"),
])
def test_a_broken_manifest_is_refused_naming_the_file_and_the_fault(
    tmp_path: Path, text: str, fault: str
) -> None:
    (tmp_path / ".kingpost").mkdir()
    (tmp_path / ".kingpost" / "environment.json").write_text(text)
    with pytest.raises(InvalidArgument) as raised:
        environment_manifest.read(tmp_path)
    assert raised.value.message.startswith(".kingpost/environment.json in the artifact cannot be read")
    assert fault in raised.value.message
