"""`NumpyArrayField`: a numpy array as a pydantic field, `{"data_b64", "shape", "dtype"}` in JSON
(truss's shape), the array itself in Python (and in msgpack with `use_binary=True`)."""

from __future__ import annotations

import base64
from typing import Any

import pydantic
from pydantic_core import core_schema


class NumpyArrayField:
    def __init__(self, array: Any) -> None:
        self.array = array

    def __getattr__(self, name: str) -> Any:
        return getattr(self.array, name)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: pydantic.GetCoreSchemaHandler
                                     ) -> core_schema.CoreSchema:
        def validate(value: Any) -> NumpyArrayField:
            import numpy as np

            if isinstance(value, NumpyArrayField):
                return value
            if isinstance(value, np.ndarray):
                return cls(value)
            if isinstance(value, dict) and "data_b64" in value:
                raw = base64.b64decode(value["data_b64"])
                return cls(np.frombuffer(raw, dtype=value["dtype"]).reshape(value["shape"]).copy())
            raise ValueError("expected a numpy array or {data_b64, shape, dtype}")

        def serialize(value: NumpyArrayField, info: core_schema.SerializationInfo) -> Any:
            if info.mode == "json":
                a = value.array
                return {"data_b64": base64.b64encode(a.tobytes()).decode(), "shape": list(a.shape),
                        "dtype": str(a.dtype)}
            return value.array

        return core_schema.no_info_plain_validator_function(
            validate, serialization=core_schema.plain_serializer_function_ser_schema(
                serialize, info_arg=True))
