"""ImplicitALS against the reference iALS sweeps, its contract, and ranking quality on real data."""

import numpy as np
import pytest

import fastmf
from fastmf import reference


@pytest.fixture(scope="module")
def clicks():
    ds = fastmf.make_ratings(300, 200, 9_000, seed=5)
    # interaction strengths: counts 1..5 derived from the synthetic ratings
    u, i, r, _ = ds.to_arrays()
    counts = r  # ratings 1..5 read as interaction counts
    return fastmf.Ratings.from_arrays(u, i, counts, rating_scale=None)


def reference_fit(ds, kw, n):
    rng = np.random.default_rng(kw["random_state"])
    k = kw["n_factors"]
    X = rng.normal(0.0, 0.01, (ds.n_users, k))
    Y = rng.normal(0.0, 0.01, (ds.n_items, k))
    csr, csc = ds.to_csr(), ds.to_csc()
    extra = dict(reg_nu=kw.get("reg_nu", 0.0), reg_alpha0=kw.get("reg_alpha0", 1.0))
    for _ in range(n):
        reference.ials_half_sweep(csr.indptr, csr.indices, csr.data.astype(float), Y, X, kw["reg"],
                                  kw["alpha"], kw.get("scaling", "linear"), **extra)
        reference.ials_half_sweep(csc.indptr, csc.indices, csc.data.astype(float), X, Y, kw["reg"],
                                  kw["alpha"], kw.get("scaling", "linear"), **extra)
    return X, Y


@pytest.mark.parametrize("scaling, reg_nu", [("linear", 0.0), ("log", 0.0), ("linear", 0.5)])
def test_cholesky_fit_equals_reference(clicks, scaling, reg_nu):
    kw = dict(n_factors=6, reg=0.5, alpha=5.0, scaling=scaling, reg_nu=reg_nu, random_state=1)
    m = fastmf.ImplicitALS(n_epochs=3, linear_solver="cholesky", dtype="float64", **kw).fit(clicks)
    X, Y = reference_fit(clicks, kw, 3)
    np.testing.assert_allclose(m.user_factors_, X, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(m.item_factors_, Y, rtol=1e-8, atol=1e-10)


def test_loss_never_increases_and_matches_reference(clicks):
    m = fastmf.ImplicitALS(n_factors=6, n_epochs=6, reg=0.5, alpha=5.0, reg_nu=0.0, linear_solver="cholesky",
                           dtype="float64", random_state=0).fit(clicks)  # train_loss recorded by default
    assert [h["epoch"] for h in m.history_] == list(range(1, 7)) and m.best_epoch_ == 6
    losses = [h["train_loss"] for h in m.history_]
    assert all(b <= a * (1 + 1e-12) for a, b in zip(losses, losses[1:]))
    csr = clicks.to_csr()
    dense = reference.ials_objective(csr.indptr, csr.indices, csr.data.astype(float), m.user_factors_,
                                     m.item_factors_, 0.5, 5.0)
    assert losses[-1] == pytest.approx(dense, rel=1e-9)


def test_cg_approaches_cholesky_and_threads_are_exact(clicks):
    kw = dict(n_factors=8, n_epochs=4, reg=0.5, alpha=5.0, reg_nu=0.0, dtype="float64",
              random_state=0)
    exact = fastmf.ImplicitALS(linear_solver="cholesky", **kw).fit(clicks)
    gaps = [np.abs(fastmf.ImplicitALS(linear_solver="cg", cg_steps=s, **kw).fit(clicks).user_factors_
                   - exact.user_factors_).max() for s in (1, 3, 16)]
    assert gaps[2] < 1e-5 and gaps[2] < gaps[1] < gaps[0]
    one = fastmf.ImplicitALS(n_threads=1, **kw).fit(clicks)
    two = fastmf.ImplicitALS(n_threads=2, **kw).fit(clicks)
    np.testing.assert_array_equal(one.item_factors_, two.item_factors_)
    again = fastmf.ImplicitALS(n_threads=2, **kw).fit(clicks)
    np.testing.assert_array_equal(two.user_factors_, again.user_factors_)


def test_scores_recommend_and_fold_in(clicks):
    m = fastmf.ImplicitALS(n_factors=8, n_epochs=5, reg=0.5, alpha=5.0, reg_nu=0.0, dtype="float64",
                           random_state=0).fit(clicks)
    assert not m.predicts_ratings
    u, i = clicks.user_map.ids[3], clicks.item_map.ids[4]
    assert m.predict(u, i) == pytest.approx(float(m.user_factors_[3] @ m.item_factors_[4]))
    assert m.predict(-1, i, unknown="fallback") == 0.0
    ids, scores = m.recommend(u, n=10)
    csr = clicks.to_csr()
    seen = set(clicks.item_map.ids[csr.indices[csr.indptr[3]:csr.indptr[4]]].tolist())
    assert not seen & set(ids.tolist()) and np.all(np.diff(scores) <= 0)
    # fold-in of a training user's own interactions = the next exact user half-sweep
    X = m.user_factors_.copy()
    reference.ials_half_sweep(csr.indptr, csr.indices, csr.data.astype(float), m.item_factors_, X,
                              0.5, 5.0)
    sl = slice(csr.indptr[3], csr.indptr[4])
    np.testing.assert_allclose(m.fold_in(clicks.item_map.ids[csr.indices[sl]], csr.data[sl]), X[3],
                               rtol=1e-8, atol=1e-11)
    new_ids, _ = m.recommend_new(clicks.item_map.ids[csr.indices[sl]], csr.data[sl], n=10)
    assert not seen & set(new_ids.tolist())
    with pytest.warns(fastmf.EvaluationWarning, match="training data"):  # clicks are its training data
        evaluated = fastmf.evaluate(m, clicks, k=5)
    assert "rmse" not in evaluated and 0 <= evaluated["ndcg@5"] <= 1


def test_eval_set_history_and_early_stopping(clicks):
    train, val = fastmf.split.random_split(clicks, test_size=0.2, random_state=1)
    kw = dict(n_factors=8, reg=0.5, alpha=5.0, reg_nu=0.0, dtype="float64", random_state=0)
    m = fastmf.ImplicitALS(n_epochs=6, **kw).fit(train, eval_set=val, eval_k=5)
    assert len(m.history_) == 6
    for entry in m.history_:
        assert {"epoch", "train_loss", "eval_ndcg@5", "eval_precision@5", "eval_recall@5", "seconds"} == set(entry)
    # the last entry's eval metrics are fastmf.evaluate of the fitted model, exactly
    final = fastmf.evaluate(m, val, k=5)
    for name in ("ndcg@5", "precision@5", "recall@5"):
        assert m.history_[-1][f"eval_{name}"] == final[name]
    # early stopping keeps the factors of the best sweep: the same as a fit stopped there
    stopped = fastmf.ImplicitALS(n_epochs=40, **kw).fit(train, eval_set=val, eval_k=5,
                                                           early_stopping_rounds=1)
    ndcg = [h["eval_ndcg@5"] for h in stopped.history_]
    assert len(ndcg) < 40 and stopped.best_epoch_ == 1 + int(np.argmax(ndcg))
    assert ndcg[-1] <= max(ndcg)  # it stopped after one sweep without improvement
    again = fastmf.ImplicitALS(n_epochs=stopped.best_epoch_, **kw).fit(train)
    np.testing.assert_array_equal(stopped.user_factors_, again.user_factors_)
    np.testing.assert_array_equal(stopped.item_factors_, again.item_factors_)
    assert fastmf.evaluate(stopped, val, k=5)["ndcg@5"] == max(ndcg)
    with pytest.raises(ValueError, match="early_stopping_rounds needs an eval_set"):
        fastmf.ImplicitALS(n_epochs=2).fit(train, early_stopping_rounds=2)
    with pytest.raises(ValueError, match="eval_k must be a positive int"):
        fastmf.ImplicitALS(n_epochs=2).fit(train, eval_set=val, eval_k=0)
    with pytest.raises(ValueError, match="progress must be True, False or 'auto'"):
        fastmf.ImplicitALS(n_epochs=2).fit(train, progress="yes")


def test_progress_bar_and_history_frame(clicks, capsys):
    m = fastmf.ImplicitALS(n_factors=4, n_epochs=3, random_state=0)
    m.fit(clicks)  # default: silent
    assert capsys.readouterr().err == ""
    m.fit(clicks, progress="auto")  # stderr is not a terminal here
    assert capsys.readouterr().err == ""
    m.fit(clicks, progress=True)
    err = capsys.readouterr().err
    assert "epoch 3/3 |" in err and "train_loss=" in err
    pd = pytest.importorskip("pandas")
    frame = m.history_frame()
    assert isinstance(frame, pd.DataFrame) and list(frame.index) == [1, 2, 3]
    assert frame["train_loss"].tolist() == [h["train_loss"] for h in m.history_]


def test_scipy_sparse_input(clicks):
    sp = pytest.importorskip("scipy.sparse")
    mat = clicks.to_csr(scipy=True)
    a = fastmf.ImplicitALS(n_factors=4, n_epochs=2, random_state=0).fit(mat)
    b = fastmf.ImplicitALS(n_factors=4, n_epochs=2, random_state=0).fit(
        fastmf.Ratings.from_scipy(sp.csr_matrix(mat)))
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    assert a.n_users_ == clicks.n_users


@pytest.mark.parametrize("param, value, message", [
    ("n_factors", 0, "n_factors must be"), ("alpha", -1.0, "alpha must be"),
    ("scaling", "sqrt", "scaling must be one of 'linear', 'log'"), ("linear_solver", "lu", "linear_solver must be"),
    ("cg_steps", 0, "cg_steps must be"), ("eps", 0.0, "eps must be"), ("reg", -1.0, "reg must be"),
])
def test_bad_parameters(clicks, param, value, message):
    with pytest.raises(ValueError, match=message):
        fastmf.ImplicitALS(**{param: value}).fit(clicks)


def test_negative_strengths_rejected():
    ds = fastmf.Ratings.from_arrays([1, 2], [1, 1], [1.0, -2.0], rating_scale=None)
    with pytest.raises(ValueError, match="must be >= 0"):
        fastmf.ImplicitALS().fit(ds)


def test_save_load_roundtrip(clicks, tmp_path):
    m = fastmf.ImplicitALS(n_factors=4, n_epochs=2, random_state=0).fit(clicks)
    m.save(tmp_path / "ials.npz")
    m2 = fastmf.load(tmp_path / "ials.npz")
    np.testing.assert_array_equal(m.recommend(clicks.user_map.ids[:5], n=5)[0],
                                  m2.recommend(clicks.user_map.ids[:5], n=5)[0])


# ------------------------------------------------------------------------------------ real data
@pytest.mark.data
@pytest.mark.parametrize("name", ["ml-100k", "ml-latest-small"])
def test_ials_beats_popularity(name):
    from conftest import need_data

    ds = fastmf.load_movielens(name, path=need_data(name), download=False)
    train, test = fastmf.split.user_holdout(ds, test_size=0.2, random_state=0)
    ials = fastmf.evaluate(fastmf.ImplicitALS(random_state=0).fit(train), test, k=10)
    pop = fastmf.evaluate(fastmf.Popularity().fit(train), test, k=10)
    for metric in ("precision@10", "recall@10", "ndcg@10"):
        assert ials[metric] > pop[metric], (metric, ials[metric], pop[metric])
