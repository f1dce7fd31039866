/* A smoke test of every kernel family in csrc/ without Python: one SGD epoch (float32 and float64,
 * the vector path: rows of 16 floats / 8 doubles, 64-byte aligned), one explicit ALS half-sweep
 * (Cholesky), one implicit ALS half-sweep, one iALS++ half-sweep, one Gibbs half-sweep (conditional means: no random
 * draw) and a top-k over the factors, on a tiny problem read from a text file. It prints every
 * result; tests/csmoke/test_csmoke.py computes the same with the NumPy twins (fastmf.reference) and
 * compares. Built natively and, for aarch64, with the cross compiler and run under qemu-aarch64.
 *
 * Input (whitespace-separated): n_users n_items k nnz, then nnz lines "user item rating" (sorted by
 * user, so they are also the user-side CSR), then P (n_users x k) and Q (n_items x k) row by row,
 * then mu lr reg. Output: lines "name count v0 v1 ..." (%.17g).
 * Usage: smoke INPUT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "als.h"
#include "ialspp.h"
#include "sgd.h"
#include "topk.h"

static void *xalloc(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes < 64 ? 64 : bytes) != 0) {
        fprintf(stderr, "smoke: out of memory\n");
        exit(2);
    }
    memset(p, 0, bytes < 64 ? 64 : bytes);
    return p;
}

static void put(const char *name, const double *x, int64_t n)
{
    int64_t j;
    printf("%s %lld", name, (long long)n);
    for (j = 0; j < n; ++j) printf(" %.17g", x[j]);
    printf("\n");
}

static void putf(const char *name, const float *x, int64_t n)
{
    int64_t j;
    printf("%s %lld", name, (long long)n);
    for (j = 0; j < n; ++j) printf(" %.9g", (double)x[j]);
    printf("\n");
}

static void check(fastmf_status st, const char *what)
{
    if (st != FASTMF_OK) {
        fprintf(stderr, "smoke: %s failed with status %d\n", what, (int)st);
        exit(3);
    }
}

static void need(int ok)
{
    if (!ok) {
        fprintf(stderr, "smoke: malformed input\n");
        exit(2);
    }
}

int main(int argc, char **argv)
{
    long long nu, ni, kk, nz;
    int64_t n_users, n_items, k, nnz, j, r;
    int32_t *users, *items;
    int64_t *order, *indptr;
    double *rating, *P, *Q, mu, lr, reg, sse;
    FILE *fh;
    fastmf_error err;

    if (argc != 2 || (fh = fopen(argv[1], "r")) == NULL) {
        fprintf(stderr, "usage: smoke INPUT\n");
        return 2;
    }
    need(fscanf(fh, "%lld %lld %lld %lld", &nu, &ni, &kk, &nz) == 4);
    n_users = nu; n_items = ni; k = kk; nnz = nz;
    need(n_users > 0 && n_items > 0 && k > 0 && k % 16 == 0 && nnz > 0);
    users = (int32_t *)xalloc((size_t)nnz * sizeof(int32_t));
    items = (int32_t *)xalloc((size_t)nnz * sizeof(int32_t));
    order = (int64_t *)xalloc((size_t)nnz * sizeof(int64_t));
    rating = (double *)xalloc((size_t)nnz * sizeof(double));
    P = (double *)xalloc((size_t)(n_users * k) * sizeof(double));
    Q = (double *)xalloc((size_t)(n_items * k) * sizeof(double));
    for (j = 0; j < nnz; ++j) {
        int u, i;
        need(fscanf(fh, "%d %d %lf", &u, &i, &rating[j]) == 3);
        need(u >= 0 && u < n_users && i >= 0 && i < n_items);
        users[j] = u;
        items[j] = i;
        order[j] = j;
    }
    for (j = 0; j < n_users * k; ++j) need(fscanf(fh, "%lf", &P[j]) == 1);
    for (j = 0; j < n_items * k; ++j) need(fscanf(fh, "%lf", &Q[j]) == 1);
    need(fscanf(fh, "%lf %lf %lf", &mu, &lr, &reg) == 3);
    fclose(fh);

    /* user-side CSR of the (user-sorted) ratings */
    indptr = (int64_t *)xalloc((size_t)(n_users + 1) * sizeof(int64_t));
    for (j = 0; j < nnz; ++j) {
        need(j == 0 || users[j] >= users[j - 1]);
        indptr[users[j] + 1] += 1;
    }
    for (r = 0; r < n_users; ++r) indptr[r + 1] += indptr[r];

    { /* SGD: one serial epoch in float64 and in float32, biased, on the vector path */
        fastmf_sgd_problem pb;
        double *p = (double *)xalloc((size_t)(n_users * k) * sizeof(double));
        double *q = (double *)xalloc((size_t)(n_items * k) * sizeof(double));
        double *bu = (double *)xalloc((size_t)n_users * sizeof(double));
        double *bi = (double *)xalloc((size_t)n_items * sizeof(double));
        float *pf = (float *)xalloc((size_t)(n_users * k) * sizeof(float));
        float *qf = (float *)xalloc((size_t)(n_items * k) * sizeof(float));
        float *buf = (float *)xalloc((size_t)n_users * sizeof(float));
        float *bif = (float *)xalloc((size_t)n_items * sizeof(float));
        float *rf = (float *)xalloc((size_t)nnz * sizeof(float));
        memcpy(p, P, (size_t)(n_users * k) * sizeof(double));
        memcpy(q, Q, (size_t)(n_items * k) * sizeof(double));
        for (j = 0; j < n_users * k; ++j) pf[j] = (float)P[j];
        for (j = 0; j < n_items * k; ++j) qf[j] = (float)Q[j];
        for (j = 0; j < nnz; ++j) rf[j] = (float)rating[j];
        memset(&pb, 0, sizeof pb);
        pb.dtype = FASTMF_FLOAT64;
        pb.nnz = nnz; pb.n_users = n_users; pb.n_items = n_items; pb.n_factors = k;
        pb.users = users; pb.items = items; pb.ratings = rating;
        pb.P = p; pb.Q = q; pb.ld_P = k; pb.ld_Q = k; pb.bu = bu; pb.bi = bi;
        pb.mu = mu; pb.lr = lr; pb.reg = reg; pb.reg_bias = reg; pb.biased = 1;
        pb.interrupt = NULL; pb.isa = FASTMF_ISA_AUTO;
        need(fastmf_sgd_row_vectors(&pb) == k / 8);
        check(fastmf_sgd_epoch(&pb, order, nnz, &sse, &err), "fastmf_sgd_epoch (float64)");
        put("sgd64_P", p, n_users * k);
        put("sgd64_Q", q, n_items * k);
        put("sgd64_bu", bu, n_users);
        put("sgd64_bi", bi, n_items);
        put("sgd64_sse", &sse, 1);
        pb.dtype = FASTMF_FLOAT32;
        pb.ratings = rf; pb.P = pf; pb.Q = qf; pb.bu = buf; pb.bi = bif;
        need(fastmf_sgd_row_vectors(&pb) == k / 16);
        check(fastmf_sgd_epoch(&pb, order, nnz, &sse, &err), "fastmf_sgd_epoch (float32)");
        putf("sgd32_P", pf, n_users * k);
        putf("sgd32_Q", qf, n_items * k);
        putf("sgd32_bu", buf, n_users);
        putf("sgd32_bi", bif, n_items);
        free(p); free(q); free(bu); free(bi); free(pf); free(qf); free(buf); free(bif); free(rf);
    }

    { /* explicit ALS: the user side from the fixed item factors Q (zero item biases), Cholesky */
        fastmf_als_params ap;
        double *x = (double *)xalloc((size_t)(n_users * k) * sizeof(double));
        double *b = (double *)xalloc((size_t)n_users * sizeof(double));
        double *c = (double *)xalloc((size_t)n_items * sizeof(double));
        memset(&ap, 0, sizeof ap);
        ap.n_rows = n_users; ap.n_fixed = n_items; ap.n_factors = k; ap.nnz = nnz;
        ap.mu = mu; ap.reg = reg; ap.reg_bias = reg; ap.weighted = 0; ap.biased = 1;
        ap.solver = FASTMF_ALS_CHOLESKY; ap.cg_steps = 0; ap.n_threads = 1; ap.interrupt = NULL;
        check(fastmf_als_half_sweep_f64(&ap, indptr, items, rating, Q, c, x, b, &err),
              "fastmf_als_half_sweep_f64");
        put("als_X", x, n_users * k);
        put("als_b", b, n_users);
        free(x); free(b); free(c);
    }

    { /* implicit ALS: the user side, linear confidence 1 + alpha r, exact solve */
        fastmf_ials_params ip;
        double *x = (double *)xalloc((size_t)(n_users * k) * sizeof(double));
        memset(&ip, 0, sizeof ip);
        ip.n_rows = n_users; ip.n_fixed = n_items; ip.n_factors = k; ip.nnz = nnz;
        ip.reg = reg; ip.alpha = 2.0; ip.eps = 1.0; ip.scaling = FASTMF_IALS_LINEAR;
        ip.reg_nu = 0.0; ip.reg_alpha0 = 1.0; ip.solver = FASTMF_ALS_CHOLESKY; ip.cg_steps = 0;
        ip.n_threads = 1; ip.interrupt = NULL;
        check(fastmf_ials_half_sweep_f64(&ip, indptr, items, rating, Q, NULL, x, &err),
              "fastmf_ials_half_sweep_f64");
        put("ials_X", x, n_users * k);
        free(x);
    }

    { /* iALS++: the user side from P, blocks of 6 (k = 16: blocks 6, 6, 4), same confidences */
        fastmf_ials_params ip;
        double *x = (double *)xalloc((size_t)(n_users * k) * sizeof(double));
        memcpy(x, P, (size_t)(n_users * k) * sizeof(double));
        memset(&ip, 0, sizeof ip);
        ip.n_rows = n_users; ip.n_fixed = n_items; ip.n_factors = k; ip.nnz = nnz;
        ip.reg = reg; ip.alpha = 2.0; ip.eps = 1.0; ip.scaling = FASTMF_IALS_LINEAR;
        ip.reg_nu = 0.0; ip.reg_alpha0 = 1.0; ip.n_threads = 1; ip.interrupt = NULL;
        check(fastmf_ialspp_half_sweep_f64(&ip, 6, indptr, items, rating, Q, NULL, x, &err),
              "fastmf_ialspp_half_sweep_f64");
        put("ialspp_X", x, n_users * k);
        free(x);
    }

    { /* Gibbs half-sweep of the user side, conditional means (draw = 0), prior N(0, (2 I)^-1) */
        fastmf_gibbs_params gp;
        const int64_t m = k + 1;
        double *x = (double *)xalloc((size_t)(n_users * k) * sizeof(double));
        double *b = (double *)xalloc((size_t)n_users * sizeof(double));
        double *c = (double *)xalloc((size_t)n_items * sizeof(double));
        double *pm = (double *)xalloc((size_t)m * sizeof(double));
        double *pp = (double *)xalloc((size_t)(m * m) * sizeof(double));
        for (j = 0; j < m; ++j) pp[j * m + j] = 2.0;
        memset(&gp, 0, sizeof gp);
        gp.n_rows = n_users; gp.n_fixed = n_items; gp.n_factors = k; gp.nnz = nnz;
        gp.mu = mu; gp.alpha = 3.0; gp.biased = 1; gp.draw = 0; gp.n_threads = 1;
        gp.seed = 1; gp.stream = 0; gp.interrupt = NULL;
        check(fastmf_gibbs_half_sweep_f64(&gp, indptr, items, rating, Q, c, pm, pp, NULL, x, b,
                                          NULL, NULL, &err),
              "fastmf_gibbs_half_sweep_f64");
        put("gibbs_X", x, n_users * k);
        put("gibbs_b", b, n_users);
        free(x); free(b); free(c); free(pm); free(pp);
    }

    { /* top-3 items of every user by P . Q (float64), nothing excluded */
        fastmf_topk_spec sp;
        fastmf_topk_error te;
        const int64_t n = 3;
        int64_t *idx = (int64_t *)xalloc((size_t)(n_users * n) * sizeof(int64_t));
        double *score = (double *)xalloc((size_t)(n_users * n) * sizeof(double));
        double *fidx = (double *)xalloc((size_t)(n_users * n) * sizeof(double));
        memset(&sp, 0, sizeof sp);
        sp.n_rows = n_users; sp.n_items = n_items; sp.n = n; sp.users = NULL; sp.n_users = n_users;
        sp.excl_indptr = NULL; sp.excl_indices = NULL; sp.excl_nnz = 0; sp.candidates = NULL;
        sp.n_threads = 1;
        check(fastmf_topk_factors_f64(&sp, P, k, Q, k, k, NULL, NULL, idx, score, &te),
              "fastmf_topk_factors_f64");
        for (j = 0; j < n_users * n; ++j) fidx[j] = (double)idx[j];
        put("topk_idx", fidx, n_users * n);
        put("topk_score", score, n_users * n);
        free(idx); free(score); free(fidx);
        /* the dense scores of the same problem (fastmf_score_factors, used by the engagement ranking) */
        score = (double *)xalloc((size_t)(n_users * n_items) * sizeof(double));
        check(fastmf_score_factors_f64(&sp, P, k, Q, k, k, NULL, NULL, score, &te),
              "fastmf_score_factors_f64");
        put("scores_all", score, n_users * n_items);
        free(score);
    }

    free(users); free(items); free(order); free(rating); free(P); free(Q); free(indptr);
    return 0;
}
