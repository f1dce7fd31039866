"""fastmf.distributed.fit on a LocalCluster of 2 worker processes: the model equals the single-process
one (SGD bit for bit, ALS within 1e-6 relative) for 1 and 2 workers, from Dask DataFrames and files;
bad data fails naming the partition; a worker killed in the middle of an epoch is recomputed (same
model) or the fit fails with WorkerLostError."""

import os
import signal

import numpy as np
import pytest

pytest.importorskip("dask.dataframe", reason="fastmf[dask] (dask[distributed]) is not installed")
pytest.importorskip("distributed", reason="fastmf[dask] (dask[distributed]) is not installed")
pd = pytest.importorskip("pandas", reason="fastmf[dask] needs pandas")

import dask.dataframe as dd  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

import fastmf  # noqa: E402
from distributed_helpers import assert_same_model, rating_frame  # noqa: E402
from fastmf import _sgd  # noqa: E402
from fastmf.distributed import fit  # noqa: E402
from fastmf.distributed.dask import block_groups  # noqa: E402
from fastmf.errors import DataError, WorkerLostError  # noqa: E402

@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                           silence_logs=40)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(autouse=True)
def _both_workers_up(request):
    """Every test starts with both workers: a test that kills one leaves the nanny restarting it,
    and the next fit must not find a cluster with fewer (or no) workers than the last."""
    if "client" in request.fixturenames:
        request.getfixturevalue("client").wait_for_workers(2, timeout=300)  # a guard, not a timing


@pytest.fixture(scope="module")
def frame():
    return rating_frame(300, 200, 6000)


def test_block_groups_are_the_plans_groups():
    ds = fastmf.make_ratings(500, 300, 9000, seed=1)
    for B in (1, 3, 4, 8):
        plan = _sgd.make_block_plan(ds.user_index, ds.item_index, ds.n_users, ds.n_items, B)
        assert np.array_equal(block_groups(ds.user_counts(), B), plan.user_block)
        assert np.array_equal(block_groups(ds.item_counts(), B), plan.item_block)
    assert np.array_equal(block_groups(np.zeros(5, np.int64), 2), [0, 0, 0, 1, 1])


@pytest.mark.parametrize("n_workers", [1, 2])
@pytest.mark.parametrize("kw", [dict(n_blocks=4), dict(n_blocks=3, dtype="float64", biased=False),
                                dict(n_blocks=8, shuffle=False, n_factors=20)])
def test_dsgd_equals_the_blocked_fit_bit_for_bit(client, frame, n_workers, kw):
    pdf, ref = frame
    params = dict(dict(n_factors=12, n_epochs=4, random_state=4, ranking="rating"), **kw)
    one = fastmf.MatrixFactorization(**params).fit(ref)
    many = fit(fastmf.MatrixFactorization(**params), dd.from_pandas(pdf, npartitions=3, sort=False),
               client=client, n_workers=n_workers)
    assert_same_model(one, many)


@pytest.mark.parametrize("n_workers", [1, 2])
@pytest.mark.parametrize("kw", [dict(), dict(linear_solver="cg", dtype="float64"), dict(biased=False, weighted=False)])
def test_als_equals_the_single_process_fit(client, frame, n_workers, kw):
    pdf, ref = frame
    params = dict(n_factors=8, n_epochs=4, random_state=2, solver="als", ranking="rating", **kw)
    one = fastmf.MatrixFactorization(**params).fit(ref)
    many = fit(fastmf.MatrixFactorization(**params), dd.from_pandas(pdf, npartitions=4, sort=False),
               client=client, n_workers=n_workers)
    assert_same_model(one, many, exact=False)


@pytest.mark.parametrize("kw", [dict(), dict(linear_solver="cholesky", dtype="float64", reg_nu=0.0)])
def test_implicit_als_equals_the_single_process_fit(client, frame, kw):
    pdf, ref = frame
    params = dict(dict(n_factors=8, n_epochs=3, random_state=3, calculate_loss=False), **kw)
    one = fastmf.ImplicitALS(**params).fit(ref)
    many = fit(fastmf.ImplicitALS(**params), dd.from_pandas(pdf, npartitions=3, sort=False), client=client)
    for name in ("user_factors_", "item_factors_", "seen_indptr_", "seen_indices_"):
        x, y = getattr(one, name), getattr(many, name)
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_allclose(y, x, rtol=1e-6, atol=1e-6 * np.abs(x).max(), err_msg=name)
    assert [h["epoch"] for h in many.history_] == [1, 2, 3]
    ids, _ = many.recommend(ref.user_map.ids[0], n=5)
    assert list(ids) == list(one.recommend(ref.user_map.ids[0], n=5)[0])


def test_files_string_ids_and_an_ordinary_model(client, frame, tmp_path):
    """CSV files with string ids; the engagement ranking; save, load and recommend as usual."""
    pdf, _ = frame
    sdf = pdf.assign(user="u" + pdf["user"].astype(str), item="i" + pdf["item"].astype(str))
    paths = []
    for j, chunk in enumerate(np.array_split(np.arange(len(sdf)), 3)):
        paths.append(tmp_path / f"part{j}.csv")
        sdf.iloc[chunk].to_csv(paths[-1], index=False)
    ref = fastmf.Ratings.from_dataframe(sdf, user="user", item="item", rating="rating")
    params = dict(n_factors=8, n_epochs=3, random_state=7, n_blocks=4, engagement_iterations=2)
    one = fastmf.MatrixFactorization(**params).fit(ref)
    many = fit(fastmf.MatrixFactorization(**params), [str(p) for p in paths], client=client)
    assert_same_model(one, many)
    assert np.array_equal(one.item_engagement_, many.item_engagement_)
    many.save(tmp_path / "m.npz")
    back = fastmf.load(tmp_path / "m.npz")
    users = list(ref.user_map.ids[:5])
    for u in users:
        ids, scores = back.recommend(u, n=5)
        want_ids, want_scores = one.recommend(u, n=5)
        assert list(ids) == list(want_ids) and np.array_equal(scores, want_scores)


def test_parquet_input(client, frame, tmp_path):
    pytest.importorskip("pyarrow", reason="Parquet needs pyarrow")
    pdf, ref = frame
    dd.from_pandas(pdf, npartitions=2, sort=False).to_parquet(tmp_path / "r.parquet")
    params = dict(n_factors=8, n_epochs=2, random_state=1, n_blocks=2, ranking="rating")
    one = fastmf.MatrixFactorization(**params).fit(ref)
    assert_same_model(one, fit(fastmf.MatrixFactorization(**params), str(tmp_path / "r.parquet"), client=client))


def test_bad_data_names_the_partition(client, frame):
    pdf, _ = frame
    m = fastmf.MatrixFactorization(n_factors=4, n_epochs=1, ranking="rating")
    bad = pdf.copy()
    bad.loc[bad.index[4500], "rating"] = np.nan
    with pytest.raises(DataError, match=r"partition 2: column 'rating': missing value at row 500"):
        fit(m, dd.from_pandas(bad, npartitions=3, sort=False), client=client)
    assert not hasattr(m, "user_factors_")
    dup = pd.concat([pdf, pdf.iloc[[10]]], ignore_index=True)
    with pytest.raises(DataError, match=r"duplicate rating for user %d, item %d"
                       % (pdf["user"].iloc[10], pdf["item"].iloc[10])):
        fit(m, dd.from_pandas(dup, npartitions=3, sort=False), client=client)
    with pytest.raises(ValueError, match="no column"):
        fit(m, dd.from_pandas(pdf, npartitions=1), client=client, user="userId")
    with pytest.raises(ValueError, match="schedule='blocked'"):
        fit(fastmf.MatrixFactorization(schedule="shuffle"), pdf, client=client)
    with pytest.raises(ValueError, match="checkpoint_every must be an int >= 0"):
        fit(m, pdf, client=client, checkpoint_every=-1)
    with pytest.raises(TypeError, match="MatrixFactorization or ImplicitALS"):
        fit(fastmf.Popularity(), pdf, client=client)


def test_importing_fastmf_distributed_does_not_import_dask():
    import subprocess
    import sys

    code = "import sys, fastmf; fastmf.distributed.fit; print('dask' in sys.modules, 'distributed' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def _kill_on_call(n):
    """Run in one worker process: its n-th SGD block (mid-epoch, mid-task) kills the process."""
    from fastmf import _sgd as kernels

    original, calls = kernels.sgd_epoch, [0]

    def sgd_epoch(*args, **kw):
        calls[0] += 1
        if calls[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kw)

    kernels.sgd_epoch = sgd_epoch


def _workers(client):
    client.wait_for_workers(2, timeout=300)  # a guard: a nanny restarts a killed worker in seconds, minutes on a loaded box
    return sorted(client.scheduler_info()["workers"])


@pytest.mark.parametrize("checkpoint_every", [1, 3])
def test_a_worker_killed_mid_epoch_is_recomputed(client, frame, checkpoint_every):
    pdf, ref = frame
    params = dict(n_factors=8, n_epochs=4, random_state=5, n_blocks=4, ranking="rating")
    one = fastmf.MatrixFactorization(**params).fit(ref)
    victim = _workers(client)[1]
    # worker 1 runs 2 user groups x 2 steps x 2 runs = 8 blocks per epoch: call 20 is in epoch 3
    client.run(_kill_on_call, 20, workers=[victim])
    many = fit(fastmf.MatrixFactorization(**params), dd.from_pandas(pdf, npartitions=3, sort=False),
               client=client, checkpoint_every=checkpoint_every)  # 3: epochs 1-2 replayed
    assert victim not in _workers(client)  # it did die (the nanny started a new one)
    assert_same_model(one, many)


def test_a_lost_worker_beyond_retries_fails_clearly(client, frame):
    """retries=0: the first lost worker ends the fit with WorkerLostError and an unfitted model."""
    pdf, _ = frame
    victim = _workers(client)[0]
    client.run(_kill_on_call, 3, workers=[victim])
    m = fastmf.MatrixFactorization(n_factors=8, n_epochs=3, random_state=5, n_blocks=4, ranking="rating")
    with pytest.raises(WorkerLostError, match="the model was not fitted"):
        fit(m, dd.from_pandas(pdf, npartitions=3, sort=False), client=client, retries=0)
    assert not hasattr(m, "user_factors_") and not hasattr(m, "history_")
    assert victim not in _workers(client)


class _FlakyTrainer:
    """A trainer whose epochs raise ``errors`` in turn, then succeed; it records its calls."""

    def __init__(self, errors):
        self.errors, self.calls = list(errors), []

    def epoch(self, n):
        self.calls.append(("epoch", n))
        if self.errors:
            raise self.errors.pop(0)
        return {"train_rmse": float(n)}

    def distribute(self, idx):
        self.calls.append(("distribute", idx))

    def checkpoint(self):
        self.calls.append(("checkpoint",))


class _FakeFit:
    def __init__(self, retries=2, checkpoint_every=1):
        self.retries, self.checkpoint_every = retries, checkpoint_every
        self.client = type("C", (), {"wait_for_workers": lambda self, n, timeout: None})()

    def refresh_workers(self):
        pass

    def indexed(self):
        return "rebuilt"


def test_recovery_policy():
    """Lost results: rebuild, replay the epochs since the checkpoint, rerun; KilledWorker and
    running out of retries: raise (fit turns both into WorkerLostError)."""
    from distributed import KilledWorker
    from distributed.client import FutureCancelledError

    from fastmf.distributed.dask import _Resilient, _lost_worker

    lost = FutureCancelledError("k", "lost dependencies")
    trainer = _FlakyTrainer([])
    r = _Resilient(_FakeFit(checkpoint_every=2), trainer)
    assert r.epoch(1) == {"train_rmse": 1.0} and r.saved == 0
    trainer.errors = [lost]
    assert r.epoch(2) == {"train_rmse": 2.0} and r.saved == 2
    assert trainer.calls == [("epoch", 1), ("epoch", 2), ("distribute", "rebuilt"),
                             ("epoch", 1), ("epoch", 2), ("checkpoint",)]
    trainer.calls.clear()
    assert r.epoch(3) == {"train_rmse": 3.0} and r.saved == 2  # no replay without a failure
    assert trainer.calls == [("epoch", 3)]
    killed = KilledWorker("k", type("W", (), {"address": "tcp://127.0.0.1:1"})(), 3)
    for errors, fit_ in (([killed], _FakeFit()), ([lost], _FakeFit(retries=0)), ([lost], _FakeFit(checkpoint_every=0)),
                         ([lost, lost, lost], _FakeFit(retries=2)), ([ValueError("x")], _FakeFit())):
        with pytest.raises(type(errors[-1])):
            _Resilient(fit_, _FlakyTrainer(errors)).epoch(1)
    assert "kept losing its worker" in _lost_worker(killed) and "lost with its worker" in _lost_worker(lost)
    assert _lost_worker(ValueError("x")) is None
