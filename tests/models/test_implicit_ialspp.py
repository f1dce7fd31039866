"""ImplicitALS(linear_solver="ialspp"): the fit equals the twin's sweeps, the loss never rises,
threads, save/load, partial_fit and early stopping come from the ImplicitALS plumbing, and the
block size is validated."""

import numpy as np
import pytest

import fastmf
from fastmf import reference


@pytest.fixture(scope="module")
def clicks():
    ds = fastmf.make_ratings(300, 200, 9_000, seed=5)
    u, i, r, _ = ds.to_arrays()
    return fastmf.Ratings.from_arrays(u, i, r, rating_scale=None)


KW = dict(n_factors=10, reg=0.05, alpha=5.0, reg_nu=1.0, reg_alpha0=0.5, linear_solver="ialspp", block_size=4,
          random_state=3)


def test_fit_equals_reference_sweeps(clicks):
    m = fastmf.ImplicitALS(n_epochs=3, dtype="float64", **KW).fit(clicks)
    rng = np.random.default_rng(3)
    X = rng.normal(0.0, 0.01, (clicks.n_users, 10))
    Y = rng.normal(0.0, 0.01, (clicks.n_items, 10))
    csr, csc = clicks.to_csr(), clicks.to_csc()
    opts = dict(reg_nu=1.0, reg_alpha0=0.5, block_size=4)
    for _ in range(3):
        reference.ialspp_half_sweep(csr.indptr, csr.indices, csr.data.astype(float), Y, X, 0.05, 5.0, **opts)
        reference.ialspp_half_sweep(csc.indptr, csc.indices, csc.data.astype(float), X, Y, 0.05, 5.0, **opts)
    np.testing.assert_allclose(m.user_factors_, X, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(m.item_factors_, Y, rtol=1e-9, atol=1e-11)


def test_loss_never_increases_and_approaches_the_exact_sweeps(clicks):
    kw = {**KW, "n_epochs": 8, "dtype": "float64"}
    pp = fastmf.ImplicitALS(**kw).fit(clicks)
    losses = [h["train_loss"] for h in pp.history_]
    assert all(b <= a * (1 + 1e-12) for a, b in zip(losses, losses[1:])), losses
    exact = fastmf.ImplicitALS(**{**kw, "linear_solver": "cholesky"}).fit(clicks)
    # the same objective, minimised by block steps instead of exact row solves: close after 8 sweeps
    assert losses[-1] == pytest.approx(exact.history_[-1]["train_loss"], rel=0.02)


def test_threads_seed_and_save_load(clicks, tmp_path):
    one = fastmf.ImplicitALS(n_epochs=3, n_threads=1, **KW).fit(clicks)
    two = fastmf.ImplicitALS(n_epochs=3, n_threads=2, **KW).fit(clicks)
    np.testing.assert_array_equal(one.user_factors_, two.user_factors_)
    np.testing.assert_array_equal(one.item_factors_, two.item_factors_)
    u0 = clicks.to_arrays()[0][0]
    path = tmp_path / "ialspp.npz"
    two.save(path)
    back = fastmf.load(path)
    assert back.get_params()["linear_solver"] == "ialspp" and back.get_params()["block_size"] == 4
    np.testing.assert_array_equal(back.item_factors_, two.item_factors_)
    np.testing.assert_array_equal(back.recommend(u0, n=5), two.recommend(u0, n=5))


def test_partial_fit_continues_bit_for_bit(clicks):
    whole = fastmf.ImplicitALS(n_epochs=4, **KW).fit(clicks)
    part = fastmf.ImplicitALS(n_epochs=2, **KW).fit(clicks).partial_fit(clicks, 2)
    np.testing.assert_array_equal(part.user_factors_, whole.user_factors_)


def test_early_stopping_keeps_the_best_sweep(clicks):
    train, valid = fastmf.split.user_holdout(clicks, test_size=0.2, random_state=0)
    m = fastmf.ImplicitALS(n_epochs=12, **KW).fit(train, eval_set=valid, early_stopping_rounds=2)
    scores = [h["eval_ndcg@10"] for h in m.history_]
    assert m.best_epoch_ == 1 + int(np.argmax(scores))


@pytest.mark.parametrize("value", [0, 1025, 2.5, "32", None])
def test_bad_block_size_raises(clicks, value):
    with pytest.raises(ValueError, match="block_size must be"):
        fastmf.ImplicitALS(n_epochs=1, linear_solver="ialspp", block_size=value).fit(clicks)


def test_block_size_larger_than_k_is_the_exact_solve(clicks):
    kw = dict(n_factors=6, n_epochs=2, reg=0.5, alpha=5.0, reg_nu=0.0, dtype="float64", random_state=0)
    pp = fastmf.ImplicitALS(linear_solver="ialspp", block_size=64, **kw).fit(clicks)
    exact = fastmf.ImplicitALS(linear_solver="cholesky", **kw).fit(clicks)
    np.testing.assert_allclose(pp.user_factors_, exact.user_factors_, rtol=1e-10, atol=1e-12)
