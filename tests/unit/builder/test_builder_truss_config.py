"""config.yaml parsing: truss's defaults, precise errors, and a warning for every key not acted on."""

from __future__ import annotations

import pytest

from kingpost.errors import InvalidArgument
from kingpost_builder.truss_config import (
    TrussConfig,
    check_layout,
    find_config_file,
    parse_truss_config,
    summary_fields,
)

# What `truss init` writes: every key at its default. It must parse without a single warning.
TRUSS_INIT_CONFIG = """
build_commands: []
environment_variables: {}
external_package_dirs: []
model_metadata: {}
model_name: My Model
python_version: py311
requirements: []
resources:
  accelerator: null
  cpu: '1'
  memory: 2Gi
  use_gpu: false
secrets: {}
system_packages: []
"""


def errors_of(text: str) -> str:
    with pytest.raises(InvalidArgument) as info:
        parse_truss_config(text)
    return info.value.message


def test_empty_config_has_truss_defaults() -> None:
    parsed = parse_truss_config("")
    assert parsed.config == TrussConfig()
    c = parsed.config
    assert (c.python_version, c.model_module_dir, c.model_class_filename, c.model_class_name) == (
        "py313", "model", "model.py", "Model")
    assert (c.resources.cpu, c.resources.memory, c.resources.accelerator) == ("1", "2Gi", None)
    assert (c.runtime.predict_concurrency, c.runtime.streaming_read_timeout) == (1, 60)
    assert (c.bundled_packages_dir, c.data_dir, c.live_reload) == ("packages", "data", False)
    assert parsed.warnings == ()


def test_truss_init_config_parses_without_warnings() -> None:
    parsed = parse_truss_config(TRUSS_INIT_CONFIG)
    assert parsed.config.model_name == "My Model"
    assert parsed.config.python_version == "py311"
    assert parsed.warnings == ()


def test_predict_concurrency_zero_names_key_value_and_rule() -> None:
    message = errors_of("runtime:\n  predict_concurrency: 0\n")
    assert "runtime.predict_concurrency: 0 is not valid: must be ≥ 1" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("python_version: py38\n", "python_version: 'py38' is not valid: must be one of py39"),
        ("python_version: py315\n", "python_version: 'py315' is not valid"),
        ("resources:\n  cpu: lots\n", "resources.cpu: 'lots' is not valid"),
        ("resources:\n  cpu: '0'\n", "resources.cpu: '0' is not valid"),
        ("resources:\n  memory: 2GB\n", "resources.memory: '2GB' is not valid"),
        ("resources:\n  accelerator: K80\n", "resources.accelerator: 'K80' is not valid: must be <TYPE>[:count]"),
        ("resources:\n  accelerator: 'H100:0'\n", "resources.accelerator: 'H100:0' is not valid"),
        ("resources:\n  accelerator: 'H100:x'\n", "resources.accelerator: 'H100:x' is not valid"),
        ("resources:\n  accelerator: 'T4:2'\n", "resources.accelerator 'T4:2': no instance type offers it with cpu 1, memory 2Gi, accelerator T4:2; the choices: T4:1, L4:1"),
        ("runtime:\n  streaming_read_timeout: 0\n", "runtime.streaming_read_timeout: 0 is not valid"),
        ("runtime:\n  predict_concurrency: many\n", "runtime.predict_concurrency: 'many' is not valid"),
        ("runtime:\n  num_workers: 2\n", "runtime.num_workers: 2 is not valid: only 1 worker per server"),
        ("model_class_name: 'my-model'\n", "model_class_name: 'my-model' is not valid"),
        ("model_module_dir: ../elsewhere\n", "model_module_dir: '../elsewhere' is not valid"),
        ("model_module_dir: /abs\n", "model_module_dir: '/abs' is not valid"),
        ("environment_variables: [A, B]\n", "environment_variables: ['A', 'B'] is not valid"),
        ("environment_variables:\n  A: {nested: 1}\n", "environment_variables"),
        ("requirements: numpy\n", "requirements: 'numpy' is not valid"),
        ("live_reload: maybe\n", "live_reload: 'maybe' is not valid"),
        ("resources: 4\n", "resources: 4 is not valid: must be a mapping"),
        ("build:\n  no_cache: true\n", "build.no_cache: true is not valid"),
    ],
)
def test_invalid_values_name_the_key_path_and_value(text: str, expected: str) -> None:
    message = errors_of(text)
    assert message.startswith("config.yaml: ")
    assert expected in message


def test_every_error_is_reported_at_once() -> None:
    message = errors_of("python_version: py27\nruntime:\n  predict_concurrency: -1\n")
    assert "python_version: 'py27'" in message and "runtime.predict_concurrency: -1" in message


def test_requirements_and_requirements_file_are_mutually_exclusive() -> None:
    message = errors_of("requirements: [numpy]\nrequirements_file: requirements.txt\n")
    assert "requirements and requirements_file are mutually exclusive" in message


def test_num_workers_one_is_accepted() -> None:
    assert parse_truss_config("runtime:\n  num_workers: 1\n").warnings == ()


def test_duplicate_keys_are_refused_with_the_line() -> None:
    message = errors_of("model_name: a\nresources:\n  cpu: '1'\nmodel_name: b\n")
    assert "duplicate key 'model_name' (line 4)" in message


def test_duplicate_nested_keys_are_refused() -> None:
    assert "duplicate key 'cpu'" in errors_of("resources:\n  cpu: '1'\n  cpu: '2'\n")


def test_yaml_syntax_error_and_non_mapping() -> None:
    assert "not valid YAML" in errors_of("model_name: [unclosed\n")
    assert "must be a mapping" in errors_of("- a\n- b\n")


def test_resources_forms() -> None:
    r = parse_truss_config("resources:\n  cpu: 500m\n  memory: 512Mi\n  accelerator: 'H100:2'\n").config.resources
    assert (r.cpu, r.memory, r.accelerator) == ("500m", "512Mi", "H100:2")
    assert (r.accelerator_type, r.accelerator_count, r.use_gpu) == ("H100", 2, True)
    r = parse_truss_config("resources:\n  cpu: 2\n  memory: 4\n  accelerator: T4\n").config.resources
    assert (r.cpu, r.memory, r.accelerator, r.accelerator_count) == ("2", "4", "T4", 1)
    # "A10G:1" means one: it is written back as the type alone, as truss serialises it.
    assert parse_truss_config("resources:\n  accelerator: 'A10G:1'\n").config.resources.accelerator == "A10G"


def test_environment_variables_are_stringified() -> None:
    env = parse_truss_config("environment_variables:\n  A: true\n  B: 3\n  C: off-ish\n  D: false\n"
                             ).config.environment_variables
    assert env == {"A": "true", "B": "3", "C": "off-ish", "D": "false"}


def test_reserved_environment_variables_warn() -> None:
    warnings = parse_truss_config("environment_variables:\n  PORT: 9000\n").warnings
    assert any("environment_variables.PORT" in w for w in warnings)


def test_secrets_declare_names_with_optional_defaults() -> None:
    secrets = parse_truss_config("secrets:\n  hf_access_token: null\n  other: x\n").config.secrets
    assert secrets == {"hf_access_token": None, "other": "x"}


def test_model_paths_and_misc_keys() -> None:
    c = parse_truss_config(
        "model_module_dir: src/pkg\nmodel_class_filename: serve.py\nmodel_class_name: Server\n"
        "bundled_packages_dir: libs\ndata_dir: assets\nlive_reload: true\nexternal_package_dirs: []\n"
    ).config
    assert c.model_file == "src/pkg/serve.py"
    assert (c.model_class_name, c.bundled_packages_dir, c.data_dir, c.live_reload) == (
        "Server", "libs", "assets", True)


def test_unknown_keys_are_accepted_with_a_warning_naming_each() -> None:
    parsed = parse_truss_config("model_name: m\nflavour: mint\nresources:\n  gpus: 2\nruntime:\n  turbo: on\n")
    assert parsed.config.model_name == "m"
    assert parsed.warnings == (
        "flavour: unknown key, ignored",
        "resources.gpus: unknown key, ignored",
        "runtime.turbo: unknown key, ignored",
    )
    assert parsed.raw["flavour"] == "mint"  # kept for the model's `config` argument


def test_known_keys_not_acted_on_are_named_when_set() -> None:
    parsed = parse_truss_config(
        "system_packages: [ffmpeg]\nbuild_commands: ['echo hi']\nbase_image:\n  image: x\n"
        "trt_llm: {build: {}}\nweights:\n  - source: hf://a/b\n"
        "external_data:\n  - url: http://x\nresources:\n  instance_type: 'L4:4x16'\n"
        "runtime:\n  transport: {kind: websocket}\nspec_version: '3.0'\n"
    )
    named = {w.split(":")[0] for w in parsed.warnings}
    assert not {"system_packages", "build_commands"} & named  # the build acts on these (or refuses them)
    assert {"trt_llm", "weights",
            "external_data", "resources.instance_type", "runtime.transport", "spec_version"} <= named
    assert all("not acted on" in w for w in parsed.warnings if not w.startswith("base_image"))
    assert "base_image: 'x' is not used: kingpost runs no Docker image" in " ".join(parsed.warnings)


def test_known_keys_at_their_empty_or_default_value_are_silent() -> None:
    parsed = parse_truss_config(
        "system_packages: []\nmodel_cache: []\nbase_image: null\nspec_version: '2.0'\n"
        "model_framework: custom\napply_library_patches: true\nresources:\n  node_count: 1\n"
    )
    assert parsed.warnings == ()


def test_py39_is_deprecated() -> None:
    assert any("py39 is deprecated" in w for w in parse_truss_config("python_version: py39\n").warnings)


def test_weights_and_model_cache_are_exclusive() -> None:
    assert "mutually exclusive" in errors_of("weights: [{source: 'hf://a/b'}]\nmodel_cache: [{repo_id: a}]\n")


def test_find_config_file() -> None:
    assert find_config_file({"config.yaml", "model/model.py"}) == "config.yaml"
    with pytest.raises(InvalidArgument, match="rename it to config.yaml"):
        find_config_file({"config.yml", "model/model.py"})
    with pytest.raises(InvalidArgument, match="no config.yaml"):
        find_config_file({"model/model.py"})


def test_check_layout_needs_the_model_file() -> None:
    check_layout(TrussConfig(), {"config.yaml", "model/model.py"})
    with pytest.raises(InvalidArgument, match="no model/model.py"):
        check_layout(TrussConfig(), {"config.yaml", "model/other.py"})
    custom = parse_truss_config("model_module_dir: src\nmodel_class_filename: m.py\n").config
    with pytest.raises(InvalidArgument, match=r"no src/m.py \(set by model_module_dir"):
        check_layout(custom, {"config.yaml", "model/model.py"})


def test_check_layout_needs_the_requirements_file() -> None:
    config = parse_truss_config("requirements_file: ./requirements.txt\n").config
    check_layout(config, {"model/model.py", "requirements.txt"})
    with pytest.raises(InvalidArgument, match="requirements_file: './requirements.txt' is not in the truss"):
        check_layout(config, {"model/model.py"})


def test_summary_fields() -> None:
    config = parse_truss_config("model_name: m\nruntime:\n  predict_concurrency: 4\n"
                                "resources:\n  accelerator: 'H100:2'\n"
                                "secrets:\n  hf_token: null\n  region: eu\n  empty: ''\n").config
    assert summary_fields(config) == {"model_name": "m", "predict_concurrency": 4, "cpu": "1",
                                      "memory": "2Gi", "accelerator": "H100:2",
                                      # declared, and those without a default (which must be set)
                                      "secrets": ["empty", "hf_token", "region"],
                                      "required_secrets": ["empty", "hf_token"]}


def test_external_package_dirs_must_be_in_the_upload() -> None:
    parsed = parse_truss_config("external_package_dirs: [../lib, inside]\n")
    files = {"config.yaml", "model", "model/model.py", "inside", "inside/mod.py",
             ".kingpost/external_packages/0/pkg.py"}
    check_layout(parsed.config, files)  # ../lib shipped as entry 0, `inside` uploaded in place
    with pytest.raises(InvalidArgument, match="external_package_dirs: '../lib' is not in the upload"):
        check_layout(parsed.config, files - {".kingpost/external_packages/0/pkg.py"})
