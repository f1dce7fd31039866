"""fastmf.spark on local[2] (one SparkSession for the module): ALS with biases and iALS equal the
single-process fit (within 1e-6 relative) for any number of row ranges, the result is an ordinary
model (save, load, recommend), recommend_all equals model.recommend, bad input fails clearly, and
(marker ``spark_long``) 60 iterations run without growing the lineage into a StackOverflowError."""

import os
import shutil
import sys

import numpy as np
import pytest

pytest.importorskip("pyspark", reason="fastmf[spark] (pyspark) is not installed")
pd = pytest.importorskip("pandas", reason="fastmf[spark] needs pandas")
pytest.importorskip("pyarrow", reason="fastmf[spark] needs pyarrow (mapInPandas)")
if shutil.which("java") is None:
    pytest.skip("PySpark needs Java (17+): no java on PATH", allow_module_level=True)

import fastmf  # noqa: E402
from distributed_helpers import assert_same_model, rating_frame  # noqa: E402
import fastmf.spark  # noqa: E402
from fastmf.errors import DataError  # noqa: E402

@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # the JVM binds here from its start
    session = (SparkSession.builder.master("local[2]").appName("fastmf-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
               .config("spark.sql.shuffle.partitions", "4")
               .config("spark.python.worker.reuse", "true")
               .config("spark.ui.showConsoleProgress", "false")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def frame():
    return rating_frame(240, 160, 4000)


@pytest.mark.parametrize("n_partitions,kw", [(1, {}), (3, dict(dtype="float32", weighted=False))])
def test_als_with_biases_equals_the_single_process_fit(spark, frame, n_partitions, kw):
    pdf, ds = frame
    make = lambda: fastmf.MatrixFactorization(solver="als", n_factors=6, n_epochs=3, reg=0.05,  # noqa: E731
                                              random_state=11, **kw)
    one = make().fit(ds)
    assert np.abs(one.user_bias_).max() > 0.01  # the biases are learned, not left at zero
    sdf = spark.createDataFrame(pdf).repartition(2)
    got = fastmf.spark.fit(make(), sdf, n_partitions=n_partitions)
    assert_same_model(one, got, exact=False)


def test_implicit_als_equals_the_single_process_fit(spark, frame):
    pdf, ds = frame
    make = lambda: fastmf.ImplicitALS(n_factors=6, n_epochs=2, reg=0.1, alpha=2.0, random_state=5)  # noqa: E731
    one = make().fit(ds)
    got = fastmf.distributed.fit(make(), spark.createDataFrame(pdf).repartition(3), client=spark, n_partitions=2)
    assert_same_model(one, got, exact=False, history=None)


def test_string_ids_ordinary_model_and_recommend_all(spark, frame, tmp_path):
    pdf, _ = frame
    pdf = pdf.assign(user="u" + pdf["user"].astype(str), item="i" + pdf["item"].astype(str))
    ds = fastmf.Ratings.from_dataframe(pdf, user="user", item="item", rating="rating")
    make = lambda: fastmf.MatrixFactorization(solver="als", n_factors=5, n_epochs=2, random_state=2)  # noqa: E731
    one = make().fit(ds)
    got = fastmf.spark.fit(make(), spark.createDataFrame(pdf).repartition(2))
    assert_same_model(one, got, exact=False)
    got.save(tmp_path / "m.npz")
    back = fastmf.load(tmp_path / "m.npz")
    users = got.user_map_.ids[::7]
    for model in (got, back):
        ids, scores = model.recommend(users, n=5)
        ids1, scores1 = one.recommend(users, n=5)
        assert np.array_equal(ids, ids1)
        np.testing.assert_allclose(scores, scores1, rtol=1e-6)

    # recommend_all: a Spark DataFrame equal to model.recommend for those users, rank by rank
    rec = fastmf.spark.recommend_all(got, spark, users=users, n=5).toPandas()
    assert list(rec.columns) == ["user", "item", "score", "rank"]
    ids, scores = got.recommend(users, n=5)
    rec = rec.sort_values(["user", "rank"])
    order = np.argsort(users)
    assert np.array_equal(rec["user"].to_numpy().reshape(-1, 5)[:, 0], users[order])
    assert np.array_equal(rec["item"].to_numpy().reshape(-1, 5), ids[order])
    assert np.array_equal(rec["score"].to_numpy().reshape(-1, 5), scores[order].astype(np.float64))
    assert np.array_equal(rec["rank"].to_numpy().reshape(-1, 5), np.tile(np.arange(1, 6), (len(users), 1)))


def test_recommend_all_every_user_from_a_dataframe(spark, frame):
    pdf, ds = frame
    m = fastmf.MatrixFactorization(solver="als", n_factors=4, n_epochs=2, random_state=0).fit(ds)
    all_users = fastmf.spark.recommend_all(m, spark, n=3, n_partitions=3).toPandas()
    users, ids_all, scores_all = m.recommend_all(n=3)  # the single-process batch job
    keep = np.isfinite(scores_all)  # a user who rated almost every item has fewer candidates
    assert len(all_users) == keep.sum() and set(all_users["user"]) == set(users[keep.any(axis=1)].tolist())
    got = all_users.sort_values(["user", "rank"])
    assert np.array_equal(got["item"].to_numpy(), ids_all[keep])
    assert np.array_equal(got["score"].to_numpy(), scores_all[keep].astype(np.float64))
    some = spark.createDataFrame(pd.DataFrame({"uid": m.user_map_.ids[:10]}))
    rec = fastmf.spark.recommend_all(m, users=some, user="uid", n=3).toPandas().sort_values(["user", "rank"])
    ids, scores = m.recommend(m.user_map_.ids[:10], n=3)
    assert np.array_equal(rec["item"].to_numpy().reshape(-1, 3), ids)
    merged = all_users.merge(rec, on=["user", "rank"])
    assert len(merged) == 30 and (merged["item_x"] == merged["item_y"]).all()


def test_bad_input_fails_clearly(spark, frame):
    pdf, _ = frame
    als = lambda **kw: fastmf.MatrixFactorization(solver="als", n_factors=4, n_epochs=1, **kw)  # noqa: E731
    sdf = spark.createDataFrame(pdf)
    with pytest.raises(ValueError, match=r"no column\(s\) \['rating'\]"):
        fastmf.spark.fit(als(), sdf.withColumnRenamed("rating", "stars"))
    with pytest.raises(DataError, match="column 'rating': ratings must be numeric, got Spark type string"):
        fastmf.spark.fit(als(), sdf.withColumn("rating", sdf["rating"].cast("string")))
    with pytest.raises(TypeError, match="pyspark.sql.DataFrame"):
        fastmf.spark.fit(als(), pdf)
    with pytest.raises(ValueError, match="n_partitions must be an int >= 1, got 0"):
        fastmf.spark.fit(als(), sdf, n_partitions=0)
    with pytest.raises(ValueError, match="reg"):
        fastmf.spark.fit(als(reg=-1.0), sdf)
    with pytest.raises(ValueError, match="for SGD use fastmf.distributed.fit on Dask"):
        fastmf.spark.fit(fastmf.MatrixFactorization(solver="sgd"), sdf)
    bad = pdf.copy()
    bad.loc[bad.index[17], "rating"] = np.nan
    m = als()
    with pytest.raises(DataError, match=r"partition 0: column 'rating': missing value at row 17"):
        fastmf.spark.fit(m, spark.createDataFrame(bad).coalesce(1))
    assert not hasattr(m, "user_factors_")  # nothing half-fitted
    dup = pd.concat([pdf, pdf.iloc[:1]], ignore_index=True)
    with pytest.raises(DataError, match="duplicate rating for user"):
        fastmf.spark.fit(als(), spark.createDataFrame(dup))


def test_importing_fastmf_spark_does_not_import_pyspark():
    import subprocess

    code = ("import sys, fastmf, fastmf.spark, fastmf.distributed; "
            "assert 'pyspark' not in sys.modules, 'pyspark imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.spark_long
def test_sixty_iterations_without_checkpointing(spark, frame):
    """The factors are on the driver between half-sweeps, so the lineage of every job is the
    persisted ratings plus one map: 60 iterations (120 jobs) end normally (MLlib's ALS without
    a checkpoint directory chains them and overflows the stack). Equal to the one-process fit."""
    pdf, ds = frame
    make = lambda: fastmf.MatrixFactorization(solver="als", n_factors=4, n_epochs=60, random_state=3)  # noqa: E731
    one = make().fit(ds)
    assert spark.sparkContext.getCheckpointDir() is None
    got = fastmf.spark.fit(make(), spark.createDataFrame(pdf).repartition(2), n_partitions=2)
    assert len(got.history_) == 60
    assert_same_model(one, got, exact=False)
