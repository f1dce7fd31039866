"""fastmf.SVDpp: the fit replayed with the NumPy twins, both schedules, implicit=, fold-in, files."""

import os

import numpy as np
import pytest
import scipy.sparse as sp

import fastmf
from fastmf import reference as ref
from fastmf.models.bags import bag_weights, implicit_bags
from fastmf.models.svdpp import _delayed_decay, _delayed_gain


@pytest.fixture(scope="module")
def data():
    return fastmf.make_ratings(60, 40, 900, seed=3)


def replay(model, train, n_epochs, bag):
    """The fit of ``model`` (already fitted with ``n_epochs``) recomputed with fastmf.reference."""
    from fastmf import _sgd
    from fastmf.models.mf import blocked_layout, default_n_blocks

    rng = np.random.default_rng(model.random_state)
    k, dt = model.n_factors, np.dtype(model.dtype)
    P = rng.normal(0, model.init_std, (train.n_users, k)).astype(dt)
    Q = rng.normal(0, model.init_std, (train.n_items, k)).astype(dt)
    Y = rng.normal(0, model.init_std, (train.n_items, k)).astype(dt)
    bu, bi = np.zeros(train.n_users, dt), np.zeros(train.n_items, dt)
    seed = int(rng.integers(0, 2**63 - 1))
    assert seed == model.seed_
    csr = train.to_csr()
    users = np.repeat(np.arange(train.n_users, dtype=np.int32), np.diff(csr.indptr))
    items, ratings = csr.indices, csr.data.astype(dt)
    hyper = model._hyper()
    for epoch in range(1, n_epochs + 1):
        if model.schedule == "user":
            order = ref.svdpp_user_order(csr.indptr, seed, epoch)
            ref.svdpp_epoch(users, items, ratings, order, (P, Q, Y, bu, bi), bag, hyper)
        else:
            bu_, bi_, br_, plan = blocked_layout(users, items, ratings, train.n_users, train.n_items,
                                                 default_n_blocks(model, P.strides[0]))
            order = _sgd.block_schedule(plan, seed, epoch)
            ref.svdpp_epoch_delayed(bu_, bi_, br_, order, (P, Q, Y, bu, bi), bag, hyper)
    return P + ref.svdpp_user_sums(Y, *bag), Q, Y, bu, bi


@pytest.mark.parametrize("schedule", ["user", "blocked"])
def test_fit_equals_the_reference_replay(data, schedule):
    m = fastmf.SVDpp(n_factors=4, n_epochs=3, random_state=2, dtype="float64", schedule=schedule,
                     ranking="rating", n_blocks=3).fit(data)
    bag = implicit_bags(data)
    want = replay(m, data, 3, bag)
    got = (m.user_factors_, m.item_factors_, m.item_implicit_, m.user_bias_, m.item_bias_)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)
    u, i, r, _ = data.to_arrays()
    ui, ii = data.user_index, data.item_index
    mu = m.global_mean_
    pred = mu + m.user_bias_[ui] + m.item_bias_[ii] + np.einsum("nk,nk->n", m.user_factors_[ui], m.item_factors_[ii])
    np.testing.assert_allclose(m.predict(u, i, clip=False), pred, rtol=1e-12)


def test_delayed_gain_limits():
    a = 0.999
    np.testing.assert_allclose(_delayed_gain(a, np.array([0.0, 1.0])), [1.0, 1.0])
    c = np.array([10.0, 1e5])
    np.testing.assert_allclose(_delayed_gain(a, c), (1 - a ** c) / (c * (1 - a)))
    np.testing.assert_allclose(_delayed_decay(a, c), a ** c)
    assert np.all(_delayed_gain(1.0, c) == 1.0)


@pytest.mark.parametrize("schedule", ["user", "blocked"])
def test_same_model_for_any_thread_count(data, schedule):
    fits = [fastmf.SVDpp(n_factors=8, n_epochs=4, random_state=1, schedule=schedule, n_threads=nt,
                         ranking="rating").fit(data) for nt in (1, 2)]
    for name in ("user_factors_", "item_factors_", "item_implicit_", "user_bias_", "item_bias_"):
        assert np.array_equal(getattr(fits[0], name), getattr(fits[1], name)), name


def test_implicit_matrix_forms_agree(data):
    csr = data.to_csr(scipy=True)
    base = dict(n_factors=4, n_epochs=2, random_state=0, ranking="rating")
    a = fastmf.SVDpp(**base).fit(data)
    for implicit in (csr, csr.toarray(), data):
        b = fastmf.SVDpp(implicit=implicit, **base).fit(data)
        assert np.array_equal(a.user_factors_, b.user_factors_)
    # other feedback: a different model, and the bag it builds is that matrix's rows
    rng = np.random.default_rng(0)
    clicks = sp.random(data.n_users, data.n_items, density=0.3, random_state=1, format="csr")
    c = fastmf.SVDpp(implicit=clicks, **base).fit(data)
    assert not np.array_equal(a.user_factors_, c.user_factors_)
    indptr, indices, w = implicit_bags(data, clicks)
    assert np.array_equal(indptr, clicks.indptr) and np.array_equal(indices, clicks.indices)
    np.testing.assert_allclose(w, bag_weights(clicks.indptr))
    assert rng is not None


def test_implicit_ratings_of_raw_ids_ignore_unknown_ids(data):
    users, items, _, _ = data.to_arrays()
    extra = fastmf.Ratings.from_arrays(np.r_[users, 10_000], np.r_[items, 10_001], np.ones(users.size + 1))
    indptr, indices, _ = implicit_bags(data, extra)
    csr = data.to_csr()
    assert np.array_equal(indptr, csr.indptr) and np.array_equal(indices, csr.indices)


def test_implicit_bad_inputs(data):
    with pytest.raises(ValueError, match=r"implicit has shape \(3, 3\) but the training data has 60 users"):
        fastmf.SVDpp(implicit=np.ones((3, 3))).fit(data)
    with pytest.raises(TypeError, match="implicit must be None, a fastmf.Ratings"):
        fastmf.SVDpp(implicit="clicks").fit(data)
    bad = np.zeros((data.n_users, data.n_items))
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"implicit\[2, 3\] = nan is not finite"):
        fastmf.SVDpp(implicit=bad).fit(data)


def test_bad_hyper_parameters(data):
    for kw, match in ((dict(lr=0), "lr"), (dict(reg_implicit=-1), "reg_implicit"), (dict(schedule="x"), "schedule"),
                      (dict(lr_bias=-0.1), "lr_bias"), (dict(n_epochs=-1), "n_epochs")):
        with pytest.raises(ValueError, match=match):
            fastmf.SVDpp(**kw).fit(data)


def test_fold_in_is_the_ridge_solve_with_the_implicit_sum(data):
    m = fastmf.SVDpp(n_factors=5, n_epochs=3, random_state=0, dtype="float64", ranking="rating").fit(data)
    items = m.item_map_.ids[[1, 4, 9, 20]]
    vals = np.array([5.0, 3.0, 4.0, 1.0])
    x, b = m.fold_in(items, vals)
    idx = m.item_map_.to_index(items)
    Q, Yi = m.item_factors_[idx], m.item_implicit_[idx]
    z = Yi.sum(0) / 2.0
    n = len(idx)
    Z = np.hstack([np.ones((n, 1)), Q])
    t = vals - m.global_mean_ - m.item_bias_[idx] - Q @ z
    A = Z.T @ Z + np.diag(np.r_[m.reg_bias * n, np.full(5, m.reg * n)])
    sol = np.linalg.solve(A, Z.T @ t)
    np.testing.assert_allclose(x, sol[1:] + z, rtol=1e-10)
    assert b == pytest.approx(sol[0])
    ids, scores = m.recommend_new(items, vals, n=5)
    assert len(ids) == 5 and not set(ids) & set(items)
    full = m.item_factors_ @ x + m.global_mean_ + b + m.item_bias_
    order = [i for i in np.argsort(-full, kind="stable") if i not in set(idx)][:5]
    assert list(ids) == list(m.item_map_.to_raw(np.array(order)))


def test_early_stopping_keeps_the_best_epoch(data):
    train, valid = fastmf.split.random_split(data, test_size=0.2, random_state=0)
    m = fastmf.SVDpp(n_factors=8, n_epochs=60, lr=0.05, random_state=0, ranking="rating").fit(
        train, eval_set=valid, early_stopping_rounds=3)
    h = [r["eval_rmse"] for r in m.history_]
    assert m.best_epoch_ == int(np.argmin(h)) + 1
    u, i, r, _ = valid.to_arrays()
    pred = m.predict(u, i, unknown="fallback")
    assert np.sqrt(np.mean((pred - r) ** 2)) == pytest.approx(h[m.best_epoch_ - 1], rel=1e-6)


def test_save_load_with_an_implicit_matrix(data, tmp_path):
    m = fastmf.SVDpp(n_factors=4, n_epochs=2, random_state=0, implicit=data.to_csr(scipy=True)).fit(data)
    path = tmp_path / "svdpp.npz"
    m.save(path)
    back = fastmf.load(path)
    assert back.implicit is None
    assert np.array_equal(back.user_factors_, m.user_factors_)
    u, i, _, _ = data.to_arrays()
    assert np.array_equal(back.predict(u, i), m.predict(u, i))


@pytest.mark.skipif(not os.path.isdir(os.path.join(os.environ.get("FASTMF_DATA", ""), "ml-100k")),
                    reason="needs ml-100k under $FASTMF_DATA")
def test_u1_defaults_reach_the_target():
    d = os.path.join(os.environ["FASTMF_DATA"], "ml-100k")
    tr, te = (np.loadtxt(os.path.join(d, f), dtype=np.int64) for f in ("u1.base", "u1.test"))
    train = fastmf.Ratings.from_arrays(tr[:, 0], tr[:, 1], tr[:, 2].astype(float), rating_scale=(1, 5))
    m = fastmf.SVDpp(random_state=0, ranking="rating").fit(train)
    pred = m.predict(te[:, 0], te[:, 1], unknown="fallback")
    assert np.sqrt(np.mean((pred - te[:, 2]) ** 2)) <= 0.910
