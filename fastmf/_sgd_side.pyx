# cython: language_level=3
"""Thin wrapper over csrc/sgd_side.c (serial SGD epochs of biased MF with jointly learned
side-feature factors, ``side="joint"``).

Private: the public entry point is ``fastmf.MatrixFactorization(side="joint")``. The function checks
shapes, dtypes, contiguity, writability and the feature CSRs' structure (ValueError), releases the
GIL around the C call, and turns a C status into an exception: IndexError for an index out of range,
FloatingPointError when the epoch diverges, MemoryError, KeyboardInterrupt on Ctrl-C. The math is in
csrc/sgd_side.c; NumPy twin: ``fastmf.reference.sgd_side_epoch``.

``model`` is ``(P, Q, bu, bi)`` (the free parts; one float dtype, C-contiguous, writeable); a side
is None (no features) or ``(indptr int64 [n_rows + 1], indices int32, values float64, Z, w)`` with
``Z`` (n_features, k) and ``w`` (n_features,) in the model's dtype; ``hyper`` is
``(mu, lr, reg, reg_bias, reg_free, reg_side, biased)``; ``drop`` None or uint8 [len(order)];
``features_only`` as ``drop_features_only`` in csrc/sgd_side.h.
"""

import numpy as np

from fastmf._validation import check_kernel_array

from libc.stdint cimport int32_t, int64_t, uint8_t
from fastmf._common cimport (fastmf_status, fastmf_error, fastmf_interrupt, error_type, unexpected,
                             sigint_watch, sigint_unwatch, FASTMF_OK, FASTMF_ERR_NOMEM,
                             FASTMF_ERR_INDEX, FASTMF_ERR_DIVERGED)


cdef extern from "sgd_side.h":
    ctypedef enum fastmf_dtype:
        FASTMF_FLOAT32
        FASTMF_FLOAT64
    enum:
        FASTMF_SIDE_BAD_ORDER
        FASTMF_SIDE_BAD_USER
        FASTMF_SIDE_BAD_ITEM
        FASTMF_SIDE_BAD_LOSS
        FASTMF_SIDE_BAD_P
        FASTMF_SIDE_BAD_Q
        FASTMF_SIDE_BAD_BU
        FASTMF_SIDE_BAD_BI
        FASTMF_SIDE_BAD_USER_FEATURE
        FASTMF_SIDE_BAD_ITEM_FEATURE
    ctypedef struct fastmf_side_features:
        const int64_t *indptr
        const int32_t *indices
        const double *values
        int64_t n_features
        void *Z
        void *w
    ctypedef struct fastmf_sgd_side_problem:
        fastmf_dtype dtype
        int64_t nnz
        int64_t n_users
        int64_t n_items
        int64_t n_factors
        const int32_t *users
        const int32_t *items
        const void *ratings
        void *P
        void *Q
        void *bu
        void *bi
        fastmf_side_features user_side
        fastmf_side_features item_side
        double mu
        double lr
        double reg
        double reg_bias
        double reg_free
        double reg_side
        int biased
        const uint8_t *drop
        int drop_features_only
        const fastmf_interrupt *interrupt
    fastmf_status fastmf_sgd_side_epoch(const fastmf_sgd_side_problem *pb, const int64_t *order,
                                        int64_t n_order, double *sse, fastmf_error *err) nogil


_array = check_kernel_array


cdef void *_ptr(x):
    """Address of a validated array's data (NULL when empty or None)."""
    if x is None:
        return NULL
    cdef size_t a = x.ctypes.data
    return <void *>a if x.size > 0 else NULL


def _check_side(side, kind, n_rows, k, dt):
    indptr, indices, values, Z, w = side
    _array(indptr, f"{kind} indptr", np.int64, 1)
    _array(indices, f"{kind} indices", np.int32, 1)
    _array(values, f"{kind} values", np.float64, 1)
    _array(Z, f"{kind} Z", dt, 2, writeable=True)
    _array(w, f"{kind} w", dt, 1, writeable=True)
    if indptr.shape[0] != n_rows + 1:
        raise ValueError(f"{kind} indptr must have {n_rows + 1} entries (one per {kind} + 1), got {indptr.shape[0]}")
    if indptr[0] != 0 or indptr[n_rows] != indices.shape[0] or np.any(np.diff(indptr) < 0):
        raise ValueError(f"{kind} indptr must rise from 0 to len({kind} indices) = {indices.shape[0]}")
    if values.shape[0] != indices.shape[0]:
        raise ValueError(f"{kind} values must have one entry per index ({indices.shape[0]}), got {values.shape[0]}")
    if not np.isfinite(values).all():
        raise ValueError(f"{kind} values must be finite")
    if Z.shape[1] != k or w.shape[0] != Z.shape[0]:
        raise ValueError(f"{kind} Z must be (n_features, {k}) and w (n_features,), got {Z.shape} and {w.shape}")


cdef void _side(fastmf_side_features *s, side):
    if side is None:
        s.indptr = NULL
        s.indices = NULL
        s.values = NULL
        s.n_features = 0
        s.Z = NULL
        s.w = NULL
        return
    s.indptr = <const int64_t *>_ptr(side[0])
    s.indices = <const int32_t *>_ptr(side[1])
    s.values = <const double *>_ptr(side[2])
    s.n_features = side[3].shape[0]
    s.Z = _ptr(side[3])
    s.w = _ptr(side[4])


def sgd_side_epoch(users, items, ratings, order, model, user_side, item_side, hyper, drop=None,
                   features_only=False):
    """One serial epoch over ``order`` (int64 rating positions) of biased MF with feature factors
    (csrc/sgd_side.c). Updates ``model`` and the sides' ``Z``, ``w`` in place; returns the sum of
    squared errors. ``features_only``: a rating with a dropped part updates only the dropped
    side's feature rows. Twin: ``fastmf.reference.sgd_side_epoch``."""
    P, Q, bu, bi = model
    if not isinstance(P, np.ndarray) or P.dtype not in (np.float32, np.float64):
        raise ValueError(f"P must be a float32 or float64 numpy.ndarray, got {getattr(P, 'dtype', type(P).__name__)}")
    dt = P.dtype
    _array(P, "P", dt, 2, writeable=True)
    _array(Q, "Q", dt, 2, writeable=True)
    _array(bu, "bu", dt, 1, writeable=True)
    _array(bi, "bi", dt, 1, writeable=True)
    k = P.shape[1]
    if Q.shape[1] != k or bu.shape[0] != P.shape[0] or bi.shape[0] != Q.shape[0]:
        raise ValueError(f"P {P.shape}, Q {Q.shape}, bu {bu.shape} and bi {bi.shape} do not agree")
    _array(users, "users", np.int32, 1)
    _array(items, "items", np.int32, 1)
    _array(ratings, "ratings", dt, 1)
    if not users.shape[0] == items.shape[0] == ratings.shape[0]:
        raise ValueError(f"users, items and ratings must have one length, got {users.shape[0]}, "
                         f"{items.shape[0]} and {ratings.shape[0]}")
    _array(order, "order", np.int64, 1)
    arrays = [("P", P), ("Q", Q), ("bu", bu), ("bi", bi)]
    if user_side is not None:
        _check_side(user_side, "user", P.shape[0], k, dt)
        arrays += [("user Z", user_side[3]), ("user w", user_side[4])]
    if item_side is not None:
        _check_side(item_side, "item", Q.shape[0], k, dt)
        arrays += [("item Z", item_side[3]), ("item w", item_side[4])]
    for a in range(len(arrays)):
        for b in range(a + 1, len(arrays)):
            if np.may_share_memory(arrays[a][1], arrays[b][1]):
                raise ValueError(f"{arrays[a][0]} and {arrays[b][0]} must not share memory")
    if drop is not None:
        _array(drop, "drop", np.uint8, 1)
        if drop.shape[0] != order.shape[0]:
            raise ValueError(f"drop must have one entry per position of order ({order.shape[0]}), got {drop.shape[0]}")
    mu, lr, reg, reg_bias, reg_free, reg_side = (float(h) for h in hyper[:6])
    biased = bool(hyper[6])

    cdef fastmf_sgd_side_problem pb
    pb.dtype = FASTMF_FLOAT32 if dt == np.float32 else FASTMF_FLOAT64
    pb.nnz = users.shape[0]
    pb.n_users = P.shape[0]
    pb.n_items = Q.shape[0]
    pb.n_factors = k
    pb.users = <const int32_t *>_ptr(users)
    pb.items = <const int32_t *>_ptr(items)
    pb.ratings = _ptr(ratings)
    pb.P, pb.Q, pb.bu, pb.bi = _ptr(P), _ptr(Q), _ptr(bu), _ptr(bi)
    _side(&pb.user_side, user_side)
    _side(&pb.item_side, item_side)
    pb.mu, pb.lr, pb.reg, pb.reg_bias, pb.reg_free, pb.reg_side = mu, lr, reg, reg_bias, reg_free, reg_side
    pb.biased = 1 if biased else 0
    pb.drop = <const uint8_t *>_ptr(drop)
    pb.drop_features_only = 1 if features_only else 0
    cdef const int64_t *op = <const int64_t *>_ptr(order)
    cdef int64_t n = order.shape[0]
    cdef fastmf_error err
    cdef double sse = 0.0
    cdef fastmf_status st
    pb.interrupt = sigint_watch()
    try:
        with nogil:
            st = fastmf_sgd_side_epoch(&pb, op, n, &sse, &err)
    finally:
        sigint_unwatch(pb.interrupt)
    if st != FASTMF_OK:
        _raise(err, order, users, items, P.shape[0], Q.shape[0], user_side, item_side)
    return sse


def _raise(fastmf_error err, order, users, items, n_users, n_items, user_side, item_side):
    cdef fastmf_status st = err.status
    cdef int64_t pos = err.pos
    cdef int which = err.which
    exc = error_type(st)
    if st == FASTMF_ERR_NOMEM:
        raise exc("joint SGD epoch: cannot allocate its scratch rows")
    if st == FASTMF_ERR_INDEX:
        if which == FASTMF_SIDE_BAD_ORDER:
            raise exc(f"order[{pos}] = {order[pos]} is not a rating position in [0, {users.shape[0]})")
        if which in (FASTMF_SIDE_BAD_USER_FEATURE, FASTMF_SIDE_BAD_ITEM_FEATURE):
            kind, side = ("user", user_side) if which == FASTMF_SIDE_BAD_USER_FEATURE else ("item", item_side)
            raise exc(f"{kind} indices[{pos}] = {side[1][pos]} is outside [0, {side[3].shape[0]}) "
                      f"(the {kind} feature rows)")
        r = int(order[pos])
        if which == FASTMF_SIDE_BAD_USER:
            raise exc(f"users[{r}] = {users[r]} is outside [0, {n_users}) (the rows of P)")
        raise exc(f"items[{r}] = {items[r]} is outside [0, {n_items}) (the rows of Q)")
    if st == FASTMF_ERR_DIVERGED:
        hint = "try a smaller lr or a larger reg"
        if which == FASTMF_SIDE_BAD_LOSS:
            raise exc(f"joint SGD diverged: the training loss became non-finite (at position {pos} of "
                      f"the epoch's order); {hint}")
        name = {FASTMF_SIDE_BAD_P: "P", FASTMF_SIDE_BAD_Q: "Q", FASTMF_SIDE_BAD_BU: "bu",
                FASTMF_SIDE_BAD_BI: "bi", FASTMF_SIDE_BAD_USER_FEATURE: "the user feature rows",
                FASTMF_SIDE_BAD_ITEM_FEATURE: "the item feature rows"}.get(which, "the model")
        raise exc(f"joint SGD diverged: {name}[{pos}] is not finite after the epoch; {hint}")
    raise unexpected("joint SGD epoch: ", err)
