"""Vectorised similarity of query vectors against every row of a factor matrix.

Used by ``similar_items`` / ``similar_users`` of the models on their learned factors, and usable on
any real matrix. All arithmetic is done in float64 (float32 factors are converted a block of rows at
a time, so memory stays bounded); results are float64 and finite for finite input, including zero
and constant vectors.

For a query :math:`q` and a row :math:`m` of length :math:`k` the metrics are

==============  =============================================================================
``"dot"``       :math:`q^\\top m`
``"cosine"``    :math:`\\dfrac{q^\\top m}{\\lVert q\\rVert \\lVert m\\rVert}`, 0 when either vector is zero;
                in :math:`[-1, 1]`
``"pearson"``   the cosine of the mean-centred vectors :math:`q - \\bar q \\mathbf 1` and
                :math:`m - \\bar m \\mathbf 1` (:math:`\\bar x = \\frac1k \\sum_j x_j`), 0 when either
                vector is constant; in :math:`[-1, 1]`
``"euclidean"`` :math:`\\dfrac{1}{1 + \\lVert q - m\\rVert}`, in :math:`(0, 1]`, 1 for equal vectors
==============  =============================================================================
"""

from __future__ import annotations

from typing import Literal, Optional, Tuple

import numpy as np
import numpy.typing as npt

__all__ = ["METRICS", "similarity", "top_similar", "check_metric"]

#: the supported metric names
METRICS = ("cosine", "dot", "euclidean", "pearson")
#: the type of a ``metric`` parameter
Metric = Literal["cosine", "dot", "euclidean", "pearson"]

# top_similar scores this many (query, row) pairs at once at most (32 MB of float64 per block)
_BLOCK_SCORES = 1 << 22
# rows of the matrix are converted to float64 / normalised in chunks of about this many elements
_CHUNK_ELEMENTS = 1 << 16
# ... and multiplied with the queries in sub-blocks of this many elements (32 KB: stays in cache)
_SUB_ELEMENTS = 1 << 12


def check_metric(metric: str) -> str:
    """Return ``metric`` if it is one of :data:`METRICS`, else raise ValueError listing them."""
    if not isinstance(metric, str) or metric not in METRICS:
        raise ValueError(f"unknown similarity metric {metric!r}; use one of {', '.join(map(repr, METRICS))}")
    return metric


def similarity(queries: npt.ArrayLike, matrix: npt.ArrayLike, metric: Metric = "cosine", *,
               check_finite: bool = True) -> np.ndarray:
    """Similarity of each query vector to each row of ``matrix``.

    Parameters
    ----------
    queries : array-like, shape (n_queries, k) or (k,)
        Real vectors (float32, float64, integers or bools).
    matrix : array-like, shape (n_rows, k)
        Real vectors, e.g. a model's ``item_factors_``.
    metric : {"cosine", "dot", "euclidean", "pearson"}
        With :math:`q` a query and :math:`m` a row:

        - ``"cosine"``: :math:`q^\\top m / (\\lVert q\\rVert\\,\\lVert m\\rVert)`; 0 when
          :math:`q = 0` or :math:`m = 0` (never NaN). Range :math:`[-1, 1]`.
        - ``"dot"``: :math:`q^\\top m`.
        - ``"euclidean"``: :math:`1 / (1 + \\lVert q - m\\rVert_2)`, range :math:`(0, 1]`. The distance
          is computed from norms, :math:`\\lVert q-m\\rVert^2 = \\lVert q\\rVert^2 + \\lVert m\\rVert^2
          - 2 q^\\top m` (negative rounding residues clamped to 0), so no ``q - m`` array is built; the
          absolute error of the distance is about :math:`\\sqrt{\\varepsilon}\\,\\max(\\lVert q\\rVert,
          \\lVert m\\rVert)` with :math:`\\varepsilon = 2^{-52}`.
        - ``"pearson"``: Pearson correlation of the k coordinates, i.e. the cosine of the centred
          vectors :math:`q - \\bar q` and :math:`m - \\bar m`; 0 when either vector is constant
          (all coordinates equal). Range :math:`[-1, 1]`.
    check_finite : bool
        Raise ValueError on NaN or infinite input (a model's factors are known to be finite, so its
        methods skip the check).

    Returns
    -------
    ndarray of float64, shape (n_queries, n_rows), or (n_rows,) for a 1-D query
        ``out[i, j]`` is the similarity of ``queries[i]`` and ``matrix[j]``. Row ``i`` does not
        depend on the other queries (bit for bit): products are formed one query at a time against
        fixed blocks of ``matrix``, never by one batch-shaped matrix product.

    Raises
    ------
    ValueError
        Unknown metric, wrong number of dimensions, mismatched vector lengths, non-real dtypes or
        (with ``check_finite``) non-finite values, naming the array and the position.

    Examples
    --------
    >>> similarity([1.0, 0.0], [[2.0, 0.0], [0.0, 3.0], [0.0, 0.0]])
    array([1., 0., 0.])
    """
    check_metric(metric)
    q, single = _check_queries(queries, check_finite)
    m = _check_matrix(matrix, q.shape[1], check_finite)
    out = _scores(_Queries(q, metric), m, metric)
    return out[0] if single else out


def top_similar(queries: npt.ArrayLike, matrix: npt.ArrayLike, n: int = 10, metric: Metric = "cosine",
                exclude: Optional[npt.ArrayLike] = None, *,
                check_finite: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """The ``n`` rows of ``matrix`` most similar to each query: exact, best first, ties by lower index.

    Parameters
    ----------
    queries : array-like, shape (n_queries, k) or (k,)
    matrix : array-like, shape (n_rows, k)
    n : int
        How many rows per query (>= 1). When fewer rows are left (after ``exclude``), the rest of each
        result row is padded with index -1 and score -inf.
    metric : {"cosine", "dot", "euclidean", "pearson"}
        See :func:`similarity` for the formulas.
    exclude : None, int or array-like of int, optional
        Row indices of ``matrix`` never returned. For 2-D queries: shape ``(n_queries,)`` (one row per
        query, e.g. each query's own row) or ``(n_queries, m)`` (several per query); for a 1-D query:
        an int or a 1-D array of rows. The value -1 means "nothing" (padding); other indices must be in
        ``[0, n_rows)`` (IndexError otherwise).
    check_finite : bool
        Raise ValueError on NaN or infinite input.

    Returns
    -------
    indices : ndarray of int64, shape (n_queries, n) (or (n,) for a 1-D query)
    scores : ndarray of float64, same shape
        ``scores[i]`` descending; equal scores are ordered by row index. Equivalent to
        ``np.lexsort((np.arange(n_rows), -s))[:n]`` on each row ``s`` of :func:`similarity` with the
        excluded rows removed.

    Notes
    -----
    Queries are scored in blocks of at most ``2**22 / n_rows`` queries and each block is reduced to its
    top ``n`` before the next is scored, so memory stays bounded whatever the number of queries
    (about 70 MB of scratch at most). A query's scores, and so its result, are bit-identical whether
    it is asked alone or in a batch.
    """
    from fastmf.models.base import topn_rows

    check_metric(metric)
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    n = int(n)
    q, single = _check_queries(queries, check_finite)
    m = _check_matrix(matrix, q.shape[1], check_finite)
    n_q, n_rows = q.shape[0], m.shape[0]
    excl = _check_exclude(exclude, single, n_q, n_rows)

    out_idx = np.full((n_q, n), -1, dtype=np.int64)
    out_score = np.full((n_q, n), -np.inf, dtype=np.float64)
    n_out = min(n, n_rows)
    block = max(1, _BLOCK_SCORES // max(1, n_rows))
    for start in range(0, n_q, block):
        stop = min(n_q, start + block)
        scores = _scores(_Queries(q[start:stop], metric), m, metric)
        if excl is not None:
            e = excl[start:stop]
            rows = np.broadcast_to(np.arange(stop - start)[:, None], e.shape)
            keep = e >= 0
            scores[rows[keep], e[keep]] = -np.inf
        top, top_scores = topn_rows(scores, n_out)
        out_idx[start:stop, :n_out] = top
        out_score[start:stop, :n_out] = top_scores
    if single:
        return out_idx[0], out_score[0]
    return out_idx, out_score


# ---------------------------------------------------------------------- internals
def _as_real(values, name, check_finite):
    a = np.asarray(values)
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    if check_finite and a.dtype.kind == "f" and a.size and not np.isfinite(a).all():
        pos = np.argwhere(~np.isfinite(a))[0]
        where = ", ".join(map(str, pos.tolist()))
        raise ValueError(f"{name}[{where}] = {a[tuple(pos)]} is not finite")
    return a


def _check_queries(queries, check_finite):
    q = _as_real(queries, "queries", check_finite)
    if q.ndim not in (1, 2):
        raise ValueError(f"queries must be a vector or a 2-D array of vectors, got shape {q.shape}")
    single = q.ndim == 1
    q = np.atleast_2d(q)
    if q.shape[1] == 0:
        raise ValueError("queries have length 0; vectors need at least one coordinate")
    return q, single


def _check_matrix(matrix, k, check_finite):
    m = _as_real(matrix, "matrix", check_finite)
    if m.ndim != 2:
        raise ValueError(f"matrix must be 2-D (n_rows, k), got shape {m.shape}")
    if m.shape[1] != k:
        raise ValueError(f"queries have length {k} but the rows of matrix have length {m.shape[1]}")
    return m


def _check_exclude(exclude, single, n_q, n_rows):
    if exclude is None:
        return None
    e = np.asarray(exclude)
    # an empty list arrives as float64: accept it; otherwise only integer indices
    if e.dtype.kind not in "iu" and not (e.size == 0 and e.dtype.kind == "f"):
        raise ValueError(f"exclude must hold integer row indices, got dtype {e.dtype}")
    e = e.astype(np.int64)
    if single:
        if e.ndim > 1:
            raise ValueError(f"exclude for a single query must be an int or a 1-D array, got shape {e.shape}")
        e = e.reshape(1, -1)
    else:
        if e.ndim == 1:
            e = e[:, None]
        if e.ndim != 2 or e.shape[0] != n_q:
            raise ValueError(f"exclude must have shape ({n_q},) or ({n_q}, m) for {n_q} queries, "
                             f"got shape {np.shape(exclude)}")
    bad = np.argwhere((e < -1) | (e >= n_rows))
    if bad.size:
        r, c = bad[0]
        raise IndexError(f"exclude[{r}, {c}] = {e[r, c]} is outside [-1, {n_rows})" if not single
                         else f"exclude[{c}] = {e[r, c]} is outside [-1, {n_rows})")
    return e


def _unit_rows(x):
    """Scale the rows of float64 ``x`` (in place) to unit Euclidean norm; zero rows stay zero.

    Rows whose sum of squares could have overflowed or lost digits to underflow are first divided by
    their largest absolute value (then squaring is safe)."""
    if x.shape[0] == 0:
        return x
    with np.errstate(over="ignore", under="ignore"):
        sq = np.sum(x * x, axis=1)
    extreme = ~((sq > 1e-250) & (sq < 1e250))  # zero, tiny, huge or inf
    if not extreme.any():
        x *= (1.0 / np.sqrt(sq))[:, None]
        return x
    x[~extreme] *= (1.0 / np.sqrt(sq[~extreme]))[:, None]
    x[extreme] = _unit_rows_scaled(x[extreme])
    return x


def _unit_rows_scaled(x):
    scale = np.max(np.abs(x), axis=1)
    scale[scale == 0] = 1.0  # zero rows: divide by 1, twice
    x /= scale[:, None]
    norm = np.sqrt(np.sum(x * x, axis=1))
    norm[norm == 0] = 1.0
    x /= norm[:, None]
    return x


def _transform(x, metric):
    """float64 copy of rows ``x`` prepared so that a plain dot product gives the metric's numerator
    (cosine/pearson: unit rows after centring; dot/euclidean: the rows themselves)."""
    if metric in ("dot", "euclidean"):
        return np.ascontiguousarray(x, dtype=np.float64)  # read only: no copy when already float64
    y = np.array(x, dtype=np.float64, order="C", copy=True)
    if metric == "pearson":
        const = np.all(y == y[:, :1], axis=1)
        y -= y.mean(axis=1, keepdims=True)
        y[const] = 0.0  # exactly constant rows: centring residues must not become a direction
    if metric in ("cosine", "pearson"):
        _unit_rows(y)
    return y


class _Queries:
    """Queries prepared once for a metric (float64, unit or centred rows, squared norms)."""

    __slots__ = ("t", "sq")

    def __init__(self, q, metric):
        self.t = _transform(q, metric)
        self.sq = np.sum(self.t * self.t, axis=1) if metric == "euclidean" else None


def _scores(qp, m, metric):
    """``(n_queries, n_rows)`` float64 similarities of prepared queries against ``m``.

    Rows of ``m`` are converted to float64 (and normalised) a chunk at a time. Each chunk is cut
    into sub-blocks of ``_SUB_ELEMENTS`` elements, and every (sub-block, query) pair is one
    matrix-vector product of a fixed shape (a stacked matmul, sub-block outermost so it stays in
    cache). The shapes depend only on ``m``, never on the queries, so a query's scores are
    bit-identical whatever else is in its batch; a single matrix-matrix product (GEMM) would be
    about 3x faster on large batches, but its rounding depends on the batch shape.
    """
    n_q, k = qp.t.shape
    n_rows = m.shape[0]
    out = np.empty((n_q, n_rows), dtype=np.float64)
    if n_rows == 0 or n_q == 0:
        return out
    sub = max(1, _SUB_ELEMENTS // k)
    chunk = sub * max(1, _CHUNK_ELEMENTS // (sub * k))
    q_cols = qp.t[None, :, :, None]  # (1, n_q, k, 1): one column vector per query
    for start in range(0, n_rows, chunk):
        stop = min(n_rows, start + chunk)
        mt = _transform(m[start:stop], metric)
        full = (stop - start) // sub * sub
        if full:
            # (n_sub, 1, sub, k) @ (1, n_q, k, 1) -> (n_sub, n_q, sub, 1)
            r = np.matmul(mt[:full].reshape(-1, 1, sub, k), q_cols)
            out[:, start:start + full].reshape(n_q, -1, sub)[...] = r[..., 0].transpose(1, 0, 2)
        if stop - start > full:  # the matrix's last, shorter sub-block
            out[:, start + full:stop] = np.matmul(mt[full:][None], qp.t[:, :, None])[..., 0]
        block = out[:, start:stop]
        if metric == "euclidean":
            # block <- 1 / (1 + sqrt(max(|q|^2 + |m|^2 - 2 q.m, 0))), in place
            block *= -2.0
            block += qp.sq[:, None]
            block += np.sum(mt * mt, axis=1)[None, :]
            np.maximum(block, 0.0, out=block)
            np.sqrt(block, out=block)
            block += 1.0
            np.reciprocal(block, out=block)
        elif metric in ("cosine", "pearson"):
            np.clip(block, -1.0, 1.0, out=block)
    return out
