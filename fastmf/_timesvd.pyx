# cython: language_level=3
"""Thin wrapper over csrc/timesvd.c (the timeSVD++ SGD epoch with the per-user accumulation of the
implicit sum; serial).

Private: the public entry point is ``fastmf.TimeSVDpp``. The function checks shapes, dtypes,
contiguity and writability (ValueError), releases the GIL around the C call, and turns a C status
into an exception: IndexError for an index out of range, FloatingPointError when the epoch
diverges, MemoryError, KeyboardInterrupt on Ctrl-C. The math is in csrc/timesvd.c; NumPy twin:
``fastmf.reference.timesvd_epoch``. The visiting order is ``fastmf._svdpp.user_order``.

``model`` is a dict of arrays of one float dtype, C-contiguous and writeable: ``P, Q, Y, bu, bi``
(required) and the time terms ``au`` (n_users), ``bit`` (n_items, n_bins), ``but`` (n_days),
``cu`` (n_users), ``cut`` (n_days), ``AP`` (n_users, k), ``PT`` (n_days, k), each absent or None
when its term is off. ``time`` is ``(bins int32 [nnz], days int64 [nnz], dev float64 [nnz])``;
``bag`` is ``(bag_ptr int64 [n_users + 1], bag_items int32, bag_w float64 [n_users])``;
``hyper`` is ``(mu, lr, reg)`` with ``lr`` and ``reg`` sequences of one value per group, in the
order of :data:`GROUPS`.
"""

import numpy as np

from fastmf._validation import check_kernel_array

from libc.stdint cimport int32_t, int64_t
from fastmf._common cimport (fastmf_status, fastmf_error, fastmf_interrupt, error_type,
                             unexpected, sigint_watch, sigint_unwatch,
                             FASTMF_OK, FASTMF_ERR_NOMEM, FASTMF_ERR_INDEX, FASTMF_ERR_DIVERGED)


cdef extern from "timesvd.h":
    ctypedef enum fastmf_dtype:
        FASTMF_FLOAT32
        FASTMF_FLOAT64
    enum:
        FASTMF_TSVD_N_GROUPS
        FASTMF_TSVD_BAD_ORDER
        FASTMF_TSVD_BAD_USER
        FASTMF_TSVD_BAD_ITEM
        FASTMF_TSVD_BAD_BIN
        FASTMF_TSVD_BAD_DAY
        FASTMF_TSVD_BAD_LOSS
        FASTMF_TSVD_BAD_MODEL
        FASTMF_TSVD_BAD_BAG
    ctypedef struct fastmf_timesvd_problem:
        fastmf_dtype dtype
        int64_t nnz
        int64_t n_users
        int64_t n_items
        int64_t n_factors
        int64_t n_bins
        int64_t n_days
        const int32_t *users
        const int32_t *items
        const void *ratings
        const int32_t *bins
        const int64_t *days
        const double *dev
        void *P
        void *Q
        void *Y
        void *bu
        void *bi
        void *au
        void *bit
        void *but
        void *cu
        void *cut
        void *AP
        void *PT
        const int64_t *bag_ptr
        const int32_t *bag_items
        const double *bag_w
        double mu
        double lr[10]
        double reg[10]
        const fastmf_interrupt *interrupt
    fastmf_status fastmf_timesvd_epoch(const fastmf_timesvd_problem *pb, const int64_t *order,
                                       int64_t n_order, double *sse, fastmf_error *err) nogil


#: the parameter groups, in the order of csrc/timesvd.h (FASTMF_TSVD_G_*)
GROUPS = ("factors", "bias", "implicit", "drift", "day_bias", "bin", "scale", "day_scale", "factor_drift",
          "day_factors")
#: the model arrays, in the order of FASTMF_TSVD_BAD_MODEL's positions
ARRAYS = ("P", "Q", "Y", "bu", "bi", "au", "bit", "but", "cu", "cut", "AP", "PT")

_array = check_kernel_array


cdef void *_ptr(x):
    """Address of a validated array's data (NULL when None or empty)."""
    if x is None:
        return NULL
    cdef size_t a = x.ctypes.data
    return <void *>a if x.size > 0 else NULL


cdef void *_term(x):
    """Address of an optional term: NULL when off (None), a valid non-NULL address when on (an
    empty array of an on term still switches it on)."""
    if x is None:
        return NULL
    cdef size_t a = x.ctypes.data
    return <void *>a


def _shapes(model, int64_t nu, int64_t ni, int64_t k):
    n_bins = model["bit"].shape[1] if model.get("bit") is not None else 0
    n_days = next((model[n].shape[0] for n in ("but", "cut", "PT") if model.get(n) is not None), 0)
    return {"P": (nu, k), "Q": (ni, k), "Y": (ni, k), "bu": (nu,), "bi": (ni,), "au": (nu,),
            "bit": (ni, n_bins), "but": (n_days,), "cu": (nu,), "cut": (n_days,), "AP": (nu, k),
            "PT": (n_days, k)}, n_bins, n_days


def _check(users, items, ratings, model, time, bag, hyper):
    unknown = set(model) - set(ARRAYS)
    if unknown:
        raise ValueError(f"model has unknown arrays {sorted(unknown)}; expected some of {ARRAYS}")
    P = model.get("P")
    if not isinstance(P, np.ndarray) or P.dtype not in (np.float32, np.float64) or P.ndim != 2:
        raise ValueError(f"P must be a 2-D float32 or float64 numpy.ndarray, got {getattr(P, 'dtype', type(P).__name__)}")
    for name in ("Q", "Y", "bu", "bi"):
        if model.get(name) is None:
            raise ValueError(f"model needs {name}")
    dt = P.dtype
    nu, k = P.shape
    ni = model["Q"].shape[0]
    shapes, n_bins, n_days = _shapes(model, nu, ni, k)
    present = [(n, model[n]) for n in ARRAYS if model.get(n) is not None]
    for name, a in present:
        _array(a, name, dt, len(shapes[name]), writeable=True)
        if a.shape != shapes[name]:
            raise ValueError(f"{name} must have shape {shapes[name]}, got {a.shape}")
    for x in range(len(present)):
        for y in range(x + 1, len(present)):
            if np.may_share_memory(present[x][1], present[y][1]):
                raise ValueError(f"{present[x][0]} and {present[y][0]} must not share memory")
    if model.get("cut") is not None and model.get("cu") is None:
        raise ValueError("cut (the per-day scale) needs cu (the per-user scale)")
    _array(users, "users", np.int32, 1)
    _array(items, "items", np.int32, 1)
    _array(ratings, "ratings", dt, 1)
    n = users.shape[0]
    if not items.shape[0] == ratings.shape[0] == n:
        raise ValueError(f"users, items and ratings must have one length, got {n}, {items.shape[0]} and "
                         f"{ratings.shape[0]}")
    bins, days, dev = time
    for name, a, t in (("bins", bins, np.int32), ("days", days, np.int64), ("dev", dev, np.float64)):
        _array(a, name, t, 1)
        if a.shape[0] != n:
            raise ValueError(f"{name} must have one entry per rating ({n}), got {a.shape[0]}")
    if not np.isfinite(dev).all():
        raise ValueError("dev must be finite")
    bag_ptr, bag_items, bag_w = bag
    _array(bag_ptr, "bag_ptr", np.int64, 1)
    _array(bag_items, "bag_items", np.int32, 1)
    _array(bag_w, "bag_w", np.float64, 1)
    if bag_ptr.shape[0] != nu + 1 or bag_w.shape[0] != nu:
        raise ValueError(f"bag_ptr must have n_users + 1 = {nu + 1} entries and bag_w n_users, got "
                         f"{bag_ptr.shape[0]} and {bag_w.shape[0]}")
    if bag_ptr[0] != 0 or bag_ptr[nu] != bag_items.shape[0] or np.any(np.diff(bag_ptr) < 0):
        raise ValueError(f"bag_ptr must rise from 0 to len(bag_items) = {bag_items.shape[0]}")
    if not np.isfinite(bag_w).all():
        raise ValueError("bag_w must be finite")
    mu, lr, reg = hyper
    lr = np.asarray(lr, dtype=np.float64)
    reg = np.asarray(reg, dtype=np.float64)
    if lr.shape != (len(GROUPS),) or reg.shape != (len(GROUPS),):
        raise ValueError(f"lr and reg need one value per group {GROUPS}")
    if not (np.isfinite(lr).all() and np.isfinite(reg).all() and np.isfinite(float(mu))):
        raise ValueError("mu, lr and reg must be finite")
    return dt, n_bins, n_days, float(mu), lr, reg


def _raise(fastmf_error err, order, users, items, time, bag, n_bins, n_days, model):
    cdef fastmf_status st = err.status
    cdef int64_t pos = err.pos
    cdef int which = err.which
    exc = error_type(st)
    if st == FASTMF_ERR_NOMEM:
        raise exc("timeSVD++ epoch: cannot allocate its scratch rows")
    if st == FASTMF_ERR_INDEX:
        n_users, n_items = model["P"].shape[0], model["Q"].shape[0]
        if which == FASTMF_TSVD_BAD_ORDER:
            raise exc(f"order[{pos}] = {order[pos]} is not a rating position in [0, {users.shape[0]})")
        if which == FASTMF_TSVD_BAD_BAG:
            raise exc(f"bag_items[{pos}] = {bag[1][pos]} is outside [0, {n_items}) (the rows of Y)")
        r = int(order[pos])
        if which == FASTMF_TSVD_BAD_USER:
            raise exc(f"users[{r}] = {users[r]} is outside [0, {n_users}) (the rows of P)")
        if which == FASTMF_TSVD_BAD_BIN:
            raise exc(f"bins[{r}] = {time[0][r]} is outside [0, {n_bins}) (the columns of bit)")
        if which == FASTMF_TSVD_BAD_DAY:
            raise exc(f"days[{r}] = {time[1][r]} is outside [0, {n_days}) (the user-day rows)")
        raise exc(f"items[{r}] = {items[r]} is outside [0, {n_items}) (the rows of Q)")
    if st == FASTMF_ERR_DIVERGED:
        hint = "try smaller learning rates or larger penalties"
        if which == FASTMF_TSVD_BAD_LOSS:
            raise exc(f"timeSVD++ diverged: the training loss became non-finite (around position {pos} "
                      f"of the epoch's order); {hint}")
        name = ARRAYS[pos] if 0 <= pos < len(ARRAYS) else "the model"
        raise exc(f"timeSVD++ diverged: {name} is not finite after the epoch; {hint}")
    raise unexpected("timeSVD++ epoch: ", err)


def timesvd_epoch(users, items, ratings, order, model, time, bag, hyper):
    """One serial timeSVD++ epoch over ``order`` (int64 rating positions): each run of consecutive
    positions of one user is one visit (implicit sum once, y update once). Updates ``model`` in
    place; returns the sum of squared errors. Twin: ``fastmf.reference.timesvd_epoch``."""
    dt, n_bins, n_days, mu, lr, reg = _check(users, items, ratings, model, time, bag, hyper)
    _array(order, "order", np.int64, 1)
    cdef fastmf_timesvd_problem pb
    cdef int g
    P = model["P"]
    pb.dtype = FASTMF_FLOAT32 if dt == np.float32 else FASTMF_FLOAT64
    pb.nnz = users.shape[0]
    pb.n_users = P.shape[0]
    pb.n_items = model["Q"].shape[0]
    pb.n_factors = P.shape[1]
    pb.n_bins = n_bins
    pb.n_days = n_days
    pb.users = <const int32_t *>_ptr(users)
    pb.items = <const int32_t *>_ptr(items)
    pb.ratings = _ptr(ratings)
    pb.bins = <const int32_t *>_ptr(time[0])
    pb.days = <const int64_t *>_ptr(time[1])
    pb.dev = <const double *>_ptr(time[2])
    pb.P, pb.Q, pb.Y = _ptr(P), _ptr(model["Q"]), _ptr(model["Y"])
    pb.bu, pb.bi = _ptr(model["bu"]), _ptr(model["bi"])
    pb.au, pb.bit, pb.but = _term(model.get("au")), _term(model.get("bit")), _term(model.get("but"))
    pb.cu, pb.cut = _term(model.get("cu")), _term(model.get("cut"))
    pb.AP, pb.PT = _term(model.get("AP")), _term(model.get("PT"))
    pb.bag_ptr = <const int64_t *>_ptr(bag[0])
    pb.bag_items = <const int32_t *>_ptr(bag[1])
    pb.bag_w = <const double *>_ptr(bag[2])
    pb.mu = mu
    for g in range(FASTMF_TSVD_N_GROUPS):
        pb.lr[g] = lr[g]
        pb.reg[g] = reg[g]
    cdef const int64_t *op = <const int64_t *>_ptr(order)
    cdef int64_t n = order.shape[0]
    cdef fastmf_error err
    cdef double sse = 0.0
    cdef fastmf_status st
    pb.interrupt = sigint_watch()
    try:
        with nogil:
            st = fastmf_timesvd_epoch(&pb, op, n, &sse, &err)
    finally:
        sigint_unwatch(pb.interrupt)
    if st != FASTMF_OK:
        _raise(err, order, users, items, time, bag, n_bins, n_days, model)
    return sse
