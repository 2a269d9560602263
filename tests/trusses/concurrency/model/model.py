import threading
import time
from typing import Any


class Model:
    """Sleeps 1 s per call. With `{"count_together": true}` it also shows how many calls ran at once,
    without the test timing anything: the first calls wait (up to 20 s) until two have run together,
    each stays 1 s more so that any further admitted call joins it, and answers the most seen at once."""

    def __init__(self, **kwargs: Any) -> None:
        self._changed = threading.Condition()
        self._running = 0
        self._most = 0
        self._finished = False

    def predict(self, model_input: Any) -> Any:
        counting = isinstance(model_input, dict) and model_input.get("count_together")
        with self._changed:
            self._running += 1
            self._most = max(self._most, self._running)
            self._changed.notify_all()
            if counting:
                self._changed.wait_for(lambda: self._most >= 2 or self._finished, timeout=20)
        try:
            time.sleep(1)
        finally:
            with self._changed:
                self._running -= 1
                self._finished = True
                most = self._most
        return {"input": model_input, "most_at_once": most} if counting else model_input
