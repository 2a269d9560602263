"""An exception raised in a dependency comes back to its caller as the same builtin class, with
the dependency named and its traceback in the message, root cause at the bottom."""

import json

import kingpost.chains as chains
from kingpost.chains.remote_errors import TREE_HEADER, detail_of, remote_exception


def _raise_in_user_code():
    raise ValueError("bad max_value")


def _detail_json() -> str:
    try:
        _raise_in_user_code()
    except ValueError as e:
        return json.dumps(detail_of(e).model_dump())
    raise AssertionError


def test_a_builtin_exception_is_raised_again_as_its_class_naming_the_chainlet():
    exc = remote_exception("RandInt", 500, _detail_json())
    assert type(exc) is ValueError
    text = str(exc)
    assert text.startswith(TREE_HEADER)
    assert "Error calling dependency Chainlet `RandInt`, HTTP status=500" in text
    assert "in _raise_in_user_code" in text
    assert text.rstrip().endswith("ValueError: bad max_value")


def test_nested_errors_keep_one_header_and_the_root_cause_last():
    inner = remote_exception("Leaf", 500, _detail_json())
    outer_detail = detail_of(inner)
    outer = remote_exception("Middle", 500, json.dumps(outer_detail.model_dump()))
    text = str(outer)
    assert text.count(TREE_HEADER) == 1
    assert text.index("`Middle`") < text.index("`Leaf`")
    assert text.rstrip().endswith("bad max_value")


def test_unknown_classes_and_plain_messages_become_generic_remote_exceptions():
    detail = {"exception_cls_name": "NoSuchError", "exception_module_name": "nowhere",
              "exception_message": "x", "user_stack_trace": []}
    assert type(remote_exception("A", 500, json.dumps(detail))) is chains.GenericRemoteException
    plain = remote_exception("A", 503, "model not ready")
    assert type(plain) is chains.GenericRemoteException
    assert "`A`, HTTP status=503" in str(plain) and "model not ready" in str(plain)
