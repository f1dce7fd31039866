"""Tests of fastmf.reference, the oracle of the C kernels. Each function is pinned down independently
of its own code: hand-computed numbers, plain-Python scalar arithmetic, gradients of the objective,
least-squares solves and dense formulations of the same problems."""

import math

import numpy as np
import pytest

from fastmf import reference as ref


# ------------------------------------------------------------------------------------- fixtures
def to_csr(rows, cols, vals, n_rows):
    """(indptr, indices, data) of the entries, columns ascending within each row (via np.lexsort)."""
    rows, cols, vals = np.asarray(rows), np.asarray(cols), np.asarray(vals)
    order = np.lexsort((cols, rows))
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return indptr, cols[order].astype(np.int32), vals[order]


def low_rank_problem(seed, n_users=12, n_items=9, k=3, density=0.5, empty_users=(0, 7), empty_items=(4,),
                     noise=0.3):
    """Ratings of a planted rank-k model plus noise on a random subset of pairs; the listed users and
    items have no ratings at all."""
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(n_users, k))
    V = rng.normal(size=(n_items, k))
    mask = rng.random((n_users, n_items)) < density
    mask[list(empty_users), :] = False
    mask[:, list(empty_items)] = False
    users, items = np.nonzero(mask)
    ratings = 3.0 + U[users].sum(1) * 0.3 + (U[users] * V[items]).sum(1) + noise * rng.normal(size=users.size)
    return users.astype(np.int32), items.astype(np.int32), ratings, n_users, n_items


def random_model(seed, n_users, n_items, k, scale=0.5, dtype=np.float64):
    rng = np.random.default_rng(seed)
    P = (scale * rng.normal(size=(n_users, k))).astype(dtype)
    Q = (scale * rng.normal(size=(n_items, k))).astype(dtype)
    bu = (scale * rng.normal(size=n_users)).astype(dtype)
    bi = (scale * rng.normal(size=n_items)).astype(dtype)
    return P, Q, bu, bi


# ----------------------------------------------------------------------------------------- SGD
# A 2-user, 2-item, k=2 example with three ratings (user, item, rating).
EX_USERS = np.array([0, 0, 1])
EX_ITEMS = np.array([0, 1, 0])
EX_RATINGS = np.array([4.0, 2.0, 5.0])
EX_MU, EX_LR, EX_REG, EX_REG_B = 3.0, 0.1, 0.05, 0.02


def example_model(dtype=np.float64):
    P = np.array([[0.1, 0.2], [0.3, -0.1]], dtype=dtype)
    Q = np.array([[0.2, 0.1], [-0.1, 0.4]], dtype=dtype)
    bu = np.array([0.1, -0.2], dtype=dtype)
    bi = np.array([0.05, 0.0], dtype=dtype)
    return P, Q, bu, bi


def plain_python_sgd(order, P, Q, bu, bi, biased=True):
    """The SGD update rule with Python floats and lists only (no NumPy arithmetic)."""
    P = [list(map(float, row)) for row in P]
    Q = [list(map(float, row)) for row in Q]
    bu, bi = list(map(float, bu)), list(map(float, bi))
    sse = 0.0
    for k in order:
        u, i, r = int(EX_USERS[k]), int(EX_ITEMS[k]), float(EX_RATINGS[k])
        dot = P[u][0] * Q[i][0] + P[u][1] * Q[i][1]
        e = r - (EX_MU + bu[u] + bi[i] + dot) if biased else r - dot
        sse += e * e
        if biased:
            bu[u] = bu[u] + EX_LR * (e - EX_REG_B * bu[u])
            bi[i] = bi[i] + EX_LR * (e - EX_REG_B * bi[i])
        p_old = P[u][:]
        P[u] = [P[u][f] + EX_LR * (e * Q[i][f] - EX_REG * P[u][f]) for f in range(2)]
        Q[i] = [Q[i][f] + EX_LR * (e * p_old[f] - EX_REG * Q[i][f]) for f in range(2)]
    return np.array(P), np.array(Q), np.array(bu), np.array(bi), sse


def test_sgd_first_step_by_hand():
    P, Q, bu, bi = example_model()
    sse = ref.sgd_epoch(EX_USERS, EX_ITEMS, EX_RATINGS, np.array([0]), P, Q, bu, bi, EX_MU,
                        EX_LR, EX_REG, EX_REG_B)
    # pred = 3 + 0.1 + 0.05 + (0.1*0.2 + 0.2*0.1) = 3.19, e = 4 - 3.19 = 0.81
    # b_u = 0.1 + 0.1*(0.81 - 0.02*0.1) = 0.1808;  b_i = 0.05 + 0.1*(0.81 - 0.02*0.05) = 0.1309
    # p_u = (0.1 + 0.1*(0.81*0.2 - 0.05*0.1), 0.2 + 0.1*(0.81*0.1 - 0.05*0.2)) = (0.1157, 0.2071)
    # q_i = (0.2 + 0.1*(0.81*0.1 - 0.05*0.2), 0.1 + 0.1*(0.81*0.2 - 0.05*0.1)) = (0.2071, 0.1157)
    assert sse == pytest.approx(0.81 ** 2, abs=1e-14)
    np.testing.assert_allclose(bu, [0.1808, -0.2], atol=1e-15)
    np.testing.assert_allclose(bi, [0.1309, 0.0], atol=1e-15)
    np.testing.assert_allclose(P, [[0.1157, 0.2071], [0.3, -0.1]], atol=1e-15)
    np.testing.assert_allclose(Q, [[0.2071, 0.1157], [-0.1, 0.4]], atol=1e-15)


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0], [1, 2, 0], [0, 0, 2]])
def test_sgd_epoch_equals_plain_python(order):
    P, Q, bu, bi = example_model()
    want = plain_python_sgd(order, P, Q, bu, bi)
    sse = ref.sgd_epoch(EX_USERS, EX_ITEMS, EX_RATINGS, np.array(order), P, Q, bu, bi, EX_MU,
                        EX_LR, EX_REG, EX_REG_B)
    for got, exp in zip((P, Q, bu, bi), want[:4]):
        np.testing.assert_allclose(got, exp, rtol=1e-14, atol=1e-15)
    assert sse == pytest.approx(want[4], rel=1e-14)


def test_sgd_order_matters():
    runs = []
    for order in ([0, 1, 2], [2, 1, 0]):
        P, Q, bu, bi = example_model()
        sse = ref.sgd_epoch(EX_USERS, EX_ITEMS, EX_RATINGS, np.array(order), P, Q, bu, bi, EX_MU,
                            EX_LR, EX_REG, EX_REG_B)
        runs.append((P, Q, bu, bi, sse))
    (P1, Q1, bu1, bi1, s1), (P2, Q2, bu2, bi2, s2) = runs
    assert np.abs(P1 - P2).max() > 1e-3
    assert np.abs(Q1 - Q2).max() > 1e-3
    assert np.abs(bu1 - bu2).max() > 1e-3
    assert abs(s1 - s2) > 1e-3


def test_sgd_reg_bias_none_means_reg():
    P, Q, bu, bi = example_model()
    ref.sgd_epoch(EX_USERS, EX_ITEMS, EX_RATINGS, np.array([0]), P, Q, bu, bi, EX_MU, EX_LR, 0.05, None)
    # b_u = 0.1 + 0.1*(0.81 - 0.05*0.1) = 0.1805;  b_i = 0.05 + 0.1*(0.81 - 0.05*0.05) = 0.13075
    np.testing.assert_allclose([bu[0], bi[0]], [0.1805, 0.13075], atol=1e-15)


def test_sgd_unbiased_leaves_biases_untouched():
    P, Q, bu, bi = example_model()
    bu0, bi0 = bu.copy(), bi.copy()
    order = [0, 1, 2]
    want = plain_python_sgd(order, P, Q, bu, bi, biased=False)
    sse = ref.sgd_epoch(EX_USERS, EX_ITEMS, EX_RATINGS, np.array(order), P, Q, bu, bi, EX_MU,
                        EX_LR, EX_REG, EX_REG_B, biased=False)
    np.testing.assert_array_equal(bu, bu0)
    np.testing.assert_array_equal(bi, bi0)
    np.testing.assert_allclose(P, want[0], rtol=1e-14)
    np.testing.assert_allclose(Q, want[1], rtol=1e-14)
    assert sse == pytest.approx(want[4], rel=1e-14)
    # first error of the unbiased model: 4 - 0.04 = 3.96
    assert want[4] > 3.96 ** 2
    # the biases may be omitted entirely
    P2, Q2, _, _ = example_model()
    ref.sgd_epoch(EX_USERS, EX_ITEMS, EX_RATINGS, np.array(order), P2, Q2, None, None, EX_MU,
                  EX_LR, EX_REG, biased=False)
    np.testing.assert_array_equal(P2, P)


def test_sgd_float32_stays_float32_and_agrees():
    P, Q, bu, bi = example_model(np.float32)
    P64, Q64, bu64, bi64 = example_model(np.float64)
    order = np.array([0, 1, 2, 1])
    s32 = ref.sgd_epoch(EX_USERS, EX_ITEMS, EX_RATINGS, order, P, Q, bu, bi, EX_MU, EX_LR, EX_REG, EX_REG_B)
    s64 = ref.sgd_epoch(EX_USERS, EX_ITEMS, EX_RATINGS, order, P64, Q64, bu64, bi64, EX_MU,
                        EX_LR, EX_REG, EX_REG_B)
    for a in (P, Q, bu, bi):
        assert a.dtype == np.float32
    assert isinstance(s32, float)
    for a32, a64 in ((P, P64), (Q, Q64), (bu, bu64), (bi, bi64)):
        np.testing.assert_allclose(a32, a64, rtol=2e-6, atol=2e-7)
    assert s32 == pytest.approx(s64, rel=1e-5)


def test_sgd_float32_arithmetic_is_float32():
    # mu = 2**24, b_u = b_i = 0.75, r = 2**24 + 2, zero factors.
    # float32 (spacing 2 at 2**24): (2**24 + 0.75) -> 2**24, + 0.75 -> 2**24, so e = 2, e^2 = 4.
    # float64: pred = 2**24 + 1.5, e = 0.5, e^2 = 0.25.
    for dtype, e in ((np.float32, 2.0), (np.float64, 0.5)):
        P = np.zeros((1, 2), dtype)
        Q = np.zeros((1, 2), dtype)
        bu = np.array([0.75], dtype)
        bi = np.array([0.75], dtype)
        sse = ref.sgd_epoch([0], [0], [2.0 ** 24 + 2], [0], P, Q, bu, bi, 2.0 ** 24, 0.5, 0.0, 0.0)
        assert sse == e * e
        assert bu[0] == dtype(0.75 + 0.5 * e)


def test_sgd_sse_is_sum_of_pre_update_errors():
    # disjoint (user, item) pairs: every error is the error of the initial model
    rng = np.random.default_rng(3)
    n = 6
    users = np.arange(n)
    items = rng.permutation(n)
    ratings = rng.uniform(1, 5, n)
    P, Q, bu, bi = random_model(4, n, n, 3)
    mu = 3.2
    pred0 = mu + bu[users] + bi[items] + np.sum(P[users] * Q[items], axis=1)
    want = float(np.sum((ratings - pred0) ** 2))
    sse = ref.sgd_epoch(users, items, ratings, rng.permutation(n), P, Q, bu, bi, mu, 0.05, 0.02)
    assert sse == pytest.approx(want, rel=1e-13)
    # and the model moved, so a second epoch sees smaller errors
    assert ref.sgd_epoch(users, items, ratings, np.arange(n), P, Q, bu, bi, mu, 0.05, 0.02) < sse


def test_sgd_epochs_decrease_training_rmse():
    users, items, ratings, n_users, n_items = low_rank_problem(0, n_users=30, n_items=20, k=2,
                                                               density=0.6, noise=0.05)
    mu = float(ratings.mean())
    P, Q, bu, bi = random_model(1, n_users, n_items, 2, scale=0.1)
    rng = np.random.default_rng(2)
    history = [ref.rmse(P, Q, bu, bi, mu, users, items, ratings)]
    for _ in range(25):
        ref.sgd_epoch(users, items, ratings, rng.permutation(users.size), P, Q, bu, bi, mu, 0.02, 0.01)
        history.append(ref.rmse(P, Q, bu, bi, mu, users, items, ratings))
    assert all(b < a for a, b in zip(history, history[1:])), history
    assert history[-1] < 0.5 * history[0], history


# ----------------------------------------------------------------------------- predict / rmse
def test_predict_and_rmse_by_hand():
    P, Q, bu, bi = example_model()
    # (0,0): 3 + 0.1 + 0.05 + 0.04 = 3.19; (1,1): 3 - 0.2 + 0 + (-0.03 - 0.04) = 2.73
    np.testing.assert_allclose(ref.predict(P, Q, bu, bi, 3.0, [0, 1], [0, 1]), [3.19, 2.73], rtol=1e-15)
    np.testing.assert_allclose(ref.predict(P, Q, None, None, 3.0, [0, 1], [0, 1], biased=False),
                               [0.04, -0.07], rtol=1e-14)
    # errors 4 - 3.19 = 0.81 and 2 - 2.73 = -0.73
    got = ref.rmse(P, Q, bu, bi, 3.0, [0, 1], [0, 1], [4.0, 2.0])
    assert got == pytest.approx(math.sqrt((0.81 ** 2 + 0.73 ** 2) / 2), rel=1e-14)
    P32, Q32, bu32, bi32 = example_model(np.float32)
    assert ref.predict(P32, Q32, bu32, bi32, 3.0, [0], [0]).dtype == np.float32
    with pytest.raises(ValueError, match="empty"):
        ref.rmse(P, Q, bu, bi, 3.0, [], [], [])


def test_shape_mismatches_raise():
    P, Q, bu, bi = example_model()
    with pytest.raises(ValueError, match="same number of factors"):
        ref.predict(P, Q[:, :1], bu, bi, 3.0, [0], [0])
    with pytest.raises(ValueError, match="one length"):
        ref.sgd_epoch([0, 1], [0], [4.0], [0], P, Q, bu, bi, 3.0, 0.1, 0.1)
    with pytest.raises(ValueError, match="bu must have shape"):
        ref.predict(P, Q, bu[:1], bi, 3.0, [0], [0])
    with pytest.raises(ValueError, match="factors has 2 rows, the CSR has 1"):
        ref.als_half_sweep(np.array([0, 1]), np.array([0]), np.array([1.0]), Q, bi, P, bu, 3.0, 0.1)
    with pytest.raises(ValueError, match=r"indices and data must have indptr\[-1\] = 2"):
        ref.als_half_sweep(np.array([0, 1, 2]), np.array([0]), np.array([1.0]), Q, bi, P, bu, 3.0, 0.1)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 2\)"):
        ref.als_half_sweep(np.array([0, 1, 2]), np.array([0, 2]), np.array([1.0, 2.0]),
                           Q, bi, P, bu, 3.0, 0.1)


# ----------------------------------------------------------------------------------- explicit ALS
def row_targets(indptr, indices, data, r, fixed_bias, mu, biased):
    lo, hi = indptr[r], indptr[r + 1]
    idx = indices[lo:hi]
    t = data[lo:hi] - mu - fixed_bias[idx] if biased else data[lo:hi].copy()
    return idx, t


def half_sweep_problem(seed):
    users, items, ratings, n_users, n_items = low_rank_problem(seed)
    k = 3
    P, Q, bu, bi = random_model(seed + 100, n_users, n_items, k)
    csr = to_csr(users, items, ratings, n_users)
    return csr, P, Q, bu, bi, float(ratings.mean())


@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_als_half_sweep_zero_gradient(biased, weighted):
    csr, P, Q, bu, bi, mu = half_sweep_problem(1)
    reg, reg_b = 0.3, 0.05
    bu_before = bu.copy()
    ref.als_half_sweep(*csr, Q, bi, P, bu, mu, reg, reg_b, weighted=weighted, biased=biased)
    indptr, indices, data = csr
    nonempty = 0
    for r in range(P.shape[0]):
        idx, t = row_targets(indptr, indices, data, r, bi, mu, biased)
        n_r = idx.size
        if n_r == 0:
            continue
        nonempty += 1
        scale = n_r if weighted else 1
        b = bu[r] if biased else 0.0
        res = t - b - Q[idx] @ P[r]
        grad_x = -2 * Q[idx].T @ res + 2 * reg * scale * P[r]
        assert np.abs(grad_x).max() < 1e-10, (r, grad_x)
        if biased:
            grad_b = -2 * res.sum() + 2 * reg_b * scale * b
            assert abs(grad_b) < 1e-10, (r, grad_b)
    assert nonempty >= 8
    if not biased:
        np.testing.assert_array_equal(bu, bu_before)


@pytest.mark.parametrize("biased", [True, False])
def test_als_half_sweep_equals_lstsq(biased):
    csr, P, Q, bu, bi, mu = half_sweep_problem(2)
    reg, reg_b = 0.2, 0.7
    ref.als_half_sweep(*csr, Q, bi, P, bu, mu, reg, reg_b, biased=biased)
    indptr, indices, data = csr
    k = Q.shape[1]
    for r in range(P.shape[0]):
        idx, t = row_targets(indptr, indices, data, r, bi, mu, biased)
        if idx.size == 0:
            continue
        # ridge as ordinary least squares: stack sqrt(diag(lambda)) under the design matrix
        if biased:
            Z = np.hstack([np.ones((idx.size, 1)), Q[idx]])
            ridge = np.diag(np.sqrt([reg_b] + [reg] * k))
        else:
            Z = Q[idx]
            ridge = np.sqrt(reg) * np.eye(k)
        sol = np.linalg.lstsq(np.vstack([Z, ridge]), np.concatenate([t, np.zeros(len(ridge))]), rcond=None)[0]
        got = np.concatenate([[bu[r]], P[r]]) if biased else P[r]
        np.testing.assert_allclose(got, sol, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("biased", [True, False])
def test_als_weighted_scales_reg_by_count(biased):
    csr, P, Q, bu, bi, mu = half_sweep_problem(3)
    reg, reg_b = 0.1, 0.4
    Pw, buw = P.copy(), bu.copy()
    ref.als_half_sweep(*csr, Q, bi, Pw, buw, mu, reg, reg_b, weighted=True, biased=biased)
    indptr, indices, data = csr
    counts = np.diff(indptr)
    assert len(set(counts[counts > 0].tolist())) > 2          # the scaling really varies per row
    for r in np.nonzero(counts)[0]:
        lo, hi = indptr[r], indptr[r + 1]
        one_row = (np.array([0, hi - lo]), indices[lo:hi], data[lo:hi])
        x, b = np.zeros((1, P.shape[1])), np.zeros(1)
        n_r = counts[r]
        ref.als_half_sweep(*one_row, Q, bi, x, b, mu, reg * n_r, reg_b * n_r, weighted=False, biased=biased)
        np.testing.assert_allclose(Pw[r], x[0], rtol=1e-12, atol=1e-14)
        if biased:
            assert buw[r] == pytest.approx(b[0], rel=1e-12, abs=1e-14)


def test_als_empty_rows_get_zeros():
    csr, P, Q, bu, bi, mu = half_sweep_problem(4)
    P[:] = 7.0
    bu[:] = 7.0
    ref.als_half_sweep(*csr, Q, bi, P, bu, mu, 0.1)
    empty = np.diff(csr[0]) == 0
    assert empty.sum() == 2
    np.testing.assert_array_equal(P[empty], 0.0)
    np.testing.assert_array_equal(bu[empty], 0.0)
    assert np.all(P[~empty] != 7.0)


def test_als_float32_storage():
    csr, P, Q, bu, bi, mu = half_sweep_problem(5)
    P32, bu32 = P.astype(np.float32), bu.astype(np.float32)
    Q32, bi32 = Q.astype(np.float32), bi.astype(np.float32)
    ref.als_half_sweep(*csr, Q32, bi32, P32, bu32, mu, 0.1)
    ref.als_half_sweep(*csr, Q32.astype(np.float64), bi32.astype(np.float64), P, bu, mu, 0.1)
    assert P32.dtype == np.float32 and bu32.dtype == np.float32
    np.testing.assert_array_equal(P32, P.astype(np.float32))   # float64 arithmetic, rounded on store
    np.testing.assert_array_equal(bu32, bu.astype(np.float32))


def test_als_not_positive_definite_names_row():
    # row 1 has one entry, reg = 0: Z^T Z = [1, 1, 2]^T [1, 1, 2] has rank 1
    indptr = np.array([0, 2, 3])
    indices = np.array([0, 1, 0], dtype=np.int32)
    data = np.array([4.0, 3.0, 5.0])
    Y = np.array([[1.0, 2.0], [3.0, -1.0]])
    X, b = np.zeros((2, 2)), np.zeros(2)
    with pytest.raises(np.linalg.LinAlgError, match="row 1"):
        ref.als_half_sweep(indptr, indices, data, Y, np.zeros(2), X, b, 0.0, 0.0)
    ref.als_half_sweep(indptr, indices, data, Y, np.zeros(2), X, b, 0.0, 1e-3)   # any reg > 0 works
    assert np.all(np.isfinite(X))


def test_objective_by_hand():
    # k = 1; ratings (0,0,4), (1,0,2), (1,1,3); mu = 3
    users, items, ratings = np.array([0, 1, 1]), np.array([0, 0, 1]), np.array([4.0, 2.0, 3.0])
    P, Q = np.array([[1.0], [2.0]]), np.array([[0.5], [-1.0]])
    bu, bi = np.array([0.2, -0.1]), np.array([0.3, 0.0])
    # predictions 3 + 0.2 + 0.3 + 0.5 = 4.0, 3 - 0.1 + 0.3 + 1 = 4.2, 3 - 0.1 + 0 - 2 = 0.9
    sse = 0.0 ** 2 + 2.2 ** 2 + 2.1 ** 2
    fac = 1 + 4 + 0.25 + 1          # sum of squared factors
    bias = 0.04 + 0.01 + 0.09 + 0   # sum of squared biases
    got = ref.objective(users, items, ratings, P, Q, bu, bi, 3.0, 0.5, 0.1)
    assert got == pytest.approx(sse + 0.5 * fac + 0.1 * bias, rel=1e-14)
    # weighted: counts users (1, 2), items (2, 1)
    fac_w = 1 * 1 + 2 * 4 + 2 * 0.25 + 1 * 1
    bias_w = 1 * 0.04 + 2 * 0.01 + 2 * 0.09
    got = ref.objective(users, items, ratings, P, Q, bu, bi, 3.0, 0.5, 0.1, weighted=True)
    assert got == pytest.approx(sse + 0.5 * fac_w + 0.1 * bias_w, rel=1e-14)
    # unbiased: predictions 0.5, 1, -2
    sse_u = 3.5 ** 2 + 1.0 ** 2 + 5.0 ** 2
    got = ref.objective(users, items, ratings, P, Q, None, None, 3.0, 0.5, weighted=True, biased=False)
    assert got == pytest.approx(sse_u + 0.5 * fac_w, rel=1e-14)


@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_als_objective_never_increases(biased, weighted):
    users, items, ratings, n_users, n_items = low_rank_problem(6, n_users=15, n_items=11,
                                                               empty_users=(3, 14), empty_items=(0, 6))
    csr = to_csr(users, items, ratings, n_users)
    csc = to_csr(items, users, ratings, n_items)
    P, Q, bu, bi = random_model(7, n_users, n_items, 4)
    mu, reg, reg_b = float(ratings.mean()), 0.05, 0.02

    def obj():
        return ref.objective(users, items, ratings, P, Q, bu, bi, mu, reg, reg_b, weighted, biased)

    values = [obj()]
    for _ in range(4):
        ref.als_half_sweep(*csr, Q, bi, P, bu, mu, reg, reg_b, weighted, biased)
        values.append(obj())
        ref.als_half_sweep(*csc, P, bu, Q, bi, mu, reg, reg_b, weighted, biased)
        values.append(obj())
    for a, b in zip(values, values[1:]):
        assert b <= a * (1 + 1e-12), values
    assert values[-1] < 0.5 * values[0], values


def test_als_sweep_is_users_then_items_and_takes_ratings_csr():
    import fastmf

    users, items, ratings, n_users, n_items = low_rank_problem(8)
    ds = fastmf.Ratings.from_arrays(users, items, ratings, rating_scale=None)
    u, i = ds.user_index, ds.item_index          # dense indices (users/items without ratings are absent)
    P, Q, bu, bi = random_model(9, ds.n_users, ds.n_items, 3)
    mu = float(ratings.mean())
    A = [a.copy() for a in (P, Q, bu, bi)]
    ref.als_sweep(ds.to_csr(), ds.to_csc(), *A, mu, 0.1, 0.2, weighted=True)
    csr = to_csr(u, i, ds.rating, ds.n_users)
    csc = to_csr(i, u, ds.rating, ds.n_items)
    ref.als_half_sweep(*csr, Q, bi, P, bu, mu, 0.1, 0.2, True)
    ref.als_half_sweep(*csc, P, bu, Q, bi, mu, 0.1, 0.2, True)
    for got, want in zip(A, (P, Q, bu, bi)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------- implicit ALS
def implicit_problem(seed, n_users=9, n_items=13, k=3, empty_users=(2,), empty_items=(5,)):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < 0.35
    mask[list(empty_users), :] = False
    mask[:, list(empty_items)] = False
    users, items = np.nonzero(mask)
    counts = rng.integers(1, 6, size=users.size).astype(np.float64)
    counts[::7] = 0.0                    # a few stored zeros: preference 0, confidence 1
    X = 0.3 * rng.normal(size=(n_users, k))
    Y = 0.3 * rng.normal(size=(n_items, k))
    return users, items, counts, X, Y


def test_confidence_by_hand():
    np.testing.assert_allclose(ref.confidence([0.0, 1.0, 3.0], 40.0), [1.0, 41.0, 121.0])
    np.testing.assert_allclose(ref.confidence([0.0, 1.0], 2.0, "log", eps=0.5), [1.0, 1 + 2 * math.log(3.0)],
                               rtol=1e-15)
    with pytest.raises(ValueError, match="scaling"):
        ref.confidence([1.0], 1.0, "sqrt")


@pytest.mark.parametrize("scaling", ["linear", "log"])
def test_ials_equals_dense_weighted_ridge(scaling):
    users, items, counts, X, Y = implicit_problem(10)
    n_users, n_items = X.shape[0], Y.shape[0]
    reg, alpha, eps = 0.1, 5.0, 2.0
    csr = to_csr(users, items, counts, n_users)
    ref.ials_half_sweep(*csr, Y, X, reg, alpha, scaling, eps)
    dense = np.zeros((n_users, n_items))
    dense[users, items] = counts
    stored = np.zeros((n_users, n_items), dtype=bool)
    stored[users, items] = True
    k = Y.shape[1]
    for u in range(n_users):
        # the full n_items x n_items confidence matrix of the row
        if scaling == "linear":
            c = np.where(stored[u], 1 + alpha * dense[u], 1.0)
        else:
            c = np.where(stored[u], 1 + alpha * np.log(1 + dense[u] / eps), 1.0)
        C_u = np.diag(c)
        p_u = (dense[u] > 0).astype(float)
        want = np.linalg.solve(Y.T @ C_u @ Y + reg * np.eye(k), Y.T @ C_u @ p_u)
        np.testing.assert_allclose(X[u], want, rtol=1e-10, atol=1e-13)
    assert np.all(X[2] == 0.0)


def test_ials_empty_rows_zero_and_float32():
    users, items, counts, X, Y = implicit_problem(11)
    X[:] = 3.0
    X32 = X.astype(np.float32)
    csr = to_csr(users, items, counts, X.shape[0])
    ref.ials_half_sweep(*csr, Y, X, 0.05, 10.0)
    ref.ials_half_sweep(*csr, Y.astype(np.float32), X32, 0.05, 10.0)
    np.testing.assert_array_equal(X[2], 0.0)
    assert np.all(X[[0, 1, 3]] != 3.0)
    assert X32.dtype == np.float32
    np.testing.assert_allclose(X32, X, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("scaling", ["linear", "log"])
def test_ials_objective_never_increases(scaling):
    users, items, counts, X, Y = implicit_problem(12, n_users=11, n_items=14, empty_users=(0, 5),
                                                  empty_items=(3, 13))
    reg, alpha = 0.05, 8.0
    csr = to_csr(users, items, counts, X.shape[0])
    csc = to_csr(items, users, counts, Y.shape[0])
    values = [ref.ials_objective(*csr, X, Y, reg, alpha, scaling)]
    for _ in range(4):
        ref.ials_half_sweep(*csr, Y, X, reg, alpha, scaling)
        values.append(ref.ials_objective(*csr, X, Y, reg, alpha, scaling))
        ref.ials_half_sweep(*csc, X, Y, reg, alpha, scaling)
        values.append(ref.ials_objective(*csr, X, Y, reg, alpha, scaling))
    for a, b in zip(values, values[1:]):
        assert b <= a * (1 + 1e-12), values
    assert values[-1] < 0.9 * values[0], values


def test_ials_objective_by_hand():
    # 1 user, 3 items, k = 1: stored 2 on item 0 and a stored 0 on item 1; x = 0.5, y = (1, 2, -2),
    # alpha = 1, reg = 0.1
    # item 0: c = 3, p = 1, residual 1 - 0.5 = 0.5 -> 3 * 0.25 = 0.75
    # item 1 (stored 0): c = 1, p = 0, residual -1 -> 1;  item 2 (not stored): c = 1, p = 0, residual 1 -> 1
    got = ref.ials_objective(np.array([0, 2]), np.array([0, 1], dtype=np.int32), np.array([2.0, 0.0]),
                             np.array([[0.5]]), np.array([[1.0], [2.0], [-2.0]]), 0.1, 1.0)
    assert got == pytest.approx(0.75 + 1.0 + 1.0 + 0.1 * (0.25 + 1 + 4 + 4), rel=1e-14)


# ------------------------------------------------------------ iALS frequency-scaled regularisation
def test_ials_reg_nu_zero_is_plain_reg():
    users, items, counts, X, Y = implicit_problem(13)
    csr = to_csr(users, items, counts, X.shape[0])
    X_default, X_nu0 = X.copy(), X.copy()
    ref.ials_half_sweep(*csr, Y, X_default, 0.1, 5.0)
    ref.ials_half_sweep(*csr, Y, X_nu0, 0.1, 5.0, reg_nu=0.0, reg_alpha0=7.0)
    np.testing.assert_array_equal(X_nu0, X_default)
    assert ref.ials_objective(*csr, X, Y, 0.1, 5.0, reg_nu=0.0, reg_alpha0=7.0) == \
        ref.ials_objective(*csr, X, Y, 0.1, 5.0)


@pytest.mark.parametrize("scaling", ["linear", "log"])
def test_ials_frequency_scaled_reg_per_row(scaling):
    # each row equals a plain solve with lambda_r = reg (n_r+ + alpha0 n_fixed)^nu, where n_r+ counts
    # the values > 0 only (implicit_problem stores a few zeros)
    users, items, counts, X, Y = implicit_problem(14)
    reg, alpha, nu, a0 = 0.05, 3.0, 0.7, 0.25
    csr = to_csr(users, items, counts, X.shape[0])
    indptr, indices, data = csr
    Xs = X.copy()
    ref.ials_half_sweep(*csr, Y, Xs, reg, alpha, scaling, 2.0, reg_nu=nu, reg_alpha0=a0)
    n_pos = np.array([(data[indptr[r]:indptr[r + 1]] > 0).sum() for r in range(X.shape[0])])
    stored = np.diff(indptr)
    assert np.any((n_pos < stored) & (n_pos > 0))            # stored zeros are not counted
    assert len(set(n_pos[n_pos > 0].tolist())) > 2
    for r in np.nonzero(stored)[0]:
        lo, hi = indptr[r], indptr[r + 1]
        x = np.zeros((1, Y.shape[1]))
        lam = reg * (n_pos[r] + a0 * Y.shape[0]) ** nu
        ref.ials_half_sweep(np.array([0, hi - lo]), indices[lo:hi], data[lo:hi], Y, x, lam, alpha,
                            scaling, 2.0)
        np.testing.assert_allclose(Xs[r], x[0], rtol=1e-12, atol=1e-14)


def test_ials_objective_frequency_scaled_by_hand():
    # 2 users x 3 items, k = 1. user 0: stored 2 on item 0, stored 0 on item 1; user 1: stored 1 on item 0
    # n+ per user (1, 1), per item (2, 0, 0); reg = 0.1, nu = 0.5, alpha0 = 2, alpha = 1
    indptr = np.array([0, 2, 3])
    indices = np.array([0, 1, 0], dtype=np.int32)
    data = np.array([2.0, 0.0, 1.0])
    X = np.array([[0.5], [1.0]])
    Y = np.array([[1.0], [2.0], [-2.0]])
    # data term: user 0 as in test_ials_objective_by_hand: 0.75 + 1 + 1 = 2.75
    # user 1: item 0 c = 2, p = 1, s = 1 -> 0; items 1, 2: c = 1, p = 0, s = 2, -2 -> 4 + 4
    data_term = 2.75 + 8.0
    lam_u = 0.1 * (1 + 2 * 3) ** 0.5                     # both users: n+ = 1, n_items = 3
    lam_i = 0.1 * (np.array([2, 0, 0]) + 2 * 2) ** 0.5   # n_users = 2
    want = data_term + lam_u * (0.25 + 1.0) + float(lam_i @ np.array([1.0, 4.0, 4.0]))
    got = ref.ials_objective(indptr, indices, data, X, Y, 0.1, 1.0, reg_nu=0.5, reg_alpha0=2.0)
    assert got == pytest.approx(want, rel=1e-14)


@pytest.mark.parametrize("nu", [0.5, 1.0])
def test_ials_frequency_scaled_objective_never_increases(nu):
    users, items, counts, X, Y = implicit_problem(15, n_users=11, n_items=14, empty_users=(0, 5),
                                                  empty_items=(3, 13))
    reg, alpha, a0 = 0.02, 6.0, 0.1
    csr = to_csr(users, items, counts, X.shape[0])
    csc = to_csr(items, users, counts, Y.shape[0])

    def obj():
        return ref.ials_objective(*csr, X, Y, reg, alpha, reg_nu=nu, reg_alpha0=a0)

    values = [obj()]
    for _ in range(4):
        ref.ials_half_sweep(*csr, Y, X, reg, alpha, reg_nu=nu, reg_alpha0=a0)
        values.append(obj())
        ref.ials_half_sweep(*csc, X, Y, reg, alpha, reg_nu=nu, reg_alpha0=a0)
        values.append(obj())
    for a, b in zip(values, values[1:]):
        assert b <= a * (1 + 1e-12), values
    assert values[-1] < 0.9 * values[0], values
