"""timeSVD++ (Koren 2009): :class:`TimeSVDpp`, SVD++ whose biases and user factors drift in time."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Literal, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

from fastmf._validation import (FloatDType, Interval, Options, SeedLike, check_memory, check_random_state,
                                resolve_n_threads)
from fastmf.data.ratings import Ratings
from fastmf.models.bags import implicit_bags
from fastmf.models.base import Callback
from fastmf.models.mf import _sgd_auto_threads
from fastmf.models.svdpp import SVDpp

__all__ = ["TimeSVDpp", "DAY_SECONDS", "timestamps_to_seconds"]

#: the length of a day in the unit of the timestamps (seconds, as fastmf.Ratings stores them)
DAY_SECONDS = 86400

#: (switch parameter, kernel array, fitted attribute) of each time term
_TERMS = (
    ("item_bins", "bit", "item_bin_bias_"),
    ("user_drift", "au", "user_drift_"),
    ("day_bias", "but", "user_day_bias_"),
    ("scaling", "cu", "user_scale_"),
    ("scaling", "cut", "user_day_scale_"),
    ("factor_drift", "AP", "user_factor_drift_"),
    ("day_factors", "PT", "user_day_factors_"),
)

#: the kernel's parameter groups (fastmf._timesvd.GROUPS): the (lr, reg) parameter names and the
#: powers of s = (rating range) / 4 that ``rescale=True`` divides the rate by and multiplies the
#: penalty by (module docstring of TimeSVDpp, Notes)
_GROUPS = (
    ("factors", "lr", "reg", 1),
    ("bias", "lr_bias", "reg_bias", 0),
    ("implicit", "lr_implicit", "reg_implicit", 1),
    ("drift", "lr_drift", "reg_drift", 0),
    ("day_bias", "lr_day_bias", "reg_day_bias", 0),
    ("bin", "lr_bin", "reg_bin", 0),
    ("scale", "lr_scale", "reg_scale", 2),
    ("day_scale", "lr_day_scale", "reg_day_scale", 2),
    ("factor_drift", "lr_factor_drift", "reg_factor_drift", 1),
    ("day_factors", "lr_day_factors", "reg_day_factors", 1),
)

_RATE = Interval("real", 0, None)


def timestamps_to_seconds(timestamps: npt.ArrayLike, what: str = "timestamps") -> np.ndarray:
    """``timestamps`` (numbers in seconds, or datetime64) as float64 seconds; ValueError naming the
    first one that is not finite."""
    ts = np.asarray(timestamps)
    if ts.dtype.kind == "M":
        if np.isnat(ts).any():
            raise ValueError(f"{what}[{int(np.flatnonzero(np.isnat(ts).reshape(-1))[0])}] is NaT")
        return ts.astype("datetime64[s]").astype(np.int64).astype(np.float64)
    ts = ts.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(ts.reshape(-1)))
    if bad.size:
        raise ValueError(f"{what}[{int(bad[0])}] = {ts.reshape(-1)[bad[0]]} is not finite")
    return ts


class TimeSVDpp(SVDpp):
    r"""timeSVD++: SVD++ with time-dependent biases, rating scale and user factors (Koren 2009),
    every term switchable, trained by SGD with one learning rate and one penalty per term.

    The model of a rating of user ``u`` for item ``i`` at time ``t`` (in days: ``timestamp //
    86400``):

    .. math::

        \hat r_{ui}(t) = \mu + b_u + \alpha_u \mathrm{dev}_u(t) + b_{u,t}
            + (b_i + b_{i,\mathrm{Bin}(t)})\,(c_u + c_{u,t})
            + q_i^\top \Big(p_u + \alpha_{pu} \mathrm{dev}_u(t) + p_{u,t}
            + |N(u)|^{-\frac12} \sum_{j \in N(u)} y_j\Big),

    with :math:`\mathrm{dev}_u(t) = \mathrm{sign}(t - t_u) |t - t_u|^\beta` (:math:`t_u` the mean day
    of u's training ratings, :math:`\beta` = ``beta`` = 0.4), :math:`\mathrm{Bin}(t)` the time bin of
    the day (``n_bins`` equal bins over the training days, or bins of ``bin_days`` days), and the
    per-(user, day) terms :math:`b_{u,t}, c_{u,t}, p_{u,t}` stored sparsely: one row per (user, day)
    pair of the training data (``user_day_ptr_``, ``user_day_days_``; the whole of ml-latest-small
    has 6,131, not users x days). The switches ``item_bins`` (:math:`b_{i,\mathrm{Bin}(t)}`),
    ``user_drift`` (:math:`\alpha_u`), ``day_bias`` (:math:`b_{u,t}`), ``scaling`` (:math:`c_u +
    c_{u,t}`; off: 1), ``factor_drift`` (:math:`\alpha_{pu}`), ``day_factors`` (:math:`p_{u,t}`) and
    ``implicit_sum`` (the SVD++ sum; off: biased MF with the time terms) turn each term on or off; with
    all of them off but ``implicit_sum`` the model is :class:`fastmf.SVDpp` (the same numbers for the
    same seed and rates). Training minimises, by per-rating SGD (csrc/timesvd.c), the objective with
    every penalty inside the sum over ratings, as in Koren (2009):

    .. math::

        \sum_{(u,i,t)} \Big[e^2 + \lambda (\lVert p_u\rVert^2 + \lVert q_i\rVert^2)
          + \lambda_b (b_u^2 + b_i^2) + \lambda_y \sum_{j \in N(u)} \lVert y_j\rVert^2
          + \lambda_\alpha \alpha_u^2 + \lambda_{bt} b_{u,t}^2 + \lambda_{bin} b_{i,\mathrm{Bin}(t)}^2
          + \lambda_c (c_u - 1)^2 + \lambda_{ct} c_{u,t}^2 + \lambda_{ap} \lVert\alpha_{pu}\rVert^2
          + \lambda_{pt} \lVert p_{u,t}\rVert^2\Big]

    with the gradient step of each term (:func:`fastmf.reference.timesvd_epoch` writes them all),
    e.g. :math:`c_u \mathrel{+}= \eta_c (e (b_i + b_{i,\mathrm{Bin}(t)}) - \lambda_c (c_u - 1))`,
    :math:`\alpha_u \mathrel{+}= \eta_\alpha (e\,\mathrm{dev}_u(t) - \lambda_\alpha \alpha_u)`. The
    implicit sum is accumulated once per user visit as in SVD++. Epochs are serial (users in a
    shuffled order, each user's ratings shuffled: the schedule of ``SVDpp(schedule="user")``), so
    the model is the same for any ``n_threads`` (which serves the implicit sums and the engagement
    model).

    **Time statistics and unseen times.** :math:`t_u`, the bins, the first day and the (user, day)
    rows all come from the training data only. For a time given to ``predict`` / ``recommend`` /
    ``evaluate``: a day on which the user has no training rating has :math:`b_{u,t} = c_{u,t} = 0,
    p_{u,t} = 0`; the bin is clamped to the first / last training bin; :math:`\mathrm{dev}_u(t)` is
    that of the day clamped to the user's first and last training day, so the drift never
    extrapolates beyond what was fitted. An unknown user gets :math:`\mu + b_i +
    b_{i,\mathrm{Bin}(t)}`. Without timestamps (``timestamps=None``) the time is the last training
    timestamp (``last_time_``). A training set without timestamps puts every rating at time 0.

    Parameters
    ----------
    n_factors, n_epochs, lr, reg, init_std, n_threads, random_state, implicit
        As for :class:`fastmf.SVDpp` (``lr``, ``reg``: the factors :math:`p_u, q_i`; defaults 0.008
        and 0.053).
    n_bins : int
        Time bins of the item bias over the training days (Koren: 30), unless ``bin_days`` is set.
    bin_days : None or int
        Width of a bin in days (overrides ``n_bins``).
    beta : float
        Exponent of :math:`\mathrm{dev}_u`.
    item_bins, user_drift, day_bias, scaling, factor_drift, day_factors, implicit_sum : bool
        The switches above (``day_factors`` is off by default: it adds n_user_days x k parameters).
    lr_bias, reg_bias, lr_implicit, reg_implicit
        As for :class:`fastmf.SVDpp` (``lr_implicit`` None: ``lr``; ``reg_implicit`` None: ``reg``).
    lr_drift, reg_drift, lr_day_bias, reg_day_bias, lr_bin, reg_bin, lr_scale, reg_scale,
    lr_day_scale, reg_day_scale, lr_factor_drift, reg_factor_drift, lr_day_factors, reg_day_factors : float
        The step and penalty of :math:`\alpha_u, b_{u,t}, b_{i,\mathrm{Bin}}, c_u, c_{u,t},
        \alpha_{pu}, p_{u,t}` (see Notes).
    rescale : bool
        Rescale every rate and penalty from a rating range of 4 to the training data's (Notes).
    dtype, verbose, ranking, engagement_*
        As for :class:`fastmf.SVDpp`.

    Notes
    -----
    **Rates and penalties** differ by orders of magnitude across the groups, which is the point of
    per-group rates (Koren 2009, Sec. 4, and the BellKor 2008 Progress Prize report give Netflix
    values on its 1-5 scale: b_u 3e-3/3e-3, b_i 2e-3/3e-2, alpha_u 1e-5/50, b_{u,t} 2.5e-3/5e-3,
    b_{i,Bin} 5e-5/0.1, c_u 8e-3/1e-2, c_{u,t} 2e-3/5e-3). The defaults take them for the time
    terms (the drift of the factors at the rate and penalty of alpha_u; p_{u,t} 2e-3/5e-2) except
    the scale, whose rates are 4x smaller (c_u 2e-3, c_{u,t} 5e-4: Koren's overfit the
    leave-last-out split), and SVDpp's defaults for the static groups with lr 0.008, reg 0.053 and
    a 3x larger penalty on the implicit rows (0.015), chosen on ml-latest-small over about 30 fits
    on a leave-last-out and a global temporal split (README, timeSVD++ section): a larger
    ``reg_implicit`` helps most on the temporal split, the smaller scale rates on leave-last-out.
    Every value is stated for a rating range of 4 (a 1-5 scale). With ``rescale=True`` (default)
    ``fit`` maps them to the training data's range :math:`4 s` so that SGD takes the same path on
    ratings multiplied by s: additive terms in rating units (biases, drifts, day biases, bins) keep
    their values; factor groups (p, q, y, :math:`\alpha_{pu}, p_{u,t}`, whose entries scale as
    :math:`\sqrt s`) use lr / s and reg * s; the unitless scale :math:`c_u, c_{u,t}` uses lr /
    s^2 and reg * s^2 (ml-latest-small, 0.5-5: s = 1.125).

    Fold-in (``fold_in``, ``recommend_new``, ``partial_fit_users``) uses no time term: the new user
    is solved and scored as SVD++ (:class:`fastmf.SVDpp`), with the static item bias. ``evaluate``
    reports the error on test ratings whose (user, day) was seen in training and on the others
    (``rmse_day_seen`` ...), which is where the day terms can help.

    References
    ----------
    Y. Koren. Collaborative filtering with temporal dynamics. KDD 2009 (and CACM 53(4), 2010).
    R. Bell, Y. Koren, C. Volinsky. The BellKor 2008 solution to the Netflix Prize.
    """

    _constraints = {
        **{k: v for k, v in SVDpp._constraints.items() if k not in ("schedule", "n_blocks")},
        "n_bins": Interval("int", 1, 1 << 16),
        "bin_days": (Options(None), Interval("int", 1, None)),
        "beta": Interval("real", 0, 2),
        **{name: Options(True, False) for name in ("item_bins", "user_drift", "day_bias", "scaling",
                                                  "factor_drift", "day_factors", "implicit_sum", "rescale")},
        **{name: _RATE for _, lr, reg, _p in _GROUPS[3:] for name in (lr, reg)},
    }
    _per_item_state = ("item_factors_", "item_bias_", "item_implicit_", "item_engagement_", "item_bin_bias_")
    #: predictions depend on the time (fastmf.models.base)
    _uses_time = True
    #: the epochs are serial (SVDpp's schedule="user"); not a parameter
    schedule = "user"

    def __init__(self, n_factors: int = 100, n_epochs: int = 40, lr: float = 0.008, reg: float = 0.053,
                 init_std: float = 0.01, n_threads: Optional[int] = None, random_state: SeedLike = None,
                 implicit: Any = None, n_bins: int = 30, bin_days: Optional[int] = None, beta: float = 0.4,
                 item_bins: bool = True, user_drift: bool = True, day_bias: bool = True, scaling: bool = True,
                 factor_drift: bool = True, day_factors: bool = False, implicit_sum: bool = True,
                 lr_bias: Optional[float] = 0.003, reg_bias: float = 0.005, lr_implicit: Optional[float] = None,
                 reg_implicit: Optional[float] = 0.015, lr_drift: float = 1e-5, reg_drift: float = 50.0,
                 lr_day_bias: float = 0.0025, reg_day_bias: float = 0.005, lr_bin: float = 5e-5,
                 reg_bin: float = 0.1, lr_scale: float = 0.002, reg_scale: float = 0.01,
                 lr_day_scale: float = 0.0005, reg_day_scale: float = 0.005, lr_factor_drift: float = 1e-5,
                 reg_factor_drift: float = 50.0, lr_day_factors: float = 0.002, reg_day_factors: float = 0.05,
                 rescale: bool = True, dtype: FloatDType = "float32", verbose: bool = False,
                 ranking: Literal["engagement", "rating"] = "engagement", engagement_factors: int = 32,
                 engagement_iterations: int = 6, engagement_alpha: float = 5.0,
                 engagement_reg: float = 0.02) -> None:
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.lr = lr
        self.reg = reg
        self.init_std = init_std
        self.n_threads = n_threads
        self.random_state = random_state
        self.implicit = implicit
        self.n_bins = n_bins
        self.bin_days = bin_days
        self.beta = beta
        self.item_bins = item_bins
        self.user_drift = user_drift
        self.day_bias = day_bias
        self.scaling = scaling
        self.factor_drift = factor_drift
        self.day_factors = day_factors
        self.implicit_sum = implicit_sum
        self.lr_bias = lr_bias
        self.reg_bias = reg_bias
        self.lr_implicit = lr_implicit
        self.reg_implicit = reg_implicit
        self.lr_drift = lr_drift
        self.reg_drift = reg_drift
        self.lr_day_bias = lr_day_bias
        self.reg_day_bias = reg_day_bias
        self.lr_bin = lr_bin
        self.reg_bin = reg_bin
        self.lr_scale = lr_scale
        self.reg_scale = reg_scale
        self.lr_day_scale = lr_day_scale
        self.reg_day_scale = reg_day_scale
        self.lr_factor_drift = lr_factor_drift
        self.reg_factor_drift = reg_factor_drift
        self.lr_day_factors = lr_day_factors
        self.reg_day_factors = reg_day_factors
        self.rescale = rescale
        self.dtype = dtype
        self.verbose = verbose
        self.ranking = ranking
        self.engagement_factors = engagement_factors
        self.engagement_iterations = engagement_iterations
        self.engagement_alpha = engagement_alpha
        self.engagement_reg = engagement_reg

    # ------------------------------------------------------------------ rates
    def group_rates(self) -> Dict[str, Tuple[float, float]]:
        """``{group: (lr, reg)}`` as the kernel takes them: the parameters, with ``lr_bias``,
        ``lr_implicit`` None read as ``lr`` and ``reg_implicit`` None as ``reg``, rescaled to the
        training data's rating range (``rescale``, Notes). Needs a fitted model (the range)."""
        s = 1.0
        if self.rescale:
            lo, hi = self._scale_bounds()
            if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
                s = (hi - lo) / 4.0
        out = {}
        for group, lr_name, reg_name, power in _GROUPS:
            lr, reg = getattr(self, lr_name), getattr(self, reg_name)
            if lr is None:
                lr = self.lr
            if reg is None:
                reg = self.reg
            out[group] = (float(lr) / s ** power, float(reg) * s ** power)
        return out

    # ------------------------------------------------------------------ time
    def _time_index(self, users: np.ndarray, seconds: np.ndarray) -> None:
        """The time statistics of the training ratings (``users`` dense, ``seconds`` their times):
        ``first_day_``, ``last_time_``, ``bin_width_``, ``user_mean_day_`` (:math:`t_u`; the last
        training day for a user without ratings) and the (user, day) rows ``user_day_ptr_``,
        ``user_day_days_`` (each user's distinct days, ascending)."""
        day = np.floor_divide(seconds, DAY_SECONDS).astype(np.int64)
        first, last = int(day.min()), int(day.max())
        span = last - first + 1
        self.first_day_ = first
        self.last_time_ = int(np.max(seconds))
        width = self.bin_days if self.bin_days is not None else -(-span // self.n_bins)
        self.bin_width_ = int(max(1, width))
        n = self.n_users_
        counts = np.bincount(users, minlength=n)
        sums = np.bincount(users, weights=(day - first).astype(np.float64), minlength=n)
        mean = np.full(n, float(last - first))
        mean[counts > 0] = sums[counts > 0] / counts[counts > 0]
        self.user_mean_day_ = mean + first
        keys = np.unique(users.astype(np.int64) * span + (day - first))
        self.user_day_ptr_ = np.r_[0, np.cumsum(np.bincount(keys // span, minlength=n))].astype(np.int64)
        self.user_day_days_ = (keys % span + first).astype(np.int64)

    def _n_bins(self) -> int:
        bit = getattr(self, "item_bin_bias_", None)
        return 1 if bit is None else bit.shape[1]

    def time_features(self, u: np.ndarray, timestamps: Optional[npt.ArrayLike]) -> Tuple[np.ndarray, ...]:
        """``(bins int32, rows int64, dev float64)`` of users ``u`` (dense indices, -1 unknown) at
        ``timestamps`` (seconds; one, or one per user; None: ``last_time_``): the item-bias bin
        (clamped to the training bins), the (user, day) row (-1: a day the user has no training
        rating on, or an unknown user) and :math:`\\mathrm{dev}_u(t)` of the day clamped to the
        user's training days (0 for an unknown user or one without ratings). The one place that
        maps a time to the model's terms: training uses it on the training ratings too."""
        u = np.asarray(u, dtype=np.int64)
        ts = np.float64(self.last_time_) if timestamps is None else timestamps_to_seconds(timestamps)
        day = np.broadcast_to(np.floor_divide(ts, DAY_SECONDS), u.shape).astype(np.int64)
        bins = np.clip((day - self.first_day_) // self.bin_width_, 0, self._n_bins() - 1).astype(np.int32)
        ptr, days = self.user_day_ptr_, self.user_day_days_
        known = u >= 0
        uk = u[known]
        lo, hi = ptr[uk], ptr[uk + 1]
        has = hi > lo
        rows = np.full(u.shape, -1, dtype=np.int64)
        dev = np.zeros(u.shape, dtype=np.float64)
        if days.size:
            last_day = self.last_time_ // DAY_SECONDS
            span = int(last_day - self.first_day_ + 1)
            owner = np.repeat(np.arange(self.n_users_, dtype=np.int64), np.diff(ptr))
            keys = owner * span + (days - self.first_day_)
            dk = day[known]
            inside = (dk >= self.first_day_) & (dk <= last_day)
            want = uk * span + (dk - self.first_day_)
            pos = np.minimum(np.searchsorted(keys, want), keys.size - 1)
            hit = inside & (keys[pos] == want)
            r = np.where(hit, pos, -1)
            rows[known] = r
            first_u = days[np.where(has, lo, 0)]
            last_u = days[np.where(has, hi - 1, 0)]
            x = np.clip(dk, first_u, last_u) - self.user_mean_day_[uk]
            dk_dev = np.where(has, np.sign(x) * np.abs(x) ** float(self.beta), 0.0)
            dev[known] = dk_dev
        return bins, rows, dev

    def day_seen(self, user_index: npt.ArrayLike, timestamps: npt.ArrayLike) -> np.ndarray:
        """True where user ``user_index[n]`` (dense, -1 unknown) rated something in training on the
        day of ``timestamps[n]``: the split of :func:`fastmf.evaluate`'s ``*_day_seen`` metrics."""
        self._check_fitted()
        return self.time_features(np.asarray(user_index, dtype=np.int64), timestamps)[1] >= 0

    # ------------------------------------------------------------------ training
    def fit(self, train: Ratings, eval_set: Ratings | None = None,
            callbacks: Optional[Iterable[Callback]] = None, early_stopping_rounds: int | None = None,
            progress: bool | str = False, early_stopping: str | None = None,
            eval_metrics: Sequence[str] = ("rmse", "mae")) -> TimeSVDpp:
        """Train on ``train`` (its timestamps: seconds); returns self. The arguments are those of
        :meth:`fastmf.MatrixFactorization.fit` (an eval set with timestamps is predicted at its
        times)."""
        from fastmf import _svdpp, _timesvd
        from fastmf.training import StepTrainer, check_fit_options, run_epochs

        self._start_fit(train)
        callbacks, watched = check_fit_options(self, eval_set, callbacks, early_stopping_rounds,
                                               early_stopping, eval_metrics, progress)
        n_threads = _sgd_auto_threads(resolve_n_threads(self.n_threads), self, len(train))
        dtype = np.dtype(self.dtype)
        if self.implicit_sum:
            bag = implicit_bags(train, self.implicit)
        else:
            bag = (np.zeros(self.n_users_ + 1, np.int64), np.zeros(0, np.int32), np.zeros(self.n_users_))
        k = self.n_factors
        csr = train.to_csr()
        users = np.repeat(np.arange(self.n_users_, dtype=np.int32), np.diff(csr.indptr))
        seconds = (np.zeros(len(train)) if train.timestamp is None
                   else train.timestamp[train.csr_order()].astype(np.float64))
        self._time_index(users, seconds)
        n_days = int(self.user_day_days_.size)
        span = (self.last_time_ // DAY_SECONDS) - self.first_day_ + 1
        n_bins = int(-(-span // self.bin_width_))
        check_memory((self.n_users_ * 3 + self.n_items_ * 2 + n_days * (1 + self.day_factors)) * k * dtype.itemsize
                     + (self.n_users_ + self.n_items_) * k * 8 + 40 * len(train) + 12 * bag[1].size
                     + self.n_items_ * n_bins * dtype.itemsize, f"{type(self).__name__}.fit", "n_factors")
        self._drop_engagement()
        rng = check_random_state(self.random_state)
        P = rng.normal(0.0, self.init_std, (self.n_users_, k)).astype(dtype)
        self.item_factors_ = rng.normal(0.0, self.init_std, (self.n_items_, k)).astype(dtype)
        self.item_implicit_ = rng.normal(0.0, self.init_std, (self.n_items_, k)).astype(dtype)
        if not self.implicit_sum:
            self.item_implicit_[...] = 0
        self.user_bias_ = np.zeros(self.n_users_, dtype=dtype)
        self.item_bias_ = np.zeros(self.n_items_, dtype=dtype)
        self.user_factors_ = np.empty((self.n_users_, k), dtype=dtype)
        self.seed_ = int(rng.integers(0, 2**63 - 1))
        shapes = {"bit": (self.n_items_, n_bins), "au": (self.n_users_,), "but": (n_days,), "cu": (self.n_users_,),
                  "cut": (n_days,), "AP": (self.n_users_, k), "PT": (n_days, k)}
        model = {"P": P, "Q": self.item_factors_, "Y": self.item_implicit_, "bu": self.user_bias_,
                 "bi": self.item_bias_}
        for switch, name, attr in _TERMS:
            if getattr(self, switch):
                model[name] = np.ones(shapes[name], dtype) if name == "cu" else np.zeros(shapes[name], dtype)
                setattr(self, attr, model[name])
            else:
                self.__dict__.pop(attr, None)
        items = np.ascontiguousarray(csr.indices, dtype=np.int32)
        ratings = np.ascontiguousarray(csr.data, dtype=dtype)
        time = self.time_features(users, seconds)
        rates = self.group_rates()
        hyper = (self.global_mean_, [rates[g][0] for g in _timesvd.GROUPS], [rates[g][1] for g in _timesvd.GROUPS])
        n = len(train)
        # the effective user rows P + z (an O(nnz k) pass over the implicit rows) after every epoch
        # only when something looks at the model between epochs (an eval set, early stopping,
        # callbacks); otherwise once, after the last epoch: the same fitted model either way
        observed = eval_set is not None or bool(callbacks)

        def step(epoch):
            order = _svdpp.user_order(csr.indptr, self.seed_, epoch)
            sse = _timesvd.timesvd_epoch(users, items, ratings, order, model, time, bag, hyper)
            if observed:
                self._effective(P, bag, n_threads)
            return {"train_rmse": float(np.sqrt(sse / n))}

        state = (self.user_factors_, *model.values())
        self.history_ = []
        self.best_epoch_ = 0
        run_epochs(self, StepTrainer(step, state, lambda exc: f" (lr={self.lr}, reg={self.reg}): {exc}"),
                   self.n_epochs, eval_set=eval_set, eval_metrics=eval_metrics, callbacks=callbacks,
                   early_stopping_rounds=early_stopping_rounds, watched=watched, progress=progress,
                   verbose=self.verbose)
        if self.n_epochs == 0 or not observed:
            self._effective(P, bag, n_threads)
        if self.ranking == "engagement":
            self._engagement()
        return self

    # ------------------------------------------------------------------ scoring
    def _user_terms(self, u: np.ndarray, rows: np.ndarray, dev: np.ndarray) -> Tuple[np.ndarray, ...]:
        r"""For known users ``u`` with their (user, day) rows and devs (:meth:`time_features`):
        ``(offset, scale, X)``: :math:`\mu + b_u + \alpha_u \mathrm{dev} + b_{u,t}`, :math:`c_u +
        c_{u,t}` and the time-dependent factor rows :math:`p_u + z_u + \alpha_{pu} \mathrm{dev} +
        p_{u,t}`, all float64."""
        seen = rows >= 0
        offset = self.global_mean_ + self.user_bias_[u].astype(np.float64)
        scale = np.ones(u.shape)
        X = self.user_factors_[u].astype(np.float64)
        drift = getattr(self, "user_drift_", None)
        if drift is not None:
            offset += drift[u] * dev
        day_bias = getattr(self, "user_day_bias_", None)
        if day_bias is not None:
            offset[seen] += day_bias[rows[seen]]
        if getattr(self, "user_scale_", None) is not None:
            scale = self.user_scale_[u].astype(np.float64)
            scale[seen] += self.user_day_scale_[rows[seen]]
        fdrift = getattr(self, "user_factor_drift_", None)
        if fdrift is not None:
            X += fdrift[u] * dev[:, None]
        day_factors = getattr(self, "user_day_factors_", None)
        if day_factors is not None:
            X[seen] += day_factors[rows[seen]]
        return offset, scale, X

    def _item_bias_at(self, i: Any, bins: np.ndarray) -> np.ndarray:
        r""":math:`b_i + b_{i,\mathrm{Bin}}` of items ``i`` in ``bins`` (float64)."""
        b = self.item_bias_[i].astype(np.float64)
        bit = getattr(self, "item_bin_bias_", None)
        if bit is not None:
            b = b + bit[i, bins]
        return b

    def _predict_pairs(self, u, i):
        return self._predict_pairs_at(u, i, None)

    def _predict_pairs_at(self, u, i, timestamps):
        r"""The model's formula for dense pairs (-1 unknown) at ``timestamps`` (one, one per pair, or
        None: ``last_time_``): an unknown user gets :math:`\mu + b_i + b_{i,\mathrm{Bin}(t)}`, an
        unknown item :math:`\mu` plus the user's bias terms."""
        bins, rows, dev = self.time_features(u, timestamps)
        pred = np.full(u.shape, self.global_mean_, dtype=np.float64)
        scale = np.ones(u.shape)
        ku, ki = u >= 0, i >= 0
        X = None
        if ku.any():
            offset, scale[ku], X = self._user_terms(u[ku], rows[ku], dev[ku])
            pred[ku] = offset
        if ki.any():
            pred[ki] += self._item_bias_at(i[ki], bins[ki]) * scale[ki]
        both = ku & ki
        if both.any():
            pred[both] += np.einsum("ij,ij->i", X[both[ku]], self.item_factors_[i[both]].astype(np.float64))
        return pred

    def _score_users(self, u):
        return self._score_users_at(u, None)

    def _score_users_at(self, u, timestamps):
        """Scores of known users ``u`` for every item at ``timestamps`` (one per user, or one):
        the predicted rating, engagement-weighted with ``ranking="engagement"``."""
        u = np.asarray(u, dtype=np.int64)
        bins, rows, dev = self.time_features(u, timestamps)
        offset, scale, X = self._user_terms(u, rows, dev)
        from fastmf import _topk

        nt = resolve_n_threads(self.n_threads)
        # the top-k kernel's scorer, not BLAS: a user's scores do not depend on the batch
        scores = _topk.score_factors(np.ascontiguousarray(X, dtype=np.float64),
                                     self.item_factors_.astype(np.float64), n_threads=nt)
        item_b = self.item_bias_.astype(np.float64)[None, :]
        bit = getattr(self, "item_bin_bias_", None)
        if bit is not None:
            item_b = item_b + bit[:, bins].T
        scores += offset[:, None] + item_b * scale[:, None]
        if self.ranking == "engagement":
            E, F = self._engagement()
            return self._engagement_weighted(scores, _topk.score_factors(E, F, users=u, n_threads=nt))
        return scores

    def _factor_scores(self):
        return None  # time-dependent scale and bins: scored in blocks by _score_users

    def _fallback_scores(self):
        """Ranking of an unknown user: as :class:`fastmf.SVDpp`, with the item bias of the last
        training bin."""
        if getattr(self, "item_bin_bias_", None) is None:
            return super()._fallback_scores()
        saved = self.item_bias_
        bins = self.time_features(np.array([-1]), None)[0][0]
        try:
            self.item_bias_ = (saved.astype(np.float64) + self.item_bin_bias_[:, bins]).astype(saved.dtype)
            return super()._fallback_scores()
        finally:
            self.item_bias_ = saved

    # ------------------------------------------------------------------ persistence
    @staticmethod
    def _check_state(values: Dict[str, Any]) -> None:
        """What the registry's declaration cannot say: the (user, day) rows rise from 0 and hold
        each user's days in ascending order within the training days; the per-day scale exists
        exactly when the per-user one does."""
        ptr, days = values["user_day_ptr_"], values["user_day_days_"]
        if ptr[0] != 0 or ptr[-1] != days.size or (np.diff(ptr) < 0).any():
            raise ValueError(f"TimeSVDpp: user_day_ptr_ must rise from 0 to len(user_day_days_) = {days.size}")
        first, last_time = values["first_day_"], values["last_time_"]
        last = last_time // DAY_SECONDS
        if first > last:
            raise ValueError(f"TimeSVDpp: first_day_ = {first} is after the day of last_time_ ({last})")
        if days.size:
            owner = np.repeat(np.arange(ptr.size - 1), np.diff(ptr))
            step = np.diff(days)
            bad = np.flatnonzero((step <= 0) & (owner[1:] == owner[:-1]))
            if bad.size:
                raise ValueError(f"TimeSVDpp: user_day_days_ must ascend within each user; position {bad[0] + 1}")
            out = np.flatnonzero((days < first) | (days > last))
            if out.size:
                raise ValueError(f"TimeSVDpp: user_day_days_[{out[0]}] = {days[out[0]]} is outside the "
                                 f"training days [{first}, {last}]")
        if (values.get("user_scale_") is None) != (values.get("user_day_scale_") is None):
            raise ValueError("TimeSVDpp: user_scale_ and user_day_scale_ come together (scaling=True)")
        bit = values.get("item_bin_bias_")
        if bit is not None:
            span = last - first + 1
            if bit.shape[1] != -(-span // values["bin_width_"]):
                raise ValueError(f"TimeSVDpp: item_bin_bias_ has {bit.shape[1]} bins; the training days "
                                 f"({span}) in bins of {values['bin_width_']} days make {-(-span // values['bin_width_'])}")
