class Model:
    def __init__(self, environment=None) -> None:
        self._environment = environment

    def predict(self, model_input, request):
        return {
            "environment": self._environment,
            "accept": request.headers.get("Accept"),
            "request_id": request.headers.get("x-baseten-request-id"),
        }
