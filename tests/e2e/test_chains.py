"""Chains as a user runs them, on the `kingpost up` several modules share (tests/e2e/conftest.py): a
streaming chain delivers its chunks as they are produced, Chainlet to Chainlet and on to the HTTP
client; the docs' poem chain (a CPU stand-in for its LLM) fans its calls out at once. Each chain is
pushed with `kingpost chains push`.

Causality, not timing: the streaming Chainlet makes its second chunk only once the test holds the
first; the poem stand-in answers only once all the entrypoint's calls are in flight together.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import kingpost.chains as chains
from kingpost.chains.loading import import_chain_module
from tests.e2e.test_up import client_env, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

CHAINS = Path(__file__).resolve().parents[1] / "chains"
streaming_chain = import_chain_module(CHAINS / "streaming_chain.py")  # its message types, to read the stream


@dataclass
class Platform:
    home: Path
    url: str
    key: str

    def push(self, chain_file: Path) -> dict[str, Any]:
        done = run_cli(self.home, "chains", "push", str(chain_file), "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        pushed = json.loads(done.stdout)
        assert pushed["deployment"]["status"] == "ACTIVE", pushed
        return pushed

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Api-Key {self.key}"},
                                 timeout=120)


@pytest.fixture(scope="module")
def platform(platform: Any) -> Platform:
    """The `kingpost up` that several modules share (tests/e2e/conftest.py), as this module uses it."""
    return Platform(platform.home, platform.url, platform.key)


def test_a_streaming_chain_delivers_chunks_as_they_are_produced(platform: Platform, tmp_path: Path) -> None:
    pushed = platform.push(CHAINS / "streaming_chain.py")
    url = f"/chains/{pushed['chain']['id']}/production/run_remote"
    released = tmp_path / "released"

    async def read(body: dict[str, Any], hold: bool) -> tuple[Any, list[int], Any]:
        async with platform.client() as client, client.stream("POST", url, json=body) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"] == "application/octet-stream"
            reader = chains.streaming.stream_reader(streaming_chain.TYPES, response.aiter_raw())
            header = await reader.read_header()
            items = reader.read_items()
            first = await anext(items, None)
            assert first is not None, f"no item, then the footer {await reader.read_footer()}"
            numbers = [first.number]
            if hold:
                # Counter makes number 1 only once this file exists: number 0 came through Counter's
                # stream, Relay's `async for` and the router before the stream was done.
                assert not released.exists()
                released.touch()
            numbers += [item.number async for item in items]
            return header, numbers, await reader.read_footer()

    header, numbers, footer = asyncio.run(read({"n": 4, "hold_until": str(released)}, hold=True))
    assert (header, numbers, footer) == (streaming_chain.Header(n=4), [0, 1, 2, 3],
                                         streaming_chain.Footer(count=4))
    # An error in the middle of Counter's stream reaches Relay's `async for` as the same class, and is not
    # retried (retries=2): chunks were already out. One before the first chunk is retried.
    _, numbers, footer = asyncio.run(read({"n": 4, "fail_at": 2}, hold=False))
    caught = streaming_chain.Footer(count=2, error="caught ValueError: ValueError: no number 2")
    assert (numbers, footer) == ([0, 1], caught)
    _, numbers, footer = asyncio.run(read({"n": 2, "fail_once": "a"}, hold=False))
    assert (numbers, footer) == ([0, 1], streaming_chain.Footer(count=2))

    async def bad_body() -> httpx.Response:
        async with platform.client() as client:
            return await client.post(url, json={"hold_until": "x"})

    refused = asyncio.run(bad_body())
    assert (refused.status_code, refused.json()) == (400, {"error": "Input Parsing Error: `n`: Field required."})

    # A str stream to an HTTP client: Counter is a model (and deployment) of its own; its chunks are UTF-8,
    # gathered into one JSON string for `Accept: application/json` (as truss serves a streaming predict).
    (counter,) = [c for c in pushed["deployment"]["chainlets"] if c["name"] == "Counter"]

    async def counter_predict(headers: dict[str, str]) -> httpx.Response:
        async with platform.client() as client:
            path = f"/models/{counter['model_id']}/deployment/{counter['deployment_id']}/predict"
            return await client.post(path, json={"n": 3}, headers=headers)

    assert asyncio.run(counter_predict({})).content == b"012"
    assert asyncio.run(counter_predict({"Accept": "application/json"})).json() == "012"


def test_the_docs_poem_chain_fans_out_its_llm_calls_at_once(platform: Platform) -> None:
    pushed = platform.push(CHAINS / "poems.py")
    url = f"/chains/{pushed['chain']['id']}/production/run_remote"

    async def call() -> httpx.Response:
        async with platform.client() as client:
            return await client.post(url, json={"words": ["bird", "plane", "superman"]})

    poems = asyncio.run(call())
    assert poems.status_code == 200, poems.text
    # Each stand-in call waited until three were in flight together: the entrypoint's
    # `asyncio.ensure_future` calls overlap through the router into one replica of PhiLLM.
    assert poems.json() == [f"A poem about {word} (written with 3 at once)" for word in ("bird", "plane", "superman")]


GREETER = '''import truss_chains as chains


class Word(chains.ChainletBase):
    async def run_remote(self) -> str:
        return "{word}"


@chains.mark_entrypoint
class Greeter(chains.ChainletBase):
    def __init__(self, word: Word = chains.depends(Word)) -> None:
        self._word = word

    async def run_remote(self, name: str) -> str:
        return f"{{await self._word.run_remote()}}, {{name}}"
'''


def test_chains_push_watch_pushes_the_development_chain_again_on_every_edit(
    platform: Platform, tmp_path: Path
) -> None:
    chain_file = tmp_path / "greeter_chain.py"
    chain_file.write_text(GREETER.format(word="Hello"))
    watcher = subprocess.Popen([sys.executable, "-m", "kingpost.cli", "chains", "push", str(chain_file), "--watch"],
                               env=client_env(platform.home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    out: list[str] = []

    def until_line(wanted: Callable[[str], bool], what: str) -> None:
        assert watcher.stdout is not None
        for line in watcher.stdout:
            out.append(line.rstrip())
            if wanted(line):
                return
        raise AssertionError(f"the watcher ended before {what}:\n" + "\n".join(out))

    def greeting() -> str:
        async def call() -> httpx.Response:
            async with platform.client() as client:
                return await client.post(run_remote, json={"name": "Ada"})
        r = asyncio.run(call())
        return r.json() if r.status_code == 200 else f"{r.status_code} {r.text}"

    def until_greeting(want: str) -> None:
        deadline = time.monotonic() + 60
        while (got := greeting()) != want:
            assert time.monotonic() < deadline, (got, "\n".join(out))
            time.sleep(0.3)

    try:
        until_line(lambda line: line.startswith("run_remote URL: "), "the first push")
        run_remote = "/chains/" + out[-1].split("/chains/", 1)[1]
        assert run_remote.endswith("/development/run_remote"), out[-1]
        until_line(lambda line: line.startswith("Watching "), "it watched")
        until_greeting("Hello, Ada")
        chain_file.write_text(GREETER.format(word="Bonjour"))
        until_line(lambda line: "greeter_chain.py changed: pushing" in line, "it saw the edit")
        until_greeting("Bonjour, Ada")
        # A broken edit: refused naming the file, the running chain unchanged, and watching goes on.
        chain_file.write_text("import truss_chains as chains\n\nclass Broken(chains.ChainletBase):\n")
        until_line(lambda line: "the push failed" in line, "it reported the failed push")
        assert any("greeter_chain.py failed to import: IndentationError" in line for line in out), "\n".join(out)
        assert greeting() == "Bonjour, Ada"
        chain_file.write_text(GREETER.format(word="Hallo"))
        until_greeting("Hallo, Ada")
    finally:
        os.killpg(watcher.pid, signal.SIGINT)
        rest, _ = watcher.communicate(timeout=60)
    assert watcher.returncode == 0 and rest.rstrip().endswith("Stopped watching."), "\n".join(out) + rest


DATA_CHAIN = '''import truss_chains as chains


@chains.mark_entrypoint
class Reader(chains.ChainletBase):
    remote_config = chains.RemoteConfig(docker_image=chains.DockerImage(
        data_dir=chains.make_abs_path_here("data"), external_package_dirs=["{external}"]))

    def __init__(self, context: chains.DeploymentContext = chains.depends_context()) -> None:
        self._text = (context.data_dir / "greeting.txt").read_text().strip()

    async def run_remote(self, name: str) -> str:
        import shared_words  # from the external package dir, shipped with the Chainlet (not on this machine's path)

        return f"{{self._text}} {{shared_words.PUNCTUATION}} {{name}}"
'''


def test_a_chainlet_gets_its_data_dir_and_its_external_package_dirs(platform: Platform, tmp_path: Path) -> None:
    """DockerImage.data_dir is the Chainlet's context.data_dir; a package dir outside the chain's
    folder is importable in its runner."""
    external = tmp_path / "outside"
    external.mkdir()
    (external / "shared_words.py").write_text('PUNCTUATION = "—"\n')
    folder = tmp_path / "chain"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "greeting.txt").write_text("Guten Tag\n")
    chain_file = folder / "reader_chain.py"
    chain_file.write_text(DATA_CHAIN.format(external=external))
    pushed = platform.push(chain_file)

    async def call() -> httpx.Response:
        async with platform.client() as client:
            return await client.post(f"/chains/{pushed['chain']['id']}/production/run_remote", json={"name": "Ada"})

    answered = asyncio.run(call())
    assert (answered.status_code, answered.json()) == (200, "Guten Tag — Ada"), answered.text
