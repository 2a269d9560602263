"""The one key rule: the router's interceptor and Envoy's check refuse alike."""

from __future__ import annotations

from kingpost.auth import KeyCache, Refusal, key_digest, key_refusal

KEY = "kp_abcd1234_secretsecretsecretsecretsecret12"


def test_a_valid_key_passes_with_either_scheme() -> None:
    keys = KeyCache([key_digest(KEY)])
    assert key_refusal(keys, f"Api-Key {KEY}") is None
    assert key_refusal(keys, f"Bearer {KEY}") is None


def test_a_missing_key_says_how_to_send_one() -> None:
    keys = KeyCache([key_digest(KEY)])
    for authorization in (None, "", "Basic abc", "Api-Key   "):
        assert key_refusal(keys, authorization) == Refusal(
            401, "missing API key: send the header 'Authorization: Api-Key <key>'")


def test_an_unknown_key_is_invalid() -> None:
    assert key_refusal(KeyCache([key_digest(KEY)]), "Api-Key kp_other") == Refusal(401, "invalid API key")


def test_before_the_key_table_arrives_the_answer_is_try_again() -> None:
    refusal = key_refusal(KeyCache(), f"Api-Key {KEY}")
    assert refusal is not None and refusal.http_status == 503
