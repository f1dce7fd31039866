"""The model registry: the one table that says which models fastmf has.

Each model is one :class:`ModelEntry`: a stable key (what model files store, what ``--model`` takes),
the class (imported on first use), capability tags, named presets (``als`` is MatrixFactorization with
``solver="als"``), and the **declared fitted state**: every attribute ``fit`` sets, with its kind and,
for arrays, dtype and shape written in terms of named sizes (``n_users``, ``n_items``, ``k``...).

``fastmf.__init__`` (the exported classes), persistence (the allow-list, and the one state check that
``save`` and ``load`` both run), the command line and the contract tests read it; nothing else lists
models. Adding a model is adding an entry here (see the README's developer section).

Shapes
------
A dimension is an int, or the name of a size. ``n_users``, ``n_items`` come from the id maps,
``n_seen`` from the seen-items CSR, ``k`` from the ``n_factors`` parameter; ``NAME+1`` is one more
than a size. Any other name (a time-aware model's ``n_days``) is bound by the first array that uses
it and must then agree everywhere, so a model declares its own sizes just by naming them.
"""

from __future__ import annotations

import importlib
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

from fastmf._space import Choice, Float, FloatLog, IntLog, SearchSpec

__all__ = ["ModelEntry", "Field", "TAGS", "FLOAT_BOUND", "FACTOR_BOUND", "entries", "get", "for_class", "key_of",
           "presets", "check_state", "register", "unregister", "search_spec", "SearchSpec",
           "COMMON_STATE"]

#: capability tags an entry may carry
TAGS = {
    "predicts_ratings": "predict() gives scores on the rating scale (not only a ranking)",
    "needs_ratings": "fit uses the rating values, not only which items each user has (at the default parameters)",
    "iterative": "fit runs epochs through fastmf.training: history_, eval_set, early stopping, callbacks",
    "has_factors": "has user_factors_ / item_factors_ (similar_items by factors, factor maps)",
    "uses_time": "fit uses the ratings' timestamps",
    "uses_features": "fit uses user or item side features",
    "fold_in": "new users can be folded in from their ratings without refitting",
    "thread_invariant": "the fitted model is the same for any n_threads",
}

KINDS = ("array", "idmap", "metadata", "scalar", "tuple", "list", "records")


@dataclass(frozen=True)
class Field:
    """One attribute of a model's fitted state.

    ``dtype`` for arrays: a NumPy dtype name, or ``"float"`` for the model's float dtype (float32 or
    float64, the ``dtype`` parameter; every ``"float"`` array of a model must share it). For scalars:
    ``"int"``, ``"float"``, ``"bool"`` or ``"str"``. ``optional``: the value may be None (and older
    files may lack it). ``layout``: ``"aligned64"`` when fit keeps the array in the row-padded, 64-byte
    aligned buffer the SGD kernels want (save and load keep it). ``required_if``: the name of a
    boolean parameter under which an ``optional`` attribute is required after all (the biases of
    ``biased=True``). ``low`` / ``high``: bounds of a scalar (an int, or a size name such as
    ``"n_history"``, the number of records of ``history_``, which its ``shape`` names). ``finite``:
    every entry of a float array, float scalar or float tuple is finite and within
    :data:`FLOAT_BOUND` (or ``bound``: :data:`FACTOR_BOUND` for factors), which keeps every score
    a model computes from them finite (the default; False lets a value be any float, e.g. a
    recorded inf).
    """

    name: str
    kind: str
    dtype: Optional[str] = None
    shape: Optional[Tuple[Any, ...]] = None
    optional: bool = False
    layout: Optional[str] = None
    readonly: bool = False
    doc: str = ""
    required_if: Optional[str] = None
    low: Any = None
    high: Any = None
    finite: bool = True
    bound: Optional[float] = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Field {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if not (self.name.endswith("_") and not self.name.startswith("_")):
            raise ValueError(f"Field {self.name!r}: fitted attributes end with '_' and do not start with '_'")


def _array(name: str, dtype: str, shape: Tuple[Any, ...], **kw: Any) -> Field:
    return Field(name, "array", dtype, shape, **kw)


#: Largest magnitude of an entry of a float array of a fitted state (factors, biases, scores)
#: and of a float scalar (``global_mean_``). With |x| <= B for
#: every entry and k <= 65536 factors, a dot product of two rows is at most 65536 B^2 and the
#: squared norm of a row (cosine / euclidean similarity) is as small; B = 1e15 keeps both, and every
#: sum of a score, far below the float32 maximum (3.4e38) and away from overflow. Real models are
#: within |x| < 1e3; a file beyond this bound is refused (it would give inf scores).
FLOAT_BOUND = 1e15

#: Largest magnitude of a latent factor. Fitted factors are O(1) (they reproduce ratings or
#: preferences); 1e6 leaves room for any real model and keeps the Gram matrices of fold-in and
#: partial fits (entries up to n 1e12) solvable next to their regularisation.
FACTOR_BOUND = 1e6


def _bounded(value: Any, limit: float) -> bool:
    """``value`` is a real number, finite and within +-limit (huge ints included, no OverflowError)."""
    try:
        v = float(value)
    except (OverflowError, TypeError, ValueError):
        return False
    return math.isfinite(v) and abs(v) <= limit


#: the state every fitted model has (set by Recommender._start_fit)
COMMON_STATE: Tuple[Field, ...] = (
    Field("user_map_", "idmap", doc="raw user id <-> index"),
    Field("item_map_", "idmap", doc="raw item id <-> index"),
    Field("n_users_", "scalar", "int"),
    Field("n_items_", "scalar", "int"),
    Field("rating_scale_", "tuple", "float", (2,), optional=True, doc="(low, high) of the rating scale"),
    Field("rating_range_", "tuple", "float", (2,), optional=True, doc="(min, max) training rating"),
    Field("global_mean_", "scalar", "float"),
    _array("item_counts_", "int64", ("n_items",)),
    _array("user_counts_", "int64", ("n_users",)),
    _array("seen_indptr_", "int64", ("n_users+1",), readonly=True),
    _array("seen_indices_", "int32", ("n_seen",), readonly=True),
    Field("item_info_", "metadata", optional=True),
    Field("user_info_", "metadata", optional=True),
)

#: the state of the training loop (fastmf.training.run_epochs)
TRAINING_STATE: Tuple[Field, ...] = (
    Field("history_", "records", shape=("n_history",), doc="one record per epoch: epoch, seconds, the metrics"),
    Field("best_epoch_", "scalar", "int", optional=True, low=0, high="n_history"),
)

FACTORS: Tuple[Field, ...] = (
    _array("user_factors_", "float", ("n_users", "k"), layout="aligned64", bound=FACTOR_BOUND),
    _array("item_factors_", "float", ("n_items", "k"), layout="aligned64", bound=FACTOR_BOUND),
)


#: the engagement model of ranking="engagement" (fastmf.models.engagement)
ENGAGEMENT: Tuple[Field, ...] = (
    _array("user_engagement_", "float", ("n_users", "k_engagement"), optional=True, layout="aligned64",
           bound=FACTOR_BOUND, doc='the engagement model of ranking="engagement"'),
    _array("item_engagement_", "float", ("n_items", "k_engagement"), optional=True, layout="aligned64",
           bound=FACTOR_BOUND),
)


def _side_state(kind: str) -> Tuple[Field, ...]:
    return (
        _array(f"{kind}_side_map_", "float64", (f"n_{kind}_side_rows", f"{kind}_side_width"), optional=True,
               doc=f"side features: ridge map from a {kind}'s feature row (+ intercept, last) to its "
                   "factors, bias and engagement row (fastmf.models.side)"),
        Field(f"{kind}_side_names_", "list", "str", optional=True, doc="the feature columns of fit"),
        Field(f"{kind}_side_targets_", "list", "str", optional=True,
              doc="the arrays the map's columns fill, in order"),
    )


#: the feature-to-factor maps of side="map" (fastmf.models.side), on every factor model
SIDE: Tuple[Field, ...] = _side_state("item") + _side_state("user")


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: see the module docstring."""

    key: str
    class_path: str  # "module:ClassName"
    summary: str
    tags: frozenset = frozenset()
    state: Tuple[Field, ...] = ()
    presets: Mapping[str, Tuple[Dict[str, Any], str]] = field(default_factory=dict)
    #: "module.qualname" names older model files (format 1) stored for this class
    legacy_classes: Tuple[str, ...] = ()
    #: the default search of fastmf.tune.search (space, budget parameter, max budget); None: the
    #: model has no parameters worth searching (a search then fits it once)
    search_space: Optional[SearchSpec] = None
    #: preset name -> its own default search (the "als" preset searches no learning rate)
    preset_search_spaces: Mapping[str, SearchSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.tags) - set(TAGS)
        if unknown:
            raise ValueError(f"ModelEntry {self.key!r}: unknown tags {sorted(unknown)} (known: {sorted(TAGS)})")
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"ModelEntry {self.key!r}: a fitted attribute is declared twice: {names}")

    @property
    def cls(self) -> type:
        module, _, name = self.class_path.partition(":")
        return getattr(importlib.import_module(module), name)

    @property
    def class_name(self) -> str:
        return self.class_path.partition(":")[2]

    @property
    def fields(self) -> Tuple[Field, ...]:
        """The whole fitted state: the common part, then the model's own."""
        return COMMON_STATE + self.state

    def has(self, tag: str) -> bool:
        if tag not in TAGS:
            raise ValueError(f"unknown tag {tag!r} (known: {sorted(TAGS)})")
        return tag in self.tags


_ENTRIES: Tuple[ModelEntry, ...] = (
    ModelEntry(
        "mf", "fastmf.models.mf:MatrixFactorization",
        "biased matrix factorization trained by SGD (default)",
        frozenset({"predicts_ratings", "needs_ratings", "iterative", "has_factors", "fold_in",
                   "thread_invariant", "uses_features"}),
        FACTORS + (
            _array("user_bias_", "float", ("n_users",), optional=True, required_if="biased"),
            _array("item_bias_", "float", ("n_items",), optional=True, required_if="biased"),
            Field("seed_", "scalar", "int", low=0, high=2**64 - 1, doc="the seed the kernels were given"),
            *TRAINING_STATE,
            *ENGAGEMENT,
            *SIDE,
        ),
        presets={"als": ({"solver": "als"}, "the same model trained by alternating least squares")},
        legacy_classes=("fastmf.mf.MatrixFactorization",),
        search_space=SearchSpec(
            # the penalties and the initial scale span 5x and 4x (0.03-0.15, 0.005-0.02; bias penalty
            # 0.003-0.1) rather than 10x (0.02-0.2, 0.003-0.03, 0.001-0.1 before): the edges of the
            # wider box won on the validation part with early-stopped, weakly penalised models that
            # did worse on the test folds. Developed on ml-100k u2-u5 x seeds 0-3: test RMSE lower or
            # equal in 16 of 16 searches (mean 0.9045 -> 0.9033), at the same cost (the factor and
            # learning-rate ranges, which set the cost, are unchanged); u1 (checked only) 0.9175 -> 0.9166
            {"n_factors": IntLog(32, 256), "lr": FloatLog(0.002, 0.02), "reg": FloatLog(0.03, 0.15),
             "reg_bias": FloatLog(0.003, 0.1), "init_std": FloatLog(0.005, 0.02)},
            budget="n_epochs", max_budget=200, rating_trial_params={"ranking": "rating"},
            # an SGD epoch is a pass over the data: on the larger set it already makes more updates
            # per row. Refits at the validated epoch count beat the size-scaled count on ml-100k
            # u2 and u3 (test RMSE 0.9074 vs 0.9102, 0.9067 vs 0.9072, 0.8994 vs 0.9008, 0.9025
            # vs 0.9030; default search, random_state 0 and 1)
            epochs_scale=("lr", 0.002), scale_refit_epochs=False,
            doc="SGD: factors 32-256, learning rate 0.002-0.02, factor penalty 0.03-0.15, bias penalty "
                "0.003-0.1, initial scale 0.005-0.02 (all log-uniform); up to 200 epochs at lr 0.002, "
                "fewer in proportion at larger learning rates (epochs_scale)"),
        preset_search_spaces={"als": SearchSpec(
            {"n_factors": IntLog(8, 128), "reg": FloatLog(0.005, 0.5), "reg_bias": FloatLog(0.001, 0.5)},
            budget="n_epochs", max_budget=20, rating_trial_params={"ranking": "rating"},
            doc="ALS: factors 8-128, factor and bias penalties (log-uniform); up to 20 sweeps")},
    ),
    ModelEntry(
        "ials", "fastmf.models.implicit:ImplicitALS",
        "implicit-feedback ALS (Hu, Koren & Volinsky 2008), for ranking",
        # the ratings' values are its confidences (1 + alpha r): it needs them
        frozenset({"needs_ratings", "iterative", "has_factors", "fold_in", "thread_invariant",
                   "uses_features"}),
        FACTORS + TRAINING_STATE + SIDE,
        legacy_classes=("fastmf.implicit.ImplicitALS",),
        search_space=SearchSpec(
            {"n_factors": IntLog(16, 256), "reg": FloatLog(0.001, 1.0), "alpha": FloatLog(0.5, 50.0),
             "reg_nu": Float(0.0, 1.0)},
            budget="n_epochs", max_budget=20,
            doc="factors 16-256, penalty 0.001-1 and confidence slope 0.5-50 (log-uniform), frequency "
                "scaling exponent 0-1; up to 20 sweeps"),
    ),
    ModelEntry(
        "bayes", "fastmf.models.bayes:BayesianMF",
        "Bayesian MF by Gibbs sampling (Salakhutdinov & Mnih 2008): nothing to tune, predictive std",
        frozenset({"predicts_ratings", "needs_ratings", "iterative", "has_factors", "fold_in",
                   "thread_invariant", "uses_features"}),
        (
            _array("user_factors_", "float", ("n_users", "k"), bound=FACTOR_BOUND, doc="posterior means"),
            _array("item_factors_", "float", ("n_items", "k"), bound=FACTOR_BOUND),
            _array("user_bias_", "float", ("n_users",)),
            _array("item_bias_", "float", ("n_items",)),
            Field("seed_", "scalar", "int", low=0, high=2**64 - 1, doc="the seed of the sampler's streams"),
            *TRAINING_STATE,
            Field("alpha_", "scalar", "float", doc="posterior mean of the noise precision"),
            Field("n_averaged_", "scalar", "int", doc="draws averaged into the means"),
            _array("user_prior_mean_", "float64", ("k+1",)),
            _array("user_prior_prec_", "float64", ("k+1", "k+1")),
            _array("item_prior_mean_", "float64", ("k+1",)),
            _array("item_prior_prec_", "float64", ("k+1", "k+1")),
            _array("user_samples_", "float", ("n_kept", "n_users", "k+1"), bound=FACTOR_BOUND,
                   doc="kept draws, bias last"),
            _array("item_samples_", "float", ("n_kept", "n_items", "k+1"), bound=FACTOR_BOUND),
            _array("alpha_samples_", "float64", ("n_kept",)),
            _array("item_implicit_", "float", ("n_items", "k+1"), optional=True,
                   doc="implicit=True: each item's implicit row [y_j, c_j], summed into its raters' rows"),
            _array("user_implicit_", "float", ("n_users", "k+1"), optional=True,
                   doc="implicit=True: each user's implicit row, summed into the rows of the items they rated"),
            *ENGAGEMENT,
            *SIDE,
        ),
    ),
    ModelEntry(
        "svdpp", "fastmf.models.svdpp:SVDpp",
        "SVD++ (Koren 2008): biased MF plus the implicit feedback of what each user rated",
        frozenset({"predicts_ratings", "needs_ratings", "iterative", "has_factors", "fold_in",
                   "thread_invariant"}),
        (
            _array("user_factors_", "float", ("n_users", "k"), bound=FACTOR_BOUND,
                   doc="effective user rows p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j"),
            _array("item_factors_", "float", ("n_items", "k"), bound=FACTOR_BOUND),
            _array("item_implicit_", "float", ("n_items", "k"), bound=FACTOR_BOUND, doc="the implicit rows y_j"),
            _array("user_bias_", "float", ("n_users",)),
            _array("item_bias_", "float", ("n_items",)),
            Field("seed_", "scalar", "int", low=0, high=2**64 - 1, doc="the seed the kernels were given"),
            *TRAINING_STATE,
            *ENGAGEMENT,
        ),
        search_space=SearchSpec(
            {"n_factors": IntLog(16, 256), "lr": FloatLog(0.002, 0.02), "reg": FloatLog(0.01, 0.2),
             "reg_bias": FloatLog(0.001, 0.1), "init_std": FloatLog(0.003, 0.1)},
            budget="n_epochs", max_budget=100, rating_trial_params={"ranking": "rating"},
            doc="factors 16-256, learning rate 0.002-0.02, factor penalty 0.01-0.2, bias penalty "
                "0.001-0.1, initial scale 0.003-0.1 (log-uniform); up to 100 epochs"),
    ),
    ModelEntry(
        "timesvdpp", "fastmf.models.timesvd:TimeSVDpp",
        "timeSVD++ (Koren 2009): SVD++ with drifting biases, rating scale and user factors",
        frozenset({"predicts_ratings", "needs_ratings", "iterative", "has_factors", "fold_in",
                   "thread_invariant", "uses_time"}),
        (
            _array("user_factors_", "float", ("n_users", "k"), bound=FACTOR_BOUND,
                   doc="static effective user rows p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j"),
            _array("item_factors_", "float", ("n_items", "k"), bound=FACTOR_BOUND),
            _array("item_implicit_", "float", ("n_items", "k"), bound=FACTOR_BOUND, doc="the implicit rows y_j"),
            _array("user_bias_", "float", ("n_users",)),
            _array("item_bias_", "float", ("n_items",)),
            _array("item_bin_bias_", "float", ("n_items", "n_bins"), optional=True, required_if="item_bins",
                   doc="b_{i,Bin(t)}"),
            _array("user_drift_", "float", ("n_users",), optional=True, required_if="user_drift", doc="alpha_u"),
            _array("user_scale_", "float", ("n_users",), optional=True, required_if="scaling", doc="c_u"),
            _array("user_factor_drift_", "float", ("n_users", "k"), optional=True, required_if="factor_drift",
                   bound=FACTOR_BOUND, doc="alpha_pu"),
            _array("user_mean_day_", "float64", ("n_users",), doc="t_u, the mean training day of each user"),
            _array("user_day_ptr_", "int64", ("n_users+1",), doc="the (user, day) rows of each user"),
            _array("user_day_days_", "int64", ("n_user_days",), doc="the day of each (user, day) row"),
            _array("user_day_bias_", "float", ("n_user_days",), optional=True, required_if="day_bias",
                   doc="b_{u,t}"),
            _array("user_day_scale_", "float", ("n_user_days",), optional=True, required_if="scaling",
                   doc="c_{u,t}"),
            _array("user_day_factors_", "float", ("n_user_days", "k"), optional=True, required_if="day_factors",
                   bound=FACTOR_BOUND, doc="p_{u,t}"),
            Field("first_day_", "scalar", "int", low=-10**8, high=10**8, doc="the first training day"),
            Field("last_time_", "scalar", "int", low=-10**13, high=10**13,
                  doc="the last training timestamp: the default time of predict and recommend"),
            Field("bin_width_", "scalar", "int", low=1, high=10**8, doc="days per item-bias bin"),
            Field("seed_", "scalar", "int", low=0, high=2**64 - 1, doc="the seed the kernels were given"),
            *TRAINING_STATE,
            *ENGAGEMENT,
        ),
        search_space=SearchSpec(
            {"n_factors": IntLog(16, 256), "lr": FloatLog(0.002, 0.02), "reg": FloatLog(0.01, 0.2),
             "reg_bias": FloatLog(0.001, 0.1), "lr_day_bias": FloatLog(0.0005, 0.01),
             "reg_day_bias": FloatLog(0.001, 0.1), "lr_scale": FloatLog(0.001, 0.02)},
            budget="n_epochs", max_budget=100, rating_trial_params={"ranking": "rating"},
            doc="factors 16-256, learning rate 0.002-0.02, factor penalty 0.01-0.2, bias penalty "
                "0.001-0.1, day-bias rate and penalty, scale rate (log-uniform); up to 100 epochs"),
    ),
    ModelEntry(
        "biases", "fastmf.models.baselines:Biases",
        "global mean + user and item biases (rating baseline)",
        frozenset({"predicts_ratings", "needs_ratings", "fold_in", "thread_invariant"}),
        (_array("user_bias_", "float64", ("n_users",)), _array("item_bias_", "float64", ("n_items",))),
        legacy_classes=("fastmf.baselines.Biases",),
        search_space=SearchSpec({"reg_user": FloatLog(0.1, 50.0), "reg_item": FloatLog(0.1, 50.0)},
                                doc="user and item penalties 0.1-50 (log-uniform)"),
    ),
    ModelEntry(
        "popularity", "fastmf.models.baselines:Popularity",
        "the most-rated items (ranking baseline)",
        frozenset({"fold_in", "thread_invariant"}),
        (_array("item_scores_", "float64", ("n_items",)),),
        legacy_classes=("fastmf.baselines.Popularity",),
        search_space=SearchSpec({"by": Choice("count", "sum")}, doc="count or sum of the ratings"),
    ),
    ModelEntry(
        "globalmean", "fastmf.models.baselines:GlobalMean",
        "the mean training rating for every pair (baseline)",
        frozenset({"predicts_ratings", "needs_ratings", "fold_in", "thread_invariant"}),
        (),
        legacy_classes=("fastmf.baselines.GlobalMean",),
    ),
)

_BUILTIN = _ENTRIES
_BY_KEY = {e.key: e for e in _ENTRIES}
_BY_LEGACY = {name: e for e in _ENTRIES for name in e.legacy_classes}


def entries() -> Tuple[ModelEntry, ...]:
    """Every registered model, in the order the command line lists them."""
    return _ENTRIES


def get(key: str) -> ModelEntry:
    """The entry of ``key``; KeyError naming the known keys otherwise."""
    try:
        return _BY_KEY[key]
    except (KeyError, TypeError):
        raise KeyError(f"unknown model {key!r}; the registered models: {', '.join(_BY_KEY)}") from None


def for_class(cls: type) -> ModelEntry:
    """The entry whose class is ``cls`` exactly; KeyError for any other class (subclasses included:
    a subclass may add state the entry does not declare)."""
    for e in _ENTRIES:
        module, _, name = e.class_path.partition(":")
        if cls.__module__ == module and cls.__qualname__ == name and e.cls is cls:
            return e
    raise KeyError(f"{cls.__module__}.{cls.__qualname__} is not a registered fastmf model "
                   f"(registered: {', '.join(e.class_name for e in _ENTRIES)})")


def key_of(stored: str) -> Optional[ModelEntry]:
    """The entry a model file names: a registry key (format 2) or an old ``module.qualname`` (format 1)."""
    return _BY_KEY.get(stored) or _BY_LEGACY.get(stored)


def presets() -> Dict[str, Tuple[ModelEntry, Dict[str, Any], str]]:
    """{name: (entry, fixed parameters, description)} of every model name the command line takes:
    each entry's key (no fixed parameters) followed by its presets."""
    out: Dict[str, Tuple[ModelEntry, Dict[str, Any], str]] = {}
    for e in _ENTRIES:
        out[e.key] = (e, {}, e.summary)
        for name, (params, summary) in e.presets.items():
            out[name] = (e, dict(params), summary)
    return out


def search_spec(entry: ModelEntry, params: Mapping[str, Any]) -> SearchSpec:
    """The default search of a model of ``entry`` with parameters ``params``: the search space of
    the preset whose fixed parameters ``params`` has (``solver="als"``: the "als" preset's), else
    the entry's own; an empty space (one fit) when the entry declares none."""
    for name, spec in entry.preset_search_spaces.items():
        fixed = entry.presets[name][0]
        if all(params.get(k) == v for k, v in fixed.items()):
            return spec
    return entry.search_space if entry.search_space is not None else SearchSpec()


# ============================================================================ the state check
def _is_bool(v: Any) -> bool:
    return type(v).__name__ in ("bool", "bool_")


_SCALAR_CHECKS = {
    "int": lambda v: isinstance(v, numbers.Integral) and not _is_bool(v),
    "float": lambda v: isinstance(v, numbers.Real) and not _is_bool(v),
    "bool": _is_bool,
    "str": lambda v: isinstance(v, str),
    "any": lambda v: v is None or isinstance(v, (numbers.Number, str)),
}


def register(entry: ModelEntry) -> ModelEntry:
    """Add a model to the registry (a model of another package, or a test's); ValueError when its
    key, one of its presets or its class is registered already. Returns ``entry``."""
    global _ENTRIES, _BY_KEY, _BY_LEGACY
    taken = set(presets())
    clash = ({entry.key, *entry.presets} & taken) or (
        {entry.class_path} & {e.class_path for e in _ENTRIES})
    if clash:
        raise ValueError(f"cannot register {entry.key!r}: {', '.join(sorted(clash))} is registered already")
    _ENTRIES = _ENTRIES + (entry,)
    _BY_KEY = {e.key: e for e in _ENTRIES}
    _BY_LEGACY = {name: e for e in _ENTRIES for name in e.legacy_classes}
    return entry


def unregister(key: str) -> None:
    """Remove the model ``key`` that :func:`register` added (fastmf's own cannot be removed)."""
    global _ENTRIES, _BY_KEY, _BY_LEGACY
    if key in {e.key for e in _BUILTIN}:
        raise ValueError(f"{key!r} is one of fastmf's own models and cannot be unregistered")
    get(key)
    _ENTRIES = tuple(e for e in _ENTRIES if e.key != key)
    _BY_KEY = {e.key: e for e in _ENTRIES}
    _BY_LEGACY = {name: e for e in _ENTRIES for name in e.legacy_classes}


def check_state(entry: ModelEntry, params: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    """Check a fitted state against ``entry``'s declaration; ValueError naming the first problem.

    ``values`` is {attribute: value} (a model's public ``*_`` attributes, or what a model file
    holds); ``params`` the model's parameters. Every declared attribute must be there (optional ones
    may be absent or None), nothing undeclared may be, each value must be of its kind, and arrays
    must have their dtype and their shape in the sizes of this state. Saving and loading both call
    this, so a state that saves is a state that loads.
    """
    import numpy as np

    from fastmf.data.ratings import IdMap, Metadata

    cls = entry.class_name
    declared = {f.name: f for f in entry.fields}
    undeclared = sorted(set(values) - set(declared))
    if undeclared:
        raise ValueError(f"{cls}: {', '.join(undeclared)} {'is' if len(undeclared) == 1 else 'are'} not part "
                         f"of its declared fitted state (registry entry {entry.key!r}: "
                         f"{', '.join(declared)}); a model's state is declared in fastmf.models.registry")
    sizes: Dict[str, int] = {}
    n_factors = params.get("n_factors")
    if isinstance(n_factors, numbers.Integral) and not isinstance(n_factors, bool):
        sizes["k"] = int(n_factors)
    float_dtype = params.get("dtype")
    float_dtype = np.dtype(float_dtype) if isinstance(float_dtype, (str, type, np.dtype)) else None
    float_seen: Dict[str, Any] = {}

    def size(dim: Any, f: Field) -> int:
        if isinstance(dim, int):
            return dim
        name, plus, extra = str(dim).partition("+")
        if name not in sizes:
            raise ValueError(f"{cls}: {f.name}'s shape names the size {name!r} before anything sets it")
        return sizes[name] + (int(extra) if plus else 0)

    def bound(b, f):
        if b is None or isinstance(b, int):
            return b
        if b not in sizes:
            raise ValueError(f"{cls}: {f.name}'s bound names the size {b!r} before anything sets it")
        return sizes[b]

    for f in entry.fields:
        if f.name not in values or values[f.name] is None:
            if f.optional and f.required_if is not None and params.get(f.required_if) is True:
                what = "missing" if f.name not in values else "None"
                raise ValueError(f"{cls}: fitted attribute {f.name} is {what}, but a {cls} with "
                                 f"{f.required_if}=True has it")
            if not f.optional:
                what = "missing" if f.name not in values else "None"
                raise ValueError(f"{cls}: fitted attribute {f.name} is {what} (every fitted {cls} has it)")
            continue
        value = values[f.name]
        if f.kind == "idmap":
            if not isinstance(value, IdMap):
                raise ValueError(f"{cls}: {f.name} must be an IdMap, got {type(value).__name__}")
            sizes["n_" + f.name[:-len("_map_")] + "s"] = len(value)
        elif f.kind == "metadata":
            if not isinstance(value, Metadata):
                raise ValueError(f"{cls}: {f.name} must be Metadata or None, got {type(value).__name__}")
        elif f.kind == "scalar":
            if not _SCALAR_CHECKS[f.dtype or "any"](value):
                raise ValueError(f"{cls}: {f.name} must be {'an' if f.dtype == 'int' else 'a'} {f.dtype}, "
                                 f"got {value!r:.60}")
            if f.dtype == "float" and f.finite and not _bounded(value, f.bound or FLOAT_BOUND):
                raise ValueError(f"{cls}: {f.name} must be a finite number within +-{FLOAT_BOUND:g}, "
                                 f"got {value!r}")
            low, high = bound(f.low, f), bound(f.high, f)
            if (low is not None and value < low) or (high is not None and value > high):
                raise ValueError(f"{cls}: {f.name} = {value!r:.40} is outside [{low}, {high}]"
                                 f"{f' ({f.high} = {high})' if isinstance(f.high, str) else ''}")
            if f.name in ("n_users_", "n_items_"):
                if value < 0:
                    raise ValueError(f"{cls}: {f.name} must be >= 0, got {value}")
                if sizes.get(f.name[:-1], value) != value:
                    raise ValueError(f"{cls}: {f.name} = {value} but {f.name[2:-2]}_map_ has "
                                     f"{sizes[f.name[:-1]]} ids")
        elif f.kind in ("tuple", "list"):
            kind = tuple if f.kind == "tuple" else list
            item_ok = _SCALAR_CHECKS.get(f.dtype or "any")
            if not (isinstance(value, kind) and (f.shape is None or len(value) == f.shape[0])
                    and all(item_ok(v) for v in value)):
                raise ValueError(f"{cls}: {f.name} must be a {f.kind} of {f.shape[0] if f.shape else 'any number of'} "
                                 f"{f.dtype or 'scalar'} values, got {value!r:.60}")
            if f.dtype == "float" and f.finite and not all(_bounded(v, f.bound or FLOAT_BOUND) for v in value):
                raise ValueError(f"{cls}: {f.name} must hold finite numbers within +-{FLOAT_BOUND:g}, "
                                 f"got {value!r:.60}")
        elif f.kind == "records":
            if not (isinstance(value, list) and all(isinstance(r, dict) and all(isinstance(k, str) for k in r)
                                                    for r in value)):
                raise ValueError(f"{cls}: {f.name} must be a list of records (dicts with string keys)")
            if f.shape:
                sizes[str(f.shape[0])] = len(value)
        else:  # array
            if not isinstance(value, np.ndarray):
                raise ValueError(f"{cls}: {f.name} must be a NumPy array, got {type(value).__name__}")
            if f.dtype == "float":
                if value.dtype not in (np.float32, np.float64):
                    raise ValueError(f"{cls}: {f.name} must be float32 or float64, got {value.dtype}")
                if float_dtype is not None and value.dtype != float_dtype:
                    raise ValueError(f"{cls}: {f.name} is {value.dtype} but the parameter dtype is {float_dtype}")
                float_seen.setdefault(value.dtype.name, f.name)
                if len(float_seen) > 1:
                    raise ValueError(f"{cls}: the float arrays must share one dtype, got "
                                     f"{', '.join(f'{a} {d}' for d, a in float_seen.items())}")
            elif value.dtype != np.dtype(f.dtype):
                raise ValueError(f"{cls}: {f.name} must be {f.dtype}, got {value.dtype}")
            if f.finite and value.dtype.kind == "f" and value.size:
                finite = np.isfinite(value)
                if not finite.all():
                    pos = np.unravel_index(int(np.flatnonzero(~finite.reshape(-1))[0]), value.shape)
                    raise ValueError(f"{cls}: {f.name}{list(map(int, pos))} = {value[pos]} is not finite")
                limit = f.bound or FLOAT_BOUND  # every float array: factors, biases, item scores
                big = np.abs(value) > limit
                if big.any():
                    pos = np.unravel_index(int(np.flatnonzero(big.reshape(-1))[0]), value.shape)
                    raise ValueError(f"{cls}: {f.name}{list(map(int, pos))} = {value[pos]:.3g} is beyond "
                                     f"the bound {limit:g} of its entries (no fitted model comes near it; "
                                     "its scores could overflow)")
            shape = f.shape or ()
            if value.ndim != len(shape):
                raise ValueError(f"{cls}: {f.name} must have {len(shape)} dimension(s) {shape}, got shape "
                                 f"{value.shape}")
            for axis, dim in enumerate(shape):
                name = str(dim).partition("+")[0]
                if isinstance(dim, str) and name not in sizes:
                    sizes[name] = value.shape[axis]  # a model's own size, bound by its first use
                want = size(dim, f)
                if value.shape[axis] != want:
                    raise ValueError(f"{cls}: {f.name} has shape {value.shape}; axis {axis} must be {dim} = {want}")
