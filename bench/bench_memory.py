"""Peak memory of an ML-1M-sized job end to end, measured in a fresh child process.

Run: ``pytest bench/bench_memory.py --benchmark-only -s``. The job: build the data (synthetic ML-1M
shape, or the ml-1m *partial* file from ``FASTMF_DATA``), random 90/10 split, MatrixFactorization with
the defaults, ``fastmf.evaluate`` (RMSE/MAE and top-10 ranking metrics for every test user) and
top-10 for every user; ``-als`` / ``-ials`` rows train explicit ALS (k=64, 10 sweeps) or
ImplicitALS (defaults) instead of the SGD defaults. The baseline row is the same child doing only ``import numpy, fastmf``.
Peak resident set size (``ru_maxrss``) goes into ``extra_info["peak_rss_mb"]``; target < 300 MB.
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
