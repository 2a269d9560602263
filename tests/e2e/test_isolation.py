"""Issue 21's acceptance, tried as a user would: a model pushed to `kingpost up` tries to read the admin
key, the database, the services' configs and environments, and another deployment's files, and gets
none of them (docs/isolation.md). Needs what the agent needs to give runners users of their own: root,
and a Python other users can run (tests/fixtures/containment.py); else the agent says why not and
this test is skipped with its words.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest

from tests.e2e.test_up import Up, descendants, free_port, proc_stat, run_cli
from tests.fixtures.servers import unavailable

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

SNOOP = """
class Model:
    def predict(self, request):
        found = {}
        for path in request["read"]:
            try:
                with open(path, "rb") as f:
                    found[path] = "read: " + f.read(100).decode(errors="replace")
            except OSError as e:
                found[path] = type(e).__name__
        return found
"""


def test_a_pushed_model_reads_nothing_of_the_platform_nor_of_another_deployment() -> None:
    root = Path(tempfile.mkdtemp(prefix="kp-isolation-"))
    root.chmod(0o711)  # pytest's tmp_path is under a 0700 directory no runner could pass
    home = root / "home"
    truss = root / "snoop"
    (truss / "model").mkdir(parents=True)
    (truss / "config.yaml").write_text("model_name: snoop\n")
    (truss / "model" / "model.py").write_text(textwrap.dedent(SNOOP))
    # No runner_python given: the agent finds a Python its runners' users can run (the system's of the
    # same version where the platform's lies under /root, as pyenv's does), as `make up` would.
    up = Up(home, free_port(), free_port())
    seen: dict[int, str] = {}
    try:
        up.wait_for_curl()  # the example (echo) is deployed: another deployment, with files of its own
        containment = next(line for line in (home / "logs" / "agent.log").read_text().splitlines()
                           if "runner containment: " in line)
        if "a user of its own" not in containment:
            unavailable(containment.partition("runner containment: ")[2])
        pushed = run_cli(home, "push", str(truss), "--json")
        assert pushed.returncode == 0, pushed.stderr

        seen = descendants(up.process.pid)
        scheduler = next(pid for pid, command in seen.items() if "kingpost.cli scheduler " in command)
        echo_model = [path for path in (home / "agent" / "artifacts").glob("*/**/model/model.py")
                      if "def predict" in path.read_text() and "found" not in path.read_text()]
        assert echo_model, "the example's artifact is on the node"
        secrets = [home / "config.toml", home / "state" / "kingpost.db", home / "run" / "scheduler.toml",
                   home / "logs" / "scheduler.log", Path(f"/proc/{scheduler}/environ"), *echo_model]
        predicted = run_cli(home, "predict", "snoop", "--data", json.dumps({"read": [str(p) for p in secrets]}))
        assert predicted.returncode == 0, predicted.stderr
        found = json.loads(predicted.stdout)
        assert {path: why for path, why in found.items() if why.startswith("read:")} == {}
        assert set(found.values()) == {"PermissionError"}
        assert up.stop() == 0, "\n".join(up.output)
    finally:
        if up.process.poll() is None or any(proc_stat(p) for p in seen):
            up.kill_everything(set(seen) | set(descendants(up.process.pid)))
        shutil.rmtree(root, ignore_errors=True)
