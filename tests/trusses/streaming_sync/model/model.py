import time
from pathlib import Path
from typing import Any


class Model:
    def predict(self, model_input: Any):
        def inner():
            for i in range(int(model_input.get("n", 5))):
                if i == 1 and model_input.get("hold_until"):
                    # Chunk 1 waits for this file, which the test writes once chunk 0 has reached it:
                    # a platform that held chunk 0 back would get "never released" instead.
                    released, deadline = Path(model_input["hold_until"]), time.monotonic() + 30
                    while not released.exists():
                        if time.monotonic() > deadline:
                            yield "never released"
                            return
                        time.sleep(0.01)
                yield str(i)
            if model_input.get("bytes_tail"):
                yield "é".encode()

        return inner()
