# cython: language_level=3
"""Thin wrapper over csrc/svdpp.c (SVD++ SGD epochs with the per-user accumulation of the implicit
sum, serial and blocked), with the block plan of ``fastmf._sgd``.

Private: the public entry point is ``fastmf.SVDpp``. Each function checks shapes, dtypes,
contiguity and writability (ValueError), releases the GIL around the C call, and turns a C status
into an exception: IndexError for an index out of range, FloatingPointError when the epoch
diverges, MemoryError, KeyboardInterrupt on Ctrl-C. The math is in csrc/svdpp.c; NumPy twins:
``fastmf.reference.svdpp_epoch`` (serial), ``svdpp_epoch_delayed`` (blocked), ``svdpp_user_order``.

``model`` below is the tuple ``(P, Q, Y, bu, bi)`` (one float dtype, C-contiguous, writeable);
``bag`` the tuple ``(bag_ptr int64 [n_users + 1], bag_items int32, bag_w float64 [n_users])``;
``hyper`` the tuple ``(mu, lr, reg, lr_bias, reg_bias, lr_implicit, reg_implicit)``.
"""

import numpy as np

from fastmf._validation import check_int, check_kernel_array, check_threads

from libc.stdint cimport int32_t, int64_t, uint64_t
from fastmf._common cimport (fastmf_status, fastmf_error, fastmf_interrupt, floating, error_type,
                             unexpected, sigint_watch, sigint_unwatch,
                             FASTMF_OK, FASTMF_ERR_NOMEM, FASTMF_ERR_INDEX, FASTMF_ERR_VALUE,
                             FASTMF_ERR_DIVERGED)


cdef extern from "svdpp.h":
    ctypedef enum fastmf_dtype:
        FASTMF_FLOAT32
        FASTMF_FLOAT64
    enum:
        FASTMF_SVDPP_BAD_ORDER
        FASTMF_SVDPP_BAD_USER
        FASTMF_SVDPP_BAD_ITEM
        FASTMF_SVDPP_BAD_PLAN
        FASTMF_SVDPP_BAD_LOSS
        FASTMF_SVDPP_BAD_P
        FASTMF_SVDPP_BAD_Q
        FASTMF_SVDPP_BAD_BU
        FASTMF_SVDPP_BAD_BI
        FASTMF_SVDPP_BAD_Y
        FASTMF_SVDPP_BAD_BAG
    ctypedef struct fastmf_svdpp_problem:
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
        void *Y
        void *bu
        void *bi
        const int64_t *bag_ptr
        const int32_t *bag_items
        const double *bag_w
        double mu
        double lr
        double reg
        double lr_bias
        double reg_bias
        double lr_implicit
        double reg_implicit
        const fastmf_interrupt *interrupt
    fastmf_status fastmf_svdpp_epoch(const fastmf_svdpp_problem *pb, const int64_t *order,
                                     int64_t n_order, double *sse, fastmf_error *err) nogil
    fastmf_status fastmf_svdpp_user_order(const int64_t *indptr, int64_t n_users, uint64_t seed,
                                          uint64_t epoch, int64_t *out) nogil
    fastmf_status fastmf_svdpp_epoch_blocked(const fastmf_svdpp_problem *pb, double *Z, double *G,
                                             int n_blocks, const int32_t *user_block,
                                             const int32_t *item_block, const int64_t *block_ptr,
                                             const int64_t *block_order, int64_t *work, uint64_t seed,
                                             uint64_t epoch, int n_threads, double *sse,
                                             fastmf_error *err) nogil


_U64 = 1 << 64
_array = check_kernel_array


cdef void *_ptr(x):
    """Address of a validated array's data (NULL when empty)."""
    cdef size_t a = x.ctypes.data
    return <void *>a if x.size > 0 else NULL


def _check_problem(users, items, ratings, model, bag):
    P, Q, Y, bu, bi = model
    if not isinstance(P, np.ndarray) or P.dtype not in (np.float32, np.float64):
        raise ValueError(f"P must be a float32 or float64 numpy.ndarray, got {getattr(P, 'dtype', type(P).__name__)}")
    dt = P.dtype
    for name, a in (("P", P), ("Q", Q), ("Y", Y)):
        _array(a, name, dt, 2, writeable=True)
    _array(bu, "bu", dt, 1, writeable=True)
    _array(bi, "bi", dt, 1, writeable=True)
    k = P.shape[1]
    if Q.shape[1] != k or Y.shape[1] != k:
        raise ValueError(f"P, Q and Y must have one number of columns, got {P.shape[1]}, {Q.shape[1]}, {Y.shape[1]}")
    if Y.shape[0] != Q.shape[0] or bi.shape[0] != Q.shape[0] or bu.shape[0] != P.shape[0]:
        raise ValueError(f"Y and bi need one row per row of Q ({Q.shape[0]}) and bu one per row of P "
                         f"({P.shape[0]}), got {Y.shape[0]}, {bi.shape[0]} and {bu.shape[0]}")
    arrays = (("P", P), ("Q", Q), ("Y", Y), ("bu", bu), ("bi", bi))
    for a in range(len(arrays)):
        for b in range(a + 1, len(arrays)):
            if np.may_share_memory(arrays[a][1], arrays[b][1]):
                raise ValueError(f"{arrays[a][0]} and {arrays[b][0]} must not share memory")
    _array(users, "users", np.int32, 1)
    _array(items, "items", np.int32, 1)
    _array(ratings, "ratings", dt, 1)
    if not users.shape[0] == items.shape[0] == ratings.shape[0]:
        raise ValueError(f"users, items and ratings must have one length, got {users.shape[0]}, "
                         f"{items.shape[0]} and {ratings.shape[0]}")
    bag_ptr, bag_items, bag_w = bag
    _array(bag_ptr, "bag_ptr", np.int64, 1)
    _array(bag_items, "bag_items", np.int32, 1)
    _array(bag_w, "bag_w", np.float64, 1)
    if bag_ptr.shape[0] != P.shape[0] + 1 or bag_w.shape[0] != P.shape[0]:
        raise ValueError(f"bag_ptr must have n_users + 1 = {P.shape[0] + 1} entries and bag_w n_users, got "
                         f"{bag_ptr.shape[0]} and {bag_w.shape[0]}")
    if bag_ptr[0] != 0 or bag_ptr[bag_ptr.shape[0] - 1] != bag_items.shape[0] or np.any(np.diff(bag_ptr) < 0):
        raise ValueError(f"bag_ptr must rise from 0 to len(bag_items) = {bag_items.shape[0]}")
    if not np.isfinite(bag_w).all():
        raise ValueError("bag_w must be finite")
    return dt


cdef int _problem(fastmf_svdpp_problem *pb, users, items, ratings, model, bag, hyper) except -1:
    dt = _check_problem(users, items, ratings, model, bag)
    P, Q, Y, bu, bi = model
    mu, lr, reg, lr_bias, reg_bias, lr_implicit, reg_implicit = (float(h) for h in hyper)
    pb.dtype = FASTMF_FLOAT32 if dt == np.float32 else FASTMF_FLOAT64
    pb.nnz = users.shape[0]
    pb.n_users = P.shape[0]
    pb.n_items = Q.shape[0]
    pb.n_factors = P.shape[1]
    pb.users = <const int32_t *>_ptr(users)
    pb.items = <const int32_t *>_ptr(items)
    pb.ratings = _ptr(ratings)
    pb.P, pb.Q, pb.Y, pb.bu, pb.bi = _ptr(P), _ptr(Q), _ptr(Y), _ptr(bu), _ptr(bi)
    pb.bag_ptr = <const int64_t *>_ptr(bag[0])
    pb.bag_items = <const int32_t *>_ptr(bag[1])
    pb.bag_w = <const double *>_ptr(bag[2])
    pb.mu, pb.lr, pb.reg = mu, lr, reg
    pb.lr_bias, pb.reg_bias = lr_bias, reg_bias
    pb.lr_implicit, pb.reg_implicit = lr_implicit, reg_implicit
    pb.interrupt = NULL
    return 0


def _raise(fastmf_error err, order, users, items, model, bag, what):
    cdef fastmf_status st = err.status
    cdef int64_t pos = err.pos
    cdef int which = err.which
    exc = error_type(st)
    n_users, n_items = model[0].shape[0], model[1].shape[0]
    if order is None:  # the blocked epoch without work: pos is the rating position itself
        order = range(max(users.shape[0], pos + 1))
    if st == FASTMF_ERR_NOMEM:
        raise exc("SVD++ epoch: cannot allocate its scratch rows")
    if st == FASTMF_ERR_INDEX:
        if which == FASTMF_SVDPP_BAD_ORDER:
            raise exc(f"{what}[{pos}] = {order[pos]} is not a rating position in [0, {users.shape[0]})")
        if which == FASTMF_SVDPP_BAD_BAG:
            raise exc(f"bag_items[{pos}] = {bag[1][pos]} is outside [0, {n_items}) (the rows of Y)")
        k = int(order[pos])
        if which == FASTMF_SVDPP_BAD_USER:
            raise exc(f"users[{k}] = {users[k]} is outside [0, {n_users}) (the rows of P)")
        raise exc(f"items[{k}] = {items[k]} is outside [0, {n_items}) (the rows of Q)")
    if st == FASTMF_ERR_VALUE and which == FASTMF_SVDPP_BAD_PLAN:
        raise exc(f"the block plan does not match the ratings: rating {int(order[pos])} (position {pos} "
                  f"of the block order) lies outside its block; rebuild it with fastmf._sgd.make_block_plan")
    if st == FASTMF_ERR_DIVERGED:
        hint = "try a smaller lr or a larger reg"
        if which == FASTMF_SVDPP_BAD_LOSS:
            raise exc(f"SVD++ diverged: the training loss became non-finite (around position {pos} of "
                      f"the epoch's order); {hint}")
        name = {FASTMF_SVDPP_BAD_P: "P", FASTMF_SVDPP_BAD_Q: "Q", FASTMF_SVDPP_BAD_Y: "Y",
                FASTMF_SVDPP_BAD_BU: "bu", FASTMF_SVDPP_BAD_BI: "bi"}.get(which, "the model")
        raise exc(f"SVD++ diverged: {name}[{pos}] is not finite after the epoch; {hint}")
    raise unexpected("SVD++ epoch: ", err)


def svdpp_epoch(users, items, ratings, order, model, bag, hyper):
    """One serial SVD++ epoch over ``order`` (int64 rating positions): each run of consecutive
    positions of one user is one visit (implicit sum once, y update once). Updates ``model`` in
    place; returns the sum of squared errors. Twin: ``fastmf.reference.svdpp_epoch``."""
    cdef fastmf_svdpp_problem pb
    _problem(&pb, users, items, ratings, model, bag, hyper)
    _array(order, "order", np.int64, 1)
    cdef const int64_t *op = <const int64_t *>_ptr(order)
    cdef int64_t n = order.shape[0]
    cdef fastmf_error err
    cdef double sse = 0.0
    cdef fastmf_status st
    pb.interrupt = sigint_watch()
    try:
        with nogil:
            st = fastmf_svdpp_epoch(&pb, op, n, &sse, &err)
    finally:
        sigint_unwatch(pb.interrupt)
    if st != FASTMF_OK:
        _raise(err, order, users, items, model, bag, "order")
    return sse


def user_order(indptr, seed, epoch):
    """The user-grouped visiting order of a serial epoch over ratings stored by user (CSR
    ``indptr``): users permuted by the stream (seed, epoch), each user's positions by (seed,
    epoch, u + 1). Twin: ``fastmf.reference.svdpp_user_order``."""
    _array(indptr, "indptr", np.int64, 1)
    if indptr.shape[0] < 1 or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
        raise ValueError("indptr must rise from 0")
    cdef uint64_t s = check_int(seed, "seed", 0, _U64 - 1), e = check_int(epoch, "epoch", 0, _U64 - 1)
    out = np.empty(int(indptr[indptr.shape[0] - 1]), dtype=np.int64)
    cdef const int64_t *ip = <const int64_t *>_ptr(indptr)
    cdef int64_t *outp = <int64_t *>_ptr(out)
    cdef int64_t nu = indptr.shape[0] - 1
    cdef int64_t scratch = 0
    cdef fastmf_status st
    if outp == NULL:
        outp = &scratch
    with nogil:
        st = fastmf_svdpp_user_order(ip, nu, s, e, outp)
    if st != FASTMF_OK:
        raise MemoryError(f"user_order: cannot allocate {nu} user positions")
    return out


def svdpp_epoch_blocked(users, items, ratings, model, bag, hyper, Z, G, plan, seed, epoch,
                        n_threads=1, work=None):
    """One blocked SVD++ epoch over the plan of ``fastmf._sgd.make_block_plan`` on up to
    ``n_threads`` threads, with the user-owned sums ``Z`` (in: ``w_u sum_j y_j``) and gradients
    ``G`` (in: 0), float64 (n_users, k), updated in place; ``Y`` is not touched (the caller applies
    the y update of the sweep). Bit-identical for every ``n_threads``; equals
    ``fastmf.reference.svdpp_epoch_delayed`` over ``fastmf._sgd.block_schedule(plan, seed, epoch)``.
    Returns the sum of squared errors."""
    from fastmf._sgd import _check_plan

    cdef fastmf_svdpp_problem pb
    _problem(&pb, users, items, ratings, model, bag, hyper)
    cdef int B = _check_plan(plan, pb.nnz, pb.n_users, pb.n_items)
    for name, a in (("Z", Z), ("G", G)):
        _array(a, name, np.float64, 2, writeable=True)
        if a.shape != (pb.n_users, pb.n_factors):
            raise ValueError(f"{name} must have shape {(pb.n_users, pb.n_factors)}, got {a.shape}")
    if np.may_share_memory(Z, G):
        raise ValueError("Z and G must not share memory")
    cdef int nt = check_threads(n_threads)
    cdef uint64_t s = check_int(seed, "seed", 0, _U64 - 1), e = check_int(epoch, "epoch", 0, _U64 - 1)
    if work is not None:  # else per-thread scratch of one block (fastmf._sgd.sgd_epoch_blocked)
        _array(work, "work", np.int64, 1, writeable=True)
        if work.shape[0] != pb.nnz:
            raise ValueError(f"work must have one entry per rating ({pb.nnz}), got {work.shape[0]}")
    cdef double *zp = <double *>_ptr(Z)
    cdef double *gp = <double *>_ptr(G)
    cdef const int32_t *ubp = <const int32_t *>_ptr(plan.user_block)
    cdef const int32_t *ibp = <const int32_t *>_ptr(plan.item_block)
    cdef const int64_t *bpp = <const int64_t *>_ptr(plan.block_ptr)
    cdef const int64_t *bop = <const int64_t *>_ptr(plan.block_order) if plan.block_order is not None else NULL
    cdef int64_t *wp = <int64_t *>_ptr(work) if work is not None else NULL
    cdef fastmf_error err
    cdef double sse = 0.0
    cdef fastmf_status st
    pb.interrupt = sigint_watch()
    try:
        with nogil:
            st = fastmf_svdpp_epoch_blocked(&pb, zp, gp, B, ubp, ibp, bpp, bop, wp, s, e, nt, &sse, &err)
    finally:
        sigint_unwatch(pb.interrupt)
    if st != FASTMF_OK:
        _raise(err, work, users, items, model, bag, "the shuffled block order")
    return sse
