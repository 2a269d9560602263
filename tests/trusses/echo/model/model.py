import os
from typing import Any


class Model:
    def __init__(self, **kwargs) -> None:
        self._config = kwargs["config"]
        self._data_dir = kwargs["data_dir"]
        self._secrets = kwargs["secrets"]

    def predict(self, model_input: Any) -> Any:
        if isinstance(model_input, dict) and "describe" in model_input:
            secret = model_input["describe"]
            try:
                secret_value = self._secrets[secret]
            except KeyError as e:
                secret_value = f"error: {e}"
            return {
                "model_name": self._config["model_name"],
                "data_dir_exists": self._data_dir.is_dir(),
                "data_dir_name": self._data_dir.name,
                "secret": secret_value,
                "env": [os.environ.get("KP_TEST_FLAG"), os.environ.get("KP_TEST_NUMBER")],
            }
        return model_input
