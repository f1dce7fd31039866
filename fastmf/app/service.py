"""The service layer: what the command line (and the coming web page) do, as plain functions.

Each function takes Python values and returns Python objects (Ratings, models, dicts, lists,
dataclasses); none prints or writes to stdout/stderr, and none looks at the terminal: a front that
wants a progress bar says so (``progress=True``; the bar is the library's, drawn by
:mod:`fastmf.training.progress`). Mistakes a user can fix raise the typed exceptions of
:mod:`fastmf.errors` (all :class:`~fastmf.errors.UserError`, each carrying the values it is about):

- :class:`~fastmf.errors.UnknownModelError` / :class:`~fastmf.errors.ModelUnavailableError`: a model
  name that is not a registry preset, or one this version cannot provide;
- :class:`~fastmf.errors.UnknownIdError`: a user or item id the model does not know;
- :class:`~fastmf.errors.DataSpecError`: a data spec (MovieLens name, folder, file) that is no data;
- :class:`~fastmf.errors.OptionError`: an option that does not apply, or a malformed one;
- :class:`~fastmf.errors.CapabilityError`: the model cannot do that (no factors, no history);
- :class:`~fastmf.errors.TitleSearchError`: a title search with no match, or several.

Models come from :mod:`fastmf.models.registry` (its presets are the model names; its tags say
what a model can do); nothing here lists models. The messages name the command-line options
(``--factors``) because the options of every front are the same names (:data:`MODEL_OPTIONS`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from fastmf.errors import (CapabilityError, DataSpecError, DatasetNotFoundError, ModelUnavailableError,
                           OptionError, TitleSearchError, UnknownIdError, UnknownModelError, UserError)

if TYPE_CHECKING:  # pragma: no cover - fastmf itself is imported on first use, so `fastmf --help` stays fast
    import numpy as np

    from fastmf.data.ratings import IdMap, Ratings
    from fastmf.models.base import Recommender
    from fastmf.models.registry import ModelEntry

__all__ = ["MODEL_OPTIONS", "SPLITS", "model_presets", "model_entry", "entry_of", "model_class",
           "is_iterative", "parse_value", "make_model", "check_training_options", "n_epochs_of",
           "fit_model", "refit_model", "find_dataset", "load_data", "split_data", "default_validation",
           "carve_validation", "describe_data", "load_model", "looks_like_model", "model_info",
           "parse_id", "id_range", "item_details", "ranked_items", "Ranked", "recommend", "recommend_all",
           "find_title", "title_matches", "similar_items", "evaluate_model", "best_model",
           "side_features", "similar_to_features",
           "tune_model", "compare_models", "validation_protocol",
           "Catalog", "normalize_title", "display_title", "item_entropy", "coerce_id",
           "jsonable", "check_destination", "check_plot", "draw_factor_map", "draw_learning_curve", "need_matplotlib"]

#: option name (what ``fastmf train --NAME`` and a web form use) -> constructor parameters it may set,
#: the first the model has wins (old and new spellings of the epoch count both work)
MODEL_OPTIONS: Dict[str, Tuple[str, ...]] = {
    "factors": ("n_factors",),
    "epochs": ("n_epochs",),
    "lr": ("lr",),
    "reg": ("reg",),
    "reg_bias": ("reg_bias",),
    "alpha": ("alpha",),
    "threads": ("n_threads",),
    "dtype": ("dtype",),
    "ranking": ("ranking",),
}

#: the test splits :func:`split_data` makes
SPLITS = ("random", "temporal", "leave-last-out", "user-holdout", "item-cold", "user-cold", "none")

#: fit() keywords every model tagged "iterative" takes (fastmf.training.loop.check_fit_options)
ITERATIVE_FIT = ("eval_set", "eval_metrics", "early_stopping", "early_stopping_rounds", "callbacks", "progress")

EpochCallback = Callable[[Any, Mapping[str, Any]], Any]


def _flag(option: str) -> str:
    return f"--{option.replace('_', '-')}"


# ====================================================================== models
def model_presets() -> Dict[str, Tuple[ModelEntry, Dict[str, Any], str]]:
    """{model name: (registry entry, fixed parameters, description)}, in the order to list them:
    the registry's presets (``mf``, ``als``, ``ials``, ``biases``, ``popularity``, ``globalmean``)."""
    from fastmf.models import registry

    return registry.presets()


def model_entry(name: str) -> ModelEntry:
    """The registry entry behind model name ``name``; :class:`UnknownModelError` for another name."""
    presets = model_presets()
    if name not in presets:
        raise UnknownModelError(f"unknown model {name!r}; choose one of: {', '.join(presets)}", name, tuple(presets))
    return presets[name][0]


def entry_of(model: Recommender) -> Optional[ModelEntry]:
    """The registry entry of ``model``'s class (or of the nearest registered base class); None for a
    model class that is not registered."""
    from fastmf.models import registry

    for cls in type(model).__mro__:
        try:
            return registry.for_class(cls)
        except KeyError:
            continue
    return None


def is_iterative(model: Recommender) -> bool:
    """Whether ``model`` is tagged ``iterative``: its fit runs epochs through fastmf.training and
    takes ``eval_set``, ``eval_metrics``, ``early_stopping(_rounds)``, ``callbacks``, ``progress``."""
    entry = entry_of(model)
    return entry is not None and entry.has("iterative")


def model_class(name: str) -> Tuple[type, Dict[str, Any]]:
    """(class, fixed constructor arguments) of model name ``name``.

    Raises :class:`UnknownModelError` for a name the registry does not have, and
    :class:`ModelUnavailableError` when this version of fastmf cannot provide its class or preset.
    """
    presets = model_presets()
    entry = model_entry(name)
    _, fixed, _ = presets[name]
    try:
        cls = entry.cls
    except (ImportError, AttributeError):
        raise ModelUnavailableError(f"model {name!r} is not available in this version of fastmf "
                                    f"(fastmf.{entry.class_name} does not exist yet)", name, tuple(presets)) from None
    if fixed:
        from fastmf._validation import check_params

        try:
            check_params(cls.__name__, fixed, getattr(cls, "_constraints", {}))
        except ValueError as exc:
            raise ModelUnavailableError(f"model {name!r} is not available in this version of fastmf ({exc})",
                                        name, tuple(presets)) from None
    return cls, dict(fixed)


def parse_value(text: str) -> object:
    """A parameter value typed as text: None, True/False, an int, a float, else the string itself."""
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def make_model(name: str, options: Optional[Mapping[str, Any]] = None, params: Sequence[str] = (),
               seed: Optional[int] = None) -> Recommender:
    """An unfitted estimator for model name ``name`` (a registry preset) with the given settings.

    ``options`` maps names of :data:`MODEL_OPTIONS` to values (None: not given); ``params`` are
    ``"NAME=VALUE"`` strings setting any other constructor argument (values by :func:`parse_value`);
    ``seed`` goes to ``random_state`` when the model has one. An option or parameter the model does
    not have raises :class:`OptionError` naming what it does have; a bad value raises the model's
    ValueError (``"Biases: reg must be ..."``).
    """
    cls, kwargs = model_class(name)
    names = cls._param_names()
    for opt, value in (options or {}).items():
        if value is None:
            continue
        if opt not in MODEL_OPTIONS:
            raise OptionError(f"unknown option {opt!r} (the options: {', '.join(MODEL_OPTIONS)})", opt)
        target = next((p for p in MODEL_OPTIONS[opt] if p in names), None)
        if target is None:
            usable = [_flag(o) for o, ps in MODEL_OPTIONS.items() if any(p in names for p in ps)]
            takes = f"its options: {', '.join(usable)}, --param NAME=VALUE" if usable else "it has no such options"
            raise OptionError(f"{_flag(opt)} does not apply to --model {name} ({cls.__name__}; {takes})", opt)
        kwargs[target] = value
    if seed is not None and "random_state" in names:
        kwargs["random_state"] = seed
    for item in params:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OptionError(f"--param {item!r}: expected NAME=VALUE, e.g. --param init_std=0.05", "param")
        if key not in names:
            raise OptionError(f"--param {key}: {cls.__name__} has no parameter {key!r} (its parameters: "
                              f"{', '.join(names) or 'none'})", "param")
        kwargs[key] = parse_value(text)
    model = cls()
    model.set_params(**kwargs)  # validates: ValueError "<Class>: lr must be ..., got -1.0"
    return model


def check_training_options(model: Recommender, name: str, *, early_stopping: Optional[int] = None,
                           validation: Optional[float] = None, curve: bool = False) -> None:
    """Raise :class:`OptionError` when a training option does not apply to ``model`` (made from
    model name ``name``): early stopping, a validation split and a learning curve need an iterative
    model (registry tag ``iterative``)."""
    if is_iterative(model):
        return
    if curve:
        raise OptionError(f"--plot draws the learning curve of an iterative model; {type(model).__name__} "
                          f"(--model {name}) records no training history", "plot")
    if early_stopping is not None:
        raise OptionError(f"--early-stopping does not apply to --model {name}", "early_stopping")
    if validation:
        raise OptionError(f"--validation applies to iterative models (mf, als, ials), not --model {name}",
                          "validation")


def n_epochs_of(model: Recommender) -> Optional[int]:
    """The number of epochs (sweeps) ``model.fit`` runs, or None for a non-iterative model."""
    resolved = getattr(model, "_resolved_n_epochs", None)
    if resolved is not None:
        return resolved()
    params = model.get_params()
    return next((params[p] for p in MODEL_OPTIONS["epochs"] if p in params), None)


def side_features(model: Recommender, ds: Ratings, item: Optional[str] = None,
                  user: Optional[str] = None) -> Dict[str, Any]:
    """The ``fit`` keywords of side features named on the command line: ``item`` / ``user`` are
    comma-separated feature sets of ``Ratings.item_features`` (``"genres,year"``) /
    ``Ratings.user_features`` (``"age,gender,occupation"``). {} when neither is given.
    :class:`CapabilityError` for a model that takes no features (registry tag ``uses_features``),
    :class:`OptionError` for an unknown name or data without that metadata."""
    from fastmf.errors import DataError

    if item is None and user is None:
        return {}
    entry = entry_of(model)
    if entry is None or not entry.has("uses_features"):
        raise CapabilityError(f"{type(model).__name__} takes no side features (--model mf, als, ials, bayes)",
                              "item_features" if item is not None else "user_features")
    out: Dict[str, Any] = {}
    for kind, spec in (("item", item), ("user", user)):
        if spec is None:
            continue
        names = [n.strip() for n in spec.split(",") if n.strip()]
        try:
            out[f"{kind}_features"] = getattr(ds, f"{kind}_features")(*names)
        except (ValueError, DataError) as exc:
            raise OptionError(f"--{kind}-features {spec!r}: {exc}", f"{kind}_features") from None
    return out


def fit_model(model: Recommender, train: Ratings, *, eval_set: Optional[Ratings] = None, eval_k: int = 10,
              early_stopping_rounds: Optional[int] = None, progress: bool = False,
              on_epoch: Optional[EpochCallback] = None, features: Optional[Mapping[str, Any]] = None
              ) -> Recommender:
    """``model.fit(train, ...)``; returns the model.

    For an iterative model: ``eval_set`` is measured after every epoch (the rating metrics for a
    model tagged ``predicts_ratings``, else ndcg / precision / recall at ``eval_k``),
    ``early_stopping_rounds`` stops when it has not improved for that many epochs, ``progress=True``
    draws the library's epoch bar on stderr and ``on_epoch(model, history_entry)`` is called after
    each epoch. A non-iterative model's fit takes only the data: ``eval_set`` or early stopping for
    it raise :class:`OptionError`; ``progress`` and ``on_epoch`` are ignored (there are no epochs).
    ``features``: the side-feature keywords of :func:`side_features`, passed to ``fit``.
    """
    features = dict(features or {})
    entry = entry_of(model)
    if not is_iterative(model):
        if eval_set is not None or early_stopping_rounds is not None:
            raise OptionError(f"{type(model).__name__} is not iterative: it takes no validation set "
                              "and no early stopping", "eval_set" if eval_set is not None else "early_stopping")
        return model.fit(train, **features)
    kwargs: Dict[str, Any] = {"progress": bool(progress), **features}
    if on_epoch is not None:
        kwargs["callbacks"] = [on_epoch]
    if eval_set is not None:
        kwargs["eval_set"] = eval_set
        if entry is not None and not entry.has("predicts_ratings"):
            kwargs["eval_metrics"] = (f"ndcg@{eval_k}", f"precision@{eval_k}", f"recall@{eval_k}")
    if early_stopping_rounds is not None:
        kwargs["early_stopping_rounds"] = early_stopping_rounds
    return model.fit(train, **kwargs)


def refit_model(model: Recommender, data: Ratings, *, progress: bool = False,
                on_epoch: Optional[EpochCallback] = None, features: Optional[Mapping[str, Any]] = None
                ) -> Recommender:
    """A fresh copy of ``model`` (same parameters and seed) fitted on ``data`` for as many epochs as
    ``model`` kept (its ``best_epoch_``, the one selected on validation): the model to serve."""
    fresh = type(model)()
    params = model.get_params()
    best = getattr(model, "best_epoch_", None)
    epoch_param = next((p for p in MODEL_OPTIONS["epochs"] if p in params), None)
    if best and epoch_param is not None and getattr(model, "history_", None) and best != n_epochs_of(model):
        params[epoch_param] = int(best)
    fresh.set_params(**params)
    return fit_model(fresh, data, progress=progress, on_epoch=on_epoch, features=features)


def best_model() -> Recommender:
    """The most accurate model fastmf has so far (unfitted)."""
    import fastmf

    return fastmf.MatrixFactorization(random_state=0)


# ====================================================================== data
def find_dataset(name: str = "ml-100k", offline: bool = False, path: Optional[str] = None,
                 ratings_file: Optional[str] = None,
                 progress: bool = False) -> Tuple[Optional[Ratings], Optional[Exception]]:
    """``(Ratings, None)`` for MovieLens ``name`` from a local folder or the cache (downloading
    unless ``offline``; ``progress`` draws the download's bar), or ``(None, the error)`` when it
    cannot be had: a :class:`~fastmf.errors.DatasetNotFoundError` (its ``reason`` says why), or the
    OSError / ValueError of reading it."""
    import fastmf

    try:
        return fastmf.load_movielens(name, path=path, download=not offline, ratings_file=ratings_file,
                                     progress=progress), None
    except (OSError, ValueError) as exc:
        return None, exc


def load_data(spec: str, ratings_file: Optional[str] = None, sep: Optional[str] = None, header: bool = False,
              offline: bool = False, columns: Optional[Sequence[Optional[str]]] = None,
              rating_scale: Optional[Tuple[float, float]] = None, progress: bool = False) -> Ratings:
    """The Ratings of a data spec: a MovieLens name (``ml-100k``...), a MovieLens folder, or a
    delimited ratings file (sep, columns, header and scale guessed as :func:`fastmf.read_ratings`
    does; ``header=True`` forces a header line).

    Raises :class:`DataSpecError` for a spec that is none of those, a folder that is not a MovieLens
    set, or a MovieLens set found nowhere; the reader's ParseError / ValueError for a bad file.
    """
    import fastmf
    from fastmf.data.movielens import MOVIELENS

    try:
        if spec in MOVIELENS:
            return fastmf.load_movielens(spec, download=not offline, ratings_file=ratings_file,
                                         progress=progress)
        if os.path.isdir(spec):
            name = os.path.basename(os.path.normpath(spec))
            if name not in MOVIELENS:
                raise DataSpecError(f"{spec}: a folder must be one of the MovieLens sets {sorted(MOVIELENS)}", spec)
            return fastmf.load_movielens(name, path=spec, download=False, ratings_file=ratings_file)
    except DatasetNotFoundError as exc:
        if exc.reason is None:  # a folder without the files: its message is one line already
            raise
        why = "--offline: no download" if exc.reason == "offline" else f"download failed: {exc.detail}"
        raise DataSpecError(f"MovieLens {exc.dataset!r} was not found ({why}); set FASTMF_DATA to the "
                            f"folder that holds {spec}/ or give the folder itself (--verbose lists the "
                            "folders searched)", spec) from exc
    if os.path.isfile(spec):
        kwargs = {} if rating_scale is None else {"rating_scale": rating_scale}
        return fastmf.read_ratings(spec, sep=sep, header=True if header else "infer", columns=columns, **kwargs)
    raise DataSpecError(f"{spec}: no such file, folder or MovieLens name (known: {', '.join(sorted(MOVIELENS))})",
                        spec)


def describe_data(ds: Ratings) -> Dict[str, Any]:
    """What ``fastmf info DATA`` shows: the name and :meth:`Ratings.describe`."""
    return {"name": getattr(ds, "name", None), **ds.describe()}


def split_data(ds: Ratings, method: str, test_size: Optional[float] = None,
               seed: int = 0) -> Tuple[Ratings, Optional[Ratings], str]:
    """``(train, test, description)`` of ``ds`` split by ``method`` (one of :data:`SPLITS`); test
    is None for ``"none"``. ``test_size``: a fraction or a count (default 0.2), per user for
    ``leave-last-out`` (an int, default 1); ``seed`` seeds the random splits."""
    import fastmf

    if method == "none":
        return ds, None, "none"
    if method == "leave-last-out":
        k = 1 if test_size is None else test_size
        if isinstance(k, float):
            raise OptionError(f"--test-size {k!r}: for --split leave-last-out it is the number of ratings "
                              "held out per user (an int, default 1)", "test_size")
        train, test = fastmf.split.leave_last_out(ds, k=k)
        return train, test, f"leave-last-out, {k} per user"
    size = 0.2 if test_size is None else test_size
    if method == "random":
        train, test = fastmf.split.random_split(ds, test_size=size, random_state=seed)
    elif method == "temporal":
        train, test = fastmf.split.temporal_split(ds, test_size=size)
    elif method == "user-holdout":
        train, test = fastmf.split.user_holdout(ds, test_size=size, random_state=seed)
    elif method in ("item-cold", "user-cold"):
        split = fastmf.split.item_cold_split if method == "item-cold" else fastmf.split.user_cold_split
        train, test = split(ds, test_size=size, random_state=seed)
    else:
        raise OptionError(f"unknown --split {method!r} (one of {', '.join(SPLITS)})", "split")
    seeded = f", seed {seed}" if method in ("random", "user-holdout", "item-cold", "user-cold") else ""
    return train, test, f"{method}, test size {size}{seeded}"


def default_validation(model: Recommender, validation: Optional[float], has_test: bool,
                       early_stopping: Optional[int] = None) -> float:
    """The validation fraction to carve: ``validation`` when given, else 0.1 for an iterative model
    that is evaluated on a test split or stops early, else 0. :class:`OptionError` when early
    stopping is asked for without a validation split."""
    fraction = validation
    if fraction is None:
        fraction = 0.1 if is_iterative(model) and (has_test or early_stopping is not None) else 0.0
    if early_stopping is not None and not fraction:
        raise OptionError("--early-stopping needs a validation split to watch; give --validation FRAC "
                          "(e.g. 0.1)", "early_stopping")
    return fraction


def carve_validation(train: Ratings, fraction: float, method: str,
                     seed: int) -> Tuple[Ratings, Optional[Ratings], str]:
    """``(fit part, validation part, description)`` of ``train``: the latest ``fraction`` of its
    ratings when the test split is temporal (``temporal``, ``leave-last-out``), else a random
    ``fraction`` seeded with ``seed``; validation is None for ``fraction`` 0."""
    import fastmf

    if not fraction:
        return train, None, "none"
    try:
        if method in ("temporal", "leave-last-out"):
            if train.timestamp is None:
                raise OptionError(f"--split {method} needs timestamps for its validation split too", "split")
            fit_part, val = fastmf.split.temporal_split(train, test_size=fraction)
            return fit_part, val, f"the latest {fraction:g} of train (temporal, as the test split)"
        fit_part, val = fastmf.split.random_split(train, test_size=fraction, random_state=seed)
    except OptionError:
        raise
    except ValueError as exc:
        raise OptionError(f"--validation {fraction:g} of the {len(train):,} train ratings: {exc} "
                          "(--validation 0: no validation split)", "validation") from None
    return fit_part, val, f"random {fraction:g} of train, seed {seed}"


def validation_protocol(split: str, fraction: float) -> str:
    """The :func:`fastmf.tune.search` validation spec that matches the test split ``split``: the
    latest ``fraction`` of train when the test split is temporal (``temporal``,
    ``leave-last-out``), else a random ``fraction``."""
    if not 0 < fraction < 1:
        raise OptionError(f"--validation {fraction!r}: a search needs a validation fraction in (0, 1)", "validation")
    kind = "temporal" if split in ("temporal", "leave-last-out") else "random"
    return f"{kind}:{fraction:g}"


def tune_model(ds: Ratings, name: str, *, params: Sequence[str] = (), split: str = "random",
               test_size: Optional[float] = None, seed: int = 0, budget: int = 64, metric: Optional[str] = None,
               validation: float = 0.1, sampler: str = "random", max_epochs: Optional[int] = None,
               min_epochs: Optional[int] = None, n_jobs: Optional[int] = None, k: int = 10,
               progress: bool = False, on_trial: Optional[Callable[[Dict[str, Any]], Any]] = None
               ) -> Dict[str, Any]:
    """Search model ``name``'s default space on the train part of ``ds`` (:func:`fastmf.tune.search`,
    validation carved from train with :func:`validation_protocol`) and measure the best model on
    the test part, which the search never sees. Returns ``{"split", "n_train", "n_test", "search"
    (the SearchResult), "test_metrics" (None without a test part), "metric"}``."""
    import fastmf

    model = make_model(name, {}, params, seed=seed)
    if metric is None:
        metric = "rmse" if getattr(model, "predicts_ratings", True) else f"ndcg@{k}"
    try:
        fastmf.training.metric_direction(metric, bool(getattr(model, "predicts_ratings", True)))
    except ValueError as exc:
        raise OptionError(f"--metric {metric}: {exc}", "metric") from None
    train, test, split_text = split_data(ds, split, test_size, seed)
    try:
        found = fastmf.tune.search(model, None, train, validation=validation_protocol(split, validation),
                                   metric=metric, budget=budget, sampler=sampler, max_epochs=max_epochs,
                                   min_epochs=min_epochs, n_jobs=n_jobs, random_state=seed, progress=progress,
                                   callback=on_trial)
    except ImportError as exc:
        raise OptionError(str(exc), "sampler") from None
    scores = None
    if test is not None:
        scores = fastmf.evaluate(found.best_model_, test, k=k)
    return {"split": split_text, "n_train": len(train), "n_test": 0 if test is None else len(test),
            "search": found, "test_metrics": scores, "metric": metric}


def compare_models(ds: Ratings, names: Optional[Sequence[str]] = None, *, split: str = "random",
                   test_size: Optional[float] = None, seed: int = 0, k: int = 10, tune: Optional[int] = None,
                   validation: float = 0.1, n_threads: Optional[int] = None,
                   on_row: Optional[Callable[[Dict[str, Any]], Any]] = None) -> Dict[str, Any]:
    """The comparison table (:func:`fastmf.tune.compare`) of the models ``names`` (default every
    registry preset) on one split of ``ds``; with ``tune`` (a budget) each model is first searched
    on the train part only. Returns ``{"split", "n_train", "n_test", "table"}``."""
    import fastmf

    names = list(names) if names else list(model_presets())
    for n in names:
        model_entry(n)  # UnknownModelError naming the known ones
    if split == "none":
        raise OptionError("compare needs a test split: --split random, temporal, leave-last-out or user-holdout",
                          "split")
    train, test, split_text = split_data(ds, split, test_size, seed)
    models = {n: make_model(n, {}, (), seed=seed) for n in names}
    table = fastmf.tune.compare(models, ds, split=(train, test), k=k, random_state=seed, n_threads=n_threads,
                                tune=tune, validation=validation_protocol(split, validation), callback=on_row)
    table.split = split_text
    return {"split": split_text, "n_train": len(train), "n_test": len(test), "table": table}


# ====================================================================== model files
def load_model(path: str, max_bytes: Optional[int] = -1) -> Recommender:
    """The model saved in ``path``; :class:`UserError` when there is no such file, ModelFileError for a
    file that is not a readable fastmf model or whose arrays would take more than ``max_bytes``
    (default -1: :data:`fastmf.persistence.DEFAULT_MAX_BYTES`, 4 GiB; None: no limit). A service
    loads files it did not write, so the size limit is on by default here."""
    import fastmf
    from fastmf.persistence import DEFAULT_MAX_BYTES

    if not os.path.exists(path):
        raise UserError(f"{path}: no such model file")
    return fastmf.load(path, max_bytes=DEFAULT_MAX_BYTES if max_bytes == -1 else max_bytes)


def looks_like_model(path: str) -> bool:
    """True for a file that is meant as a model: a zip/.npy archive or a ``.npz`` name."""
    if not os.path.isfile(path):
        return False
    if path.lower().endswith(".npz"):
        return True
    with open(path, "rb") as fh:
        head = fh.read(6)
    return head.startswith(b"PK\x03\x04") or head.startswith(b"\x93NUMPY")


def _id_kind(id_map: IdMap) -> str:
    return id_map.ids.dtype.name if id_map.ids.dtype.kind != "U" else "str"


def model_info(path: str, max_bytes: Optional[int] = -1) -> Dict[str, Any]:
    """What ``fastmf info MODEL`` shows, as a dict: the file (bytes, format and fastmf versions),
    the class, registry key and parameters, the sizes, rating scale and global mean, the id types,
    the factors (``n_factors``, ``dtype``) when it has them, the item metadata columns, a summary of
    the training history (epochs, seconds, last and best entry) and the file's notes."""
    from fastmf.persistence import read_manifest

    manifest = read_manifest(path)  # format errors before the arrays are read
    model = load_model(path, max_bytes)
    entry = entry_of(model)
    info: Dict[str, Any] = {
        "file": path,
        "bytes": os.path.getsize(path),
        "format_version": manifest["format_version"],
        "fastmf_version": manifest["fastmf_version"],
        "class": type(model).__name__,
        "params": model.get_params(),
        "n_users": int(model.n_users_),
        "n_items": int(model.n_items_),
        "n_ratings": int(model.user_counts_.sum()),
        "rating_scale": model.rating_scale_,
        "global_mean": float(model.global_mean_),
        "predicts_ratings": bool(getattr(model, "predicts_ratings", True)),
        "user_ids": _id_kind(model.user_map_),
        "item_ids": _id_kind(model.item_map_),
    }
    if entry is not None:
        info["model"] = entry.key
    factors = getattr(model, "item_factors_", None)
    if factors is not None:
        info["n_factors"] = int(factors.shape[1])
        info["dtype"] = factors.dtype.name
    meta = getattr(model, "item_info_", None)
    info["item_metadata"] = list(meta.columns) if meta is not None else []
    history = getattr(model, "history_", None)
    if history:
        last = history[-1]
        summary = {"epochs": len(history), "seconds": float(sum(e.get("seconds", 0.0) for e in history)),
                   "last": {k: v for k, v in last.items() if k != "seconds"}}
        best = getattr(model, "best_epoch_", None)
        if best:
            summary["best_epoch"] = int(best)
            summary["best"] = {k: v for k, v in history[best - 1].items() if k != "seconds"}
        info["history"] = summary
    if manifest.get("notes"):
        info["notes"] = manifest["notes"]
    return info


# ====================================================================== ids and items
def parse_id(text: str, id_map: IdMap, what: str) -> Any:
    """A raw id typed as text, typed as the model's ids are (int or str); :class:`UnknownIdError`
    for text that cannot be one of integer ids."""
    if id_map.ids.dtype.kind in "iu":
        try:
            return int(text)
        except ValueError:
            raise UnknownIdError(f"{what} id {text!r} is not an integer (this model's {what} ids are "
                                 "integers)", what, text) from None
    return str(text)


def id_range(id_map: IdMap) -> str:
    """A short description of the ids of ``id_map``: ``"943 ids, 1..943"``."""
    ids = id_map.ids
    if ids.size == 0:
        return "none"
    if ids.dtype.kind in "iu":
        return f"{len(ids):,} {'id' if len(ids) == 1 else 'ids'}, {ids.min()}..{ids.max()}"
    return f"{len(ids):,} ids such as {str(ids[0])!r}"


def _known(model: Recommender, raw: Any, what: str) -> Any:
    id_map = model.user_map_ if what == "user" else model.item_map_
    if raw not in id_map:
        raise UnknownIdError(f"{what} {raw!r} is not in the model ({id_range(id_map)})", what, raw)
    return raw


def item_details(info: Any, ids: Any) -> Dict[str, List[str]]:
    """{column: values} of the ``title`` and ``genres`` of items ``ids`` in item metadata ``info``
    (a model's ``item_info_`` or a data set's ``item_info``; None: no columns). Missing values are
    ``""``."""
    if info is None:
        return {}
    out = {}
    for col in ("title", "genres"):
        if col in info:
            out[col] = ["" if v is None else str(v) for v in info.get(ids, col, default="").tolist()]
    return out


@dataclass
class Ranked:
    """A ranked list of items: ``items`` is a list of records ``{"rank", "item", <score_name>,
    "title", "genres"}`` (title and genres when the model has them, listed in ``columns``).
    ``query`` holds what was asked (user, item, n, ...)."""

    query: Dict[str, Any]
    score_name: str
    columns: Tuple[str, ...]
    items: List[Dict[str, Any]] = field(default_factory=list)


def ranked_items(model: Recommender, ids: Any, scores: Any, score_name: str = "score") -> Tuple[Tuple[str, ...],
                                                                                                List[Dict[str, Any]]]:
    """``(metadata columns, records)`` of ranked raw item ids and their scores (the padding of a
    short list, score -inf, dropped), with titles and genres when the model has them."""
    import numpy as np

    keep = np.asarray(scores) > -np.inf
    ids, scores = np.asarray(ids)[keep], np.asarray(scores)[keep]
    meta = item_details(getattr(model, "item_info_", None), ids)
    records = []
    for j, (item, score) in enumerate(zip(ids.tolist(), scores.tolist())):
        rec = {"rank": j + 1, "item": item, score_name: score}
        rec.update({c: values[j] for c, values in meta.items()})
        records.append(rec)
    return tuple(meta), records


def recommend(model: Recommender, user: Any, n: int = 10, *, exclude_seen: bool = True,
              fallback: bool = False, new_items: bool = False, timestamp: Optional[float] = None) -> Ranked:
    """Top-``n`` items for raw user id ``user``. An unknown user raises :class:`UnknownIdError`,
    or with ``fallback`` gets the model's ranking for unknown users (``query["known_user"]`` False).
    ``new_items``: only among the items without training ratings (cold items, which a model fitted
    with item features scores from them); :class:`CapabilityError` when the model has none.
    ``timestamp``: when (seconds since the epoch) the list is asked for, passed to models that use
    time (``query["timestamp"]``; their default: the last training time); ignored by the others."""
    import numpy as np

    known = user in model.user_map_
    if not known and not fallback:
        _known(model, user, "user")
    candidates = None
    if new_items:
        cold = np.flatnonzero(np.asarray(model.item_counts_) == 0)
        if cold.size == 0:
            raise CapabilityError("the model has no items without ratings (--new-items): fit it with "
                                  "--split item-cold, or add items by their features", "new_items")
        if getattr(model, "item_side_map_", None) is None:
            raise CapabilityError("the model was fitted without item features, so its items without "
                                  "ratings have no scores of their own (train with --item-features)", "new_items")
        candidates = model.item_map_.ids[cold]
    when = {} if timestamp is None else {"timestamps": timestamp}
    ids, scores = model.recommend(user, n=n, exclude_seen=exclude_seen, items=candidates,
                                  unknown="fallback" if fallback else "raise", **when)
    columns, items = ranked_items(model, ids, scores, "score")
    query = {"user": user, "known_user": bool(known), "n": n, "exclude_seen": exclude_seen}
    if timestamp is not None:
        query["timestamp"] = timestamp
    if new_items:
        query["new_items"] = True
    return Ranked(query, "score", columns, items)


def recommend_all(model: Recommender, n: int = 10, *, exclude_seen: bool = True,
                  chunk: int = 4096) -> Iterator[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every known user's top-``n``, as an iterator of chunks ``(user ids, item ids, scores)`` of at
    most ``chunk`` users (bounded memory): item ids and scores have shape (chunk users, n), a short
    list padded with score -inf; the rows are those of :meth:`Recommender.recommend_all`. ``n`` is
    checked at the call (:class:`OptionError`), before the first chunk is asked for."""
    import numpy as np

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise OptionError(f"-n must be a positive int, got {n}", "n")
    users = model.user_map_.ids

    def chunks() -> Iterator[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        for start in range(0, users.size, chunk):
            idx = np.arange(start, min(start + chunk, users.size))
            top, scores = model.recommend_indices(idx, n, exclude_seen=exclude_seen)
            yield users[idx], model._ids_of(top), scores

    return chunks()


def title_matches(model: Recommender, query: str) -> List[Tuple[Any, str]]:
    """``[(raw item id, title)]`` of the items whose title contains ``query`` (case-insensitive),
    in item order. :class:`CapabilityError` when the model has no titles, :class:`OptionError` for an
    empty query."""
    info = getattr(model, "item_info_", None)
    if info is None or "title" not in info:
        raise CapabilityError("this model file has no item titles (its data had none); use --item ID", "title")
    q = query.strip().casefold()
    if not q:
        raise OptionError("--title is empty", "title")
    ids = model.item_map_.ids
    titles = info.get(ids, "title", default=None)
    return [(raw, str(t)) for raw, t in zip(ids.tolist(), titles.tolist()) if t is not None and q in str(t).casefold()]


def find_title(model: Recommender, query: str) -> Tuple[Any, str]:
    """``(raw id, title)`` of the one item whose title contains ``query``, a title equal to the query
    winning over longer ones; :class:`TitleSearchError` (with the ``matches``) otherwise."""
    hits = title_matches(model, query)
    q = query.strip().casefold()
    exact = [h for h in hits if h[1].casefold() == q]
    if len(exact) == 1:
        return exact[0]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise TitleSearchError(f"no item title contains {query!r}", query, hits)
    shown = hits[:20]
    width = max(len(str(raw)) for raw, _ in shown)
    listing = "\n".join(f"  {str(raw):>{width}}  {title}" for raw, title in shown)
    more = f"\n  ... and {len(hits) - len(shown)} more" if len(hits) > len(shown) else ""
    raise TitleSearchError(f"{len(hits)} titles contain {query!r}; pick one with --item ID:\n{listing}{more}",
                           query, hits)


def _need_factors(model: Recommender, message: str) -> None:
    if getattr(model, "item_factors_", None) is None:
        raise CapabilityError(f"{type(model).__name__} has no item factors{message} (--model mf, als, ials)",
                              "has_factors")


def similar_items(model: Recommender, item: Any = None, *, title: Optional[str] = None, n: int = 10,
                  metric: str = "cosine") -> Ranked:
    """The ``n`` items closest to raw item id ``item`` (or to the one item found by ``title``, see
    :func:`find_title`) in the model's factor space, by ``metric``. :class:`CapabilityError` for a
    model without item factors, :class:`UnknownIdError` for an unknown item, :class:`OptionError` for
    an unknown metric."""
    _need_factors(model, "; similar items need a latent-factor model")
    if title is not None:
        item, found = find_title(model, title)
    else:
        _known(model, item, "item")
        found = item_details(model.item_info_, [item]).get("title", [None])[0] if getattr(
            model, "item_info_", None) is not None else None
    try:
        ids, scores = model.similar_items(item, n=n, metric=metric)
    except TypeError as exc:
        raise OptionError(str(exc), "metric") from None
    columns, items = ranked_items(model, ids, scores, "similarity")
    return Ranked({"item": item, "title": found or None, "metric": metric, "n": n}, "similarity", columns, items)


def similar_to_features(model: Recommender, features: str, n: int = 10, metric: str = "cosine") -> Ranked:
    """The ``n`` items closest to a new item given only its features: ``features`` is a
    comma-separated list of the feature names the model was fitted with (``"genre=Action,
    genre=War,year1990-1994"``), each optionally ``NAME:WEIGHT`` (default 1). The row is mapped to
    factors by the model's item feature map. :class:`CapabilityError` for a model without one,
    :class:`OptionError` for an unknown name (the message lists some known ones)."""
    import numpy as np

    _need_factors(model, "; similar items need a latent-factor model")
    names = getattr(model, "item_side_names_", None)
    if names is None:
        raise CapabilityError(f"this {type(model).__name__} was fitted without item features "
                              "(fastmf train --item-features genres,year)", "features")
    row = np.zeros(len(names))
    given = [part.strip() for part in features.split(",") if part.strip()]
    if not given:
        raise OptionError("--features is empty: name the new item's features, e.g. genre=Action", "features")
    for part in given:
        name, sep, weight = part.rpartition(":") if ":" in part else (part, "", "1")
        if name not in names:
            raise OptionError(f"--features: unknown feature {name!r}; the model's features: "
                              f"{', '.join(names[:12])}{', ...' if len(names) > 12 else ''}", "features")
        try:
            row[names.index(name)] = float(weight)
        except ValueError:
            raise OptionError(f"--features: weight of {name!r} must be a number, got {weight!r}", "features") from None
    try:
        ids, scores = model.similar_to_features(row, n=n, metric=metric)
    except ValueError as exc:
        raise OptionError(str(exc), "metric") from None
    columns, items = ranked_items(model, ids, scores, "similarity")
    return Ranked({"features": given, "metric": metric, "n": n}, "similarity", columns, items)


def evaluate_model(model: Recommender, data: Ratings, k: int = 10,
                   threshold: Optional[float] = None) -> Dict[str, Any]:
    """``{"metrics": fastmf.evaluate(...), "unknown_users", "unknown_items"}``: the metrics of
    ``model`` on test ratings ``data`` and how many of its users and items the model does not know
    (answered with its fallback). The library's EvaluationWarnings are emitted as warnings."""
    import numpy as np

    import fastmf

    scores = fastmf.evaluate(model, data, k=k, threshold=threshold)
    return {"metrics": scores,
            "unknown_users": int(np.count_nonzero(model.user_map_.to_index(data.user_map.ids, missing=-1) < 0)),
            "unknown_items": int(np.count_nonzero(model.item_map_.to_index(data.item_map.ids, missing=-1) < 0))}


def jsonable(obj: object) -> object:
    """``obj`` (any result of this module) with NumPy scalars and arrays turned into Python values,
    tuples into lists, dict keys into strings, dataclasses into dicts and non-finite floats into
    None: what ``json.dumps(..., allow_nan=False)`` takes (strict JSON)."""
    import dataclasses

    import numpy as np

    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, np.dtype) or (isinstance(obj, type) and issubclass(obj, np.generic)):
        return np.dtype(obj).name
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj))
    return str(obj)


# ====================================================================== a catalog to explore (the web page)
#: articles that catalogues move to the end of a title ("Matrix, The (1999)", "Cité des enfants
#: perdus, La"): English and the commonest ones of MovieLens' foreign titles
_ARTICLES = ("The", "A", "An", "Les", "La", "Le", "L'", "Il", "El", "Los", "Las", "Lo", "Das", "Die", "Der",
             "Den", "Det", "Un", "Une")
_ARTICLE_AT_END = None  # compiled on first use (re is cheap, but `fastmf --help` imports this module)

#: how a title matched a search, best first (:meth:`Catalog.search`)
MATCH_KINDS = ("exact", "prefix", "word", "words", "substring")


def _front_article(text: str) -> str:
    import re

    global _ARTICLE_AT_END
    if _ARTICLE_AT_END is None:
        _ARTICLE_AT_END = re.compile(r"^(?P<body>.+?),\s*(?P<art>" + "|".join(re.escape(a) for a in _ARTICLES)
                                     + r")$", re.IGNORECASE)
    text = text.strip()
    m = _ARTICLE_AT_END.match(text)
    if m is None:
        return text
    art = m.group("art")
    return f"{art}{'' if art.endswith(chr(39)) else ' '}{m.group('body')}"


def display_title(title: str) -> str:
    """A catalogue title as people write it: the article moved back to the front, in the title and
    in each parenthesised alternative title (``"City of Lost Children, The (Cité des enfants perdus,
    La) (1995)"`` -> ``"The City of Lost Children (La Cité des enfants perdus) (1995)"``)."""
    import re

    text, tail = str(title).strip(), []
    while True:
        m = re.search(r"\s*\(([^()]*)\)\s*$", text)
        if m is None or m.start() == 0:
            break
        tail.insert(0, m.group(1))
        text = text[:m.start()]
    return " ".join([_front_article(text)] + [f"({_front_article(t)})" for t in tail])


def normalize_title(text: str) -> str:
    """The form titles and searches are compared in: :func:`display_title`, accents dropped,
    case folded, every run of punctuation and spaces one space (``"Matrix, The (1999)"`` ->
    ``"the matrix 1999"``; a search ``"matrix, the"`` -> ``"the matrix"``)."""
    import re
    import unicodedata

    plain = unicodedata.normalize("NFKD", display_title(text))
    plain = "".join(c for c in plain if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^\w]+|_", " ", plain).split())


def item_entropy(model: Recommender, data: Optional[Ratings] = None) -> np.ndarray:
    """Shannon entropy (bits) of each item's ratings over the rating levels: how much people
    disagree about it, float64 of shape (n_items,), 0 for an item without ratings.

    From the ratings in ``data`` (the items the model knows; levels: the distinct rating values),
    else estimated from the model: its predictions for the users who rated each item in its training
    data (``seen_indptr_`` / ``seen_indices_``), rounded to whole points (half points on a scale
    that starts at a half). A model without a rating scale (implicit feedback) has no levels: all 0.
    """
    import numpy as np

    n = int(model.n_items_)
    if data is not None:
        items = np.asarray(model.item_map_.to_index(data.item_map.ids[data.item_index], missing=-1))
        keep = items >= 0
        items = items[keep]
        levels, level = np.unique(np.asarray(data.rating)[keep], return_inverse=True)
    else:
        scale = model._score_scale()
        if scale is None:
            return np.zeros(n)
        lo, hi = float(scale[0]), float(scale[1])
        step = 1.0 if lo == math.floor(lo) else 0.5
        users = np.repeat(np.arange(model.n_users_, dtype=np.int64), np.diff(model.seen_indptr_))
        items = np.asarray(model.seen_indices_, dtype=np.int64)
        pred = model.predict_indices(users, items)
        level = np.rint((np.clip(pred, lo, hi) - lo) / step).astype(np.int64)
        levels = np.arange(int(round((hi - lo) / step)) + 1)
    counts = np.bincount(items * len(levels) + level.reshape(-1), minlength=n * len(levels))
    counts = counts.reshape(n, len(levels)).astype(np.float64)
    total = counts.sum(axis=1, keepdims=True)
    p = np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(p), 0.0)
    return terms.sum(axis=1)


def coerce_id(value: Any, id_map: IdMap, what: str) -> Any:
    """A raw id as a front received it (a JSON number or string, a URL segment), typed as the
    model's ids are and known to it: :class:`UnknownIdError` for a value that cannot be one of its
    ids (a bool, a float, text for integer ids, a container) or an id it does not know."""
    import numpy as np

    integer_ids = id_map.ids.dtype.kind in "iu"
    if isinstance(value, bool) or not isinstance(value, (int, str, np.integer)):
        raise UnknownIdError(f"{what} id {value!r:.40} must be {'an integer' if integer_ids else 'a string'}",
                             what, value)
    if integer_ids:
        raw = parse_id(str(value), id_map, what) if isinstance(value, str) else int(value)
    else:
        raw = str(value)
    if len(str(raw)) > 200 or raw not in id_map:
        raise UnknownIdError(f"{what} {raw!r:.60} is not in the model ({id_range(id_map)})", what, raw)
    return raw


def _count(value: Any, name: str, high: int, low: int = 1) -> int:
    """``value`` as an int in [low, high], else :class:`OptionError` naming ``name``."""
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise OptionError(f"{name} must be an integer in [{low}, {high}], got {value!r:.40}", name)
    return value


class Catalog:
    """A fitted model's items made ready to explore, as the web page does: onboarding items,
    title search, item details, similar items and live recommendations for a new user's ratings
    with "because you liked X" explanations.

    Everything it needs is computed once here (titles in search form, popularity x entropy,
    the model's capabilities); afterwards the catalog and the model are only read, so one catalog
    serves any number of threads at once with the answers of serial calls.

    Onboarding (:meth:`onboarding`) orders items by :math:`\\log_2(1 + n_i)\\,H_i`, the number of
    ratings :math:`n_i` of item :math:`i` times the entropy :math:`H_i` of its ratings
    (:func:`item_entropy`): items many people know and disagree about tell most about a new user's
    taste (the "log pop x entropy" strategy of Rashid et al., "Getting to know you: learning new user
    preferences in recommender systems", IUI 2002). Without rating levels (implicit feedback) it is
    popularity alone.

    Explanations (:meth:`recommend`): each recommended item :math:`j` names the item :math:`i` the
    user liked (rated above the middle of the rating scale; any item for interaction strengths)
    whose factors are closest to :math:`j`'s by cosine, :math:`\\cos(q_i, q_j)`, the
    factor-similarity explanation of latent-factor models; none without factors, and none when
    the closest cosine is below :attr:`min_similarity` (0.2: a weaker likeness is no reason a
    person would accept).

    Parameters
    ----------
    model : fitted Recommender
    data : Ratings, optional
        The model's training ratings, for the exact rating entropies of the onboarding order (else
        estimated from the model, see :func:`item_entropy`).
    max_n : int
        The most items one call returns.
    max_ratings : int
        The most ratings one :meth:`recommend` call takes.
    """

    #: the smallest cosine of the factors that explains a recommendation ("because you liked X")
    min_similarity = 0.2

    def __init__(self, model: Recommender, data: Optional[Ratings] = None, *, max_n: int = 100,
                 max_ratings: int = 1000) -> None:
        import numpy as np

        model._check_fitted()
        self.model = model
        self.max_n = int(max_n)
        self.max_ratings = int(max_ratings)
        ids = model.item_map_.ids
        self._n_ratings = np.asarray(model.item_counts_, dtype=np.int64)
        # items without training ratings whose factors come from their side features (side="map")
        self._side = getattr(model, "item_side_map_", None) is not None
        self._cold = (self._n_ratings == 0) & self._side
        rows = model.describe_items(ids)
        self._titles = [None if r["title"] is None else str(r["title"]) for r in rows]
        self._display = [None if t is None else display_title(t) for t in self._titles]
        self._years = [None if r["year"] is None or int(r["year"]) < 0 else int(r["year"]) for r in rows]
        self._genres = [[g for g in str(r["genres"]).split("|") if g and g != "(no genres listed)"]
                        if r["genres"] is not None else [] for r in rows]
        self.has_titles = any(t is not None for t in self._titles)
        # search forms: the whole title, the name (no trailing year) and the name without its article
        self._search_forms = []
        for t in self._titles:
            if t is None:
                self._search_forms.append(None)
                continue
            full = normalize_title(t)
            name = normalize_title(display_title(t).rsplit(" (", 1)[0]) if t.rstrip().endswith(")") else full
            first, _, rest = name.partition(" ")
            bare = rest if rest and first in {a.casefold().rstrip(chr(39)) for a in _ARTICLES} else name
            self._search_forms.append((full, name, bare, full.split()))
        factors = getattr(model, "item_factors_", None)
        self.has_factors = factors is not None
        self.feedback = "strengths" if getattr(model, "_new_user_values", "ratings") == "strengths" else "ratings"
        scale = model._score_scale() if self.feedback == "ratings" else None
        if scale is None and self.feedback == "ratings":
            scale = getattr(model, "rating_scale_", None)
        self.rating_scale = None if scale is None else (float(scale[0]), float(scale[1]))
        if self.rating_scale is not None:
            lo = self.rating_scale[0]
            self.rating_step = 1.0 if lo == math.floor(lo) else 0.5
        else:
            self.rating_step = None
        entropy = item_entropy(model, data) if self.rating_scale is not None else np.zeros(len(ids))
        self._entropy = entropy
        score = np.log2(1.0 + self._n_ratings) * (entropy if entropy.any() else 1.0)
        # stable: equal scores keep item order
        self._onboarding = np.argsort(-score, kind="stable")
        self._popular_first = np.lexsort((np.arange(len(ids)), -self._n_ratings))

    # ------------------------------------------------------------------ items
    def info(self) -> Dict[str, Any]:
        """What the page needs to know about the model: its class and registry key, sizes, how a
        new user's feedback is given (``"ratings"`` on ``rating_scale`` in steps of ``rating_step``,
        or ``"strengths"``), whether it has titles and factors (similar items, explanations), the
        limits, and ``cold_items``: True when the model maps item side features to factors
        (``fit(..., item_features=...)``, ``side="map"``), so that its items without ratings are
        recommended from their features (``n_cold_items`` of them; their records say
        ``"cold": True``); otherwise False with the reason."""
        entry = entry_of(self.model)
        return {"class": type(self.model).__name__, "model": None if entry is None else entry.key,
                "n_users": int(self.model.n_users_), "n_items": int(self.model.n_items_),
                "n_ratings": int(self._n_ratings.sum()), "feedback": self.feedback,
                "rating_scale": self.rating_scale, "rating_step": self.rating_step,
                "has_titles": self.has_titles, "has_factors": self.has_factors,
                "similar_items": self.has_factors, "explanations": self.has_factors,
                "cold_items": bool(self._side), "n_cold_items": int(self._cold.sum()),
                "cold_items_reason": None if self._side else "this model was trained without item side features",
                "max_n": self.max_n, "max_ratings": self.max_ratings}

    def _record(self, j: int) -> Dict[str, Any]:
        return {"item": self.model.item_map_.ids[j].item(), "title": self._titles[j],
                "display_title": self._display[j], "year": self._years[j], "genres": self._genres[j],
                "n_ratings": int(self._n_ratings[j]), "cold": bool(self._cold[j])}

    def _index(self, item: Any) -> int:
        raw = coerce_id(item, self.model.item_map_, "item")
        return int(self.model.item_map_.to_index(raw))

    def item(self, item: Any) -> Dict[str, Any]:
        """Details of one item: ``{"item", "title", "display_title", "year", "genres" (a list),
        "n_ratings"}`` (None where the data had no such column); :class:`UnknownIdError` for an
        id the model does not know."""
        return self._record(self._index(item))

    def onboarding(self, n: int = 12, offset: int = 0, exclude: Sequence[Any] = ()) -> Dict[str, Any]:
        """``{"items": [...], "offset", "next_offset"}``: the items to ask a new user about, in the
        popularity x entropy order of the class docstring, the ``exclude``-d ones (those already
        rated) left out, ``n`` of them from position ``offset`` of that order ("show others")."""
        n = _count(n, "n", self.max_n)
        offset = _count(offset, "offset", int(self.model.n_items_), low=0)
        if len(exclude) > self.max_ratings:
            raise OptionError(f"exclude lists {len(exclude)} items; at most {self.max_ratings}", "exclude")
        skip = {self._index(x) for x in exclude}
        out, pos = [], offset
        order = self._onboarding
        while pos < order.size and len(out) < n:
            j = int(order[pos])
            pos += 1
            if j not in skip:
                out.append(self._record(j))
        return {"items": out, "offset": offset, "next_offset": pos if pos < order.size else None}

    def search(self, query: str, n: int = 10) -> Dict[str, Any]:
        """Titles matching ``query``, best first: ``{"query", "total" (how many match), "items"}``,
        each item with ``"match"`` (one of :data:`MATCH_KINDS`). Titles and query are compared in
        :func:`normalize_title` form, so ``"matrix"``, ``"the matrix"`` and ``"Matrix, The"`` all
        find "Matrix, The (1999)". Kinds: the title (with or without its year or article) equals the
        query; starts with it; has it at a word start; has each query word at a word start; has
        it anywhere. Within a kind, more rated items first. No match is an empty list, several a
        ranked list (never an error); :class:`CapabilityError` when the model has no titles."""
        if not self.has_titles:
            raise CapabilityError("this model has no item titles (its data had none); ask by item id", "title")
        n = _count(n, "n", self.max_n)
        if not isinstance(query, str) or len(query) > 200:
            raise OptionError("q must be a text of at most 200 characters", "q")
        q = normalize_title(query)
        if not q:
            raise OptionError("q is empty: type a part of a title", "q")
        words = q.split()
        spaced = " " + q
        hits = []
        for j, forms in enumerate(self._search_forms):
            if forms is None:
                continue
            full, name, bare, tokens = forms
            if q in (full, name, bare):
                kind = 0
            elif name.startswith(q) or bare.startswith(q):
                kind = 1
            elif (" " + full).find(spaced) >= 0:
                kind = 2
            elif all(any(t.startswith(w) for t in tokens) for w in words):
                kind = 3
            elif q in full:
                kind = 4
            else:
                continue
            hits.append((kind, -int(self._n_ratings[j]), j))
        hits.sort()
        items = [{**self._record(j), "match": MATCH_KINDS[kind]} for kind, _, j in hits[:n]]
        return {"query": query, "total": len(hits), "items": items}

    def similar(self, item: Any, n: int = 10) -> Dict[str, Any]:
        """``{"item": details of the item, "items": the n closest items by cosine of the factors,
        each with "similarity"}`` (:func:`similar_items`); :class:`CapabilityError` without factors."""
        n = _count(n, "n", self.max_n)
        j = self._index(item)
        ranked = similar_items(self.model, self.model.item_map_.ids[j].item(), n=n)
        idx = self.model.item_map_.to_index([r["item"] for r in ranked.items]) if ranked.items else []
        items = [{**self._record(int(i)), "similarity": r["similarity"]} for i, r in zip(idx, ranked.items)]
        return {"item": self._record(j), "items": items}

    # ------------------------------------------------------------------ a new user
    def _liked(self, values: np.ndarray) -> np.ndarray:
        if self.feedback == "strengths" or self.rating_scale is None:
            return values > 0
        lo, hi = self.rating_scale
        return values > (lo + hi) / 2

    def recommend(self, ratings: Sequence[Tuple[Any, Any]], n: int = 10) -> Dict[str, Any]:
        """Top-``n`` for a new user from ``ratings``, a sequence of ``(item id, rating)`` (the
        model's :meth:`~fastmf.models.base.Recommender.recommend_new`: latent-factor models fold
        the user in; no ratings: the model's ranking for unknown users). The rated items are left
        out. Returns ``{"n_rated", "personal" (False without ratings), "items"}``, each item with
        ``"score"`` and ``"because"``: ``{"item", "display_title", "rating", "similarity"}`` of
        the liked item closest to it (see the class docstring), or None.

        Every id must be known (:class:`UnknownIdError`), every rating a finite number on the
        model's scale (:class:`OptionError` naming the position, value and scale); at most
        ``max_ratings`` of them; a repeated item keeps its last rating.
        """
        import numpy as np

        n = _count(n, "n", self.max_n)
        if isinstance(ratings, (str, bytes)) or not isinstance(ratings, Sequence):
            raise OptionError("ratings must be a list of [item, rating] pairs", "ratings")
        if len(ratings) > self.max_ratings:
            raise OptionError(f"{len(ratings)} ratings; at most {self.max_ratings}", "ratings")
        idx = np.empty(len(ratings), dtype=np.int64)
        values = np.empty(len(ratings), dtype=np.float64)
        for pos, pair in enumerate(ratings):
            if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
                raise OptionError(f"ratings[{pos}] must be an [item, rating] pair, got {pair!r:.60}", "ratings")
            item, value = pair
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise OptionError(f"ratings[{pos}]: the rating must be a finite number, got {value!r:.40}",
                                  "ratings")
            idx[pos] = self._index(item)
            values[pos] = value
        ids = self.model.item_map_.ids[idx]
        try:
            top, scores = self.model.recommend_new(ids, values, n=n)
        except ValueError as exc:  # a rating off the scale: the model's message names it
            raise OptionError(str(exc), "ratings") from None
        keep = np.asarray(scores) > -np.inf
        top_idx = np.asarray(self.model.item_map_.to_index(np.asarray(top)[keep])) if keep.any() else np.empty(0, int)
        scores = np.asarray(scores)[keep]
        # the last rating of a repeated item counts, as in recommend_new
        _, last = np.unique(idx[::-1], return_index=True)
        last = np.sort(idx.size - 1 - last)
        idx, values = idx[last], values[last]
        liked = self._liked(values)
        because = [None] * top_idx.size
        if self.has_factors and liked.any() and top_idx.size:
            from fastmf.similarity import similarity

            V = self.model.item_factors_
            sims = similarity(V[top_idx], V[idx[liked]], "cosine", check_finite=False)
            best = np.argmax(sims, axis=1)
            for r, b in enumerate(best.tolist()):
                if sims[r, b] < self.min_similarity:
                    continue
                j = int(idx[liked][b])
                because[r] = {"item": self.model.item_map_.ids[j].item(), "display_title": self._display[j],
                              "rating": float(values[liked][b]), "similarity": float(sims[r, b])}
        items = [{**self._record(int(j)), "rank": r + 1, "score": float(s), "because": because[r]}
                 for r, (j, s) in enumerate(zip(top_idx.tolist(), scores.tolist()))]
        return {"n_rated": int(idx.size), "personal": bool(idx.size), "items": items}


# ====================================================================== files and plots
def check_destination(path: str, option: str) -> None:
    """:class:`OptionError` before any work when an output file cannot be written at ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise OptionError(f"{option} {path}: is a folder; give a file name", option)
    if not os.path.isdir(folder):
        raise OptionError(f"{option} {path}: folder {folder} does not exist", option)


def need_matplotlib() -> None:
    """:class:`UserError` with the install hint when matplotlib is missing."""
    from fastmf.plot import MISSING_MESSAGE

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError(MISSING_MESSAGE) from None


def _plot(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    from fastmf.errors import MatplotlibMissingError

    try:
        return fn(*args, **kwargs)
    except MatplotlibMissingError as exc:
        raise UserError(str(exc)) from None


def check_plot(model: Recommender, factor_map: bool = False, curves: bool = False) -> None:
    """:class:`CapabilityError` when ``model`` cannot be drawn as asked: a factor map needs item
    factors, learning curves a training history."""
    if factor_map:
        _need_factors(model, " to map; use a latent-factor model")
    if curves and not getattr(model, "history_", None):
        raise CapabilityError(f"{type(model).__name__} has no training history to draw (learning curves "
                              "come from iterative models: --model mf, als, ials)", "iterative")


def draw_factor_map(model: Recommender, path: str, dims: Optional[Tuple[int, int]] = None,
                    n_labels: int = 15) -> str:
    """Draw the model's items on two dimensions of the factor space to ``path`` (see
    :func:`fastmf.plot.factor_map`); returns ``path``."""
    import fastmf.plot

    check_plot(model, factor_map=True)
    _plot(fastmf.plot.factor_map, model, path=path, dims=dims, n_labels=n_labels)
    return path


def draw_learning_curve(model: Recommender, path: str) -> str:
    """Draw the model's learning curve (its ``history_``) to ``path``; returns ``path``."""
    import fastmf.plot

    check_plot(model, curves=True)
    _plot(fastmf.plot.learning_curve, model, path=path)
    return path
