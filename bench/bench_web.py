"""Benchmark of ``fastmf web``'s live update: the server-side time of one rating update (fold the
new user in, rank every item, explain each recommendation) on an ML-1M-sized model, against the
target of < 20 ms, beside the same update through the whole HTTP stack (in-process test client)
and the batch top-10 of one known user (``model.recommend``) as peers in the same run.

Run:  OPENBLAS_NUM_THREADS=1 python -m pytest bench/bench_web.py --benchmark-only -q \\
          --benchmark-columns=median,iqr,rounds -s

The model: ``MatrixFactorization(n_factors=64, n_epochs=5, random_state=0)`` (the default engagement
ranking, as ``fastmf web DATA`` trains it; the epoch count does not change the update's cost) on
``fastmf.make_ratings(6040, 3706, 1_000_209, seed=5)``. An update is
:meth:`fastmf.app.service.Catalog.recommend` with 5, 15 or 50 ratings (a session growing; the
items are the onboarding order's first ones, rated 1..5 in turn), n=10. ``fastmf web`` runs BLAS
on one thread (a multi-threaded BLAS makes the (k+1)x(k+1) solve ~1000x slower on a busy machine,
see ``fastmf.app.cli.WEB_BLAS_ENV``); the bench sets the same when it is the first to load NumPy and
reports which it got. extra_info gives the median in ms, the target and the machine.
"""

import os
import sys

from fastmf.app.cli import WEB_BLAS_ENV  # imports no NumPy

if "numpy" not in sys.modules:
    for _name in WEB_BLAS_ENV:
        os.environ.setdefault(_name, "1")

import json  # noqa: E402

import pytest  # noqa: E402

import fastmf  # noqa: E402
from fastmf.app import service  # noqa: E402

TARGET_MS = 20.0
SIZES = (5, 15, 50)


def machine():
    from fastmf._machine import describe

    return describe()


@pytest.fixture(scope="module")
def catalog():
    ds = fastmf.make_ratings(6040, 3706, 1_000_209, seed=5)
    model = fastmf.MatrixFactorization(n_factors=64, n_epochs=5, random_state=0).fit(ds)
    return service.Catalog(model, ds)


def session(catalog, size):
    items = [r["item"] for r in catalog.onboarding(n=size)["items"]]
    return [[item, 1 + j % 5] for j, item in enumerate(items)]


def _report(benchmark, what):
    median_ms = benchmark.stats.stats.median * 1e3
    benchmark.extra_info.update({"median_ms": round(median_ms, 3), "target_ms": TARGET_MS,
                                 "machine": machine(), "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS")})
    print(f"\n{what}: median {median_ms:.2f} ms (target < {TARGET_MS:g} ms) on {machine()}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    return median_ms


@pytest.mark.benchmark(group="web-update")
@pytest.mark.parametrize("size", SIZES)
def test_update_server_side(benchmark, catalog, size):
    ratings = session(catalog, size)
    out = benchmark(catalog.recommend, ratings, 10)
    assert out["n_rated"] == size and len(out["items"]) == 10
    _report(benchmark, f"update with {size} ratings, server side (fold-in + top-10 + explanations)")


@pytest.mark.benchmark(group="web-update")
@pytest.mark.parametrize("size", (15,))
def test_update_through_http(benchmark, catalog, size):
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from fastmf.app.web.server import create_app

    body = json.dumps({"ratings": session(catalog, size), "n": 10})
    with TestClient(create_app(catalog), base_url="http://127.0.0.1:8000") as client:
        def call():
            r = client.post("/api/recommend", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 200
            return r

        benchmark(call)
    _report(benchmark, f"update with {size} ratings through the HTTP stack (in-process client)")


@pytest.mark.benchmark(group="web-update")
def test_known_user_top10(benchmark, catalog):
    model = catalog.model
    user = model.user_map_.ids[0]
    benchmark(model.recommend, user, 10)
    _report(benchmark, "peer: top-10 of one known user (model.recommend)")
