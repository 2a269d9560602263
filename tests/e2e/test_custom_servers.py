"""Custom servers (`docker_server`) and `/sync/{path}`, through the whole platform as a user meets them:
`kingpost push`, then OpenAI's own Python client and plain HTTP through Envoy.

On the `kingpost up` that several modules share (tests/e2e/conftest.py). The servers are
standard-library scripts (examples/openai-server, tests/trusses/custom_server), so their Trusses
need no requirements.
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from tests.e2e.test_truss_compat import TRUSSES, Platform
from tests.e2e.test_up import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def variant(tmp_path: Path, name: str, port: int, flags: str = "", **changes: object) -> Path:
    """tests/trusses/custom_server on its own port (servers share the node's ports), its docker_server
    block changed."""
    truss = tmp_path / name
    shutil.copytree(TRUSSES / "custom_server", truss)
    config = yaml.safe_load((truss / "config.yaml").read_text())
    config["model_name"] = name
    config["docker_server"].update(start_command=f"python server.py --port {port} {flags}".strip(),
                                   server_port=port, **changes)
    (truss / "config.yaml").write_text(yaml.safe_dump(config))
    return truss


def test_the_example_openai_server_answers_openai_client_streamed_token_by_token(platform: Platform) -> None:
    result = platform.push(EXAMPLES / "openai-server")
    base = f"{platform.url}/models/{result['model']['id']}/development/sync/v1"
    client = openai.OpenAI(base_url=base, api_key=platform.key)

    reply = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hello there"}])
    assert reply.choices[0].message.content == "You said: hello there"

    arrivals, words = [], []
    started = time.perf_counter()
    stream = client.chat.completions.create(model="echo", stream=True,
                                            messages=[{"role": "user", "content": "one two three four"}])
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            words.append(chunk.choices[0].delta.content)
            arrivals.append(time.perf_counter() - started)
    assert "".join(words) == "You said: one two three four"
    # Token by token: the server spaces them 20 ms apart, and they arrive spread out, not at once.
    assert len(arrivals) == 6 and arrivals[-1] - arrivals[0] >= 0.06, arrivals
    assert [m.id for m in client.models.list()] == ["echo"]
    # predict_endpoint answers {prefix}/predict.
    predicted = platform.http.post(f"/models/{result['model']['id']}/development/predict",
                                   json={"messages": [{"role": "user", "content": "via predict"}]})
    assert predicted.status_code == 200 and predicted.json()["choices"][0]["message"]["content"] == "You said: via predict"


def test_sync_passes_method_path_query_headers_body_and_status_through(platform: Platform, tmp_path: Path) -> None:
    result = platform.push(variant(tmp_path, "passthrough", 8011))
    prefix = f"/models/{result['model']['id']}/development/sync"
    answer = platform.http.put(f"{prefix}/echo/a/b?x=1&model_id=other", content=b"raw \x00 bytes".decode("latin-1"),
                               headers={"x-custom": "yes", "content-type": "text/plain"})
    assert answer.status_code == 201, answer.text
    seen = answer.json()
    assert seen["method"] == "PUT" and seen["path"] == "/echo/a/b?x=1&model_id=other"
    assert seen["body"] == "raw \x00 bytes"
    assert seen["headers"]["x-custom"] == "yes" and seen["headers"]["content-type"] == "text/plain"
    assert "authorization" not in seen["headers"]  # the caller's kingpost key stays with kingpost
    assert answer.headers["x-server"] == "custom"
    assert answer.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert platform.http.get(f"{prefix}/echo").json()["method"] == "GET"
    assert platform.http.delete(f"{prefix}/echo").json()["method"] == "DELETE"
    missing = platform.http.get(f"{prefix}/nowhere")
    assert missing.status_code == 404 and missing.json() == {"detail": "no route GET /nowhere"}

    # Server-sent events arrive as the server sends them (0.3 s apart), not gathered at the end.
    arrivals = []
    started = time.perf_counter()
    with platform.http.stream("GET", f"{prefix}/sse") as streamed:
        assert streamed.headers["content-type"].startswith("text/event-stream")
        for line in streamed.iter_lines():
            if line.startswith("data:"):
                arrivals.append(time.perf_counter() - started)
    assert len(arrivals) == 3 and arrivals[1] - arrivals[0] > 0.2 and arrivals[2] - arrivals[1] > 0.2, arrivals


def test_a_crashing_server_is_restarted_and_the_deployment_recovers(platform: Platform, tmp_path: Path) -> None:
    result = platform.push(variant(tmp_path, "crasher", 8014))
    prefix = f"/models/{result['model']['id']}/development/sync"
    first = platform.http.get(f"{prefix}/pid").json()["pid"]
    crashed = platform.http.get(f"{prefix}/crash")
    assert crashed.status_code == 502, crashed.text  # the request it died on
    deadline = time.monotonic() + 60
    while True:  # held or retried while the agent starts it again, then answered by the new server
        again = platform.http.get(f"{prefix}/pid")
        if again.status_code == 200:
            break
        assert time.monotonic() < deadline, again.text
        time.sleep(0.2)
    assert again.json()["pid"] != first
    logs = run_cli(platform.home, "logs", result["model"]["id"])
    assert "server: crashing on purpose" in logs.stdout + logs.stderr


def test_a_server_that_never_gets_ready_fails_the_push_with_its_output(platform: Platform, tmp_path: Path) -> None:
    truss = variant(tmp_path, "never-ready", 8012, "--never-ready")
    done = run_cli(platform.home, "push", str(truss))
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "not ready within 4 s" in said and "server: not ready yet, still warming up" in said, said

    exits = variant(tmp_path, "exits", 8013, "--exit-at-start")
    done = run_cli(platform.home, "push", str(exits))
    said = done.stdout + done.stderr
    assert done.returncode != 0 and "exited with code 7" in said, said
    assert "cannot open the weights file /models/missing.bin" in said, said


def test_a_reserved_or_busy_server_port_fails_naming_it(platform: Platform, tmp_path: Path) -> None:
    done = run_cli(platform.home, "push", str(variant(tmp_path, "reserved", 8080)))
    said = done.stdout + done.stderr
    assert done.returncode != 0 and "docker_server.server_port: 8080 is reserved" in said, said

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # Replicas share the node's ports: a start command that names its port (`--port N`) is given
        # a free one in its place, so a taken server_port is no obstacle...
        moved = platform.push(variant(tmp_path, "moved", port))
        answer = platform.http.get(f"/models/{moved['model']['id']}/development/sync/echo")
        assert answer.status_code == 201, answer.text
        # ...but one that names it in a way kingpost cannot rewrite needs the port itself.
        truss = variant(tmp_path, "busy", port)
        config = yaml.safe_load((truss / "config.yaml").read_text())
        config["docker_server"]["start_command"] = f"python server.py --listen {port}"
        (truss / "config.yaml").write_text(yaml.safe_dump(config))
        done = run_cli(platform.home, "push", str(truss))
    said = done.stdout + done.stderr
    assert done.returncode != 0 and f"docker_server.server_port {port} is already in use" in said, said


def test_a_truss_with_chat_completions_answers_the_openai_client(platform: Platform) -> None:
    result = platform.push("openai_methods")
    model_id = result["model"]["id"]
    client = openai.OpenAI(base_url=f"{platform.url}/models/{model_id}/development/sync/v1", api_key=platform.key)
    reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "Truss says: hi"
    streamed = client.chat.completions.create(model="m", stream=True, messages=[{"role": "user", "content": "a b"}])
    assert [c.choices[0].delta.content for c in streamed] == ["Truss", " says:", " a", " b"]
    assert client.embeddings.create(model="m", input="x").data[0].embedding == [0.5, 0.25]
    lacking = platform.http.post(f"/models/{model_id}/development/sync/v1/completions", json={"prompt": "x"})
    assert lacking.status_code == 404, lacking.text
    assert lacking.json() == {"error": "`completions` must only be called if model has it."}, lacking.headers
    with pytest.raises(openai.NotFoundError) as missing:
        client.completions.create(model="m", prompt="x")
    assert missing.value.response.json() == lacking.json()
    assert platform.predict(model_id, {"still": "predicts"}).json() == {"predict": {"still": "predicts"}}
    plain = httpx.post(f"{platform.url}/models/{model_id}/development/sync/v1/chat/completions",
                       headers={"Authorization": f"Api-Key {platform.key}"},
                       json={"messages": [{"role": "user", "content": "x"}]}, timeout=30)
    assert plain.status_code == 200 and plain.headers["content-type"] == "application/json"
