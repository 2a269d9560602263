"""What each of Baseten's API key types may do (kingpost.key_scopes), and the 403 messages that say so."""

from __future__ import annotations

import pytest

from kingpost.auth import KeyCache, Refusal, key_digest, scope_refusal
from kingpost.errors import InvalidArgument, PermissionDenied
from kingpost.key_scopes import INVOKE, MANAGE_ALL, WORKSPACE, check_new_key, scope_of


def test_a_workspace_key_manages_and_invokes_everything() -> None:
    scope = scope_of(MANAGE_ALL)
    assert scope is WORKSPACE
    assert scope.management_refusal("ListModels") is None
    assert scope.invoke_refusal("mdl_a", "a") is None


def test_an_invoke_only_key_calls_models_and_is_told_what_it_may_not_do() -> None:
    anything = scope_of(INVOKE)
    assert anything.invoke_refusal("mdl_a") is None
    assert anything.management_refusal("ListModels") == (
        "this API key may only invoke models (WORKSPACE_INVOKE); ListModels needs a WORKSPACE_MANAGE_ALL key")

    one = scope_of(INVOKE, ["mdl_a"])
    assert one.invoke_refusal("mdl_a", "a") is None
    assert one.invoke_refusal("mdl_b", "b") == "this API key may invoke only model mdl_a, not model 'b' (mdl_b)"
    assert "WORKSPACE_INVOKE for model mdl_a" in one.management_refusal("GetModel")


def test_a_new_key_type_is_checked() -> None:
    assert check_new_key("", []) == MANAGE_ALL
    assert check_new_key(INVOKE, ["mdl_a"]) == INVOKE
    with pytest.raises(InvalidArgument, match="API key type 'ADMIN' is not one kingpost has"):
        check_new_key("ADMIN", [])
    with pytest.raises(InvalidArgument, match="model_ids limit a WORKSPACE_INVOKE key"):
        check_new_key(MANAGE_ALL, ["mdl_a"])


def test_the_key_cache_answers_each_keys_scope_and_a_403_for_management() -> None:
    keys = KeyCache()
    keys.replace([key_digest("kp_work"), key_digest("kp_app")], {key_digest("kp_app"): ["mdl_a"]})
    assert keys.any_limited
    assert keys.scope(key_digest("kp_work")) is WORKSPACE
    assert keys.scope(key_digest("kp_app")).model_ids == frozenset({"mdl_a"})
    assert scope_refusal(keys, "Api-Key kp_work", "/kingpost.v1.ManagementService/ListModels") is None
    refusal = scope_refusal(keys, "Bearer kp_app", "/kingpost.v1.ManagementService/ListModels")
    assert isinstance(refusal, Refusal) and refusal.http_status == 403
    assert isinstance(refusal.error(), PermissionDenied) and "ListModels needs" in refusal.message
