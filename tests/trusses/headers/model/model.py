class Model:
    def predict(self, model_input, request):
        return {"input": model_input, "headers": dict(request.headers)}
