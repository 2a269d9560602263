"""Each Chainlet of a checked chain → a Truss directory the existing builder and runner take as is
(truss's own code_gen does the same): `config.yaml` from its RemoteConfig, a two-line
`model/model.py` (`class Model(ChainletModel)`), and the chain root copied to `packages/` so the
chain file imports in the runner as it did on the user's machine.

The dependencies' addresses are in `model_metadata.chains.chainlet_to_service`, pinned to the
deployments made by the same push (a development push follows the dependencies' development
deployments instead), so a chain version always calls its own versions.
"""

from __future__ import annotations

import pathlib
import shutil
from collections.abc import Mapping
from typing import Any

import yaml

from kingpost.chains.graph import Chainlet, ChainGraph, ChainValidationError
from kingpost.chains.public_types import DeployedServiceDescriptor, DockerImage

MODEL_PY = "from kingpost.chains.serving import ChainletModel\n\n\nclass Model(ChainletModel):\n    pass\n"
_SKIP = shutil.ignore_patterns("__pycache__", ".*", "*.pyc", "venv", "node_modules")


def model_name(chain: str, chainlet: str, entrypoint: bool) -> str:
    """The entrypoint is the model named like the chain; the others `<chain>.<Chainlet>`."""
    return chain if entrypoint else f"{chain}.{chainlet}"


def requirements(image: DockerImage, chainlet: str, chain_root: pathlib.Path | None) -> list[str]:
    """`pip_requirements`, then the lines of `pip_requirements_file` / `requirements_file` (absolute, as
    `make_abs_path_here` makes them, or relative to the chain's folder), comments and blanks left out."""
    out = list(image.pip_requirements)
    for named in filter(None, (image.pip_requirements_file, image.requirements_file)):
        path = pathlib.Path(named)
        if not path.is_absolute() and chain_root is not None:
            path = chain_root / path
        try:
            lines = path.read_text().splitlines()
        except OSError as e:
            raise ChainValidationError([f"`{chainlet}`: its DockerImage names the requirements file {path}, "
                                        f"which cannot be read ({e.strerror or e})"]) from None
        out += [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    return out


def chainlet_config(graph: ChainGraph, chainlet: Chainlet, module: str, *, router: str, api_key: str,
                    services: Mapping[str, DeployedServiceDescriptor],
                    chain_root: pathlib.Path | None = None) -> dict[str, Any]:
    rc = chainlet.cls.remote_config
    image, compute = rc.docker_image, rc.compute
    resources: dict[str, Any] = {"cpu": str(compute.cpu_count), "memory": compute.memory}
    if compute.gpu:
        gpu = str(compute.gpu)
        resources["accelerator"] = f"{gpu}:{compute.gpu_count}" if compute.gpu_count > 1 else gpu
        resources["use_gpu"] = True
    if compute.instance_type:
        resources["instance_type"] = compute.instance_type
    concurrency = compute.cpu_count if compute.predict_concurrency == "cpu_count" else compute.predict_concurrency
    config: dict[str, Any] = {
        "model_name": model_name(graph.name, chainlet.name, chainlet.name == graph.entrypoint),
        "model_class_name": "Model",
        "requirements": requirements(image, chainlet.name, chain_root),
        "system_packages": list(image.apt_requirements),
        "resources": resources,
        "runtime": {"predict_concurrency": int(concurrency),
                    "streaming_read_timeout": rc.options.streaming_read_timeout},
        "environment_variables": dict(rc.options.env_variables),
        "secrets": {**{k: None for k in rc.assets.secret_keys}, "baseten_chain_api_key": api_key},
        "model_metadata": {"chains": {
            "chain": graph.name,
            "chainlet": chainlet.name,
            "module": module,
            "class_name": chainlet.cls.__name__,
            "router": router,
            "secret_keys": list(rc.assets.secret_keys),
            "chainlet_to_service": {
                dep: services[dep].model_copy(update={"options": options}).model_dump(mode="json")
                for _, dep, options in chainlet.dependencies},
        }},
    }
    if image.external_package_dirs:  # outside the Truss: kingpost.truss_archive ships each in the artifact
        root = chain_root or pathlib.Path.cwd()
        config["external_package_dirs"] = [str(image_dir(d, "external package dir", chainlet.name, root))
                                           for d in image.external_package_dirs]
    # base_image's Python is not pinned: the chainlet runs on the node's platform Python, as models
    # without python_version do (the builder would warn about a version the node lacks).
    return config


def write_truss(target: pathlib.Path, chain_root: pathlib.Path, config: Mapping[str, Any],
                data_dir: pathlib.Path | None = None) -> pathlib.Path:
    """A Truss directory at `target` (created; must not exist); `data_dir` (the Chainlet's
    `DockerImage.data_dir`) copied to its `data/`, which the Chainlet reads as `context.data_dir`."""
    (target / "model").mkdir(parents=True)
    (target / "model" / "model.py").write_text(MODEL_PY)
    (target / "config.yaml").write_text(yaml.safe_dump(dict(config), sort_keys=False))
    shutil.copytree(chain_root, target / "packages", ignore=_SKIP)
    if data_dir is not None:
        shutil.copytree(data_dir, target / "data", ignore=_SKIP)
    return target


def image_dir(named: str | None, what: str, chainlet: str, chain_root: pathlib.Path) -> pathlib.Path | None:
    """A DockerImage folder (absolute, or relative to the chain's folder), which must exist."""
    if not named:
        return None
    path = pathlib.Path(named)
    path = path if path.is_absolute() else chain_root / path
    if not path.is_dir():
        raise ChainValidationError([f"`{chainlet}`: its DockerImage's {what} {path} is not a folder"])
    return path.resolve()
