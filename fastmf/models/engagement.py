r"""Ranking by the engagement-weighted rating: :class:`EngagementRanked`, shared by the rating models
(:class:`fastmf.MatrixFactorization`, :class:`fastmf.BayesianMF`).

Ordered by predicted rating alone, a rating model's top-N fills with rarely rated items whose few
ratings were high. With ``ranking="engagement"`` (the default of the models that use this) the
score of a (user, item) pair is the predicted rating weighted by how likely the user is to engage
with the item at all,

.. math::

    s_{ui} = r_{lo} + e_{ui}\,(\mathrm{clip}(\hat r_{ui}) - r_{lo}), \qquad
    e_{ui} = \mathrm{clip}_{[0, 1]}(x_u^\top y_i),

with :math:`[r_{lo}, r_{hi}]` the rating scale and :math:`x_u, y_i` the factors of an implicit-ALS
model (the :class:`fastmf.ImplicitALS` kernel) of the binary "rated" matrix of the training data,
fitted at the end of ``fit`` (``engagement_*`` parameters; state ``user_engagement_``,
``item_engagement_``). ``ranking="rating"`` keeps the plain predicted-rating order. ``predict`` is
the same either way. A model using this declares the parameters (``ENGAGEMENT_CONSTRAINTS``, the
``__init__`` arguments ``ranking, engagement_factors, engagement_iterations, engagement_alpha,
engagement_reg``), calls :meth:`EngagementRanked._drop_engagement` when a fit starts and
``self._engagement()`` when it ends with ``ranking="engagement"``, and declares the two state arrays
in its registry entry (``registry.ENGAGEMENT``).
"""

from __future__ import annotations

import numpy as np

from fastmf._validation import MAX_EPOCHS, Interval, Options, resolve_n_threads
from fastmf.models.factor import FactorModel

__all__ = ["EngagementRanked", "ENGAGEMENT_CONSTRAINTS"]

#: the parameters of the engagement ranking, merged into each model's ``_constraints``
ENGAGEMENT_CONSTRAINTS = {
    "ranking": Options("engagement", "rating"),
    "engagement_factors": Interval("int", 1, 1 << 12),
    "engagement_iterations": Interval("int", 1, MAX_EPOCHS),
    "engagement_alpha": Interval("real", 0, None),
    "engagement_reg": Interval("real", 0, None),
}


class EngagementRanked(FactorModel):
    """A factor model of ratings that can rank by the engagement-weighted rating (module docstring)."""

    _item_side_caches = ("_engagement_gram",)

    def _drop_engagement(self):
        """Forget the engagement model of an earlier fit."""
        for stale in ("user_engagement_", "item_engagement_"):
            self.__dict__.pop(stale, None)

    def _engagement_options(self, n_threads):
        return dict(reg=self.engagement_reg, alpha=self.engagement_alpha, reg_nu=1.0, reg_alpha0=1.0,
                    n_threads=n_threads)

    def _engagement(self, transposed=None, progress=False):
        """``(X, Y)``: the engagement model's user and item factors (``user_engagement_``,
        ``item_engagement_``), fitted on the binary seen-items matrix of the training data when
        missing (at the end of fit, or first use after ``set_params(ranking="engagement")`` or on a
        model file written before fastmf had them). Deterministic: seeded from ``seed_``, the same
        for any thread count. ``transposed``: ``(indptr, indices)`` of the seen-items matrix by
        item when the caller has it (the CSC of the training data), else built here by one
        counting sort. ``progress``: a bar over the sweeps (``fit(..., progress=...)``; on the
        Netflix shape they take minutes)."""
        X = self.__dict__.get("user_engagement_")
        Y = self.__dict__.get("item_engagement_")
        if X is not None and Y is not None:
            return X, Y
        from fastmf import _als

        dtype = self.item_factors_.dtype
        n_threads = resolve_n_threads(self.n_threads)
        indptr, indices = self.seen_indptr_, self.seen_indices_
        if transposed is None:
            from fastmf import _csr

            transposed = _csr.transpose(indptr, indices, self.n_items_)
        csc_indptr, csc_indices = transposed
        ones = np.ones(indices.size, dtype=dtype)
        rng = np.random.default_rng([int(self.seed_), 0x656E67])  # "eng": a stream of its own
        k = self.engagement_factors
        X = rng.normal(0.0, 0.01, (self.n_users_, k)).astype(dtype)
        Y = rng.normal(0.0, 0.01, (self.n_items_, k)).astype(dtype)
        opts = self._engagement_options(n_threads)
        from fastmf._progress import progress_bar

        bar = progress_bar(progress, self.engagement_iterations, "engagement", "sweep")
        try:
            for _ in range(self.engagement_iterations):
                _als.ials_half_sweep(indptr, indices, ones, Y, X, gram=_als.gram(Y, n_threads), **opts)
                _als.ials_half_sweep(csc_indptr, csc_indices, ones, X, Y, gram=_als.gram(X, n_threads), **opts)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        self.user_engagement_, self.item_engagement_ = X, Y
        return X, Y

    def _fold_in_engagement(self, idx):
        """Engagement factors of a user who rated items ``idx``: the exact (Cholesky) user
        half-sweep row of the engagement model, item side fixed."""
        return self._engagement_row("user")(idx)

    def _engagement_row(self, side):
        """A function giving the engagement factors of one row of ``side`` from the indices of the
        other side it interacted with: the exact (Cholesky) row of an engagement half-sweep, the
        other side fixed (the item side's Gram matrix cached across fold-ins)."""
        from fastmf import _als

        X, Y = self._engagement()
        fixed = Y if side == "user" else X
        if side == "user":
            cached = getattr(self, "_engagement_gram", None)
            if cached is None or cached[0] is not Y:
                cached = (Y, _als.gram(Y))
                self._engagement_gram = cached
            gram = cached[1]
        else:
            gram = _als.gram(X)

        def solve(idx):
            x = np.zeros((1, fixed.shape[1]), dtype=fixed.dtype)
            if idx.size:
                rows = np.unique(idx).astype(np.int32)
                _als.ials_half_sweep(np.array([0, rows.size], dtype=np.int64), rows,
                                     np.ones(rows.size, dtype=fixed.dtype), fixed, x, gram=gram,
                                     solver="cholesky", **self._engagement_options(1))
            return x[0]

        return solve

    def _scale_bounds(self):
        scale = self._score_scale()
        return scale if scale is not None else (-np.inf, np.inf)

    def _engagement_weighted(self, rating, engagement):
        """``lo + clip(engagement, 0, 1) * (clip(rating, lo, hi) - lo)``, in place in ``rating``."""
        lo, hi = self._scale_bounds()
        if not np.isfinite(lo):  # no scale at all (cannot happen for models fitted by this fastmf)
            lo = 0.0
        np.clip(rating, lo, hi, out=rating)
        rating -= lo
        np.clip(engagement, 0.0, 1.0, out=engagement)
        rating *= engagement
        rating += lo
        return rating


    def _extra_row_solver(self, side):
        """With ``ranking="engagement"``: re-solve the row's engagement factors too."""
        if self.ranking != "engagement":
            return None
        solve = self._engagement_row(side)
        engagement = self._engagement()[0 if side == "user" else 1]

        def update(row, idx):
            engagement[row] = solve(idx)

        return update

    def _before_partial_fit(self):
        if self.ranking == "engagement":
            self._engagement()

    def _new_user_scores(self, idx, values):
        scores = super()._new_user_scores(idx, values)
        if self.ranking == "engagement":
            _, Y = self._engagement()
            e = Y.astype(np.float64) @ self._fold_in_engagement(idx).astype(np.float64)
            scores = self._engagement_weighted(scores, e)
        return scores

    # ------------------------------------------------------------------ scoring
    def _score_users(self, u):
        if self.ranking == "engagement":
            # both products by the top-k kernel's scorer: a user's scores never depend on which other
            # users are in the batch (a BLAS product rounds differently with the batch size)
            from fastmf import _topk

            nt = resolve_n_threads(self.n_threads)
            mu, user_bias, item_bias = self._biases()
            offset = None if user_bias is None else mu + user_bias.astype(np.float64)
            scores = _topk.score_factors(self.user_factors_, self.item_factors_, users=u, item_bias=item_bias,
                                         user_offset=offset, n_threads=nt)
            X, Y = self._engagement()
            return self._engagement_weighted(scores, _topk.score_factors(X, Y, users=u, n_threads=nt))
        return super()._score_users(u)

    def _factor_scores(self):
        if self.ranking == "engagement":
            return None  # a product of two dot products: scored in blocks by _score_users
        return super()._factor_scores()

    def _fallback_scores(self):
        """Ranking of a user the model does not know. ``ranking="engagement"``: the
        engagement-weighted rating of ``mu + b_i`` with the engagement of an unknown user taken as
        the share of training users who rated the item; ``"rating"``: ``mu + b_i`` (biased) or
        item popularity (unbiased)."""
        mu, _, item_bias = self._biases()
        if self.ranking == "engagement":
            rating = np.full(self.n_items_, mu, dtype=np.float64)
            if item_bias is not None:
                rating += item_bias
            share = self.item_counts_.astype(np.float64) / max(self.n_users_, 1)
            return self._engagement_weighted(rating, share)
        if item_bias is not None:
            return mu + item_bias.astype(np.float64)
        return super()._fallback_scores()
