class Model:
    async def predict(self, request):
        a, b = (t["data"] for t in request["inputs"])
        shape = request["inputs"][0]["shape"]
        return {"model_name": "add_sub", "outputs": [
            {"name": "OUTPUT0", "datatype": "FP32", "shape": shape, "data": [x + y for x, y in zip(a, b)]},
            {"name": "OUTPUT1", "datatype": "FP32", "shape": shape, "data": [x - y for x, y in zip(a, b)]}]}
