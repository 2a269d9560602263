"""`secrets[...]` resolution order: file > TRUSS_SECRET_<name> env > config default."""

from __future__ import annotations

import pathlib

import pytest

from kingpost_runner.truss_secrets import SecretNotFound, Secrets


def test_resolution_order(tmp_path: pathlib.Path) -> None:
    declared = {"a": "default-a", "b": "default-b", "c": "default-c"}
    (tmp_path / "a").write_text("file-a")
    secrets = Secrets(declared, environ={"TRUSS_SECRET_a": "env-a", "TRUSS_SECRET_b": "env-b"},
                      secrets_dir=tmp_path)
    assert (secrets["a"], secrets["b"], secrets["c"]) == ("file-a", "env-b", "default-c")


def test_undeclared_and_empty_secrets_raise_clear_errors(tmp_path: pathlib.Path) -> None:
    secrets = Secrets({"token": None}, environ={"TRUSS_SECRET_other": "x"}, secrets_dir=tmp_path)
    with pytest.raises(SecretNotFound, match="'other' is not declared in config.yaml"):
        secrets["other"]
    with pytest.raises(SecretNotFound, match="'token' has no value"):
        secrets["token"]
    assert secrets.get("token") is None  # Mapping.get still works


def test_repr_shows_names_only(tmp_path: pathlib.Path) -> None:
    secrets = Secrets({"token": "s3cret"}, environ={}, secrets_dir=tmp_path)
    assert "s3cret" not in repr(secrets) and "token" in repr(secrets)
