"""What the distributed back ends share (``dask.py``, ``spark.py``): partition validation and
statistics, the merged id maps and the model's starting state, the row ranges, and the ALS / iALS
half-sweep of one row range against the whole fixed side with fastmf's C row solvers
(``_als.als_half_sweep``, ``_als.ials_half_sweep``, the single-process kernels). Only NumPy here:
each back end moves these pieces its own way (Dask futures, Spark ``mapInPandas`` + broadcasts).
"""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np


def block_groups(degrees: np.ndarray, n_blocks: int) -> np.ndarray:
    """The group (int32, 0..n_blocks-1) of each row with ``degrees[r]`` ratings: contiguous ranges
    of near-equal rating counts, row r going to the group whose share of the ratings holds its
    midpoint, :math:`\\lfloor B (2 c_r + d_r) / (2 n) \\rfloor` with :math:`c_r` the ratings before
    it (rows cut evenly when there are no ratings). The same groups as ``_sgd.make_block_plan``
    (``assign_groups`` in csrc/blocks.c), from the degrees alone."""
    deg = np.asarray(degrees, dtype=np.int64)
    n = deg.shape[0]
    total = int(deg.sum())
    if total > 0:
        before = np.cumsum(deg) - deg
        g = ((2 * before + deg) * n_blocks) // (2 * total)
    else:
        g = (np.arange(n, dtype=np.int64) * n_blocks) // max(n, 1)
    return np.minimum(g, n_blocks - 1).astype(np.int32)


def _starts(groups: np.ndarray, n_groups: int) -> np.ndarray:
    """start[g] .. start[g + 1]: the rows of group g (groups are non-decreasing)."""
    return np.searchsorted(groups, np.arange(n_groups + 1), side="left").astype(np.int64)


class _Part:
    """One validated partition: normalised raw ids and float ratings, in row order."""

    __slots__ = ("users", "items", "ratings")

    def __init__(self, users, items, ratings):
        self.users, self.items, self.ratings = users, items, ratings


def _prepare(df, columns, part, rating_scale):
    """Validate partition ``part`` as ``Ratings.from_dataframe`` would (missing values, id kinds,
    finite ratings, the declared scale); DataError names the partition and row."""
    from fastmf.data.ratings import _check_scale, _to_float_array, normalize_ids
    from fastmf.errors import DataError

    user, item, rating = columns
    out = []
    for name in (user, item, rating):
        s = df[name]
        na = s.isna().to_numpy()
        if na.any():
            raise DataError(f"partition {part}: column {name!r}: missing value at row {int(np.flatnonzero(na)[0])}")
        out.append(s.to_numpy())
    try:
        u = normalize_ids(out[0], "users")
        i = normalize_ids(out[1], "items")
        r = _to_float_array(out[2], "ratings")
        if not isinstance(rating_scale, str):
            _check_scale(r, rating_scale, "ratings")
    except DataError as exc:
        raise DataError(f"partition {part}: {exc}") from None
    return _Part(u, i, r)


def _stats(p):
    r = p.ratings
    users, user_counts = np.unique(p.users, return_counts=True)
    items, item_counts = np.unique(p.items, return_counts=True)
    return dict(users=users, items=items, user_counts=user_counts, item_counts=item_counts, n=int(r.shape[0]),
                sum=float(np.sum(r, dtype=np.float64)) if r.size else 0.0,
                min=float(r.min()) if r.size else np.inf, max=float(r.max()) if r.size else -np.inf,
                dtype=r.dtype.str)


def _index(p, user_ids, item_ids, dtype):
    """(user index, item index, ratings in the model's dtype) of a partition."""
    uidx = np.searchsorted(user_ids, p.users).astype(np.int32)
    iidx = np.searchsorted(item_ids, p.items).astype(np.int32)
    return uidx, iidx, np.ascontiguousarray(p.ratings, dtype=dtype)


def _gather_pieces(pieces):
    u = np.concatenate([p[0] for p in pieces]) if pieces else np.zeros(0, np.int32)
    i = np.concatenate([p[1] for p in pieces]) if pieces else np.zeros(0, np.int32)
    r = np.concatenate([p[2] for p in pieces]) if pieces else np.zeros(0)
    return u, i, r


def _check_duplicates(rows, cols, n_cols, row_ids, col_ids, what):
    """Sort (rows, cols) row-major; DataError naming the first repeated pair. Returns the order."""
    from fastmf._validation import show
    from fastmf.errors import DataError

    order = np.lexsort((cols, rows))
    key = rows[order].astype(np.int64) * max(n_cols, 1) + cols[order]
    dup = np.flatnonzero(key[1:] == key[:-1])
    if dup.size:
        k = order[dup[0] + 1]
        raise DataError(f"duplicate rating for {what[0]} {show(row_ids[rows[k]])}, {what[1]} {show(col_ids[cols[k]])}: "
                        "a distributed fit needs one rating per (user, item) pair; resolve repeats first "
                        "(e.g. drop_duplicates on the Dask or Spark DataFrame)")
    return order


class _AlsShard:
    """A worker's row range ``[lo, hi)`` of one side as a CSR slice (columns ascending per row)."""

    def __init__(self, lo, hi, indptr, indices, data):
        self.lo, self.hi, self.indptr, self.indices, self.data = lo, hi, indptr, indices, data


def _als_shard(lo, hi, by_user, n_cols, row_ids, col_ids, *pieces):
    u, i, r = _gather_pieces(pieces)
    rows, cols = (u, i) if by_user else (i, u)
    order = _check_duplicates(rows, cols, n_cols, row_ids, col_ids,
                              ("user", "item") if by_user else ("item", "user"))
    counts = np.bincount(rows - lo, minlength=hi - lo)
    indptr = np.zeros(hi - lo + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return _AlsShard(lo, hi, indptr, np.ascontiguousarray(cols[order], dtype=np.int32),
                     np.ascontiguousarray(r[order]))


def _stack(states):
    F = np.ascontiguousarray(np.concatenate([s[0] for s in states]))
    b = np.ascontiguousarray(np.concatenate([s[1] for s in states]))
    return F, b


def _als_half(shard, own, options, *fixed_states):
    """One half-sweep over the rows of ``shard`` against the whole fixed side (gathered from the
    W range states): returns the new (factors, bias) of the range."""
    from fastmf import _als

    F, b = own[0].copy(), own[1].copy()
    Y, c = _stack(fixed_states)
    mu, reg, reg_bias, weighted, biased, solver, cg_steps, n_threads = options
    try:
        _als.als_half_sweep(shard.indptr, shard.indices, shard.data, Y, c if biased else None, F,
                            b if biased else None, mu, reg, reg_bias, weighted, biased,
                            n_threads=n_threads, solver=solver, cg_steps=cg_steps)
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise FloatingPointError(f"rows {shard.lo}..{shard.hi - 1}: {exc}") from None
    return F, b


def _als_sse(shard, own, mu, biased, n_threads, *fixed_states):
    from fastmf import _sse

    Y, c = _stack(fixed_states)
    F, b = own
    return float(_sse.observed_sse(shard.indptr, shard.indices, shard.data, F, Y,
                                   b if biased else None, c if biased else None, mu, n_threads))


def _set_seen(m, counts, indices):
    indptr = np.zeros(m.n_users_ + 1, dtype=np.int64)
    np.cumsum(np.concatenate(counts), out=indptr[1:])
    m.seen_indptr_ = indptr
    m.seen_indices_ = np.ascontiguousarray(np.concatenate(indices), dtype=np.int32)


def _partial_gram(state, n_threads):
    from fastmf import _als

    F = np.ascontiguousarray(state[0])
    return _als.gram(F, n_threads) if F.shape[0] else np.zeros((F.shape[1], F.shape[1]))


def _sum_in_order(*grams):
    total = grams[0].copy()
    for g in grams[1:]:
        total += g
    return total


def _ials_half(shard, own, gram, options, *fixed_states):
    from fastmf import _als

    kernel, solver, cg_steps = options
    F = own[0].copy()
    Y, _ = _stack(fixed_states)
    try:
        _als.ials_half_sweep(shard.indptr, shard.indices, shard.data, Y, F, gram=gram, solver=solver,
                             cg_steps=cg_steps, **kernel)
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise FloatingPointError(f"rows {shard.lo}..{shard.hi - 1}: {exc}") from None
    return F, own[1]


# ------------------------------------------------------------------------- the model's fit state
def check_model(model: Any, where: str, sgd: bool) -> None:
    """TypeError/ValueError unless ``model`` is a MatrixFactorization (ALS, and SGD when ``sgd``)
    or an ImplicitALS with valid hyper-parameters."""
    from fastmf.models.implicit import ImplicitALS
    from fastmf.models.mf import MatrixFactorization

    if not isinstance(model, (MatrixFactorization, ImplicitALS)):
        raise TypeError(f"{where} trains a fastmf.MatrixFactorization or ImplicitALS, got {type(model).__name__}")
    model._validate_params()
    if isinstance(model, MatrixFactorization) and model.solver == "sgd":
        if not sgd:
            raise ValueError(f"{where} trains MatrixFactorization(solver='als') and ImplicitALS; for SGD "
                             "use fastmf.distributed.fit on Dask (DSGD)")
        if model.schedule != "blocked":
            raise ValueError(f"{where} runs SGD with schedule='blocked' (DSGD), got schedule={model.schedule!r}")


def clear_fitted(model: Any) -> None:
    """Drop every fitted attribute (``name_``): a failed fit leaves no half-trained state."""
    for key in list(model.__dict__):
        if key.endswith("_") and not key.startswith("_"):
            del model.__dict__[key]


def set_data_state(m: Any, stats: list, rating_scale: Any) -> Tuple[int, float]:
    """Merge the partitions' :func:`_stats` (in partition order) into the model: the sorted id
    maps a single process builds, the rating scale and range, the global mean. Returns (number
    of ratings, lowest rating)."""
    from fastmf.data.ratings import IdMap, normalize_ids
    from fastmf.errors import DataError

    stats = [s for s in stats if s["n"] > 0]
    if not stats:
        raise DataError("no ratings: the data is empty")
    ids = {}
    for side in ("users", "items"):
        kinds = {s[side].dtype.kind for s in stats}
        if len(kinds) > 1:
            raise DataError(f"{side}: ids mix strings and integers across partitions; convert them to one type")
        ids[side] = normalize_ids(np.unique(np.concatenate([s[side] for s in stats])), side)
    n = sum(s["n"] for s in stats)
    lo, hi = min(s["min"] for s in stats), max(s["max"] for s in stats)
    m.user_map_, m.item_map_ = IdMap(ids["users"]), IdMap(ids["items"])
    m.n_users_, m.n_items_ = len(m.user_map_), len(m.item_map_)
    if isinstance(rating_scale, str):
        m.rating_scale_ = (lo, hi) if lo < hi else None
    else:
        m.rating_scale_ = (float(rating_scale[0]), float(rating_scale[1]))
    m.rating_range_ = (lo, hi)
    # mu: the partitions' float64 sums added in order; the same float as the one-process
    # np.mean whenever the sum is exact (ratings on a grid of whole or half stars)
    m.global_mean_ = float(sum(s["sum"] for s in stats) / n)
    m.item_info_ = m.user_info_ = None
    return n, lo


def merged_degrees(m: Any, stats: list) -> Tuple[np.ndarray, np.ndarray]:
    """Ratings per user and per item (int64, index order) from the partitions' :func:`_stats`."""
    deg_u = np.zeros(m.n_users_, dtype=np.int64)
    deg_i = np.zeros(m.n_items_, dtype=np.int64)
    for s in stats:
        if s["n"]:
            np.add.at(deg_u, np.searchsorted(m.user_map_.ids, s["users"]), s["user_counts"])
            np.add.at(deg_i, np.searchsorted(m.item_map_.ids, s["items"]), s["item_counts"])
    return deg_u, deg_i


def init_state(m: Any, lowest: float) -> Tuple[bool, Any, Any, str]:
    """The model's starting parameters, drawn exactly as its own ``fit`` draws them. Returns
    (implicit, P, Q, the tail of a divergence message); P, Q are the explicit model's factor
    arrays (``_init_state``), None for ImplicitALS."""
    from fastmf._validation import check_random_state
    from fastmf.models.implicit import ImplicitALS

    m._drop_side()
    dtype = np.dtype(m.dtype)
    if isinstance(m, ImplicitALS):
        if lowest < 0:
            raise ValueError("ImplicitALS: interaction strengths must be >= 0 (a negative value in the data)")
        rng = check_random_state(m.random_state)  # ImplicitALS.fit's draws
        m.user_factors_ = rng.normal(0.0, m.init_std, (m.n_users_, m.n_factors)).astype(dtype)
        m.item_factors_ = rng.normal(0.0, m.init_std, (m.n_items_, m.n_factors)).astype(dtype)
        return True, None, None, f" (reg={m.reg}, alpha={m.alpha})"
    m._drop_engagement()
    P, Q = m._init_state(dtype)
    tail = f" (lr={m.lr}, reg={m.reg})" if m.solver == "sgd" else f" (ALS, reg={m.reg})"
    return False, P, Q, tail


def als_options(m: Any, n_threads: int) -> tuple:
    """The ``options`` of :func:`_als_half` for explicit ALS."""
    reg_bias = m.reg if m.reg_bias is None else m.reg_bias
    return (m.global_mean_, m.reg, reg_bias, m.weighted, m.biased, m.linear_solver, m.cg_steps, n_threads)


def ials_options(m: Any, n_threads: int) -> tuple:
    """The ``options`` of :func:`_ials_half`."""
    return (m._kernel_options(n_threads), m.linear_solver, m.cg_steps)
