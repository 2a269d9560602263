"""A Truss with OpenAI-style methods: `chat_completions` (streams SSE when asked) and `embeddings`."""

import json
import time


class Model:
    def predict(self, model_input):
        return {"predict": model_input}

    def chat_completions(self, model_input):
        last = model_input["messages"][-1]["content"]
        words = f"Truss says: {last}".split()
        if not model_input.get("stream"):
            return {"id": "chatcmpl-truss", "object": "chat.completion", "created": int(time.time()),
                    "model": model_input.get("model", "truss"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": " ".join(words)}}]}
        return self._stream(words, model_input.get("model", "truss"))

    def _stream(self, words, model):
        for i, word in enumerate(words):
            chunk = {"id": "chatcmpl-truss", "object": "chat.completion.chunk", "created": int(time.time()),
                     "model": model, "choices": [{"index": 0, "delta": {"content": (" " if i else "") + word},
                                                  "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"

    def embeddings(self, model_input):
        return {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}],
                "model": "truss"}
