/* Alternating least squares kernels: explicit ALS half-sweeps (Zhou et al. 2008, biases folded into
 * the normal equations) and implicit-feedback ALS half-sweeps (Hu, Koren & Volinsky 2008), the Gram
 * matrix Y^T Y and the implicit-ALS loss evaluated without materialising all pairs.
 *
 * The math, the invariants, buffer ownership and the thread-safety rules are described at the top of
 * als.c. In short: a half-sweep solves one small regularised least-squares system per row of a CSR
 * matrix whose rows are the side being updated and whose column indices point into the fixed side;
 * rows are independent, run in parallel (OpenMP, dynamic schedule) and give bit-identical results for
 * every thread count. All arrays are C-contiguous and owned by the caller; `factors` (and `bias`)
 * are written in place. Each typed entry point exists for float (_f32) and double (_f64) elements;
 * the arithmetic is done in double in both.
 */
#ifndef FASTMF_ALS_H
#define FASTMF_ALS_H

#include <math.h>
#include <stdint.h>
#include "common.h"

/* solvers of a row's system */
enum {
    FASTMF_ALS_CHOLESKY = 0,  /* form the system, solve exactly by Cholesky */
    FASTMF_ALS_CG = 1         /* conjugate gradient warm-started from the current row, cg_steps steps,
                                 matrix-free (the system is never formed) */
};

/* confidence scalings of implicit ALS */
enum {
    FASTMF_IALS_LINEAR = 0,   /* c = 1 + alpha r */
    FASTMF_IALS_LOG = 1       /* c = 1 + alpha log(1 + r / eps) */
};

/* What err->which reports next to a failed status (err->pos says where). */
enum {
    FASTMF_ALS_BAD_ARGS = 0,        /* ERR_VALUE: a size or parameter is invalid (pos = -1) */
    FASTMF_ALS_BAD_INDPTR = 1,      /* ERR_VALUE: indptr[pos] breaks
                                       0 = indptr[0] <= indptr[1] <= ... <= indptr[n_rows] = nnz */
    FASTMF_ALS_BAD_INDEX = 2,       /* ERR_INDEX: indices[pos] lies outside [0, n_fixed) */
    FASTMF_ALS_BAD_DATA = 3,        /* ERR_VALUE: data[pos] is not finite, or (log scaling) its
                                       confidence is not (r / eps <= -1) */
    FASTMF_ALS_BAD_FIXED = 4,       /* ERR_VALUE: row pos of fixed_factors holds a non-finite value */
    FASTMF_ALS_BAD_FIXED_BIAS = 5,  /* ERR_VALUE: fixed_bias[pos] is not finite */
    FASTMF_ALS_BAD_START = 6,       /* ERR_VALUE: CG warm start: row pos of factors (or bias) is
                                       not finite */
    FASTMF_ALS_BAD_SYSTEM = 7,      /* ERR_NOT_PD: the system of row pos is not positive definite */
    FASTMF_ALS_BAD_RESULT = 8,      /* ERR_DIVERGED: the solution of row pos is not finite */
    FASTMF_ALS_BAD_GRAM = 9,        /* ERR_VALUE: gram[pos] (flat index) is not finite */
    FASTMF_ALS_BAD_X = 10,          /* ERR_VALUE: row pos of the user factors (loss) is not finite */
    FASTMF_ALS_BAD_PRIOR = 11,      /* ERR_VALUE: Gibbs: prior_prec.flat[pos] (pos < m^2) or
                                       prior_mean[pos - m^2] is not finite */
    FASTMF_ALS_BAD_OFFSET = 12      /* ERR_VALUE: Gibbs: row pos of prior_offset is not finite */
};

/* Explicit ALS half-sweep: sizes and hyper-parameters (dtype-independent). */
typedef struct {
    int64_t n_rows;     /* rows of the CSR = rows of factors (the side being solved) */
    int64_t n_fixed;    /* rows of fixed_factors (and entries of fixed_bias) */
    int64_t n_factors;  /* k >= 1: columns of factors and fixed_factors */
    int64_t nnz;        /* entries of indices and data; must equal indptr[n_rows] */
    double mu;          /* global mean (ignored when !biased) */
    double reg;         /* lambda >= 0 of the factors */
    double reg_bias;    /* lambda_b >= 0 of the bias (ignored when !biased) */
    int weighted;       /* 1: lambda_r = reg n_r, lambda_b,r = reg_bias n_r (weighted-lambda) */
    int biased;         /* 1: (k+1)x(k+1) systems with the bias folded in; 0: k x k, no mu/biases */
    int solver;         /* FASTMF_ALS_CHOLESKY or FASTMF_ALS_CG */
    int cg_steps;       /* CG iterations (>= 0) when solver == FASTMF_ALS_CG */
    int n_threads;      /* OpenMP threads (values < 1 mean 1) */
    const fastmf_interrupt *interrupt;  /* read between rows: nonzero stops the sweep with
                                           FASTMF_ERR_INTERRUPTED (NULL: never) */
} fastmf_als_params;

/* Implicit ALS: sizes and hyper-parameters. For the loss, rows are users and fixed rows items. */
typedef struct {
    int64_t n_rows;     /* rows of the CSR = rows of factors */
    int64_t n_fixed;    /* rows of fixed_factors */
    int64_t n_factors;  /* k >= 1 */
    int64_t nnz;        /* entries of indices and data; must equal indptr[n_rows] */
    double reg;         /* lambda >= 0 */
    double alpha;       /* confidence scale */
    double eps;         /* > 0, log scaling only */
    int scaling;        /* FASTMF_IALS_LINEAR or FASTMF_IALS_LOG */
    double reg_nu;      /* frequency-scaled regularisation (Rendle et al. 2022):             */
    double reg_alpha0;  /*   lambda_r = reg (n_r + reg_alpha0 n_fixed)^reg_nu, n_r = number of
                             entries of row r with value > 0; reg_nu = 0 gives plain reg */
    int solver;         /* FASTMF_ALS_CG or FASTMF_ALS_CHOLESKY */
    int cg_steps;       /* CG iterations (>= 0) */
    int n_threads;      /* OpenMP threads (values < 1 mean 1) */
    const fastmf_interrupt *interrupt;  /* as in fastmf_als_params (also stops the Gram and loss) */
} fastmf_ials_params;

/* The confidence of a stored value d (NaN / inf when undefined) and lambda_r of a row with n_pos
 * positive entries against n_other fixed rows: the one definition of both, shared by the iALS
 * solvers of als.c and the iALS++ block solver of ialspp.c. */
static inline double fastmf_ials_confidence(double d, double alpha, double eps, int log_scaling)
{
    return log_scaling ? 1.0 + alpha * log1p(d / eps) : 1.0 + alpha * d;
}

static inline double fastmf_ials_lambda(const fastmf_ials_params *p, int64_t n_pos, int64_t n_other)
{
    if (p->reg_nu == 0.0) return p->reg;
    return p->reg * pow((double)n_pos + p->reg_alpha0 * (double)n_other, p->reg_nu);
}

/* Explicit ALS: for every row r solve the ridge problem of the file comment and write factors[r]
 * (and bias[r] when biased). fixed_bias and bias may be NULL when !biased. On an error the rows
 * solved so far keep their new values and the failing row is left as it was; err->pos / err->which
 * describe the lowest failing row (or the first bad input entry). When p->interrupt is raised the
 * sweep stops starting rows and returns FASTMF_ERR_INTERRUPTED (before any other error): some
 * rows are then solved and others not. */
fastmf_status fastmf_als_half_sweep_f32(const fastmf_als_params *p, const int64_t *indptr,
                                        const int32_t *indices, const float *data,
                                        const float *fixed_factors, const float *fixed_bias,
                                        float *factors, float *bias,
                                        fastmf_error *err);
fastmf_status fastmf_als_half_sweep_f64(const fastmf_als_params *p, const int64_t *indptr,
                                        const int32_t *indices, const double *data,
                                        const double *fixed_factors, const double *fixed_bias,
                                        double *factors, double *bias,
                                        fastmf_error *err);

/* Gibbs half-sweep of Bayesian MF: sizes and parameters (dtype-independent). */
typedef struct {
    int64_t n_rows;     /* rows of the CSR = rows of factors (the side being drawn) */
    int64_t n_fixed;    /* rows of fixed_factors (and entries of fixed_bias) */
    int64_t n_factors;  /* k >= 1 */
    int64_t nnz;        /* entries of indices and data; must equal indptr[n_rows] */
    double mu;          /* global mean (ignored when !biased) */
    double alpha;       /* noise precision > 0 */
    int biased;         /* 1: rows theta = [x, b] (m = k + 1 entries, bias LAST); 0: theta = x */
    int draw;           /* 1: a draw; 0: the conditional mean m_r (fold-in, no randomness) */
    int n_threads;      /* OpenMP threads (values < 1 mean 1) */
    uint64_t seed;      /* row r draws its normals from the stream (seed, stream, r + 1) */
    uint64_t stream;
    const fastmf_interrupt *interrupt;  /* as in fastmf_als_params (half-sweep: between rows; bag sweep: between features) */
} fastmf_gibbs_params;

/* Gibbs half-sweep (Salakhutdinov & Mnih 2008, biases folded in): every row r is replaced by a draw
 * theta_r ~ N(m_r, P_r^{-1}), P_r = prior_prec + alpha sum_j z_j z_j^T, P_r m_r = prior_prec prior_mean
 * + alpha sum_j t_j z_j (z_j = [y_j, 1], t_j = d_j - mu - c_j; see als.c), as m_r + U_r^{-1} eps_r
 * with P_r = U_r^T U_r and the row's normals eps_r (fastmf_gibbs_normals). prior_prec: m x m,
 * row-major, symmetric (the upper triangle is read), positive definite; prior_mean: m. Rows without
 * entries are drawn from the prior. Optional (NULL: none): prior_offset (n_rows x m) shifts row r's
 * prior mean to prior_mean + prior_offset[r] (the implicit-feature part of a row, drawn here as part
 * of the effective row); gram_out (n_rows x m x m) receives G_r = sum_j z_j z_j^T (full) and
 * resid_out (n_rows x m, needs gram_out) h_r = sum_j t_j z_j - G_r theta_r, the residuals' moment
 * after the draw (what the bag sweep needs). Bit-identical for every n_threads; errors as for
 * fastmf_als_half_sweep_* (plus FASTMF_ALS_BAD_PRIOR, FASTMF_ALS_BAD_OFFSET). */
fastmf_status fastmf_gibbs_half_sweep_f32(const fastmf_gibbs_params *p, const int64_t *indptr,
                                          const int32_t *indices, const float *data,
                                          const float *fixed_factors, const float *fixed_bias,
                                          const double *prior_mean, const double *prior_prec,
                                          const double *prior_offset, float *factors, float *bias,
                                          double *gram_out, double *resid_out, fastmf_error *err);
fastmf_status fastmf_gibbs_half_sweep_f64(const fastmf_gibbs_params *p, const int64_t *indptr,
                                          const int32_t *indices, const double *data,
                                          const double *fixed_factors, const double *fixed_bias,
                                          const double *prior_mean, const double *prior_prec,
                                          const double *prior_offset, double *factors, double *bias,
                                          double *gram_out, double *resid_out, fastmf_error *err);

/* out[r] = weights[r] * sum_{e = indptr[r]}^{indptr[r+1]-1} rows[indices[e]] for r < n_rows (rows:
 * n_feat x m, out: n_rows x m double, summed in entry order): the implicit offsets of a side.
 * Deterministic for every n_threads; FASTMF_ERR_INDEX names the first entry outside [0, n_feat). */
fastmf_status fastmf_bag_sums_f32(const int64_t *indptr, const int32_t *indices, int64_t n_rows,
                                  const float *rows, int64_t n_feat, int64_t m, const double *weights,
                                  int n_threads, double *out, fastmf_error *err);
fastmf_status fastmf_bag_sums_f64(const int64_t *indptr, const int32_t *indices, int64_t n_rows,
                                  const double *rows, int64_t n_feat, int64_t m, const double *weights,
                                  int n_threads, double *out, fastmf_error *err);

/* Gibbs draw of implicit-feature rows psi_j (features, n_features x m, bias last; m = k + biased),
 * one after another (serial: rows sharing a side row are coupled), each from its exact conditional.
 * The side's rows r (n_side of them) hold effective rows theta_r + sum_j w_rj psi_j; feature j is held
 * by the side rows bag_rows[bag_indptr[j] .. bag_indptr[j+1]) with weights bag_w (a CSC of the bag).
 * gram (n_side x m x m) and resid (n_side x m) are G_r and h_r of gibbs_half_sweep's gram_out /
 * resid_out for the current draw; for each j:
 *   P = prior_prec + alpha sum_e w_e^2 G_e,  P mean = prior_prec prior_mean
 *       + alpha sum_e w_e (h_e + w_e G_e psi_j),  psi_j <- mean + U^{-1} eps (draw) or mean,
 * then h_e -= w_e G_e (psi_j new - psi_j old) for the rows holding j, so resid stays the residual
 * moment of the current rows. p: n_rows = n_features, n_fixed = n_side, n_factors = k, nnz = bag
 * entries, alpha, biased, draw, seed and stream (feature j draws from (seed, stream, j + 1));
 * p->mu and p->n_threads are unused. */
fastmf_status fastmf_gibbs_bag_sweep_f32(const fastmf_gibbs_params *p, const int64_t *bag_indptr,
                                         const int32_t *bag_rows, const float *bag_w, const double *gram,
                                         double *resid, const double *prior_mean,
                                         const double *prior_prec, float *features, fastmf_error *err);
fastmf_status fastmf_gibbs_bag_sweep_f64(const fastmf_gibbs_params *p, const int64_t *bag_indptr,
                                         const int32_t *bag_rows, const double *bag_w, const double *gram,
                                         double *resid, const double *prior_mean,
                                         const double *prior_prec, double *features, fastmf_error *err);

/* out[r m .. r m + m) = the normals row r of a Gibbs half-sweep draws: the first m standard normals
 * (fastmf_rng_normal) of the stream seeded from (seed, stream, r + 1), for r < n_rows */
void fastmf_gibbs_normals(double *out, int64_t n_rows, int64_t m, uint64_t seed, uint64_t stream);

/* G = Y^T Y (k x k, row-major, full symmetric, double) of the n x k matrix Y, accumulated in double
 * over fixed row blocks whose partial sums are added in block order: the result does not depend on
 * n_threads. Returns FASTMF_OK, FASTMF_ERR_NOMEM, FASTMF_ERR_VALUE (bad arguments) or
 * FASTMF_ERR_INTERRUPTED (interrupt, may be NULL, read between gathered chunks of rows; G is then
 * not written). */
fastmf_status fastmf_gram_f32(const float *Y, int64_t n, int64_t k, int n_threads,
                              const fastmf_interrupt *interrupt, double *G);
fastmf_status fastmf_gram_f64(const double *Y, int64_t n, int64_t k, int n_threads,
                              const fastmf_interrupt *interrupt, double *G);

/* Implicit ALS half-sweep: x_r = (G + Y_r^T (C_r - I) Y_r + lambda_r I)^{-1} Y_r^T C_r p_r for
 * every row r (exactly, or by warm-started CG). gram: G = Y^T Y of fixed_factors (k x k, double,
 * full), or NULL to compute it here. Errors as for fastmf_als_half_sweep_*. */
fastmf_status fastmf_ials_half_sweep_f32(const fastmf_ials_params *p, const int64_t *indptr,
                                         const int32_t *indices, const float *data,
                                         const float *fixed_factors, const double *gram,
                                         float *factors, fastmf_error *err);
fastmf_status fastmf_ials_half_sweep_f64(const fastmf_ials_params *p, const int64_t *indptr,
                                         const int32_t *indices, const double *data,
                                         const double *fixed_factors, const double *gram,
                                         double *factors, fastmf_error *err);

/* Implicit ALS loss sum_{u,j} c_uj (p_uj - x_u.y_j)^2 + sum_u lambda_u |x_u|^2 + sum_j lambda_j |y_j|^2
 * over ALL pairs, in O(nnz k + (n_rows + n_fixed) k^2) (see als.c). Rows of the CSR are users (X,
 * p->n_rows rows), indices are items (Y, p->n_fixed rows); lambda_j uses the item's count of
 * positive entries and n_rows. gram: Y^T Y or NULL. Deterministic for every n_threads.
 * p->solver and p->cg_steps are ignored. */
fastmf_status fastmf_ials_loss_f32(const fastmf_ials_params *p, const int64_t *indptr,
                                   const int32_t *indices, const float *data,
                                   const float *user_factors, const float *item_factors,
                                   const double *gram, double *loss, fastmf_error *err);
fastmf_status fastmf_ials_loss_f64(const fastmf_ials_params *p, const int64_t *indptr,
                                   const int32_t *indices, const double *data,
                                   const double *user_factors, const double *item_factors,
                                   const double *gram, double *loss, fastmf_error *err);

#endif
