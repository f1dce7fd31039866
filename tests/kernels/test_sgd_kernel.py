"""The C SGD epoch kernels (fastmf._sgd over csrc/sgd.c) against the NumPy oracle fastmf.reference.

float64 epochs must equal ``reference.sgd_epoch`` run over the same order to 1e-10; float32 to a
tolerance justified below; the blocked parallel schedule must equal the reference over the order it
reports, whatever the thread count; bad input must raise, never crash.
"""

import fastmf
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from fastmf import reference
from fastmf import _sgd

MU, LR, REG, REG_BIAS = 3.4, 0.01, 0.05, 0.02


def make_problem(seed, n_users=40, n_items=30, nnz=500, k=8, dtype=np.float64):
    """Random ratings in which users 0, 7 and the last two, and items 3 and the last one, have no
    rating (empty rows of P and Q must stay untouched), plus a random model."""
    rng = np.random.default_rng(seed)
    user_pool = np.setdiff1d(np.arange(n_users), [0, 7, n_users - 2, n_users - 1])
    item_pool = np.setdiff1d(np.arange(n_items), [3, n_items - 1])
    users = rng.choice(user_pool, nnz).astype(np.int32)
    items = rng.choice(item_pool, nnz).astype(np.int32)
    ratings = rng.integers(1, 6, nnz).astype(dtype)
    P = rng.normal(0.0, 0.3, (n_users, k)).astype(dtype)
    Q = rng.normal(0.0, 0.3, (n_items, k)).astype(dtype)
    bu = rng.normal(0.0, 0.2, n_users).astype(dtype)
    bi = rng.normal(0.0, 0.2, n_items).astype(dtype)
    return (users, items, ratings), (P, Q, bu, bi)


def copies(model):
    return tuple(None if a is None else a.copy() for a in model)


def assert_model_close(got, want, atol, rtol=0.0):
    for name, g, w in zip(("P", "Q", "bu", "bi"), got, want):
        assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=name)


def assert_model_equal(got, want):
    for name, g, w in zip(("P", "Q", "bu", "bi"), got, want):
        assert_array_equal(g, w, err_msg=name)


def low_rank_problem(seed, n_users=200, n_items=150, nnz=5000, rank=3, k=4):
    """Ratings from planted rank-3 factors plus noise 0.3, for convergence comparisons."""
    rng = np.random.default_rng(seed)
    pairs = rng.choice(n_users * n_items, nnz, replace=False)
    users, items = (pairs // n_items).astype(np.int32), (pairs % n_items).astype(np.int32)
    U, V = rng.normal(0, 0.7, (n_users, rank)), rng.normal(0, 0.7, (n_items, rank))
    ratings = 3.0 + np.einsum("nk,nk->n", U[users], V[items]) + rng.normal(0, 0.3, nnz)
    init = np.random.default_rng(seed + 1)
    model = (init.normal(0, 0.1, (n_users, k)), init.normal(0, 0.1, (n_items, k)),
             np.zeros(n_users), np.zeros(n_items))
    return (users, items, ratings), model


# ----------------------------------------------------------------------------- serial vs oracle
@pytest.mark.parametrize("k", [0, 1, 7, 16, 257])
@pytest.mark.parametrize("biased", [True, False])
def test_epoch_equals_reference_float64(k, biased):
    data, model = make_problem(seed=k, k=k, nnz=400 if k > 100 else 600)
    order = _sgd.permutation(len(data[0]), seed=11, stream=k)
    want, got = copies(model), copies(model)
    sse_want = reference.sgd_epoch(*data, order, *want, MU, LR, REG, REG_BIAS, biased)
    sse_got = _sgd.sgd_epoch(*data, order, *got, MU, LR, REG, REG_BIAS, biased)
    assert isinstance(sse_got, float)
    assert_allclose(sse_got, sse_want, rtol=1e-10)
    assert_model_close(got, want, atol=1e-10)
    # empty users / items keep their rows; biased=False leaves the biases untouched
    for empty_user in (0, 7, -2, -1):
        assert_array_equal(got[0][empty_user], model[0][empty_user])
    for empty_item in (3, -1):
        assert_array_equal(got[1][empty_item], model[1][empty_item])
    if not biased:
        assert_array_equal(got[2], model[2])
        assert_array_equal(got[3], model[3])
    # the epoch did move the model
    moved = got[0] - model[0] if k > 0 else got[2] - model[2]
    assert np.abs(moved).max() > 1e-4 or (k == 0 and not biased)


def test_unbiased_accepts_no_bias_arrays():
    data, model = make_problem(seed=5, k=5)
    order = _sgd.permutation(len(data[0]), seed=1)
    P1, Q1 = model[0].copy(), model[1].copy()
    P2, Q2 = model[0].copy(), model[1].copy()
    sse1 = _sgd.sgd_epoch(*data, order, P1, Q1, None, None, MU, LR, REG, biased=False)
    sse2 = reference.sgd_epoch(*data, order, P2, Q2, None, None, MU, LR, REG, biased=False)
    assert_allclose(sse1, sse2, rtol=1e-10)
    assert_allclose(P1, P2, atol=1e-10)
    assert_allclose(Q1, Q2, atol=1e-10)


def test_several_epochs_equal_reference_float64():
    data, model = make_problem(seed=3, k=10)
    want, got = copies(model), copies(model)
    for epoch in range(5):
        order = _sgd.permutation(len(data[0]), seed=2024, stream=epoch)
        sse_want = reference.sgd_epoch(*data, order, *want, MU, LR, REG, None, True)
        sse_got = _sgd.sgd_epoch(*data, order, *got, MU, LR, REG, None, True)
        assert_allclose(sse_got, sse_want, rtol=1e-10, err_msg=f"epoch {epoch}")
        assert_model_close(got, want, atol=1e-10)


def test_order_with_repeats_and_subset_equals_reference():
    data, model = make_problem(seed=8, k=6)
    order = np.random.default_rng(0).integers(0, len(data[0]), 300).astype(np.int64)
    want, got = copies(model), copies(model)
    sse_want = reference.sgd_epoch(*data, order, *want, MU, LR, REG, REG_BIAS, True)
    sse_got = _sgd.sgd_epoch(*data, order, *got, MU, LR, REG, REG_BIAS, True)
    assert_allclose(sse_got, sse_want, rtol=1e-10)
    assert_model_close(got, want, atol=1e-10)


@pytest.mark.parametrize("k,layout", [(1, "plain"), (16, "plain"), (100, "plain"), (112, "aligned")])
def test_epoch_float32_close_to_reference(k, layout):
    # Tolerance: the C kernel and the reference both work in float32 (eps = 6e-8) but round
    # differently: the dot product sums in another order (error ~ k eps |p||q|), the row update is
    # computed as (1 - lr reg) p + (lr e) q instead of p + lr (e q - reg p), and FMA may be used.
    # Each of these moves a value by a few ulps per update; one epoch of 600 updates at lr = 0.01
    # does not amplify them (measured max deviation ~1e-6 for entries of size ~0.3-3), so
    # atol 1e-5 / rtol 1e-4 leaves a 10x margin. Formula errors are caught exactly by the float64
    # tests; this test pins the float32 instantiation of the same code.
    # "aligned": the estimator's layout, which takes the vector path (see below)
    data, model = make_problem(seed=k + 100, k=k, dtype=np.float32)
    order = _sgd.permutation(len(data[0]), seed=5)
    want, got = copies(model), (aligned_model(model) if layout == "aligned" else copies(model))
    if layout == "aligned":
        assert _sgd.row_vectors(got[0], got[1]) == k // 16
    sse_want = reference.sgd_epoch(*data, order, *want, MU, LR, REG, REG_BIAS, True)
    sse_got = _sgd.sgd_epoch(*data, order, *got, MU, LR, REG, REG_BIAS, True)
    for a in got:
        assert a.dtype == np.float32
    assert_allclose(sse_got, sse_want, rtol=1e-5)
    assert_model_close(got, want, atol=1e-5, rtol=1e-4)


def test_float32_and_float64_agree_to_float32_accuracy():
    data64, model64 = make_problem(seed=21, k=12)
    data32 = (data64[0], data64[1], data64[2].astype(np.float32))
    model32 = tuple(a.astype(np.float32) for a in model64)
    order = _sgd.permutation(len(data64[0]), seed=9)
    sse64 = _sgd.sgd_epoch(*data64, order, *model64, MU, LR, REG, None, True)
    sse32 = _sgd.sgd_epoch(*data32, order, *model32, MU, LR, REG, None, True)
    assert_allclose(sse32, sse64, rtol=1e-5)
    assert_model_close(model32, model64, atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------------------------- orders, seeds
def test_permutation_is_a_permutation_and_reproducible():
    for n in (0, 1, 2, 17, 1000):
        p = _sgd.permutation(n, seed=42, stream=3)
        assert p.dtype == np.int64 and p.shape == (n,)
        assert_array_equal(np.sort(p), np.arange(n))
        assert_array_equal(_sgd.permutation(n, seed=42, stream=3), p)
    a = _sgd.permutation(1000, seed=42, stream=3)
    assert not np.array_equal(a, _sgd.permutation(1000, seed=43, stream=3))
    assert not np.array_equal(a, _sgd.permutation(1000, seed=42, stream=4))
    order = np.arange(1000, dtype=np.int64)
    _sgd.shuffle(order, 42, 3)
    assert_array_equal(order, a)
    # the largest seed is accepted
    assert_array_equal(np.sort(_sgd.permutation(10, seed=2**64 - 1)), np.arange(10))


@pytest.mark.parametrize("n", [0, 1, 2, 17, 1000, 4096, 4097, 6000])
def test_permutation_equals_the_pure_python_reference(n):
    # the C shuffle (xoshiro256** + Lemire draws + Fisher-Yates; arrays above 4096 entries take the
    # path that draws partners ahead and prefetches them) against its pure-Python twin
    for seed, stream in ((42, 3), (0, 0), (2**64 - 1, 7)):
        assert_array_equal(_sgd.permutation(n, seed, stream), reference.permutation(n, seed, stream))


@pytest.mark.parametrize("n", [0, 1, 2, 7, 1000])
def test_normals_equal_the_numpy_twin(n):
    # csrc/rng.h's polar-method normal draws (for Gibbs sampling) against fastmf.reference.normals:
    # the same uniforms and rejections; the values agree up to the rounding of log
    for seed, stream in ((42, 3), (0, 0), (2**64 - 1, 7)):
        c = _sgd.normals(n, seed, stream)
        assert c.dtype == np.float64 and c.shape == (n,)
        assert_allclose(c, reference.normals(n, seed, stream), rtol=1e-14, atol=0)
        assert_array_equal(_sgd.normals(n, seed, stream), c)


def test_normals_are_standard_normal_and_stream_dependent():
    x = _sgd.normals(200_000, seed=5)
    assert abs(x.mean()) < 0.01 and abs(x.var() - 1.0) < 0.01
    assert abs(np.mean(x > 1.96) - 0.025) < 0.002  # a tail, not only the first two moments
    assert not np.array_equal(x[:100], _sgd.normals(100, seed=5, stream=1))
    assert_array_equal(_sgd.normals(10, seed=5), x[:10])
    with pytest.raises(ValueError, match="n must be >= 0"):
        _sgd.normals(-1, seed=0)


@pytest.mark.parametrize("B", [2, 8])
def test_block_schedule_equals_the_pure_python_reference(B):
    # B = 2 makes blocks above 4096 ratings, B = 8 below: both shuffle paths
    rng = np.random.default_rng(4)
    users = rng.integers(0, 300, 20_000).astype(np.int32)
    items = rng.integers(0, 200, 20_000).astype(np.int32)
    plan = _sgd.make_block_plan(users, items, 300, 200, B)
    shuffled = reference.block_permutations(plan.block_ptr, plan.block_order, seed=9, epoch=4)
    ids = [b * B + _sgd.step_group(B, b, s) for s in range(B) for b in range(B)]
    expect = np.concatenate([shuffled[plan.block_ptr[i]:plan.block_ptr[i + 1]] for i in ids])
    assert_array_equal(_sgd.block_schedule(plan, seed=9, epoch=4), expect)
    assert max(np.diff(plan.block_ptr)) > 4096 if B == 2 else max(np.diff(plan.block_ptr)) <= 4096


def test_permutation_is_uniform():
    # value at position 0 and position 3 of permutations of 4 over 6000 streams: each value has
    # probability 1/4, count 1500 with standard deviation 33.5; 6 sd bounds cannot fail by chance
    # (p < 1e-8) but catch an off-by-one in the swap range (e.g. Sattolo's cycle: no fixed points)
    perms = np.array([_sgd.permutation(4, seed=7, stream=s) for s in range(6000)])
    for pos in (0, 3):
        counts = np.bincount(perms[:, pos], minlength=4)
        assert np.all(np.abs(counts - 1500) < 6 * 33.5), (pos, counts)


def test_epoch_bit_identical_across_runs():
    data, model = make_problem(seed=13, k=33, dtype=np.float32)
    results = []
    for _ in range(2):
        m = copies(model)
        order = _sgd.permutation(len(data[0]), seed=77, stream=1)
        sse = _sgd.sgd_epoch(*data, order, *m, MU, LR, REG, None, True)
        results.append((sse, m))
    assert results[0][0] == results[1][0]
    assert_model_equal(results[0][1], results[1][1])


def test_empty_order_and_no_ratings():
    data, model = make_problem(seed=1, k=4)
    m = copies(model)
    assert _sgd.sgd_epoch(*data, np.empty(0, np.int64), *m, MU, LR, REG) == 0.0
    assert_model_equal(m, model)
    empty = (np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0))
    assert _sgd.sgd_epoch(*empty, np.empty(0, np.int64), *m, MU, LR, REG) == 0.0
    plan = _sgd.make_block_plan(empty[0], empty[1], 40, 30, 2)
    assert _sgd.sgd_epoch_blocked(*empty, *m, MU, LR, REG, None, True, plan, 0, 0, 2) == 0.0
    assert_model_equal(m, model)


@pytest.mark.parametrize("dtype,k", [(np.float32, 100), (np.float64, 7), (np.float32, 32)])
def test_aligned_padded_factors_give_identical_epochs(dtype, k):
    data, model = make_problem(seed=k, k=k, dtype=dtype)
    P = _sgd.aligned_factors(model[0].shape[0], k, dtype)
    Q = _sgd.aligned_factors(model[1].shape[0], k, dtype)
    assert P.shape == model[0].shape and P.dtype == dtype and not P.any()
    row_bytes = P.strides[0]
    assert P.ctypes.data % 64 == 0 and row_bytes % 64 == 0 and row_bytes >= k * P.itemsize
    P[:], Q[:] = model[0], model[1]
    plain = copies(model)
    bu, bi = model[2].copy(), model[3].copy()
    order = _sgd.permutation(len(data[0]), seed=3)
    sse_padded = _sgd.sgd_epoch(*data, order, P, Q, bu, bi, MU, LR, REG, None, True)
    sse_plain = _sgd.sgd_epoch(*data, order, *plain, MU, LR, REG, None, True)
    assert sse_padded == sse_plain
    assert_model_equal((P, Q, bu, bi), plain)


# ------------------------------------------------------------------------------ the vector path
# Rows of whole 64-byte vectors (k a multiple of 16 float32 / 8 float64, 64-byte aligned rows: the
# layout the estimator uses) take the vector path of csrc/sgd.c: unrolled rows, two ratings with no
# shared row updated side by side. It must compute exactly what the element-by-element path does.
def aligned_model(model):
    """The model with P and Q copied into 64-byte aligned, row-padded buffers (aligned_factors)."""
    P = _sgd.aligned_factors(*model[0].shape, model[0].dtype)
    Q = _sgd.aligned_factors(*model[1].shape, model[1].dtype)
    P[:], Q[:] = model[0], model[1]
    return (P, Q, model[2].copy(), model[3].copy())


def misaligned(a):
    """A C-contiguous copy of a whose data start one element past a 64-byte boundary."""
    buf = np.zeros(a.size + 128 // a.itemsize, dtype=a.dtype)
    start = ((-buf.ctypes.data) % 64) // a.itemsize + 1
    out = buf[start:start + a.size].reshape(a.shape)
    out[:] = a
    assert out.ctypes.data % 64 != 0 and out.flags.c_contiguous
    return out


def misaligned_model(model):
    return (misaligned(model[0]), misaligned(model[1]), model[2].copy(), model[3].copy())


def test_row_vectors_reports_the_path():
    for dtype, k, want in [(np.float32, 16, 1), (np.float32, 112, 7), (np.float32, 128, 8),
                           (np.float32, 256, 16), (np.float64, 8, 1), (np.float64, 104, 13)]:
        P, Q = _sgd.aligned_factors(5, k, dtype), _sgd.aligned_factors(4, k, dtype)
        assert _sgd.row_vectors(P, Q) == want, (dtype, k)
        assert _sgd.row_vectors(misaligned(P), Q) == 0
        assert _sgd.row_vectors(P, misaligned(Q)) == 0
    # a width that is not whole vectors (a view of padded rows) and a dense odd width
    P, Q = _sgd.aligned_factors(5, 100, np.float32), _sgd.aligned_factors(4, 100, np.float32)
    assert _sgd.row_vectors(P, Q) == 0
    assert _sgd.row_vectors(np.zeros((3, 0), np.float32), np.zeros((3, 0), np.float32)) == 0
    with pytest.raises(ValueError, match="columns"):
        _sgd.row_vectors(_sgd.aligned_factors(5, 16, np.float32), _sgd.aligned_factors(5, 32, np.float32))
    with pytest.raises(ValueError, match="float32 or float64"):
        _sgd.row_vectors(np.zeros((3, 16), np.int32), np.zeros((3, 16), np.int32))


# ------------------------------------------------------------------- the instruction-set copies
ISA_NAMES = [name for name, _ in _sgd.isa_levels()]


@pytest.fixture(params=ISA_NAMES)
def isa(request, monkeypatch):
    """Run the test on each copy of the epoch loop this machine runs (FASTMF_ISA)."""
    monkeypatch.setenv("FASTMF_ISA", request.param)
    return request.param


def test_isa_levels_name_the_copies_best_first():
    levels = _sgd.isa_levels()
    assert levels[-1][0] == "default" and [n for n, _ in levels] == ISA_NAMES
    known = {"x86-64-v4": 64, "x86-64-v3": 32}
    for name, width in levels:
        assert width in (16, 32, 64)
        if name in known:
            assert width == known[name]
    assert [w for _, w in levels] == sorted((w for _, w in levels), reverse=True)


def test_fastmf_isa_picks_a_copy_and_rejects_an_unknown_one(monkeypatch):
    data, model = make_problem(seed=2, k=16, dtype=np.float32)
    order = np.arange(len(data[0]), dtype=np.int64)
    monkeypatch.setenv("FASTMF_ISA", "auto")
    auto = copies(model)
    sse_auto = _sgd.sgd_epoch(*data, order, *auto, MU, LR, REG)
    monkeypatch.setenv("FASTMF_ISA", ISA_NAMES[0])  # auto is the best copy
    best = copies(model)
    assert _sgd.sgd_epoch(*data, order, *best, MU, LR, REG) == sse_auto
    assert_model_equal(auto, best)
    for bad in ("x86-64-v9", "avx2", "native"):
        monkeypatch.setenv("FASTMF_ISA", bad)
        with pytest.raises(ValueError, match=r"FASTMF_ISA=.*allowed: 'auto', .*'default'"):
            _sgd.sgd_epoch(*data, order, *copies(model), MU, LR, REG)


VECTOR_CASES = [(np.float32, 16), (np.float32, 48), (np.float32, 112), (np.float32, 128),
                (np.float32, 144), (np.float64, 8), (np.float64, 64), (np.float64, 72),
                (np.float64, 104)]


@pytest.mark.parametrize("dtype,k", VECTOR_CASES)
@pytest.mark.parametrize("biased", [True, False])
def test_vector_path_is_bit_identical_to_element_path(dtype, k, biased, isa):
    # 40 users x 30 items: consecutive ratings often share a row, so both the paired and the
    # one-at-a-time updates of the vector path run
    data, model = make_problem(seed=k + 7, k=k, dtype=dtype)
    vec, ele = aligned_model(model), misaligned_model(model)
    assert _sgd.row_vectors(vec[0], vec[1]) == k // (64 // np.dtype(dtype).itemsize)
    assert _sgd.row_vectors(ele[0], ele[1]) == 0
    for epoch in range(2):
        order = _sgd.permutation(len(data[0]), seed=4, stream=epoch)
        sse_vec = _sgd.sgd_epoch(*data, order, *vec, MU, LR, REG, REG_BIAS, biased)
        sse_ele = _sgd.sgd_epoch(*data, order, *ele, MU, LR, REG, REG_BIAS, biased)
        assert sse_vec == sse_ele
        assert_model_equal(vec, ele)
    assert not np.array_equal(vec[0], model[0])  # the epochs did update the model
    # the blocked epoch too (its runs check each rating against the block's index ranges)
    plan = _sgd.make_block_plan(data[0], data[1], len(model[0]), len(model[1]), 3)
    for n_threads in (1, 2):
        a, b = aligned_model(vec), misaligned_model(ele)
        assert _sgd.row_vectors(a[0], a[1]) > 0 and _sgd.row_vectors(b[0], b[1]) == 0
        sse_a = _sgd.sgd_epoch_blocked(*data, *a, MU, LR, REG, REG_BIAS, biased, plan, 8, 1, n_threads)
        sse_b = _sgd.sgd_epoch_blocked(*data, *b, MU, LR, REG, REG_BIAS, biased, plan, 8, 1, n_threads)
        assert sse_a == sse_b
        assert_model_equal(a, b)


@pytest.mark.parametrize("k", [8, 64, 104])
@pytest.mark.parametrize("biased", [True, False])
def test_vector_path_equals_reference_float64(k, biased, isa):
    data, model = make_problem(seed=k + 3, k=k, nnz=800)
    got, want = aligned_model(model), copies(model)
    assert _sgd.row_vectors(got[0], got[1]) > 0
    for epoch in range(3):
        order = _sgd.permutation(len(data[0]), seed=12, stream=epoch)
        sse_want = reference.sgd_epoch(*data, order, *want, MU, LR, REG, REG_BIAS, biased)
        sse_got = _sgd.sgd_epoch(*data, order, *got, MU, LR, REG, REG_BIAS, biased)
        assert_allclose(sse_got, sse_want, rtol=1e-10)
        assert_model_close(got, want, atol=1e-10)


def test_vector_path_bad_index_stops_before_its_update():
    # the paired update must not run a pair whose second rating is invalid
    data, model = make_problem(seed=9, k=16, dtype=np.float32)
    users = data[0].copy()
    users[data[0].shape[0] // 2] = 10_000
    order = np.arange(len(users), dtype=np.int64)
    vec, ele = aligned_model(model), misaligned_model(model)
    for m in (vec, ele):
        with pytest.raises(IndexError, match=rf"users\[{len(users) // 2}\] = 10000"):
            _sgd.sgd_epoch(users, data[1], data[2], order, *m, MU, LR, REG)
    assert_model_equal(vec, ele)
    # the updates before the bad rating were kept, none after: equal to an epoch over the prefix
    ref = misaligned_model(model)
    _sgd.sgd_epoch(users, data[1], data[2], order[: len(users) // 2], *ref, MU, LR, REG)
    assert_model_equal(vec, ref)


# ----------------------------------------------------------------------------- blocked schedule
def test_block_plan_partitions_the_ratings():
    data, _ = make_problem(seed=4, n_users=60, n_items=50, nnz=2000)
    users, items = data[0], data[1]
    B = 3
    plan = _sgd.make_block_plan(users, items, 60, 50, B)
    assert plan.n_blocks == B and plan.block_ptr.shape == (B * B + 1,)
    assert plan.block_ptr[0] == 0 and plan.block_ptr[-1] == len(users)
    assert np.all(np.diff(plan.block_ptr) >= 0)
    # every rating exactly once
    assert_array_equal(np.sort(plan.block_order), np.arange(len(users)))
    for a in range(B):
        for b in range(B):
            seg = plan.block_order[plan.block_ptr[a * B + b]:plan.block_ptr[a * B + b + 1]]
            assert np.all(plan.user_block[users[seg]] == a)
            assert np.all(plan.item_block[items[seg]] == b)
            assert np.all(np.diff(seg) > 0)  # ascending within a block
    # groups are contiguous index ranges holding nnz / B +- the largest row degree ratings each
    for groups, idx, n in ((plan.user_block, users, 60), (plan.item_block, items, 50)):
        assert groups.min() == 0 and groups.max() == B - 1
        assert np.all(np.diff(groups) >= 0)
        deg = np.bincount(idx, minlength=n)
        load = np.bincount(groups, weights=deg, minlength=B)
        assert np.all(np.abs(load - len(users) / B) <= deg.max())


@pytest.mark.parametrize("B", range(1, 10))
def test_step_group_pairs_each_user_group_with_each_item_group_once(B):
    pairs = np.array([[_sgd.step_group(B, b, s) for b in range(B)] for s in range(B)])
    # every step pairs the user groups with distinct item groups, every block lies in one step
    for s in range(B):
        assert sorted(pairs[s]) == list(range(B))
    for b in range(B):
        assert sorted(pairs[:, b]) == list(range(B))
    expect = [[b ^ s if B & (B - 1) == 0 else (b + s) % B for b in range(B)] for s in range(B)]
    assert_array_equal(pairs, expect)
    with pytest.raises(ValueError, match="must lie in"):
        _sgd.step_group(B, B, 0)
    with pytest.raises(ValueError, match="n_blocks"):
        _sgd.step_group(0, 0, 0)


@pytest.mark.parametrize("B", [4, 5])
def test_block_schedule_visits_each_rating_once_and_steps_share_no_row(B):
    data, _ = make_problem(seed=6, n_users=50, n_items=40, nnz=1500)
    users, items = data[0], data[1]
    plan = _sgd.make_block_plan(users, items, 50, 40, B)
    sched = _sgd.block_schedule(plan, seed=5, epoch=2)
    assert_array_equal(np.sort(sched), np.arange(len(users)))
    assert_array_equal(_sgd.block_schedule(plan, seed=5, epoch=2), sched)
    assert not np.array_equal(_sgd.block_schedule(plan, seed=5, epoch=3), sched)
    # within step s, the blocks (b, step_group(B, b, s)) use pairwise disjoint user and item sets
    sizes = np.diff(plan.block_ptr)
    pos = 0
    for s in range(B):
        step_users, step_items = [], []
        for b in range(B):
            n = sizes[b * B + _sgd.step_group(B, b, s)]
            seg = sched[pos:pos + n]
            pos += n
            assert np.all(plan.user_block[users[seg]] == b)
            assert np.all(plan.item_block[items[seg]] == _sgd.step_group(B, b, s))
            step_users.append(set(users[seg].tolist()))
            step_items.append(set(items[seg].tolist()))
        for x in range(B):
            for y in range(x + 1, B):
                assert not step_users[x] & step_users[y]
                assert not step_items[x] & step_items[y]
    assert pos == len(users)


@pytest.mark.parametrize("biased", [True, False])
def test_blocked_single_thread_equals_reference_over_schedule(biased):
    data, model = make_problem(seed=31, n_users=45, n_items=35, nnz=900, k=9)
    plan = _sgd.make_block_plan(data[0], data[1], 45, 35, 3)
    want, got = copies(model), copies(model)
    for epoch in range(3):
        sched = _sgd.block_schedule(plan, seed=99, epoch=epoch)
        sse_want = reference.sgd_epoch(*data, sched, *want, MU, LR, REG, REG_BIAS, biased)
        sse_got = _sgd.sgd_epoch_blocked(*data, *got, MU, LR, REG, REG_BIAS, biased,
                                         plan, 99, epoch, 1)
        assert_allclose(sse_got, sse_want, rtol=1e-10, err_msg=f"epoch {epoch}")
        assert_model_close(got, want, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_blocks", [2, 4, 5, 8])
def test_blocked_is_identical_for_any_thread_count_and_run(dtype, n_blocks, isa):
    # blocks start as soon as the blocks they depend on are done (no barrier per step): whatever
    # the interleaving, the model must be the serial one
    data, model = make_problem(seed=17, n_users=80, n_items=60, nnz=4000, k=16, dtype=dtype)
    plan = _sgd.make_block_plan(data[0], data[1], 80, 60, n_blocks)
    runs = []
    for n_threads in (1, 2, 2, 3, 4, 2):
        m = copies(model)
        work = np.empty(len(data[0]), np.int64)
        sses = [_sgd.sgd_epoch_blocked(*data, *m, MU, LR, REG, None, True, plan, 5, e, n_threads, work)
                for e in range(3)]
        runs.append((sses, m))
    for sses, m in runs[1:]:
        assert sses == runs[0][0]
        assert_model_equal(m, runs[0][1])
    # and a different seed gives a different model
    m = copies(model)
    _sgd.sgd_epoch_blocked(*data, *m, MU, LR, REG, None, True, plan, 6, 0, 2)
    assert not np.array_equal(m[0], runs[0][1][0])


def custom_plan(users, items, user_block, item_block, n_blocks):
    """A BlockPlan for any assignment of users and items to groups (make_block_plan makes each
    group a contiguous index range; the kernel must accept other assignments too)."""
    B = n_blocks
    bid = user_block[users].astype(np.int64) * B + item_block[items]
    order = np.argsort(bid, kind="stable").astype(np.int64)
    ptr = np.searchsorted(bid[order], np.arange(B * B + 1)).astype(np.int64)
    return _sgd.BlockPlan(B, ptr, order, user_block.astype(np.int32), item_block.astype(np.int32))


_TEAM_SCRIPT = """
import sys, numpy as np
from fastmf import _sgd
rng = np.random.default_rng(0)
users = rng.integers(0, 60, 3000).astype(np.int32)
items = rng.integers(0, 50, 3000).astype(np.int32)
ratings = rng.uniform(1, 5, 3000)
plan = _sgd.make_block_plan(users, items, 60, 50, 8)
P, Q = rng.normal(0, 0.1, (60, 8)), rng.normal(0, 0.1, (50, 8))
bu, bi = np.zeros(60), np.zeros(50)
for epoch in range(3):
    _sgd.sgd_epoch_blocked(users, items, ratings, P, Q, bu, bi, 3.0, 0.02, 0.05, None, True, plan, 1,
                           epoch, int(sys.argv[1]))
sys.stdout.write(P.tobytes().hex() + Q.tobytes().hex())
"""


@pytest.mark.skipif(not fastmf.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("limit, n_threads", [(1, 2), (1, 8), (3, 4), (2, 4)])
def test_blocked_epoch_with_a_smaller_openmp_team_than_asked(limit, n_threads):
    # OpenMP may start fewer threads than asked (here OMP_THREAD_LIMIT); the epoch must still run
    # every block (no thread waits for a block nobody runs) and give the same model
    import os
    import subprocess
    import sys

    def run(threads, env_extra):
        env = dict(os.environ, **env_extra)
        proc = subprocess.run([sys.executable, "-c", _TEAM_SCRIPT, str(threads)], env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert run(n_threads, {"OMP_THREAD_LIMIT": str(limit)}) == run(1, {})


@pytest.mark.parametrize("n_threads", [1, 3])
def test_blocked_with_interleaved_groups_equals_reference(n_threads):
    data, model = make_problem(seed=41, n_users=45, n_items=35, nnz=900, k=16)
    plan = custom_plan(data[0], data[1], np.arange(45) % 3, (np.arange(35) * 7) % 3, 3)
    got, want = aligned_model(model), copies(model)
    for epoch in range(2):
        sched = _sgd.block_schedule(plan, seed=3, epoch=epoch)
        sse_want = reference.sgd_epoch(*data, sched, *want, MU, LR, REG, REG_BIAS, True)
        sse_got = _sgd.sgd_epoch_blocked(*data, *got, MU, LR, REG, REG_BIAS, True, plan, 3, epoch,
                                         n_threads)
        assert_allclose(sse_got, sse_want, rtol=1e-10)
        assert_model_close(got, want, atol=1e-10)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_blocked_bad_index_in_a_later_block_raises(n_threads):
    data, model = make_problem(seed=43, n_users=60, n_items=50, nnz=2000, k=16, dtype=np.float32)
    plan = _sgd.make_block_plan(data[0], data[1], 60, 50, 4)
    users = data[0].copy()
    # a rating of the last step's first block, corrupted after the plan was built
    bid = 0 * 4 + 3
    pos = int(plan.block_order[plan.block_ptr[bid]])
    users[pos] = 60
    for m in (aligned_model(model), copies(model)):
        with pytest.raises(IndexError, match=rf"users\[{pos}\] = 60 is outside \[0, 60\)"):
            _sgd.sgd_epoch_blocked(users, data[1], data[2], *m, MU, LR, REG, None, True, plan, 1, 0,
                                   n_threads)
    # moved into another block's index range (still a valid user): a plan mismatch
    users[pos] = 59
    with pytest.raises(ValueError, match="does not match"):
        _sgd.sgd_epoch_blocked(users, data[1], data[2], *aligned_model(model), MU, LR, REG, None,
                               True, plan, 1, 0, n_threads)


def test_blocked_training_loss_close_to_serial_shuffle():
    # After 25 epochs on planted rank-3 data, training by the blocked schedule (2 threads, 2 and 4
    # blocks) and by the global shuffle must reach the same training RMSE: only the order of the
    # updates differs. Measured: the global shuffle ends at 0.317-0.320 over 5 seeds, the blocked
    # schedule at 0.315-0.321 (at most 1.8% from the serial run here). A schedule that skipped one
    # block of 16 ends 9% higher, one that visited a quarter of the ratings twice 14% lower; the 3%
    # relative tolerance sits between the two.
    data, model = low_rank_problem(seed=0)
    users, items, ratings = data
    mu = float(ratings.mean())
    lr, reg, epochs = 0.02, 0.02, 25

    serial = copies(model)
    for e in range(epochs):
        _sgd.sgd_epoch(*data, _sgd.permutation(len(users), 1, e), *serial, mu, lr, reg)
    rmse_serial = reference.rmse(*serial, mu, users, items, ratings)
    assert rmse_serial < 0.45  # it did learn (the noise level is 0.3, ratings' std is about 0.9)

    for B in (2, 4):
        blocked = copies(model)
        plan = _sgd.make_block_plan(users, items, 200, 150, B)
        for e in range(epochs):
            sse = _sgd.sgd_epoch_blocked(*data, *blocked, mu, lr, reg, None, True, plan, 1, e, 2)
        rmse_blocked = reference.rmse(*blocked, mu, users, items, ratings)
        assert_allclose(rmse_blocked, rmse_serial, rtol=0.03)
        assert np.isfinite(sse)


def test_blocked_rejects_a_plan_of_other_data():
    data, model = make_problem(seed=2, n_users=40, n_items=30, nnz=500)
    other, _ = make_problem(seed=3, n_users=40, n_items=30, nnz=500)
    plan = _sgd.make_block_plan(other[0], other[1], 40, 30, 2)
    with pytest.raises(ValueError, match="does not match"):
        _sgd.sgd_epoch_blocked(*data, *copies(model), MU, LR, REG, None, True, plan, 0, 0, 2)
    small = _sgd.make_block_plan(other[0][:100], other[1][:100], 40, 30, 2)
    with pytest.raises(ValueError, match="covers 100 ratings"):
        _sgd.sgd_epoch_blocked(*data, *copies(model), MU, LR, REG, None, True, small, 0, 0, 1)
    with pytest.raises(ValueError, match="BlockPlan"):
        _sgd.sgd_epoch_blocked(*data, *copies(model), MU, LR, REG, None, True,
                               (plan.block_ptr, plan.block_order), 0, 0, 1)


# ------------------------------------------------------------------------------------- hogwild
def test_hogwild_one_thread_equals_serial_and_two_threads_converge():
    data, model = make_problem(seed=19, k=8)
    order = _sgd.permutation(len(data[0]), seed=4)
    a, b = copies(model), copies(model)
    sse_a = _sgd.sgd_epoch(*data, order, *a, MU, LR, REG, None, True)
    sse_b = _sgd.sgd_epoch_hogwild(*data, order, *b, MU, LR, REG, None, True, n_threads=1)
    assert sse_a == sse_b
    assert_model_equal(a, b)

    # 2 threads: racy, so compared by the training RMSE after 25 epochs. Measured over 5 runs: the
    # serial shuffle ends at 0.2963-0.2978 (6 seeds), Hogwild at 0.300-0.303 (+1.2% to +2.4%: on
    # 200 users and 150 items concurrent threads often hit one row and lose an update). 5% bounds
    # that, while a pass that skips 1/16 of the ratings ends 9% higher (see the test above).
    data, model = low_rank_problem(seed=1)
    users, items, ratings = data
    mu = float(ratings.mean())
    serial, hog = copies(model), copies(model)
    for e in range(25):
        order = _sgd.permutation(len(users), 2, e)
        _sgd.sgd_epoch(*data, order, *serial, mu, 0.02, 0.02)
        _sgd.sgd_epoch_hogwild(*data, order, *hog, mu, 0.02, 0.02, n_threads=2)
    assert_allclose(reference.rmse(*hog, mu, users, items, ratings),
                    reference.rmse(*serial, mu, users, items, ratings), rtol=0.05)


# ---------------------------------------------------------------------------------- divergence
def test_divergence_raises_floating_point_error():
    data, model = make_problem(seed=23, k=8)
    order = _sgd.permutation(len(data[0]), seed=1)
    with pytest.raises(FloatingPointError, match="diverged.*smaller lr"):
        _sgd.sgd_epoch(*data, order, *copies(model), MU, 50.0, REG)
    with pytest.raises(FloatingPointError, match="diverged"):
        _sgd.sgd_epoch_hogwild(*data, order, *copies(model), MU, 50.0, REG, n_threads=2)
    plan = _sgd.make_block_plan(data[0], data[1], 40, 30, 2)
    with pytest.raises(FloatingPointError, match="diverged"):
        _sgd.sgd_epoch_blocked(*data, *copies(model), MU, 50.0, REG, None, True, plan, 0, 0, 2)


def test_non_finite_factor_of_an_unrated_user_is_reported():
    # user 7 has no rating, so the loss stays finite; the end-of-epoch scan must still catch it
    data, model = make_problem(seed=29, k=8)
    P, Q, bu, bi = copies(model)
    P[7, 3] = np.inf
    order = _sgd.permutation(len(data[0]), seed=1)
    with pytest.raises(FloatingPointError, match=r"P\[7\]"):
        _sgd.sgd_epoch(*data, order, P, Q, bu, bi, MU, LR, REG)
    P, Q, bu, bi = copies(model)
    bi[3] = np.nan
    with pytest.raises(FloatingPointError, match=r"bi\[3\]"):
        _sgd.sgd_epoch(*data, order, P, Q, bu, bi, MU, LR, REG)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_end_of_epoch_scan_finds_the_first_non_finite_row(dtype, padded, bad):
    # one rating (user 0, item 0); every other row is untouched, so only the scan can see them. The
    # rows span several 4096-element chunks of the scan, and the positions hit its vector part, its
    # tail and the last row.
    k = 24
    n = 700
    users, items = np.zeros(1, np.int32), np.zeros(1, np.int32)
    ratings = np.full(1, 3.0, dtype)
    for row, col in ((1, 0), (170, 23), (171, 5), (n - 1, k - 1)):
        if padded:
            P, Q = _sgd.aligned_factors(n, k, dtype), _sgd.aligned_factors(n, k, dtype)
        else:
            P, Q = np.zeros((n, k), dtype), np.zeros((n, k), dtype)
        bu, bi = np.zeros(n, dtype), np.zeros(n, dtype)
        for name, arr, idx in (("P", P, (row, col)), ("Q", Q, (row, col)), ("bu", bu, row),
                               ("bi", bi, row)):
            arr[idx] = bad
            with pytest.raises(FloatingPointError, match=rf"{name}\[{row}\]"):
                _sgd.sgd_epoch(users, items, ratings, np.zeros(1, np.int64), P, Q, bu, bi, 3.0,
                               0.01, 0.1)
            arr[idx] = 0
    # all finite: no error
    _sgd.sgd_epoch(users, items, ratings, np.zeros(1, np.int64), P, Q, bu, bi, 3.0, 0.01, 0.1)


# --------------------------------------------------------------------------------- bad input
def _bad_cases():
    (users, items, ratings), (P, Q, bu, bi) = make_problem(seed=0, k=4)
    order = np.arange(len(users), dtype=np.int64)
    base = dict(users=users, items=items, ratings=ratings, order=order, P=P, Q=Q, bu=bu, bi=bi)
    ro = P.copy()
    ro.setflags(write=False)
    cases = {
        "P 1-D": dict(P=P.ravel()),
        "Q k differs": dict(Q=np.zeros((30, 5))),
        "bu length": dict(bu=np.zeros(39)),
        "bi length": dict(bi=np.zeros(31)),
        "items length": dict(items=items[:-1]),
        "ratings length": dict(ratings=ratings[:-1]),
        "users int64": dict(users=users.astype(np.int64)),
        "ratings float32": dict(ratings=ratings.astype(np.float32)),
        "Q float32": dict(Q=Q.astype(np.float32)),
        "P int": dict(P=P.astype(np.int64)),
        "P list": dict(P=P.tolist()),
        "order int32": dict(order=order.astype(np.int32)),
        "order strided": dict(order=np.arange(2 * len(users), dtype=np.int64)[::2]),
        "P column-major": dict(P=np.asfortranarray(P)),
        "P read-only": dict(P=ro),
        "Q is P": dict(Q=P),
        "bu missing": dict(bu=None),
        "bi overlaps bu": dict(bi=bu[:30]),
    }
    return base, cases


@pytest.mark.parametrize("case", list(_bad_cases()[1]))
def test_bad_arrays_raise_value_error(case):
    base, cases = _bad_cases()
    kw = {**base, **cases[case]}
    args = (kw["users"], kw["items"], kw["ratings"], kw["order"], kw["P"], kw["Q"], kw["bu"], kw["bi"],
            MU, LR, REG)
    with pytest.raises(ValueError):
        _sgd.sgd_epoch(*args)
    with pytest.raises(ValueError):
        _sgd.sgd_epoch_hogwild(*args, n_threads=2)


def test_out_of_range_indices_raise_index_error_naming_the_position():
    (users, items, ratings), model = make_problem(seed=0, k=4)
    order = np.arange(len(users), dtype=np.int64)
    bad_order = order.copy()
    bad_order[10] = len(users)
    with pytest.raises(IndexError, match=r"order\[10\] = 500"):
        _sgd.sgd_epoch(users, items, ratings, bad_order, *copies(model), MU, LR, REG)
    bad_order[10] = -1
    with pytest.raises(IndexError, match=r"order\[10\] = -1"):
        _sgd.sgd_epoch(users, items, ratings, bad_order, *copies(model), MU, LR, REG)
    bad_users = users.copy()
    bad_users[5] = 40
    with pytest.raises(IndexError, match=r"users\[5\] = 40 is outside \[0, 40\)"):
        _sgd.sgd_epoch(bad_users, items, ratings, order, *copies(model), MU, LR, REG)
    bad_items = items.copy()
    bad_items[0] = -3
    with pytest.raises(IndexError, match=r"items\[0\] = -3"):
        _sgd.sgd_epoch_hogwild(users, bad_items, ratings, order, *copies(model), MU, LR, REG,
                               n_threads=2)
    with pytest.raises(IndexError, match=r"users\[5\] = 40"):
        _sgd.make_block_plan(bad_users, items, 40, 30, 2)
    # the updates before the bad position were applied, none after
    m = copies(model)
    want = copies(model)
    bad_order[10] = 10**6
    with pytest.raises(IndexError):
        _sgd.sgd_epoch(users, items, ratings, bad_order, *m, MU, LR, REG)
    reference.sgd_epoch(users, items, ratings, order[:10], *want, MU, LR, REG)
    assert_model_close(m, want, atol=1e-10)


def test_bad_scalars_raise_value_error():
    (users, items, ratings), model = make_problem(seed=0, k=4)
    plan = _sgd.make_block_plan(users, items, 40, 30, 2)
    with pytest.raises(ValueError, match="n_blocks"):
        _sgd.make_block_plan(users, items, 40, 30, 0)
    with pytest.raises(ValueError, match="n_blocks"):
        _sgd.make_block_plan(users, items, 40, 30, 5000)
    with pytest.raises(ValueError, match="seed"):
        _sgd.permutation(5, seed=-1)
    with pytest.raises(ValueError, match="seed"):
        _sgd.permutation(5, seed=2**64)
    with pytest.raises(ValueError, match="n must be"):
        _sgd.permutation(-1, seed=0)
    with pytest.raises(ValueError, match="n_threads"):
        _sgd.sgd_epoch_blocked(users, items, ratings, *copies(model), MU, LR, REG, None, True,
                               plan, 0, 0, 0)
    with pytest.raises(ValueError, match="epoch"):
        _sgd.sgd_epoch_blocked(users, items, ratings, *copies(model), MU, LR, REG, None, True,
                               plan, 0, -1, 1)
    with pytest.raises(ValueError, match="work"):
        _sgd.sgd_epoch_blocked(users, items, ratings, *copies(model), MU, LR, REG, None, True,
                               plan, 0, 0, 1, np.empty(3, np.int64))
