"""fastmf tune / fastmf compare, in process (main(argv)), checked against the library."""

import json

import numpy as np
import pytest

import fastmf
from fastmf.app import cli, service


@pytest.fixture(scope="module")
def ratings_csv(tmp_path_factory):
    ds = fastmf.make_ratings(150, 120, 6000, seed=4)
    u, i, r, _ = ds.to_arrays()
    path = tmp_path_factory.mktemp("tune") / "ratings.csv"
    with open(path, "w") as f:
        f.write("user,item,rating\n")
        for a, b, c in zip(u, i, r):
            f.write(f"{a},{b},{c}\n")
    return str(path)


def test_tune_json_matches_the_service(ratings_csv, capsys):
    assert cli.main(["tune", ratings_csv, "--model", "biases", "--budget", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    ds = service.load_data(ratings_csv)
    direct = service.tune_model(ds, "biases", budget=4)
    assert out["best_params"] == direct["search"].best_params_
    assert out["test_metrics"]["rmse"] == pytest.approx(direct["test_metrics"]["rmse"])
    assert out["n_train"] + out["n_test"] == len(ds) and len(out["trials"]) == 4
    assert out["validation"].startswith("random 0.1")


def test_tune_report_and_save(ratings_csv, capsys, tmp_path):
    path = tmp_path / "best.npz"
    assert cli.main(["tune", ratings_csv, "--model", "mf", "--budget", "4", "--max-epochs", "6",
                     "--metric", "rmse", "--save", str(path)]) == 0
    text = capsys.readouterr().out
    assert "rungs:" in text and "best:" in text and "test metrics" in text and "search time" in text
    loaded = fastmf.load(str(path))
    assert isinstance(loaded, fastmf.MatrixFactorization)


def test_tune_temporal_split_validates_on_the_latest(tmp_path, capsys):
    ds = fastmf.make_ratings(100, 80, 3000, seed=1)
    u, i, r, _ = ds.to_arrays()
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating,timestamp\n" + "".join(
        f"{a},{b},{c},{t}\n" for t, (a, b, c) in enumerate(zip(u, i, r))))
    assert cli.main(["tune", str(path), "--model", "biases", "--budget", "2", "--split", "temporal", "--json"]) == 0
    assert "temporal" in json.loads(capsys.readouterr().out)["validation"]


def test_tune_bad_options_are_one_line_errors(ratings_csv, capsys):
    assert cli.main(["tune", ratings_csv, "--model", "ials", "--metric", "rmse"]) == 2
    assert "--metric rmse" in capsys.readouterr().err
    assert cli.main(["tune", ratings_csv, "--model", "nope"]) == 2
    assert cli.main(["tune", ratings_csv, "--model", "biases", "--validation", "1.5"]) == 2
    assert "--validation" in capsys.readouterr().err


def test_compare_json_and_table(ratings_csv, capsys):
    assert cli.main(["compare", ratings_csv, "--models", "biases,popularity", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in out["rows"]] == ["biases", "popularity"]
    ds = service.load_data(ratings_csv)
    train, test, _ = service.split_data(ds, "random", None, 0)
    assert out["rows"][0]["rmse"] == pytest.approx(fastmf.evaluate(fastmf.Biases().fit(train), test)["rmse"])
    assert out["rows"][1]["rmse"] is None
    assert cli.main(["compare", ratings_csv, "--models", "biases,globalmean"]) == 0
    text = capsys.readouterr().out
    assert "biases" in text and "globalmean" in text and "machine:" in text


def test_compare_with_tuning(ratings_csv, capsys):
    assert cli.main(["compare", ratings_csv, "--models", "biases", "--tune", "3"]) == 0
    assert "tuned biases: reg_user=" in capsys.readouterr().out


def test_compare_unknown_model(ratings_csv, capsys):
    assert cli.main(["compare", ratings_csv, "--models", "biases,nope"]) == 2
    assert "nope" in capsys.readouterr().err
