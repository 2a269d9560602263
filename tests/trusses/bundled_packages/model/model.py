from greeting import greet
from shout import shout


class Model:
    def predict(self, model_input):
        return shout(greet(model_input["name"]))
