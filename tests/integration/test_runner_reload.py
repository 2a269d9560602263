"""RunnerService.Reload on a real runner process: new code serves, a broken reload keeps the old model."""

from __future__ import annotations

import asyncio
import json
import pathlib
import shutil

import httpx
from kingpost.v1 import runner_pb2

from tests.fixtures.runner import running

MODEL = """
import helper

class Model:
    def __init__(self, **kwargs):
        self.loaded = False

    def load(self):
        self.loaded = True

    def predict(self, inputs):
        return {"version": VERSION, "helper": helper.NAME, "loaded": self.loaded}

VERSION = 1
"""


def make_truss(root: pathlib.Path) -> pathlib.Path:
    (root / "model").mkdir(parents=True)
    (root / "config.yaml").write_text("model_name: reloadable\n")
    (root / "model" / "model.py").write_text(MODEL)
    (root / "packages").mkdir()
    (root / "packages" / "helper.py").write_text('NAME = "one"\n')
    return root


async def answer(runner) -> dict:  # type: ignore[no-untyped-def]
    chunks = await runner.predict(b"{}")
    return json.loads(b"".join(c.data for c in chunks))


async def test_reload_serves_the_new_code_from_a_patched_copy(tmp_path: pathlib.Path) -> None:
    truss = make_truss(tmp_path / "truss")
    async with running(truss) as runner:
        assert await answer(runner) == {"version": 1, "helper": "one", "loaded": True}
        copy = tmp_path / "copy"
        shutil.copytree(truss, copy)
        (copy / "model" / "model.py").write_text(MODEL.replace("VERSION = 1", "VERSION = 2"))
        (copy / "packages" / "helper.py").write_text('NAME = "two"\n')

        reply = await runner.stub.Reload(runner_pb2.ReloadRequest(truss_dir=str(copy)), timeout=10)

        assert reply.error == ""
        # The helper module is imported afresh too, and load() ran on the new model.
        assert await answer(runner) == {"version": 2, "helper": "two", "loaded": True}
        async with httpx.AsyncClient(base_url=runner.http_url, timeout=10) as http:  # the HTTP plane too
            assert (await http.post("/predict", json={})).json() == {"version": 2, "helper": "two", "loaded": True}
        # Reloading in place picks up an edit made within the same second, of the same size.
        (copy / "model" / "model.py").write_text(MODEL.replace("VERSION = 1", "VERSION = 3"))
        reply = await runner.stub.Reload(runner_pb2.ReloadRequest(), timeout=10)
        assert reply.error == ""
        assert (await answer(runner))["version"] == 3


async def test_a_failing_reload_keeps_the_old_model_and_returns_the_traceback(tmp_path: pathlib.Path) -> None:
    truss = make_truss(tmp_path / "truss")
    async with running(truss) as runner:
        (truss / "model" / "model.py").write_text(MODEL.replace("self.loaded = True", "raise RuntimeError('no gpu')"))

        reply = await runner.stub.Reload(runner_pb2.ReloadRequest(), timeout=10)

        assert "RuntimeError: no gpu" in reply.error and "Traceback" in reply.error
        assert await answer(runner) == {"version": 1, "helper": "one", "loaded": True}
        (truss / "model" / "model.py").write_text("this is not python(\n")
        reply = await runner.stub.Reload(runner_pb2.ReloadRequest(), timeout=10)
        assert "SyntaxError" in reply.error
        assert await answer(runner) == {"version": 1, "helper": "one", "loaded": True}
        # A good edit after the failures still reloads.
        (truss / "model" / "model.py").write_text(MODEL.replace("VERSION = 1", "VERSION = 4"))
        reply = await runner.stub.Reload(runner_pb2.ReloadRequest(), timeout=10)
        assert reply.error == ""
        assert (await answer(runner))["version"] == 4


HOLD = """
import pathlib, time

def hold(started, release):
    pathlib.Path(started).touch()
    deadline = time.monotonic() + 30
    while not pathlib.Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
"""


async def test_requests_in_flight_finish_on_the_old_model(tmp_path: pathlib.Path) -> None:
    truss = make_truss(tmp_path / "truss")
    started, release = tmp_path / "started", tmp_path / "release"
    # The old predict says it has begun, then holds until the reload is done: the reload happens in it.
    hold = f"def predict(self, inputs):\n        hold({str(started)!r}, {str(release)!r})"
    held = HOLD + MODEL.replace("def predict(self, inputs):", hold)
    (truss / "model" / "model.py").write_text(held)
    async with running(truss) as runner:
        in_flight = asyncio.create_task(answer(runner))
        async with asyncio.timeout(30):
            while not started.exists():
                await asyncio.sleep(0.01)
        (truss / "model" / "model.py").write_text(MODEL.replace("VERSION = 1", "VERSION = 5"))
        reply = await runner.stub.Reload(runner_pb2.ReloadRequest(), timeout=10)
        assert reply.error == ""
        release.touch()
        assert (await in_flight)["version"] == 1
        assert (await answer(runner))["version"] == 5
