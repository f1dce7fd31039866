"""The C squared-error kernel (fastmf._sse) against fastmf.reference.predict."""

import numpy as np
import pytest

import fastmf
from fastmf import _sse, reference


def problem(dtype, seed=0, k=7):
    rng = np.random.default_rng(seed)
    keys = rng.choice(30 * 20, 250, replace=False)
    ds = fastmf.Ratings.from_arrays(keys // 20, keys % 20, rng.integers(1, 6, 250))
    csr = ds.to_csr()
    P = rng.normal(0, 0.5, (ds.n_users, k)).astype(dtype)
    Q = rng.normal(0, 0.5, (ds.n_items, k)).astype(dtype)
    bu = rng.normal(0, 0.3, ds.n_users).astype(dtype)
    bi = rng.normal(0, 0.3, ds.n_items).astype(dtype)
    return ds, csr, P, Q, bu, bi


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("biased", [True, False])
def test_equals_reference(dtype, rtol, biased):
    ds, csr, P, Q, bu, bi = problem(dtype)
    mu = 3.3 if biased else 0.0
    pred = reference.predict(P.astype(float), Q.astype(float), bu.astype(float), bi.astype(float), mu,
                             ds.user_index, ds.item_index, biased=biased)
    want = float(np.sum((ds.rating - pred) ** 2))
    b = (bu, bi) if biased else (None, None)
    for threads in (1, 2):
        got = _sse.observed_sse(csr.indptr, csr.indices, csr.data.astype(dtype), P, Q, *b, mu, threads)
        assert got == pytest.approx(want, rel=rtol)


def test_padded_rows_and_errors():
    ds, csr, P, Q, bu, bi = problem(np.float64)
    wide = np.zeros((P.shape[0], 16))
    wide[:, :7] = P
    data = csr.data.astype(np.float64)
    assert _sse.observed_sse(csr.indptr, csr.indices, data, wide[:, :7], Q, bu, bi, 3.0) == \
        pytest.approx(_sse.observed_sse(csr.indptr, csr.indices, data, P, Q, bu, bi, 3.0), rel=1e-15)
    bad = csr.indices.copy()
    bad[5] = 99
    with pytest.raises(IndexError, match=r"indices\[5\] = 99 is outside"):
        _sse.observed_sse(csr.indptr, bad, data, P, Q, bu, bi, 3.0)
    with pytest.raises(ValueError, match="differ in factors"):
        _sse.observed_sse(csr.indptr, csr.indices, data, P, Q[:, :3], bu, bi, 3.0)
    with pytest.raises(ValueError, match="both biases or neither"):
        _sse.observed_sse(csr.indptr, csr.indices, data, P, Q, bu, None, 3.0)
    with pytest.raises(ValueError, match="indptr must rise"):
        _sse.observed_sse(csr.indptr[:-1], csr.indices, data, P, Q, bu, bi, 3.0)
    with pytest.raises(ValueError, match="data must have dtype float64"):
        _sse.observed_sse(csr.indptr, csr.indices, data.astype(np.float32), P, Q, bu, bi, 3.0)
