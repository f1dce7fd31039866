"""The exact top-n kernels (fastmf._topk over csrc/topk.c) against a full sort.

Oracle: for each row, the allowed columns (score > -inf, not excluded, candidate) sorted by
``np.lexsort((column, -score))``, the first n kept, then padded with (-1, -inf). Scores are small
integers or carry -inf so ties are common. The factor kernel is checked bit for bit against the NumPy
formula it documents (dot product summed j = 0..k-1 in the factors' dtype, then + offset, + bias in
float64), exactly against BLAS on integer-valued factors (where every summation order is exact), and
against BLAS on random float32 factors up to near-ties whose gap is within the rounding bound.
"""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fastmf import _topk
from fastmf.base import topn_rows
from fastmf.reference import factor_scores


# ------------------------------------------------------------------------------------------ oracle
def oracle(S, n, users=None, indptr=None, indices=None, candidates=None):
    """(idx, val) by a full sort of each row's allowed columns; exact, O(n_items log n_items)."""
    S = np.asarray(S)
    m, N = S.shape
    idx = np.full((m, n), -1, dtype=np.int64)
    val = np.full((m, n), -np.inf, dtype=S.dtype)
    for r in range(m):
        allowed = S[r] > -np.inf
        u = r if users is None else users[r]
        if indptr is not None and u >= 0:
            allowed[indices[indptr[u]:indptr[u + 1]]] = False
        if candidates is not None:
            allowed &= candidates.astype(bool)
        cols = np.flatnonzero(allowed)
        order = cols[np.lexsort((cols, -S[r, cols]))][:n]
        idx[r, :order.size] = order
        val[r, :order.size] = S[r, order]
    return idx, val


def tie_scores(rng, m, N, dtype, p_inf=0.15, levels=6):
    S = rng.integers(0, levels, (m, N)).astype(dtype)
    S[rng.random((m, N)) < p_inf] = -np.inf
    return S


def random_csr(rng, n_users, N, max_len, duplicates=True):
    """Excluded lists in random order, with some repeated entries and some empty rows."""
    lens = rng.integers(0, max_len + 1, n_users)
    lens[rng.random(n_users) < 0.2] = 0
    rows = [rng.integers(0, N, L) for L in lens]
    if not duplicates:
        rows = [np.unique(r) for r in rows]
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    indices = (np.concatenate(rows) if rows else np.zeros(0)).astype(np.int32)
    return indptr, indices


def seq_scores(U, V, users, offset=None, bias=None):
    """The factor kernel's scores by its documented NumPy formula (same bits): the twin."""
    return factor_scores(U, V, users, item_bias=bias, user_offset=offset)


def assert_same(got, want):
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert got[0].dtype == np.int64


# --------------------------------------------------------------------------------------- topk_rows
def test_oracle_on_a_hand_example():
    S = np.array([[1.0, 3.0, -np.inf, 3.0, 2.0, 1.0]])
    idx, val = oracle(S, 7)
    assert idx.tolist() == [[1, 3, 4, 0, 5, -1, -1]]
    assert val.tolist() == [[3.0, 3.0, 2.0, 1.0, 1.0, -np.inf, -np.inf]]
    got = _topk.topk_rows(S, 7)
    assert got[0].tolist() == idx.tolist() and got[1].tolist() == val.tolist()
    got = _topk.topk_rows(S, 2, excl_indptr=np.array([0, 1], np.int64), excl_indices=np.array([3], np.int32))
    assert got[0].tolist() == [[1, 4]] and got[1].tolist() == [[3.0, 2.0]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 5, 37, 44])
def test_rows_equal_a_full_sort(dtype, n):
    rng = np.random.default_rng(n)
    S = tie_scores(rng, 60, 37, dtype)
    S[3] = -np.inf                       # a row with nothing to select
    S[4, :] = 2.0                        # a row of equal scores
    S[5, ::3] = np.inf                   # +inf is a score like any other
    got = _topk.topk_rows(S, n)
    assert got[1].dtype == dtype and got[0].shape == (60, n)
    assert_same(got, oracle(S, n))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_exclusions_and_candidates(dtype):
    rng = np.random.default_rng(1)
    m, N, n_users = 80, 53, 30
    S = tie_scores(rng, m, N, dtype)
    indptr, indices = random_csr(rng, n_users, N, 40)
    users = rng.integers(-1, n_users, m)                       # -1: no excluded list
    cand = rng.random(N) < 0.7
    for n in (1, 6, N, N + 2):
        for c in (None, cand, cand.astype(np.uint8)):
            got = _topk.topk_rows(S, n, users=users, excl_indptr=indptr, excl_indices=indices,
                                  candidates=c)
            assert_same(got, oracle(S, n, users, indptr, indices, c))
    # without users, row r uses the CSR's row r
    indptr_m, indices_m = random_csr(rng, m, N, 20)
    got = _topk.topk_rows(S, 4, excl_indptr=indptr_m, excl_indices=indices_m)
    assert_same(got, oracle(S, 4, None, indptr_m, indices_m))


def test_rows_excluding_everything_pads_the_row():
    S = np.arange(12, dtype=np.float64).reshape(2, 6)
    indptr = np.array([0, 6, 6], np.int64)
    indices = np.array([5, 4, 3, 2, 1, 0], np.int32)
    idx, val = _topk.topk_rows(S, 3, excl_indptr=indptr, excl_indices=indices)
    assert idx.tolist() == [[-1, -1, -1], [11 - 6, 10 - 6, 9 - 6]]
    assert val.tolist() == [[-np.inf] * 3, [11.0, 10.0, 9.0]]


@pytest.mark.parametrize("n", [1, 3, 10, 25])
def test_rows_equal_base_topn_rows(n):
    rng = np.random.default_rng(7)
    S = np.round(rng.normal(size=(50, 25)), 1)                 # one decimal: many ties
    S[rng.random(S.shape) < 0.1] = -np.inf
    assert_same(_topk.topk_rows(S, n), topn_rows(S, n))


def test_rows_degenerate_shapes():
    for m, N, n in ((0, 5, 3), (4, 0, 3), (4, 5, 0), (0, 0, 0)):
        S = np.zeros((m, N))
        idx, val = _topk.topk_rows(S, n)
        assert idx.shape == (m, n) and val.shape == (m, n)
        assert (idx == -1).all() and np.isneginf(val).all()


def test_rows_thread_count_does_not_change_the_result():
    rng = np.random.default_rng(3)
    S = tie_scores(rng, 700, 90, np.float64)
    indptr, indices = random_csr(rng, 700, 90, 30)
    ref = _topk.topk_rows(S, 7, excl_indptr=indptr, excl_indices=indices, n_threads=1)
    for nt in (2, 3):
        assert_same(_topk.topk_rows(S, 7, excl_indptr=indptr, excl_indices=indices, n_threads=nt), ref)


def test_rows_nan_raises_with_the_first_row():
    S = np.zeros((300, 20))
    S[250, 4] = np.nan
    S[100, 7] = np.nan
    S[100, 9] = np.nan
    for nt in (1, 2):
        with pytest.raises(ValueError, match=r"scores\[100, 7\] is NaN"):
            _topk.topk_rows(S, 3, n_threads=nt)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 6), st.integers(0, 9), st.integers(0, 12), st.data())
def test_rows_property_against_the_oracle(m, N, n, data):
    values = st.sampled_from([-np.inf, -1.0, 0.0, 0.5, 2.0, np.inf])
    S = np.array(data.draw(st.lists(st.lists(values, min_size=N, max_size=N), min_size=m, max_size=m)),
                 dtype=np.float64).reshape(m, N)
    rows = data.draw(st.lists(st.lists(st.integers(0, max(N - 1, 0)), max_size=4 if N else 0),
                              min_size=m, max_size=m))
    indptr = np.zeros(m + 1, np.int64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    indices = np.array([c for r in rows for c in r], dtype=np.int32)
    cand = np.array(data.draw(st.lists(st.booleans(), min_size=N, max_size=N)), dtype=bool)
    got = _topk.topk_rows(S, n, excl_indptr=indptr, excl_indices=indices, candidates=cand,
                          n_threads=data.draw(st.integers(1, 3)))
    assert_same(got, oracle(S, n, None, indptr, indices, cand))


# ------------------------------------------------------------------------------------ topk_factors
def factor_problem(rng, dtype, n_users=150, N=250, k=40):
    U = rng.normal(size=(n_users, k)).astype(dtype)
    V = rng.normal(size=(N, k)).astype(dtype)
    bias = rng.normal(size=N)
    offset = rng.normal(size=n_users) + 3.5
    return U, V, bias, offset


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_factors_bit_identical_to_the_documented_formula(dtype):
    # 150 users (3 chunks), 250 items (several panels and a ragged last one), k = 40 (no multiple of
    # the SIMD width): the scores equal the NumPy formula bit for bit, so the selection is exact
    rng = np.random.default_rng(11)
    U, V, bias, offset = factor_problem(rng, dtype)
    indptr, indices = random_csr(rng, U.shape[0], V.shape[0], 60)
    users = rng.integers(0, U.shape[0], 130)                    # a subset, with repeats
    cand = rng.random(V.shape[0]) < 0.8
    for off, b in ((offset, bias), (None, bias), (offset, None), (None, None)):
        S = seq_scores(U, V, users, off, b)
        for n in (1, 10, 250, 253):
            got = _topk.topk_factors(U, V, n, users=users, item_bias=b, user_offset=off,
                                     excl_indptr=indptr, excl_indices=indices, candidates=cand)
            assert got[1].dtype == np.float64
            assert_same(got, oracle(S, n, users, indptr, indices, cand))
    # all users, no exclusions
    got = _topk.topk_factors(U, V, 5, item_bias=bias, user_offset=offset)
    assert_same(got, oracle(seq_scores(U, V, np.arange(U.shape[0]), offset, bias), 5))


def test_factors_batched_equals_one_user_at_a_time():
    rng = np.random.default_rng(12)
    U, V, bias, offset = factor_problem(rng, np.float32, n_users=40, N=120, k=9)
    indptr, indices = random_csr(rng, 40, 120, 30)
    users = rng.permutation(40)[:25]
    kw = dict(item_bias=bias, user_offset=offset, excl_indptr=indptr, excl_indices=indices)
    idx, val = _topk.topk_factors(U, V, 8, users=users, **kw)
    for r, u in enumerate(users):
        one = _topk.topk_factors(U, V, 8, users=[u], **kw)
        np.testing.assert_array_equal(one[0][0], idx[r])
        np.testing.assert_array_equal(one[1][0], val[r])
        assert not np.isin(idx[r], indices[indptr[u]:indptr[u + 1]]).any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_factors_equal_dense_blas_scores_on_integer_factors(dtype):
    # integer-valued factors and biases: U @ V.T is exact in any summation order, so the kernel must
    # equal topk_rows over the dense BLAS scores exactly, ties (frequent here) included
    rng = np.random.default_rng(5)
    U = rng.integers(-3, 4, (90, 24)).astype(dtype)
    V = rng.integers(-3, 4, (300, 24)).astype(dtype)
    bias = rng.integers(-2, 3, 300).astype(np.float64)
    offset = rng.integers(0, 5, 90).astype(np.float64)
    indptr, indices = random_csr(rng, 90, 300, 50)
    dense = ((U @ V.T).astype(np.float64) + offset[:, None]) + bias
    for n in (1, 5, 300, 301):
        want = _topk.topk_rows(dense, n, excl_indptr=indptr, excl_indices=indices)
        got = _topk.topk_factors(U, V, n, item_bias=bias, user_offset=offset,
                                 excl_indptr=indptr, excl_indices=indices)
        assert_same(got, want)
        assert_same(got, oracle(dense, n, None, indptr, indices))


def test_factors_float32_against_blas_up_to_near_ties():
    # Random float32 factors: BLAS sums the dot products in another order, so scores may differ by
    # rounding. Bound: |fl(u.v) - u.v| <= gamma_k sum_j |u_j v_j|, gamma_k = k eps / (1 - k eps),
    # eps = 2**-24, for any order. The kernel's scores must be within that bound of the exact
    # (float64) score, and its top-n may differ from the BLAS top-n only by items whose exact score is
    # within two bounds of the exact n-th best score.
    rng = np.random.default_rng(9)
    k = 64
    U, V, bias, offset = factor_problem(rng, np.float32, n_users=120, N=400, k=k)
    n = 10
    got_idx, got_val = _topk.topk_factors(U, V, n, item_bias=bias, user_offset=offset)
    blas = ((U @ V.T).astype(np.float64) + offset[:, None]) + bias
    blas_idx, _ = _topk.topk_rows(blas, n)
    U64, V64 = U.astype(np.float64), V.astype(np.float64)
    exact = U64 @ V64.T + offset[:, None] + bias
    eps = 2.0 ** -24
    bound = (k * eps / (1 - k * eps)) * (np.abs(U64) @ np.abs(V64).T) + 1e-12 * np.abs(exact)
    rows = np.arange(U.shape[0])[:, None]
    assert (np.abs(got_val - exact[rows, got_idx]) <= bound[rows, got_idx]).all()
    nth = np.sort(exact, axis=1)[:, -n]
    slack = 2 * bound.max(axis=1)
    differing = 0
    for r in range(U.shape[0]):
        diff = np.setxor1d(got_idx[r], blas_idx[r])
        differing += diff.size > 0
        assert (np.abs(exact[r, diff] - nth[r]) <= slack[r]).all(), (r, diff)
    assert differing < U.shape[0] // 4       # near-ties are rare with continuous scores


def test_factors_padded_rows_and_read_only_inputs():
    rng = np.random.default_rng(2)
    U, V, bias, offset = factor_problem(rng, np.float32, n_users=70, N=90, k=13)
    bufU = np.zeros((70, 16), np.float32)
    bufV = np.zeros((90, 32), np.float32)
    bufU[:, :13], bufV[:, :13] = U, V
    Up, Vp = bufU[:, :13], bufV[:, :13]
    Vp.flags.writeable = False
    indptr, indices = random_csr(rng, 70, 90, 10)
    indptr.flags.writeable = indices.flags.writeable = False
    want = _topk.topk_factors(U, V, 6, item_bias=bias, user_offset=offset,
                              excl_indptr=indptr, excl_indices=indices)
    assert_same(_topk.topk_factors(Up, Vp, 6, item_bias=bias, user_offset=offset,
                                   excl_indptr=indptr, excl_indices=indices), want)


def test_factors_thread_count_does_not_change_the_result():
    rng = np.random.default_rng(4)
    U, V, bias, offset = factor_problem(rng, np.float32, n_users=500, N=300, k=16)
    indptr, indices = random_csr(rng, 500, 300, 40)
    ref = _topk.topk_factors(U, V, 10, item_bias=bias, user_offset=offset,
                             excl_indptr=indptr, excl_indices=indices, n_threads=1)
    for nt in (2, 3):
        assert_same(_topk.topk_factors(U, V, 10, item_bias=bias, user_offset=offset,
                                       excl_indptr=indptr, excl_indices=indices, n_threads=nt), ref)


def test_factors_degenerate_shapes():
    rng = np.random.default_rng(6)
    # k = 0: every dot product is 0, the scores are offset + bias
    U, V = np.zeros((4, 0)), np.zeros((5, 0))
    bias = np.array([1.0, 3.0, 3.0, -np.inf, 2.0])
    idx, val = _topk.topk_factors(U, V, 6, item_bias=bias, user_offset=np.arange(4.0))
    assert idx.tolist() == [[1, 2, 4, 0, -1, -1]] * 4
    assert val[2].tolist() == [5.0, 5.0, 4.0, 3.0, -np.inf, -np.inf]
    # no items, no users, n = 0, an empty users array
    U, V = rng.normal(size=(3, 4)), rng.normal(size=(0, 4))
    assert (_topk.topk_factors(U, V, 2)[0] == -1).all()
    assert _topk.topk_factors(np.zeros((0, 4)), rng.normal(size=(5, 4)), 2)[0].shape == (0, 2)
    assert _topk.topk_factors(U, rng.normal(size=(5, 4)), 0)[0].shape == (3, 0)
    assert _topk.topk_factors(U, rng.normal(size=(5, 4)), 2, users=np.zeros(0, np.int64))[0].shape == (0, 2)


def test_factors_nan_raises_with_the_first_row():
    rng = np.random.default_rng(8)
    U, V, _, _ = factor_problem(rng, np.float64, n_users=200, N=50, k=8)
    V[17, 3] = np.nan
    for nt in (1, 2):
        with pytest.raises(ValueError, match=r"score of user 0 \(output row 0\) for item 17 is NaN"):
            _topk.topk_factors(U, V, 3, n_threads=nt)
    V[17, 3] = 0.0
    bias = np.zeros(50)
    bias[30] = np.nan
    with pytest.raises(ValueError, match=r"score of user 7 \(output row 0\) for item 30 is NaN"):
        _topk.topk_factors(U, V, 3, users=[7, 5], item_bias=bias)


# ------------------------------------------------------------------------------------- bad inputs
S0 = np.zeros((4, 6))
IP0 = np.array([0, 1, 2, 2, 3], np.int64)
IX0 = np.array([0, 5, 2], np.int32)


@pytest.mark.parametrize("kwargs, match", [
    (dict(scores=np.zeros((4, 6), np.int64)), "float32 or float64"),
    (dict(scores=[[0.0]]), "float32 or float64"),
    (dict(scores=np.zeros(6)), "2-D"),
    (dict(scores=np.zeros((6, 4)).T), "C-contiguous"),
    (dict(n=-1), r"n must be an int >= 0, got -1"),
    (dict(n=2.5), r"n must be an int >= 0"),
    (dict(n=True), r"n must be an int >= 0"),
    (dict(n_threads=0), r"n_threads must be an int in \[1, 1024\]"),
    (dict(excl_indptr=IP0), "give both or neither"),
    (dict(excl_indptr=IP0[:-1], excl_indices=IX0), r"n_users \+ 1 = 5 entries, got 4"),
    (dict(excl_indptr=IP0.astype(np.int32), excl_indices=IX0), "excl_indptr must have dtype int64"),
    (dict(excl_indptr=IP0, excl_indices=IX0.astype(np.int64)), "excl_indices must have dtype int32"),
    (dict(excl_indptr=np.array([0, 2, 1, 2, 3], np.int64), excl_indices=IX0),
     r"excl_indptr\[1:3\] = \[2, 1\] \(user 1, output row 1\) is not an ascending range"),
    (dict(excl_indptr=np.array([0, 1, 2, 2, 4], np.int64), excl_indices=IX0),
     r"excl_indptr\[3:5\] = \[2, 4\] \(user 3, output row 3\).*len\(excl_indices\) = 3"),
    (dict(excl_indptr=IP0, excl_indices=np.array([0, 6, 2], np.int32)),
     r"excl_indices\[1\] = 6 \(an excluded item of user 1, output row 1\) is outside \[0, n_items = 6\)"),
    (dict(excl_indptr=IP0, excl_indices=np.array([0, -1, 2], np.int32)), r"excl_indices\[1\] = -1"),
    (dict(users=[0, 1, 2], excl_indptr=IP0, excl_indices=IX0), "users must have 4 entries, got 3"),
    (dict(users=[0, 1, 4, 2], excl_indptr=IP0, excl_indices=IX0), r"users\[2\] = 4 is outside \[-1, 4\)"),
    (dict(users=[0, -2, 1, 2]), r"users\[1\] = -2 must be >= -1"),
    (dict(users=[0.0, 1.0, 2.0, 3.0]), "users must hold integers"),
    (dict(candidates=np.ones(5, bool)), "n_items = 6 entries"),
    (dict(candidates=np.ones(6, np.int64)), "candidates must have dtype bool or uint8"),
    (dict(candidates=[True] * 6), "candidates must be a numpy.ndarray"),
])
def test_rows_bad_inputs_raise(kwargs, match):
    args = dict(scores=S0, n=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        _topk.topk_rows(args.pop("scores"), args.pop("n"), **args)


U0 = np.zeros((4, 3))
V0 = np.zeros((6, 3))


@pytest.mark.parametrize("kwargs, match", [
    (dict(U=U0.astype(np.float32)), "U and V must have one dtype"),
    (dict(V=np.zeros((6, 2))), "same number of factors, got 3 and 2"),
    (dict(U=np.zeros((3, 4)).T), "contiguous rows"),
    (dict(U=np.zeros((4, 3), np.int32)), "dtype float32 or float64"),
    (dict(V=np.zeros(6)), "V must be 2-D"),
    (dict(users=[0, 4]), r"users\[1\] = 4 is outside \[0, 4\)"),
    (dict(users=[-1]), r"users\[0\] = -1 is outside \[0, 4\)"),
    (dict(item_bias=np.zeros(5)), "item_bias must have 6 entries, got 5"),
    (dict(item_bias=np.array(["a"] * 6)), "item_bias must hold real numbers"),
    (dict(user_offset=np.zeros(6)), "user_offset must have 4 entries, got 6"),
    (dict(excl_indptr=np.zeros(4, np.int64), excl_indices=np.zeros(0, np.int32)),
     r"n_users \+ 1 = 5 entries, got 4"),
    (dict(users=[3, 1], excl_indptr=IP0, excl_indices=np.array([0, 9, 2], np.int32)),
     r"excl_indices\[1\] = 9 \(an excluded item of user 1, output row 1\)"),
    (dict(n=-3), "n must be an int >= 0"),
    (dict(n_threads=1.5), "n_threads must be an int"),
])
def test_factors_bad_inputs_raise(kwargs, match):
    args = dict(U=U0, V=V0, n=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        _topk.topk_factors(args.pop("U"), args.pop("V"), args.pop("n"), **args)


# ------------------------------------------------------------------------ score_factors (dense)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_score_factors_bit_identical_to_the_twin(dtype):
    # several chunks and panels, a ragged last panel, k no multiple of the SIMD width, users repeated
    rng = np.random.default_rng(21)
    U, V, bias, offset = factor_problem(rng, dtype, n_users=300, N=700, k=37)
    users = rng.integers(0, U.shape[0], 290)
    for off, b in ((offset, bias), (None, bias), (offset, None), (None, None)):
        got = _topk.score_factors(U, V, users=users, item_bias=b, user_offset=off)
        assert got.dtype == np.float64 and got.shape == (290, 700)
        np.testing.assert_array_equal(got, factor_scores(U, V, users, item_bias=b, user_offset=off))
    np.testing.assert_array_equal(_topk.score_factors(U, V), factor_scores(U, V))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_score_factors_rows_do_not_depend_on_the_batch_or_threads(dtype):
    rng = np.random.default_rng(22)
    U, V, bias, offset = factor_problem(rng, dtype, n_users=90, N=130, k=24)
    users = rng.permutation(90)[:70]
    batch = _topk.score_factors(U, V, users=users, item_bias=bias, user_offset=offset)
    for r in (0, 5, 69):
        one = _topk.score_factors(U, V, users=[users[r]], item_bias=bias, user_offset=offset)
        np.testing.assert_array_equal(one[0], batch[r])
    for nt in (2, 3):
        np.testing.assert_array_equal(
            _topk.score_factors(U, V, users=users, item_bias=bias, user_offset=offset, n_threads=nt), batch)


def test_score_factors_are_what_topk_factors_selects_from():
    rng = np.random.default_rng(23)
    U, V, bias, offset = factor_problem(rng, np.float32, n_users=50, N=80, k=10)
    S = _topk.score_factors(U, V, item_bias=bias, user_offset=offset)
    assert_same(_topk.topk_factors(U, V, 12, item_bias=bias, user_offset=offset), oracle(S, 12))


def test_score_factors_degenerate_shapes_and_bad_inputs():
    rng = np.random.default_rng(24)
    np.testing.assert_array_equal(_topk.score_factors(np.zeros((3, 0)), np.zeros((2, 0)), item_bias=[1.0, 2.0]),
                                  [[1.0, 2.0]] * 3)
    assert _topk.score_factors(rng.normal(size=(3, 4)), rng.normal(size=(0, 4))).shape == (3, 0)
    assert _topk.score_factors(rng.normal(size=(3, 4)), rng.normal(size=(5, 4)),
                               users=np.zeros(0, np.int64)).shape == (0, 5)
    V = rng.normal(size=(5, 4))
    V[2, 1] = np.nan
    assert np.isnan(_topk.score_factors(rng.normal(size=(3, 4)), V)[:, 2]).all()  # written, not raised
    with pytest.raises(ValueError, match=r"users\[1\] = 3 is outside \[0, 3\)"):
        _topk.score_factors(rng.normal(size=(3, 4)), rng.normal(size=(5, 4)), users=[0, 3])
    with pytest.raises(ValueError, match="one dtype"):
        _topk.score_factors(np.zeros((3, 4), np.float32), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="same number of factors"):
        _topk.score_factors(np.zeros((3, 4)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="item_bias must have 5 entries, got 4"):
        _topk.score_factors(np.zeros((3, 4)), np.zeros((5, 4)), item_bias=np.zeros(4))
