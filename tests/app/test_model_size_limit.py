"""The command line and the service load model files with a size limit on by default."""

import pytest

import fastmf
from fastmf.app import cli, service
from fastmf.errors import ModelFileError
from fastmf.persistence import DEFAULT_MAX_BYTES


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("limit") / "m.npz"
    fastmf.MatrixFactorization(n_factors=8, n_epochs=2, random_state=0).fit(
        fastmf.make_ratings(50, 40, 600, seed=1)).save(path)
    return str(path)


def test_service_applies_the_default_limit(model_file, monkeypatch):
    seen = {}
    real = fastmf.load
    monkeypatch.setattr(fastmf, "load", lambda path, max_bytes=None: seen.setdefault("limit", max_bytes) and real(path, max_bytes))
    service.load_model(model_file)
    assert seen["limit"] == DEFAULT_MAX_BYTES
    with pytest.raises(ModelFileError, match="above the limit of 100 bytes"):
        service.load_model(model_file, max_bytes=100)
    assert service.load_model(model_file, max_bytes=None).n_factors == 8


def test_cli_max_model_bytes(model_file, capsys):
    assert cli.main(["recommend", model_file, "--user", "1", "--max-model-bytes", "100"]) != 0
    assert "above the limit of 100 bytes" in capsys.readouterr().err
    assert cli.main(["recommend", model_file, "--user", "1", "--max-model-bytes", "0"]) == 0
    with pytest.raises(SystemExit):
        cli.main(["recommend", model_file, "--user", "1", "--max-model-bytes", "-5"])
