"""fastmf.spark's ALS against Spark MLlib's ``pyspark.ml.recommendation.ALS`` on the same
``local[2]`` session and data, in one run.

Run: ``pytest bench/bench_spark.py --benchmark-only -s`` (needs ``fastmf[spark]`` and Java 17+).
Data: ``make_ratings(6040, 3706, 1_000_209, seed=5)`` (the ML-1M shape; ``FASTMF_BENCH_SPARK_N``
sets another number of ratings on the same users and items), split 80/20 at random; the train
part as a Spark DataFrame of 4 partitions, persisted before either fit runs. Both fits: rank 32,
10 iterations, the same regularisation (MLlib scales ``regParam`` by each row's rating count, so
fastmf runs ``weighted=True``, its ALS-WR penalty) and no biases on the MLlib side (it has none);
fastmf runs with biases (its default) and without. Each fit is timed whole (wall clock: the work is
in the JVM and the Python workers, not in this process; both in the same run on the same session),
then held-out RMSE on the test pairs (MLlib: ``transform`` + the same formula). Both paths are
warmed up first on a 20,000-rating sample (Python workers, JIT).

``test_mllib_long`` runs MLlib ALS for 60 iterations with no checkpoint directory on a
100,000-rating sample and reports whether it finished or overflowed the stack (the bench does
not fail either way); fastmf.spark's 60-iteration run is the test ``spark_long``.
At the end the module prints the times, RMSEs, the ratio and the machine.
"""

import os
import shutil
import time

import numpy as np
import pytest

pytest.importorskip("pyspark", reason="fastmf[spark] (pyspark) is not installed")
pd = pytest.importorskip("pandas")
if shutil.which("java") is None:
    pytest.skip("PySpark needs Java (17+)", allow_module_level=True)

import fastmf  # noqa: E402
import fastmf.spark  # noqa: E402

RANK, ITERS, REG = 32, 10, 0.05
RESULTS = {}


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # the JVM binds here from its start
    s = (SparkSession.builder.master("local[2]").appName("fastmf-bench")
         .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
         .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
         .config("spark.sql.shuffle.partitions", "4").config("spark.driver.memory", "4g").getOrCreate())
    s.sparkContext.setLogLevel("ERROR")
    yield s
    _report()
    s.stop()


@pytest.fixture(scope="module")
def data(spark):
    n = int(os.environ.get("FASTMF_BENCH_SPARK_N", 1_000_209))
    ds = fastmf.make_ratings(6040, 3706, n, seed=5)
    train, test = fastmf.split.random_split(ds, test_size=0.2, random_state=0)
    u, i, r, _ = train.to_arrays()
    pdf = pd.DataFrame({"user": u.astype(np.int64), "item": i.astype(np.int64), "rating": r.astype(np.float64)})
    sdf = spark.createDataFrame(pdf).repartition(4).persist()
    sdf.count()
    tu, ti, tr, _ = test.to_arrays()
    known = np.isin(tu, u) & np.isin(ti, i)  # pairs both models can score
    test_pdf = pd.DataFrame({"user": tu[known].astype(np.int64), "item": ti[known].astype(np.int64),
                             "rating": tr[known].astype(np.float64)})
    RESULTS["data"] = f"{n:,} ratings ({len(pdf):,} train, {len(test_pdf):,} test pairs)"
    # warm both paths up on a small sample (Python workers, JIT) so that neither timed fit pays it
    from pyspark.ml.recommendation import ALS

    warm = sdf.limit(20_000)
    fastmf.spark.fit(fastmf.MatrixFactorization(solver="als", n_factors=4, n_epochs=1), warm)
    ALS(rank=4, maxIter=1, userCol="user", itemCol="item", ratingCol="rating").fit(warm).userFactors.count()
    yield sdf, test_pdf
    sdf.unpersist()


def _rmse(pred, truth):
    return float(np.sqrt(np.mean((np.asarray(pred, dtype=np.float64) - truth) ** 2)))


@pytest.mark.parametrize("biased", [True, False], ids=["biases", "no-biases"])
def test_fastmf_spark_als(benchmark, data, biased):
    sdf, test = data
    benchmark.group = "spark-als-ml1m-shape"
    out = {}

    def once():
        m = fastmf.MatrixFactorization(solver="als", n_factors=RANK, n_epochs=ITERS, reg=REG, weighted=True,
                                       biased=biased, random_state=0, dtype="float32")
        t = time.perf_counter()
        fastmf.spark.fit(m, sdf)
        out["s"], out["m"] = time.perf_counter() - t, m

    benchmark.pedantic(once, rounds=1, iterations=1, warmup_rounds=0)
    rmse = _rmse(out["m"].predict(test["user"].to_numpy(), test["item"].to_numpy()), test["rating"].to_numpy())
    benchmark.extra_info["test_rmse"] = rmse
    RESULTS[f"fastmf.spark ALS ({'with' if biased else 'no'} biases)"] = (out["s"], rmse)


def test_mllib_als(benchmark, spark, data):
    from pyspark.ml.recommendation import ALS

    sdf, test = data
    benchmark.group = "spark-als-ml1m-shape"
    out = {}

    def once():
        als = ALS(rank=RANK, maxIter=ITERS, regParam=REG, userCol="user", itemCol="item", ratingCol="rating",
                  seed=0, coldStartStrategy="nan")
        t = time.perf_counter()
        model = als.fit(sdf)
        model.userFactors.count()  # the fit is lazy in part: make sure the factors exist
        out["s"], out["m"] = time.perf_counter() - t, model

    benchmark.pedantic(once, rounds=1, iterations=1, warmup_rounds=0)
    pred = out["m"].transform(spark.createDataFrame(test)).toPandas().sort_values(["user", "item"])
    truth = test.sort_values(["user", "item"])
    rmse = _rmse(pred["prediction"].to_numpy(), truth["rating"].to_numpy())
    benchmark.extra_info["test_rmse"] = rmse
    RESULTS["MLlib ALS (no biases)"] = (out["s"], rmse)


def test_mllib_long(benchmark, spark, data):
    """MLlib ALS, 60 iterations, no checkpoint directory: does it overflow the stack?"""
    from pyspark.ml.recommendation import ALS

    sdf, _ = data
    benchmark.group = "spark-als-60-iterations"
    small = sdf.limit(100_000).persist()
    small.count()
    assert spark.sparkContext.getCheckpointDir() is None
    out = {}

    def once():
        t = time.perf_counter()
        try:
            ALS(rank=8, maxIter=60, regParam=REG, userCol="user", itemCol="item", ratingCol="rating",
                seed=0).fit(small).userFactors.count()
            outcome = "finished"
        except Exception as exc:  # report, never fail the bench on it
            text = str(exc)
            outcome = ("StackOverflowError" if "StackOverflow" in text else type(exc).__name__) + " (failed)"
        out["outcome"] = f"{outcome} after {time.perf_counter() - t:.1f} s"

    benchmark.pedantic(once, rounds=1, iterations=1, warmup_rounds=0)
    benchmark.extra_info["outcome"] = out["outcome"]
    RESULTS["MLlib ALS 60 iterations, no checkpoint (100k ratings)"] = out["outcome"]
    small.unpersist()


def _report():
    from fastmf._machine import describe

    print(f"\nspark-als on {RESULTS.get('data', '?')}, rank {RANK}, {ITERS} iterations, local[2]; {describe()}")
    for name, v in RESULTS.items():
        if name == "data":
            continue
        if isinstance(v, tuple):
            print(f"  {name:42s} {v[0]:8.1f} s  test RMSE {v[1]:.4f}")
        else:
            print(f"  {name:42s} {v}")
    mllib = RESULTS.get("MLlib ALS (no biases)")
    for name in ("fastmf.spark ALS (with biases)", "fastmf.spark ALS (no biases)"):
        if mllib and name in RESULTS:
            print(f"  MLlib / {name}: {mllib[0] / RESULTS[name][0]:.2f}x (wall clock, same session, same run)")
