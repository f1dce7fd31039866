# cython: language_level=3
"""Thin wrapper over csrc/als_side.c: the per-rating loops of explicit ALS with jointly learned
side-feature factors (``MatrixFactorization(solver="als", side="joint")``).

Private. Conventions: the side being solved has its ratings as a CSR ``(indptr int64, indices
int32, data)`` (rows = that side, indices = rows of ``fixed``), its features as ``feat = (indptr
int64, indices int32, values float64)`` (rows -> features) and, for :func:`als_side_features`, the
same entries as ``feat_t`` (features -> rows; :func:`fastmf.models.side.feature_csr` of the
transpose). Factor and bias arrays share the dtype of ``data`` (float32 or float64, C-contiguous);
the arithmetic is float64. Non-finite inputs raise ValueError here; the kernel's status becomes
IndexError (an index out of range), ``numpy.linalg.LinAlgError`` (a feature's system not positive
definite: reg_features = 0), FloatingPointError, MemoryError or KeyboardInterrupt. Both calls are
bit-identical for every ``n_threads``. NumPy twins: ``fastmf.reference.als_side_offsets`` and
``als_side_features``.
"""

import numpy as np

from fastmf._validation import check_kernel_array, check_real, check_threads

from libc.stdint cimport int32_t, int64_t
from fastmf._common cimport (fastmf_status, fastmf_error, fastmf_interrupt, floating, error_type,
                             unexpected, sigint_watch, sigint_unwatch, FASTMF_OK, FASTMF_ERR_INDEX,
                             FASTMF_ERR_NOT_PD, FASTMF_ERR_NOMEM)


cdef extern from "als_side.h":
    enum:
        FASTMF_ALS_SIDE_BAD_ARGS
        FASTMF_ALS_SIDE_BAD_INDPTR
        FASTMF_ALS_SIDE_BAD_INDEX
        FASTMF_ALS_SIDE_BAD_FEAT_INDPTR
        FASTMF_ALS_SIDE_BAD_FEAT_INDEX
        FASTMF_ALS_SIDE_BAD_T_INDPTR
        FASTMF_ALS_SIDE_BAD_T_INDEX
        FASTMF_ALS_SIDE_BAD_SYSTEM
        FASTMF_ALS_SIDE_BAD_RESULT

    ctypedef struct fastmf_als_side_params:
        int64_t n_rows
        int64_t n_fixed
        int64_t n_factors
        int64_t nnz
        int64_t n_features
        int64_t feat_nnz
        double mu
        double reg_features
        int weighted
        int biased
        int n_threads
        const fastmf_interrupt *interrupt

    fastmf_status fastmf_als_side_offsets_f32(const fastmf_als_side_params *p, const int64_t *indptr,
                                              const int32_t *indices, const float *data, const float *fixed,
                                              const int64_t *f_indptr, const int32_t *f_indices,
                                              const double *f_values, const float *Z, const float *w,
                                              float *out, fastmf_error *err) nogil
    fastmf_status fastmf_als_side_offsets_f64(const fastmf_als_side_params *p, const int64_t *indptr,
                                              const int32_t *indices, const double *data, const double *fixed,
                                              const int64_t *f_indptr, const int32_t *f_indices,
                                              const double *f_values, const double *Z, const double *w,
                                              double *out, fastmf_error *err) nogil
    fastmf_status fastmf_als_side_features_f32(const fastmf_als_side_params *p, const int64_t *indptr,
                                               const int32_t *indices, const float *data, const float *fixed,
                                               const float *fixed_bias, const float *free, const float *free_bias,
                                               const int64_t *f_indptr, const int32_t *f_indices,
                                               const double *f_values, const int64_t *t_indptr,
                                               const int32_t *t_indices, const double *t_values, float *Z,
                                               float *w, fastmf_error *err) nogil
    fastmf_status fastmf_als_side_features_f64(const fastmf_als_side_params *p, const int64_t *indptr,
                                               const int32_t *indices, const double *data, const double *fixed,
                                               const double *fixed_bias, const double *free,
                                               const double *free_bias, const int64_t *f_indptr,
                                               const int32_t *f_indices, const double *f_values,
                                               const int64_t *t_indptr, const int32_t *t_indices,
                                               const double *t_values, double *Z, double *w,
                                               fastmf_error *err) nogil


_array = check_kernel_array


cdef inline const floating *_cp1(const floating[::1] a) noexcept nogil:
    return &a[0] if a is not None and a.shape[0] > 0 else NULL


cdef inline floating *_p1(floating[::1] a) noexcept nogil:
    return &a[0] if a is not None and a.shape[0] > 0 else NULL


cdef inline const floating *_cp2(const floating[:, ::1] a) noexcept nogil:
    return &a[0, 0] if a is not None and a.shape[0] > 0 and a.shape[1] > 0 else NULL


cdef inline floating *_p2(floating[:, ::1] a) noexcept nogil:
    return &a[0, 0] if a is not None and a.shape[0] > 0 and a.shape[1] > 0 else NULL


cdef inline const int64_t *_ci64(const int64_t[::1] a) noexcept nogil:
    return &a[0] if a is not None and a.shape[0] > 0 else NULL


cdef inline const int32_t *_ci32(const int32_t[::1] a) noexcept nogil:
    return &a[0] if a is not None and a.shape[0] > 0 else NULL


cdef inline const double *_cd1(const double[::1] a) noexcept nogil:
    return &a[0] if a is not None and a.shape[0] > 0 else NULL


def _finite(x, name, what):
    if x is not None and x.size and not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1))[0])
        raise ValueError(f"{what}{name} holds a non-finite value (row {bad})")


def _feature_csr(triple, name, n_rows, what):
    """A feature CSR ``(indptr int64, indices int32, values float64)`` over ``n_rows`` rows."""
    if not isinstance(triple, tuple) or len(triple) != 3:
        raise ValueError(f"{what}{name} must be a tuple (indptr, indices, values)")
    for arr, part, dt in zip(triple, ("indptr", "indices", "values"), (np.int64, np.int32, np.float64)):
        _array(arr, f"{name} {part}", dt, 1, what=what)
    if triple[0].shape[0] != n_rows + 1 or triple[1].shape[0] != triple[2].shape[0]:
        raise ValueError(f"{what}{name} needs {n_rows} + 1 row pointers and one value per index, got "
                         f"{triple[0].shape[0]}, {triple[1].shape[0]}, {triple[2].shape[0]}")


def _check(what, indptr, indices, data, fixed, feat, Z, w, biased, n_rows):
    """Shapes, dtypes and finiteness of the arguments both kernels take; returns (dtype, k, n_features)."""
    if not isinstance(Z, np.ndarray) or Z.dtype not in (np.float32, np.float64):
        raise ValueError(f"{what}Z must be a float32 or float64 numpy.ndarray")
    dt = Z.dtype
    _array(Z, "Z", dt, 2, writeable=True, what=what)
    n_features, k = Z.shape
    if k < 1:
        raise ValueError(f"{what}Z needs at least one column, got shape {Z.shape}")
    _array(indptr, "indptr", np.int64, 1, what=what)
    _array(indices, "indices", np.int32, 1, what=what)
    _array(data, "data", dt, 1, what=what)
    _array(fixed, "fixed", dt, 2, what=what)
    if indptr.shape[0] != n_rows + 1 or indices.shape[0] != data.shape[0]:
        raise ValueError(f"{what}the ratings CSR needs n_rows + 1 = {n_rows + 1} row pointers and one "
                         f"value per index, got {indptr.shape[0]}, {indices.shape[0]}, {data.shape[0]}")
    if fixed.shape[1] != k:
        raise ValueError(f"{what}fixed has {fixed.shape[1]} columns, Z has {k}")
    _feature_csr(feat, "feat", n_rows, what)
    if biased:
        if w is None:
            raise ValueError(f"{what}w is required when biased=True")
        _array(w, "w", dt, 1, writeable=True, what=what)
        if w.shape[0] != n_features:
            raise ValueError(f"{what}w must have one entry per row of Z ({n_features}), got {w.shape[0]}")
    for name, x in (("data", data), ("fixed", fixed), ("feat values", feat[2]), ("Z", Z), ("w", w if biased else None)):
        _finite(x, name, what)
    return dt, k, n_features


_MESSAGES = {
    FASTMF_ALS_SIDE_BAD_INDPTR: "indptr must rise from 0 to len(indices); indptr[{pos}] breaks it",
    FASTMF_ALS_SIDE_BAD_FEAT_INDPTR: "the feature indptr must rise from 0 to its number of entries; entry {pos} breaks it",
    FASTMF_ALS_SIDE_BAD_T_INDPTR: ("the transposed feature indptr must rise from 0 to its number of entries (the "
                                   "same as feat's); entry {pos} breaks it"),
    FASTMF_ALS_SIDE_BAD_INDEX: "indices[{pos}] = {index} is outside [0, {n_fixed}) (the fixed rows)",
    FASTMF_ALS_SIDE_BAD_FEAT_INDEX: "feature entry {pos} names feature {feature}, outside [0, {n_features})",
    FASTMF_ALS_SIDE_BAD_T_INDEX: "transposed feature entry {pos} names row {row}, outside [0, {n_rows})",
    FASTMF_ALS_SIDE_BAD_SYSTEM: "the system of feature {pos} is not positive definite; use reg_features > 0",
    FASTMF_ALS_SIDE_BAD_RESULT: "the solution of feature {pos} is not finite (overflow); use a larger reg_features",
}


def _raise(fastmf_error err, what, indices, feat, feat_t, n_fixed, n_rows, n_features):
    exc = error_type(err.status)
    if err.status == FASTMF_ERR_NOMEM:
        raise exc(f"{what}cannot allocate the residuals / scratch")
    template = _MESSAGES.get(err.which)
    if template is None:
        raise unexpected(what, err)
    pos = err.pos
    at = lambda arr: int(arr[pos]) if arr is not None and 0 <= pos < arr.shape[0] else None
    raise exc(what + template.format(pos=pos, index=at(indices), feature=at(feat[1]),
                                     row=at(None if feat_t is None else feat_t[1]), n_fixed=n_fixed,
                                     n_rows=n_rows, n_features=n_features))


cdef fastmf_status _offsets_call(fastmf_als_side_params *p, const int64_t[::1] indptr, const int32_t[::1] indices,
                                 const floating[::1] data, const floating[:, ::1] fixed, const int64_t[::1] fi,
                                 const int32_t[::1] fj, const double[::1] fv, const floating[:, ::1] Z,
                                 const floating[::1] w, floating[::1] out, fastmf_error *err):
    cdef fastmf_status st
    p.interrupt = sigint_watch()
    try:
        with nogil:
            if floating is float:
                st = fastmf_als_side_offsets_f32(p, &indptr[0], _ci32(indices), _cp1(data), _cp2(fixed), &fi[0],
                                                 _ci32(fj), _cd1(fv), _cp2(Z), _cp1(w), _p1(out), err)
            else:
                st = fastmf_als_side_offsets_f64(p, &indptr[0], _ci32(indices), _cp1(data), _cp2(fixed), &fi[0],
                                                 _ci32(fj), _cd1(fv), _cp2(Z), _cp1(w), _p1(out), err)
    finally:
        sigint_unwatch(p.interrupt)
    return st


def als_side_offsets(indptr, indices, data, fixed, feat, Z, w, biased=True, *, n_threads=1):
    """``out[e] = data[e] - fixed[j] . f_r - fb_r`` for every rating entry ``e = (r, j)``, with the
    feature part :math:`f_r = \\sum_g x_{rg} z_g`, :math:`fb_r = \\sum_g x_{rg} w_g` (0 unbiased):
    the targets of the free-part solve. Returns a new array of ``data``'s dtype."""
    what = "als_side_offsets: "
    n_rows = feat[0].shape[0] - 1 if isinstance(feat, tuple) and isinstance(feat[0], np.ndarray) else -1
    dt, k, n_features = _check(what, indptr, indices, data, fixed, feat, Z, w, biased, n_rows)
    cdef fastmf_als_side_params p
    p.n_rows, p.n_fixed, p.n_factors, p.nnz = n_rows, fixed.shape[0], k, indices.shape[0]
    p.n_features, p.feat_nnz = n_features, feat[1].shape[0]
    p.mu, p.reg_features, p.weighted, p.biased = 0.0, 0.0, 0, 1 if biased else 0
    p.n_threads = check_threads(n_threads, what=what)
    out = np.empty(indices.shape[0], dtype=dt)
    wv = w if biased else None
    cdef fastmf_error err
    cdef fastmf_status st
    if dt == np.float32:
        st = _offsets_call[float](&p, indptr, indices, data, fixed, feat[0], feat[1], feat[2], Z, wv, out, &err)
    else:
        st = _offsets_call[double](&p, indptr, indices, data, fixed, feat[0], feat[1], feat[2], Z, wv, out, &err)
    if st != FASTMF_OK:
        _raise(err, what, indices, feat, None, p.n_fixed, n_rows, n_features)
    return out


cdef fastmf_status _features_call(fastmf_als_side_params *p, const int64_t[::1] indptr, const int32_t[::1] indices,
                                  const floating[::1] data, const floating[:, ::1] fixed, const floating[::1] fixed_bias,
                                  const floating[:, ::1] free, const floating[::1] free_bias,
                                  const int64_t[::1] fi, const int32_t[::1] fj, const double[::1] fv,
                                  const int64_t[::1] ti, const int32_t[::1] tj, const double[::1] tv,
                                  floating[:, ::1] Z, floating[::1] w, fastmf_error *err):
    cdef fastmf_status st
    p.interrupt = sigint_watch()
    try:
        with nogil:
            if floating is float:
                st = fastmf_als_side_features_f32(p, &indptr[0], _ci32(indices), _cp1(data), _cp2(fixed),
                                                  _cp1(fixed_bias), _cp2(free), _cp1(free_bias), &fi[0], _ci32(fj),
                                                  _cd1(fv), &ti[0], _ci32(tj), _cd1(tv), _p2(Z), _p1(w), err)
            else:
                st = fastmf_als_side_features_f64(p, &indptr[0], _ci32(indices), _cp1(data), _cp2(fixed),
                                                  _cp1(fixed_bias), _cp2(free), _cp1(free_bias), &fi[0], _ci32(fj),
                                                  _cd1(fv), &ti[0], _ci32(tj), _cd1(tv), _p2(Z), _p1(w), err)
    finally:
        sigint_unwatch(p.interrupt)
    return st


def als_side_features(indptr, indices, data, fixed, fixed_bias, free, free_bias, mu, feat, feat_t, Z, w,
                      reg_features, weighted=True, biased=True, *, n_threads=1):
    """One Gauss-Seidel sweep over the feature rows ``[Z[g], w[g]]`` (g in index order), each set to
    the exact minimiser of the joint objective with everything else fixed (csrc/als_side.c), in
    place. ``fixed`` / ``fixed_bias``: the other side's effective rows; ``free`` / ``free_bias``:
    this side's free parts; ``feat_t``: the transpose of ``feat``. The penalty of feature g is
    ``reg_features`` times its ratings when ``weighted``. Unbiased: biases and ``mu`` are ignored
    (may be None)."""
    what = "als_side_features: "
    n_rows = free.shape[0] if isinstance(free, np.ndarray) and free.ndim == 2 else -1
    dt, k, n_features = _check(what, indptr, indices, data, fixed, feat, Z, w, biased, n_rows)
    _array(free, "free", dt, 2, what=what)
    if free.shape[1] != k:
        raise ValueError(f"{what}free has {free.shape[1]} columns, Z has {k}")
    _feature_csr(feat_t, "feat_t", n_features, what)
    if feat_t[1].shape[0] != feat[1].shape[0]:
        raise ValueError(f"{what}feat_t must hold the entries of feat by feature ({feat[1].shape[0]}), "
                         f"got {feat_t[1].shape[0]}")
    if biased:
        if fixed_bias is None or free_bias is None:
            raise ValueError(f"{what}fixed_bias and free_bias are required when biased=True")
        _array(fixed_bias, "fixed_bias", dt, 1, what=what)
        _array(free_bias, "free_bias", dt, 1, what=what)
        if fixed_bias.shape[0] != fixed.shape[0] or free_bias.shape[0] != n_rows:
            raise ValueError(f"{what}fixed_bias / free_bias need one entry per row of fixed / free")
    else:
        fixed_bias = free_bias = None
        w = None
    for name, x in (("free", free), ("fixed_bias", fixed_bias), ("free_bias", free_bias), ("feat_t values", feat_t[2])):
        _finite(x, name, what)
    for a, b in ((Z, fixed), (Z, free), (Z, data), (w, fixed_bias), (w, free_bias)):
        if a is not None and b is not None and np.may_share_memory(a, b):
            raise ValueError(f"{what}Z and w must not share memory with the other arrays")
    cdef fastmf_als_side_params p
    p.n_rows, p.n_fixed, p.n_factors, p.nnz = n_rows, fixed.shape[0], k, indices.shape[0]
    p.n_features, p.feat_nnz = n_features, feat[1].shape[0]
    p.mu = check_real(mu, "mu", what=what) if biased else 0.0
    p.reg_features = check_real(reg_features, "reg_features", 0.0, what=what)
    p.weighted, p.biased = (1 if weighted else 0), (1 if biased else 0)
    p.n_threads = check_threads(n_threads, what=what)
    cdef fastmf_error err
    cdef fastmf_status st
    if dt == np.float32:
        st = _features_call[float](&p, indptr, indices, data, fixed, fixed_bias, free, free_bias, feat[0], feat[1],
                                   feat[2], feat_t[0], feat_t[1], feat_t[2], Z, w, &err)
    else:
        st = _features_call[double](&p, indptr, indices, data, fixed, fixed_bias, free, free_bias, feat[0], feat[1],
                                    feat[2], feat_t[0], feat_t[1], feat_t[2], Z, w, &err)
    if st != FASTMF_OK:
        _raise(err, what, indices, feat, feat_t, p.n_fixed, n_rows, n_features)
