"""ALS end to end: MatrixFactorization(solver="als") and ImplicitALS on the ML-1M shape, with the
``implicit`` package (optional peer) on the same split, settings and thread count.

Run: ``pytest bench/bench_als.py --benchmark-only``. Data: ``make_ratings(6040, 3706, 1_000_209,
seed=0)``, all ratings as interactions for iALS, per-user 20% holdout (``user_holdout``, seed 0).
``extra_info`` holds sweeps/s and, for iALS, ndcg@10 computed by ``fastmf.evaluate`` for both
libraries (implicit's factors are evaluated by the same code).
"""

import numpy as np
import pytest

import fastmf

K, ITERS, REG, ALPHA = 64, 15, 0.1, 5.0


@pytest.fixture(scope="module")
def ml1m_shape():
    return fastmf.make_ratings(6040, 3706, 1_000_209, seed=0)


@pytest.fixture(scope="module")
def holdout(ml1m_shape):
    return fastmf.split.user_holdout(ml1m_shape, test_size=0.2, random_state=0)


@pytest.mark.benchmark(group="als-explicit-ml1m-k64-10-sweeps")
@pytest.mark.parametrize("n_threads", [1, 2])
def test_explicit_als_fit(benchmark, ml1m_shape, n_threads):
    m = fastmf.MatrixFactorization(solver="als", n_factors=K, n_epochs=10, random_state=0,
                                   n_threads=n_threads, ranking="rating")  # the rating model alone
    benchmark.pedantic(m.fit, args=(ml1m_shape,), rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["sweeps_per_s"] = 10 / benchmark.stats.stats.median


@pytest.mark.benchmark(group="ials-ml1m-k64-15-iterations")
@pytest.mark.parametrize("n_threads", [1, 2])
def test_fastmf_ials(benchmark, holdout, n_threads):
    train, test = holdout
    m = fastmf.ImplicitALS(n_factors=K, n_epochs=ITERS, reg=REG, alpha=ALPHA, reg_nu=0.0,
                           linear_solver="cg", cg_steps=3, random_state=0, n_threads=n_threads,
                           calculate_loss=False)  # as implicit, which records no loss by default
    benchmark.pedantic(m.fit, args=(train,), rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["ndcg@10"] = fastmf.evaluate(m, test, k=10)["ndcg@10"]
    benchmark.extra_info["sweeps_per_s"] = ITERS / benchmark.stats.stats.median


@pytest.mark.benchmark(group="ials-ml1m-k64-15-iterations")
@pytest.mark.parametrize("n_threads", [1, 2])
def test_implicit_package_ials(benchmark, holdout, n_threads):
    implicit = pytest.importorskip("implicit")
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    train, test = holdout
    csr = train.to_csr()
    # implicit reads each stored value as the confidence c; give it fastmf's c = 1 + alpha r
    conf = sp.csr_matrix(((1.0 + ALPHA * csr.data).astype(np.float32), csr.indices.copy(), csr.indptr.copy()),
                         shape=csr.shape)

    def fit():
        m = AlternatingLeastSquares(factors=K, regularization=REG, alpha=1.0, iterations=ITERS,
                                    use_cg=True, num_threads=n_threads, random_state=0)  # 3 CG steps
        with threadpool_limits(n_threads, "blas"):
            m.fit(conf, show_progress=False)
        return m

    peer = benchmark.pedantic(fit, rounds=3, iterations=1, warmup_rounds=1)
    # evaluate implicit's factors with fastmf's code: a fastmf model holding them
    shell = fastmf.ImplicitALS(n_factors=K, n_epochs=0).fit(train)
    shell.user_factors_ = np.ascontiguousarray(peer.user_factors, dtype=np.float32)
    shell.item_factors_ = np.ascontiguousarray(peer.item_factors, dtype=np.float32)
    benchmark.extra_info["ndcg@10"] = fastmf.evaluate(shell, test, k=10)["ndcg@10"]
    benchmark.extra_info["peer"] = "implicit " + implicit.__version__


# ------------------------------------------------- explicit ALS against cmfrec (optional peer)
@pytest.fixture(scope="module")
def explicit_holdout(ml1m_shape):
    return fastmf.split.random_split(ml1m_shape, test_size=0.2, random_state=0)


def _test_rmse(predict, test):
    u, i, r, _ = test.to_arrays()
    return float(np.sqrt(np.mean((np.clip(predict(u, i), 1, 5) - r) ** 2)))


@pytest.mark.benchmark(group="als-explicit-cg-vs-cmfrec")
@pytest.mark.parametrize("n_threads", [1, 2])
def test_fastmf_explicit_als_cg(benchmark, explicit_holdout, n_threads):
    """fastmf's CG ALS (3 warm-started CG steps per row, as cmfrec's default), k=64, 10 sweeps."""
    train, test = explicit_holdout
    m = fastmf.MatrixFactorization(solver="als", linear_solver="cg", n_factors=K, n_epochs=10, reg=REG,
                                   random_state=0, n_threads=n_threads, ranking="rating")
    benchmark.pedantic(m.fit, args=(train,), rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["test_rmse"] = _test_rmse(m.predict, test)


@pytest.mark.benchmark(group="als-explicit-cg-vs-cmfrec")
@pytest.mark.parametrize("n_threads", [1, 2])
def test_cmfrec_explicit_als_cg(benchmark, explicit_holdout, n_threads):
    """cmfrec's CMF(method="als", use_cg=True) at the same k, sweeps, threads and the same
    count-scaled penalty (scale_lam=True: lambda n_u |p_u|^2, as fastmf's reg), with biases."""
    cmfrec = pytest.importorskip("cmfrec")
    import pandas as pd

    train, test = explicit_holdout
    u, i, r, _ = train.to_arrays()
    df = pd.DataFrame({"UserId": u, "ItemId": i, "Rating": r.astype(np.float64)})

    def fit():
        m = cmfrec.CMF(method="als", use_cg=True, k=K, lambda_=REG, scale_lam=True, niter=10,
                       finalize_chol=False, user_bias=True, item_bias=True, nthreads=n_threads,
                       random_state=0, verbose=False)
        return m.fit(df)

    peer = benchmark.pedantic(fit, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["test_rmse"] = _test_rmse(lambda uu, ii: peer.predict(uu, ii), test)
    from importlib.metadata import version

    benchmark.extra_info["peer"] = "cmfrec " + version("cmfrec")
