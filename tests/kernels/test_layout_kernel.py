"""The layout kernels against their NumPy twins (fastmf.reference.layout): the CSR of coordinates in
each of its three paths (already ordered: no copy; columns ascending per row: one scatter; else the
sorted order), the transpose of a CSR, and the blocked SGD layout; and the blocked epoch without an
nnz-long ``work``/``block_order`` against the one with them."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import fastmf
from fastmf import _csr, _sgd, reference


def coords(kind, n_rows=37, n_cols=23, nnz=300, seed=0):
    rng = np.random.default_rng(seed)
    cells = rng.choice(n_rows * n_cols, nnz, replace=False)
    rows, cols = (cells // n_cols).astype(np.int32), (cells % n_cols).astype(np.int32)
    if kind == "in_order":
        o = np.lexsort((cols, rows))
    elif kind == "one_pass":  # sorted by column: columns ascend within every row, rows interleave
        o = np.lexsort((rows, cols))
    else:
        o = rng.permutation(nnz)
    return rows[o].copy(), cols[o].copy(), rng.normal(size=nnz)[o].astype(np.float32), n_rows, n_cols


@pytest.mark.parametrize("kind", ["in_order", "one_pass", "shuffled"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compress_equals_the_reference(kind, dtype):
    rows, cols, vals, nr, nc = coords(kind)
    vals = vals.astype(dtype)
    got = _csr.compress(rows, cols, vals, nr, nc)
    want = reference.csr_compress(rows, cols, vals, nr, nc)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        assert_array_equal(g, w)
    if kind == "in_order":  # no copy
        assert got[1] is cols and got[2] is vals


def test_compress_names_a_bad_index():
    rows, cols, vals, nr, nc = coords("in_order")
    cols[7] = nc
    with pytest.raises(IndexError, match=f"column index {nc} at position 7"):
        _csr.compress(rows, cols, vals, nr, nc)


@pytest.mark.parametrize("kind", ["in_order", "shuffled"])
def test_ratings_csr_and_csc_are_those_of_the_reference(kind):
    rows, cols, vals, nr, nc = coords(kind, seed=3)
    ds = fastmf.Ratings.from_arrays(rows, cols, vals)
    csr, csc = ds.to_csr(), ds.to_csc()
    u, i = ds.user_index, ds.item_index
    for got, want in ((csr, reference.csr_compress(u, i, ds.rating, ds.n_users, ds.n_items)),
                      (csc, reference.csr_compress(i, u, ds.rating, ds.n_items, ds.n_users))):
        for g, w in zip(got[:3], want):
            assert_array_equal(g, w)
    assert_array_equal(ds.csr_order(), np.lexsort((np.arange(len(ds)), i, u)))
    assert_array_equal(ds.csr_order(False), np.lexsort((np.arange(len(ds)), u, i)))


def test_transpose_equals_the_reference():
    rows, cols, vals, nr, nc = coords("in_order", seed=5)
    indptr, indices, _ = _csr.compress(rows, cols, vals, nr, nc)
    for g, w in zip(_csr.transpose(indptr, indices, nc), reference.csr_transpose(indptr, indices, nc)):
        assert_array_equal(g, w)
    bad = indices.copy()
    bad[4] = -1
    with pytest.raises(IndexError, match="position 4"):
        _csr.transpose(indptr, bad, nc)


@pytest.mark.parametrize("n_blocks", [1, 3, 4])
def test_block_layout_equals_the_reference_and_the_permuted_copy(n_blocks):
    rows, cols, vals, nr, nc = coords("shuffled", seed=7)
    u, i, r, plan = _sgd.block_layout(rows, cols, vals, nr, nc, n_blocks)
    assert plan.block_order is None
    full = _sgd.make_block_plan(rows, cols, nr, nc, n_blocks)
    assert_array_equal(plan.block_ptr, full.block_ptr)
    for g, x in zip((u, i, r), (rows, cols, vals)):
        assert_array_equal(g, x[full.block_order])
    want = reference.block_layout(rows, cols, vals, plan.user_block, plan.item_block, n_blocks)
    for g, w in zip((u, i, r, plan.block_ptr), want):
        assert_array_equal(g, w)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_blocked_epoch_without_work_or_order_is_the_same_epoch(n_threads):
    rows, cols, vals, nr, nc = coords("shuffled", seed=11, nnz=600)
    u, i, r, plan = _sgd.block_layout(rows, cols, vals, nr, nc, 4)
    identity = plan._replace(block_order=np.arange(len(u), dtype=np.int64))
    out = []
    for p, work in ((identity, np.empty(len(u), dtype=np.int64)), (plan, None)):
        rng = np.random.default_rng(1)
        P, Q = rng.normal(0, 0.1, (nr, 8)).astype(np.float32), rng.normal(0, 0.1, (nc, 8)).astype(np.float32)
        bu, bi = np.zeros(nr, np.float32), np.zeros(nc, np.float32)
        sse = [_sgd.sgd_epoch_blocked(u, i, r, P, Q, bu, bi, 0.1, 0.05, 0.02, 0.02, True, p, 5, e,
                                      n_threads, work) for e in (1, 2)]
        out.append((P, Q, bu, bi, sse))
    for a, b in zip(*out):
        assert_array_equal(a, b)
    # the order it follows is the reference's shuffle of each block of the identity
    order = _sgd.block_schedule(plan, 5, 1)
    shuffled = reference.block_permutations(plan.block_ptr, np.arange(len(u)), 5, 1)
    B, ptr = 4, plan.block_ptr
    ids = [b * B + _sgd.step_group(B, b, s) for s in range(B) for b in range(B)]
    assert_array_equal(order, np.concatenate([shuffled[ptr[k]:ptr[k + 1]] for k in ids]))


def test_blocked_epoch_without_work_names_the_rating_outside_its_block():
    rows, cols, vals, nr, nc = coords("shuffled", seed=13)
    u, i, r, plan = _sgd.block_layout(rows, cols, vals, nr, nc, 2)
    i = i.copy()
    # move one rating of block 0 to an item of the other item group
    k = 0
    other = int(np.flatnonzero(plan.item_block != plan.item_block[i[k]])[0])
    i[k] = other
    P, Q = np.zeros((nr, 4), np.float32), np.zeros((nc, 4), np.float32)
    with pytest.raises(ValueError, match=r"rating 0 "):
        _sgd.sgd_epoch_blocked(u, i, r, P, Q, np.zeros(nr, np.float32), np.zeros(nc, np.float32), 0.0,
                               0.01, 0.0, 0.0, True, plan, 1, 1, 1, None)


def test_seen_overlap_chunks_equal_the_dense_count(monkeypatch):
    from fastmf import evaluation

    ds = fastmf.make_ratings(300, 40, 3000, seed=2)
    csr = ds.to_csr()
    rng = np.random.default_rng(0)
    u, i = rng.integers(0, 300, 500), rng.integers(0, 40, 500)
    dense = np.zeros((300, 40), bool)
    dense[ds.user_index, ds.item_index] = True
    for chunk in (1, 7, 1 << 22):
        monkeypatch.setattr(evaluation, "_OVERLAP_CHUNK", chunk)
        assert evaluation._seen_overlap(csr.indptr, csr.indices, 40, u, i) == int(dense[u, i].sum())
