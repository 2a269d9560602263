import pydantic


class Inputs(pydantic.BaseModel):
    prompt: str
    max_tokens: int = 16


class Output(pydantic.BaseModel):
    text: str
    tokens: int


class Model:
    def predict(self, inputs: Inputs) -> Output:
        assert isinstance(inputs, Inputs)
        return Output(text=inputs.prompt.upper(), tokens=inputs.max_tokens)
