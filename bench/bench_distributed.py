"""fastmf.distributed.fit on Dask: 2 workers vs 1, with the single-process fit in the same run.

Run: ``pytest bench/bench_distributed.py --benchmark-only -s`` (needs ``fastmf[dask]`` and pyarrow).
Each fit reads the ratings from Parquet files (8 partitions) written once per run, on a
``LocalCluster`` of worker processes with one thread each (one cluster of 1 worker, one of 2).
Groups:
- ``dask-sgd-ml1m-shape``: ``make_ratings(6040, 3706, 1_000_209, seed=5)``, k=100, 10 epochs,
  n_blocks=8, float32; the whole fit (reading, id maps, shards, epochs, gathering the model) and,
  in ``extra_info``, the median epoch (``history_`` seconds).
- ``dask-als-ml1m-shape``: the same data, ALS k=64, 5 sweeps.
- ``dask-sgd-20m`` (``FASTMF_BENCH_20M=1``): ``make_ratings(138_493, 26_744, 20_000_263, seed=5)``,
  k=64, 3 epochs, n_blocks=16, one round each.
At the end the module prints each group's ratios (1 worker / 2 workers, single process / 2
workers) and the machine (``fastmf._machine.describe()``).
"""

import os

import numpy as np
import pytest

pytest.importorskip("distributed", reason="fastmf[dask] is not installed")
pytest.importorskip("pyarrow", reason="the bench reads Parquet files (pyarrow)")
pd = pytest.importorskip("pandas")

import dask.dataframe as dd  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

import fastmf  # noqa: E402
from fastmf.distributed import fit  # noqa: E402

TIMES = {}


@pytest.fixture(scope="module", autouse=True)
def report():
    """Print each group's ratios when the module is done (the 1- and 2-worker clusters run apart)."""
    yield
    for group in sorted({k[0] for k in TIMES}):
        _report(group)


@pytest.fixture(scope="module", params=[1, 2], ids=["1-worker", "2-workers"])
def client(request):
    cluster = LocalCluster(n_workers=request.param, processes=True, threads_per_worker=1,
                           dashboard_address=None, silence_logs=40)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


def _files(tmp_path_factory, name, shape):
    ds = fastmf.make_ratings(*shape, seed=5)
    u, i, r, _ = ds.to_arrays()
    folder = tmp_path_factory.mktemp(name) / "ratings.parquet"
    pdf = pd.DataFrame({"user": u, "item": i, "rating": r})
    dd.from_pandas(pdf, npartitions=8, sort=False).to_parquet(folder)
    return str(folder), fastmf.Ratings.from_dataframe(pdf, user="user", item="item", rating="rating")


@pytest.fixture(scope="module")
def ml1m(tmp_path_factory):
    return _files(tmp_path_factory, "ml1m", (6040, 3706, 1_000_209))


def _run(benchmark, client, data, params, group, rounds):
    path, _ = data
    n = len(client.scheduler_info()["workers"])
    models = []

    def once():
        models.append(fit(fastmf.MatrixFactorization(**params), path, client=client))

    benchmark.pedantic(once, rounds=rounds, iterations=1, warmup_rounds=0)
    epoch = float(np.median([h["seconds"] for h in models[-1].history_]))
    benchmark.extra_info["median_epoch_s"] = epoch
    TIMES[(group, f"{n} worker(s)")] = (benchmark.stats.stats.median, epoch)


def _single(benchmark, data, params, group, rounds):
    _, ratings = data
    models = []

    def once():
        models.append(fastmf.MatrixFactorization(n_threads=1, **params).fit(ratings))

    benchmark.pedantic(once, rounds=rounds, iterations=1, warmup_rounds=0)
    epoch = float(np.median([h["seconds"] for h in models[-1].history_]))
    benchmark.extra_info["median_epoch_s"] = epoch
    TIMES[(group, "1 process, 1 thread")] = (benchmark.stats.stats.median, epoch)


def _report(group):
    from fastmf._machine import describe

    rows = {k[1]: v for k, v in TIMES.items() if k[0] == group}
    print(f"\n{group} on {describe()}")
    for name, (total, epoch) in rows.items():
        print(f"  {name:22s} fit {total:8.2f} s   epoch {epoch:7.3f} s")
    one, two = rows.get("1 worker(s)"), rows.get("2 worker(s)")
    if one and two:
        print(f"  1 worker / 2 workers: fit {one[0] / two[0]:.2f}x, epoch {one[1] / two[1]:.2f}x")


SGD = dict(n_factors=100, n_epochs=10, n_blocks=8, random_state=0, ranking="rating")
ALS = dict(n_factors=64, n_epochs=5, solver="als", random_state=0, ranking="rating")


@pytest.mark.benchmark(group="dask-sgd-ml1m-shape")
def test_sgd_ml1m_shape(benchmark, client, ml1m):
    _run(benchmark, client, ml1m, SGD, "dask-sgd-ml1m-shape", 3)


@pytest.mark.benchmark(group="dask-sgd-ml1m-shape")
def test_sgd_ml1m_shape_single_process(benchmark, ml1m):
    _single(benchmark, ml1m, SGD, "dask-sgd-ml1m-shape", 3)


@pytest.mark.benchmark(group="dask-als-ml1m-shape")
def test_als_ml1m_shape(benchmark, client, ml1m):
    _run(benchmark, client, ml1m, ALS, "dask-als-ml1m-shape", 3)


@pytest.mark.benchmark(group="dask-als-ml1m-shape")
def test_als_ml1m_shape_single_process(benchmark, ml1m):
    _single(benchmark, ml1m, ALS, "dask-als-ml1m-shape", 3)


@pytest.fixture(scope="module")
def ml20m(tmp_path_factory):
    if os.environ.get("FASTMF_BENCH_20M") != "1":
        pytest.skip("set FASTMF_BENCH_20M=1 for the 20 M-rating rows (minutes, ~6 GB)")
    return _files(tmp_path_factory, "m20", (138_493, 26_744, 20_000_263))


SGD20 = dict(n_factors=64, n_epochs=3, n_blocks=16, random_state=0, ranking="rating")


@pytest.mark.benchmark(group="dask-sgd-20m")
def test_sgd_20m(benchmark, client, ml20m):
    _run(benchmark, client, ml20m, SGD20, "dask-sgd-20m", 1)


@pytest.mark.benchmark(group="dask-sgd-20m")
def test_sgd_20m_single_process(benchmark, ml20m):
    _single(benchmark, ml20m, SGD20, "dask-sgd-20m", 1)
