"""Implicit-feedback matrix factorization: :class:`ImplicitALS` (Hu, Koren & Volinsky 2008)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Literal, Optional, Sequence, Union

import numpy as np

from fastmf._validation import (MAX_EPOCHS, MAX_THREADS, check_memory, FloatDType, Interval, Options, RandomState, SeedLike, check_random_state,
                                resolve_n_threads)
from fastmf.models.base import Callback, Ids, Unknown
from fastmf.models.factor import FactorModel, RowSolver
from fastmf.models.side import SIDE_CONSTRAINTS
from fastmf.data.ratings import Ratings

if TYPE_CHECKING:  # pragma: no cover - scipy is optional
    from fastmf.data.features import FeatureLike
    import scipy.sparse
    from fastmf.models.base import Recommender  # noqa: F401 (named by the Callback hint)

__all__ = ["ImplicitALS"]


class ImplicitALS(FactorModel):
    r"""Matrix factorization of implicit feedback (clicks, plays, purchases) by alternating least
    squares, after Hu, Koren & Volinsky (2008).

    Every stored value :math:`r_{ui}` is an interaction strength. The preference is
    :math:`p_{ui} = [r_{ui} > 0]` and the confidence :math:`c_{ui} = 1 + \alpha r_{ui}`
    (``scaling="linear"``) or :math:`1 + \alpha \log(1 + r_{ui}/\varepsilon)` (``"log"``); pairs
    without an interaction have :math:`p = 0, c = 1`. The loss runs over *all* user-item pairs,

    .. math::

        \min_{X, Y} \sum_{u, i} c_{ui} (p_{ui} - x_u^\top y_i)^2
            + \sum_u \lambda_u \lVert x_u \rVert^2 + \sum_i \lambda_i \lVert y_i \rVert^2,

    yet each half-sweep costs only :math:`O(\mathrm{nnz}\,k^2 + n k^3)` (Cholesky) or
    :math:`O(\mathrm{nnz}\,k\,s + n k^2 s)` (``s`` conjugate-gradient steps): with
    :math:`G = Y^\top Y` computed once per half-sweep, a user's system is
    :math:`(G + \sum_{i \in R(u)} (c_{ui} - 1) y_i y_i^\top + \lambda_u I) x_u = \sum_{i \in R(u)} c_{ui} y_i`.
    Regularisation is plain (:math:`\lambda_u = \mathrm{reg}`) or frequency-scaled as recommended by
    Rendle et al. (2022): :math:`\lambda_u = \mathrm{reg}\,(|R(u)| + \alpha_0 n_{items})^{\nu}`.

    Scores are preferences, not ratings: ``predict`` returns :math:`x_u^\top y_i` and
    :func:`fastmf.evaluate` reports ranking metrics only.

    Parameters
    ----------
    n_factors : int
    n_epochs : int
        Alternating sweeps (users, then items). Formerly ``n_iterations`` (still accepted, with a
        FutureWarning, until fastmf 0.4).
    reg : float
        :math:`\lambda` (scaled when ``reg_nu > 0``).
    alpha : float
        Confidence slope :math:`\alpha`.
    scaling : {"linear", "log"}
    eps : float
        :math:`\varepsilon` of the log scaling.
    linear_solver : {"cg", "cholesky", "ialspp"}
        How each row's linear system is solved (formerly ``solver``, still accepted with a
        FutureWarning until fastmf 0.4; the algorithm is always ALS). ``"cg"`` (default): ``cg_steps`` conjugate-gradient steps per row, warm-started from the
        previous sweep, never forming the k x k system (as in implicit's CPU solver, Takács et al.
        2011); ``"cholesky"``: the exact solve; ``"ialspp"``: iALS++ (Rendle, Krichene, Zhang &
        Koren 2021), one pass of exact block steps over ``block_size`` coordinates at a time,
        warm-started from the previous sweep, with a cache of the row's predictions
        :math:`s_{ui} = x_u^\top y_i`: for each block :math:`B`,

        .. math::

            x_B \leftarrow x_B - \big(G_{BB} + \textstyle\sum_{i \in R(u)} (c_{ui} - 1) y_{iB} y_{iB}^\top
            + \lambda_u I\big)^{-1} \big(G_{B:} x + \textstyle\sum_{i \in R(u)} ((c_{ui} - 1) s_{ui}
            - c_{ui} p_{ui}) y_{iB} + \lambda_u x_B\big),

        the exact minimiser of the loss over :math:`x_B`, so no sweep raises it; a half-sweep costs
        :math:`O(\mathrm{nnz}\,k\,b + n k (k + b^2))` instead of :math:`O(\mathrm{nnz}\,k^2 + n k^3)`
        (``block_size >= n_factors``: one block, the exact solve). It pays at large k (hundreds).
    cg_steps : int
        CG steps per row (``linear_solver="cg"`` only).
    block_size : int
        iALS++ block size :math:`b` in [1, 1024] (``linear_solver="ialspp"`` only; blocks are
        ``[0, b), [b, 2b), ...``, the last one shorter when b does not divide ``n_factors``).
    reg_nu, reg_alpha0 : float
        Frequency scaling of the regularisation (``reg_nu=0``: plain ``reg``; Rendle et al. use
        :math:`\nu` in [0, 1]).
    dtype : {"float32", "float64"}
    random_state : None, int or numpy.random.Generator
        Seeds the initial factors (normal, std ``init_std``).
    n_threads : None or int
        Threads (None or -1: all cores); results are identical for every thread count.
    init_std : float
    calculate_loss : bool
        Record the full loss after every sweep in ``history_`` as ``train_loss`` (default True; it
        costs about 1% of a sweep: 0.614 s vs 0.621 s for 15 sweeps on ml-1m partial, 2-core EPYC).
    side, side_reg
        Side features of ``fit(..., item_features=, user_features=)``, as for
        :class:`fastmf.MatrixFactorization` (:mod:`fastmf.models.side`): the map predicts the
        factors of the items / users without interactions (this model has no biases).

    Notes
    -----
    Defaults (k=64, 15 sweeps, reg=0.05 frequency-scaled with nu=1, alpha=5, 3 CG steps) were chosen
    on ml-100k and ml-latest-small with a per-user 20% holdout: ndcg@10 about 0.39 and 0.33 against
    0.22 and 0.19 for Popularity. The classic setting (plain reg=0.01, alpha=40, ``reg_nu=0``) is
    below Popularity there: with 1-5 ratings as strengths it trusts the observed pairs too much.

    Attributes
    ----------
    user_factors_, item_factors_ : ndarray
    history_ : list of dict
        One per sweep: ``epoch``, ``train_loss`` (the objective above, with ``calculate_loss``),
        ``eval_ndcg@k``, ``eval_precision@k``, ``eval_recall@k`` (with an ``eval_set``), ``seconds``
        (the schema of every iterative model: :mod:`fastmf.training.loop`).
        :meth:`history_frame` gives it as a pandas DataFrame.
    best_epoch_ : int
        Sweep (1-based) whose factors the model holds (the last, or the best with early stopping).

    References
    ----------
    Y. Hu, Y. Koren, C. Volinsky. Collaborative filtering for implicit feedback datasets. ICDM 2008.
    G. Takács, I. Pilászy, D. Tikk. Applications of the conjugate gradient method for implicit
    feedback collaborative filtering. RecSys 2011. S. Rendle, W. Krichene, L. Zhang, Y. Koren.
    Revisiting the performance of iALS on item recommendation benchmarks. RecSys 2022.
    S. Rendle, W. Krichene, L. Zhang, Y. Koren. iALS++: Speeding up matrix factorization with
    subspace optimization. arXiv:2110.14044, 2021.
    """

    predicts_ratings = False
    _new_user_needs_ratings = False
    _new_user_values = "strengths"
    _renamed_params = {"n_iterations": "n_epochs", "solver": "linear_solver"}
    _constraints = {
        "n_factors": Interval("int", 1, 1 << 12),
        "n_epochs": Interval("int", 0, MAX_EPOCHS),
        "reg": Interval("real", 0, None),
        "alpha": Interval("real", 0, None),
        "scaling": Options("linear", "log"),
        "eps": Interval("real", 0, None, closed="neither"),
        "linear_solver": Options("cg", "cholesky", "ialspp"),
        "cg_steps": Interval("int", 1, 1 << 10),
        "block_size": Interval("int", 1, 1024),
        "reg_nu": Interval("real", 0, None),
        "reg_alpha0": Interval("real", 0, None),
        "dtype": Options("float32", "float64", np.float32, np.float64),
        "random_state": RandomState(),
        "n_threads": (Options(None, -1), Interval("int", 1, MAX_THREADS)),
        "init_std": Interval("real", 0, None),
        "calculate_loss": Options(True, False),
        **SIDE_CONSTRAINTS,
    }

    def __init__(self, n_factors: int = 64, n_epochs: int = 15, reg: float = 0.05, alpha: float = 5.0,
                 scaling: Literal["linear", "log"] = "linear", eps: float = 1.0,
                 linear_solver: Literal["cg", "cholesky", "ialspp"] = "cg", cg_steps: int = 3, reg_nu: float = 1.0,
                 reg_alpha0: float = 1.0, dtype: FloatDType = "float32", random_state: SeedLike = None,
                 n_threads: Optional[int] = None, init_std: float = 0.01, calculate_loss: bool = True,
                 side: Literal["map"] = "map", side_reg: float = 1.0, block_size: int = 32) -> None:
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.reg = reg
        self.alpha = alpha
        self.scaling = scaling
        self.eps = eps
        self.linear_solver = linear_solver
        self.cg_steps = cg_steps
        self.reg_nu = reg_nu
        self.reg_alpha0 = reg_alpha0
        self.dtype = dtype
        self.random_state = random_state
        self.n_threads = n_threads
        self.init_std = init_std
        self.calculate_loss = calculate_loss
        self.side = side
        self.side_reg = side_reg
        self.block_size = block_size

    def fit(self, train: Union[Ratings, scipy.sparse.spmatrix, scipy.sparse.sparray],
            eval_set: Ratings | None = None, callbacks: Optional[Iterable[Callback]] = None,
            early_stopping_rounds: int | None = None, progress: bool | str = False,
            eval_k: int = 10, early_stopping: str | None = None,
            eval_metrics: Optional[Sequence[str]] = None, item_features: Optional[FeatureLike] = None,
            user_features: Optional[FeatureLike] = None) -> ImplicitALS:
        """Fit on ``train``: a Ratings (values are interaction strengths) or a users x items
        scipy.sparse matrix of counts. Returns self.

        Parameters
        ----------
        train : Ratings or scipy.sparse matrix
        eval_set : Ratings, optional
            Held-out interactions measured after every sweep with :func:`fastmf.evaluate` at cut-off
            ``eval_k``: ``eval_ndcg@k``, ``eval_precision@k`` and ``eval_recall@k`` in ``history_``
            (the items of ``train`` excluded from each user's list, as ``evaluate`` does).
        callbacks : list of callables, optional
            Called as ``cb(model, entry)`` after every sweep with its history entry; returning True
            stops.
        early_stopping_rounds : int, optional
            Stop when the watched metric (default ``eval_ndcg@k``) has not improved for this many sweeps and keep the factors of the
            best sweep (needs ``eval_set``); ``best_epoch_`` tells which.
        progress : bool or "auto"
            Draw a progress bar (tqdm) on stderr, one step per sweep with the latest loss and eval
            metrics; ``"auto"``: only when stderr is a terminal. Default False (prints nothing).
        eval_k : int
            Cut-off of the default eval metrics.
        early_stopping : str, optional
            The eval metric early stopping watches (any ranking key of :func:`fastmf.evaluate`, e.g.
            ``"recall@20"``); default the first of ``eval_metrics``.
        eval_metrics : sequence of str, optional
            What is measured on ``eval_set`` after every sweep; default ``ndcg@k``, ``precision@k``
            and ``recall@k`` with k = ``eval_k``.
        item_features, user_features : optional
            Side features, as for :meth:`fastmf.MatrixFactorization.fit`.
        """
        from fastmf import _als
        from fastmf._validation import Interval
        from fastmf.training import check_fit_options, run_epochs

        if not isinstance(train, Ratings) and hasattr(train, "tocoo"):
            train = Ratings.from_scipy(train)
        self._start_fit(train)
        side = self._side_inputs(train, item_features, user_features)
        if not Interval("int", 1, None).accepts(eval_k):
            raise ValueError(f"eval_k must be a positive int, got {eval_k!r}")
        if eval_metrics is None:
            eval_metrics = (f"ndcg@{eval_k}", f"precision@{eval_k}", f"recall@{eval_k}")
        callbacks, watched = check_fit_options(self, eval_set, callbacks, early_stopping_rounds,
                                               early_stopping, eval_metrics, progress)
        if np.any(train.rating < 0):
            raise ValueError("ImplicitALS: interaction strengths must be >= 0 (negative value at "
                             f"position {int(np.flatnonzero(train.rating < 0)[0])})")
        dtype = np.dtype(self.dtype)
        k = self.n_factors
        kp = -(-k // 8) * 8
        n_threads = resolve_n_threads(self.n_threads)
        check_memory((self.n_users_ + self.n_items_) * k * dtype.itemsize
                     + n_threads * (2 * kp * kp + 8 * kp + 2 * 256 * kp) * 8,
                     "ImplicitALS.fit", "n_factors")
        rng = check_random_state(self.random_state)
        self.user_factors_ = rng.normal(0.0, self.init_std, (self.n_users_, k)).astype(dtype)
        self.item_factors_ = rng.normal(0.0, self.init_std, (self.n_items_, k)).astype(dtype)
        self._run(train, self.n_epochs, 1, dict(
            eval_set=eval_set, eval_metrics=eval_metrics, callbacks=callbacks,
            early_stopping_rounds=early_stopping_rounds, watched=watched, progress=progress))
        return self._fit_side(side)

    def partial_fit(self, train: Ratings, n_epochs: int, eval_set: Ratings | None = None,
                    callbacks: Optional[Iterable[Callback]] = None, progress: bool | str = False,
                    eval_k: int = 10, eval_metrics: Optional[Sequence[str]] = None) -> ImplicitALS:
        """Run ``n_epochs`` more sweeps on ``train`` from the factors the model holds; returns self.
        On an unfitted model it is ``fit`` for ``n_epochs`` sweeps.

        ``train`` must be the data of the first fit (the same Ratings, or one with the same users,
        items and values: checked against the fitted state, ValueError otherwise). Sweeps are
        numbered on from ``best_epoch_``; ``fit`` with ``n_epochs=a`` then ``partial_fit(train, b)``
        gives bit for bit the factors of ``fit`` with ``n_epochs=a + b``. ``reg`` and ``alpha`` may
        change between calls (a regularisation path); ``n_factors`` and ``dtype`` may not. The
        other arguments are those of :meth:`fit` (no early stopping).
        """
        from fastmf._validation import Interval
        from fastmf.training import check_fit_options

        if not Interval("int", 0, None).accepts(n_epochs):
            raise ValueError(f"ImplicitALS.partial_fit: n_epochs must be an int >= 0, got {n_epochs!r}")
        if not isinstance(train, Ratings) and hasattr(train, "tocoo"):
            train = Ratings.from_scipy(train)
        fresh = "history_" not in self.__dict__
        if fresh:
            self._start_fit(train)
        else:
            self._validate_params()
            self._check_continuation(train)
            k, dtype = self.user_factors_.shape[1], self.user_factors_.dtype
            if (self.n_factors, np.dtype(self.dtype)) != (k, dtype):
                raise ValueError(f"ImplicitALS.partial_fit: n_factors={self.n_factors}, dtype={self.dtype} but the "
                                 f"model was fitted with n_factors={k}, dtype={dtype}; call fit")
        if not Interval("int", 1, None).accepts(eval_k):
            raise ValueError(f"eval_k must be a positive int, got {eval_k!r}")
        if eval_metrics is None:
            eval_metrics = (f"ndcg@{eval_k}", f"precision@{eval_k}", f"recall@{eval_k}")
        callbacks, _ = check_fit_options(self, eval_set, callbacks, None, None, eval_metrics, progress)
        if fresh:
            if np.any(train.rating < 0):
                raise ValueError("ImplicitALS: interaction strengths must be >= 0 (negative value at "
                                 f"position {int(np.flatnonzero(train.rating < 0)[0])})")
            rng = check_random_state(self.random_state)
            dtype, k = np.dtype(self.dtype), self.n_factors
            self.user_factors_ = rng.normal(0.0, self.init_std, (self.n_users_, k)).astype(dtype)
            self.item_factors_ = rng.normal(0.0, self.init_std, (self.n_items_, k)).astype(dtype)
        start = 1 if fresh else self._continue_from()
        return self._run(train, n_epochs, start, dict(eval_set=eval_set, eval_metrics=eval_metrics,
                                                      callbacks=callbacks, progress=progress))

    def _run(self, train, n_epochs, start_epoch, loop_options):
        from fastmf import _als
        from fastmf.training import run_epochs

        self._drop_side()  # partial_fit: the map of the last fit no longer matches the factors
        n_threads = resolve_n_threads(self.n_threads)
        dtype = self.user_factors_.dtype
        for name in ("user_factors_", "item_factors_"):  # the kernels take C-contiguous factors
            if not getattr(self, name).flags.c_contiguous:
                setattr(self, name, np.ascontiguousarray(getattr(self, name)))
        csr, csc = train.to_csr(), train.to_csc()
        csr_data = np.ascontiguousarray(csr.data, dtype=dtype)
        csc_data = np.ascontiguousarray(csc.data, dtype=dtype)
        opts = self._kernel_options(n_threads)
        X, Y = self.user_factors_, self.item_factors_

        solver = dict(solver=self.linear_solver, cg_steps=self.cg_steps, block_size=self.block_size)

        def step(epoch):
            _als.ials_half_sweep(csr.indptr, csr.indices, csr_data, Y, X, gram=_als.gram(Y, n_threads),
                                 **solver, **opts)
            _als.ials_half_sweep(csc.indptr, csc.indices, csc_data, X, Y, gram=_als.gram(X, n_threads),
                                 **solver, **opts)
            if not self.calculate_loss:
                return {}
            return {"train_loss": float(_als.ials_loss(csr.indptr, csr.indices, csr_data, X, Y, **opts))}

        run_epochs(self, step, n_epochs, (X, Y), start_epoch=start_epoch,
                   divergence=lambda exc: f" (reg={self.reg}, alpha={self.alpha}): {exc}", **loop_options)
        return self

    def _resolved_n_epochs(self) -> int:
        return self.n_epochs

    def _kernel_options(self, n_threads):
        return dict(reg=self.reg, alpha=self.alpha, scaling=self.scaling, eps=self.eps,
                    reg_nu=self.reg_nu, reg_alpha0=self.reg_alpha0, n_threads=n_threads)

    # ------------------------------------------------------------------ fold-in
    def fold_in(self, items: Ids, values: Optional[Sequence[float]] = None,
                unknown: Unknown = "raise", features: Optional[np.ndarray] = None) -> np.ndarray:
        """Solve a user's factors from their interactions (``values`` default 1) against the fixed
        item factors: the exact (Cholesky) row solve of a user half-sweep, no retraining. Items
        unknown to the model raise KeyError, or are ignored with ``unknown="fallback"``. Returns
        the factor vector (model dtype). ``features`` (a user feature row of a model fitted with
        ``user_features``) and no interactions (``items=[]``): the mapped factors."""
        return self._fold_in(items, values, unknown, features)[0]

    _item_side_caches = ("_gram_cache",)

    def _row_solver(self, side: str) -> RowSolver:
        """One row of ``side`` from its interactions, the other side fixed: the exact (Cholesky)
        row of a half-sweep, the fixed side's Gram matrix computed once per solver (the item
        side's cached across fold-ins)."""
        from fastmf import _als

        fixed = self.item_factors_ if side == "user" else self.user_factors_
        gram = self._item_gram() if side == "user" else _als.gram(fixed)
        dtype = fixed.dtype
        opts = self._kernel_options(1)

        def solve(idx, vals):
            order = np.argsort(idx, kind="stable")
            x = np.zeros((1, self.n_factors), dtype=dtype)
            if idx.size:
                try:
                    _als.ials_half_sweep(np.array([0, idx.size], dtype=np.int64), idx[order].astype(np.int32),
                                         vals[order].astype(dtype), fixed, x, gram=gram, solver="cholesky",
                                         **opts)
                except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
                    raise ValueError(f"ImplicitALS: the {side}'s factors cannot be solved from these ratings "
                                     f"(interaction strengths up to {float(np.max(vals)):g}): {exc}") from None
            return x[0], 0.0

        return solve

    def _item_gram(self):
        from fastmf import _als

        cached = getattr(self, "_gram_cache", None)
        if cached is None or cached[0] is not self.item_factors_:
            cached = (self.item_factors_, _als.gram(self.item_factors_))
            self._gram_cache = cached
        return cached[1]
