"""What a fit allocates per training rating (NumPy arrays, traced by tracemalloc; the C kernels'
own scratch is per block or per row and not traced). Before the one-machine work (issue 19) a
blocked SGD fit allocated 70 bytes per rating here (int64 orders, scratch, permutation, CSR order)
and an ALS fit 41; now the blocked layout (12), the engagement model's transposed matrix and its
values (8) and ALS's CSC (8) are what is left."""

import tracemalloc

import numpy as np
import pytest

import fastmf


@pytest.fixture(scope="module")
def train():
    ds = fastmf.make_ratings(3000, 500, 300_000, seed=0)
    return fastmf.split.random_split(ds, test_size=0.1, random_state=0)[0]


@pytest.mark.parametrize("solver, limit", [("sgd", 18), ("als", 20)])
def test_fit_allocates_few_bytes_per_rating(train, solver, limit):
    model = fastmf.MatrixFactorization(solver=solver, n_factors=8, n_epochs=2, random_state=0)
    fastmf.MatrixFactorization(solver=solver, n_factors=8, n_epochs=1).fit(train)  # imports done
    fresh = train.subset(np.ones(len(train), dtype=bool))  # a copy: nothing cached with it
    tracemalloc.start()
    try:
        model.fit(fresh)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak / len(fresh) < limit
