"""Latent-factor models for explicit ratings: :class:`MatrixFactorization`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Iterable, Literal, Optional, Sequence, Tuple

import numpy as np

from fastmf._validation import (MAX_EPOCHS, MAX_THREADS, check_memory, FloatDType, Interval, Options, RandomState, SeedLike, check_random_state,
                                resolve_n_threads)
from fastmf.models.base import Callback, Ids, Unknown
from fastmf.models.engagement import ENGAGEMENT_CONSTRAINTS, EngagementRanked
from fastmf.models.factor import RowSolver, ridge_row
from fastmf.models.side import JOINT_CONSTRAINTS, feature_csr
from fastmf.data.ratings import Ratings
from fastmf.training.loop import DivergenceError

if TYPE_CHECKING:  # pragma: no cover
    from fastmf.data.features import FeatureLike
    from fastmf.data.ratings import Ratings
    from fastmf.models.base import Recommender  # noqa: F401 (named by the Callback hint)

__all__ = ["MatrixFactorization", "DivergenceError"]

logger = logging.getLogger(__name__)  # "fastmf.models.mf"; nothing here configures the root logger


class MatrixFactorization(EngagementRanked):
    """Biased matrix factorization of explicit ratings, trained by SGD or by alternating least squares.

    The model and the objective (Koren, Bell & Volinsky 2009; Funk 2006; Zhou et al. 2008):

    .. math::

        \\hat r_{ui} = \\mu + b_u + b_i + p_u^\\top q_i, \\qquad
        \\min_{P, Q, b} \\sum_{(u,i) \\in R} \\big[(r_{ui} - \\hat r_{ui})^2
            + \\lambda (\\lVert p_u \\rVert^2 + \\lVert q_i \\rVert^2) + \\lambda_b (b_u^2 + b_i^2)\\big]

    The penalty sits inside the sum over ratings, so a row's regularisation grows with its number
    of ratings (the "weighted-lambda" of ALS-WR).

    ``solver="sgd"`` visits every training rating once per epoch in a shuffled order and, with
    :math:`e_{ui} = r_{ui} - \\hat r_{ui}` and learning rate :math:`\\eta`, updates

    .. math::

        b_u \\mathrel{+}= \\eta (e_{ui} - \\lambda_b b_u), \\quad
        b_i \\mathrel{+}= \\eta (e_{ui} - \\lambda_b b_i), \\quad
        p_u \\mathrel{+}= \\eta (e_{ui} q_i - \\lambda p_u), \\quad
        q_i \\mathrel{+}= \\eta (e_{ui} p_u^{old} - \\lambda q_i).

    ``solver="als"`` alternates exact solves: every user's :math:`[b_u, p_u]` from the
    :math:`(k+1) \\times (k+1)` normal equations with the item side fixed, then every item's
    (Cholesky, or a few warm-started conjugate-gradient steps with ``linear_solver="cg"``). Each
    half-sweep minimises the objective over one side, so it never increases.

    ``biased=False`` drops :math:`\\mu, b_u, b_i` (plain :math:`p_u^\\top q_i`, Funk's SVD).

    Parameters
    ----------
    n_factors : int
        Latent dimension k.
    n_epochs : int or None
        SGD epochs or ALS sweeps; None: 40 for SGD, 15 for ALS.
    lr : float
        SGD learning rate :math:`\\eta` (> 0).
    reg : float
        Regularisation :math:`\\lambda` of the factors per rating (and of the biases unless
        ``reg_bias`` is set).
    solver : {"sgd", "als"}
        Training algorithm.
    biased : bool
        Learn :math:`\\mu + b_u + b_i` besides the factors.
    dtype : {"float32", "float64"}
        Precision of the factors (losses and ALS systems are accumulated in double).
    random_state : None, int or numpy.random.Generator
        Seeds the initial factors and every epoch's order. The same int gives bit-identical models.
    n_threads : None or int
        Threads for training (None or -1: all cores, except that blocked SGD on fewer than 20,000
        ratings runs on one, where handing rows between cores costs more than a second thread
        saves). The result does not depend on it (blocked SGD schedule, see ``n_blocks``; ALS rows
        are independent).
    init_std : float
        Standard deviation of the normal initial factors (biases start at 0).
    reg_bias : float or None
        Regularisation :math:`\\lambda_b` of the biases; None uses ``reg``.
    schedule : {"blocked", "shuffle", "hogwild"}
        Order of the updates in an epoch. ``"blocked"`` (default) cuts users and items into
        ``n_blocks`` groups each and processes the blocks that share no row concurrently, each block
        in a shuffled order (LIBMF's scheme, no races): the model does not depend on the thread count (see ``n_blocks``).
        ``"shuffle"``: one global random permutation per epoch, single-threaded (the textbook order;
        equals ``fastmf.reference.sgd_epoch`` over :meth:`epoch_order`). ``"hogwild"``: the shuffled
        order cut among threads that update shared rows without locks (fast, not reproducible with
        more than one thread).
    n_blocks : None or int
        Blocks per side for the blocked schedule (None: 8, or ``n_threads`` when it is set above 8
        explicitly; never the machine's core count). The default doubles (up to 64) while the
        factor rows of one block would fill more than half of a core's share of the last-level cache
        (:func:`fastmf._machine.sgd_blocks`; cache sizes from sysfs, overridable with
        ``FASTMF_CACHE_SIZES="L2=512K,L3=4M"``): at the ML-1M shape up to k = 128 that is 8 on common
        machines, for ML-20M-size models more. The model depends on ``n_blocks`` and the seed only,
        so with the default it is the same for any thread count up to 8 on one machine (set
        ``n_blocks`` for the same model on machines with different caches).
    shuffle : bool
        Re-shuffle the order every epoch (False keeps the input order for "shuffle"/"hogwild" and each
        block's rating order for "blocked"; for debugging and exact comparisons).
    verbose : bool
        Log one line per epoch at INFO (logger ``"fastmf.models.mf"``). When no handler would show it,
        fastmf adds one stderr handler to its own ``"fastmf"`` logger; the root logger is never
        configured. For a progress bar use ``fit(..., progress=True)``.
    weighted : bool
        ALS only: True (default) scales a row's penalty by its rating count as in the objective
        above; False uses ``reg`` and ``reg_bias`` as plain constants per row.
    linear_solver : {"cholesky", "cg"}
        ALS only: exact Cholesky solves, or ``cg_steps`` conjugate-gradient steps warm-started from
        the previous sweep (cheaper for large k). Formerly ``als_solver`` (still accepted, with a
        FutureWarning, until fastmf 0.4).
    cg_steps : int
        Conjugate-gradient steps per row and sweep for ``linear_solver="cg"``.
    ranking : {"engagement", "rating"}
        What :meth:`recommend` (and ``recommend_all``, ``recommend_new``, :func:`fastmf.evaluate`'s
        ranking metrics) ranks by; ``predict`` is the same either way. ``"engagement"`` (default):
        the predicted rating weighted by how likely the user is to engage with the item at all,
        the **engagement-weighted rating**

        .. math::

            s_{ui} = r_{lo} + e_{ui}\\,(\\mathrm{clip}(\\hat r_{ui}) - r_{lo}), \\qquad
            e_{ui} = \\mathrm{clip}_{[0, 1]}(x_u^\\top y_i)

        where :math:`[r_{lo}, r_{hi}]` is the rating scale and :math:`x_u, y_i` are the factors of
        an implicit-ALS model (Hu, Koren & Volinsky 2008, the :class:`fastmf.ImplicitALS` kernel) of
        the binary "rated" matrix of the training data, fitted at the end of :meth:`fit`
        (``engagement_*`` parameters). The score stays within the rating scale: the predicted
        rating for an item the user is sure to engage with, the scale's minimum for one they will
        not. Users the model does not know (``unknown="fallback"``) get
        :math:`e_{ui} = |R(i)| / n_{users}`, the share of training users who rated the item.
        ``"rating"``: the plain predicted-rating order (:math:`\\hat r_{ui}`, returned clipped to
        the scale), which favours rarely rated items with high predicted ratings.
    engagement_factors : int
        Latent dimension of the engagement model.
    engagement_iterations : int
        Alternating sweeps of the engagement model (3 conjugate-gradient steps per row).
    engagement_alpha : float
        Confidence of an observed "rated" pair, :math:`c = 1 + \\alpha`.
    engagement_reg : float
        Regularisation of the engagement model, scaled by row frequency as in
        :class:`fastmf.ImplicitALS` (``reg_nu=1``).
    side : {"map", "joint"}
        How side features (``fit(..., item_features=, user_features=)``) are used: ``"map"``
        (Gantner et al. 2010) fits a ridge regression from features to the learned factors, bias
        and engagement row after training and gives it to the items / users without ratings
        (:mod:`fastmf.models.side`); warm predictions are unchanged. ``"joint"`` learns
        feature factors with the model (Koren 2009, eq. 6 on the item side; the SVDFeature form):
        with the item's normalised feature row :math:`x_i` (for binary genres
        :math:`x_{ig} = |G(i)|^{-1/2}`),

        .. math::

            q_i^{eff} = q_i + \\sum_g x_{ig} z_g, \\qquad b_i^{eff} = b_i + \\sum_g x_{ig} w_g

        (users likewise when ``user_features`` are given), trained on
        :math:`\\hat r_{ui} = \\mu + b_u^{eff} + b_i^{eff} + p_u^{eff\\top} q_i^{eff}` by SGD (update rule:
        ``fastmf.reference.sgd_side_epoch``, kernel csrc/sgd_side.c) or by ALS (``solver="als"``,
        below). ``item_factors_`` /
        ``item_bias_`` hold the effective parameters; an item without ratings has free part 0, so
        its parameters are its feature part, and ``item_side_map_`` holds :math:`[Z, w]` (no
        intercept): cold items, ``add_items``, ``side_vectors`` and ``similar_to_features`` work as
        in map mode. The engagement rows of cold items still come from the map. The epochs are
        serial (the feature rows are shared across any block plan) in the order of
        :meth:`epoch_order`, whatever ``schedule`` and ``n_threads`` say, so the same seed gives
        the same model for any thread count. ``partial_fit`` continues as plain MF from the
        effective parameters and drops the features, as in map mode.

        With ``solver="als"`` the objective is the SGD mode's without dropout (penalties per
        rating, constants with ``weighted=False``): with :math:`n_r` the ratings of a row and
        :math:`N_g` those of the rows holding feature g,

        .. math::

            \\sum_{(u,i)} e_{ui}^2 + \\sum_u n_u (\\lambda \\lVert p_u \\rVert^2 + \\lambda_b b_u^2)
            + \\sum_i n_i (\\lambda_{free} \\lVert q_i \\rVert^2 + \\lambda_b b_i^2)
            + \\lambda_f \\sum_g N_g (\\lVert z_g \\rVert^2 + w_g^2)

        (:func:`fastmf.reference.als_joint_objective`; a user side with features likewise), and a
        sweep (:func:`fastmf.reference.als_joint_sweep`) minimises it exactly block by block, so it
        never increases: (a) every user's :math:`[b_u, p_u]` against the effective item rows
        (the ALS row solve); (c) the feature rows :math:`[w_g, z_g]` one after another
        (Gauss-Seidel in feature order, each an exact :math:`(k+1) \\times (k+1)` ridge over the
        ratings of its items with the residuals kept up to date; csrc/als_side.c); (b) every
        item's free :math:`[b_i, q_i]` by the ALS row solve on the ratings minus the feature part.
        Features before free parts: the two explain the same ratings and alternating between them
        moves signal slowly, so the block solved first keeps what items share (ml-100k item-cold,
        genres + year: cold RMSE 1.015 features first, 1.041 free parts first). With
        ``linear_solver="cg"`` the row solves are warm-started CG steps, which decrease the
        objective too. Rows are solved in parallel and the feature pass is serial: the same
        model for any thread count. ``side_dropout`` and ``side_dropout_mode`` are SGD-only and
        ignored by ALS: a random mask would make each sweep minimise another objective (no
        exact, monotone sweeps); its expectation is a fixed quadratic that ALS could minimise
        exactly, but its user step needs two weighted rows per rating (the effective item and
        its feature part alone), which the ALS row solver does not take (not done). On ml-100k
        item-cold ALS joint is better than ALS without features on cold items but worse than
        ALS map mode (``bench/bench_side.py``, README).
    side_reg : float
        Ridge penalty :math:`\\lambda` of the map (the intercept is not penalised); in joint mode
        it fits only the engagement columns.
    side_reg_free : float or None
        ``side="joint"``: the per-rating penalty of the free factors :math:`q_i` (:math:`p_u`) of a
        side with features (None: ``reg``). Larger than ``reg`` moves the signal items share
        into the feature rows (the free biases keep ``reg_bias``).
    side_reg_features : float
        ``side="joint"``: the per-rating penalty of the feature factors :math:`z_g` and biases
        :math:`w_g`.
    side_dropout : float in [0, 1)
        ``side="joint"``, SGD only (ignored by ALS, see ``side``): the probability that a rating's free item part (:math:`q_i, b_i`; and,
        independently, the free user part on a user side with features) is dropped from its
        prediction and update, so the feature part learns to predict alone, as for a cold item
        (LightFM's FAQ on why hybrid models need it). The mask is :meth:`joint_dropout_mask`.
    side_dropout_mode : {"all", "features"}
        ``side="joint"``, SGD only: what a rating with a dropped part updates: ``"all"`` every parameter in
        its prediction (the other side's rows learn to serve the feature part too), ``"features"``
        only the dropped side's feature rows :math:`z_g, w_g` (the rest of the model learns from
        whole ratings only).
        The joint defaults (``side_reg_features=0.01``, ``side_dropout=0.3``) were chosen on
        ml-100k (``bench/bench_side.py``; cold: item-cold 20% of the items, warm: random 20% of the
        ratings; seeds 0-2, genres + year): without dropout the cold RMSE was 1.039 (seed 0),
        worse than map mode's 1.008; dropout 0.3 gives cold 0.996 and warm 0.902 (0.907 without
        features), 0.5 cold 0.995 (with ``side_reg_features=0.02``: cold 0.998, warm 0.907);
        ``side_reg_features`` 0.003 and 0.03 were worse; ``side_reg_free`` 0.15-0.5 made no
        difference once dropout was on (None is kept). With genres alone dropout costs more warm
        accuracy (warm 0.908 at 0.15, 0.912 at 0.3, 0.917 at 0.5 with ``side_reg_features=0.02``,
        against 0.907; cold 1.027 at 0.3, 1.025 at 0.5, 1.023 at 0.5 with 0.02), and ``side_dropout_mode="features"`` keeps warm at 0.909 but its cold RMSE is
        1.036: the users' factors adapting to the feature part is what helps the cold items.

    Notes
    -----
    The defaults (k=100, lr=0.01, reg=0.08, reg_bias=0.02, init_std=0.01) were chosen on ml-100k
    u1.base/u1.test: SGD reaches test RMSE 0.919 in well under a second, against 0.949 for Surprise's
    SVD settings (k=100, 20 epochs, lr=0.005, reg=0.02, init_std=0.1). Small initial factors and a
    stronger factor than bias regularisation matter most: the factors start near zero and grow only
    where the data supports them, while the biases (which need little shrinkage) learn freely. With
    ``lr=0.005`` and 100 epochs the same split reaches 0.916.

    Ranking: ordered by predicted rating alone, the top-10 of almost every ml-100k u1 user was the
    same handful of items rated by fewer than 10 people (ndcg@10 0.106 against 0.245 for
    :class:`fastmf.Popularity`, relevance = test rating >= 4): a high bias learned from a few
    ratings outranks everything. The default ``ranking="engagement"`` weighs the rating by a
    jointly learned engagement probability. Its defaults (k=32, 6 sweeps, alpha=5, reg=0.02)
    were chosen on ml-100k u2 and u3 and ml-latest-small (90/10, random_state=1); on u1 the
    default model's ndcg@10 is 0.470 (ImplicitALS 0.436), on ml-latest-small 90/10
    (random_state=0) 0.230 (Popularity 0.124, ImplicitALS 0.229); see ``bench/bench_quality.py``.
    The engagement model costs about 0.1 s per sweep and thread on a million ratings, so with the
    default it adds about 0.6 s to an ML-1M-sized fit on one thread (0.3 s on two), little next to
    ALS, about as much as 20 SGD epochs; ``ranking="rating"`` skips it. Ranking then computes
    two products per score (a dense block per batch of users, bounded memory), instead of the
    fused top-k kernel of ``ranking="rating"``.

    Attributes
    ----------
    user_factors_, item_factors_ : ndarray (n_users, k), (n_items, k)
    user_bias_, item_bias_ : ndarray
    global_mean_ : float
        :math:`\\mu` (0 when ``biased=False``).
    history_ : list of dict
        One per epoch: ``epoch``, ``train_rmse`` (SGD: the running loss of the epoch, each error
        measured just before its update; ALS: the training RMSE after the sweep),
        ``eval_<metric>`` for each of ``eval_metrics`` when an ``eval_set`` is given, ``seconds``
        (the schema of every iterative model: :mod:`fastmf.training.loop`).
    best_epoch_ : int
        Epoch (1-based) whose parameters the model holds (the last, or the best with early stopping).

    References
    ----------
    Y. Koren, R. Bell, C. Volinsky. Matrix factorization techniques for recommender systems.
    IEEE Computer 42(8), 2009. W.-S. Chin, Y. Zhuang, Y.-C. Juan, C.-J. Lin. A fast parallel
    stochastic gradient method for matrix factorization in shared memory systems. ACM TIST 6(1), 2015.
    Y. Zhou, D. Wilkinson, R. Schreiber, R. Pan. Large-scale parallel collaborative filtering for the
    Netflix prize. AAIM 2008.
    """

    _renamed_params = {"als_solver": "linear_solver"}
    _constraints = {
        "n_factors": Interval("int", 1, 1 << 16),
        "n_epochs": (Options(None), Interval("int", 0, MAX_EPOCHS)),
        "lr": Interval("real", 0, None, closed="neither"),
        "reg": Interval("real", 0, None),
        "solver": Options("sgd", "als"),
        "biased": Options(True, False),
        "dtype": Options("float32", "float64", np.float32, np.float64),
        "random_state": RandomState(),
        "n_threads": (Options(None, -1), Interval("int", 1, MAX_THREADS)),
        "init_std": Interval("real", 0, None),
        "reg_bias": (Options(None), Interval("real", 0, None)),
        "schedule": Options("blocked", "shuffle", "hogwild"),
        "n_blocks": (Options(None), Interval("int", 1, 1 << 12)),
        "shuffle": Options(True, False),
        "weighted": Options(True, False),
        "linear_solver": Options("cholesky", "cg"),
        "cg_steps": Interval("int", 1, 1 << 10),
        "verbose": Options(True, False),
        **ENGAGEMENT_CONSTRAINTS,
        **JOINT_CONSTRAINTS,
    }

    def __init__(self, n_factors: int = 100, n_epochs: Optional[int] = None, lr: float = 0.01,
                 reg: float = 0.08, solver: Literal["sgd", "als"] = "sgd", biased: bool = True,
                 dtype: FloatDType = "float32", random_state: SeedLike = None,
                 n_threads: Optional[int] = None, init_std: float = 0.01, reg_bias: Optional[float] = 0.02,
                 schedule: Literal["blocked", "shuffle", "hogwild"] = "blocked",
                 n_blocks: Optional[int] = None, shuffle: bool = True, weighted: bool = True,
                 linear_solver: Literal["cholesky", "cg"] = "cholesky", cg_steps: int = 3, verbose: bool = False,
                 ranking: Literal["engagement", "rating"] = "engagement", engagement_factors: int = 32,
                 engagement_iterations: int = 6, engagement_alpha: float = 5.0,
                 engagement_reg: float = 0.02, side: Literal["map", "joint"] = "map", side_reg: float = 1.0,
                 side_reg_free: Optional[float] = None, side_reg_features: float = 0.01,
                 side_dropout: float = 0.3, side_dropout_mode: Literal["all", "features"] = "all") -> None:
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.lr = lr
        self.reg = reg
        self.solver = solver
        self.biased = biased
        self.dtype = dtype
        self.random_state = random_state
        self.n_threads = n_threads
        self.init_std = init_std
        self.reg_bias = reg_bias
        self.schedule = schedule
        self.n_blocks = n_blocks
        self.shuffle = shuffle
        self.weighted = weighted
        self.linear_solver = linear_solver
        self.cg_steps = cg_steps
        self.verbose = verbose
        self.ranking = ranking
        self.engagement_factors = engagement_factors
        self.engagement_iterations = engagement_iterations
        self.engagement_alpha = engagement_alpha
        self.engagement_reg = engagement_reg
        self.side = side
        self.side_reg = side_reg
        self.side_reg_free = side_reg_free
        self.side_reg_features = side_reg_features
        self.side_dropout = side_dropout
        self.side_dropout_mode = side_dropout_mode

    # ------------------------------------------------------------------ training
    def fit(self, train: Ratings, eval_set: Ratings | None = None,
            callbacks: Optional[Iterable[Callback]] = None, early_stopping_rounds: int | None = None,
            progress: bool | str = False, early_stopping: str | None = None,
            eval_metrics: Sequence[str] = ("rmse", "mae"), item_features: Optional[FeatureLike] = None,
            user_features: Optional[FeatureLike] = None) -> MatrixFactorization:
        """Train on ``train`` (a Ratings); returns self.

        Parameters
        ----------
        train : Ratings or RatingStore
            A :class:`fastmf.data.store.RatingStore` (ratings larger than memory, converted by
            :func:`fastmf.data.store.write_store`) trains blocked SGD over its memory-mapped blocks,
            with ``n_blocks`` equal to the store's; the model equals the one fitted on
            ``read_ratings`` of the same file, bit for bit (see :mod:`fastmf.data.store`).
        eval_set : Ratings, optional
            Measured after every epoch (``eval_rmse``, ``eval_mae`` in ``history_``). Ids unknown to
            ``train`` are predicted with the model's fallback.
        callbacks : list of callables, optional
            Each called as ``cb(model, entry)`` after every epoch with that epoch's history entry;
            returning True stops training.
        early_stopping_rounds : int, optional
            Stop when the watched eval metric (``early_stopping``) has not improved for this many
            epochs and keep the parameters of the best epoch (needs ``eval_set``).
        progress : bool or "auto"
            Draw a progress bar (tqdm) on stderr, one step per epoch with the latest train and eval
            metrics; ``"auto"``: only when stderr is a terminal. Default False (the library prints
            nothing). ``verbose=True`` instead logs one line per epoch to the ``fastmf`` logger.
        early_stopping : str, optional
            The eval metric early stopping watches: any key of :func:`fastmf.evaluate` (``"rmse"``,
            ``"mae"``, ``"ndcg@10"``, ``"precision@5"``, ...); default the first of ``eval_metrics``.
        eval_metrics : sequence of str
            What is measured on ``eval_set`` after every epoch (``eval_<metric>`` in ``history_``);
            ranking metrics (``"ndcg@10"``) rank with the model's ``ranking``.
        item_features, user_features : optional
            Side features of the items / users (a ``Ratings.item_features(...)`` Features, a
            DataFrame keyed by raw id, or an array / scipy.sparse matrix with one row per id in the
            data's index order): after training, the feature-to-parameter map of ``side="map"``
            gives the items (users) without ratings their factors and biases
            (:mod:`fastmf.models.side`).
        """
        train = _stored(train)
        self.__dict__.pop("_joint_learned", None)  # of a joint fit that failed
        self._start_fit(train)
        side = self._side_inputs(train, item_features, user_features)
        joint = side if self.side == "joint" and side else None
        self._train(train, self._resolved_n_epochs(), 1, eval_set=eval_set, callbacks=callbacks,
                    early_stopping_rounds=early_stopping_rounds, progress=progress,
                    early_stopping=early_stopping, eval_metrics=eval_metrics, joint=joint)
        learned = self.__dict__.pop("_joint_learned", None)
        return self._fit_side(side, learned)

    def partial_fit(self, train: Ratings, n_epochs: int, eval_set: Ratings | None = None,
                    callbacks: Optional[Iterable[Callback]] = None, progress: bool | str = False,
                    eval_metrics: Sequence[str] = ("rmse", "mae")) -> MatrixFactorization:
        """Train ``n_epochs`` more epochs (SGD) or sweeps (ALS) on ``train``, from the parameters the
        model holds; returns self. On an unfitted model it is ``fit`` for ``n_epochs`` epochs.

        ``train`` must be the data of the first fit (the same Ratings, or one with the same users,
        items and ratings: checked against the fitted state, ValueError otherwise). Epoch numbers go
        on from ``best_epoch_`` (the epochs after it, dropped by early stopping, are forgotten), and
        each epoch's shuffle is drawn from the seed and its number, so ``fit`` with ``n_epochs=a``
        then ``partial_fit(train, b)`` gives bit for bit the model of ``fit`` with ``n_epochs=a + b``
        (same parameters; ``history_`` then holds all a + b epochs). This is how
        :func:`fastmf.tune.search` continues its trials (successive halving). ``lr`` and ``reg``
        may be changed between calls (``set_params``); ``n_factors``, ``dtype``, ``solver`` and
        ``biased`` may not. The other arguments are those of :meth:`fit` (no early stopping).
        """
        from fastmf._validation import Interval

        if not Interval("int", 0, None).accepts(n_epochs):
            raise ValueError(f"{type(self).__name__}.partial_fit: n_epochs must be an int >= 0, got {n_epochs!r}")
        train = _stored(train)
        if "history_" not in self.__dict__:
            self._start_fit(train)
            return self._train(train, n_epochs, 1, eval_set=eval_set, callbacks=callbacks, progress=progress,
                               eval_metrics=eval_metrics, keep_layout=True)
        self._validate_params()
        self._check_continuation(train)
        return self._train(train, n_epochs, self._continue_from(), eval_set=eval_set, callbacks=callbacks,
                           progress=progress, eval_metrics=eval_metrics, keep_layout=True)

    def _check_continuation(self, train):
        super()._check_continuation(train)
        k, dtype = self.user_factors_.shape[1], self.user_factors_.dtype
        fitted = {"n_factors": k, "dtype": dtype}
        now = {"n_factors": self.n_factors, "dtype": np.dtype(self.dtype)}
        if not self.biased and self.global_mean_ != 0.0:  # an unbiased fit keeps mu = 0
            fitted["biased"], now["biased"] = True, False
        for name, value in fitted.items():
            if now[name] != value:
                raise ValueError(f"{type(self).__name__}.partial_fit: {name} is {now[name]!r} but the model was "
                                 f"fitted with {value!r}; it cannot change between fit and partial_fit: call fit")

    def _padded_factors(self):
        """The row-padded buffers the SGD kernels run over, whose first k columns are the factors.
        Factors in another layout (fitted by ALS, or set by hand) are copied into new aligned
        buffers first: the kernel gives the same numbers on either path."""
        from fastmf import _sgd

        out = []
        for name in ("user_factors_", "item_factors_"):
            A = getattr(self, name)
            full = _padded(A)
            if full is None:
                B = _sgd.aligned_factors(A.shape[0], A.shape[1], A.dtype)
                B[...] = A
                setattr(self, name, B)
                full = _padded(B)
            out.append(full)
        return out

    def _train(self, train, n_epochs, start_epoch, *, eval_set=None, callbacks=None, early_stopping_rounds=None,
               progress=False, early_stopping=None, eval_metrics=("rmse", "mae"), keep_layout=False,
               joint=None):
        """Epochs ``start_epoch .. start_epoch + n_epochs - 1`` on ``train`` (``start_epoch`` 1: a
        fresh fit, after ``_start_fit``; the state is initialised here). ``joint``: the side inputs
        of a ``side="joint"`` fit (``{kind: (X, names)}``), trained with the model."""
        from fastmf import _sgd
        from fastmf.training import check_fit_options, run_epochs

        callbacks, watched = check_fit_options(self, eval_set, callbacks, early_stopping_rounds,
                                               early_stopping, eval_metrics, progress)
        n_threads = _sgd_auto_threads(resolve_n_threads(self.n_threads), self, len(train))
        if self.solver == "sgd" and self.schedule == "shuffle" and self.n_threads not in (None, 1):
            raise ValueError("schedule='shuffle' is single-threaded; use schedule='blocked' or "
                             "'hogwild' with n_threads > 1")
        dtype = np.dtype(self.dtype)
        check_memory(self._fit_bytes(train, n_threads), f"{type(self).__name__}.fit",
                     "n_factors" + (" or engagement_factors" if self.ranking == "engagement" else ""))
        if start_epoch > 1:
            P_full = Q_full = None
            if self.solver == "sgd":
                P_full, Q_full = self._padded_factors()
            else:  # the ALS kernels take C-contiguous factors
                for name in ("user_factors_", "item_factors_"):
                    if not getattr(self, name).flags.c_contiguous:
                        setattr(self, name, np.ascontiguousarray(getattr(self, name)))
            return self._run(train, dtype, n_threads, n_epochs, start_epoch, P_full, Q_full,
                             dict(eval_set=eval_set, eval_metrics=eval_metrics, callbacks=callbacks,
                                  progress=progress), keep_layout)
        P_full, Q_full = self._init_state(dtype)
        self.history_ = []
        self.best_epoch_ = 0
        return self._run(train, dtype, n_threads, n_epochs, 1, P_full, Q_full,
                         dict(eval_set=eval_set, eval_metrics=eval_metrics, callbacks=callbacks,
                              early_stopping_rounds=early_stopping_rounds, watched=watched, progress=progress),
                         keep_layout, joint)

    def _init_state(self, dtype):
        """The initial parameters of a fresh fit (after ``_start_fit``), drawn from ``random_state``:
        normal factors (users, then items), zero biases and ``seed_`` (the seed of every epoch's
        shuffle). Returns the padded SGD buffers ``(P_full, Q_full)``, or ``(None, None)`` for ALS.
        ``fastmf.distributed`` starts its fits here too, so they train from the same numbers."""
        from fastmf import _sgd

        rng = check_random_state(self.random_state)
        k = self.n_factors
        if self.solver == "sgd":
            # Rows padded with zeros to a multiple of 64 bytes and 64-byte aligned: the factors are a
            # view of the first k columns. The SGD kernel runs over the full padded width, so every
            # row operation is whole SIMD vectors with no remainder loop; the padding stays exactly
            # zero (its dot-product terms are 0 * 0 and its updates (1 - lr reg) 0 + (lr e) 0).
            ld = -(-k // (64 // dtype.itemsize)) * (64 // dtype.itemsize)
            P_full = _sgd.aligned_factors(self.n_users_, ld, dtype)
            Q_full = _sgd.aligned_factors(self.n_items_, ld, dtype)
            self.user_factors_, self.item_factors_ = P_full[:, :k], Q_full[:, :k]
        else:  # the ALS kernels take C-contiguous factors
            self.user_factors_ = np.empty((self.n_users_, k), dtype=dtype)
            self.item_factors_ = np.empty((self.n_items_, k), dtype=dtype)
        self.user_factors_[:] = rng.normal(0.0, self.init_std, (self.n_users_, k))
        self.item_factors_[:] = rng.normal(0.0, self.init_std, (self.n_items_, k))
        self.user_bias_ = np.zeros(self.n_users_, dtype=dtype)
        self.item_bias_ = np.zeros(self.n_items_, dtype=dtype)
        if not self.biased:
            self.global_mean_ = 0.0
        self.seed_ = int(rng.integers(0, 2**63 - 1))
        if self.solver != "sgd":
            P_full = Q_full = None
        return P_full, Q_full

    def _run(self, train, dtype, n_threads, n_epochs, start_epoch, P_full, Q_full, loop_options,
             keep_layout=False, joint=None):
        from fastmf.training import run_epochs

        self._drop_engagement()  # from an earlier fit or fewer epochs
        self._drop_side()  # partial_fit: the map of the last fit no longer matches the factors
        state = (self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_)
        if joint is not None and self.solver == "als":
            step, extra = self._als_joint_stepper(train, dtype, n_threads, joint)
            state += extra
            tail = f" (ALS, side='joint', reg={self.reg})"
        elif joint is not None:
            step, extra = self._joint_stepper(train, dtype, joint)
            state += extra
            tail = f" (side='joint', lr={self.lr}, reg={self.reg})"
        elif self.solver == "sgd":
            step = self._sgd_stepper(train, dtype, n_threads, P_full, Q_full, keep_layout)
            tail = f" (lr={self.lr}, reg={self.reg})"
        else:
            step = self._als_stepper(train, dtype, n_threads)
            tail = f" (ALS, reg={self.reg})"
        run_epochs(self, step, n_epochs, state,
                   verbose=self.verbose, divergence=lambda exc: f"{tail}: {exc}", start_epoch=start_epoch,
                   **loop_options)
        del step  # the stepper's training layout, before the engagement model allocates its own
        if self.ranking == "engagement":
            csc = train._cached_compressed(False)  # ALS's CSC: the same structure, built once
            self._engagement(None if csc is None else (csc.indptr, csc.indices),
                             progress=loop_options.get("progress", False))
        return self

    def _fit_bytes(self, train, n_threads):
        """What a fit allocates beyond the training data, in bytes: the factors (rows padded to
        64 bytes for SGD), the biases, ALS's per-thread systems and gathered rows, the free parts
        of a joint fit, and the engagement model."""
        item = np.dtype(self.dtype).itemsize
        k, rows = self.n_factors, self.n_users_ + self.n_items_
        ld = -(-k // (64 // item)) * (64 // item)
        total = rows * (ld + 1) * item
        if self.solver == "als":
            kp = -(-(k + 1) // 8) * 8
            total += n_threads * (kp * kp + 8 * kp + 2 * 256 * kp) * 8
        if self.side == "joint":  # the free parts' copies (joint fit with features)
            total += rows * (k + 1) * item
            if self.solver == "als":  # the free-part targets, the feature sweep's residuals and systems
                total += len(train) * (item + 8) + 64 * (k + 9) ** 2 * 8
        if self.ranking == "engagement":
            ke = self.engagement_factors
            total += rows * ke * item + n_threads * (ke * ke + 8 * ke + 256 * ke) * 8
        return total

    def _resolved_n_epochs(self) -> int:
        """The epochs ``fit`` runs: ``n_epochs``, or for None 40 (SGD) / 15 (ALS)."""
        return self.n_epochs if self.n_epochs is not None else (40 if self.solver == "sgd" else 15)

    def _sgd_stepper(self, train, dtype, n_threads, P_full, Q_full, keep_layout=False):
        """A function running one SGD epoch over the padded factor buffers and returning the epoch's
        running training RMSE. ``keep_layout``: keep the blocked copy of the ratings with ``train``
        (:meth:`Ratings.cached`), so the next ``partial_fit`` on it does not rebuild it."""
        from fastmf import _sgd

        users = train.user_index
        items = train.item_index
        ratings = np.ascontiguousarray(train.rating, dtype=dtype)
        reg_bias = self.reg if self.reg_bias is None else self.reg_bias
        plan = work = None
        if self.schedule == "blocked":
            # 8 blocks serve 1, 2, 4 and 8 threads evenly and make the model independent of the
            # thread count up to 8 (more when one block's factor rows would overflow a core's share
            # of the last-level cache: _machine.sgd_blocks); never the machine's core count
            n_blocks = default_n_blocks(self, max(P_full.strides[0], Q_full.strides[0]))

            def blocked():
                return blocked_layout(users, items, ratings, self.n_users_, self.n_items_, n_blocks)

            stored = train._cache.get("fastmf.store.n_blocks")  # a RatingStore's memory maps
            if stored is not None and stored != n_blocks:
                raise ValueError(f"{type(self).__name__}.fit: the rating store is laid out in {stored} "
                                 f"blocks per side but this fit uses n_blocks={n_blocks}; set "
                                 f"n_blocks={stored} (or write the store with n_blocks={n_blocks})")
            if keep_layout or stored is not None:  # partial_fit / a store: the layout kept with the data
                layout = train.cached(("fastmf.sgd.blocked", n_blocks, dtype.str), blocked)
            else:
                layout = blocked()
            users, items, ratings, plan = layout
            # work None: each thread shuffles one block at a time into scratch of its own (the same
            # order as a shuffled copy of the whole epoch's order, at 1 / n_blocks**2 of its memory)
        order = np.arange(len(train), dtype=np.int64) if self.schedule != "blocked" else None
        args = (users, items, ratings)
        model = (P_full, Q_full, self.user_bias_, self.item_bias_)
        hyper = (self.global_mean_, self.lr, self.reg, reg_bias, self.biased)

        def step(epoch):
            # a FloatingPointError of the kernel becomes the loop's DivergenceError
            if self.schedule == "blocked":
                sse = _sgd.sgd_epoch_blocked(*args, *model, *hyper, plan, self.seed_,
                                             epoch if self.shuffle else 0, n_threads, work)
            else:
                o = self.epoch_order(epoch, len(train)) if self.shuffle else order
                sse = 0.0
                # consecutive chunks of the order, one kernel call each: the same updates in the
                # same order, and Ctrl-C (seen between calls) stops an epoch within one chunk
                for lo in range(0, o.size, SGD_INTERRUPT_CHUNK):
                    part = o[lo:lo + SGD_INTERRUPT_CHUNK]
                    if self.schedule == "shuffle":
                        sse += _sgd.sgd_epoch(*args, part, *model, *hyper)
                    else:
                        sse += _sgd.sgd_epoch_hogwild(*args, part, *model, *hyper, n_threads=n_threads)
            return {"train_rmse": float(np.sqrt(sse / len(train)))}

        return step

    def _joint_stepper(self, train, dtype, joint):
        """``side="joint"``: a function running one epoch of the joint kernel (csrc/sgd_side.c) and
        the arrays it trains besides the model's (for early stopping's copy). The kernel trains the
        free parts (copies of the initial factors; a row without ratings has free part 0) and the
        feature rows ``Z``, ``w`` of each side in ``joint``; after every epoch the model's factors
        and biases are set to the effective ones, :math:`q_i + Z^\\top x_i`, :math:`b_i + w^\\top x_i`,
        so ``predict`` and the eval set see the joint model. The epoch is serial, in the order of
        :meth:`epoch_order` (the input order with ``shuffle=False``), whatever ``schedule`` and
        ``n_threads`` say: the feature rows are shared across blocks. The dropout mask is
        :meth:`joint_dropout_mask`. The learned ``(Z, w)`` are left in ``_joint_learned``."""
        from fastmf import _sgd_side

        users, items = train.user_index, train.item_index
        ratings = np.ascontiguousarray(train.rating, dtype=dtype)
        reg_bias = self.reg if self.reg_bias is None else self.reg_bias
        reg_free = self.reg if self.side_reg_free is None else self.side_reg_free
        hyper = (self.global_mean_, self.lr, self.reg, reg_bias, reg_free, self.side_reg_features, self.biased)
        k = self.n_factors
        free = {"user": (np.ascontiguousarray(self.user_factors_).copy(), self.user_bias_.copy()),
                "item": (np.ascontiguousarray(self.item_factors_).copy(), self.item_bias_.copy())}
        sides, X = {}, {}
        for kind, (Xk, _) in joint.items():
            free[kind][0][self._side_counts(kind) == 0] = 0.0
            n_features = Xk.shape[1]
            sides[kind] = (*feature_csr(Xk), np.zeros((n_features, k), dtype=dtype), np.zeros(n_features, dtype=dtype))
            X[kind] = Xk
        order = np.arange(len(train), dtype=np.int64)
        (Pf, bu), (Qf, bi) = free["user"], free["item"]
        model = (Pf, Qf, bu, bi)

        def publish():
            for kind, eff, eff_bias in (("user", self.user_factors_, self.user_bias_),
                                        ("item", self.item_factors_, self.item_bias_)):
                F, b = free[kind]
                if kind in sides:
                    Z, w = sides[kind][3], sides[kind][4]
                    eff[...] = F + (X[kind] @ Z.astype(np.float64)).astype(dtype)
                    eff_bias[...] = b + (X[kind] @ w.astype(np.float64)).astype(dtype)
                else:
                    eff[...], eff_bias[...] = F, b

        def step(epoch):
            o = self.epoch_order(epoch, len(train)) if self.shuffle else order
            drop = self.joint_dropout_mask(epoch, len(train), tuple(sides))
            sse = _sgd_side.sgd_side_epoch(users, items, ratings, o, model, sides.get("user"),
                                           sides.get("item"), hyper, drop,
                                           features_only=self.side_dropout_mode == "features")
            publish()
            return {"train_rmse": float(np.sqrt(sse / len(train)))}

        self._joint_learned = {kind: (s[3], s[4]) for kind, s in sides.items()}
        extra = model + tuple(a for s in sides.values() for a in (s[3], s[4]))
        return step, extra

    def joint_dropout_mask(self, epoch: int, n: int, kinds: Sequence[str] = ("item",)) -> Optional[np.ndarray]:
        """The feature-dropout mask of ``epoch`` (1-based) of a ``side="joint"`` fit over ``n``
        ratings, one uint8 per visited position (bit 0: the item's free part is dropped, bit 1 the
        user's; each with probability ``side_dropout``, for the sides in ``kinds``), drawn from the
        fit's seed and the epoch alone; None when ``side_dropout`` is 0. With :meth:`epoch_order`
        it replays a joint fit through ``fastmf.reference.sgd_side_epoch``."""
        if self.side_dropout == 0 or not kinds:
            return None
        rng = np.random.default_rng([self.seed_, int(epoch), 0x5D])
        mask = np.zeros(n, dtype=np.uint8)
        for bit, kind in ((1, "item"), (2, "user")):
            if kind in kinds:
                mask |= (rng.random(n) < self.side_dropout).astype(np.uint8) * np.uint8(bit)
        return mask

    def _als_joint_stepper(self, train, dtype, n_threads, joint):
        """``side="joint"`` with ``solver="als"``: a function running one sweep of
        :func:`fastmf.reference.als_joint_sweep` with the C kernels (the ALS row solve of
        csrc/als.c, the free-part targets and the feature sweep of csrc/als_side.c), and the arrays
        it trains besides the model's (for early stopping's copy). The model's factors and biases
        hold the effective rows after every sweep; the free parts start from the initial factors
        (0 for a row without ratings) and the feature rows from 0. Every step is deterministic for
        any thread count (rows independent, feature rows serial). The learned ``(Z, w)`` are left
        in ``_joint_learned``."""
        from functools import partial

        from fastmf import _als, _als_side
        from fastmf.reference.als_side import als_joint_sweep, publish

        csr, csc = train.to_csr(), train.to_csc()
        R = {"user": (csr.indptr, csr.indices, np.ascontiguousarray(csr.data, dtype=dtype)),
             "item": (csc.indptr, csc.indices, np.ascontiguousarray(csc.data, dtype=dtype))}
        reg_bias = self.reg if self.reg_bias is None else self.reg_bias
        reg_free = self.reg if self.side_reg_free is None else self.side_reg_free
        hyper = (self.global_mean_, self.reg, reg_bias, reg_free, self.side_reg_features, self.weighted, self.biased)
        state, sides = {}, {}
        for kind, eff, eff_bias in (("user", self.user_factors_, self.user_bias_),
                                    ("item", self.item_factors_, self.item_bias_)):
            eff_bias = eff_bias if self.biased else None
            if kind not in joint:
                state[kind] = (eff, eff_bias, eff, eff_bias)
                continue
            X = joint[kind][0]
            free = eff.copy()
            free[self._side_counts(kind) == 0] = 0.0
            free_bias = eff_bias.copy() if self.biased else None
            Z = np.zeros((X.shape[1], self.n_factors), dtype=dtype)
            sides[kind] = (feature_csr(X), feature_csr(np.ascontiguousarray(X.T)), X, Z, np.zeros(X.shape[1], dtype=dtype))
            state[kind] = (free, free_bias, eff, eff_bias)
            publish(free, free_bias, sides[kind], eff, eff_bias)
        kernels = dict(half_sweep=partial(_als.als_half_sweep, n_threads=n_threads, solver=self.linear_solver,
                                          cg_steps=self.cg_steps),
                       offsets=partial(_als_side.als_side_offsets, n_threads=n_threads),
                       features=partial(_als_side.als_side_features, n_threads=n_threads))

        def step(epoch):
            try:
                als_joint_sweep(R["user"], R["item"], state, sides, hyper, **kernels)
            except (ValueError, np.linalg.LinAlgError) as exc:  # as in _als_stepper
                raise FloatingPointError(str(exc)) from None
            return {"train_rmse": float(np.sqrt(self._observed_sse(csr, R["user"][2], n_threads) / len(train)))}

        self._joint_learned = {kind: (s[3], s[4]) for kind, s in sides.items()}
        extra = tuple(a for kind in sides for a in state[kind][:2] if a is not None)
        extra += tuple(a for s in sides.values() for a in (s[3], s[4]))
        return step, extra

    def _als_stepper(self, train, dtype, n_threads):
        """A function running one ALS sweep (users, then items) and returning the training RMSE of
        the model after it."""
        from fastmf import _als

        csr, csc = train.to_csr(), train.to_csc()
        csr_data = np.ascontiguousarray(csr.data, dtype=dtype)
        csc_data = np.ascontiguousarray(csc.data, dtype=dtype)
        reg_bias = self.reg if self.reg_bias is None else self.reg_bias
        P, Q, bu, bi = self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_
        if not self.biased:
            bu = bi = None
        common = dict(n_threads=n_threads, solver=self.linear_solver, cg_steps=self.cg_steps)

        def step(epoch):
            try:
                _als.als_half_sweep(csr.indptr, csr.indices, csr_data, Q, bi, P, bu, self.global_mean_,
                                    self.reg, reg_bias, self.weighted, self.biased, **common)
                _als.als_half_sweep(csc.indptr, csc.indices, csc_data, P, bu, Q, bi, self.global_mean_,
                                    self.reg, reg_bias, self.weighted, self.biased, **common)
            except (ValueError, np.linalg.LinAlgError) as exc:
                # LinAlgError: a system not positive definite (a ValueError only from NumPy 2 on);
                # the loop reports it as the DivergenceError of this sweep
                raise FloatingPointError(str(exc)) from None
            return {"train_rmse": float(np.sqrt(self._observed_sse(csr, csr_data, n_threads) / csr_data.size))}

        return step

    def _observed_sse(self, csr, data, n_threads):
        """Sum of squared training errors over the ratings of ``csr`` (users as rows), in C."""
        from fastmf import _sse

        biases = (self.user_bias_, self.item_bias_) if self.biased else (None, None)
        return _sse.observed_sse(csr.indptr, csr.indices, data, self.user_factors_, self.item_factors_,
                                 *biases, self.global_mean_, n_threads)

    def epoch_order(self, epoch: int, n: int) -> np.ndarray:
        """The permutation of rating positions that the "shuffle"/"hogwild" schedules use in ``epoch``
        (1-based) of the last fit, so a fit can be replayed with ``fastmf.reference.sgd_epoch``."""
        from fastmf import _sgd

        return _sgd.permutation(n, self.seed_, epoch)

    # ------------------------------------------------------------------ fold-in
    def _row_regularisation(self, n):
        """(factor, bias) regularisation of a row with ``n`` ratings in the objective this model
        minimised. SGD applies ``reg`` at every update of a row, i.e. once per rating, so its
        objective weights the penalty by the row's rating count."""
        reg_bias = self.reg if self.reg_bias is None else self.reg_bias
        if self.solver == "als" and not self.weighted:
            return self.reg, reg_bias
        return self.reg * n, reg_bias * n

    def fold_in(self, items: Ids, ratings: Sequence[float], unknown: Unknown = "raise",
                features: Optional[np.ndarray] = None) -> Tuple[np.ndarray, float]:
        r"""Solve a user's factors (and bias) from their ratings against the fixed item factors, with
        this model's own regularisation, without retraining:

        .. math::

            \min_{b_u, p_u} \sum_{i} (r_{ui} - \mu - b_i - b_u - p_u^\top q_i)^2
                + \lambda_u \lVert p_u \rVert^2 + \lambda^b_u b_u^2

        (an exact (k+1)x(k+1) ridge solve; :math:`\lambda_u = \mathrm{reg}\cdot n_u` for SGD, whose
        per-rating penalty adds up to that). Ratings must lie in the model's rating scale
        (ValueError naming the position and value otherwise). Items unknown to the model raise
        KeyError, or are ignored with ``unknown="fallback"``.

        ``features``: a user feature row (the columns of ``fit(..., user_features=)``) for a user
        with few or no ratings: the solve is centred on the mapped parameters
        :math:`(\hat p_u, \hat b_u)` of the side-feature map instead of zero, i.e. ``p_u``
        minimises the objective above with :math:`\lambda_u \lVert p_u - \hat p_u \rVert^2`;
        with ``items=[]`` the answer is the mapped parameters (:mod:`fastmf.models.side`).

        Returns
        -------
        factors : ndarray (n_factors,) in the model's dtype
        bias : float (0 for ``biased=False``)
        """
        return self._fold_in(items, ratings, unknown, features)

    _per_item_state = ("item_factors_", "item_bias_", "item_engagement_")

    def _biases(self):
        if self.biased:
            return self.global_mean_, self.user_bias_, self.item_bias_
        return 0.0, None, None

    def _row_solver(self, side: str) -> RowSolver:
        """One row of ``side`` (its factors and bias) from its ratings against the fixed other
        side, with this model's own regularisation: the (k+1)x(k+1) ridge solve of :meth:`fold_in`
        (the row update of an ALS half-sweep)."""
        fixed = self.item_factors_ if side == "user" else self.user_factors_
        fixed_bias = self.item_bias_ if side == "user" else self.user_bias_
        k = self.n_factors

        def solve(idx, values):
            if idx.size == 0:
                return np.zeros(k), 0.0
            target = values - self.global_mean_ - fixed_bias[idx].astype(np.float64) if self.biased else values
            return ridge_row(fixed[idx].astype(np.float64), target, *self._row_regularisation(idx.size),
                             self.biased)

        return solve

# Ratings per kernel call of the "shuffle" and "hogwild" schedules (about 20-40 ms of work at k=100):
# a KeyboardInterrupt is raised between calls. The blocked schedule's kernel reads the interrupt flag
# before every block instead.
SGD_INTERRUPT_CHUNK = 1 << 20

# Below this many ratings, blocked SGD with n_threads=None runs on one thread. With few ratings per
# row, the rows each thread hands to the other twice per epoch cost more than the second thread
# saves: ml-100k u1 subsamples (943 x 1682, k=100, 40 epochs) ran 0.91x on 2 threads at 10,000
# ratings, 1.08x at 20,000, 1.29x at 40,000 and 1.48x at 80,000 (2-core Xeon, 2026-11-27).
SGD_MIN_RATINGS_FOR_THREADS = 20_000


def _padded(view):
    """The row-padded, 64-byte aligned buffer whose first k columns ``view`` is (the layout of
    :func:`fastmf._sgd.aligned_factors`, what fit trains and model files restore), or None when
    ``view`` is not laid out so, its memory does not extend over the padding, or the padding is
    not zero (the kernels run over the full width and need zeros there)."""
    isz = view.dtype.itemsize
    per_line = 64 // isz
    n, k = view.shape
    ld = -(-k // per_line) * per_line
    if n == 0 or view.strides != (ld * isz, isz) or view.ctypes.data % 64:
        return None
    base = view
    while isinstance(base.base, np.ndarray):
        base = base.base
    lo, hi = base.ctypes.data, base.ctypes.data + base.nbytes
    start = view.ctypes.data
    if base is not view and not (lo <= start and start + n * ld * isz <= hi):
        return None
    if base is view and ld != k:
        return None
    full = np.lib.stride_tricks.as_strided(view, (n, ld), view.strides)
    return full if ld == k or not full[:, k:].any() else None


def default_n_blocks(model: Any, row_bytes: int) -> int:
    """Blocks per side of a blocked SGD-family fit: ``model.n_blocks``; or, when ``n_threads`` is
    set above 8 explicitly, ``n_threads`` (one block row each); else :func:`fastmf._machine.sgd_blocks`
    for factor rows of ``row_bytes`` (the padded rows the kernel updates): 8, which serves 1, 2, 4
    and 8 threads evenly and makes the model independent of the thread count up to 8, more when one
    block's rows would overflow a core's share of the last-level cache. Never the machine's core
    count (``n_threads=None``): the model must not depend on it."""
    from fastmf._machine import sgd_blocks

    asked = model.n_threads if model.n_threads not in (None, -1) else 1
    if model.n_blocks:
        return model.n_blocks
    return sgd_blocks(model.n_users_, model.n_items_, row_bytes) if asked <= 8 else asked


def blocked_layout(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_users: int, n_items: int,
                   n_blocks: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    """``(users, items, ratings, plan)``: the ratings stored block by block (so every block of the
    plan is one contiguous range) and the plan over that copy, which has the same groups and
    offsets and the identity as its order (``block_order`` None; the kernels check every rating
    against its block all the same). Built by one counting-sort scatter (:func:`fastmf._sgd.block_layout`):
    the three copies (12 bytes per float32 rating) are all it allocates."""
    from fastmf import _sgd

    return _sgd.block_layout(users, items, ratings, n_users, n_items, n_blocks)


def _stored(train):
    """A :class:`fastmf.data.store.RatingStore` as its memory-mapped Ratings; anything else as is."""
    from fastmf.data.store import RatingStore

    return train.ratings() if isinstance(train, RatingStore) else train


def _sgd_auto_threads(n_threads, model, n_ratings):
    """The thread count a fit uses: ``n_threads`` as resolved, or 1 for a blocked-SGD fit on fewer
    than SGD_MIN_RATINGS_FOR_THREADS ratings when the user left ``n_threads`` to fastmf."""
    auto = model.n_threads is None or model.n_threads == -1
    if auto and getattr(model, "solver", "sgd") == "sgd" and model.schedule == "blocked" \
            and n_ratings < SGD_MIN_RATINGS_FOR_THREADS:
        return 1
    return n_threads
