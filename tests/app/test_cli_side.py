"""Side features through the service layer and the command line (issue 16): ``fastmf train
--item-features / --user-features``, the item-cold and user-cold splits, ``fastmf similar
--features`` (a new item given only its features) and ``fastmf recommend --new-items``. Outputs
are checked against the same computation done with the library."""

import json
import subprocess
import sys

import numpy as np
import pytest

import fastmf
from fastmf.app import service
from fastmf.errors import CapabilityError, OptionError

from conftest import need_data  # noqa: F401 (the fixtures below use it through ml100k_dir)


def run(*args):
    return subprocess.run([sys.executable, "-m", "fastmf", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_train_item_cold_with_features_then_query_new_items(ml100k_dir, tmp_path):
    path = tmp_path / "m.npz"
    out = run("train", ml100k_dir, "--split", "item-cold", "--item-features", "genres,year", "--epochs", "8",
              "--factors", "10", "--save", path, "--no-refit", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    metrics = report["metrics"]
    assert metrics["n_warm"] == 0 and metrics["n_cold_items"] == report["split"]["n_test"]
    model = fastmf.load(path)
    assert model.item_side_names_[0] == "genre=Action" and model.n_items_ == 1682
    # the metrics are the library's on the same split
    ds = fastmf.load_movielens("ml-100k", path=ml100k_dir, download=False)
    _, test = fastmf.split.item_cold_split(ds, 0.2, random_state=0)
    assert metrics["rmse_cold_items"] == pytest.approx(fastmf.evaluate(model, test, cold_warm=True)["rmse_cold_items"])
    # a new item given only its features
    out = run("similar", path, "--features", "genre=Action,genre=War:2", "-n", "4", "--json")
    assert out.returncode == 0, out.stderr
    row = np.zeros(len(model.item_side_names_))
    row[model.item_side_names_.index("genre=Action")] = 1
    row[model.item_side_names_.index("genre=War")] = 2
    ids, _ = model.similar_to_features(row, n=4)
    assert [r["item"] for r in json.loads(out.stdout)["items"]] == ids.tolist()
    # recommendations among the items without ratings
    out = run("recommend", path, "--user", "1", "--new-items", "-n", "3", "--json")
    assert out.returncode == 0, out.stderr
    cold = model.item_map_.ids[model.item_counts_ == 0]
    ids, _ = model.recommend(1, n=3, items=cold)
    assert [r["item"] for r in json.loads(out.stdout)["items"]] == ids.tolist()
    bad = run("similar", path, "--features", "genre=Nope")
    assert bad.returncode != 0 and "unknown feature 'genre=Nope'" in bad.stderr


def test_service_errors(ml100k_dir):
    ds = fastmf.load_movielens("ml-100k", path=ml100k_dir, download=False)
    with pytest.raises(CapabilityError, match="takes no side features"):
        service.side_features(fastmf.Popularity(), ds, item="genres")
    with pytest.raises(OptionError, match="unknown feature set 'colour'"):
        service.side_features(fastmf.MatrixFactorization(), ds, item="colour")
    assert service.side_features(fastmf.MatrixFactorization(), ds) == {}
    model = fastmf.MatrixFactorization(n_factors=4, n_epochs=3, random_state=0).fit(ds)
    with pytest.raises(CapabilityError, match="without item features"):
        service.similar_to_features(model, "genre=Action")
    train, test, text = service.split_data(ds, "user-cold", 0.2, seed=1)
    assert text == "user-cold, test size 0.2, seed 1"
    assert not set(np.unique(train.user_index)) & set(np.unique(test.user_index))
    fitted = service.fit_model(fastmf.MatrixFactorization(n_factors=4, n_epochs=3, random_state=0), train,
                               features=service.side_features(model, ds, user="age,gender,occupation"))
    assert fitted.user_side_map_.shape == (7 + 2 + 21 + 1, 4 + 1 + 32)
