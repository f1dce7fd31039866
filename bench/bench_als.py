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
    m = fastmf.ImplicitALS(n_factors=K, n_iterations=ITERS, reg=REG, alpha=ALPHA, reg_nu=0.0,
                           solver="cg", cg_steps=3, random_state=0, n_threads=n_threads,
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
    shell = fastmf.ImplicitALS(n_factors=K, n_iterations=0).fit(train)
    shell.user_factors_ = np.ascontiguousarray(peer.user_factors, dtype=np.float32)
    shell.item_factors_ = np.ascontiguousarray(peer.item_factors, dtype=np.float32)
    benchmark.extra_info["ndcg@10"] = fastmf.evaluate(shell, test, k=10)["ndcg@10"]
    benchmark.extra_info["peer"] = "implicit " + implicit.__version__
