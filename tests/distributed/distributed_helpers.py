"""What the Dask and Spark back-end tests share: the rating table they train on and the check that
a distributed model is the single-process one. (A plain module, not a conftest.py: the tests import
``conftest`` by name for tests/conftest.py.)"""

import numpy as np

import fastmf

STATE = ("user_factors_", "item_factors_", "user_bias_", "item_bias_", "seen_indptr_", "seen_indices_",
         "item_counts_", "user_counts_")


def rating_frame(n_users, n_items, n_ratings, seed=3):
    """A shuffled rating table (pandas) with raw ids that are not indices, and its one-process Ratings."""
    import pandas as pd

    ds = fastmf.make_ratings(n_users, n_items, n_ratings, seed=seed)
    u, i, r, _ = ds.to_arrays()
    p = np.random.default_rng(0).permutation(len(u))
    pdf = pd.DataFrame({"user": u[p] * 7 + 1, "item": i[p] * 3, "rating": r[p]})
    return pdf, fastmf.Ratings.from_dataframe(pdf, user="user", item="item", rating="rating")


def assert_same_model(a, b, exact=True, rtol=1e-6, history="train_rmse"):
    """``b`` (distributed) equals ``a`` (one process): bit for bit when ``exact``, else the
    parameters within ``rtol`` relative and the ``history`` entries within 1e-9; the id maps,
    counts and seen items always exactly."""
    for name in STATE:
        if not hasattr(a, name):
            assert not hasattr(b, name), name
            continue
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape and x.dtype == y.dtype, name
        if exact or name.startswith(("seen", "item_counts", "user_counts")):
            assert np.array_equal(x, y), name
        else:
            np.testing.assert_allclose(y, x, rtol=rtol, atol=rtol * np.abs(x).max(), err_msg=name)
    assert a.global_mean_ == b.global_mean_
    assert a.user_map_ == b.user_map_ and a.item_map_ == b.item_map_
    assert a.rating_scale_ == b.rating_scale_ and a.rating_range_ == b.rating_range_
    assert len(a.history_) == len(b.history_)
    if history:
        ha, hb = [h[history] for h in a.history_], [h[history] for h in b.history_]
        if exact:
            assert ha == hb
        else:
            np.testing.assert_allclose(hb, ha, rtol=1e-9)
