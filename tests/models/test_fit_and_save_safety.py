"""A failed fit leaves the estimator as it was, save refuses a model that would not load, stale
temporary files of an interrupted save are cleaned up by the next save of that path."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import fastmf
from fastmf.errors import DivergenceError, ModelFileError


@pytest.fixture(scope="module")
def data():
    return fastmf.make_ratings(50, 40, 700, seed=2)


def _state(model):
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(model).items()}


def _same(model, before):
    return set(vars(model)) == set(before) and all(
        np.array_equal(v, before[k]) if isinstance(v, np.ndarray) else (v is before[k] or v == before[k])
        for k, v in vars(model).items())


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("solver", ["sgd", "als"])
def test_a_diverged_fit_keeps_the_previous_fit(data, solver):
    model = fastmf.MatrixFactorization(n_factors=4, n_epochs=3, solver=solver, random_state=0).fit(data)
    before = _state(model)
    model.set_params(lr=1e6, reg=0.0, reg_bias=0.0, init_std=1e3) if solver == "sgd" else \
        model.set_params(reg=0.0, reg_bias=0.0, init_std=1e300)
    with pytest.raises((DivergenceError, ValueError, OverflowError)):
        model.fit(data)
    model.set_params(**{k: before.get(k, v) for k, v in model.get_params().items()})
    assert _same(model, {**before})
    assert np.all(np.isfinite(model.predict(data.user_map.ids[:5], data.item_map.ids[:5])))


def test_a_failed_first_fit_leaves_the_model_unfitted(data):
    model = fastmf.ImplicitALS(n_factors=4, n_epochs=2)
    bad = fastmf.Ratings.from_arrays([1, 2], [1, 2], [1.0, -1.0])
    with pytest.raises(ValueError, match="interaction strengths must be >= 0"):
        model.fit(bad)
    assert not hasattr(model, "user_map_") and not hasattr(model, "user_factors_")
    with pytest.raises(fastmf.NotFittedError):
        model.save("never.npz")


@pytest.mark.parametrize("attr,value,match", [
    ("user_factors_", None, "user_factors_ is None"),
    ("item_factors_", np.float32(3.0), "item_factors_ must be a NumPy array"),
    ("global_mean_", float("nan"), "global_mean_ must be a finite number"),
    ("best_epoch_", 2**31, r"best_epoch_ = 2147483648 is outside \[0, 3\]"),
    ("user_bias_", None, "user_bias_ is None, but a MatrixFactorization with biased=True has it"),
])
def test_save_refuses_a_model_that_would_not_load(tmp_path, data, attr, value, match):
    model = fastmf.MatrixFactorization(n_factors=4, n_epochs=3, random_state=0).fit(data)
    setattr(model, attr, value)
    with pytest.raises(ValueError, match=match):
        model.save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_save_refuses_non_finite_factors(tmp_path, data):
    model = fastmf.ImplicitALS(n_factors=4, n_epochs=2, random_state=0).fit(data)
    model.item_factors_[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"item_factors_\[3, 1\] = nan is not finite"):
        model.save(tmp_path / "m.npz")


def test_a_file_with_an_unusable_thread_count_loads_with_none(tmp_path, data):
    import json
    import zipfile

    from fastmf import persistence

    path = fastmf.ImplicitALS(n_factors=4, n_epochs=2, random_state=0).fit(data).save(tmp_path / "m.npz")
    with zipfile.ZipFile(path) as zf:
        members = {i.filename[:-4]: np.lib.format.read_array(zf.open(i)) for i in zf.infolist()}
    manifest = json.loads(str(members.pop(persistence.MANIFEST)[()]))
    manifest["params"]["n_threads"] = 65536
    with open(tmp_path / "t.npz", "wb") as fh:
        persistence._write_npz(fh, {persistence.MANIFEST: np.array(json.dumps(manifest)), **members})
    model = fastmf.load(tmp_path / "t.npz")
    assert model.n_threads is None
    assert np.all(np.isfinite(model.recommend(data.user_map.ids[0], n=3)[1]))


def test_stale_temporaries_of_a_killed_save_are_removed_by_the_next_save(tmp_path, data):
    model = fastmf.Biases().fit(data)
    target = tmp_path / "m.npz"
    # a save killed with SIGKILL in the middle of writing its temporary file
    child = subprocess.Popen([sys.executable, "-c", "import time, os, sys; "
                              "open(sys.argv[1], 'wb').write(b'x' * 100); time.sleep(60)",
                              str(tmp_path / ".m.npz.PID-0123456789ab.tmp")])
    time.sleep(0.5)
    stale = tmp_path / f".m.npz.{child.pid}-0123456789ab.tmp"
    os.rename(tmp_path / ".m.npz.PID-0123456789ab.tmp", stale)
    running = tmp_path / f".m.npz.{os.getppid()}-00000000abcd.tmp"  # a live process's save: kept
    running.write_bytes(b"y")
    old_style = tmp_path / ".m.npz.0123456789ab.tmp"  # no pid, an hour old: stale
    old_style.write_bytes(b"z")
    os.utime(old_style, (time.time() - 7200, time.time() - 7200))
    other = tmp_path / ".other.npz.0123456789ab.tmp"  # another file's: never touched
    other.write_bytes(b"w")
    child.send_signal(signal.SIGKILL)
    child.wait()
    model.save(target)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["m.npz", running.name, other.name])
    assert fastmf.load(target).n_users_ == model.n_users_
