"""Which declared secrets must be set, and the error that names them."""

from __future__ import annotations

from kingpost_scheduler.replica_secrets import missing, missing_error


def test_required_secrets_that_are_not_set_are_named() -> None:
    assert missing(["hf_token", "db"], ["db", "other"]) == ["hf_token"]
    assert missing([], []) == []
    assert missing_error(["hf_token"]).message == (
        "the Truss's config.yaml declares secret 'hf_token' without a default, and it is not set: "
        "`kingpost secrets set hf_token` (or POST /v1/secrets) first")
    assert "secrets 'a', 'b' without a default, and they are not set" in missing_error(["a", "b"]).message
