"""partial_fit: continuing a fit for more epochs gives bit for bit the model of one straight fit."""

import numpy as np
import pytest

import fastmf

MF_STATE = ("user_factors_", "item_factors_", "user_bias_", "item_bias_", "user_engagement_", "item_engagement_")


@pytest.fixture(scope="module")
def ds():
    return fastmf.make_ratings(300, 200, 20000, seed=1)


def assert_same(a, b, names):
    for name in names:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert np.array_equal(x, y), name


def history_without_time(model):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in model.history_]


@pytest.mark.parametrize("params", [
    {}, {"n_threads": 2}, {"schedule": "shuffle", "n_threads": 1}, {"schedule": "blocked", "shuffle": False},
    {"biased": False}, {"dtype": "float64", "n_factors": 16}, {"n_factors": 20},
    {"solver": "als", "n_factors": 24}, {"solver": "als", "linear_solver": "cg", "n_factors": 24}, {"ranking": "rating"},
])
def test_mf_continued_fit_is_the_straight_fit(ds, params):
    straight = fastmf.MatrixFactorization(n_epochs=7, random_state=3, **params).fit(ds)
    model = fastmf.MatrixFactorization(n_epochs=3, random_state=3, **params).fit(ds)
    model.partial_fit(ds, 1).partial_fit(ds, 3)
    names = MF_STATE if straight.ranking == "engagement" else MF_STATE[:4]
    assert_same(straight, model, names)
    assert history_without_time(model) == history_without_time(straight)
    assert [h["epoch"] for h in model.history_] == list(range(1, 8))
    assert model.best_epoch_ == 7
    np.testing.assert_array_equal(model.predict([1, 2, 3], [4, 5, 6]), straight.predict([1, 2, 3], [4, 5, 6]))


def test_partial_fit_of_an_unfitted_model_is_fit(ds):
    straight = fastmf.MatrixFactorization(n_epochs=4, random_state=5).fit(ds)
    model = fastmf.MatrixFactorization(n_epochs=99, random_state=5).partial_fit(ds, 4)
    assert_same(straight, model, MF_STATE)
    assert model.n_epochs == 99  # the parameter is not touched


def test_partial_fit_zero_epochs_changes_nothing(ds):
    model = fastmf.MatrixFactorization(n_epochs=3, random_state=0).fit(ds)
    before = model.user_factors_.copy()
    model.partial_fit(ds, 0)
    assert np.array_equal(model.user_factors_, before) and len(model.history_) == 3


def test_partial_fit_with_a_copy_of_the_data(ds):
    u, i, r, t = ds.to_arrays()
    copy = fastmf.Ratings.from_arrays(u, i, r, timestamps=t)
    straight = fastmf.MatrixFactorization(n_epochs=5, random_state=1).fit(ds)
    model = fastmf.MatrixFactorization(n_epochs=2, random_state=1).fit(ds).partial_fit(copy, 3)
    assert_same(straight, model, MF_STATE[:4])


def test_partial_fit_after_save_and_load(ds, tmp_path):
    straight = fastmf.MatrixFactorization(n_epochs=6, random_state=2).fit(ds)
    model = fastmf.MatrixFactorization(n_epochs=2, random_state=2).fit(ds)
    loaded = fastmf.load(model.save(tmp_path / "m.npz"))
    loaded.partial_fit(ds, 4)
    assert_same(straight, loaded, MF_STATE)


def test_partial_fit_continues_from_the_best_epoch_after_early_stopping(ds):
    train, valid = fastmf.split.random_split(ds, test_size=0.2, random_state=0)
    # a large learning rate overfits quickly, so early stopping keeps an earlier epoch
    params = dict(random_state=4, lr=0.05, reg=0.0, reg_bias=0.0, n_factors=30, ranking="rating")
    stopped = fastmf.MatrixFactorization(n_epochs=60, **params).fit(
        train, eval_set=valid, early_stopping_rounds=2)
    best = stopped.best_epoch_
    assert best < len(stopped.history_)
    stopped.partial_fit(train, 2)
    straight = fastmf.MatrixFactorization(n_epochs=best + 2, **params).fit(train)
    assert_same(straight, stopped, MF_STATE[:4])
    assert [h["epoch"] for h in stopped.history_] == list(range(1, best + 3))


def test_partial_fit_with_an_eval_set_records_it(ds):
    train, valid = fastmf.split.random_split(ds, test_size=0.2, random_state=0)
    model = fastmf.MatrixFactorization(n_epochs=2, random_state=0).fit(train)
    model.partial_fit(train, 2, eval_set=valid, eval_metrics=("rmse",))
    assert "eval_rmse" not in model.history_[1] and "eval_rmse" in model.history_[3]
    assert model.history_[3]["eval_rmse"] == pytest.approx(fastmf.evaluate(model, valid)["rmse"], rel=1e-6)


def test_partial_fit_refuses_other_data(ds):
    model = fastmf.MatrixFactorization(n_epochs=2, random_state=0).fit(ds)
    other = fastmf.make_ratings(300, 200, 20000, seed=2)
    with pytest.raises(ValueError, match="partial_fit"):
        model.partial_fit(other, 1)
    sub = ds.subset(np.arange(len(ds) - 10))
    with pytest.raises(ValueError, match="other ratings"):
        model.partial_fit(sub, 1)


def test_partial_fit_refuses_structural_changes(ds):
    model = fastmf.MatrixFactorization(n_epochs=2, random_state=0, n_factors=8).fit(ds)
    model.set_params(n_factors=9)
    with pytest.raises(ValueError, match="n_factors is 9"):
        model.partial_fit(ds, 1)
    model.set_params(n_factors=8, dtype="float64")
    with pytest.raises(ValueError, match="dtype"):
        model.partial_fit(ds, 1)
    model.set_params(dtype="float32", biased=False)
    with pytest.raises(ValueError, match="biased"):
        model.partial_fit(ds, 1)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", None])
def test_partial_fit_checks_n_epochs(ds, bad):
    with pytest.raises(ValueError, match="n_epochs"):
        fastmf.MatrixFactorization().partial_fit(ds, bad)
    with pytest.raises(ValueError, match="n_epochs"):
        fastmf.ImplicitALS().partial_fit(ds, bad)


def test_sgd_continuation_of_hand_set_factors_copies_them_into_the_kernel_layout(ds):
    """Factors set by hand (C-contiguous, k not a multiple of the vector width) are copied into
    aligned buffers before the kernel runs over the padded width."""
    a = fastmf.MatrixFactorization(n_epochs=2, random_state=0, n_factors=10).fit(ds)
    b = fastmf.MatrixFactorization(n_epochs=2, random_state=0, n_factors=10).fit(ds)
    b.user_factors_ = np.ascontiguousarray(b.user_factors_)
    b.item_factors_ = np.ascontiguousarray(b.item_factors_)
    a.partial_fit(ds, 2)
    b.partial_fit(ds, 2)
    assert_same(a, b, MF_STATE[:4])


@pytest.mark.parametrize("params", [{}, {"linear_solver": "cholesky"}, {"calculate_loss": False}])
def test_ials_continued_fit_is_the_straight_fit(ds, params):
    straight = fastmf.ImplicitALS(n_epochs=5, random_state=3, **params).fit(ds)
    model = fastmf.ImplicitALS(n_epochs=2, random_state=3, **params).fit(ds).partial_fit(ds, 3)
    assert_same(straight, model, ("user_factors_", "item_factors_"))
    assert history_without_time(model) == history_without_time(straight)
    unfitted = fastmf.ImplicitALS(random_state=3, **params).partial_fit(ds, 5)
    assert_same(straight, unfitted, ("user_factors_", "item_factors_"))


def test_run_epochs_checks_start_epoch(ds):
    from fastmf.training import run_epochs

    model = fastmf.MatrixFactorization(n_epochs=2, random_state=0).fit(ds)
    with pytest.raises(ValueError, match="history_ holds 2"):
        run_epochs(model, lambda n: {}, 1, (), start_epoch=5)
    with pytest.raises(ValueError, match="start_epoch"):
        run_epochs(model, lambda n: {}, 1, (), start_epoch=0)


def test_ratings_cached_builds_once(ds):
    calls = []
    sub = ds.subset(np.arange(100))
    assert sub.cached("k", lambda: calls.append(1) or 7) == 7
    assert sub.cached("k", lambda: calls.append(1) or 8) == 7
    assert calls == [1]


def test_partial_fit_keeps_the_blocked_layout_with_the_data_and_fit_does_not(ds):
    train = ds.subset(np.arange(len(ds)))
    fastmf.MatrixFactorization(n_epochs=1, random_state=0).fit(train)
    assert not any(isinstance(k, tuple) and k[0] == "fastmf.sgd.blocked" for k in train._cache)
    fastmf.MatrixFactorization(random_state=0).partial_fit(train, 1)
    keys = [k for k in train._cache if isinstance(k, tuple) and k[0] == "fastmf.sgd.blocked"]
    assert len(keys) == 1
    users, items, ratings, plan = train._cache[keys[0]]
    assert len(users) == len(train) and sorted(zip(users, items)) == sorted(zip(train.user_index, train.item_index))
