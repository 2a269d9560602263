from typing import Any


class Model:
    def predict(self, model_input: Any) -> dict[str, Any]:
        return {"echo": model_input}
