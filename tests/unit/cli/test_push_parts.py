"""The pure parts of a push and a predict: names, upload chunks, URLs, curl, targets."""

import json
import shlex
from pathlib import Path

import pytest

from kingpost.cli.predict_command import read_body, target_request
from kingpost.errors import InvalidArgument
from kingpost.push import curl_command, predict_path, read_truss, upload_requests
from kingpost.v1 import management_pb2


def truss(tmp_path: Path, config: str) -> Path:
    d = tmp_path / "my-truss"
    (d / "model").mkdir(parents=True)
    (d / "config.yaml").write_text(config)
    return d


def test_model_name_flag_then_config_then_directory(tmp_path):
    d = truss(tmp_path, "model_name: from-config\nmodel_metadata:\n  example_model_input: {text: hi}\n")
    assert read_truss(d).model_name == "from-config"
    assert read_truss(d, "from-flag").model_name == "from-flag"
    assert read_truss(d).example_input == {"text": "hi"}
    (d / "config.yaml").write_text("resources: {cpu: '1'}\n")
    assert read_truss(d).model_name == "my-truss"
    assert read_truss(d).example_input == {}


def test_invalid_config_yaml_is_named(tmp_path):
    d = truss(tmp_path, "model_name: [unclosed\n")
    with pytest.raises(InvalidArgument, match="config.yaml is not valid YAML"):
        read_truss(d)


def test_upload_is_a_header_then_chunks_that_rebuild_the_archive():
    archive = bytes(range(256)) * 10  # 2560 bytes
    requests = list(upload_requests(archive, chunk_bytes=1000))
    assert requests[0].header.size_bytes == 2560
    chunks = [r.chunk for r in requests[1:]]
    assert [len(c) for c in chunks] == [1000, 1000, 560]
    assert b"".join(chunks) == archive


def test_predict_paths_follow_basetens():
    dev = management_pb2.Deployment(id="dep_1", model_id="mdl_1", is_development=True)
    prod = management_pb2.Deployment(id="dep_2", model_id="mdl_1", is_production=True, environment="production")
    staging = management_pb2.Deployment(id="dep_3", model_id="mdl_1", environment="staging")
    plain = management_pb2.Deployment(id="dep_4", model_id="mdl_1")
    assert predict_path(dev) == "/models/mdl_1/development/predict"
    assert predict_path(prod) == "/models/mdl_1/production/predict"
    assert predict_path(staging) == "/models/mdl_1/environments/staging/predict"
    assert predict_path(plain) == "/models/mdl_1/deployment/dep_4/predict"


def test_curl_line_pastes_into_a_shell():
    line = curl_command("http://127.0.0.1:8080/models/m/development/predict", "kp_a_b", {"text": "it's"})
    argv = shlex.split(line)
    assert argv[:3] == ["curl", "-H", "Authorization: Api-Key kp_a_b"]
    assert json.loads(argv[argv.index("-d") + 1]) == {"text": "it's"}
    assert argv[-1] == "http://127.0.0.1:8080/models/m/development/predict"


def test_predict_target_defaults_to_development_when_the_model_has_one():
    kw = {"environment": "", "deployment": "", "development": False}
    assert target_request("m", **kw, has_development=True).target == "development"
    assert target_request("m", **kw, has_development=False).target == "production"
    assert target_request("m", environment="staging", deployment="", development=False,
                          has_development=True).environment == "staging"
    assert target_request("m", environment="", deployment="dep_1", development=False,
                          has_development=True).deployment_id == "dep_1"


def test_predict_body_from_data_or_file(tmp_path):
    assert read_body('{"a": 1}', None) == (b'{"a": 1}', "application/json")
    binary = tmp_path / "in.msgpack"
    binary.write_bytes(b"\x81\xa1a\x01\xff")
    assert read_body(None, binary) == (b"\x81\xa1a\x01\xff", "application/octet-stream")
    with pytest.raises(InvalidArgument, match="not both"):
        read_body("{}", binary)
