"""TimeSVDpp against SVDpp and biased MF on ml-latest-small, Koren's ablation, and the cost of an
epoch against a biased-MF SGD epoch, all in the same run.

Run: ``FASTMF_DATA=... pytest bench/bench_timesvd.py --benchmark-only -s``.
Groups:
- ``timesvd-accuracy``: test RMSE on ml-latest-small with ``leave_last_out(k=5)`` (each user's 5
  latest ratings) and with a global ``temporal_split(test_size=0.2)`` of MatrixFactorization,
  SVDpp and TimeSVDpp at their defaults (``ranking="rating"``, ``random_state=0``), and Koren's
  ablation (static -> +bins -> +drift -> +day bias -> +scaling -> +factors), in ``extra_info`` and
  printed with the machine.
- ``timesvd-epoch``: seconds per training epoch (median over the epochs of one fit, one thread,
  no eval set) of TimeSVDpp's defaults and of MatrixFactorization's SGD defaults on the
  leave-last-out training set; ``extra_info["ratio"]`` is their quotient (target <= 2.5), and
  ``extra_info["cpu_ratio"]`` the same quotient in CPU time (``time.process_time`` of a fit of
  ``EPOCHS`` epochs less that of a fit of 0 epochs, divided by ``EPOCHS``; median of 3 each, the
  two models alternating), which a shared, loaded machine disturbs less than wall time.
"""

import os

import numpy as np
import pytest

import fastmf

TERMS = ("item_bins", "user_drift", "day_bias", "scaling", "factor_drift", "day_factors")
#: Koren's ablation, one term group added at a time (the last step adds the time-dependent factors)
ABLATION = (
    ("static (SVD++)", ()),
    ("+bins", ("item_bins",)),
    ("+drift", ("item_bins", "user_drift")),
    ("+day bias", ("item_bins", "user_drift", "day_bias")),
    ("+scaling", ("item_bins", "user_drift", "day_bias", "scaling")),
    ("+factors", ("item_bins", "user_drift", "day_bias", "scaling", "factor_drift", "day_factors")),
)


def machine():
    from fastmf._machine import describe

    return describe()


def splits():
    root = os.environ.get("FASTMF_DATA")
    folder = os.path.join(root, "ml-latest-small") if root else None
    if not folder or not os.path.isdir(folder):
        pytest.skip("ml-latest-small not under FASTMF_DATA")
    ds = fastmf.load_movielens("ml-latest-small", path=folder, download=False)
    return {"leave_last_out(k=5)": fastmf.split.leave_last_out(ds, k=5),
            "temporal_split(0.2)": fastmf.split.temporal_split(ds, test_size=0.2)}


def rmse(model, test):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fastmf.evaluate(model, test)["rmse"]


@pytest.mark.benchmark(group="timesvd-accuracy")
def test_accuracy_and_ablation(benchmark):
    data = splits()
    common = dict(random_state=0, ranking="rating")
    info = {"machine": machine()}

    def run():
        for name, (train, test) in data.items():
            row = {"mf": rmse(fastmf.MatrixFactorization(**common).fit(train), test),
                   "svdpp": rmse(fastmf.SVDpp(**common).fit(train), test),
                   "timesvdpp": rmse(fastmf.TimeSVDpp(**common).fit(train), test)}
            for label, on in ABLATION:
                switches = {t: t in on for t in TERMS}
                row[label] = rmse(fastmf.TimeSVDpp(**common, **switches).fit(train), test)
            info[name] = row

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(info)
    print(f"\n{info['machine']}")
    for name in data:
        print(name, {k: round(v, 4) for k, v in info[name].items()})


EPOCHS = 20


def cpu_per_epoch(make, train):
    """CPU seconds per epoch of the model ``make(n_epochs)``: a fit of EPOCHS epochs less one of 0."""
    import time

    t0 = time.process_time()
    make(0).fit(train)
    t1 = time.process_time()
    make(EPOCHS).fit(train)
    return ((time.process_time() - t1) - (t1 - t0)) / EPOCHS


@pytest.mark.benchmark(group="timesvd-epoch")
def test_epoch_cost_against_biased_mf(benchmark):
    train, _ = splits()["leave_last_out(k=5)"]

    def per_epoch(model):
        model.fit(train)
        return float(np.median([e["seconds"] for e in model.history_]))

    ours = benchmark.pedantic(lambda: per_epoch(fastmf.TimeSVDpp(n_threads=1, random_state=0, n_epochs=10,
                                                                 ranking="rating")), rounds=3, iterations=1)
    mf = [per_epoch(fastmf.MatrixFactorization(n_threads=1, random_state=0, n_epochs=10, ranking="rating"))
          for _ in range(3)]
    svdpp = [per_epoch(fastmf.SVDpp(n_threads=1, random_state=0, n_epochs=10, ranking="rating")) for _ in range(3)]
    info = {"machine": machine(), "timesvdpp_epoch_s": ours, "mf_epoch_s": float(np.median(mf)),
            "svdpp_epoch_s": float(np.median(svdpp))}
    info["ratio"] = info["timesvdpp_epoch_s"] / info["mf_epoch_s"]
    cpu = {"timesvdpp": [], "mf": []}
    for _ in range(3):
        cpu["timesvdpp"].append(cpu_per_epoch(lambda e: fastmf.TimeSVDpp(n_threads=1, random_state=0, n_epochs=e,
                                                                          ranking="rating"), train))
        cpu["mf"].append(cpu_per_epoch(lambda e: fastmf.MatrixFactorization(n_threads=1, random_state=0, n_epochs=e,
                                                                            ranking="rating"), train))
    info["timesvdpp_epoch_cpu_s"] = float(np.median(cpu["timesvdpp"]))
    info["mf_epoch_cpu_s"] = float(np.median(cpu["mf"]))
    info["cpu_ratio"] = info["timesvdpp_epoch_cpu_s"] / info["mf_epoch_cpu_s"]
    benchmark.extra_info.update(info)
    print(f"\n{info['machine']}\n{info}")
