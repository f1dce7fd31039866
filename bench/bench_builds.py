"""SGD epoch throughput of several builds (or instruction-set copies) of fastmf, in one run.

Run:  python bench/bench_builds.py [--rounds 5] [--threads 1,2] LABEL=PATH[:ISA] ...

Each ``LABEL=PATH`` is a source tree with the extensions built in place (``python setup.py build_ext
--inplace``, e.g. once with ``FASTMF_CFLAGS="-march=x86-64-v3 -DFASTMF_NO_CLONES"`` for the AVX2 code
alone and once with ``-march=x86-64`` for the portable baseline); ``:ISA`` sets ``FASTMF_ISA`` for it
(``x86-64-v4``, ``x86-64-v3``, ``default``: a lower copy of a multi-versioned build). The builds are
timed in turns, one subprocess per build and round, so that the load of a shared machine falls on
all of them alike; the table gives the median over the rounds of M updates/s per core.

Data and model as in bench_sgd_kernel.py: ``make_ratings(6040, 3706, 1_000_209, seed=0)`` (ML-1M
shape), float32, biased, lr=0.005, reg=0.02, factors N(0, 0.1), rows padded and aligned
(``aligned_factors``), ratings packed in block order, the blocked schedule with 8 x 8 blocks; each
timing is one epoch over all ratings, a few epochs per subprocess, the median of them kept.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np
from fastmf import _sgd
from fastmf.synthetic import make_ratings
ks, threads, epochs, fit_rounds = json.loads(sys.argv[1])
ds = make_ratings(6040, 3706, 1_000_209, seed=0, dtype="float32")
u = np.ascontiguousarray(ds.user_index, np.int32)
i = np.ascontiguousarray(ds.item_index, np.int32)
r = np.ascontiguousarray(ds.rating, np.float32)
plan = _sgd.make_block_plan(u, i, ds.n_users, ds.n_items, 8)
u, i, r = u[plan.block_order], i[plan.block_order], r[plan.block_order]
plan = _sgd.make_block_plan(u, i, ds.n_users, ds.n_items, 8)
out = {}
for k in ks:
    rng = np.random.default_rng(0)
    P = _sgd.aligned_factors(ds.n_users, k, np.float32)
    Q = _sgd.aligned_factors(ds.n_items, k, np.float32)
    P[:] = rng.normal(0, 0.1, P.shape)
    Q[:] = rng.normal(0, 0.1, Q.shape)
    for nt in threads:
        p = _sgd.aligned_factors(*P.shape, np.float32); p[:] = P
        q = _sgd.aligned_factors(*Q.shape, np.float32); q[:] = Q
        bu, bi = np.zeros(ds.n_users, np.float32), np.zeros(ds.n_items, np.float32)
        ts = []
        for e in range(epochs):
            t = time.perf_counter()
            _sgd.sgd_epoch_blocked(u, i, r, p, q, bu, bi, 3.5, 0.005, 0.02, None, True, plan, 0, e, nt)
            ts.append(time.perf_counter() - t)
        out[f"{k}/{nt}"] = len(r) / sorted(ts)[len(ts) // 2] / 1e6 / nt
fit = None
if fit_rounds:
    import fastmf
    from fastmf.data.split import random_split
    train, _ = random_split(make_ratings(6040, 3706, 1_000_209, seed=5), 0.2, random_state=0)
    m = fastmf.MatrixFactorization(n_factors=100, n_epochs=20, lr=0.005, reg=0.02, reg_bias=0.02,
                                   init_std=0.1, ranking="rating", random_state=0, n_threads=1)
    fts = []
    for _ in range(fit_rounds):
        t = time.perf_counter()
        m.fit(train)
        fts.append(time.perf_counter() - t)
    fit = sorted(fts)[len(fts) // 2]
import fastmf, os
levels = _sgd.isa_levels() if hasattr(_sgd, "isa_levels") else "no isa_levels (built before them)"
print(json.dumps({"rates": out, "levels": levels, "from": os.path.dirname(fastmf.__file__), "fit": fit}))
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("builds", nargs="+", help="LABEL=PATH[:ISA]")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--k", default="16,64,128")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--fit", type=int, default=0, metavar="N",
                    help="also time N fits (median kept) of MatrixFactorization, k=100, 20 epochs, 1 thread, "
                         "on 80%% of make_ratings(6040, 3706, 1_000_209, seed=5), and once per round "
                         "scikit-surprise's SVD with the same settings when it is installed")
    args = ap.parse_args(argv)
    ks = [int(x) for x in args.k.split(",")]
    threads = [int(x) for x in args.threads.split(",")]
    builds = []
    for spec in args.builds:
        label, _, rest = spec.partition("=")
        path, _, isa = rest.partition(":")
        builds.append((label, os.path.abspath(path), isa))
    sys.path.insert(0, builds[0][1])
    from fastmf._machine import describe  # the machine, as every bench names it

    print(f"machine: {describe()}")
    rates = {label: {} for label, _, _ in builds}
    for rnd in range(args.rounds):
        for label, path, isa in builds:
            env = dict(os.environ, PYTHONPATH=path)
            env.pop("FASTMF_ISA", None)
            if isa:
                env["FASTMF_ISA"] = isa
            proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps([ks, threads, args.epochs, args.fit])],
                                  env=env, cwd=path, capture_output=True, text=True, check=True)
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            if rnd == 0:
                print(f"{label}: fastmf from {res['from']}, FASTMF_ISA={isa or 'auto'}, copies {res['levels']}")
            for key, v in res["rates"].items():
                rates[label].setdefault(key, []).append(v)
            if res["fit"] is not None:
                rates[label].setdefault("fit", []).append(res["fit"])
        if args.fit:
            t = surprise_fit()
            if t is not None:
                rates.setdefault("scikit-surprise SVD", {}).setdefault("fit", []).append(t)
    cols = [f"{k}/{nt}" for nt in threads for k in ks]
    print(f"M updates/s per core, median of {args.rounds} rounds (k/threads):")
    print(f"{'build':<24}" + "".join(f"{c:>10}" for c in cols))
    for label, _, _ in builds:
        print(f"{label:<24}" + "".join(f"{statistics.median(rates[label][c]):>10.1f}" for c in cols))
    if args.fit:
        sup = rates.get("scikit-surprise SVD", {}).get("fit")
        print("fit, ML-1M shape (80%), k=100, 20 epochs, 1 thread: median seconds"
              + (f"; scikit-surprise SVD {statistics.median(sup):.2f} s" if sup else "; scikit-surprise not installed"))
        for label, _, _ in builds:
            t = statistics.median(rates[label]["fit"])
            print(f"{label:<24}{t:>10.3f} s" + (f"   {statistics.median(sup) / t:.1f}x surprise" if sup else ""))


def surprise_fit():
    """Seconds of one scikit-surprise SVD fit with the fastmf fit's data and settings, or None."""
    try:
        import surprise
    except ImportError:
        return None
    import time

    import pandas as pd
    from fastmf.data.split import random_split
    from fastmf.synthetic import make_ratings

    train, _ = random_split(make_ratings(6040, 3706, 1_000_209, seed=5), 0.2, random_state=0)
    u, i, r, _ = train.to_arrays()
    data = surprise.Dataset.load_from_df(pd.DataFrame({"u": u, "i": i, "r": r}),
                                         surprise.Reader(rating_scale=(1, 5)))
    trainset = data.build_full_trainset()
    algo = surprise.SVD(n_factors=100, n_epochs=20, lr_all=0.005, reg_all=0.02, random_state=0)
    t = time.perf_counter()
    algo.fit(trainset)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
