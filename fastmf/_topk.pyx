# cython: language_level=3
"""Thin wrapper over csrc/topk.c: exact top-n per row, over a score matrix or over factor scores
computed on the fly (never a users x items matrix).

Private: the public entry points are ``recommend`` / ``recommend_indices`` of the estimators. Each
function checks shapes, dtypes, contiguity and index ranges (ValueError naming the array and the
position), hands raw pointers to the C kernel with the GIL released, and turns a C status into an
exception. Results do not depend on ``n_threads``.

Selection, for each output row ``r`` with user ``u = users[r]`` (NumPy equivalent)::

    allowed = (s[r] > -inf) & ~isin(arange(n_items), excluded[u]) & candidates
    cols = np.flatnonzero(allowed)
    order = np.lexsort((cols, -s[r, cols]))[:n]        # score descending, ties by lower column
    idx[r], val[r] = cols[order], s[r, cols[order]]   # then padded with -1 / -inf up to n

where ``excluded[u] = excl_indices[excl_indptr[u]:excl_indptr[u + 1]]``.
"""


import numpy as np

from fastmf._validation import check_int, check_kernel_array, check_row_matrix, row_stride, check_threads

from libc.stdint cimport int32_t, int64_t, uint8_t, INT64_MAX
from fastmf._common cimport (fastmf_status, FASTMF_OK, FASTMF_ERR_NOMEM, FASTMF_ERR_INDEX,
                             FASTMF_ERR_VALUE, fastmf_interrupt, sigint_watch, sigint_unwatch)



cdef extern from "topk.h":
    enum:
        FASTMF_TOPK_BAD_USER
        FASTMF_TOPK_BAD_INDPTR
        FASTMF_TOPK_BAD_EXCL
        FASTMF_TOPK_BAD_NAN
        FASTMF_TOPK_BAD_SPEC

    ctypedef struct fastmf_topk_error:
        int64_t row
        int64_t pos
        int which

    ctypedef struct fastmf_topk_spec:
        int64_t n_rows
        int64_t n_items
        int64_t n
        const int64_t *users
        int64_t n_users
        const int64_t *excl_indptr
        const int32_t *excl_indices
        int64_t excl_nnz
        const uint8_t *candidates
        int n_threads
        const fastmf_interrupt *interrupt

    fastmf_status fastmf_topk_rows_f32(const fastmf_topk_spec *spec, const float *scores,
                                       int64_t *out_idx, float *out_score,
                                       fastmf_topk_error *err) nogil
    fastmf_status fastmf_topk_rows_f64(const fastmf_topk_spec *spec, const double *scores,
                                       int64_t *out_idx, double *out_score,
                                       fastmf_topk_error *err) nogil
    fastmf_status fastmf_topk_factors_f32(const fastmf_topk_spec *spec, const float *U, int64_t ld_U,
                                          const float *V, int64_t ld_V, int64_t k,
                                          const double *item_bias, const double *user_offset,
                                          int64_t *out_idx, double *out_score,
                                          fastmf_topk_error *err) nogil
    fastmf_status fastmf_topk_factors_f64(const fastmf_topk_spec *spec, const double *U,
                                          int64_t ld_U, const double *V, int64_t ld_V, int64_t k,
                                          const double *item_bias, const double *user_offset,
                                          int64_t *out_idx, double *out_score,
                                          fastmf_topk_error *err) nogil
    fastmf_status fastmf_score_factors_f32(const fastmf_topk_spec *spec, const float *U, int64_t ld_U,
                                           const float *V, int64_t ld_V, int64_t k,
                                           const double *item_bias, const double *user_offset,
                                           double *out, fastmf_topk_error *err) nogil
    fastmf_status fastmf_score_factors_f64(const fastmf_topk_spec *spec, const double *U, int64_t ld_U,
                                           const double *V, int64_t ld_V, int64_t k,
                                           const double *item_bias, const double *user_offset,
                                           double *out, fastmf_topk_error *err) nogil




# ------------------------------------------------------------------------------------ validation
_exact = check_kernel_array  # shared with the other kernel wrappers


def _float_matrix(x, name):
    """A 2-D float32/float64 ndarray whose rows are contiguous (C order or a row-padded view)."""
    return check_row_matrix(x, name, (np.float32, np.float64))


_row_stride = row_stride


def _index_vector(x, name, length=None):
    """x as a 1-D C-contiguous int64 array (converted from any integer dtype)."""
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.dtype.kind not in "iu" and not (a.size == 0 and a.dtype.kind == "f"):
        raise ValueError(f"{name} must hold integers, got dtype {a.dtype}")
    if a.dtype.kind == "u" and a.size and a.max() > np.iinfo(np.int64).max:
        bad = int(np.flatnonzero(a > np.iinfo(np.int64).max)[0])
        raise ValueError(f"{name}[{bad}] = {a[bad]} is too large")
    if length is not None and a.shape[0] != length:
        raise ValueError(f"{name} must have {length} entries, got {a.shape[0]}")
    return np.ascontiguousarray(a, dtype=np.int64)


def _real_vector(x, name, length):
    """x as a 1-D C-contiguous float64 array of the given length."""
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.dtype.kind not in "fiub":
        raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.shape[0] != length:
        raise ValueError(f"{name} must have {length} entries, got {a.shape[0]}")
    return np.ascontiguousarray(a, dtype=np.float64)


def _mask(candidates, n_items):
    """The candidate mask as a uint8 array of n_items entries (a bool mask is viewed, not copied)."""
    a = candidates
    if not isinstance(a, np.ndarray):
        raise ValueError(f"candidates must be a numpy.ndarray of bool or uint8, got {type(a).__name__}")
    if a.ndim != 1 or a.shape[0] != n_items:
        raise ValueError(f"candidates must be a 1-D mask of n_items = {n_items} entries, got shape {a.shape}")
    if a.dtype != np.bool_ and a.dtype != np.uint8:
        raise ValueError(f"candidates must have dtype bool or uint8, got {a.dtype}")
    return np.ascontiguousarray(a).view(np.uint8)


cdef class _Spec:
    """A fastmf_topk_spec and the arrays its pointers borrow (kept alive for the call)."""
    cdef fastmf_topk_spec spec
    cdef object keep
    cdef object users
    cdef int64_t user_lo


cdef _Spec _make_spec(int64_t m, int64_t n_items, int64_t n, users, int64_t n_users, excl_indptr,
                      excl_indices, candidates, int nt, int64_t user_lo):
    """Validate the shared arguments and fill a spec. ``n_users`` is the number of users the rows
    refer to (rows of U, or -1 when only the exclusion CSR defines it)."""
    cdef _Spec s = _Spec()
    cdef const int64_t[::1] uv
    cdef const int64_t[::1] ip
    cdef const int32_t[::1] ix
    cdef const uint8_t[::1] cv
    keep = []
    s.user_lo = user_lo
    s.spec.n_rows = m
    s.spec.n_items = n_items
    s.spec.n = n
    s.spec.users = NULL
    s.spec.excl_indptr = NULL
    s.spec.excl_indices = NULL
    s.spec.excl_nnz = 0
    s.spec.candidates = NULL
    s.spec.n_threads = nt
    s.spec.interrupt = NULL
    if (excl_indptr is None) != (excl_indices is None):
        raise ValueError("excl_indptr and excl_indices go together: give both or neither")
    if excl_indptr is not None:
        _exact(excl_indptr, "excl_indptr", np.int64, 1)
        _exact(excl_indices, "excl_indices", np.int32, 1)
        if excl_indptr.shape[0] < 1:
            raise ValueError("excl_indptr must have at least one entry (n_users + 1)")
        if n_users < 0:
            n_users = excl_indptr.shape[0] - 1
        elif excl_indptr.shape[0] != n_users + 1:
            raise ValueError(f"excl_indptr must have n_users + 1 = {n_users + 1} entries, "
                             f"got {excl_indptr.shape[0]}")
        ip = excl_indptr
        s.spec.excl_indptr = &ip[0]
        if excl_indices.shape[0] > 0:
            ix = excl_indices
            s.spec.excl_indices = &ix[0]
        s.spec.excl_nnz = excl_indices.shape[0]
        keep += [excl_indptr, excl_indices]
    elif n_users < 0:
        n_users = INT64_MAX  # no CSR: a user index only has to be >= user_lo
    s.users = None
    if users is not None:
        users = _index_vector(users, "users", m)
        if m > 0:
            uv = users
            s.spec.users = &uv[0]
        s.users = users
    elif n_users < m:
        raise ValueError(f"without users, row r is user r: need at least {m} users, got {n_users}")
    s.spec.n_users = n_users
    if candidates is not None:
        cand = _mask(candidates, n_items)
        if n_items > 0:
            cv = cand
            s.spec.candidates = &cv[0]
        keep.append(cand)
    s.keep = keep
    return s


def _raise(fastmf_status st, fastmf_topk_error err, _Spec s, users, excl_indptr, excl_indices,
           nan_message):
    if st == FASTMF_ERR_NOMEM:
        raise MemoryError("top-k: cannot allocate the per-thread scratch")
    row, pos, which = err.row, err.pos, err.which
    if which == FASTMF_TOPK_BAD_USER:
        where = f"users[{row}]" if users is not None else f"row {row}"
        if s.spec.n_users == INT64_MAX:
            raise ValueError(f"{where} = {pos} must be >= {s.user_lo}")
        raise ValueError(f"{where} = {pos} is outside [{s.user_lo}, {s.spec.n_users})")
    if which == FASTMF_TOPK_BAD_INDPTR:
        raise ValueError(f"excl_indptr[{pos}:{pos + 2}] = {excl_indptr[pos:pos + 2].tolist()} (user {pos}, "
                         f"output row {row}) is not an ascending range inside "
                         f"[0, len(excl_indices) = {excl_indices.shape[0]}]")
    if which == FASTMF_TOPK_BAD_EXCL:
        user = int(users[row]) if users is not None else row
        raise ValueError(f"excl_indices[{pos}] = {excl_indices[pos]} (an excluded item of user {user}, "
                         f"output row {row}) is outside [0, n_items = {s.spec.n_items})")
    if which == FASTMF_TOPK_BAD_NAN:
        raise ValueError(nan_message(row, pos))
    raise RuntimeError(f"top-k kernel failed with status {int(st)} (which={which}, row={row}, pos={pos})")


# --------------------------------------------------------------------------------------- kernels
def topk_rows(scores, n, users=None, excl_indptr=None, excl_indices=None, candidates=None,
              n_threads=1):
    """Exact top-``n`` of each row of a dense score matrix.

    Parameters
    ----------
    scores : ndarray, shape (m, n_items), float32 or float64, C-contiguous
        May hold -inf (never selected); NaN raises ValueError.
    n : int >= 0
        Slots per row; rows with fewer allowed columns are padded with index -1 and score -inf.
    users : array of int, shape (m,), optional
        The user of each row, which picks its excluded list; -1 means none. Default: row r is user r.
    excl_indptr, excl_indices : int64 and int32 arrays, optional
        Excluded columns as a CSR over users: user u excludes
        ``excl_indices[excl_indptr[u]:excl_indptr[u + 1]]`` (e.g. a model's ``seen_indptr_`` and
        ``seen_indices_`` with ``users`` the selected user indices).
    candidates : bool or uint8 array, shape (n_items,), optional
        Only columns with a true entry may be selected.
    n_threads : int >= 1
        OpenMP threads (the result does not depend on it).

    Returns
    -------
    idx : int64 ndarray (m, n) and values : ndarray (m, n) of the scores' dtype
        Best first; equal scores ordered by lower column.
    """
    if not isinstance(scores, np.ndarray) or scores.dtype not in (np.float32, np.float64):
        raise ValueError("scores must be a float32 or float64 numpy.ndarray, got "
                         + (str(scores.dtype) if isinstance(scores, np.ndarray) else type(scores).__name__))
    _exact(scores, "scores", scores.dtype, 2)
    cdef int64_t m = scores.shape[0], N = scores.shape[1]
    cdef int64_t nn = check_int(n, "n", 0)
    cdef int nt = check_threads(n_threads)
    cdef _Spec s = _make_spec(m, N, nn, users, -1 if users is not None else m, excl_indptr,
                              excl_indices, candidates, nt, -1)
    users = s.users
    idx = np.empty((m, nn), dtype=np.int64)
    val = np.empty((m, nn), dtype=scores.dtype)
    cdef fastmf_topk_error err
    cdef fastmf_status st
    cdef int64_t[:, ::1] iv = idx
    cdef const float[:, ::1] s32
    cdef const double[:, ::1] s64
    cdef float[:, ::1] o32
    cdef double[:, ::1] o64
    cdef int64_t *ip = &iv[0, 0] if m * nn > 0 else NULL
    cdef const float *sp32 = NULL
    cdef const double *sp64 = NULL
    cdef float *op32 = NULL
    cdef double *op64 = NULL
    cdef bint f32 = scores.dtype == np.float32
    if f32:
        s32 = scores
        o32 = val
        if m * N > 0:
            sp32 = &s32[0, 0]
        if m * nn > 0:
            op32 = &o32[0, 0]
    else:
        s64 = scores
        o64 = val
        if m * N > 0:
            sp64 = &s64[0, 0]
        if m * nn > 0:
            op64 = &o64[0, 0]
    s.spec.interrupt = sigint_watch()  # Ctrl-C: the kernel skips the remaining rows
    try:
        with nogil:
            if f32:
                st = fastmf_topk_rows_f32(&s.spec, sp32, ip, op32, &err)
            else:
                st = fastmf_topk_rows_f64(&s.spec, sp64, ip, op64, &err)
    finally:
        sigint_unwatch(s.spec.interrupt)
    if st != FASTMF_OK:
        _raise(st, err, s, users, excl_indptr, excl_indices,
               lambda r, c: f"scores[{r}, {c}] is NaN; scores may hold -inf (never selected), not NaN")
    return idx, val


def topk_factors(U, V, n, users=None, item_bias=None, user_offset=None, excl_indptr=None,
                 excl_indices=None, candidates=None, n_threads=1):
    """Exact top-``n`` items of users scored by factors, without a users x items score matrix.

    For output row ``r`` with user ``u = users[r]`` (default ``r``) the score of item ``i`` is::

        s[r, i] = (float64(t[u, i]) + user_offset[u]) + item_bias[i],   t[u, i] = U[u] . V[i]

    with ``t`` summed in the factors' dtype in the order j = 0..k-1 without FMA (the same bits as
    ``t = 0; for j in range(k): t = t + U[u, j] * V[:, j]`` in NumPy, on every machine); a missing
    term is left out. Selection as in :func:`topk_rows`. Memory beyond the outputs is per-thread
    scratch (a transposed panel of V and bit sets of the excluded items of up to 256 users),
    independent of ``m``.

    Parameters
    ----------
    U : ndarray (n_users, k), V : ndarray (n_items, k)
        float32 or float64 (the same), rows contiguous (C order or a row-padded view).
    n : int >= 0
    users : array of int in [0, n_users), shape (m,), optional
        The users to score (default: all, m = n_users).
    item_bias : array (n_items,), user_offset : array (n_users,), optional
        Converted to float64 (NaN in them raises ValueError at the first affected score).
    excl_indptr, excl_indices, candidates, n_threads
        As in :func:`topk_rows`; the CSR has n_users + 1 pointers (e.g. ``seen_indptr_``).

    Returns
    -------
    idx : int64 ndarray (m, n) and scores : float64 ndarray (m, n)
    """
    cdef _Factors f = _Factors(U, V, item_bias, user_offset)
    cdef int64_t nn = check_int(n, "n", 0)
    cdef int nt = check_threads(n_threads)
    cdef int64_t m = f.nu if users is None else np.asarray(users).reshape(-1).shape[0]
    cdef _Spec s = _make_spec(m, f.N, nn, users, f.nu, excl_indptr, excl_indices, candidates, nt, 0)
    users = s.users
    idx = np.empty((m, nn), dtype=np.int64)
    val = np.empty((m, nn), dtype=np.float64)
    cdef int64_t[:, ::1] iv = idx
    cdef double[:, ::1] vv = val
    cdef int64_t *ip = &iv[0, 0] if m * nn > 0 else NULL
    cdef double *vp = &vv[0, 0] if m * nn > 0 else NULL
    cdef fastmf_topk_error err
    cdef fastmf_status st
    s.spec.interrupt = sigint_watch()  # Ctrl-C: the kernel skips the remaining chunks of rows
    try:
        with nogil:
            if f.f32:
                st = fastmf_topk_factors_f32(&s.spec, f.u32, f.ldu, f.v32, f.ldv, f.k, f.bp, f.op, ip, vp, &err)
            else:
                st = fastmf_topk_factors_f64(&s.spec, f.u64, f.ldu, f.v64, f.ldv, f.k, f.bp, f.op, ip, vp, &err)
    finally:
        sigint_unwatch(s.spec.interrupt)
    if st != FASTMF_OK:
        _raise(st, err, s, users, excl_indptr, excl_indices, _factor_nan_message(users))
    return idx, val


def score_factors(U, V, users=None, item_bias=None, user_offset=None, n_threads=1):
    """The scores :func:`topk_factors` selects from, as a dense float64 matrix ``(m, n_items)``:
    ``s[r, i] = (float64(U[u] . V[i]) + user_offset[u]) + item_bias[i]``, ``u = users[r]``, the dot
    product summed in the factors' dtype in the order j = 0..k-1 without FMA (same bits as
    :func:`fastmf.reference.factor_scores` and as the selection of :func:`topk_factors`). A row
    depends only on its user, never on which other users are in the call (unlike a BLAS product,
    whose rounding changes with the batch size). NaN is written like any other score.

    Parameters as in :func:`topk_factors` (``users``: int array in [0, n_users), default all).
    """
    cdef _Factors f = _Factors(U, V, item_bias, user_offset)
    cdef int nt = check_threads(n_threads)
    cdef int64_t m = f.nu if users is None else np.asarray(users).reshape(-1).shape[0]
    cdef _Spec s = _make_spec(m, f.N, 0, users, f.nu, None, None, None, nt, 0)
    users = s.users
    out = np.empty((m, f.N), dtype=np.float64)
    cdef double[:, ::1] ov = out
    cdef double *outp = &ov[0, 0] if m * f.N > 0 else NULL
    cdef fastmf_topk_error err
    cdef fastmf_status st
    s.spec.interrupt = sigint_watch()
    try:
        with nogil:
            if f.f32:
                st = fastmf_score_factors_f32(&s.spec, f.u32, f.ldu, f.v32, f.ldv, f.k, f.bp, f.op, outp, &err)
            else:
                st = fastmf_score_factors_f64(&s.spec, f.u64, f.ldu, f.v64, f.ldv, f.k, f.bp, f.op, outp, &err)
    finally:
        sigint_unwatch(s.spec.interrupt)
    if st != FASTMF_OK:
        _raise(st, err, s, users, None, None, _factor_nan_message(users))
    return out


def _factor_nan_message(users):
    def nan_message(r, c):
        u = int(users[r]) if users is not None else r
        return (f"the score of user {u} (output row {r}) for item {c} is NaN: U[{u}], V[{c}], "
                f"item_bias or user_offset hold non-finite values")
    return nan_message


cdef class _Factors:
    """The checked factor matrices, biases and their pointers for the factor kernels (which keep
    them alive for one call)."""
    cdef object U, V, item_bias, user_offset
    cdef int64_t nu, N, k, ldu, ldv
    cdef bint f32
    cdef const float *u32
    cdef const float *v32
    cdef const double *u64
    cdef const double *v64
    cdef const double *bp
    cdef const double *op

    def __init__(self, U, V, item_bias, user_offset):
        cdef const double[::1] bv
        cdef const double[::1] ov
        U = _float_matrix(U, "U")
        V = _float_matrix(V, "V")
        if U.dtype != V.dtype:
            raise ValueError(f"U and V must have one dtype, got {U.dtype} and {V.dtype}")
        if U.shape[1] != V.shape[1]:
            raise ValueError(f"U and V must have the same number of factors, got {U.shape[1]} and {V.shape[1]}")
        self.nu, self.N, self.k = U.shape[0], V.shape[0], U.shape[1]
        if item_bias is not None:
            item_bias = _real_vector(item_bias, "item_bias", self.N)
            if self.N > 0:
                bv = item_bias
                self.bp = &bv[0]
        if user_offset is not None:
            user_offset = _real_vector(user_offset, "user_offset", self.nu)
            if self.nu > 0:
                ov = user_offset
                self.op = &ov[0]
        self.U, self.V, self.item_bias, self.user_offset = U, V, item_bias, user_offset
        self.ldu, self.ldv = _row_stride(U), _row_stride(V)
        self.f32 = U.dtype == np.float32
        if self.f32:
            if self.nu * self.k > 0:
                self.u32 = <const float *><size_t>U.ctypes.data
            if self.N * self.k > 0:
                self.v32 = <const float *><size_t>V.ctypes.data
        else:
            if self.nu * self.k > 0:
                self.u64 = <const double *><size_t>U.ctypes.data
            if self.N * self.k > 0:
                self.v64 = <const double *><size_t>V.ctypes.data
