import time
from typing import Any


class Model:
    def predict(self, model_input: Any):
        def inner():
            for i in range(int(model_input.get("n", 5))):
                time.sleep(float(model_input.get("gap", 0)))
                yield str(i)
            if model_input.get("bytes_tail"):
                yield "é".encode()

        return inner()
