r"""Spark back end (``fastmf.spark``): explicit ALS (with biases) and implicit ALS on a Spark
cluster, and top-n for many users per partition.

``pip install 'fastmf[spark]'`` brings PySpark (it needs Java 17+); nothing here imports it
until a function runs. The result of :func:`fit` is an ordinary fastmf model (``save``,
``fastmf.load``, ``recommend``), equal to the one ``model.fit`` trains in one process from the
same data and seed within rounding (1e-6 relative).

Data. A Spark DataFrame with a user, an item and a rating column. One ``mapInPandas`` pass
validates every partition (as ``Ratings.from_dataframe`` would: missing values, id kinds, finite
ratings, the declared scale) and returns its distinct users and items with their counts; the
driver merges them into the sorted id maps a single process builds (``_rows.set_data_state``,
shared with the Dask back end). A second pass maps raw ids to indices and tags each rating with
the user range and the item range holding it: users and items are each cut into P contiguous
ranges of near-equal rating counts (``block_groups``); the ratings are then persisted twice,
range-partitioned by user range and by item range.

ALS / iALS (Zhou et al. 2008; Hu, Koren & Volinsky 2008). The factors live on the driver. A
half-sweep broadcasts the fixed side (and for iALS its Gram matrix :math:`Y^\top Y`, computed
once on the driver), runs ``mapInPandas`` over the persisted ratings of the side being solved,
and in each partition builds the CSR slice of its row ranges and solves it with fastmf's C row
solver (``_rows._als_half`` / ``_ials_half``: the kernels of the single-process fit and of the
Dask back end); the new rows come back to the driver. Every half-sweep is one job over the
persisted data with a fresh broadcast, so the lineage does not grow with the iterations (Spark
MLlib's ALS chains its iterations and needs checkpointing past a few dozen). The training RMSE
of the history is summed per item range in the item half-sweep.

Faults: Spark retries a failed task from the persisted ratings and the same broadcast, so a
retried task computes the same rows.
"""

from __future__ import annotations

import io
import os
import tempfile
import uuid
from typing import Any, Optional

import numpy as np

from fastmf.distributed._rows import (
    _als_half, _als_shard, _als_sse, _AlsShard, _ials_half, _index, _prepare, _set_seen, _starts, _stats, als_options,
    block_groups, check_model, clear_fitted, ials_options, init_state, merged_degrees, set_data_state)

__all__ = ["fit", "recommend_all"]

_WHERE = "fastmf.spark.fit"


def _require_spark():
    try:
        import pandas  # noqa: F401
        import pyarrow  # noqa: F401
        import pyspark.sql  # noqa: F401
    except ImportError as exc:
        raise ImportError("fastmf.spark needs PySpark (and pandas, pyarrow): pip install 'fastmf[spark]'; "
                          f"{exc}") from None


def _pack(**arrays: np.ndarray) -> bytes:
    """Arrays as ``.npz`` bytes (no pickle): what travels in broadcasts and result rows."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _unpack(blob: bytes) -> dict:
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _frame(batches, columns):
    """The pandas rows of one partition (``mapInPandas`` hands them over in batches)."""
    import pandas as pd

    frames = list(batches)
    if not frames:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _partition_id():
    from pyspark import TaskContext

    ctx = TaskContext.get()
    return ctx.partitionId() if ctx is not None else 0


def _check_frame(df, columns):
    """TypeError / ValueError / DataError naming what is wrong with the DataFrame's schema."""
    from pyspark.sql import DataFrame
    from pyspark.sql.types import BooleanType, IntegralType, NumericType, StringType

    from fastmf.errors import DataError

    if not isinstance(df, DataFrame):
        raise TypeError(f"{_WHERE}: ratings must be a pyspark.sql.DataFrame, got {type(df).__name__}")
    types = {f.name: f.dataType for f in df.schema.fields}
    missing = [c for c in columns if c not in types]
    if missing:
        raise ValueError(f"ratings has no column(s) {missing}; it has {list(types)} "
                         "(name them with user=, item=, rating=)")
    user, item, rating = columns
    for name in (user, item):
        if not isinstance(types[name], (IntegralType, StringType)):
            raise DataError(f"column {name!r}: ids must be integers or strings, got Spark type "
                            f"{types[name].simpleString()}")
    if not isinstance(types[rating], NumericType) or isinstance(types[rating], BooleanType):
        raise DataError(f"column {rating!r}: ratings must be numeric, got Spark type {types[rating].simpleString()}")


def _python_error(exc):
    """The exception an executor raised, rebuilt on the driver for the types fastmf raises on
    purpose (FloatingPointError of a diverging solve, DataError of a duplicate): the last line
    of the remote traceback naming it. Other exceptions: None (re-raise as they are)."""
    from fastmf.errors import DataError

    text = str(exc)
    for cls, names in ((DataError, ("fastmf.errors.DataError:", "DataError:")),
                       (FloatingPointError, ("FloatingPointError:",))):
        for line in reversed(text.splitlines()):
            for name in names:
                if line.strip().startswith(name):
                    return cls(line.strip()[len(name):].strip())
    return None


def _collect(frame):
    from pyspark.errors import PythonException

    try:
        return frame.collect()
    except PythonException as exc:
        mapped = _python_error(exc)
        if mapped is None:
            raise
        raise mapped from None


# ------------------------------------------------------------------------------------------- fit
def fit(model: Any, ratings: Any, spark: Any = None, *, user: str = "user", item: str = "item",
        rating: str = "rating", rating_scale: Any = "infer", n_partitions: Optional[int] = None,
        n_threads: int = 1, callbacks: Any = None, progress: Any = False) -> Any:
    """Train ``model`` on Spark and return it (fitted, like ``model.fit``).

    Parameters
    ----------
    model : fastmf.MatrixFactorization (``solver="als"``) or fastmf.ImplicitALS
        Its hyper-parameters and seed decide the model exactly as in ``model.fit`` (no eval sets,
        early stopping or side features here). Explicit ALS keeps fastmf's user and item biases
        (``biased=True``), which Spark MLlib's ALS lacks.
    ratings : pyspark.sql.DataFrame
        One rating per (user, item) pair (a repeat raises DataError naming it); user and item
        columns of integers or strings, a numeric rating column.
    spark : pyspark.sql.SparkSession, optional
        Default: the DataFrame's own session.
    user, item, rating : str
        Column names.
    rating_scale : "infer" or (low, high)
        As in :meth:`fastmf.Ratings.from_arrays`.
    n_partitions : int, optional
        Row ranges per side (default: the session's default parallelism); the model does not
        depend on it.
    n_threads : int
        OpenMP threads of each kernel call in a task (default 1: one per Spark core).
    callbacks, progress
        As in ``model.fit``, after every iteration.

    Returns
    -------
    model, fitted: factors, biases, ``history_`` (``train_rmse`` for explicit ALS), the id maps
    and the seen-items CSR of an ordinary fit.
    """
    _require_spark()
    check_model(model, _WHERE, sgd=False)
    from fastmf._validation import Interval

    for name, value in (("n_threads", n_threads), ("n_partitions", n_partitions)):
        if not (value is None and name == "n_partitions") and not Interval("int", 1, None).accepts(value):
            raise ValueError(f"{_WHERE}: {name} must be an int >= 1, got {value!r}")
    columns = (user, item, rating)
    _check_frame(ratings, columns)
    spark = ratings.sparkSession if spark is None else spark
    if n_partitions is None:
        n_partitions = max(1, int(spark.sparkContext.defaultParallelism))
    clear_fitted(model)
    run = _SparkFit(model, spark, ratings.select(*columns), columns, rating_scale, n_partitions, n_threads)
    try:
        return run.run(callbacks, progress)
    except BaseException:
        clear_fitted(model)
        raise
    finally:
        run.release()


class _SparkFit:
    """One fit: ratings persisted on the executors by row range, parameters on the driver."""

    def __init__(self, model, spark, frame, columns, rating_scale, n_partitions, n_threads):
        self.model, self.spark, self.frame, self.columns = model, spark, frame, columns
        self.rating_scale, self.P, self.n_threads = rating_scale, n_partitions, int(n_threads)
        self.persisted, self.broadcasts = [], []

    def release(self):
        for d in self.persisted:
            d.unpersist()
        for b in self.broadcasts:
            b.destroy()
        self.persisted, self.broadcasts = [], []

    def broadcast(self, blob):
        b = self.spark.sparkContext.broadcast(blob)
        self.broadcasts.append(b)
        return b

    def drop(self, b):
        b.destroy()
        self.broadcasts.remove(b)

    # --------------------------------------------------------------------------- data
    def _data(self):
        from fastmf.errors import DataError

        m, columns, scale = self.model, self.columns, self.rating_scale

        def stats(batches):
            import pandas as pd

            part = _partition_id()
            try:
                s = _stats(_prepare(_frame(batches, columns), columns, part, scale))
            except DataError as exc:
                yield pd.DataFrame({"part": [part], "error": [str(exc)], "n": [0], "sum": [0.0], "min": [0.0],
                                    "max": [0.0], "blob": [b""]})
                return
            blob = _pack(users=s["users"], items=s["items"], user_counts=s["user_counts"],
                         item_counts=s["item_counts"])
            yield pd.DataFrame({"part": [part], "error": [None], "n": [s["n"]], "sum": [s["sum"]],
                                "min": [s["min"]], "max": [s["max"]], "blob": [blob]})

        rows = sorted(_collect(self.frame.mapInPandas(
            stats, "part int, error string, n long, sum double, min double, max double, blob binary")),
            key=lambda r: r["part"])
        for r in rows:
            if r["error"] is not None:
                raise DataError(r["error"])
        parts = []
        for r in rows:
            s = dict(_unpack(r["blob"])) if r["n"] else {}
            s.update(n=r["n"], sum=r["sum"], min=r["min"], max=r["max"])
            parts.append(s)
        self.n, self.min = set_data_state(m, parts, scale)
        self.deg_u, self.deg_i = merged_degrees(m, parts)
        m.user_counts_, m.item_counts_ = self.deg_u.copy(), self.deg_i.copy()

    def _distribute(self):
        """Index the ratings, range-partition them by user range and by item range, and persist
        each side's CSR slices (one row per row range: its ``.npz`` bytes), built once."""
        m, columns, P = self.model, self.columns, self.P
        dtype = np.dtype(m.dtype)
        self.ustart = _starts(block_groups(self.deg_u, P), P)
        self.istart = _starts(block_groups(self.deg_i, P), P)
        ids = self.ids = self.broadcast(_pack(users=m.user_map_.ids, items=m.item_map_.ids,
                                              ustart=self.ustart, istart=self.istart))
        scale = self.rating_scale

        def index(batches):
            import pandas as pd

            got = _unpack(ids.value)
            p = _prepare(_frame(batches, columns), columns, _partition_id(), scale)
            u, i, r = _index(p, got["users"], got["items"], dtype)
            pu = (np.searchsorted(got["ustart"], u, side="right") - 1).astype(np.int32)
            pi = (np.searchsorted(got["istart"], i, side="right") - 1).astype(np.int32)
            yield pd.DataFrame({"u": u, "i": i, "r": r, "pu": pu, "pi": pi})

        rtype = "float" if dtype == np.float32 else "double"
        indexed = self.frame.mapInPandas(index, f"u int, i int, r {rtype}, pu int, pi int").persist()
        self.persisted.append(indexed)
        self.ushards = self._shards(indexed, True)
        self.ishards = self._shards(indexed, False)
        indexed.unpersist()
        self.persisted.remove(indexed)

    def _shards(self, indexed, by_user):
        """The persisted ``(part, blob)`` rows of one side: the CSR slice (``_rows._als_shard``:
        columns ascending per row, a repeated pair raises DataError) of each row range."""
        m, ids = self.model, self.ids
        key, start = ("pu", self.ustart) if by_user else ("pi", self.istart)
        n_cols = m.n_items_ if by_user else m.n_users_

        def build(batches):
            import pandas as pd

            pdf = _frame(batches, ("u", "i", "r", key))
            got = _unpack(ids.value)
            row_ids, col_ids = (got["users"], got["items"]) if by_user else (got["items"], got["users"])
            parts = pdf[key].to_numpy()
            u, i, r = pdf["u"].to_numpy(), pdf["i"].to_numpy(), pdf["r"].to_numpy()
            for part in np.unique(parts):
                sel = parts == part
                sh = _als_shard(int(start[part]), int(start[part + 1]), by_user, n_cols, row_ids, col_ids,
                                (u[sel], i[sel], r[sel]))
                yield pd.DataFrame({"part": [int(part)],
                                    "blob": [_pack(indptr=sh.indptr, indices=sh.indices, data=sh.data)]})

        shards = indexed.repartitionByRange(self.P, key).mapInPandas(build, "part int, blob binary").persist()
        self.persisted.append(shards)
        _collect(shards.select("part"))  # build them now (and raise a duplicate here)
        return shards

    # ----------------------------------------------------------------------- half-sweeps
    def _half(self, by_user, own, fixed, gram, sse):
        """Solve every row range of one side against the broadcast ``fixed`` = (factors, bias):
        writes the new rows into ``own`` (the driver's arrays) and returns the ranges' SSE added
        in range order (when ``sse``)."""
        m, implicit, options = self.model, self.implicit, self.options
        shards = self.ushards if by_user else self.ishards
        start = self.ustart if by_user else self.istart
        state = self.broadcast(_pack(F=own[0], b=own[1], Y=fixed[0], c=fixed[1],
                                     gram=np.zeros((0, 0)) if gram is None else gram))
        mu, biased, n_threads = m.global_mean_, getattr(m, "biased", False), self.n_threads

        def half(batches):
            import pandas as pd

            st = None
            for pdf in batches:
                for part, blob in zip(pdf["part"].tolist(), pdf["blob"].tolist()):
                    st = _unpack(state.value) if st is None else st
                    lo, hi = int(start[part]), int(start[part + 1])
                    shard = _AlsShard(lo, hi, **_unpack(blob))
                    rows = (st["F"][lo:hi], st["b"][lo:hi])
                    fixed_state = (st["Y"], st["c"])
                    if implicit:
                        F, b = _ials_half(shard, rows, st["gram"], options, fixed_state)
                    else:
                        F, b = _als_half(shard, rows, options, fixed_state)
                    e = _als_sse(shard, (F, b), mu, biased, n_threads, fixed_state) if sse else 0.0
                    yield pd.DataFrame({"part": [int(part)], "sse": [float(e)], "blob": [_pack(F=F, b=b)]})

        try:
            rows = sorted(_collect(shards.mapInPandas(half, "part int, sse double, blob binary")),
                          key=lambda row: row["part"])
        finally:
            self.drop(state)
        total = 0.0
        for row in rows:
            lo, hi = int(start[row["part"]]), int(start[row["part"] + 1])
            got = _unpack(row["blob"])
            own[0][lo:hi] = got["F"]
            own[1][lo:hi] = got["b"]
            total += row["sse"]
        return total

    def epoch(self, epoch):
        from fastmf import _als

        m = self.model
        X, Y = m.user_factors_, m.item_factors_
        bu, bi = self.biases
        gram = _als.gram(Y, self.n_threads) if self.implicit else None
        self._half(True, (X, bu), (Y, bi), gram, sse=False)
        gram = _als.gram(X, self.n_threads) if self.implicit else None
        total = self._half(False, (Y, bi), (X, bu), gram, sse=not self.implicit)
        return {} if self.implicit else {"train_rmse": float(np.sqrt(total / self.n))}

    def _seen(self):
        """The seen-items CSR of the model: the user shards' column indices, in range order."""
        got = {row["part"]: _unpack(row["blob"]) for row in _collect(self.ushards)}
        start, counts, indices = self.ustart, [], []
        for p in range(self.P):
            if p in got:
                counts.append(np.diff(got[p]["indptr"]))
                indices.append(got[p]["indices"])
            else:  # an empty range
                counts.append(np.zeros(int(start[p + 1] - start[p]), dtype=np.int64))
                indices.append(np.zeros(0, dtype=np.int32))
        _set_seen(self.model, counts, indices)

    def run(self, callbacks, progress):
        from fastmf.training import check_fit_options, run_epochs

        m = self.model
        callbacks, _ = check_fit_options(m, None, callbacks, None, None, (), progress)
        self._data()
        self.implicit, _, _, tail = init_state(m, self.min)
        if self.implicit:
            self.options = ials_options(m, self.n_threads)
            self.biases = (np.zeros(m.n_users_, dtype=m.user_factors_.dtype),
                           np.zeros(m.n_items_, dtype=m.item_factors_.dtype))
        else:
            self.options = als_options(m, self.n_threads)
            self.biases = (m.user_bias_, m.item_bias_)
        self._distribute()
        run_epochs(m, self.epoch, m._resolved_n_epochs(), (), callbacks=callbacks, progress=progress,
                   verbose=getattr(m, "verbose", False), divergence=lambda exc: f"{tail}: {exc}")
        self._seen()
        if not self.implicit and m.ranking == "engagement":
            m._engagement()
        return m


# ------------------------------------------------------------------------------------- top-n
_LOADED: dict = {}  # token -> model, per Python worker: each worker reads the model once per call


def _model_of(bc, token):
    from fastmf.persistence import load_model

    m = _LOADED.get(token)
    if m is None:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.npz")
            with open(path, "wb") as f:
                f.write(bc.value)
            m = load_model(path)
        _LOADED.clear()
        _LOADED[token] = m
    return m


def recommend_all(model: Any, spark: Any = None, users: Any = None, *, n: int = 10, exclude_seen: bool = True,
                  user: str = "user", n_partitions: Optional[int] = None) -> Any:
    """Top-``n`` items for many users as a Spark DataFrame of ``user, item, score, rank`` (rank 1
    = best; users with fewer candidates get fewer rows), computed per partition by the model's
    own batched C top-k: the same items and scores as ``model.recommend(users, n=n)``.

    Parameters
    ----------
    model : a fitted fastmf model (any that ``save`` writes)
        Shipped to the executors as its ``.npz`` file (``fastmf.load`` there; no pickle).
    spark : pyspark.sql.SparkSession, optional
        Default: the session of ``users`` when it is a DataFrame, else the active session.
    users : pyspark.sql.DataFrame, array-like of raw user ids, or None
        Whose top-n (a DataFrame: its column ``user``); None: every user the model knows. An
        unknown id fails the job that computes the result with a KeyError naming it.
    n, exclude_seen : as in :meth:`recommend`
    n_partitions : int, optional
        Partitions of the user list made from an array or None (default: the session's default
        parallelism).
    """
    _require_spark()
    from pyspark.sql import DataFrame, SparkSession

    from fastmf.models.base import _check_n
    from fastmf.persistence import save_model

    model._check_fitted()
    n = _check_n(n, model.n_items_)
    if not isinstance(exclude_seen, (bool, np.bool_)):
        raise ValueError(f"exclude_seen must be True or False, got {exclude_seen!r}")
    if n_partitions is not None and not (isinstance(n_partitions, int) and n_partitions >= 1):
        raise ValueError(f"n_partitions must be an int >= 1, got {n_partitions!r}")
    if spark is None:
        spark = users.sparkSession if isinstance(users, DataFrame) else SparkSession.getActiveSession()
        if spark is None:
            raise ValueError("recommend_all: no active SparkSession; pass spark=")
    ids = model.user_map_.ids
    id_type = "string" if ids.dtype.kind == "U" else "long"
    if isinstance(users, DataFrame):
        if user not in users.columns:
            raise ValueError(f"users has no column {user!r}; it has {users.columns}")
        frame = users.select(user)
    else:
        import pandas as pd

        raw = ids if users is None else np.atleast_1d(np.asarray(users))
        if raw.ndim != 1:
            raise ValueError(f"users must be a 1-D array of raw ids, got shape {raw.shape}")
        parts = n_partitions or max(1, int(spark.sparkContext.defaultParallelism))
        frame = spark.createDataFrame(pd.DataFrame({user: raw}), schema=f"{user} {id_type}").repartition(parts)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.npz")
        save_model(model, path)
        with open(path, "rb") as f:
            bc = spark.sparkContext.broadcast(f.read())
    token = uuid.uuid4().hex
    item_type = "string" if model.item_map_.ids.dtype.kind == "U" else "long"

    def top(batches):
        import pandas as pd

        m = _model_of(bc, token)
        for pdf in batches:
            raw = pdf[user].to_numpy()
            if raw.size == 0:
                continue
            out = m.recommend(raw, n=n, exclude_seen=exclude_seen, as_frame=True)
            yield pd.DataFrame({"user": out["user"].to_numpy(), "item": out["item"].to_numpy(),
                                "score": out["score"].to_numpy(np.float64),
                                "rank": out["rank"].to_numpy(np.int32)})

    return frame.mapInPandas(top, f"user {id_type}, item {item_type}, score double, rank int")
