"""Push-to-ready with isolated model environments, on a real `kingpost up`, against pip + venv.

    .venv/bin/python bench/builder_envs.py

Starts `kingpost up` in a temporary home with a fresh uv cache (UV_CACHE_DIR), then times, from the
CLI's upload to ACTIVE:
1. numpy, cold: fresh uv cache, empty wheelhouse, no environment on the node (downloads numpy);
2. numpy + six, warm: a new lock (new dependency layer, new venv) from warm caches;
3. numpy, one line of model.py changed: only the code layer is rebuilt;
4. numpy, re-push of unchanged content (cached artifact);
5. no requirements (the node's base environment: the runner's packages only).
Then the same numpy install done the usual way: `python -m venv` + `pip install numpy`, with a fresh
pip cache and again with it warm. Prints a Markdown table. Stops everything it started.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from platform_latency import start_up, stop_up  # noqa: E402

from kingpost.client_config import ClientConfig  # noqa: E402
from kingpost.push import push  # noqa: E402

MODEL = "import numpy as np\n\n\nclass Model:\n    def predict(self, x):\n        return {'sum': int(np.arange(4).sum())}\n"
PLAIN = "class Model:\n    def predict(self, x):\n        return x\n"


def truss(root: Path, requirements: list[str], model: str) -> Path:
    (root / "model").mkdir(parents=True, exist_ok=True)
    reqs = "".join(f"  - {r}\n" for r in requirements)
    (root / "config.yaml").write_text("model_name: bench-env\npython_version: py311\n"
                                      + (f"requirements:\n{reqs}" if reqs else ""))
    (root / "model" / "model.py").write_text(model)
    return root


async def timed(config: ClientConfig, path: Path, name: str) -> float:
    start = time.perf_counter()
    await push(config, path, model_name=name)
    return time.perf_counter() - start


async def scenarios(config: ClientConfig, work: Path) -> list[tuple[str, float]]:
    out = []
    numpy = truss(work / "numpy", ["numpy"], MODEL)
    out.append(("numpy, cold caches (fresh uv cache, empty wheelhouse, no env on the node)",
                await timed(config, numpy, "bench-numpy")))
    out.append(("numpy + six, warm caches (new lock: new dependency layer and venv)",
                await timed(config, truss(work / "numpy-six", ["numpy", "six==1.16.0"], MODEL), "bench-numpy-six")))
    (numpy / "model" / "model.py").write_text(MODEL + "# one more line\n")
    out.append(("numpy, one line of model.py changed (code layer only)", await timed(config, numpy, "bench-numpy")))
    out.append(("numpy, re-push unchanged", await timed(config, numpy, "bench-numpy")))
    out.append(("no requirements (new content)", await timed(config, truss(work / "plain", [], PLAIN), "bench-plain")))
    return out


def pip_baseline(work: Path, cache: Path) -> float:
    venv = work / f"venv-{time.monotonic_ns()}"
    env = {**os.environ, "PIP_CACHE_DIR": str(cache), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "--isolated", "install", "-q", "numpy"],
                   check=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="kp-bench-envs-") as tmp:
        root = Path(tmp)
        os.environ["UV_CACHE_DIR"] = str(root / "uv-cache")  # inherited by `kingpost up` and its services
        (root / "home").mkdir()
        proc, info = start_up(root / "home")
        try:
            config = ClientConfig(url=info["url"], grpc=info["grpc"], api_key=info["api_key"])
            rows = asyncio.run(scenarios(config, root / "trusses"))
        finally:
            stop_up(proc)
        rows.append(("pip: python -m venv + pip install numpy, fresh pip cache", pip_baseline(root, root / "pip-cache")))
        rows.append(("pip: python -m venv + pip install numpy, warm pip cache", pip_baseline(root, root / "pip-cache")))
    print("| scenario | push → ACTIVE (s) |\n|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
