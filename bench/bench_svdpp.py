"""SVDpp against scikit-surprise's SVDpp in the same run, and its accuracy on ml-100k u1.

Run: ``FASTMF_DATA=... pytest bench/bench_svdpp.py --benchmark-only -s``.
Groups:
- ``surprise-svdpp``: Surprise's ``SVDpp`` at its own defaults (k=20, 20 epochs, lr 0.007, reg 0.02,
  init std 0.1) fitted ONCE per data set (it takes minutes), on ml-100k u1 and on the ml-1m
  *partial* file (users 1-2999, a random 80/20 split, seed 0); in the same test fastmf's SVDpp with
  the same settings (median of 3 fits, 1 thread both). ``extra_info`` holds both RMSEs, both times
  and the ratio; the test prints them with the machine.
- ``accuracy-svdpp``: u1 test RMSE of the defaults, of the best documented configuration, of the
  blocked schedule (the parallel mode) and of MatrixFactorization's defaults, in ``extra_info``.
"""

import os
import time

import numpy as np
import pytest

import fastmf

# Surprise SVDpp's defaults in fastmf's names (every group at lr 0.007 and penalty 0.02, like
# Surprise's lr_all / reg_all); schedule="user" visits each user's ratings together, as Surprise does
SURPRISE_SETTINGS = dict(n_factors=20, n_epochs=20, lr=0.007, reg=0.02, lr_bias=None, reg_bias=0.02,
                         lr_implicit=None, reg_implicit=None, init_std=0.1, schedule="user",
                         ranking="rating")
BEST = dict(n_factors=200, n_epochs=38)


def machine():
    from fastmf._machine import describe

    return describe()


def data_dir(name):
    root = os.environ.get("FASTMF_DATA")
    folder = os.path.join(root, name) if root else None
    if not folder or not os.path.isdir(folder):
        pytest.skip(f"{name} not under FASTMF_DATA")
    return folder


def load(name):
    if name == "ml-100k u1":
        from fastmf.io import load_movielens_split

        return load_movielens_split(data_dir("ml-100k"), "u1")
    ds = fastmf.load_movielens("ml-1m", path=data_dir("ml-1m"), ratings_file="ratings.PARTIAL_users_1-2999.dat")
    return fastmf.split.random_split(ds, test_size=0.2, random_state=0)


def rmse(pred, r):
    return float(np.sqrt(np.mean((np.asarray(pred) - r) ** 2)))


@pytest.mark.benchmark(group="surprise-svdpp")
@pytest.mark.parametrize("name", ["ml-100k u1", "ml-1m partial 80/20"])
def test_surprise_svdpp(benchmark, name):
    surprise = pytest.importorskip("surprise")
    import pandas as pd

    train, test = load(name)
    u, i, r, _ = train.to_arrays()
    trainset = surprise.Dataset.load_from_df(pd.DataFrame({"u": u, "i": i, "r": r}),
                                             surprise.Reader(rating_scale=(1, 5))).build_full_trainset()
    algo = surprise.SVDpp(random_state=0)  # its defaults: k=20, 20 epochs, lr 0.007, reg 0.02
    benchmark.pedantic(algo.fit, args=(trainset,), rounds=1, iterations=1)
    tu, ti, tr, _ = test.to_arrays()
    peer_rmse = rmse([algo.predict(a, b).est for a, b in zip(tu.tolist(), ti.tolist())], tr)
    times = []
    for _ in range(3):
        m = fastmf.SVDpp(random_state=0, n_threads=1, **SURPRISE_SETTINGS)
        t0 = time.perf_counter()
        m.fit(train)
        times.append(time.perf_counter() - t0)
    ours = rmse(m.predict(tu, ti, unknown="fallback"), tr)
    info = {"machine": machine(), "surprise_s": benchmark.stats.stats.median, "surprise_rmse": peer_rmse,
            "fastmf_s": float(np.median(times)), "fastmf_rmse": ours}
    info["speedup"] = info["surprise_s"] / info["fastmf_s"]
    benchmark.extra_info.update(info)
    print(f"\n{name} ({len(train):,} train ratings), 1 thread, {machine()}: Surprise SVDpp "
          f"{info['surprise_s']:.1f} s, RMSE {peer_rmse:.4f}; fastmf SVDpp {info['fastmf_s']:.3f} s "
          f"({info['speedup']:.0f}x), RMSE {ours:.4f} ({ours - peer_rmse:+.4f})")


@pytest.mark.benchmark(group="accuracy-svdpp")
@pytest.mark.parametrize("config", ["SVDpp defaults", "SVDpp best", "SVDpp blocked", "SVDpp blocked 2 threads",
                                    "MF defaults"])
def test_accuracy_u1(benchmark, config):
    train, test = load("ml-100k u1")
    make = {
        "SVDpp defaults": lambda: fastmf.SVDpp(random_state=0, ranking="rating"),
        "SVDpp best": lambda: fastmf.SVDpp(random_state=0, ranking="rating", **BEST),
        "SVDpp blocked": lambda: fastmf.SVDpp(random_state=0, ranking="rating", schedule="blocked", n_threads=1),
        "SVDpp blocked 2 threads": lambda: fastmf.SVDpp(random_state=0, ranking="rating", schedule="blocked",
                                                        n_threads=2),
        "MF defaults": lambda: fastmf.MatrixFactorization(random_state=0, ranking="rating"),
    }[config]
    m = make()
    benchmark.pedantic(m.fit, args=(train,), rounds=1, iterations=1)
    tu, ti, tr, _ = test.to_arrays()
    value = rmse(m.predict(tu, ti, unknown="fallback"), tr)
    benchmark.extra_info.update({"rmse": value, "machine": machine()})
    print(f"\nu1 {config}: RMSE {value:.4f}, fit {benchmark.stats.stats.median:.2f} s")
