# cython: language_level=3
"""Thin wrapper over csrc/als.c: explicit and implicit ALS half-sweeps, the Gram matrix and the iALS
loss.

Private: the public entry points are ``fastmf.MatrixFactorization(solver="als")`` and
``fastmf.ImplicitALS``. Each function checks types, shapes, dtypes, contiguity, writability and the
hyper-parameters (ValueError naming the argument), hands raw pointers to the C kernel with the GIL
released and turns a C status into an exception naming the row or entry:
``numpy.linalg.LinAlgError`` (a ValueError) for a system that is not positive definite, IndexError
for a column index out of range, ValueError for non-finite inputs or a broken ``indptr``,
FloatingPointError for a non-finite solution, MemoryError.

Conventions. A half-sweep updates the rows of ``factors`` (and ``bias``) IN PLACE from the CSR
``(indptr int64, indices int32, data)`` whose rows are the side being solved and whose indices point
into ``fixed_factors``. ``data``, the factor and the bias arrays share one dtype (float32 or float64,
C-contiguous); the arithmetic is float64 in both cases (except the per-entry products of the iALS
conjugate gradient, done in the factors' dtype as implicit does). Rows are solved in parallel on ``n_threads``
OpenMP threads and the result is bit-identical for every thread count. The NumPy twins (same
positional arguments) are ``fastmf.reference.als_half_sweep``, ``ials_half_sweep`` and
``ials_objective``; with ``solver="cholesky"`` the kernels compute the same numbers up to rounding.
"""


import numpy as np

from fastmf._validation import check_int, check_kernel_array, check_option, check_real, check_threads

from libc.stdint cimport int32_t, int64_t, uint64_t
from fastmf._common cimport (fastmf_status, fastmf_error, fastmf_interrupt, floating, error_type,
                             unexpected, sigint_watch, sigint_unwatch,
                             FASTMF_OK, FASTMF_ERR_NOMEM, FASTMF_ERR_INDEX, FASTMF_ERR_VALUE,
                             FASTMF_ERR_NOT_PD, FASTMF_ERR_DIVERGED)


cdef extern from "als.h":
    enum:
        FASTMF_ALS_CHOLESKY
        FASTMF_ALS_CG
        FASTMF_IALS_LINEAR
        FASTMF_IALS_LOG
        FASTMF_ALS_BAD_ARGS
        FASTMF_ALS_BAD_INDPTR
        FASTMF_ALS_BAD_INDEX
        FASTMF_ALS_BAD_DATA
        FASTMF_ALS_BAD_FIXED
        FASTMF_ALS_BAD_FIXED_BIAS
        FASTMF_ALS_BAD_START
        FASTMF_ALS_BAD_SYSTEM
        FASTMF_ALS_BAD_RESULT
        FASTMF_ALS_BAD_GRAM
        FASTMF_ALS_BAD_X
        FASTMF_ALS_BAD_PRIOR
        FASTMF_ALS_BAD_OFFSET

    ctypedef struct fastmf_als_params:
        int64_t n_rows
        int64_t n_fixed
        int64_t n_factors
        int64_t nnz
        double mu
        double reg
        double reg_bias
        int weighted
        int biased
        int solver
        int cg_steps
        int n_threads
        const fastmf_interrupt *interrupt

    ctypedef struct fastmf_ials_params:
        int64_t n_rows
        int64_t n_fixed
        int64_t n_factors
        int64_t nnz
        double reg
        double alpha
        double eps
        int scaling
        double reg_nu
        double reg_alpha0
        int solver
        int cg_steps
        int n_threads
        const fastmf_interrupt *interrupt

    ctypedef struct fastmf_gibbs_params:
        int64_t n_rows
        int64_t n_fixed
        int64_t n_factors
        int64_t nnz
        double mu
        double alpha
        int biased
        int draw
        int n_threads
        uint64_t seed
        uint64_t stream
        const fastmf_interrupt *interrupt

    fastmf_status fastmf_gibbs_half_sweep_f32(const fastmf_gibbs_params *p, const int64_t *indptr,
                                              const int32_t *indices, const float *data,
                                              const float *fixed_factors, const float *fixed_bias,
                                              const double *prior_mean, const double *prior_prec,
                                              const double *prior_offset, float *factors, float *bias,
                                              double *gram_out, double *resid_out, fastmf_error *err) nogil
    fastmf_status fastmf_gibbs_bag_sweep_f32(const fastmf_gibbs_params *p, const int64_t *bag_indptr,
                                             const int32_t *bag_rows, const float *bag_w, const double *gram,
                                             double *resid, const double *prior_mean,
                                             const double *prior_prec, float *features,
                                             fastmf_error *err) nogil
    fastmf_status fastmf_gibbs_half_sweep_f64(const fastmf_gibbs_params *p, const int64_t *indptr,
                                              const int32_t *indices, const double *data,
                                              const double *fixed_factors, const double *fixed_bias,
                                              const double *prior_mean, const double *prior_prec,
                                              const double *prior_offset, double *factors, double *bias,
                                              double *gram_out, double *resid_out, fastmf_error *err) nogil
    fastmf_status fastmf_gibbs_bag_sweep_f64(const fastmf_gibbs_params *p, const int64_t *bag_indptr,
                                             const int32_t *bag_rows, const double *bag_w, const double *gram,
                                             double *resid, const double *prior_mean,
                                             const double *prior_prec, double *features,
                                             fastmf_error *err) nogil
    fastmf_status fastmf_bag_sums_f32(const int64_t *indptr, const int32_t *indices, int64_t n_rows,
                                      const float *rows, int64_t n_feat, int64_t m, const double *weights,
                                      int n_threads, double *out, fastmf_error *err) nogil
    fastmf_status fastmf_bag_sums_f64(const int64_t *indptr, const int32_t *indices, int64_t n_rows,
                                      const double *rows, int64_t n_feat, int64_t m, const double *weights,
                                      int n_threads, double *out, fastmf_error *err) nogil
    void fastmf_gibbs_normals(double *out, int64_t n_rows, int64_t m, uint64_t seed,
                              uint64_t stream) nogil

    fastmf_status fastmf_als_half_sweep_f32(const fastmf_als_params *p, const int64_t *indptr,
                                            const int32_t *indices, const float *data,
                                            const float *fixed_factors, const float *fixed_bias,
                                            float *factors, float *bias,
                                            fastmf_error *err) nogil
    fastmf_status fastmf_als_half_sweep_f64(const fastmf_als_params *p, const int64_t *indptr,
                                            const int32_t *indices, const double *data,
                                            const double *fixed_factors, const double *fixed_bias,
                                            double *factors, double *bias,
                                            fastmf_error *err) nogil
    fastmf_status fastmf_gram_f32(const float *Y, int64_t n, int64_t k, int n_threads,
                                  const fastmf_interrupt *interrupt, double *G) nogil
    fastmf_status fastmf_gram_f64(const double *Y, int64_t n, int64_t k, int n_threads,
                                  const fastmf_interrupt *interrupt, double *G) nogil
    fastmf_status fastmf_ials_half_sweep_f32(const fastmf_ials_params *p, const int64_t *indptr,
                                             const int32_t *indices, const float *data,
                                             const float *fixed_factors, const double *gram,
                                             float *factors, fastmf_error *err) nogil
    fastmf_status fastmf_ials_half_sweep_f64(const fastmf_ials_params *p, const int64_t *indptr,
                                             const int32_t *indices, const double *data,
                                             const double *fixed_factors, const double *gram,
                                             double *factors, fastmf_error *err) nogil
    fastmf_status fastmf_ials_loss_f32(const fastmf_ials_params *p, const int64_t *indptr,
                                       const int32_t *indices, const float *data,
                                       const float *user_factors, const float *item_factors,
                                       const double *gram, double *loss, fastmf_error *err) nogil
    fastmf_status fastmf_ials_loss_f64(const fastmf_ials_params *p, const int64_t *indptr,
                                       const int32_t *indices, const double *data,
                                       const double *user_factors, const double *item_factors,
                                       const double *gram, double *loss, fastmf_error *err) nogil


cdef extern from "ialspp.h":
    enum:
        FASTMF_IALSPP_MAX_BLOCK
    fastmf_status fastmf_ialspp_half_sweep_f32(const fastmf_ials_params *p, int64_t block_size,
                                               const int64_t *indptr, const int32_t *indices,
                                               const float *data, const float *fixed_factors,
                                               const double *gram, float *factors,
                                               fastmf_error *err) nogil
    fastmf_status fastmf_ialspp_half_sweep_f64(const fastmf_ials_params *p, int64_t block_size,
                                               const int64_t *indptr, const int32_t *indices,
                                               const double *data, const double *fixed_factors,
                                               const double *gram, double *factors,
                                               fastmf_error *err) nogil


SOLVERS = {"cholesky": FASTMF_ALS_CHOLESKY, "cg": FASTMF_ALS_CG}
#: the iALS++ block solver (csrc/ialspp.c): an ials_half_sweep solver of its own entry point
IALSPP = "ialspp"
MAX_BLOCK_SIZE = FASTMF_IALSPP_MAX_BLOCK
SCALINGS = {"linear": FASTMF_IALS_LINEAR, "log": FASTMF_IALS_LOG}
MAX_CG_STEPS = 1 << 20


# ------------------------------------------------------------------------------------ validation
_array = check_kernel_array  # shared with the other kernel wrappers


def _float_dtype(x, name, what):
    if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.float64):
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"{what}{name} must be a float32 or float64 numpy.ndarray, got {got}")
    return x.dtype


def _check_csr(indptr, indices, data, n_rows, dt, what):
    """Shapes and dtypes of the CSR triple (monotonicity and index ranges are checked in C)."""
    _array(indptr, "indptr", np.int64, 1, what=what)
    _array(indices, "indices", np.int32, 1, what=what)
    _array(data, "data", dt, 1, what=what)
    if indptr.shape[0] != n_rows + 1:
        raise ValueError(f"{what}indptr must have n_rows + 1 = {n_rows + 1} entries (one more than "
                         f"the rows of factors), got {indptr.shape[0]}")
    if indices.shape[0] != data.shape[0]:
        raise ValueError(f"{what}indices and data must have one length, got {indices.shape[0]} "
                         f"and {data.shape[0]}")


def _check_factors(fixed, factors, dt, what, fixed_name="fixed_factors", name="factors"):
    _array(fixed, fixed_name, dt, 2, what=what)
    _array(factors, name, dt, 2, writeable=name == "factors", what=what)
    if fixed.shape[1] != factors.shape[1]:
        raise ValueError(f"{what}{fixed_name} and {name} must have the same number of factors "
                         f"(columns), got shapes {fixed.shape} and {factors.shape}")
    if factors.shape[1] < 1:
        raise ValueError(f"{what}the factor matrices need at least one column, got shape {factors.shape}")


def _no_overlap(pairs, what):
    for a, b, names in pairs:
        if a is not None and b is not None and np.may_share_memory(a, b):
            raise ValueError(f"{what}{names} must not share memory")


def _raise(fastmf_error err, what, indptr, indices, data, n_fixed, hint):
    """Turn a kernel's error record into an exception; ``what`` prefixes the message
    ("als_half_sweep: ")."""
    cdef fastmf_status st = err.status
    cdef int64_t pos = err.pos
    cdef int bad = err.which
    exc = error_type(st)
    if st == FASTMF_ERR_NOMEM:
        raise exc(f"{what}cannot allocate the per-thread scratch")
    if st == FASTMF_ERR_NOT_PD:
        n_r = int(indptr[pos + 1] - indptr[pos])
        raise exc(f"{what}row {pos} ({n_r} entries): {hint}")
    if st == FASTMF_ERR_INDEX:
        raise exc(f"{what}indices[{pos}] = {int(indices[pos])} is outside [0, {n_fixed}) "
                  f"(the rows of the fixed factors)")
    if st == FASTMF_ERR_DIVERGED:
        raise exc(f"{what}the solution of row {pos} is not finite (overflow); "
                  f"use a larger reg or rescale the data")
    if st == FASTMF_ERR_VALUE:
        if bad == FASTMF_ALS_BAD_INDPTR:
            raise exc(f"{what}indptr must rise from 0 to len(indices) = {indices.shape[0]}; "
                      f"indptr[{pos}] = {int(indptr[pos])} breaks it")
        if bad == FASTMF_ALS_BAD_DATA:
            raise exc(f"{what}data[{pos}] = {float(data[pos])!r} (row {_row_of(indptr, pos)}) is not "
                      f"finite or has no finite confidence")
        if bad == FASTMF_ALS_BAD_FIXED:
            raise exc(f"{what}row {pos} of the fixed factors holds a non-finite value")
        if bad == FASTMF_ALS_BAD_FIXED_BIAS:
            raise exc(f"{what}fixed_bias[{pos}] is not finite")
        if bad == FASTMF_ALS_BAD_START:
            raise exc(f"{what}row {pos} of factors (the warm start of solver='cg' / 'ialspp') holds a "
                      f"non-finite value; reinitialise it or use solver='cholesky'")
        if bad == FASTMF_ALS_BAD_X:
            raise exc(f"{what}row {pos} of user_factors holds a non-finite value")
        if bad == FASTMF_ALS_BAD_PRIOR:
            raise exc(f"{what}the prior (prior_prec, then prior_mean, flat position {pos}) holds a "
                      f"non-finite value")
        if bad == FASTMF_ALS_BAD_OFFSET:
            raise exc(f"{what}row {pos} of prior_offset holds a non-finite value")
        if bad == FASTMF_ALS_BAD_GRAM:
            raise exc(f"{what}gram.flat[{pos}] is not finite")
    raise unexpected(what, err)


def _row_of(indptr, pos):
    return int(np.searchsorted(indptr, pos, side="right") - 1)


# ------------------------------------------------------------------------------ typed pointers
# Memoryview arguments accept None: an optional array passed as None (or empty) is a NULL pointer,
# which is how the C kernels are told it is absent.
cdef inline const floating *_cp1(const floating[::1] a) noexcept:
    return &a[0] if a is not None and a.shape[0] > 0 else NULL


cdef inline floating *_p1(floating[::1] a) noexcept:
    return &a[0] if a is not None and a.shape[0] > 0 else NULL


cdef inline const floating *_cp2(const floating[:, ::1] a) noexcept:
    return &a[0, 0] if a is not None and a.shape[0] > 0 and a.shape[1] > 0 else NULL


cdef inline floating *_p2(floating[:, ::1] a) noexcept:
    return &a[0, 0] if a is not None and a.shape[0] > 0 and a.shape[1] > 0 else NULL


cdef inline const double *_cd3(const double[:, :, ::1] a) noexcept:
    return &a[0, 0, 0] if a is not None and a.shape[0] > 0 and a.shape[1] > 0 and a.shape[2] > 0 else NULL


cdef inline double *_d3(double[:, :, ::1] a) noexcept:
    return &a[0, 0, 0] if a is not None and a.shape[0] > 0 and a.shape[1] > 0 and a.shape[2] > 0 else NULL


cdef inline const int32_t *_ci32(const int32_t[::1] a) noexcept:
    return &a[0] if a is not None and a.shape[0] > 0 else NULL


cdef fastmf_status _als_call(const fastmf_als_params *p, const int64_t[::1] indptr,
                             const int32_t[::1] indices, const floating[::1] data,
                             const floating[:, ::1] fixed, const floating[::1] fixed_bias,
                             floating[:, ::1] factors, floating[::1] bias,
                             fastmf_error *err):
    cdef const floating *fbp = _cp1(fixed_bias)
    cdef floating *bp = _p1(bias)
    cdef const int64_t *ip = &indptr[0]
    cdef const int32_t *xp = _ci32(indices)
    cdef const floating *dp = _cp1(data)
    cdef const floating *yp = _cp2(fixed)
    cdef floating *fp = _p2(factors)
    cdef fastmf_status st
    cdef fastmf_als_params q = p[0]
    q.interrupt = sigint_watch()
    try:
        with nogil:
            if floating is float:
                st = fastmf_als_half_sweep_f32(&q, ip, xp, dp, yp, fbp, fp, bp, err)
            else:
                st = fastmf_als_half_sweep_f64(&q, ip, xp, dp, yp, fbp, fp, bp, err)
    finally:
        sigint_unwatch(q.interrupt)
    return st


cdef fastmf_status _ials_call(const fastmf_ials_params *p, const int64_t[::1] indptr,
                              const int32_t[::1] indices, const floating[::1] data,
                              const floating[:, ::1] fixed, const double[:, ::1] gram,
                              floating[:, ::1] factors, fastmf_error *err, int64_t block_size=0):
    cdef const double *gp = _cp2(gram)
    cdef const int64_t *ip = &indptr[0]
    cdef const int32_t *xp = _ci32(indices)
    cdef const floating *dp = _cp1(data)
    cdef const floating *yp = _cp2(fixed)
    cdef floating *fp = _p2(factors)
    cdef fastmf_status st
    cdef fastmf_ials_params q = p[0]
    q.interrupt = sigint_watch()
    try:
        with nogil:
            if block_size > 0:   # iALS++
                if floating is float:
                    st = fastmf_ialspp_half_sweep_f32(&q, block_size, ip, xp, dp, yp, gp, fp, err)
                else:
                    st = fastmf_ialspp_half_sweep_f64(&q, block_size, ip, xp, dp, yp, gp, fp, err)
            elif floating is float:
                st = fastmf_ials_half_sweep_f32(&q, ip, xp, dp, yp, gp, fp, err)
            else:
                st = fastmf_ials_half_sweep_f64(&q, ip, xp, dp, yp, gp, fp, err)
    finally:
        sigint_unwatch(q.interrupt)
    return st


cdef fastmf_status _loss_call(const fastmf_ials_params *p, const int64_t[::1] indptr,
                              const int32_t[::1] indices, const floating[::1] data,
                              const floating[:, ::1] X, const floating[:, ::1] Y,
                              const double[:, ::1] gram, double *loss, fastmf_error *err):
    cdef const double *gp = _cp2(gram)
    cdef const int64_t *ip = &indptr[0]
    cdef const int32_t *xp = _ci32(indices)
    cdef const floating *dp = _cp1(data)
    cdef const floating *up = _cp2(X)
    cdef const floating *vp = _cp2(Y)
    cdef fastmf_status st
    cdef fastmf_ials_params q = p[0]
    q.interrupt = sigint_watch()
    try:
        with nogil:
            if floating is float:
                st = fastmf_ials_loss_f32(&q, ip, xp, dp, up, vp, gp, loss, err)
            else:
                st = fastmf_ials_loss_f64(&q, ip, xp, dp, up, vp, gp, loss, err)
    finally:
        sigint_unwatch(q.interrupt)
    return st


cdef fastmf_status _gram_call(const floating[:, ::1] Y, int n_threads, double[:, ::1] G):
    cdef const floating *yp = _cp2(Y)
    cdef int64_t n = Y.shape[0], k = Y.shape[1]
    cdef double *gp = &G[0, 0]
    cdef fastmf_status st
    cdef const fastmf_interrupt *flag = sigint_watch()
    try:
        with nogil:
            if floating is float:
                st = fastmf_gram_f32(yp, n, k, n_threads, flag, gp)
            else:
                st = fastmf_gram_f64(yp, n, k, n_threads, flag, gp)
    finally:
        sigint_unwatch(flag)
    return st


cdef fastmf_status _gibbs_call(const fastmf_gibbs_params *p, const int64_t[::1] indptr,
                               const int32_t[::1] indices, const floating[::1] data,
                               const floating[:, ::1] fixed, const floating[::1] fixed_bias,
                               const double[::1] mean0, const double[:, ::1] prec0,
                               const double[:, ::1] offset, floating[:, ::1] factors,
                               floating[::1] bias, double[:, :, ::1] gram, double[:, ::1] resid,
                               fastmf_error *err):
    cdef const floating *fbp = _cp1(fixed_bias)
    cdef floating *bp = _p1(bias)
    cdef const int64_t *ip = &indptr[0]
    cdef const int32_t *xp = _ci32(indices)
    cdef const floating *dp = _cp1(data)
    cdef const floating *yp = _cp2(fixed)
    cdef floating *fp = _p2(factors)
    cdef const double *mp = &mean0[0]
    cdef const double *pp = &prec0[0, 0]
    cdef const double *op = _cp2(offset)
    cdef double *gp = _d3(gram)
    cdef double *rp = _p2(resid)
    cdef fastmf_status st
    cdef fastmf_gibbs_params q = p[0]
    q.interrupt = sigint_watch()
    try:
        with nogil:
            if floating is float:
                st = fastmf_gibbs_half_sweep_f32(&q, ip, xp, dp, yp, fbp, mp, pp, op, fp, bp, gp, rp, err)
            else:
                st = fastmf_gibbs_half_sweep_f64(&q, ip, xp, dp, yp, fbp, mp, pp, op, fp, bp, gp, rp, err)
    finally:
        sigint_unwatch(q.interrupt)
    return st


cdef fastmf_status _bag_call(const fastmf_gibbs_params *p, const int64_t[::1] indptr,
                             const int32_t[::1] rows, const floating[::1] w, const double[:, :, ::1] gram,
                             double[:, ::1] resid, const double[::1] mean0, const double[:, ::1] prec0,
                             floating[:, ::1] features, fastmf_error *err):
    cdef const int64_t *ip = &indptr[0]
    cdef const int32_t *xp = _ci32(rows)
    cdef const floating *wp = _cp1(w)
    cdef const double *gp = _cd3(gram)
    cdef double *rp = _p2(resid)
    cdef floating *fp = _p2(features)
    cdef fastmf_status st
    cdef fastmf_gibbs_params q = p[0]
    q.interrupt = sigint_watch()
    try:
        with nogil:
            if floating is float:
                st = fastmf_gibbs_bag_sweep_f32(&q, ip, xp, wp, gp, rp, &mean0[0], &prec0[0, 0], fp, err)
            else:
                st = fastmf_gibbs_bag_sweep_f64(&q, ip, xp, wp, gp, rp, &mean0[0], &prec0[0, 0], fp, err)
    finally:
        sigint_unwatch(q.interrupt)
    return st


# --------------------------------------------------------------------------------- explicit ALS
def als_half_sweep(indptr, indices, data, fixed_factors, fixed_bias, factors, bias, mu, reg,
                   reg_bias=None, weighted=False, biased=True, *, n_threads=1, solver="cholesky",
                   cg_steps=3):
    """Explicit ALS update of one side, in place (NumPy twin: ``fastmf.reference.als_half_sweep``).

    For every row ``r`` of the CSR ``(indptr, indices, data)`` (rows = the side being solved,
    indices = rows of ``fixed_factors``), with :math:`z_j = [y_j, 1]` and targets
    :math:`t_j = d_j - \\mu - c_j` (:math:`c` = ``fixed_bias``) solve

    .. math::

        \\Big(\\sum_j z_j z_j^\\top + \\mathrm{diag}(\\lambda_r, \\dots, \\lambda_r, \\lambda^b_r)\\Big)
        \\begin{bmatrix} x_r \\\\ b_r \\end{bmatrix} = \\sum_j t_j z_j

    with :math:`\\lambda_r` = ``reg`` and :math:`\\lambda^b_r` = ``reg_bias`` (None: ``reg``), both
    times :math:`n_r` when ``weighted``; ``biased=False`` solves
    :math:`(\\sum_j y_j y_j^\\top + \\lambda_r I) x_r = \\sum_j d_j y_j` and ignores ``mu`` and the
    biases (which may be None). Rows without entries get zeros.

    Parameters
    ----------
    indptr : int64 array (n_rows + 1,); indices : int32 array (nnz,); data : array (nnz,)
    fixed_factors : (n_fixed, k) array; fixed_bias : (n_fixed,) array or None when not biased
    factors : (n_rows, k) array, written; bias : (n_rows,) array or None when not biased, written
    mu, reg, reg_bias : float (reg, reg_bias >= 0)
    weighted, biased : bool
    n_threads : int >= 1
        OpenMP threads; the result is bit-identical for every value.
    solver : {"cholesky", "cg"}
        Exact Cholesky solve, or ``cg_steps`` conjugate-gradient steps warm-started from the current
        ``factors[r]``/``bias[r]`` (cheaper than forming the system when ``4 * cg_steps < k``).
    cg_steps : int >= 1

    All float arrays share one dtype (float32 or float64) and are C-contiguous.

    Raises
    ------
    numpy.linalg.LinAlgError
        A row's system is not positive definite (only possible with reg = 0); names the row.
    IndexError, ValueError, FloatingPointError, MemoryError
        See the module docstring.
    """
    what = "als_half_sweep: "
    dt = _float_dtype(factors, "factors", what)
    biased = bool(biased)
    n_rows = factors.shape[0] if factors.ndim == 2 else -1
    _check_factors(fixed_factors, factors, dt, what)
    _check_csr(indptr, indices, data, factors.shape[0], dt, what)
    if biased:
        if fixed_bias is None or bias is None:
            raise ValueError(f"{what}fixed_bias and bias are required when biased=True")
        _array(fixed_bias, "fixed_bias", dt, 1, what=what)
        _array(bias, "bias", dt, 1, writeable=True, what=what)
        if fixed_bias.shape[0] != fixed_factors.shape[0]:
            raise ValueError(f"{what}fixed_bias must have one entry per row of fixed_factors "
                             f"({fixed_factors.shape[0]}), got {fixed_bias.shape[0]}")
        if bias.shape[0] != n_rows:
            raise ValueError(f"{what}bias must have one entry per row of factors ({n_rows}), "
                             f"got {bias.shape[0]}")
    else:
        fixed_bias = bias = None
    _no_overlap([(factors, fixed_factors, "factors and fixed_factors"),
                 (factors, fixed_bias, "factors and fixed_bias"), (bias, fixed_bias, "bias and fixed_bias"),
                 (bias, fixed_factors, "bias and fixed_factors"), (bias, factors, "bias and factors")], what)
    cdef fastmf_als_params p
    p.n_rows = n_rows
    p.n_fixed = fixed_factors.shape[0]
    p.n_factors = factors.shape[1]
    p.nnz = indices.shape[0]
    p.mu = check_real(mu, "mu", what=what) if biased else 0.0
    p.reg = check_real(reg, "reg", 0.0, what=what)
    p.reg_bias = p.reg if reg_bias is None else check_real(reg_bias, "reg_bias", 0.0, what=what)
    p.weighted = 1 if weighted else 0
    p.biased = 1 if biased else 0
    p.solver = check_option(solver, "solver", SOLVERS, what=what)
    p.cg_steps = check_int(cg_steps, "cg_steps", 1, MAX_CG_STEPS, what=what)
    p.n_threads = check_threads(n_threads, what=what)
    cdef fastmf_error err
    cdef fastmf_status st
    if dt == np.float32:
        st = _als_call[float](&p, indptr, indices, data, fixed_factors, fixed_bias, factors, bias,
                              &err)
    else:
        st = _als_call[double](&p, indptr, indices, data, fixed_factors, fixed_bias, factors, bias,
                               &err)
    if st != FASTMF_OK:
        hint = (f"the normal equations are not positive definite (reg={reg!r}; with reg=0 a row "
                f"with fewer ratings than factors has a singular system); use reg > 0")
        _raise(err, what, indptr, indices, data, p.n_fixed, hint)


# ----------------------------------------------------------------------------------------- Gram
def gram(Y, n_threads=1):
    """``Y.T @ Y`` as a (k, k) float64 array, accumulated in float64 (``Y``: C-contiguous float32 or
    float64 (n, k) array). Deterministic: the same bits for every ``n_threads``."""
    what = "gram: "
    dt = _float_dtype(Y, "Y", what)
    _array(Y, "Y", dt, 2, what=what)
    if Y.shape[1] < 1:
        raise ValueError(f"{what}Y needs at least one column, got shape {Y.shape}")
    nt = check_threads(n_threads, what=what)
    G = np.empty((Y.shape[1], Y.shape[1]), dtype=np.float64)
    cdef fastmf_status st
    if dt == np.float32:
        st = _gram_call[float](Y, nt, G)
    else:
        st = _gram_call[double](Y, nt, G)
    if st == FASTMF_ERR_NOMEM:
        raise MemoryError(f"{what}cannot allocate the partial sums")
    if st != FASTMF_OK:
        raise RuntimeError(f"{what}kernel failed with status {int(st)}")
    return G


# --------------------------------------------------------------------------------- implicit ALS
cdef _ials_params(fastmf_ials_params *p, indptr, indices, data, fixed, rows, fixed_name, rows_name,
                  reg, alpha, scaling, eps, reg_nu, reg_alpha0, n_threads, gram, what):
    """Validate the common iALS arguments into p; return the dtype."""
    dt = _float_dtype(rows, rows_name, what)
    _check_factors(fixed, rows, dt, what, fixed_name, rows_name)
    _check_csr(indptr, indices, data, rows.shape[0], dt, what)
    k = rows.shape[1]
    if gram is not None:
        _array(gram, "gram", np.float64, 2, what=what)
        if gram.shape != (k, k):
            raise ValueError(f"{what}gram must have shape ({k}, {k}) (fixed_factors.T @ fixed_factors), "
                             f"got {gram.shape}")
    p.n_rows = rows.shape[0]
    p.n_fixed = fixed.shape[0]
    p.n_factors = k
    p.nnz = indices.shape[0]
    p.reg = check_real(reg, "reg", 0.0, what=what)
    p.alpha = check_real(alpha, "alpha", 0.0, what=what)
    p.scaling = check_option(scaling, "scaling", SCALINGS, what=what)
    p.eps = check_real(eps, "eps", 0.0, low_open=True, what=what)
    p.reg_nu = check_real(reg_nu, "reg_nu", 0.0, what=what)
    p.reg_alpha0 = check_real(reg_alpha0, "reg_alpha0", 0.0, what=what)
    p.n_threads = check_threads(n_threads, what=what)
    return dt


def ials_half_sweep(indptr, indices, data, fixed_factors, factors, reg, alpha, scaling="linear",
                    eps=1.0, *, reg_nu=0.0, reg_alpha0=1.0, n_threads=1, solver="cg", cg_steps=3,
                    gram=None, block_size=32):
    """Implicit ALS (Hu, Koren & Volinsky 2008) update of one side, in place (NumPy twin:
    ``fastmf.reference.ials_half_sweep``, which is exact: pass ``solver="cholesky"`` to match it).

    For every row ``r``, with :math:`G = Y^\\top Y` over all rows of ``fixed_factors``, confidences
    :math:`c_j = 1 + \\alpha d_j` (``"linear"``) or :math:`1 + \\alpha \\log(1 + d_j/\\varepsilon)`
    (``"log"``) and preferences :math:`p_j = [d_j > 0]` on the stored entries:

    .. math::

        \\big(G + \\textstyle\\sum_j (c_j - 1) y_j y_j^\\top + \\lambda_r I\\big) x_r
        = \\textstyle\\sum_j c_j p_j y_j,
        \\qquad \\lambda_r = \\mathrm{reg}\\,(n_r^+ + \\alpha_0 n_{\\text{fixed}})^{\\nu}

    (frequency-scaled regularisation of Rendle et al. 2022; :math:`n_r^+` = entries of row r with
    value > 0, :math:`\\nu` = ``reg_nu``, :math:`\\alpha_0` = ``reg_alpha0``; ``reg_nu=0`` is plain
    ``reg``). Rows without entries get zeros.

    Parameters
    ----------
    indptr, indices, data : the CSR (int64, int32, float32/float64)
    fixed_factors : (n_fixed, k) array; factors : (n_rows, k) array of the same dtype, written
    reg, alpha : float >= 0; scaling : {"linear", "log"}; eps : float > 0 (log scaling)
    reg_nu, reg_alpha0 : float >= 0
    n_threads : int >= 1 (bit-identical results for every value)
    solver : {"cg", "cholesky"}
        ``"cg"`` (default): ``cg_steps`` conjugate-gradient steps warm-started from the current
        ``factors[r]``, matrix-free (:math:`Av = Gv + \\sum_j (c_j - 1)(y_j^\\top v) y_j + \\lambda_r v`,
        the sum over the row's entries in the factors' dtype, the rest in float64);
        ``"cholesky"``: exact solve in float64; ``"ialspp"``: iALS++ (Rendle, Krichene, Zhang &
        Koren 2021), one pass of exact block steps over ``block_size`` coordinates at a time,
        starting from the current ``factors[r]`` (NumPy twin:
        ``fastmf.reference.ialspp_half_sweep``; csrc/ialspp.c).
    cg_steps : int >= 1
        CG steps (``solver="cg"`` only).
    block_size : int in [1, 1024]
        iALS++ block size b (``solver="ialspp"`` only; b >= k is one block: the exact solve).
    gram : (k, k) float64 array or None
        ``fixed_factors.T @ fixed_factors`` when the caller has it (see :func:`gram`); None computes
        it here.
    """
    what = "ials_half_sweep: "
    cdef fastmf_ials_params p
    dt = _ials_params(&p, indptr, indices, data, fixed_factors, factors, "fixed_factors", "factors",
                      reg, alpha, scaling, eps, reg_nu, reg_alpha0, n_threads, gram, what)
    _no_overlap([(factors, fixed_factors, "factors and fixed_factors"),
                 (factors, gram, "factors and gram")], what)
    cdef int64_t bs = 0
    if solver == IALSPP:
        bs = check_int(block_size, "block_size", 1, MAX_BLOCK_SIZE, what=what)
        p.solver = FASTMF_ALS_CG   # unused by the iALS++ kernel
    else:
        p.solver = check_option(solver, "solver", {**SOLVERS, IALSPP: None}, what=what)
    p.cg_steps = check_int(cg_steps, "cg_steps", 1, MAX_CG_STEPS, what=what)
    cdef fastmf_error err
    cdef fastmf_status st
    if dt == np.float32:
        st = _ials_call[float](&p, indptr, indices, data, fixed_factors, gram, factors,
                               &err, bs)
    else:
        st = _ials_call[double](&p, indptr, indices, data, fixed_factors, gram, factors,
                                &err, bs)
    if st != FASTMF_OK:
        hint = (f"the system is not positive definite (reg={reg!r}, alpha={alpha!r}); use reg > 0 "
                f"and non-negative values")
        _raise(err, what, indptr, indices, data, p.n_fixed, hint)


def ials_loss(indptr, indices, data, user_factors, item_factors, reg, alpha, scaling="linear",
              eps=1.0, *, reg_nu=0.0, reg_alpha0=1.0, n_threads=1, gram=None):
    """The implicit-ALS loss over ALL (user, item) pairs without materialising them (NumPy twin,
    dense: ``fastmf.reference.ials_objective``):

    .. math::

        L = \\sum_{u,j} c_{uj} (p_{uj} - x_u^\\top y_j)^2
            + \\sum_u \\lambda_u \\lVert x_u\\rVert^2 + \\sum_j \\lambda_j \\lVert y_j\\rVert^2
          = \\sum_u x_u^\\top G x_u
            + \\sum_{(u,j)\\ \\text{stored}} \\big[c_{uj}(p_{uj} - s_{uj})^2 - s_{uj}^2\\big] + \\dots

    with :math:`G = Y^\\top Y`, :math:`s_{uj} = x_u^\\top y_j`, :math:`c = 1, p = 0` on pairs not
    stored, :math:`\\lambda_u = \\mathrm{reg}(n_u^+ + \\alpha_0 n_{\\text{items}})^\\nu` and
    :math:`\\lambda_j = \\mathrm{reg}(n_j^+ + \\alpha_0 n_{\\text{users}})^\\nu`. The CSR rows are
    users; ``gram`` may pass ``item_factors.T @ item_factors``. Returns a float (accumulated in
    float64, deterministic for every ``n_threads``).
    """
    what = "ials_loss: "
    cdef fastmf_ials_params p
    dt = _ials_params(&p, indptr, indices, data, item_factors, user_factors, "item_factors",
                      "user_factors", reg, alpha, scaling, eps, reg_nu, reg_alpha0, n_threads, gram,
                      what)
    p.solver = FASTMF_ALS_CG
    p.cg_steps = 0
    cdef fastmf_error err
    cdef double loss = 0.0
    cdef fastmf_status st
    if dt == np.float32:
        st = _loss_call[float](&p, indptr, indices, data, user_factors, item_factors, gram, &loss,
                               &err)
    else:
        st = _loss_call[double](&p, indptr, indices, data, user_factors, item_factors, gram, &loss,
                                &err)
    if st != FASTMF_OK:
        _raise(err, what, indptr, indices, data, p.n_fixed, "")
    return float(loss)


# ------------------------------------------------------------------------------ Gibbs (Bayesian MF)
def _check_biased_pair(fixed_bias, bias, fixed_factors, n_rows, dt, what):
    if fixed_bias is None or bias is None:
        raise ValueError(f"{what}fixed_bias and bias are required when biased=True")
    _array(fixed_bias, "fixed_bias", dt, 1, what=what)
    _array(bias, "bias", dt, 1, writeable=True, what=what)
    if fixed_bias.shape[0] != fixed_factors.shape[0]:
        raise ValueError(f"{what}fixed_bias must have one entry per row of fixed_factors "
                         f"({fixed_factors.shape[0]}), got {fixed_bias.shape[0]}")
    if bias.shape[0] != n_rows:
        raise ValueError(f"{what}bias must have one entry per row of factors ({n_rows}), "
                         f"got {bias.shape[0]}")


def gibbs_half_sweep(indptr, indices, data, fixed_factors, fixed_bias, factors, bias, mu, alpha,
                     prior_mean, prior_prec, seed, stream, biased=True, *, n_threads=1, draw=True,
                     prior_offset=None, gram_out=None, resid_out=None):
    """Gibbs draw of every row of one side of Bayesian MF, in place (NumPy twin:
    ``fastmf.reference.bayes.gibbs_half_sweep``, given :func:`gibbs_normals` as its normals).

    Row ``r`` (entries of the CSR as in :func:`als_half_sweep`) becomes
    :math:`\\theta_r = [x_r, b_r] \\sim N(m_r, P_r^{-1})` with
    :math:`P_r = \\Lambda + \\alpha \\sum_j z_j z_j^\\top` and
    :math:`P_r m_r = \\Lambda \\mu_0 + \\alpha \\sum_j t_j z_j`, drawn as
    :math:`m_r + U_r^{-1}\\varepsilon_r` (:math:`P_r = U_r^\\top U_r`) with the normals of the stream
    ``(seed, stream, r + 1)`` (``draw=False``: the conditional mean :math:`m_r` itself, the fold-in
    of a new row; seed and stream are then unused). ``prior_mean`` (m,) and ``prior_prec`` (m, m) are float64,
    m = k + 1 (bias last; m = k when ``biased=False``). ``alpha`` > 0 is the noise precision.
    Bit-identical for every ``n_threads``.

    Optional: ``prior_offset`` (n_rows, m) float64 shifts row r's prior mean by ``prior_offset[r]``
    (the implicit-feature part of an effective row); ``gram_out`` (n_rows, m, m) and ``resid_out``
    (n_rows, m) float64 receive :math:`G_r = \\sum_j z_j z_j^\\top` and
    :math:`h_r = \\sum_j t_j z_j - G_r \\theta_r` (after the draw), what :func:`gibbs_bag_sweep`
    needs; ``resid_out`` needs ``gram_out``.

    Raises
    ------
    numpy.linalg.LinAlgError
        A row's precision is not positive definite (a prior precision that is not); names the row.
    IndexError, ValueError, FloatingPointError, MemoryError
        See the module docstring.
    """
    what = "gibbs_half_sweep: "
    dt = _float_dtype(factors, "factors", what)
    biased = bool(biased)
    _check_factors(fixed_factors, factors, dt, what)
    n_rows = factors.shape[0]
    _check_csr(indptr, indices, data, n_rows, dt, what)
    if biased:
        _check_biased_pair(fixed_bias, bias, fixed_factors, n_rows, dt, what)
    else:
        fixed_bias = bias = None
    m = factors.shape[1] + (1 if biased else 0)
    _array(prior_mean, "prior_mean", np.float64, 1, what=what)
    _array(prior_prec, "prior_prec", np.float64, 2, what=what)
    if prior_mean.shape != (m,) or prior_prec.shape != (m, m):
        raise ValueError(f"{what}prior_mean must have shape ({m},) and prior_prec ({m}, {m}) "
                         f"(k + 1 with the bias last, k when unbiased), got {prior_mean.shape} and "
                         f"{prior_prec.shape}")
    for name, arr, shape in (("prior_offset", prior_offset, (n_rows, m)), ("gram_out", gram_out, (n_rows, m, m)),
                             ("resid_out", resid_out, (n_rows, m))):
        if arr is not None:
            _array(arr, name, np.float64, len(shape), writeable=name != "prior_offset", what=what)
            if arr.shape != shape:
                raise ValueError(f"{what}{name} must have shape {shape}, got {arr.shape}")
    if resid_out is not None and gram_out is None:
        raise ValueError(f"{what}resid_out needs gram_out")
    _no_overlap([(factors, fixed_factors, "factors and fixed_factors"),
                 (factors, fixed_bias, "factors and fixed_bias"), (bias, fixed_bias, "bias and fixed_bias"),
                 (bias, fixed_factors, "bias and fixed_factors"), (bias, factors, "bias and factors"),
                 (gram_out, resid_out, "gram_out and resid_out")], what)
    cdef fastmf_gibbs_params p
    p.n_rows = n_rows
    p.n_fixed = fixed_factors.shape[0]
    p.n_factors = factors.shape[1]
    p.nnz = indices.shape[0]
    p.mu = check_real(mu, "mu", what=what) if biased else 0.0
    p.alpha = check_real(alpha, "alpha", 0.0, what=what)
    if not p.alpha > 0.0:
        raise ValueError(f"{what}alpha (the noise precision) must be > 0, got {alpha!r}")
    p.biased = 1 if biased else 0
    p.draw = 1 if draw else 0
    p.n_threads = check_threads(n_threads, what=what)
    p.seed = check_int(seed, "seed", 0, (1 << 64) - 1, what=what)
    p.stream = check_int(stream, "stream", 0, (1 << 64) - 1, what=what)
    cdef fastmf_error err
    cdef fastmf_status st
    if dt == np.float32:
        st = _gibbs_call[float](&p, indptr, indices, data, fixed_factors, fixed_bias, prior_mean,
                                prior_prec, prior_offset, factors, bias, gram_out, resid_out, &err)
    else:
        st = _gibbs_call[double](&p, indptr, indices, data, fixed_factors, fixed_bias, prior_mean,
                                 prior_prec, prior_offset, factors, bias, gram_out, resid_out, &err)
    if st != FASTMF_OK:
        _raise(err, what, indptr, indices, data, p.n_fixed,
               "its posterior precision is not positive definite (is prior_prec?)")


def gibbs_normals(n_rows, m, seed, stream):
    """The (n_rows, m) float64 standard normals :func:`gibbs_half_sweep` draws for its rows (row ``r``:
    the stream ``(seed, stream, r + 1)``); twin ``fastmf.reference.bayes.row_normals``."""
    what = "gibbs_normals: "
    cdef int64_t n = check_int(n_rows, "n_rows", 0, None, what=what)
    cdef int64_t mm = check_int(m, "m", 1, 1 << 20, what=what)
    cdef uint64_t s = check_int(seed, "seed", 0, (1 << 64) - 1, what=what)
    cdef uint64_t t = check_int(stream, "stream", 0, (1 << 64) - 1, what=what)
    out = np.empty((n, mm), dtype=np.float64)
    cdef double[:, ::1] o = out
    if n > 0:
        with nogil:
            fastmf_gibbs_normals(&o[0, 0], n, mm, s, t)
    return out


def gibbs_bag_sweep(bag_indptr, bag_rows, bag_w, gram, resid, prior_mean, prior_prec, features, alpha,
                    seed, stream, biased=True, *, draw=True):
    """Gibbs draw of the implicit-feature rows ``features`` (n_features, m) one after another, in place,
    updating ``resid`` (twin: ``fastmf.reference.bayes.gibbs_bag_sweep``; the math is in csrc/als.h).

    Feature ``j`` is held by the side rows ``bag_rows[bag_indptr[j]:bag_indptr[j + 1]]`` with
    weights ``bag_w`` (int64 / int32 / the features' dtype); ``gram`` (n_side, m, m) and ``resid``
    (n_side, m) float64 are :func:`gibbs_half_sweep`'s ``gram_out`` and ``resid_out`` for the current
    rows of that side; ``resid`` is kept equal to the residual moments as the features change.
    Feature ``j`` draws its normals from the stream ``(seed, stream, j + 1)``. Serial."""
    what = "gibbs_bag_sweep: "
    dt = _float_dtype(features, "features", what)
    _array(features, "features", dt, 2, writeable=True, what=what)
    n_feat, m = features.shape
    _array(gram, "gram", np.float64, 3, what=what)
    _array(resid, "resid", np.float64, 2, writeable=True, what=what)
    if gram.shape[1:] != (m, m) or resid.shape != (gram.shape[0], m):
        raise ValueError(f"{what}gram must have shape (n_side, {m}, {m}) and resid (n_side, {m}), got "
                         f"{gram.shape} and {resid.shape}")
    _check_csr(bag_indptr, bag_rows, bag_w, n_feat, dt, what)
    _array(prior_mean, "prior_mean", np.float64, 1, what=what)
    _array(prior_prec, "prior_prec", np.float64, 2, what=what)
    if prior_mean.shape != (m,) or prior_prec.shape != (m, m):
        raise ValueError(f"{what}prior_mean must have shape ({m},) and prior_prec ({m}, {m})")
    k = m - (1 if biased else 0)
    if k < 1:
        raise ValueError(f"{what}features need at least {2 if biased else 1} columns, got {m}")
    cdef fastmf_gibbs_params p
    p.n_rows = n_feat
    p.n_fixed = gram.shape[0]
    p.n_factors = k
    p.nnz = bag_rows.shape[0]
    p.mu = 0.0
    p.alpha = check_real(alpha, "alpha", 0.0, what=what)
    if not p.alpha > 0.0:
        raise ValueError(f"{what}alpha (the noise precision) must be > 0, got {alpha!r}")
    p.biased = 1 if biased else 0
    p.draw = 1 if draw else 0
    p.n_threads = 1
    p.seed = check_int(seed, "seed", 0, (1 << 64) - 1, what=what)
    p.stream = check_int(stream, "stream", 0, (1 << 64) - 1, what=what)
    cdef fastmf_error err
    cdef fastmf_status st
    if dt == np.float32:
        st = _bag_call[float](&p, bag_indptr, bag_rows, bag_w, gram, resid, prior_mean, prior_prec, features, &err)
    else:
        st = _bag_call[double](&p, bag_indptr, bag_rows, bag_w, gram, resid, prior_mean, prior_prec, features, &err)
    if st != FASTMF_OK:
        if err.which == FASTMF_ALS_BAD_INDEX:
            raise IndexError(f"{what}bag_rows[{err.pos}] = {int(bag_rows[err.pos])} is outside "
                             f"[0, {gram.shape[0]}) (the side's rows)")
        if err.which == FASTMF_ALS_BAD_DATA:
            raise ValueError(f"{what}bag_w[{err.pos}] is not finite")
        if err.which == FASTMF_ALS_BAD_FIXED:
            raise ValueError(f"{what}row {err.pos} of resid holds a non-finite value")
        if err.which == FASTMF_ALS_BAD_START:
            raise ValueError(f"{what}row {err.pos} of features holds a non-finite value")
        if err.which == FASTMF_ALS_BAD_SYSTEM:
            raise np.linalg.LinAlgError(f"{what}feature {err.pos}: its posterior precision is not positive "
                                        f"definite (is prior_prec?)")
        if err.which == FASTMF_ALS_BAD_RESULT:
            raise FloatingPointError(f"{what}the draw of feature {err.pos} is not finite")
        _raise(err, what, bag_indptr, bag_rows, bag_w, gram.shape[0], "not positive definite")


cdef fastmf_status _bag_sums_call(const int64_t[::1] indptr, const int32_t[::1] indices,
                                  const floating[:, ::1] rows, const double[::1] weights, int n_threads,
                                  double[:, ::1] out, fastmf_error *err):
    cdef const int64_t *ip = &indptr[0]
    cdef const int32_t *xp = _ci32(indices)
    cdef const floating *rp = _cp2(rows)
    cdef int64_t n_rows = indptr.shape[0] - 1, n_feat = rows.shape[0], m = rows.shape[1]
    cdef double *op = &out[0, 0] if out.shape[0] > 0 else NULL
    cdef const double *wp = &weights[0] if weights.shape[0] > 0 else NULL
    cdef fastmf_status st
    if n_rows == 0:
        return FASTMF_OK
    with nogil:
        if floating is float:
            st = fastmf_bag_sums_f32(ip, xp, n_rows, rp, n_feat, m, wp, n_threads, op, err)
        else:
            st = fastmf_bag_sums_f64(ip, xp, n_rows, rp, n_feat, m, wp, n_threads, op, err)
    return st


def bag_sums(indptr, indices, rows, weights, *, n_threads=1):
    """``out[r] = weights[r] * rows[indices[indptr[r]:indptr[r+1]]].sum(0)`` as float64 (n_rows, m): the
    implicit offsets of a side (twin: ``fastmf.reference.bayes.bag_sums``)."""
    what = "bag_sums: "
    dt = _float_dtype(rows, "rows", what)
    _array(rows, "rows", dt, 2, what=what)
    _array(indptr, "indptr", np.int64, 1, what=what)
    _array(indices, "indices", np.int32, 1, what=what)
    _array(weights, "weights", np.float64, 1, what=what)
    if indptr.shape[0] < 1 or weights.shape[0] != indptr.shape[0] - 1 or indptr[indptr.shape[0] - 1] != indices.shape[0]:
        raise ValueError(f"{what}weights must have len(indptr) - 1 entries and indptr[-1] must be "
                         f"len(indices)")
    out = np.zeros((indptr.shape[0] - 1, rows.shape[1]))
    cdef fastmf_error err
    cdef fastmf_status st
    nt = check_threads(n_threads, what=what)
    if dt == np.float32:
        st = _bag_sums_call[float](indptr, indices, rows, weights, nt, out, &err)
    else:
        st = _bag_sums_call[double](indptr, indices, rows, weights, nt, out, &err)
    if st != FASTMF_OK:
        _raise(err, what, indptr, indices, weights, rows.shape[0], "")
    return out
