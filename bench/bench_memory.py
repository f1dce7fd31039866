"""Peak memory of an ML-1M-sized job end to end, measured in a fresh child process.

Run: ``pytest bench/bench_memory.py --benchmark-only -s``. The job: build the data (synthetic ML-1M
shape, or the ml-1m *partial* file from ``FASTMF_DATA``), random 90/10 split, MatrixFactorization with
the defaults, ``fastmf.evaluate`` (RMSE/MAE and top-10 ranking metrics for every test user) and
top-10 for every user; ``-als`` / ``-ials`` rows train explicit ALS (k=64, 10 sweeps) or
ImplicitALS (defaults) instead of the SGD defaults. The baseline row is the same child doing only ``import numpy, fastmf``.
Peak resident set size (``ru_maxrss``) goes into ``extra_info["peak_rss_mb"]``; target < 300 MB.

The Netflix shape (issue 19, "One machine first"): ``make_ratings(480_189, 17_770, 100_480_507)``
end to end by SGD or ALS, in a child process, with the peak resident set size of every phase
(``/proc/self/status`` VmHWM, reset between phases through ``/proc/self/clear_refs``) in bytes per
rating above the resident size once the ratings exist (target <= 14). The split is the data from
then on: the job drops the unsplit set after ``random_split`` (train and test hold the same 12
bytes per rating; the split phase's peak holds both). ``test_netflix_shape_memory`` runs it at 1/10
of the shape (10 M ratings, a few minutes); the whole shape runs from the command line, once::

    python bench/bench_memory.py --scale 1.0 --solver sgd   # then --solver als

The figures for the README come from that, with the machine (``fastmf._machine.describe()``).
"""

import json
import os
import subprocess
import sys

import pytest

JOB = r"""
import json, resource, sys, time
import numpy as np
import fastmf
what = sys.argv[1]
t0 = time.perf_counter()
if what == "import":
    pass
else:
    if what.startswith("ml1m-shape"):
        ds = fastmf.make_ratings(6040, 3706, 1_000_209, seed=0)
    else:
        ds = fastmf.load_movielens("ml-1m", path=sys.argv[2], ratings_file="ratings.PARTIAL_users_1-2999.dat")
    train, test = fastmf.split.random_split(ds, test_size=0.1, random_state=0)
    if what.endswith("-als"):
        model = fastmf.MatrixFactorization(solver="als", n_factors=64, n_epochs=10, random_state=0)
    elif what.endswith("-ials"):
        model = fastmf.ImplicitALS(random_state=0)
    else:
        model = fastmf.MatrixFactorization(random_state=0)
    model.fit(train)
    res = fastmf.evaluate(model, test, k=10)
    ids, scores = model.recommend(ds.user_map.ids, n=10)
elapsed = time.perf_counter() - t0
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "seconds": elapsed}))
"""


SCALE_JOB = r"""
import gc, json, sys, time
import numpy as np
import fastmf
from fastmf._machine import describe

def status():
    with open("/proc/self/status") as f:
        d = {l.split(":")[0]: int(l.split()[1]) * 1024 for l in f if l.startswith(("VmRSS", "VmHWM"))}
    return d["VmRSS"], d["VmHWM"]

def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")

scale, solver, epochs, n_eval = float(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
n, n_users = int(round(100_480_507 * scale)), int(round(480_189 * scale))
report = {"machine": describe(), "n_ratings": n, "n_users": n_users, "n_items": 17_770, "solver": solver,
          "epochs": epochs, "phases": {}}
t = time.perf_counter()
ds = fastmf.make_ratings(n_users, 17_770, n, seed=0)
base, _ = status()
report["data_seconds"] = time.perf_counter() - t
report["given_bytes_per_rating"] = (ds.user_index.nbytes + ds.item_index.nbytes + ds.rating.nbytes) / n
print(f"data: {n} ratings in {report['data_seconds']:.1f} s, resident {base / 1e6:.0f} MB", file=sys.stderr, flush=True)

def phase(name, fn):
    gc.collect()
    reset_peak()
    t = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t
    rss, hwm = status()
    report["phases"][name] = {"seconds": seconds, "peak_bytes_per_rating": (hwm - base) / n,
                              "end_bytes_per_rating": (rss - base) / n}
    print(f"{name}: {seconds:.1f} s, peak {(hwm - base) / n:.2f} bytes/rating above the data",
          file=sys.stderr, flush=True)
    return out

train, test = phase("split", lambda: fastmf.split.random_split(ds, test_size=0.1, random_state=0))
sample = np.random.default_rng(0).choice(ds.user_map.ids, min(n_eval, ds.n_users), replace=False)
del ds  # the split is the data from here on
k = 100 if solver == "sgd" else 32
model = fastmf.MatrixFactorization(solver=solver, n_factors=k, n_epochs=epochs, random_state=0)
phase("fit", lambda: model.fit(train, progress=True))
res = phase("evaluate", lambda: fastmf.evaluate(model, test, k=10, users=sample))
phase("recommend", lambda: model.recommend(sample, n=10))
report["peak_bytes_per_rating"] = max(p["peak_bytes_per_rating"] for p in report["phases"].values())
report["rmse"], report["ndcg@10"] = res["rmse"], res["ndcg@10"]
print(json.dumps(report))
"""


def run_scale_job(scale, solver, epochs, n_eval, timeout=3600):
    out = subprocess.run([sys.executable, "-c", SCALE_JOB, str(scale), solver, str(epochs), str(n_eval)],
                         stdout=subprocess.PIPE, text=True, check=True, timeout=timeout)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.benchmark(group="memory-netflix-shape")
@pytest.mark.parametrize("solver", ["sgd", "als"])
def test_netflix_shape_memory(benchmark, solver):
    """1/10 of the Netflix shape (10 M ratings), 2 epochs / sweeps, 2,000 users evaluated."""
    result = benchmark.pedantic(run_scale_job, args=(0.1, solver, 2, 2000), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print(f"\n{solver} at {result['n_ratings']} ratings ({result['machine']}): peak "
          f"{result['peak_bytes_per_rating']:.2f} bytes/rating above the data; " +
          ", ".join(f"{k} {v['seconds']:.1f} s / {v['peak_bytes_per_rating']:.2f}" for k, v in result["phases"].items()))


def run_job(what, *args):
    out = subprocess.run([sys.executable, "-c", JOB, what, *args], capture_output=True, text=True,
                         check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.benchmark(group="memory")
@pytest.mark.parametrize("what", ["import", "ml1m-shape", "ml1m-shape-als", "ml1m-shape-ials",
                                  "ml1m-partial"])
def test_peak_memory_end_to_end(benchmark, what):
    args = ()
    if what == "ml1m-partial":
        root = os.environ.get("FASTMF_DATA")
        if not root or not os.path.isdir(os.path.join(root, "ml-1m")):
            pytest.skip("ml-1m not under FASTMF_DATA")
        args = (os.path.join(root, "ml-1m"),)
    result = benchmark.pedantic(run_job, args=(what, *args), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print(f"\n{what}: peak RSS {result['peak_rss_mb']:.0f} MB, job {result['seconds']:.2f} s")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Peak memory of the Netflix shape end to end")
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the Netflix shape (1.0: 100 M ratings)")
    ap.add_argument("--solver", choices=["sgd", "als"], default="sgd")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--eval-users", type=int, default=20_000)
    a = ap.parse_args()
    print(json.dumps(run_scale_job(a.scale, a.solver, a.epochs, a.eval_users), indent=1))


@pytest.fixture(scope="module")
def ml1m_shape_file(tmp_path_factory):
    import numpy as np

    import fastmf

    ds = fastmf.make_ratings(6040, 3706, 1_000_209, seed=0)
    path = tmp_path_factory.mktemp("store") / "ratings.csv"
    u, i, r, _ = ds.to_arrays()
    np.savetxt(path, np.c_[u, i, r], fmt=["%d", "%d", "%g"], delimiter=",")
    return path


@pytest.mark.benchmark(group="store")
@pytest.mark.parametrize("how", ["read_ratings", "write_store", "fit-memory", "fit-store"])
def test_store_against_memory(benchmark, ml1m_shape_file, tmp_path, how):
    """The ML-1M shape as a CSV file: read into memory vs converted into a store (8 blocks), and
    SGD (k=64, 5 epochs, ranking="rating") fitted in memory vs over the store's maps; the two
    models are checked equal."""
    import numpy as np

    import fastmf
    from fastmf.data.store import write_store

    kw = dict(n_blocks=8, n_factors=64, n_epochs=5, random_state=0, ranking="rating")
    if how == "read_ratings":
        benchmark.pedantic(fastmf.read_ratings, args=(ml1m_shape_file,), rounds=3, iterations=1)
    elif how == "write_store":
        dirs = iter(range(100))
        benchmark.pedantic(lambda: write_store(ml1m_shape_file, tmp_path / f"s{next(dirs)}", 8),
                           rounds=3, iterations=1)
    else:
        store = write_store(ml1m_shape_file, tmp_path / "s", 8)
        data = fastmf.read_ratings(ml1m_shape_file) if how == "fit-memory" else store
        model = benchmark.pedantic(lambda: fastmf.MatrixFactorization(**kw).fit(data), rounds=3, iterations=1)
        other = fastmf.MatrixFactorization(**kw).fit(fastmf.read_ratings(ml1m_shape_file) if how == "fit-store" else store)
        np.testing.assert_array_equal(model.user_factors_, other.user_factors_)
