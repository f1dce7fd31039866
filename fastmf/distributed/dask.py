r"""Dask back end of :func:`fastmf.distributed.fit`: DSGD and row-partitioned ALS on a cluster.

Data. The ratings are a Dask DataFrame (or Parquet / CSV files read into one) with a user, an item
and a rating column. Each partition is validated and its distinct ids found on the worker holding
it; the client merges them into the sorted id maps a single process builds
(:class:`fastmf.data.ratings.IdMap`: index order = sorted raw ids), so the two models index users
and items alike. Ratings keep their order (partition, then row): "position" below is the position
the rating would have in ``Ratings.from_dataframe(ddf.compute())``.

SGD (Gemulla, Nijkamp, Haas & Sismanis, KDD 2011; the schedule of fastmf's blocked epoch, Chin et
al. 2015). Users and items are cut into B groups of near-equal rating counts (the groups of
``csrc/blocks.c``); block (a, c) holds the ratings of user group a and item group c. Step s of an
epoch runs the blocks :math:`(b, \sigma_s(b))`, b = 0..B-1, with :math:`\sigma_s(b) = b \oplus s`
(B a power of two) or :math:`(b + s) \bmod B`; they share no user and no item, so they commute.
Worker w keeps the ratings and the factor rows of a contiguous range of user groups for the whole
fit (user blocks resident); the item groups' rows travel: a task runs the blocks of one worker for
as many consecutive steps as its set of item groups stays the same (with B a power of two that W
divides, B/W steps: the XOR steps keep item groups within a range of B/W), then hands those item
rows to the workers of the next steps. Every block runs fastmf's serial SGD kernel
(``_sgd.sgd_epoch``) over the block's ratings in the order the blocked epoch uses (its stream
(seed, epoch, block + 1), ``_sgd.block_schedule``), and the epoch's loss adds the block losses in
schedule order, so parameters and history equal the single-process blocked fit bit for bit, for
any number of workers (workers of one CPU class: the kernel's instruction-set copies differ by FMA
contraction, ``_sgd.isa_levels``).

ALS (Zhou et al. 2008). Users and items are each cut into W contiguous row ranges, one per worker,
that keep their CSR (users) or CSC (items) slice. A half-sweep solves the rows of every range
(``_als.als_half_sweep``, the single-process kernel) against the other side, which each task
gathers whole from the W range results of the half-sweep before: the fixed side is broadcast,
the rows being solved stay where they are. Row solves are independent, so the model equals the
single-process ALS model (the training RMSE of the history is summed per range, equal within
rounding).

iALS (Hu, Koren & Volinsky 2008). The same row ranges; each half-sweep first reduces the Gram
matrix :math:`Y^\top Y` of the fixed side from the W ranges' partial Grams (added in range order),
then solves every range with ``_als.ials_half_sweep`` against the broadcast fixed side. Equal to
the single-process model within rounding (the Gram is summed in another order).

Faults. Every state of the fit is a Dask future computed by a pure task (a task copies the rows it
updates), and tasks prefer, not require, their worker. The parameters are gathered into the
model's arrays on the client every ``checkpoint_every`` epochs. When results are lost with a
worker, the shards are rebuilt from the source on the workers left, the parameters are sent out
again from the checkpoint, the epochs since it are replayed and the epoch is run again: each epoch
depends only on the parameters and its number, so the model is the same. A task the scheduler
gives up on (``KilledWorker``: it took down ``distributed.scheduler.allowed-failures`` workers),
or more than ``retries`` recoveries, ends the fit with :class:`fastmf.errors.WorkerLostError`;
the model is then left unfitted, never half-trained.
"""

from __future__ import annotations

import operator
import os
from typing import Any, Dict, Optional, Sequence

import numpy as np

from fastmf.distributed._rows import (  # noqa: F401 - block_groups: public here since the Dask back end came first
    _als_half, _als_shard, _als_sse, _check_duplicates, _gather_pieces, _ials_half, _index, _partial_gram,
    _prepare, _set_seen, _starts, _stats, _sum_in_order, als_options, block_groups, check_model,
    clear_fitted, ials_options, init_state, set_data_state)

__all__ = ["fit", "block_groups", "read_ratings_frame"]


def _require_dask():
    try:
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:  # pragma: no cover - exercised where the extra is missing
        raise ImportError("fastmf.distributed.fit needs Dask: pip install 'fastmf[dask]' "
                          f"(dask[distributed] and pandas); {exc}") from None


# ------------------------------------------------------------------------------------ partitions
def read_ratings_frame(ratings: Any, columns: Sequence[str], reader_options: Optional[Dict[str, Any]] = None) -> Any:
    """``ratings`` as a Dask DataFrame of the three ``columns``: a Dask DataFrame as it is, a
    pandas DataFrame split into partitions, or a path / list of paths of Parquet files (``.parquet``,
    ``.pq`` or a folder) or of CSV files (``.csv``; ``.tsv`` is read tab-separated)."""
    import dask.dataframe as dd

    opts = dict(reader_options or {})
    if isinstance(ratings, (str, os.PathLike)) or (isinstance(ratings, (list, tuple)) and ratings
                                                   and all(isinstance(p, (str, os.PathLike)) for p in ratings)):
        paths = [os.fspath(p) for p in ([ratings] if isinstance(ratings, (str, os.PathLike)) else ratings)]
        first = paths[0].lower()
        if first.endswith((".parquet", ".pq")) or os.path.isdir(paths[0]):
            frame = dd.read_parquet(paths if len(paths) > 1 else paths[0], columns=list(columns), **opts)
        elif first.endswith((".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")):
            if first.endswith((".tsv", ".tsv.gz")):
                opts.setdefault("sep", "\t")
            frame = dd.read_csv(paths, usecols=list(columns), **opts)
        else:
            raise ValueError(f"ratings: cannot tell the format of {paths[0]!r}; give .parquet / .pq files "
                             "(or a folder of them), .csv / .tsv files, or a Dask DataFrame")
    elif hasattr(ratings, "to_delayed") and hasattr(ratings, "npartitions"):
        frame = ratings
    elif hasattr(ratings, "columns") and hasattr(ratings, "iloc"):  # pandas
        frame = dd.from_pandas(ratings, npartitions=max(1, min(8, len(ratings) // 100_000 + 1)), sort=False)
    else:
        raise TypeError(f"ratings must be a Dask DataFrame, a pandas DataFrame or paths of Parquet/CSV "
                        f"files, got {type(ratings).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"ratings has no column(s) {missing}; it has {list(frame.columns)} "
                         "(name them with user=, item=, rating=)")
    return frame[list(columns)]


def _degrees(idx, n_users, n_items):
    return (np.bincount(idx[0], minlength=n_users).astype(np.int64),
            np.bincount(idx[1], minlength=n_items).astype(np.int64))


def _add_degrees(a, b):
    return a[0] + b[0], a[1] + b[1]


def _route(idx, row_owner, n_owners, by_user):
    """Split a partition by the worker owning each rating's row (users for ``by_user``, else
    items): a list with one ``(users, items, ratings)`` per worker, each in row order."""
    u, i, r = idx
    owner = row_owner[u if by_user else i]
    order = np.argsort(owner, kind="stable")
    cuts = np.searchsorted(owner[order], np.arange(n_owners + 1))
    return [(u[order[lo:hi]], i[order[lo:hi]], r[order[lo:hi]]) for lo, hi in zip(cuts[:-1], cuts[1:])]


class _SgdShard:
    """The ratings of a worker's user groups: ``blocks[a][c] = (local users, local items,
    ratings)`` in position order, and the seen-items CSR piece of the groups."""

    def __init__(self, groups, blocks, counts, indices):
        self.groups, self.blocks, self.counts, self.indices = groups, blocks, counts, indices


def _sgd_shard(groups, ustart, item_group, istart, n_items, user_ids, item_ids, *pieces):
    u, i, r = _gather_pieces(pieces)  # partition order, then row order: position order
    blocks, counts, indices = {}, [], []
    ug = np.searchsorted(ustart, u, side="right") - 1
    for a in groups:
        sel = np.flatnonzero(ug == a)
        ua, ia, ra = u[sel], i[sel], r[sel]
        order = _check_duplicates(ua, ia, n_items, user_ids, item_ids, ("user", "item"))
        counts.append(np.bincount(ua - ustart[a], minlength=int(ustart[a + 1] - ustart[a])))
        indices.append(ia[order])
        cg = item_group[ia]
        by_c = np.argsort(cg, kind="stable")
        cuts = np.searchsorted(cg[by_c], np.arange(len(istart)))
        blocks[a] = []
        for c in range(len(istart) - 1):
            s = by_c[cuts[c]:cuts[c + 1]]
            blocks[a].append(((ua[s] - ustart[a]).astype(np.int32), (ia[s] - istart[c]).astype(np.int32),
                              np.ascontiguousarray(ra[s])))
    return _SgdShard(list(groups), blocks, counts, indices)


def _block_sizes(shard):
    return {a: [b[0].shape[0] for b in shard.blocks[a]] for a in shard.groups}


def _seen(shard):
    return shard.counts, shard.indices


def _copy_rows(state):
    """A fresh, 64-byte aligned copy of (factors, bias): a task never writes its inputs."""
    from fastmf import _sgd

    F, b = state
    out = _sgd.aligned_factors(F.shape[0], F.shape[1], F.dtype)
    out[...] = F
    return out, b.copy()


def _sgd_run(shard, ustate, steps, n_blocks, seed, epoch, hyper, item_groups, *istates):
    """The blocks of this worker's user groups for ``steps`` (step, then user group ascending: the
    serial order of the blocked epoch). Returns (user state, block losses, item states...)."""
    from fastmf import _sgd

    B = n_blocks
    users = {a: _copy_rows(ustate[a]) for a in shard.groups}
    items = {c: _copy_rows(st) for c, st in zip(item_groups, istates)}
    losses = []
    for s in steps:
        for a in shard.groups:
            c = _sgd.step_group(B, a, s)
            bu_, bi_, r = shard.blocks[a][c]
            if r.shape[0] == 0:
                losses.append(0.0)
                continue
            bid = a * B + c
            ptr = np.zeros(B * B + 1, dtype=np.int64)
            ptr[bid + 1:] = r.shape[0]
            plan = _sgd.BlockPlan(B, ptr, np.arange(r.shape[0], dtype=np.int64),
                                  np.zeros(0, np.int32), np.zeros(0, np.int32))
            order = _sgd.block_schedule(plan, seed, epoch)  # the block's shuffle of the blocked epoch
            (P, bu), (Q, bi) = users[a], items[c]
            losses.append(_sgd.sgd_epoch(bu_, bi_, r, order, P, Q, bu, bi, *hyper))
    return (users, losses) + tuple(items[c] for c in item_groups)


# ------------------------------------------------------------------------------------------ fit
def fit(model: Any, ratings: Any, client: Any = None, *, user: str = "user", item: str = "item",
        rating: str = "rating", rating_scale: Any = "infer", n_workers: Optional[int] = None,
        n_threads: int = 1, checkpoint_every: int = 1, retries: int = 2, callbacks: Any = None,
        progress: Any = False, reader_options: Optional[Dict[str, Any]] = None) -> Any:
    """Train ``model`` on a Dask cluster and return it (fitted, like ``model.fit``).

    Parameters
    ----------
    model : fastmf.MatrixFactorization or fastmf.ImplicitALS
        ``MatrixFactorization`` with ``solver="sgd"`` and ``schedule="blocked"`` (DSGD over the
        model's ``n_blocks`` x ``n_blocks`` blocks) or ``solver="als"``; or ``ImplicitALS``. Its
        hyper-parameters, seed and ``n_blocks`` decide the model exactly as in ``model.fit``
        (no eval sets, early stopping or side features here).
    ratings : dask.dataframe.DataFrame, pandas.DataFrame, or path(s) of Parquet / CSV files
        One rating per (user, item) pair (a repeat raises DataError naming it).
    client : distributed.Client, optional
        The cluster (default: the current client, ``distributed.get_client()``).
    user, item, rating : str
        Column names.
    rating_scale : "infer" or (low, high)
        As in :meth:`fastmf.Ratings.from_arrays`.
    n_workers : int, optional
        Use this many of the cluster's workers (default all; the model does not depend on it).
    n_threads : int
        OpenMP threads of each kernel call on a worker (default 1: one per Dask worker thread).
    checkpoint_every : int
        Gather the parameters to the client every this many epochs (default 1; 0: never, a lost
        worker then ends the fit). The client holds one copy of the model either way (the
        result); the cost is one transfer of the parameters per checkpoint.
    retries : int
        Recoveries from lost workers per fit (from the last checkpoint, on the workers left)
        before the fit fails with WorkerLostError.
    callbacks, progress
        As in ``model.fit``: after every epoch, with that epoch's history entry (the model's
        factors are gathered only at the end of the fit).
    reader_options : dict, optional
        Keywords of ``dask.dataframe.read_parquet`` / ``read_csv`` for paths.

    Returns
    -------
    model, fitted: ``user_factors_``, ``item_factors_``, biases, ``history_``, the id maps and
    the seen-items CSR of an ordinary fit; with ``ranking="engagement"`` its engagement model is
    fitted on the client from the seen items, as ``fit`` does.

    Raises
    ------
    fastmf.errors.WorkerLostError
        Workers died and what they held could not be recomputed (the model is left unfitted).
    """
    _require_dask()
    from distributed import get_client

    check_model(model, "fastmf.distributed.fit", sgd=True)
    from fastmf._validation import Interval

    for name, value, low in (("n_threads", n_threads, 1), ("checkpoint_every", checkpoint_every, 0),
                             ("retries", retries, 0)):
        if not Interval("int", low, None).accepts(value):
            raise ValueError(f"fastmf.distributed.fit: {name} must be an int >= {low}, got {value!r}")
    client = get_client() if client is None else client
    clear_fitted(model)
    try:
        return _Fit(model, client, read_ratings_frame(ratings, (user, item, rating), reader_options),
                    rating_scale, n_workers, n_threads, checkpoint_every, retries).run(callbacks, progress)
    except BaseException as exc:
        clear_fitted(model)
        lost = _lost_worker(exc)
        if lost is not None:
            from fastmf.errors import WorkerLostError

            raise WorkerLostError(f"fastmf.distributed.fit: {lost}; the model was not fitted (retry, or "
                                  "give the workers more memory)") from exc
        raise


def _lost_worker(exc):
    """What to say when ``exc`` means a worker (and data only it held) was lost, else None."""
    try:
        from distributed import KilledWorker
    except ImportError:  # pragma: no cover
        return None
    from concurrent.futures import CancelledError

    if isinstance(exc, KilledWorker):
        return f"a task kept losing its worker ({exc})"
    if isinstance(exc, CancelledError) or type(exc).__name__ in ("FutureCancelledError", "CancelledError"):
        return f"a result was lost with its worker ({exc})"
    return None


class _Fit:
    """One distributed fit: the data on the workers, the model's fitted state on the client."""

    def __init__(self, model, client, frame, rating_scale, n_workers, n_threads, checkpoint_every, retries):
        self.model, self.client = model, client
        self.columns = tuple(frame.columns)
        self.delayed = frame.to_delayed()
        self.rating_scale = rating_scale
        self.n_threads = int(n_threads)
        self.n_workers = n_workers
        self.checkpoint_every, self.retries = checkpoint_every, retries
        if n_workers is not None and not (isinstance(n_workers, int) and n_workers >= 1):
            raise ValueError(f"n_workers must be an int >= 1, got {n_workers!r}")
        self.refresh_workers()

    def refresh_workers(self):
        workers = sorted(self.client.scheduler_info()["workers"])
        if not workers:
            raise RuntimeError("fastmf.distributed.fit: the Dask cluster has no workers")
        self.workers = workers[:self.n_workers] if self.n_workers is not None else workers

    def submit(self, fn, *args, worker=None, **kw):
        where = dict(workers=[worker], allow_other_workers=True) if worker is not None else {}
        return self.client.submit(fn, *args, pure=False, **where, **kw)

    def take(self, future, index):
        return self.client.submit(operator.getitem, future, index, pure=False)

    def prepared(self):
        """The validated partitions, computed (again) from the source."""
        futures = self.client.compute(self.delayed)
        return [self.submit(_prepare, f, self.columns, p, self.rating_scale) for p, f in enumerate(futures)]

    def indexed(self):
        """The partitions as (user index, item index, ratings) futures, computed from the source:
        the input of a trainer's shards (again after a lost worker)."""
        user_ids, item_ids = self.client.scatter([self.model.user_map_.ids, self.model.item_map_.ids],
                                                 broadcast=True, hash=False)
        self.user_ids, self.item_ids = user_ids, item_ids
        dtype = np.dtype(self.model.dtype)
        return [self.submit(_index, p, user_ids, item_ids, dtype) for p in self.prepared()]

    # ------------------------------------------------------------------ data and fitted state
    def _data(self):
        m, client = self.model, self.client
        stats = client.gather([self.submit(_stats, p) for p in self.prepared()])
        self.n, self.min = set_data_state(m, stats, self.rating_scale)
        self.idx = self.indexed()
        degs = [self.submit(_degrees, x, m.n_users_, m.n_items_) for x in self.idx]
        while len(degs) > 1:  # a tree of sums on the workers
            degs = [self.submit(_add_degrees, degs[j], degs[j + 1]) if j + 1 < len(degs) else degs[j]
                    for j in range(0, len(degs), 2)]
        self.deg_u, self.deg_i = degs[0].result()
        m.item_counts_ = self.deg_i.copy()
        m.user_counts_ = self.deg_u.copy()

    def run(self, callbacks, progress):
        from fastmf.training import check_fit_options, run_epochs

        m = self.model
        callbacks, _ = check_fit_options(m, None, callbacks, None, None, (), progress)
        self._data()
        implicit, P_full, Q_full, tail = init_state(m, self.min)
        if implicit:
            trainer = _IalsTrainer(self)
        elif m.solver == "sgd":
            trainer = _SgdTrainer(self, P_full, Q_full)
        else:
            trainer = _AlsTrainer(self)
        trainer.distribute(self.idx)
        del self.idx
        run_epochs(m, _Resilient(self, trainer).epoch, m._resolved_n_epochs(), (), callbacks=callbacks,
                   progress=progress, verbose=getattr(m, "verbose", False), divergence=lambda exc: f"{tail}: {exc}")
        trainer.checkpoint()
        trainer.seen()
        if not implicit and m.ranking == "engagement":
            m._engagement()
        return m


class _Resilient:
    """Epochs with checkpoints on the client and recovery from a lost worker: the parameters are
    gathered into the model's arrays every ``checkpoint_every`` epochs; when a worker's results are
    lost, the shards are rebuilt from the source on the workers there are, the state is sent out
    again from the checkpoint, the epochs since it are replayed (each epoch depends only on the
    state and its number, so the numbers are the same) and the epoch is run again, at most
    ``retries`` times per fit. A task the scheduler gave up on (KilledWorker: it took down
    ``allowed-failures`` workers) is not tried again."""

    def __init__(self, fit, trainer):
        self.fit, self.trainer = fit, trainer
        self.saved, self.held, self.failures = 0, 0, 0  # epochs checkpointed / on the workers

    def epoch(self, n):
        from distributed import KilledWorker

        while True:
            try:
                for e in range(self.held + 1, n):  # replay after a recovery
                    self.trainer.epoch(e)
                    self.held = e
                out = self.trainer.epoch(n)
                self.held = n
                break
            except Exception as exc:
                if _lost_worker(exc) is None or isinstance(exc, KilledWorker) or \
                        self.failures >= self.fit.retries or not self.fit.checkpoint_every:
                    raise
                self.failures += 1
                self.fit.client.wait_for_workers(1, timeout=120)
                self.fit.refresh_workers()
                self.trainer.distribute(self.fit.indexed())
                self.held = self.saved
        if self.fit.checkpoint_every and n - self.saved >= self.fit.checkpoint_every:
            self.trainer.checkpoint()
            self.saved = n
        return out


class _SgdTrainer:
    """DSGD over the blocked schedule (module docstring)."""

    def __init__(self, fit, P_full, Q_full):
        from fastmf.models.mf import default_n_blocks

        self.fit, m = fit, fit.model
        self.P_full, self.Q_full = P_full, Q_full
        B = self.B = default_n_blocks(m, max(P_full.strides[0], Q_full.strides[0]))
        self.ug, self.ig = block_groups(fit.deg_u, B), block_groups(fit.deg_i, B)
        self.ustart, self.istart = _starts(self.ug, B), _starts(self.ig, B)
        reg_bias = m.reg if m.reg_bias is None else m.reg_bias
        self.hyper = (m.global_mean_, m.lr, m.reg, reg_bias, m.biased)

    def distribute(self, idx):
        """Build the shards from ``idx`` on the current workers and send them the parameters of
        the model's arrays (the initial ones, or the last checkpoint)."""
        fit, m, B, client = self.fit, self.fit.model, self.B, self.fit.client
        W = self.W = min(len(fit.workers), B)
        self.owner = [a * W // B for a in range(B)]  # user group -> worker: contiguous ranges
        self.groups = [[a for a in range(B) if self.owner[a] == w] for w in range(W)]
        self.addr = fit.workers[:W]
        row_owner = np.asarray(self.owner, dtype=np.int32)[self.ug]
        item_group, row_owner = client.scatter([self.ig, row_owner], broadcast=True, hash=False)
        routed = [fit.submit(_route, x, row_owner, W, True) for x in idx]
        self.shards = []
        for w in range(W):
            pieces = [fit.take(r, w) for r in routed]
            self.shards.append(fit.submit(_sgd_shard, self.groups[w], self.ustart, item_group, self.istart,
                                          m.n_items_, fit.user_ids, fit.item_ids, *pieces, worker=self.addr[w]))
        sizes = {}
        for d in client.gather([fit.submit(_block_sizes, s) for s in self.shards]):
            sizes.update(d)
        self.sizes = sizes
        P, Q, bu, bi, us, ist = self.P_full, self.Q_full, m.user_bias_, m.item_bias_, self.ustart, self.istart
        self.ustate = [client.scatter([{a: (np.ascontiguousarray(P[us[a]:us[a + 1]]), bu[us[a]:us[a + 1]].copy())
                                        for a in self.groups[w]}], workers=[self.addr[w]], hash=False)[0]
                       for w in range(W)]
        self.istate = {}
        for c in range(B):
            w = self.owner[_step_owner(B, c, 0)]
            self.istate[c] = client.scatter([(np.ascontiguousarray(Q[ist[c]:ist[c + 1]]), bi[ist[c]:ist[c + 1]].copy())],
                                            workers=[self.addr[w]], hash=False)[0]
        # runs of steps over which every worker keeps its item groups
        self.runs = []
        s = 0
        while s < B:
            e = s + 1
            while e < B and all(self._items(w, e) == self._items(w, s) for w in range(W)):
                e += 1
            self.runs.append(list(range(s, e)))
            s = e

    def _items(self, w, s):
        from fastmf import _sgd

        return sorted(_sgd.step_group(self.B, a, s) for a in self.groups[w])

    def epoch(self, epoch):
        from fastmf import _sgd

        fit, m, B = self.fit, self.fit.model, self.B
        e = epoch if m.shuffle else 0
        losses = {}
        for steps in self.runs:
            for w in range(self.W):
                items = self._items(w, steps[0])
                if not any(self.sizes[a][_sgd.step_group(B, a, s)] for s in steps for a in self.groups[w]):
                    continue
                out = fit.submit(_sgd_run, self.shards[w], self.ustate[w], steps, B, m.seed_, e, self.hyper,
                                 items, *[self.istate[c] for c in items], worker=self.addr[w])
                self.ustate[w] = fit.take(out, 0)
                loss = fit.take(out, 1)
                for j, c in enumerate(items):
                    self.istate[c] = fit.take(out, 2 + j)
                for n_, (s, a) in enumerate((s, a) for s in steps for a in self.groups[w]):
                    losses[(s, a)] = (loss, n_)
        futures = {v[0].key: v[0] for v in losses.values()}
        got = dict(zip(futures, fit.client.gather(list(futures.values()))))
        total = 0.0
        for s in range(B):  # the blocked epoch's reduction: block losses in schedule order
            for b in range(B):
                v = losses.get((s, b))
                total += 0.0 if v is None else got[v[0].key][v[1]]
        return {"train_rmse": float(np.sqrt(total / fit.n))}

    def checkpoint(self):
        """Gather the parameters into the model's arrays."""
        fit, m = self.fit, self.fit.model
        client = fit.client
        for st in client.gather(self.ustate):
            for a, (P, bu) in st.items():
                self.P_full[self.ustart[a]:self.ustart[a + 1]] = P
                m.user_bias_[self.ustart[a]:self.ustart[a + 1]] = bu
        for c, (Q, bi) in zip(self.istate, client.gather([self.istate[c] for c in self.istate])):
            self.Q_full[self.istart[c]:self.istart[c + 1]] = Q
            m.item_bias_[self.istart[c]:self.istart[c + 1]] = bi

    def seen(self):
        fit = self.fit
        seen = fit.client.gather([fit.submit(_seen, s) for s in self.shards])
        _set_seen(fit.model, [c for w in range(self.W) for c in seen[w][0]],
                  [i for w in range(self.W) for i in seen[w][1]])


def _step_owner(B, c, s):
    """The user group whose block in step s has item group c."""
    return c ^ s if (B & (B - 1)) == 0 else (c - s) % B


class _AlsTrainer:
    """Row-partitioned ALS (module docstring)."""

    def __init__(self, fit):
        self.fit = fit
        self.options = als_options(fit.model, fit.n_threads)

    def distribute(self, idx):
        fit, m, client = self.fit, self.fit.model, self.fit.client
        W = self.W = len(fit.workers)
        self.addr = fit.workers
        self.uw, self.iw = block_groups(fit.deg_u, W), block_groups(fit.deg_i, W)
        self.ustart, self.istart = _starts(self.uw, W), _starts(self.iw, W)
        uw, iw = client.scatter([self.uw, self.iw], broadcast=True, hash=False)
        ru = [fit.submit(_route, x, uw, W, True) for x in idx]
        ri = [fit.submit(_route, x, iw, W, False) for x in idx]
        self.ushard, self.ishard = [], []
        for w in range(W):
            ulo, uhi = int(self.ustart[w]), int(self.ustart[w + 1])
            ilo, ihi = int(self.istart[w]), int(self.istart[w + 1])
            self.ushard.append(fit.submit(_als_shard, ulo, uhi, True, m.n_items_, fit.user_ids, fit.item_ids,
                                          *[fit.take(r, w) for r in ru], worker=self.addr[w]))
            self.ishard.append(fit.submit(_als_shard, ilo, ihi, False, m.n_users_, fit.item_ids, fit.user_ids,
                                          *[fit.take(r, w) for r in ri], worker=self.addr[w]))
        P, Q, us, ist = m.user_factors_, m.item_factors_, self.ustart, self.istart
        bu, bi = self._biases()
        self.ustate = [client.scatter([(P[us[w]:us[w + 1]].copy(), bu[us[w]:us[w + 1]].copy())],
                                      workers=[self.addr[w]], hash=False)[0] for w in range(W)]
        self.istate = [client.scatter([(Q[ist[w]:ist[w + 1]].copy(), bi[ist[w]:ist[w + 1]].copy())],
                                      workers=[self.addr[w]], hash=False)[0] for w in range(W)]

    def _biases(self):
        m = self.fit.model
        return m.user_bias_, m.item_bias_

    def epoch(self, epoch):
        fit, m = self.fit, self.fit.model
        ustate = [fit.submit(_als_half, self.ushard[w], self.ustate[w], self.options, *self.istate,
                             worker=self.addr[w]) for w in range(self.W)]
        istate = [fit.submit(_als_half, self.ishard[w], self.istate[w], self.options, *ustate,
                             worker=self.addr[w]) for w in range(self.W)]
        sse = [fit.submit(_als_sse, self.ushard[w], ustate[w], m.global_mean_, m.biased, fit.n_threads, *istate,
                          worker=self.addr[w]) for w in range(self.W)]
        total = 0.0
        for v in fit.client.gather(sse):
            total += v
        self.ustate, self.istate = ustate, istate
        return {"train_rmse": float(np.sqrt(total / fit.n))}

    def checkpoint(self):
        fit, m = self.fit, self.fit.model
        bu, bi = self._biases()
        for w, (F, b) in enumerate(fit.client.gather(self.ustate)):
            m.user_factors_[self.ustart[w]:self.ustart[w + 1]] = F
            bu[self.ustart[w]:self.ustart[w + 1]] = b
        for w, (F, b) in enumerate(fit.client.gather(self.istate)):
            m.item_factors_[self.istart[w]:self.istart[w + 1]] = F
            bi[self.istart[w]:self.istart[w + 1]] = b

    def seen(self):
        fit = self.fit
        seen = fit.client.gather([fit.submit(_seen_csr, s) for s in self.ushard])
        _set_seen(fit.model, [np.diff(ip) for ip, _ in seen], [ix for _, ix in seen])


def _seen_csr(shard):
    return shard.indptr, shard.indices


class _IalsTrainer(_AlsTrainer):
    """Row-partitioned implicit ALS: each half-sweep's Gram matrix :math:`Y^\\top Y` is reduced
    from the W ranges' partial Grams (added in range order on a worker), then the rows of every
    range are solved against the broadcast fixed side with it. History has no ``train_loss``
    (the objective's item-side terms need every user's rows)."""

    def __init__(self, fit):
        self.fit = fit
        self.options = ials_options(fit.model, fit.n_threads)

    def _biases(self):
        m = self.fit.model
        return np.zeros(m.n_users_, dtype=m.user_factors_.dtype), np.zeros(m.n_items_, dtype=m.item_factors_.dtype)

    def _gram(self, states):
        fit = self.fit
        parts = [fit.submit(_partial_gram, st, fit.n_threads, worker=self.addr[w]) for w, st in enumerate(states)]
        return fit.submit(_sum_in_order, *parts)

    def epoch(self, epoch):
        fit = self.fit
        gy = self._gram(self.istate)
        ustate = [fit.submit(_ials_half, self.ushard[w], self.ustate[w], gy, self.options, *self.istate,
                             worker=self.addr[w]) for w in range(self.W)]
        gx = self._gram(ustate)
        istate = [fit.submit(_ials_half, self.ishard[w], self.istate[w], gx, self.options, *ustate,
                             worker=self.addr[w]) for w in range(self.W)]
        fit.client.gather(istate[-1:])  # the epoch is done (and its errors raised) here
        self.ustate, self.istate = ustate, istate
        return {}
