"""How a model class is found, constructed and called, per the Truss contract."""

from __future__ import annotations

import pathlib
import sys
from typing import Any

import pydantic
import pytest

from kingpost_runner.model_request import ModelRequest
from kingpost_runner.truss_model import (
    ArgMode,
    ModelDefinitionError,
    describe,
    describe_method,
    init_kwargs,
    load_model_class,
)

AVAILABLE = {"config": {}, "data_dir": pathlib.Path("data"), "secrets": {}, "environment": None,
             "lazy_data_resolver": None}


class Request:  # stands in for fastapi.Request: matched by name and module
    pass


Request.__module__ = "starlette.requests"


class Inputs(pydantic.BaseModel):
    x: int


def test_init_kwargs_only_when_named_or_var_keyword() -> None:
    class Named:
        def __init__(self, config: dict[str, Any], secrets: Any) -> None: ...

    class Anything:
        def __init__(self, **kwargs: Any) -> None: ...

    class NoInit:
        pass

    assert set(init_kwargs(Named, AVAILABLE)) == {"config", "secrets"}
    assert init_kwargs(Anything, AVAILABLE) == AVAILABLE
    assert init_kwargs(NoInit, AVAILABLE) == {}


def test_argument_modes() -> None:
    def none() -> None: ...
    def inputs(model_input: Any) -> None: ...
    def request_only(request: Request) -> None: ...
    def both(model_input: Any, request: Request) -> None: ...
    def both_by_name(model_input, request): ...  # type: ignore[no-untyped-def]
    def ours(request: ModelRequest) -> None: ...
    def by_string(request: fastapi.Request) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    assert describe_method("predict", none).args is ArgMode.NONE
    assert describe_method("predict", inputs).args is ArgMode.INPUTS
    assert describe_method("predict", request_only).args is ArgMode.REQUEST
    assert describe_method("predict", both).args is ArgMode.INPUTS_AND_REQUEST
    assert describe_method("predict", both_by_name).args is ArgMode.INPUTS_AND_REQUEST
    assert describe_method("predict", ours).args is ArgMode.REQUEST
    assert describe_method("predict", by_string).args is ArgMode.REQUEST
    assert describe_method("predict", both).call_args("in", "req") == ("in", "req")


@pytest.mark.parametrize("fn_source", [
    "def f(request: Request, model_input): ...",
    "def f(a, b): ...",
    "def f(a, b, request: Request): ...",
])
def test_bad_signatures_are_definition_errors(fn_source: str) -> None:
    scope: dict[str, Any] = {"Request": Request}
    exec(fn_source, scope)
    with pytest.raises(ModelDefinitionError):
        describe_method("predict", scope["f"])


def test_sync_async_generator_and_pydantic_input() -> None:
    class Model:
        async def preprocess(self, inputs: Inputs) -> Any: ...
        def predict(self, x: Any) -> Any:
            yield x
        async def postprocess(self, x: Any) -> Any: ...
        def is_healthy(self) -> bool:
            return True

    methods = describe(Model())
    assert methods.preprocess is not None and methods.preprocess.is_async
    assert methods.predict.is_generator and not methods.predict.is_async
    assert methods.input_type is Inputs  # from preprocess, the first method to see the body
    assert methods.is_healthy is not None and not methods.skip_input_parsing


def test_request_only_predict_skips_body_parsing_and_conflicts_with_preprocess() -> None:
    class RawModel:
        def predict(self, request: Request) -> Any: ...

    assert describe(RawModel()).skip_input_parsing

    class Broken(RawModel):
        def preprocess(self, x: Any) -> Any: ...

    with pytest.raises(ModelDefinitionError, match="preprocess"):
        describe(Broken())
    with pytest.raises(ModelDefinitionError, match="no `predict`"):
        describe(object())


def test_load_model_class_by_path(tmp_path: pathlib.Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.py").write_text("class Model:\n    NAME = 'found'\n")
    try:
        cls = load_model_class(tmp_path / "model" / "model.py", "Model")
        assert cls.NAME == "found" and cls.__module__ == "model.model"
    finally:
        sys.modules.pop("model.model", None)
    with pytest.raises(ModelDefinitionError, match="no class `Other`"):
        load_model_class(tmp_path / "model" / "model.py", "Other")
    sys.modules.pop("model.model", None)
    with pytest.raises(ModelDefinitionError, match="not found"):
        load_model_class(tmp_path / "model" / "missing.py", "Model")


def test_openai_style_methods_are_described_beside_predict() -> None:
    class Model:
        def predict(self, x):
            return x

        async def chat_completions(self, inputs, request):
            return inputs

        def embeddings(self, inputs):
            yield inputs

    methods = describe(Model())
    assert set(methods.openai) == {"chat_completions", "embeddings"}
    assert methods.openai["chat_completions"].args is ArgMode.INPUTS_AND_REQUEST
    assert methods.openai["embeddings"].is_generator


def test_a_websocket_model_serves_its_websocket_and_no_predict() -> None:
    class Model:
        async def websocket(self, ws):
            pass

        def is_healthy(self):
            return True

    model = Model()
    methods = describe(model)
    assert methods.websocket == model.websocket and methods.predict is None
    assert methods.is_healthy == model.is_healthy


def test_a_websocket_model_breaking_truss_rules_is_refused_naming_the_rule() -> None:
    class Both:
        def predict(self, x):
            return x

        async def websocket(self, ws):
            pass

    class Preprocessed:
        def preprocess(self, x):
            return x

        async def websocket(self, ws):
            pass

    class Sync:
        def websocket(self, ws):
            pass

    with pytest.raises(ModelDefinitionError, match="both `predict` and `websocket`"):
        describe(Both())
    with pytest.raises(ModelDefinitionError, match="cannot have `preprocess` or `postprocess`"):
        describe(Preprocessed())
    with pytest.raises(ModelDefinitionError, match="must be `async def websocket"):
        describe(Sync())
