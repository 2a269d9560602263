class Model:
    def __init__(self, **kwargs) -> None:
        self.attempts = 0

    def load(self):
        self.attempts += 1
        print(f"load attempt {self.attempts}", flush=True)
        raise ValueError("weights are corrupt")

    def predict(self, model_input):
        return model_input
