"""Two Trusses pinning different versions of one package deploy side by side, each in its own environment.

Pushed with the CLI onto one `kingpost up`, as a user would; real uv and PyPI (six is tiny, pure Python).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.test_truss_compat import Platform
from tests.e2e.test_up import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MODEL = """import sys

import six


class Model:
    def predict(self, model_input):
        return {"six": six.__version__, "prefix": sys.prefix}
"""


def write_truss(root: Path, name: str, requirement: str) -> Path:
    (root / "model").mkdir(parents=True)
    (root / "config.yaml").write_text(f"model_name: {name}\npython_version: py311\nrequirements:\n  - {requirement}\n")
    (root / "model" / "model.py").write_text(MODEL)
    return root


def test_conflicting_pins_answer_side_by_side(platform: Platform, tmp_path: Path) -> None:
    new = write_truss(tmp_path / "new", "Six New", "six==1.16.0")
    old = write_truss(tmp_path / "old", "Six Old", "six==1.15.0")
    first = platform.push(new)
    platform.push(old)
    assert first["build"]["artifact_digest"].startswith("sha256:")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda name: platform.predict(name, {}).json(), ["Six New", "Six Old"] * 8))
    assert {a["six"] for a in answers[0::2]} == {"1.16.0"}
    assert {a["six"] for a in answers[1::2]} == {"1.15.0"}
    assert answers[0]["prefix"] != answers[1]["prefix"]  # two environments, neither the platform's

    again = platform.push(new)  # unchanged content: the build is a cache hit
    assert again["build"]["cached"] is True
    assert again["build"]["artifact_digest"] == first["build"]["artifact_digest"]
    assert platform.predict("Six New", {}).json()["six"] == "1.16.0"


def test_a_bad_requirement_fails_the_push_naming_the_package(platform: Platform, tmp_path: Path) -> None:
    bad = write_truss(tmp_path / "bad", "Six Bad", "surely-not-a-real-package-kp==1.0")
    done = run_cli(platform.home, "push", str(bad), "--json")
    assert done.returncode != 0
    result = json.loads(done.stdout)
    assert "surely-not-a-real-package-kp" in result["error"]


def test_build_logs_show_the_lock(platform: Platform, tmp_path: Path) -> None:
    pushed = platform.push(write_truss(tmp_path / "logged", "Six Logged", "six==1.14.0"))
    logs = run_cli(platform.home, "logs", "--build", pushed["build"]["build_id"])
    assert logs.returncode == 0, logs.stderr
    assert "six==1.14.0" in logs.stdout and "dependency layer sha256:" in logs.stdout
