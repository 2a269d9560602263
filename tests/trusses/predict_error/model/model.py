import helpers


class HTTPException(Exception):
    """Shaped like fastapi.HTTPException (fastapi is not installed)."""

    def __init__(self, status_code: int, detail):
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


class Model:
    def predict(self, model_input):
        if "status" in model_input:
            raise HTTPException(model_input["status"], model_input["detail"])
        return helpers.crash(123)
