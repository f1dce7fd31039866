# cython: language_level=3
"""Thin wrapper over csrc/sgd.c (SGD epochs for biased matrix factorization), csrc/rng.c (their random
orders, and the normal draws of the kernels to come) and csrc/blocks.c (the block plan and scheduler
of the parallel schedule).

Private: the public entry point is ``fastmf.MatrixFactorization(solver="sgd")``. Each function checks
shapes, dtypes, contiguity and writability (ValueError), hands raw pointers to the C kernel with the GIL
released, and turns a C status into an exception: IndexError for an index out of range,
FloatingPointError when the epoch diverges, MemoryError. Nothing here copies the ratings.

One epoch, for each visited rating ``(u, i, r)`` (NumPy twin: ``fastmf.reference.sgd_epoch``)::

    e   = r - (((mu + bu[u]) + bi[i]) + P[u] @ Q[i])     # biased=False: e = r - P[u] @ Q[i]
    bu[u] += lr * (e - reg_bias * bu[u]);  bi[i] += lr * (e - reg_bias * bi[i])
    P[u], Q[i] = P[u] + lr * (e * Q[i] - reg * P[u]), Q[i] + lr * (e * P[u] - reg * Q[i])

and the epoch returns ``sse = sum(e**2)`` accumulated in float64. ``ratings``, ``P``, ``Q``, ``bu``,
``bi`` share one dtype (float32 or float64); ``users``/``items`` are int32 and orders int64.
"""

from collections import namedtuple
import operator
import os

import numpy as np

from fastmf._validation import check_int, check_kernel_array, check_row_matrix, row_stride, check_threads

from libc.stdint cimport int32_t, int64_t, uint64_t, uintptr_t
from fastmf._common cimport (fastmf_status, fastmf_error, fastmf_interrupt, floating, error_type,
                             unexpected, sigint_watch, sigint_unwatch,
                             FASTMF_OK, FASTMF_ERR_NOMEM, FASTMF_ERR_INDEX, FASTMF_ERR_VALUE,
                             FASTMF_ERR_DIVERGED)


cdef extern from "rng.h":
    void fastmf_shuffle(int64_t *order, int64_t n, uint64_t seed, uint64_t stream) nogil
    void fastmf_normals(double *out, int64_t n, uint64_t seed, uint64_t stream) nogil


cdef extern from "blocks.h":
    enum:
        FASTMF_BLOCK_BAD_USER
        FASTMF_BLOCK_BAD_ITEM
    fastmf_status fastmf_block_plan(int64_t nnz, const int32_t *users, const int32_t *items,
                                    int64_t n_users, int64_t n_items, int n_blocks,
                                    int32_t *user_block, int32_t *item_block,
                                    int64_t *block_ptr, int64_t *block_order,
                                    fastmf_error *err) nogil
    int fastmf_block_step_group(int B, int b, int s) nogil
    void fastmf_block_shuffle(int n_blocks, const int64_t *block_ptr, const int64_t *block_order,
                              uint64_t seed, uint64_t epoch, int64_t *work) nogil
    fastmf_status fastmf_block_scatter(int64_t nnz, const int32_t *users, const int32_t *items,
                                       const void *values, int value_size, int n_blocks,
                                       const int32_t *user_block, const int32_t *item_block,
                                       const int64_t *block_ptr, int32_t *out_users, int32_t *out_items,
                                       void *out_values, fastmf_error *err) nogil


cdef extern from "sgd.h":
    ctypedef enum fastmf_dtype:
        FASTMF_FLOAT32
        FASTMF_FLOAT64

    enum:
        FASTMF_SGD_BAD_ORDER
        FASTMF_SGD_BAD_USER
        FASTMF_SGD_BAD_ITEM
        FASTMF_SGD_BAD_PLAN
        FASTMF_SGD_BAD_LOSS
        FASTMF_SGD_BAD_P
        FASTMF_SGD_BAD_Q
        FASTMF_SGD_BAD_BU
        FASTMF_SGD_BAD_BI

    ctypedef struct fastmf_sgd_problem:
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
        int64_t ld_P
        int64_t ld_Q
        void *bu
        void *bi
        double mu
        double lr
        double reg
        double reg_bias
        int biased
        const fastmf_interrupt *interrupt
        int isa
        int64_t l2_bytes

    enum:
        FASTMF_ISA_AUTO
        FASTMF_ISA_BASE
        FASTMF_ISA_V3
        FASTMF_ISA_V4

    int fastmf_sgd_isa(int isa) nogil
    int fastmf_sgd_vector_bytes(int isa) nogil

    int fastmf_sgd_row_vectors(const fastmf_sgd_problem *pb) nogil
    fastmf_status fastmf_sgd_epoch(const fastmf_sgd_problem *pb, const int64_t *order,
                                   int64_t n_order, double *sse, fastmf_error *err) nogil
    fastmf_status fastmf_sgd_epoch_hogwild(const fastmf_sgd_problem *pb, const int64_t *order,
                                           int64_t n_order, int n_threads, double *sse,
                                           fastmf_error *err) nogil
    fastmf_status fastmf_sgd_epoch_blocked(const fastmf_sgd_problem *pb, int n_blocks,
                                           const int32_t *user_block, const int32_t *item_block,
                                           const int64_t *block_ptr, const int64_t *block_order,
                                           int64_t *work, uint64_t seed, uint64_t epoch,
                                           int n_threads, double *sse, fastmf_error *err) nogil


MAX_BLOCKS = 1024
_U64 = 1 << 64

BlockPlan = namedtuple("BlockPlan", ["n_blocks", "block_ptr", "block_order", "user_block", "item_block"])
BlockPlan.__doc__ = """Block plan of the parallel SGD schedule (built once per fit by make_block_plan).

Users are cut into ``n_blocks`` groups (``user_block[u]``), items likewise (``item_block[i]``); block
``(a, b)`` holds the ratings ``block_order[block_ptr[a * n_blocks + b]:block_ptr[a * n_blocks + b + 1]]``
(positions into the rating arrays, ascending). ``block_order`` is a permutation of ``range(nnz)``,
or None for the identity: the plan of ratings stored in block order (:func:`block_layout`), whose
blocks are the ranges ``block_ptr[id]:block_ptr[id + 1]`` themselves.
"""


# ------------------------------------------------------------------------------------ validation
_array = check_kernel_array  # shared with the other kernel wrappers


def _factor_array(x, name, dtype):
    """x itself when it is a writeable 2-D ndarray of this dtype with contiguous rows, else ValueError."""
    return check_row_matrix(x, name, (dtype,), writeable=True)


_row_stride = row_stride


def aligned_factors(n_rows, n_factors, dtype):
    """A zero ``(n_rows, n_factors)`` array whose rows start on 64-byte boundaries (a view of a
    row-padded buffer when ``n_factors * itemsize`` is not a multiple of 64). The SGD kernels accept
    it like a C-contiguous array and run faster on it: no vector load or store of a row then
    straddles two cache lines."""
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    n_rows, n_factors = check_int(n_rows, "n_rows", 0), check_int(n_factors, "n_factors", 0)
    per_line = 64 // dt.itemsize
    ld = -(-n_factors // per_line) * per_line
    raw = np.zeros(n_rows * ld * dt.itemsize + 64, dtype=np.uint8)
    start = (-raw.ctypes.data) % 64
    buf = raw[start:start + n_rows * ld * dt.itemsize].view(dt).reshape(n_rows, ld)
    return buf[:, :n_factors]


def _check_problem(users, items, ratings, P, Q, bu, bi, biased):
    """Validate the rating triples and the model arrays; return the factors' dtype."""
    if not isinstance(P, np.ndarray) or P.dtype not in (np.float32, np.float64):
        raise ValueError(f"P must be a float32 or float64 numpy.ndarray, got "
                         f"{getattr(P, 'dtype', type(P).__name__)}")
    dt = P.dtype
    _factor_array(P, "P", dt)
    _factor_array(Q, "Q", dt)
    if P.shape[1] != Q.shape[1]:
        raise ValueError(f"P and Q must have the same number of factors (columns), "
                         f"got shapes {P.shape} and {Q.shape}")
    if np.may_share_memory(P, Q):
        raise ValueError("P and Q must not share memory")
    _array(users, "users", np.int32, 1)
    _array(items, "items", np.int32, 1)
    _array(ratings, "ratings", dt, 1)
    if not users.shape[0] == items.shape[0] == ratings.shape[0]:
        raise ValueError(f"users, items and ratings must have one length, got "
                         f"{users.shape[0]}, {items.shape[0]} and {ratings.shape[0]}")
    if biased or bu is not None or bi is not None:
        if bu is None or bi is None:
            raise ValueError("bu and bi are required when biased=True")
        _array(bu, "bu", dt, 1, writeable=True)
        _array(bi, "bi", dt, 1, writeable=True)
        if bu.shape[0] != P.shape[0]:
            raise ValueError(f"bu must have one entry per row of P ({P.shape[0]}), got {bu.shape[0]}")
        if bi.shape[0] != Q.shape[0]:
            raise ValueError(f"bi must have one entry per row of Q ({Q.shape[0]}), got {bi.shape[0]}")
        for a, b, names in ((bu, bi, "bu and bi"), (bu, P, "bu and P"), (bu, Q, "bu and Q"),
                            (bi, P, "bi and P"), (bi, Q, "bi and Q")):
            if np.may_share_memory(a, b):
                raise ValueError(f"{names} must not share memory")
    return dt


cdef void _set_model(fastmf_sgd_problem *pb, const floating[::1] ratings, floating[:, :] P,
                     floating[:, :] Q, floating[::1] bu, floating[::1] bi):
    """Fill the element type and the floating pointers of pb (arrays already validated)."""
    pb.dtype = FASTMF_FLOAT32 if floating is float else FASTMF_FLOAT64
    pb.ratings = &ratings[0] if ratings.shape[0] > 0 else NULL
    pb.P = &P[0, 0] if P.shape[0] > 0 and P.shape[1] > 0 else NULL
    pb.Q = &Q[0, 0] if Q.shape[0] > 0 and Q.shape[1] > 0 else NULL
    pb.bu = &bu[0] if bu is not None and bu.shape[0] > 0 else NULL
    pb.bi = &bi[0] if bi is not None and bi.shape[0] > 0 else NULL


cdef const int32_t *_i32(const int32_t[::1] a):
    return &a[0] if a.shape[0] > 0 else NULL


cdef int64_t *_i64(int64_t[::1] a):
    return &a[0] if a.shape[0] > 0 else NULL


cdef const int64_t *_ci64(const int64_t[::1] a):
    return &a[0] if a.shape[0] > 0 else NULL


cdef int _problem(fastmf_sgd_problem *pb, users, items, ratings, P, Q, bu, bi,
                  mu, lr, reg, reg_bias, biased) except -1:
    biased = bool(biased)
    dt = _check_problem(users, items, ratings, P, Q, bu, bi, biased)
    pb.nnz = users.shape[0]
    pb.n_users = P.shape[0]
    pb.n_items = Q.shape[0]
    pb.n_factors = P.shape[1]
    pb.ld_P = _row_stride(P)
    pb.ld_Q = _row_stride(Q)
    pb.users = _i32(users)
    pb.items = _i32(items)
    if dt == np.float32:
        _set_model[float](pb, ratings, P, Q, bu, bi)
    else:
        _set_model[double](pb, ratings, P, Q, bu, bi)
    pb.mu = float(mu)
    pb.lr = float(lr)
    pb.reg = float(reg)
    pb.reg_bias = float(reg) if reg_bias is None else float(reg_bias)
    pb.biased = 1 if biased else 0
    pb.interrupt = NULL
    pb.isa = _isa_code()
    pb.l2_bytes = _l2_bytes()
    return 0


def _raise(fastmf_error err, order, users, items, P, Q, what):
    """Turn the error record of an epoch over ``order`` (named ``what``) into an exception; with
    ``order`` None, ``err.pos`` is already a rating position (the blocked epoch without ``work``)."""
    cdef fastmf_status st = err.status
    cdef int64_t pos = err.pos
    cdef int which = err.which
    nnz = users.shape[0]
    exc = error_type(st)
    if order is None:
        order = range(max(nnz, pos + 1))
    if st == FASTMF_ERR_NOMEM:
        raise exc("SGD epoch: cannot allocate its per-block / per-thread results")
    if st == FASTMF_ERR_INDEX:
        if which == FASTMF_SGD_BAD_ORDER:
            raise exc(f"{what}[{pos}] = {order[pos]} is not a rating position in [0, {nnz})")
        k = int(order[pos])
        if which == FASTMF_SGD_BAD_USER:
            raise exc(f"users[{k}] = {users[k]} is outside [0, {P.shape[0]}) (the rows of P)")
        raise exc(f"items[{k}] = {items[k]} is outside [0, {Q.shape[0]}) (the rows of Q)")
    if st == FASTMF_ERR_VALUE and which == FASTMF_SGD_BAD_PLAN:
        raise exc(f"the block plan does not match the ratings: rating {int(order[pos])} "
                         f"(position {pos} of block_order) lies outside its block; rebuild the plan "
                         f"with make_block_plan from these users and items")
    if st == FASTMF_ERR_DIVERGED:
        hint = "try a smaller lr or a larger reg"
        if which == FASTMF_SGD_BAD_LOSS:
            raise exc(f"SGD diverged: the training loss became non-finite "
                                     f"(around position {pos} of the epoch's order); {hint}")
        name = {FASTMF_SGD_BAD_P: "P", FASTMF_SGD_BAD_Q: "Q",
                FASTMF_SGD_BAD_BU: "bu", FASTMF_SGD_BAD_BI: "bi"}.get(which, "the model")
        raise exc(f"SGD diverged: {name}[{pos}] is not finite after the epoch; {hint}")
    raise unexpected("SGD epoch: ", err)


def row_vectors(P, Q):
    """How the epochs will run over these factor matrices: the number of 64-byte SIMD vectors per
    row on the vector path (rows of a multiple of 16 float32 or 8 float64 values, 64-byte aligned,
    as ``aligned_factors`` makes them with such a width), or 0 on the element-by-element path. Both
    paths compute the same values in the same order (bit-identical results); the vector path is
    faster."""
    cdef fastmf_sgd_problem pb
    dt = np.dtype(getattr(P, "dtype", None))
    if dt not in (np.float32, np.float64):
        raise ValueError(f"P must be float32 or float64, got {dt}")
    _factor_array(P, "P", dt)
    _factor_array(Q, "Q", dt)
    if P.shape[1] != Q.shape[1]:
        raise ValueError(f"P and Q must have one number of columns, got {P.shape[1]} and {Q.shape[1]}")
    pb.dtype = FASTMF_FLOAT32 if dt == np.float32 else FASTMF_FLOAT64
    pb.n_factors = P.shape[1]
    pb.ld_P = _row_stride(P)
    pb.ld_Q = _row_stride(Q)
    pb.P = <void *><uintptr_t>P.ctypes.data
    pb.Q = <void *><uintptr_t>Q.ctypes.data
    pb.isa = FASTMF_ISA_AUTO
    pb.l2_bytes = 0
    return int(fastmf_sgd_row_vectors(&pb))


# ------------------------------------------------------------------------- instruction-set copies
_ISA_NAMES = {FASTMF_ISA_BASE: "default", FASTMF_ISA_V3: "x86-64-v3", FASTMF_ISA_V4: "x86-64-v4"}
_ISA_CODES = {name: code for code, name in _ISA_NAMES.items()}


def isa_levels():
    """The copies of the SGD epoch loop this build has and this CPU runs, best first, as
    ``[(name, vector_bytes), ...]``: with function multi-versioning (GCC >= 11, x86-64 Linux)
    ``("x86-64-v4", 64)`` on AVX-512 CPUs, ``("x86-64-v3", 32)`` on AVX2 + FMA ones and always
    ``("default", 16)``; a build without it (``-DFASTMF_NO_CLONES``, other compilers and CPUs) has
    only ``"default"``, compiled for the build's flags (32-byte vectors with ``-mavx``/``-march=x86-64-v3``,
    64 with AVX-512, else 16: SSE2, NEON). The epochs run the first unless ``FASTMF_ISA`` names
    another (for experiments and tests): each copy is bit-identical run after run and for any thread
    count; copies differ only by FMA contraction."""
    out = []
    for code in (FASTMF_ISA_V4, FASTMF_ISA_V3, FASTMF_ISA_BASE):
        if fastmf_sgd_isa(code) == code:
            out.append((_ISA_NAMES[code], int(fastmf_sgd_vector_bytes(code))))
    return out


_L2 = {}


def _l2_bytes():
    """A core's share of the L2 cache (fastmf._machine.cache_per_core(2): sysfs, or FASTMF_CACHE_SIZES),
    looked up once per value of FASTMF_CACHE_SIZES; 0 when unknown (the kernel then asks sysconf)."""
    key = os.environ.get("FASTMF_CACHE_SIZES", "")
    if key not in _L2:
        from fastmf._machine import cache_per_core
        _L2[key] = cache_per_core(2)
    return _L2[key]


cdef int _isa_code() except -1:
    """The FASTMF_ISA_* code the environment variable ``FASTMF_ISA`` asks for (unset or ``auto``:
    the best this CPU runs); a name this build or CPU does not have raises ValueError."""
    name = os.environ.get("FASTMF_ISA", "auto").strip() or "auto"
    if name == "auto":
        return FASTMF_ISA_AUTO
    avail = [n for n, _ in isa_levels()]
    if name not in avail:
        raise ValueError(f"FASTMF_ISA={name!r} is not a copy of the SGD epoch loop this build and CPU "
                         f"run; allowed: 'auto', {', '.join(repr(n) for n in avail)}")
    return _ISA_CODES[name]


# --------------------------------------------------------------------------------------- orders
def shuffle(order, seed, stream=0):
    """Shuffle the int64 array ``order`` in place (Fisher-Yates) with the xoshiro256** stream seeded
    from ``(seed, stream)``; e.g. ``stream = epoch``. Deterministic: same input, seed, stream -> same
    output on every machine."""
    cdef int64_t[::1] o = _array(order, "order", np.int64, 1, writeable=True)
    cdef uint64_t s = check_int(seed, "seed", 0, _U64 - 1), t = check_int(stream, "stream", 0, _U64 - 1)
    cdef int64_t n = o.shape[0]
    cdef int64_t *op = _i64(o)
    with nogil:
        fastmf_shuffle(op, n, s, t)


def permutation(n, seed, stream=0):
    """A random permutation of ``range(n)`` (int64): ``shuffle(np.arange(n), seed, stream)``."""
    n = operator.index(n)  # message pinned by tests/kernels/test_sgd_kernel.py: "n must be >= 0"
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    order = np.arange(n, dtype=np.int64)
    shuffle(order, seed, stream)
    return order


def normals(n, seed, stream=0):
    """``n`` standard normal draws (float64) of the xoshiro256** stream seeded from ``(seed,
    stream)`` by Marsaglia's polar method (csrc/rng.h, the draws Gibbs sampling will use); NumPy
    twin: ``fastmf.reference.normals``. Deterministic on every machine up to the last bit of ``log``."""
    n = operator.index(n)  # message pinned by tests/kernels/test_sgd_kernel.py: "n must be >= 0"
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    cdef uint64_t s = check_int(seed, "seed", 0, _U64 - 1), t = check_int(stream, "stream", 0, _U64 - 1)
    out = np.empty(n, dtype=np.float64)
    cdef double[::1] o = out
    cdef int64_t m = n
    cdef double *op = &o[0] if m > 0 else NULL
    with nogil:
        fastmf_normals(op, m, s, t)
    return out


# --------------------------------------------------------------------------------------- epochs
def sgd_epoch(users, items, ratings, order, P, Q, bu, bi, mu, lr, reg, reg_bias=None, biased=True):
    """One serial SGD epoch visiting ``order`` (int64 positions into the rating arrays) in sequence.

    Updates P, Q, bu, bi in place and returns the epoch's sum of squared errors (float). Same call
    and result as ``fastmf.reference.sgd_epoch``; bit-identical across runs.
    """
    cdef fastmf_sgd_problem pb
    _problem(&pb, users, items, ratings, P, Q, bu, bi, mu, lr, reg, reg_bias, biased)
    cdef const int64_t[::1] o = _array(order, "order", np.int64, 1)
    cdef const int64_t *op = _ci64(o)
    cdef int64_t n = o.shape[0]
    cdef fastmf_error err
    cdef double sse = 0.0
    cdef fastmf_status st
    with nogil:
        st = fastmf_sgd_epoch(&pb, op, n, &sse, &err)
    if st != FASTMF_OK:
        _raise(err, order, users, items, P, Q, "order")
    return sse


def sgd_epoch_hogwild(users, items, ratings, order, P, Q, bu, bi, mu, lr, reg, reg_bias=None,
                      biased=True, n_threads=1):
    """Hogwild epoch (opt-in): ``order`` cut into ``n_threads`` contiguous chunks run concurrently
    without locks, so threads may race on shared rows of P/Q and on biases (see csrc/sgd.c). Not
    reproducible for n_threads > 1; with n_threads=1 it equals ``sgd_epoch``."""
    cdef fastmf_sgd_problem pb
    _problem(&pb, users, items, ratings, P, Q, bu, bi, mu, lr, reg, reg_bias, biased)
    cdef int nt = check_threads(n_threads)
    cdef const int64_t[::1] o = _array(order, "order", np.int64, 1)
    cdef const int64_t *op = _ci64(o)
    cdef int64_t n = o.shape[0]
    cdef fastmf_error err
    cdef double sse = 0.0
    cdef fastmf_status st
    with nogil:
        st = fastmf_sgd_epoch_hogwild(&pb, op, n, nt, &sse, &err)
    if st != FASTMF_OK:
        _raise(err, order, users, items, P, Q, "order")
    return sse


# ----------------------------------------------------------------------------- blocked schedule
def make_block_plan(users, items, n_users, n_items, n_blocks, with_order=True):
    """Build the BlockPlan of the blocked parallel epoch (once per fit).

    Users and items are each cut into ``n_blocks`` contiguous index ranges of near-equal rating
    counts; the ratings are bucketed by (user group, item group) with a counting sort. Each step of
    an epoch runs ``n_blocks`` blocks concurrently, so ``n_blocks`` should be a multiple of the
    thread count (8 suits 1, 2, 4 and 8 threads: small blocks also keep each block's rows in
    cache). The schedule, and so the result, depends on ``n_blocks``, not on the thread count.
    ``with_order=False`` leaves ``block_order`` None (not computed: :func:`block_layout` needs the
    groups and offsets only).
    """
    _array(users, "users", np.int32, 1)
    _array(items, "items", np.int32, 1)
    if users.shape[0] != items.shape[0]:
        raise ValueError(f"users and items must have one length, got {users.shape[0]} and {items.shape[0]}")
    cdef int64_t nu = check_int(n_users, "n_users", 0), ni = check_int(n_items, "n_items", 0)
    cdef int B = check_int(n_blocks, "n_blocks", 1, MAX_BLOCKS)
    cdef int64_t nnz = users.shape[0]
    user_block = np.empty(nu, dtype=np.int32)
    item_block = np.empty(ni, dtype=np.int32)
    block_ptr = np.empty(B * B + 1, dtype=np.int64)
    block_order = np.empty(nnz, dtype=np.int64) if with_order else None
    cdef const int32_t *up = _i32(users)
    cdef const int32_t *ip = _i32(items)
    cdef int32_t[::1] ub = user_block, ib = item_block
    cdef int32_t *ubp = &ub[0] if nu > 0 else NULL
    cdef int32_t *ibp = &ib[0] if ni > 0 else NULL
    cdef int64_t *bpp = _i64(block_ptr)
    cdef int64_t *bop = _i64(block_order) if with_order else NULL
    cdef fastmf_error err
    cdef fastmf_status st
    with nogil:
        st = fastmf_block_plan(nnz, up, ip, nu, ni, B, ubp, ibp, bpp, bop, &err)
    if st == FASTMF_ERR_INDEX:
        if err.which == FASTMF_BLOCK_BAD_USER:
            raise error_type(st)(f"users[{err.pos}] = {users[err.pos]} is outside [0, {nu})")
        raise error_type(st)(f"items[{err.pos}] = {items[err.pos]} is outside [0, {ni})")
    if st == FASTMF_ERR_NOMEM:
        raise error_type(st)(f"make_block_plan: cannot allocate scratch for {nu} users and {ni} items")
    if st != FASTMF_OK:
        raise unexpected("make_block_plan: ", err)
    return BlockPlan(B, block_ptr, block_order, user_block, item_block)


def block_layout(users, items, ratings, n_users, n_items, n_blocks):
    """``(users, items, ratings, plan)``: copies of the rating arrays stored block by block and the
    plan over them, whose ``block_order`` is None (the identity). The same arrays as
    ``x[make_block_plan(users, items, ...).block_order]`` for each x, built by one counting-sort
    scatter without the nnz-long int64 permutation: the copies are all the memory it takes."""
    plan = make_block_plan(users, items, n_users, n_items, n_blocks, with_order=False)
    if not isinstance(ratings, np.ndarray) or ratings.dtype not in (np.float32, np.float64):
        raise ValueError(f"ratings must be a float32 or float64 ndarray, got {getattr(ratings, 'dtype', type(ratings))}")
    r = _array(ratings, "ratings", ratings.dtype, 1)
    cdef int64_t nnz = users.shape[0]
    if r.shape[0] != nnz:
        raise ValueError(f"ratings must have one entry per rating ({nnz}), got {r.shape[0]}")
    out_u = np.empty(nnz, dtype=np.int32)
    out_i = np.empty(nnz, dtype=np.int32)
    out_r = np.empty(nnz, dtype=r.dtype)
    cdef int32_t[::1] ou = out_u, oi = out_i
    cdef const int32_t *up = _i32(users)
    cdef const int32_t *ip = _i32(items)
    cdef const int32_t *ubp = _i32(plan.user_block)
    cdef const int32_t *ibp = _i32(plan.item_block)
    cdef const int64_t *bpp = _ci64(plan.block_ptr)
    cdef int32_t *oup = &ou[0] if nnz > 0 else NULL
    cdef int32_t *oip = &oi[0] if nnz > 0 else NULL
    cdef const void *vp = <const void *><uintptr_t>r.ctypes.data
    cdef void *ovp = <void *><uintptr_t>out_r.ctypes.data
    cdef int vsize = r.dtype.itemsize, B = plan.n_blocks
    cdef fastmf_error err
    cdef fastmf_status st
    with nogil:
        st = fastmf_block_scatter(nnz, up, ip, vp, vsize, B, ubp, ibp, bpp, oup, oip, ovp, &err)
    if st == FASTMF_ERR_NOMEM:
        raise error_type(st)(f"block_layout: cannot allocate {B * B} block cursors")
    if st != FASTMF_OK:
        raise unexpected("block_layout: ", err)
    return out_u, out_i, out_r, plan


def _check_plan(plan, int64_t nnz, int64_t n_users, int64_t n_items):
    if not isinstance(plan, BlockPlan):
        raise ValueError(f"plan must be the BlockPlan returned by make_block_plan, got {type(plan).__name__}")
    B = check_int(plan.n_blocks, "plan.n_blocks", 1, MAX_BLOCKS)
    block_ptr = _array(plan.block_ptr, "plan.block_ptr", np.int64, 1)
    if plan.block_order is not None:
        _array(plan.block_order, "plan.block_order", np.int64, 1)
    _array(plan.user_block, "plan.user_block", np.int32, 1)
    _array(plan.item_block, "plan.item_block", np.int32, 1)
    if block_ptr.shape[0] != B * B + 1:
        raise ValueError(f"plan.block_ptr must have n_blocks**2 + 1 = {B * B + 1} entries, got {block_ptr.shape[0]}")
    if plan.block_order is not None and plan.block_order.shape[0] != nnz:
        raise ValueError(f"the plan covers {plan.block_order.shape[0]} ratings but there are {nnz}")
    if plan.user_block.shape[0] != n_users or plan.item_block.shape[0] != n_items:
        raise ValueError(f"the plan was built for {plan.user_block.shape[0]} users and "
                         f"{plan.item_block.shape[0]} items, but P and Q have {n_users} and {n_items} rows")
    if block_ptr[0] != 0 or block_ptr[B * B] != nnz or np.any(np.diff(block_ptr) < 0):
        raise ValueError(f"plan.block_ptr must rise from 0 to {nnz}")
    return B


def step_group(n_blocks, b, s):
    """The item group paired with user group ``b`` in step ``s`` of the blocked schedule with
    ``n_blocks`` groups per side: ``b ^ s`` when ``n_blocks`` is a power of two (a thread that owns
    a range of user groups then keeps its item groups for several steps), else ``(b + s) % n_blocks``."""
    B = check_int(n_blocks, "n_blocks", 1, 1 << 16)
    if not 0 <= b < B or not 0 <= s < B:
        raise ValueError(f"b and s must lie in [0, {B}), got b={b}, s={s}")
    return fastmf_block_step_group(B, b, s)


def block_schedule(plan, seed, epoch):
    """The order (int64 positions) in which ``sgd_epoch_blocked(..., plan, seed, epoch, ...)`` applies
    its updates: blocks (b, step_group(B, b, s)) for step s = 0..B-1 and b = 0..B-1, each block's
    ratings shuffled from (seed, epoch, block). ``sgd_epoch`` over this order gives the same P, Q, bu,
    bi."""
    nnz = int(plan.block_ptr[plan.block_ptr.shape[0] - 1]) if plan.block_order is None else plan.block_order.shape[0]
    B = _check_plan(plan, nnz, plan.user_block.shape[0], plan.item_block.shape[0])
    work = np.empty(nnz, dtype=np.int64)
    cdef uint64_t s = check_int(seed, "seed", 0, _U64 - 1), e = check_int(epoch, "epoch", 0, _U64 - 1)
    cdef const int64_t *bpp = _ci64(plan.block_ptr)
    cdef const int64_t *bop = _ci64(plan.block_order) if plan.block_order is not None else NULL
    cdef int64_t *wp = _i64(work)
    cdef int nb = B
    with nogil:
        fastmf_block_shuffle(nb, bpp, bop, s, e, wp)
    ptr = plan.block_ptr
    ids = [b * B + fastmf_block_step_group(B, b, st) for st in range(B) for b in range(B)]
    return np.concatenate([work[ptr[i]:ptr[i + 1]] for i in ids] or [work[:0]])


def sgd_epoch_blocked(users, items, ratings, P, Q, bu, bi, mu, lr, reg, reg_bias, biased,
                      plan, seed, epoch, n_threads=1, work=None):
    """One blocked parallel SGD epoch (LIBMF-style schedule) on up to ``n_threads`` OpenMP threads.

    Step s = 0..B-1 holds the blocks (b, step_group(B, b, s)) of ``plan``, which share no row of P or
    Q; threads take blocks in step order (each thread a fixed range of user groups when B is a power
    of two that the thread count divides), and a block starts as soon as the two blocks of the
    previous step that share its user group or its item group are done (no barrier per step), so no
    two running blocks share a row and there is no race. Each block's ratings are shuffled from (seed,
    epoch, block). The
    result does not depend on ``n_threads`` (bit for bit) and equals ``sgd_epoch`` over
    ``block_schedule(plan, seed, epoch)``. ``work`` (int64, nnz entries) is optional scratch to reuse
    across epochs; without it each thread shuffles one block at a time into scratch of the largest
    block's length (same result, nnz / n_blocks**2 entries per thread instead of nnz). Returns the
    epoch's sum of squared errors.
    """
    cdef fastmf_sgd_problem pb
    _problem(&pb, users, items, ratings, P, Q, bu, bi, mu, lr, reg, reg_bias, biased)
    cdef int B = _check_plan(plan, pb.nnz, pb.n_users, pb.n_items)
    cdef int nt = check_threads(n_threads)
    cdef uint64_t s = check_int(seed, "seed", 0, _U64 - 1), e = check_int(epoch, "epoch", 0, _U64 - 1)
    if work is not None:
        _array(work, "work", np.int64, 1, writeable=True)
        if work.shape[0] != pb.nnz:
            raise ValueError(f"work must have one entry per rating ({pb.nnz}), got {work.shape[0]}")
    cdef const int32_t *ubp = _i32(plan.user_block)
    cdef const int32_t *ibp = _i32(plan.item_block)
    cdef const int64_t *bpp = _ci64(plan.block_ptr)
    cdef const int64_t *bop = _ci64(plan.block_order) if plan.block_order is not None else NULL
    cdef int64_t *wp = _i64(work) if work is not None else NULL
    cdef fastmf_error err
    cdef double sse = 0.0
    cdef fastmf_status st
    pb.interrupt = sigint_watch()
    try:
        with nogil:
            st = fastmf_sgd_epoch_blocked(&pb, B, ubp, ibp, bpp, bop, wp, s, e, nt, &sse, &err)
    finally:
        sigint_unwatch(pb.interrupt)
    if st != FASTMF_OK:
        _raise(err, work, users, items, P, Q, "the shuffled block order")
    return sse
