import time
from typing import Any


class Model:
    def predict(self, model_input: Any) -> Any:
        time.sleep(1)
        return model_input
