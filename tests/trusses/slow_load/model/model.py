import os
import pathlib
import time


class Model:
    def load(self):
        # Loads until the test creates the release file, so the test decides when loading ends.
        release = pathlib.Path(os.environ["KP_TEST_RELEASE_FILE"])
        while not release.exists():
            time.sleep(0.02)

    def predict(self, model_input):
        return model_input
