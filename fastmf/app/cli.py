"""The ``fastmf`` command line (also ``python -m fastmf``).

Commands:

``demo``       train and evaluate on the best data found, show one user's top-10
``info``       describe a data set, or a saved model file
``train``      load data, split, fit a model, print test metrics; save the model, plot its learning curve
``evaluate``   metrics of a saved model on a data set
``recommend``  top-n items for a user of a saved model (with titles and genres when the model has them)
``similar``    items closest to an item (by id, or by a title search) in a saved model's factor space
``plot``       factor map and learning curve of a saved model
``web``        a local web page: rate a few movies, get recommendations, explore similar ones

User mistakes (a missing file, an unknown user, a bad value) print one line
``fastmf <command>: error: ...`` on stderr and exit with status 2; ``--verbose`` (anywhere on the
line) shows the traceback instead. Results go to stdout (``--json`` for scripts); progress and notes
go to stderr. Training and ``recommend --all`` show a progress bar (tqdm) when stderr is a terminal
and nothing in pipes and logs; ``--verbose`` off a terminal logs one plain line per epoch instead.
The bars are the library's own (``fit(..., progress=...)``); the library prints nothing unless asked.

The work is done by :mod:`fastmf.app.service` (which returns data and raises the typed errors of
:mod:`fastmf.errors`); this module parses the arguments, calls it and prints.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import os
import sys
import time
import warnings
from typing import Optional, Sequence

from fastmf.app import service
from fastmf.app.service import jsonable  # noqa: F401 - the JSON conversion, also for scripts
from fastmf.errors import UnknownIdError, UserError

EXIT_USAGE = 2

DEMO_EPILOG = """examples:
  fastmf demo                      MovieLens 100K if found (FASTMF_DATA, cache, download), else synthetic
  fastmf demo --offline            never download
  fastmf demo --dataset ml-latest-small
"""

INFO_EPILOG = """examples:
  fastmf info ml-100k
  fastmf info ml-1m --ratings-file ratings.PARTIAL_users_1-2999.dat
  fastmf info ratings.csv --sep , --header
  fastmf info model.npz            a saved model: class, parameters, sizes, training history
"""

TRAIN_EPILOG = """examples:
  fastmf train ml-100k --save model.npz
  fastmf train ml-100k --factors 50 --epochs 30 --plot curves.png
  fastmf train ml-100k --early-stopping 3 --validation 0.1 --save model.npz
  fastmf train ratings.csv --header --split temporal --test-size 0.1 --json
  fastmf train ml-100k --model biases                     a baseline to compare with
  fastmf train ml-1m --ratings-file ratings.PARTIAL_users_1-2999.dat --threads 2
  fastmf train u.data --split leave-last-out --test-size 1 --k 20
  fastmf train ml-100k --param schedule=shuffle --param init_std=0.05

models (--model):
{models}

The data is split with --split (default random, --test-size 0.2, --seed 0). Iterative models (mf, als,
ials, bayes) hold out --validation 0.1 of the train part (the latest ratings when the split is temporal),
measure it after every epoch (the learning curve; with --early-stopping the epoch kept is the best on
validation) and are fitted on the rest; the test part is measured once, at the end, and those test
metrics are printed: rmse and mae (rating models) and top-k ranking metrics.
--save then refits the model on all the data (train, validation and test) with the epoch count
selected on validation, so the served model knows every rating of its users and never recommends
one of them; --no-refit saves the evaluated model instead. --split none trains on everything and
prints no metrics. --seed seeds the split, the validation split and the model.
"""

EVALUATE_EPILOG = """examples:
  fastmf evaluate model.npz ml-100k --ratings-file u1.test
  fastmf evaluate model.npz test.tsv --k 20 --json

All of DATA is the test set. Users and items the model has never seen are answered with the
model's fallback (global mean and known biases; the popularity ranking), and counted in a note.
Ranking metrics leave out the items each user rated in the model's training data.
"""

RECOMMEND_EPILOG = """examples:
  fastmf recommend model.npz --user 196
  fastmf recommend model.npz --user 196 -n 20 --json
  fastmf recommend model.npz --user alice --include-seen
  fastmf recommend model.npz --all -n 10 --output recs.csv     (batch job, progress bar on a terminal)

An unknown user is an error; --fallback shows the model's ranking for unknown users instead
(item popularity, or the item biases for MF), with a note on stderr.
"""

SIMILAR_EPILOG = """examples:
  fastmf similar model.npz --item 50
  fastmf similar model.npz --title "star wars"
  fastmf similar model.npz --title godfather     several matches: lists them, pick one with --item
  fastmf similar model.npz --item 50 --metric pearson -n 5 --json

--title is a case-insensitive substring search over the titles saved with the model; a title equal
to the search text wins over longer ones that contain it.
"""

TUNE_EPILOG = """examples:
  fastmf tune ml-100k --model mf --budget 64 --metric rmse
  fastmf tune ml-100k --model ials --budget 32 --metric ndcg@10
  fastmf tune ml-100k --model als --split temporal --save best.npz
  fastmf tune u1.base --ratings-file ... --split none --json

The test part of --split is never seen by the search: the validation part is carved from the
train part (--validation FRAC; the latest ratings when --split is temporal or leave-last-out),
configurations are drawn from the model's default search space (fastmf.tune.default_space) and
trained by successive halving on epochs: all for a few epochs, the best third for three times as
many, ..., the last ones for --max-epochs. The best configuration is refit on the whole train part
with its epoch count scaled to it, and only that model is measured on the test part.
"""

COMPARE_EPILOG = """examples:
  fastmf compare ml-100k
  fastmf compare ml-100k --models mf,als,ials,biases,popularity --split temporal
  fastmf compare ml-100k --tune 32 --json

One split, every model fitted on its train part and measured on its test part: rating metrics
(empty for ranking-only models), ranking metrics at --k, fit time and threads. With --tune N each
model is first searched (budget N) on the train part only.
"""

PLOT_EPILOG = """examples:
  fastmf plot model.npz --factor-map map.png
  fastmf plot model.npz --factor-map map.png --dims 0,1 --labels 25
  fastmf plot model.npz --curves curves.png

Needs matplotlib: pip install 'fastmf[plot]'. The factor map shows the items on the first two
principal components of the item factors (or on two chosen factors with --dims), the most-rated
ones labelled; the curves are the metrics per epoch saved with the model (train and validation RMSE for mf and
als; the training loss and validation ndcg@k / precision@k for ials). A model saved by 'fastmf
train --save' was refit on all the data, so its history has train metrics only; draw the validation
curve with 'fastmf train --plot FILE' (or save with --no-refit).
"""


WEB_EPILOG = """examples:
  fastmf web model.npz             serve a saved model on http://127.0.0.1:8000
  fastmf web ml-100k               train the best model on MovieLens 100K first (a few seconds)
  fastmf web                       MovieLens 100K if found, else a synthetic set with made-up titles
  fastmf web model.npz --port 8080
  fastmf web model.npz --host 0.0.0.0     reachable from other computers: there is no login

Needs the web extra: pip install 'fastmf[web]'. The page asks for a few ratings (search titles or
pick from the movies many people know and disagree about), and updates its recommendations after
every rating, each with the movie you liked that it is closest to; click a title for similar movies.
The JSON API behind it is listed in the README. Only the model file given here is ever loaded.
"""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit status 2)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _log(msg):
    print(msg, file=sys.stderr)


def _stderr_is_tty():
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


# ====================================================================== models
# The model names, their registry entries and the option table live in the service (read from
# fastmf.models.registry); MODELS is the registry's presets as {name: (class name, fixed
# arguments, description)}, for the help text and for code that read the old table.
MODEL_OPTIONS = service.MODEL_OPTIONS
MODELS = {name: (entry.class_name, fixed, desc) for name, (entry, fixed, desc) in service.model_presets().items()}


# ====================================================================== progress
# One place draws bars: fastmf.training.progress (tqdm), the same path as fit(..., progress=True).
# On a terminal (stderr a tty) the CLI asks the service for the bar; off a terminal it draws
# nothing, and --verbose logs one plain line per epoch through the "fastmf" logger (the CLI's own
# handler).
logger = logging.getLogger("fastmf.cli")


def setup_logging(verbose: bool) -> None:
    """With ``--verbose``: one stderr handler (plain messages) on the package's ``fastmf`` logger,
    never on the root logger."""
    if not verbose:
        return
    pkg = logging.getLogger("fastmf")
    if not any(getattr(h, "_fastmf_cli", False) for h in pkg.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._fastmf_cli = True
        pkg.addHandler(handler)
    pkg.setLevel(logging.INFO)


def _log_epoch(model, entry):
    from fastmf.training.progress import format_entry

    logger.info(format_entry(entry, service.n_epochs_of(model)))


def _progress(verbose):
    """The progress keywords of the service's fit: a bar at a terminal, one log line per epoch with
    ``--verbose`` elsewhere, nothing otherwise."""
    tty = _stderr_is_tty()
    return {"progress": tty, "on_epoch": _log_epoch if verbose and not tty else None}


# ====================================================================== arguments
def _data_from_args(args):
    columns = tuple(c.strip() or None for c in args.columns.split(",")) if args.columns else None
    scale = None
    if args.scale is not None:
        scale = _pair(args.scale, float, "--scale", "LOW,HIGH, e.g. 0.5,5")
    return service.load_data(args.data, ratings_file=args.ratings_file, sep=args.sep, header=args.header,
                             offline=args.offline, columns=columns, rating_scale=scale,
                             progress=_stderr_is_tty())


def _pair(text, convert, option, example):
    parts = [p.strip() for p in str(text).split(",")]
    try:
        if len(parts) != 2:
            raise ValueError
        return convert(parts[0]), convert(parts[1])
    except ValueError:
        raise UserError(f"{option} {text!r}: expected {example}") from None


def _number(text):
    """An int when the text is one, else a float (for --test-size: a count or a fraction)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _validation_fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"a fraction of the train part in [0, 1), got {text}")
    return value


# ====================================================================== output helpers
def _print_json(obj):
    print(json.dumps(jsonable(obj), indent=2, allow_nan=False, ensure_ascii=False))


def _metric_lines(scores, indent="  "):
    width = max((len(k) for k in scores), default=0)
    lines = []
    for key, value in scores.items():
        text = f"{value:,}" if isinstance(value, int) else f"{value:.4f}"
        lines.append(f"{indent}{key:<{width}}  {text}")
    return lines


def _table(rows, header, right=()):
    """Plain aligned columns; ``right`` names the columns aligned right."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[j]) for r in cells]) for j, h in enumerate(header)]
    last = len(header) - 1

    def fmt(values):
        out = []
        for j, v in enumerate(values):
            if header[j] in right:
                out.append(v.rjust(widths[j]))
            else:
                out.append(v if j == last else v.ljust(widths[j]))
        return "  ".join(out).rstrip()

    return [fmt(header)] + [fmt(r) for r in cells]


def _clip(text, n=60):
    return text if len(text) <= n else text[:n - 3] + "..."


def _ranked_lines(ranked):
    """The table of a :class:`service.Ranked` list: rank, score, item, then title and genres."""
    name = ranked.score_name
    rows = [[r["rank"], f"{r[name]:.4f}", r["item"],
             *(_clip(r[c]) if c == "title" else r[c] for c in ranked.columns)] for r in ranked.items]
    return _table(rows, ["rank", name, "item", *ranked.columns], right=("rank", name, "item"))


# ====================================================================== commands
def cmd_demo(args: argparse.Namespace) -> int:
    import numpy as np

    import fastmf

    t0 = time.perf_counter()
    ds, exc = service.find_dataset(args.dataset, offline=args.offline, progress=_stderr_is_tty())
    if ds is None:
        reason = getattr(exc, "reason", None)
        if reason == "download_failed":
            why = "not in FASTMF_DATA or the cache, and the download failed (offline?)"
        elif reason == "offline":
            why = "not in FASTMF_DATA or the cache (--offline: no download)"
        else:
            why = str(exc).splitlines()[0]
        _log(f"fastmf demo: {args.dataset} {why}; using a synthetic MovieLens-shaped set instead")
        ds = fastmf.make_ratings(943, 1682, 100_000, seed=0, name="synthetic ml-100k shape")
    print(f"data: {ds!r} loaded in {time.perf_counter() - t0:.2f} s")
    train, test = fastmf.split.random_split(ds, test_size=0.2, random_state=0)
    model = service.best_model()
    t0 = time.perf_counter()
    service.fit_model(model, train, **_progress(args.verbose))
    print(f"model: {model!r} trained in {time.perf_counter() - t0:.2f} s on {len(train):,} ratings")
    scores = fastmf.evaluate(model, test, k=10)
    print("test: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items() if k != "n_users"))
    user = train.user_map.ids[int(np.argmax(train.user_counts()))] if args.user is None else args.user
    ids, s = model.recommend(user, n=10)
    details = service.item_details(ds.item_info, ids)
    print(f"top-10 for user {user} (items they rated excluded):")
    print("      score  title")  # a ranking score, not a number of stars
    for j, (item, score) in enumerate(zip(ids, s)):
        title = details.get("title", [""] * len(ids))[j]
        genres = details.get("genres", [""] * len(ids))[j]
        text = (f"{title}  [{genres}]" if genres else title) if title else f"item {item}"
        print(f"  {j + 1:2d}. {score:6.3f}  {text}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    if service.looks_like_model(args.data):
        return _model_info(args)
    ds = _data_from_args(args)
    if args.json:
        _print_json(service.describe_data(ds))
        return 0
    print(repr(ds))
    print(ds.describe())
    return 0


def _model_info(args):
    info = service.model_info(args.data, _model_limit(args))
    if args.json:
        _print_json(info)
        return 0
    size = info["bytes"]
    size_text = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.1f} kB"
    print(f"model file: {args.data} ({size_text}; format {info['format_version']}, written by fastmf "
          f"{info['fastmf_version']})")
    print(f"class: {info['class']}" + (f" (registry key {info['model']!r})" if "model" in info else ""))
    print("params: " + ", ".join(f"{k}={v!r}" for k, v in info["params"].items()))
    scale = info["rating_scale"]
    print(f"trained on: {info['n_ratings']:,} ratings, {info['n_users']:,} users x {info['n_items']:,} items "
          f"({info['user_ids']} user ids, {info['item_ids']} item ids), rating scale "
          f"{tuple(scale) if scale is not None else None}, global mean {info['global_mean']:.4f}")
    if "n_factors" in info:
        print(f"factors: {info['n_factors']} per user and item ({info['dtype']})")
    print(f"item metadata: {', '.join(info['item_metadata']) if info['item_metadata'] else 'none'}")
    if "history" in info:
        h = info["history"]
        last = "  ".join(f"{k} {v:.4f}" for k, v in h["last"].items() if k != "epoch" and isinstance(v, float))
        line = f"history: {h['epochs']} epochs in {h['seconds']:.2f} s; last: {last}"
        if "best_epoch" in h and h["best_epoch"] != h["epochs"]:
            line += f"; kept the best epoch {h['best_epoch']}"
        print(line)
    for note in info.get("notes", ()):
        print(f"note: {note}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import fastmf

    if args.save:
        service.check_destination(args.save, "--save")
    if args.plot:
        service.check_destination(args.plot, "--plot")
    options = {opt: getattr(args, opt) for opt in MODEL_OPTIONS}
    seed = 0 if args.seed is None else args.seed
    model = service.make_model(args.model, options, args.param or (), seed=seed)
    service.check_training_options(model, args.model, early_stopping=args.early_stopping,
                                   validation=args.validation, curve=bool(args.plot))
    if args.plot:
        service.need_matplotlib()

    t0 = time.perf_counter()
    ds = _data_from_args(args)
    load_seconds = time.perf_counter() - t0
    features = service.side_features(model, ds, args.item_features, args.user_features)
    train, test, split_text = service.split_data(ds, args.split, args.test_size, seed)
    fraction = service.default_validation(model, args.validation, test is not None, args.early_stopping)
    fit_part, val, val_text = service.carve_validation(train, fraction, args.split, seed)

    def report_data():
        print(f"data:  {ds!r} (loaded in {load_seconds:.2f} s)")
        if test is None and val is None:
            print(f"split: none: trained on all {len(train):,} ratings; no test metrics")
        elif test is None:
            print(f"split: none (no test metrics): {len(fit_part):,} train / {len(val):,} validation ratings")
        else:
            val_part = f" / {len(val):,} validation" if val is not None else ""
            print(f"split: {split_text}: {len(fit_part):,} train{val_part} / {len(test):,} test ratings")
        if val is not None:
            watched = "early stopping and learning curve" if args.early_stopping is not None else "learning curve"
            print(f"validation: {val_text} ({watched}; the test part is only measured at the end)")
        sys.stdout.flush()

    # at a terminal the data and the splits show first, above the progress bar; elsewhere the report
    # comes in one piece after the work (nothing on stdout when it fails)
    early = not args.json and _stderr_is_tty()
    if early:
        report_data()

    t0 = time.perf_counter()
    service.fit_model(model, fit_part, eval_set=val, eval_k=args.k, early_stopping_rounds=args.early_stopping,
                      features=features, **_progress(args.verbose))
    fit_seconds = time.perf_counter() - t0

    cold_warm = args.split in ("item-cold", "user-cold")  # the cold rows' metrics are the point there
    scores = (fastmf.evaluate(model, test, k=args.k, threshold=args.threshold, cold_warm=cold_warm)
              if test is not None else None)
    if args.plot:
        service.draw_learning_curve(model, args.plot)
    history = getattr(model, "history_", None)
    best_epoch = getattr(model, "best_epoch_", None)
    if not args.json:
        if not early:
            report_data()
        print(f"model: {model!r} trained in {fit_seconds:.2f} s")
        if history and best_epoch not in (None, len(history)):
            print(f"early stopping: kept epoch {best_epoch} of {len(history)} (best on validation)")
        if scores is not None:
            print(f"test metrics (k={args.k}):")
            print("\n".join(_metric_lines(scores)))
        sys.stdout.flush()
    # the model to serve: refit on every rating (train, validation and test) with the selected
    # epoch count, so it knows (and excludes) everything each user rated
    refit = bool(args.save and args.refit and len(fit_part) < len(ds))
    served, refit_seconds = model, None
    if refit:
        t0 = time.perf_counter()
        served = service.refit_model(model, ds, features=features, **_progress(args.verbose))
        refit_seconds = time.perf_counter() - t0
    if args.save:
        served.save(args.save)

    if args.json:
        out = {
            "data": {"name": ds.name, "n_ratings": len(ds), "n_users": ds.n_users, "n_items": ds.n_items},
            "split": {"method": args.split, "description": split_text, "n_train": len(fit_part),
                      "n_validation": 0 if val is None else len(val),
                      "n_test": 0 if test is None else len(test), "validation": val_text},
            "model": {"name": args.model, "class": type(model).__name__, "params": model.get_params()},
            "load_seconds": load_seconds,
            "fit_seconds": fit_seconds,
            "k": args.k,
            "metrics": scores,
            "history": history,
            "best_epoch": best_epoch,
            "saved": args.save,
            "refit": {"n_ratings": len(ds), "params": served.get_params(), "seconds": refit_seconds}
            if refit else None,
            "plot": args.plot,
        }
        _print_json(out)
        return 0
    if refit:
        epochs = service.n_epochs_of(served)
        what = f", {epochs} epochs" if epochs is not None and history else ""
        print(f"refit for serving: {served!r} on all {len(ds):,} ratings{what} in {refit_seconds:.2f} s")
    if args.save:
        print(f"saved model: {args.save}" + ("" if refit or len(fit_part) == len(ds) else
                                              " (the evaluated model, not refit: --no-refit)"))
    if args.plot:
        print(f"saved learning curve: {args.plot}")
    return 0


def _trial_logger(args):
    """--verbose off a terminal: one log line per trial and rung."""
    if not (args.verbose and not _stderr_is_tty()):
        return None

    def log(rec):
        value = "-" if rec["value"] is None else f"{rec['value']:.4f}"
        logger.info(f"rung {rec['rung']} ({rec['epochs']} epochs) trial {rec['trial']}: {value} {rec['status']}")

    return log


def _fmt(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.4f}"
    return str(value)


def cmd_tune(args: argparse.Namespace) -> int:
    if args.save:
        service.check_destination(args.save, "--save")
    ds = _data_from_args(args)
    seed = 0 if args.seed is None else args.seed
    t0 = time.perf_counter()
    out = service.tune_model(ds, args.model, params=args.param or (), split=args.split, test_size=args.test_size,
                             seed=seed, budget=args.budget, metric=args.metric, validation=args.validation,
                             sampler=args.sampler, max_epochs=args.max_epochs, min_epochs=args.min_epochs,
                             n_jobs=args.jobs, k=args.k, progress=_stderr_is_tty(), on_trial=_trial_logger(args))
    seconds = time.perf_counter() - t0
    found = out["search"]
    if args.save:
        found.best_model_.save(args.save)
    if args.json:
        _print_json({"data": {"name": ds.name, "n_ratings": len(ds)}, "split": out["split"],
                     "n_train": out["n_train"], "n_test": out["n_test"], "validation": found.validation,
                     "metric": out["metric"], "best_params": found.best_params_, "best_epochs": found.best_epochs_,
                     "refit_epochs": found.refit_epochs_, "best_validation": found.best_score_,
                     "test_metrics": out["test_metrics"], "rungs": found.rungs, "trials": found.records,
                     "n_jobs": found.n_jobs, "n_threads": found.n_threads, "seconds": seconds,
                     "machine": found.machine, "saved": args.save})
        return 0
    print(f"data:  {ds!r}")
    print(f"split: {out['split']}: {out['n_train']:,} train / {out['n_test']:,} test ratings "
          "(the search sees the train part only)")
    print(f"validation: {found.validation}; metric {out['metric']}; sampler {found.sampler}; "
          f"{len(found.records)} configurations, {found.n_jobs} at once x {found.n_threads} thread(s)")
    print("rungs: " + ", ".join(f"{r['trials']} x {r['epochs']}" for r in found.rungs) + " epochs")
    table = found.table()
    names = list(found.best_params_)
    rows = [[r["trial"], *(_fmt(r[n]) for n in names), _fmt(r["best_epoch"]), _fmt(r[f"best_{found.metric}"]),
             r["status"]] for r in table.records[:args.top]]
    print(f"best {min(args.top, len(table))} of {len(table)}:")
    print("\n".join("  " + line for line in _table(rows, ["trial", *names, "epochs", found.metric, "status"],
                                                    right=("trial", *names, "epochs", found.metric))))
    epochs = f", {found.refit_epochs_} epochs" if found.refit_epochs_ is not None else ""
    print(f"best: {found.best_model_!r}{epochs} (validation {found.metric} {found.best_score_:.4f})")
    if out["test_metrics"] is not None:
        print(f"test metrics of the best model refit on the train part (k={args.k}):")
        print("\n".join(_metric_lines(out["test_metrics"])))
    print(f"search time: {seconds:.1f} s")
    if args.save:
        print(f"saved model: {args.save}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    ds = _data_from_args(args)
    seed = 0 if args.seed is None else args.seed
    names = [n.strip() for n in args.models.split(",") if n.strip()] if args.models else None
    on_row = None
    if args.verbose:
        def on_row(row):
            logger.info(f"{row['model']}: fitted in {row['fit_seconds']:.2f} s")
    out = service.compare_models(ds, names, split=args.split, test_size=args.test_size, seed=seed, k=args.k,
                                 tune=args.tune, validation=args.validation, n_threads=args.threads, on_row=on_row)
    table = out["table"]
    if args.json:
        _print_json({"data": {"name": ds.name, "n_ratings": len(ds)}, "split": out["split"],
                     "n_train": out["n_train"], "n_test": out["n_test"], "rows": table.records,
                     "machine": table.machine})
        return 0
    print(f"data:  {ds!r}")
    print(f"split: {out['split']}: {out['n_train']:,} train / {out['n_test']:,} test ratings")
    columns = [c for c in table.columns if c not in ("cpu", "tuned")]
    rows = [[_fmt(r[c]) if c != "fit_seconds" else f"{r[c]:.2f}" for c in columns] for r in table.records]
    header = [c if c != "fit_seconds" else "fit s" for c in columns]
    print("\n".join(_table(rows, header, right=tuple(header[1:]))))
    if args.tune is not None:
        for r in table.records:
            if r.get("tuned"):
                print(f"tuned {r['model']}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in r["tuned"].items()))
    m = table.machine
    print(f"machine: {m['cpu']}, {m['cores']} cores, caches {m.get('caches', 'unknown')}, Python {m['python']}, "
          f"NumPy {m['numpy']}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    model = service.load_model(args.model, _model_limit(args))
    ds = _data_from_args(args)
    result = service.evaluate_model(model, ds, k=args.k, threshold=args.threshold)
    scores, unknown_users, unknown_items = result["metrics"], result["unknown_users"], result["unknown_items"]
    if args.json:
        _print_json({"model": {"file": args.model, "class": type(model).__name__, "params": model.get_params()},
                     "data": {"name": ds.name, "n_ratings": len(ds), "n_users": ds.n_users, "n_items": ds.n_items},
                     "unknown_users": unknown_users, "unknown_items": unknown_items,
                     "k": args.k, "metrics": scores})
        return 0
    print(f"model: {model!r} from {args.model}")
    print(f"data:  {ds!r}")
    if unknown_users or unknown_items:
        print(f"note: {unknown_users:,} users and {unknown_items:,} items of the data are unknown to the "
              "model (answered with its fallback)")
    print(f"metrics (k={args.k}):")
    print("\n".join(_metric_lines(scores)))
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    model = service.load_model(args.model, _model_limit(args))
    if args.all:
        return _recommend_all(model, args)
    user = service.parse_id(args.user, model.user_map_, "user")
    try:
        ranked = service.recommend(model, user, n=args.n, exclude_seen=not args.include_seen,
                                   fallback=args.fallback, new_items=args.new_items, timestamp=args.at)
    except UnknownIdError as exc:
        raise UserError(f"{exc}; --fallback shows the ranking for unknown users") from None
    known = ranked.query["known_user"]
    if not known:
        _log(f"fastmf recommend: note: user {user!r} is unknown to the model; showing its ranking for "
             "unknown users")
    if args.json:
        _print_json({**ranked.query, "items": ranked.items})
        return 0
    seen = "items they rated included" if args.include_seen else "items they rated excluded"
    who = f"user {user}" if known else f"unknown user {user}"
    among = " among the items without ratings" if args.new_items else ""
    print(f"top-{args.n}{among} for {who} ({seen}):")
    print("\n".join(_ranked_lines(ranked)))
    return 0


def _recommend_all(model, args):
    """The batch job: every user's top-n as CSV rows ``user,rank,item,score``, from the service's
    chunks of users (bounded memory), with a progress bar on a terminal."""
    import csv

    chunks = service.recommend_all(model, args.n, exclude_seen=not args.include_seen)
    if args.output is not None:
        folder = os.path.dirname(os.path.abspath(args.output))
        if not os.path.isdir(folder):
            raise UserError(f"{args.output}: folder {folder} does not exist")
    from fastmf.training.progress import progress_bar

    total = int(model.n_users_)
    bar = progress_bar("auto", total, "recommend", "user")
    out = open(args.output, "w", newline="", encoding="utf-8") if args.output else sys.stdout
    try:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["user", "rank", "item", "score"])
        for users, ids, scores in chunks:
            for row, u in enumerate(users.tolist()):
                for rank in range(args.n):
                    if scores[row, rank] > -math.inf:
                        writer.writerow([u, rank + 1, ids[row, rank].item(), f"{scores[row, rank]:.6g}"])
            if bar is not None:
                bar.update(users.size)
    finally:
        if bar is not None:
            bar.close()
        if args.output:
            out.close()
    if args.output:
        print(f"wrote top-{args.n} for {total:,} users to {args.output}")
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    model = service.load_model(args.model, _model_limit(args))
    if args.features is not None:
        ranked = service.similar_to_features(model, args.features, n=args.n, metric=args.metric)
        if args.json:
            _print_json({**ranked.query, "items": ranked.items})
            return 0
        print(f"items most similar to a new item with {', '.join(ranked.query['features'])} "
              f"({args.metric} similarity of the mapped item factors):")
        print("\n".join(_ranked_lines(ranked)))
        return 0
    item = None if args.title is not None else service.parse_id(args.item, model.item_map_, "item")
    ranked = service.similar_items(model, item, title=args.title, n=args.n, metric=args.metric)
    if args.json:
        _print_json({**ranked.query, "items": ranked.items})
        return 0
    item, title = ranked.query["item"], ranked.query["title"]
    name = f"{item} {title}" if title else f"{item}"
    print(f"items most similar to {name} ({args.metric} similarity of the item factors):")
    print("\n".join(_ranked_lines(ranked)))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    if not args.factor_map and not args.curves:
        raise UserError("nothing to draw: give --factor-map FILE and/or --curves FILE")
    for path, option in ((args.factor_map, "--factor-map"), (args.curves, "--curves")):
        if path:
            service.check_destination(path, option)
    dims = _pair(args.dims, int, "--dims", "two factor numbers, e.g. 0,1") if args.dims else None
    model = service.load_model(args.model, _model_limit(args))
    service.check_plot(model, factor_map=bool(args.factor_map), curves=bool(args.curves))
    service.need_matplotlib()
    if args.factor_map:
        service.draw_factor_map(model, args.factor_map, dims=dims, n_labels=args.labels)
        print(f"saved factor map: {args.factor_map}")
    if args.curves:
        service.draw_learning_curve(model, args.curves)
        print(f"saved learning curve: {args.curves}")
    return 0


#: BLAS thread counts of the ``fastmf web`` process: a request solves one small (k+1)x(k+1) system,
#: which a multi-threaded BLAS makes 1,000x slower on a busy machine (threads waiting for cores:
#: 0.07 ms alone, ~200 ms at a load of 7 on 2 cores); requests from several tabs run in parallel anyway
WEB_BLAS_ENV = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def cmd_web(args: argparse.Namespace) -> int:
    import asyncio
    import socket

    if "numpy" not in sys.modules:  # read when the BLAS library loads, with numpy
        for name in WEB_BLAS_ENV:
            os.environ.setdefault(name, "1")

    try:
        import uvicorn

        from fastmf.app.web.server import LOOPBACK_HOSTS, create_app
    except ImportError as exc:
        raise UserError(f"fastmf web needs the web extra ({exc.name or exc} is missing): "
                        "pip install 'fastmf[web]'") from None
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port}: a port number in [0, 65535] (0: any free port)")
    model, data = _web_model(args)
    catalog = service.Catalog(model, data)
    loopback = args.host in LOOPBACK_HOSTS
    try:
        family, kind, proto, _, address = socket.getaddrinfo(args.host, args.port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)  # listening before the start-up line: a client that reads it can connect at once
    except OSError as exc:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    port = sock.getsockname()[1]
    app = create_app(catalog, allowed_hosts=LOOPBACK_HOSTS if loopback else ("*",))
    if not loopback:
        _log(f"fastmf web: warning: listening on {args.host}, so other computers can reach this page; it has "
             "no login and shows everything it is asked (use --host 127.0.0.1 to keep it to this computer)")
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    shown = f"[{shown}]" if ":" in shown else shown
    print(f"fastmf web: serving {type(model).__name__} ({model.n_items_:,} items) on http://{shown}:{port}/ "
          f"({'this computer only' if loopback else 'open to the network'}; Ctrl-C stops)", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="info" if args.verbose else "warning",
                                           access_log=bool(args.verbose), lifespan="off"))
    serve = server.serve(sockets=[sock])
    try:
        asyncio.run(serve)
    except KeyboardInterrupt:
        serve.close()  # Ctrl-C before the loop started it: no "coroutine was never awaited" warning
        raise
    finally:
        sock.close()
    return 0


def _web_model(args):
    """(model, its training ratings or None) of ``fastmf web [SOURCE]``: a saved model file, or the
    best model fitted on all of a data set (MovieLens 100K, else synthetic, when none is given)."""
    import fastmf

    source = args.source
    if source is not None and service.looks_like_model(source):
        return service.load_model(source, _model_limit(args)), None
    if source is None:
        ds, _ = service.find_dataset("ml-100k", offline=args.offline)
        if ds is None:
            _log("fastmf web: ml-100k not found; using a synthetic MovieLens-shaped set (titles are made up)")
            ds = fastmf.make_ratings(943, 1682, 100_000, seed=0, name="synthetic ml-100k shape")
    else:
        ds = service.load_data(source, offline=args.offline, progress=_stderr_is_tty())
    model = service.best_model()
    t0 = time.perf_counter()
    _log(f"fastmf web: training {type(model).__name__} on {len(ds):,} ratings ...")
    service.fit_model(model, ds, **_progress(args.verbose))
    _log(f"fastmf web: trained in {time.perf_counter() - t0:.1f} s")
    return model, ds


# ====================================================================== parser
def _add_data_options(p, data_help):
    p.add_argument("data", metavar="DATA", help=data_help)
    p.add_argument("--ratings-file", default=None, metavar="FILE", help="ratings file name inside a MovieLens folder")
    p.add_argument("--sep", default=None, help="field separator of a ratings file (default: ',' for .csv, "
                                               "tab for .tsv, else the first of '::', tab, ',', ';', '|' in line 1)")
    p.add_argument("--header", action="store_true", help="the ratings file has a header line (default: "
                                                         "inferred: a first line with no number is a header)")
    p.add_argument("--columns", default=None,
                   help="field names in order, e.g. user,item,rating,timestamp (default: by field count; "
                        "an empty name skips a field)")
    p.add_argument("--scale", default=None, metavar="LOW,HIGH",
                   help="rating scale of a ratings file (default: the ratings' min and max)")
    p.add_argument("--offline", action="store_true", help="never download")


def _sub(sub, name, common, help, epilog, func):
    p = sub.add_parser(name, parents=[common], help=help, description=help[:1].upper() + help[1:] + ".",
                       epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func)
    return p


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fastmf", description="Fast matrix-factorization recommenders.",
                epilog="'fastmf COMMAND --help' shows each command's options and examples.")
    p.add_argument("--verbose", action="store_true", help="show tracebacks and details")
    p.add_argument("--version", action="version", version=f"fastmf {_version()}")
    # --verbose is accepted after the command too (SUPPRESS keeps a top-level --verbose)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks, and log one line per training epoch when stderr is not "
                             "a terminal (on a terminal a progress bar shows the epochs)")
    common.add_argument("--max-model-bytes", type=_max_model_bytes, default=argparse.SUPPRESS,
                        metavar="N", help="refuse a model file whose arrays take more than N bytes "
                        "(default 4 GiB; 0: no limit); checked before anything is decompressed")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = _sub(sub, "demo", common, "train and evaluate on the best data found, show a top-10", DEMO_EPILOG, cmd_demo)
    d.add_argument("--dataset", default="ml-100k", help="MovieLens set to look for (default ml-100k)")
    d.add_argument("--offline", action="store_true", help="never download")
    d.add_argument("--user", type=int, default=None, help="user to recommend for (default: the most active)")

    i = _sub(sub, "info", common, "describe a data set or a saved model", INFO_EPILOG, cmd_info)
    _add_data_options(i, "a MovieLens name (ml-100k, ...), a MovieLens folder, a ratings file or a "
                         "model file (.npz)")
    i.add_argument("--json", action="store_true", help="print a JSON object")

    models = "\n".join(f"  {name:<11} {desc}" for name, (_, _, desc) in MODELS.items())
    t = _sub(sub, "train", common, "fit a model, print its test metrics, save it",
             TRAIN_EPILOG.format(models=models), cmd_train)
    _add_data_options(t, "a MovieLens name (ml-100k, ...), a MovieLens folder or a ratings file")
    g = t.add_argument_group("model")
    g.add_argument("--model", default="mf", metavar="NAME", help=f"one of {', '.join(MODELS)} (default mf)")
    g.add_argument("--factors", type=int, default=None, metavar="K", help="latent factors k")
    g.add_argument("--epochs", type=int, default=None, metavar="N", help="training epochs (iterations for ALS)")
    g.add_argument("--lr", type=float, default=None, metavar="X", help="learning rate (SGD)")
    g.add_argument("--reg", type=float, default=None, metavar="X", help="regularisation")
    g.add_argument("--reg-bias", type=float, default=None, metavar="X", help="regularisation of the biases")
    g.add_argument("--alpha", type=float, default=None, metavar="X", help="confidence scale (implicit ALS)")
    g.add_argument("--seed", type=int, default=None, metavar="N", help="seed of the split and the model (default 0)")
    g.add_argument("--threads", type=int, default=None, metavar="N", help="training threads (default: all cores; one for SGD on fewer than 20,000 ratings)")
    g.add_argument("--dtype", choices=("float32", "float64"), default=None, help="factor precision")
    g.add_argument("--ranking", choices=("engagement", "rating"), default=None,
                   help="top-N order of mf/als: engagement (default: predicted rating weighted by how "
                        "likely the user is to rate the item) or rating (plain predicted rating)")
    g.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="any other constructor argument of the model (repeatable), e.g. init_std=0.05")
    g.add_argument("--item-features", default=None, metavar="NAMES",
                   help="side features of the items from the data's metadata, e.g. genres,year: the items "
                        "without ratings get factors mapped from them (side='map'; --param side=joint "
                        "learns feature factors with the model, MatrixFactorization by SGD or ALS)")
    g.add_argument("--user-features", default=None, metavar="NAMES",
                   help="side features of the users, e.g. age,gender,occupation (ml-100k, ml-1m)")
    g.add_argument("--early-stopping", type=int, default=None, metavar="N",
                   help="stop when the validation metric (RMSE; ndcg@k for ials) has not improved for "
                        "N epochs; keep the best epoch")
    e = t.add_argument_group("evaluation and output")
    e.add_argument("--split", default="random",
                   choices=("random", "temporal", "leave-last-out", "user-holdout", "item-cold", "user-cold",
                            "none"),
                   help="how to hold out test ratings (default random; item-cold / user-cold: a fraction of "
                        "the items / users with all their ratings)")
    e.add_argument("--test-size", type=_number, default=None, metavar="S",
                   help="fraction (0.2) or count of test ratings; per user for leave-last-out (default 1)")
    e.add_argument("--k", type=int, default=10, help="cut-off of the ranking metrics (default 10)")
    e.add_argument("--threshold", type=float, default=None,
                   help="only test ratings >= this count as relevant in the ranking metrics")
    e.add_argument("--validation", type=_validation_fraction, default=None, metavar="FRAC",
                   help="fraction of the train part held out for early stopping and the learning "
                        "curve (default 0.1 for mf, als, ials; 0: none); temporal when --split is "
                        "temporal or leave-last-out, else random with --seed")
    e.add_argument("--save", default=None, metavar="FILE",
                   help="write the model to FILE (.npz); refit on all the data first (see --no-refit)")
    e.add_argument("--refit", action=argparse.BooleanOptionalAction, default=True,
                   help="with --save: after the test metrics, refit the model on every rating (train, "
                        "validation and test) with the epoch count selected on validation, and save "
                        "that one, the model to serve (default; --no-refit saves the evaluated model)")
    e.add_argument("--plot", default=None, metavar="FILE", help="draw the learning curve to FILE (.png)")
    e.add_argument("--json", action="store_true", help="print one JSON object instead of the report")

    v = _sub(sub, "evaluate", common, "metrics of a saved model on a data set", EVALUATE_EPILOG, cmd_evaluate)
    v.add_argument("model", metavar="MODEL", help="a model file written by 'fastmf train --save'")
    _add_data_options(v, "the test data: a MovieLens name, folder or a ratings file")
    v.add_argument("--k", type=int, default=10, help="cut-off of the ranking metrics (default 10)")
    v.add_argument("--threshold", type=float, default=None,
                   help="only ratings >= this count as relevant in the ranking metrics")
    v.add_argument("--json", action="store_true", help="print a JSON object")

    r = _sub(sub, "recommend", common, "top-n items for a user of a saved model", RECOMMEND_EPILOG, cmd_recommend)
    r.add_argument("model", metavar="MODEL", help="a model file written by 'fastmf train --save'")
    who = r.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", metavar="ID", help="raw user id, as in the training data")
    who.add_argument("--all", action="store_true",
                     help="top-n for every user of the model as CSV (user,rank,item,score) on stdout or --output")
    r.add_argument("--output", "-o", default=None, metavar="FILE", help="with --all: write the CSV to FILE")
    r.add_argument("-n", type=int, default=10, help="how many items (default 10)")
    r.add_argument("--include-seen", action="store_true", help="also recommend items the user rated")
    r.add_argument("--new-items", action="store_true",
                   help="only among the items without ratings (a model trained with --item-features)")
    r.add_argument("--fallback", action="store_true",
                   help="for a user the model does not know, show its ranking for unknown users "
                        "instead of an error")
    r.add_argument("--at", type=float, default=None, metavar="TIMESTAMP",
                   help="when the list is asked for, in seconds since the epoch (models that use time, "
                        "e.g. timesvdpp; default: the last training time)")
    r.add_argument("--json", action="store_true", help="print a JSON object")

    s = _sub(sub, "similar", common, "items closest to an item in a saved model's factor space",
             SIMILAR_EPILOG, cmd_similar)
    s.add_argument("model", metavar="MODEL", help="a model file written by 'fastmf train --save'")
    which = s.add_mutually_exclusive_group(required=True)
    which.add_argument("--item", metavar="ID", help="raw item id")
    which.add_argument("--title", metavar="TEXT", help="case-insensitive part of the item's title")
    which.add_argument("--features", metavar="NAMES",
                       help="a new item given only its features, e.g. 'genre=Action,genre=War' (a model "
                            "trained with --item-features)")
    s.add_argument("-n", type=int, default=10, help="how many items (default 10)")
    s.add_argument("--metric", default="cosine", help="cosine (default), dot, euclidean or pearson")
    s.add_argument("--json", action="store_true", help="print a JSON object")

    tn = _sub(sub, "tune", common, "search a model's hyper-parameters, measure the best on the test split",
              TUNE_EPILOG, cmd_tune)
    _add_data_options(tn, "a MovieLens name (ml-100k, ...), a MovieLens folder or a ratings file")
    tn.add_argument("--model", default="mf", metavar="NAME", help=f"one of {', '.join(MODELS)} (default mf)")
    tn.add_argument("--param", action="append", metavar="NAME=VALUE",
                    help="a fixed constructor argument of the model (repeatable), e.g. dtype=float64")
    tn.add_argument("--budget", type=int, default=64, metavar="N", help="configurations to try (default 64)")
    tn.add_argument("--metric", default=None, help="what to optimise: rmse (default for rating models), mae, "
                                                   "ndcg@10 (default for ials), recall@20, ...")
    tn.add_argument("--sampler", default="random", choices=("random", "grid", "sobol", "tpe"),
                    help="how configurations are drawn (sobol needs scipy, tpe optuna; default random)")
    tn.add_argument("--max-epochs", type=int, default=None, metavar="N",
                    help="epochs (sweeps) of the last rung (default: the model's search space)")
    tn.add_argument("--min-epochs", type=int, default=None, metavar="N", help="epochs of the first rung")
    tn.add_argument("--jobs", type=int, default=None, metavar="N", help="trials at once (default: one per core)")
    tn.add_argument("--split", default="random",
                    choices=("random", "temporal", "leave-last-out", "user-holdout", "none"),
                    help="how to hold out test ratings (default random)")
    tn.add_argument("--test-size", type=_number, default=None, metavar="S", help="as for 'fastmf train'")
    tn.add_argument("--validation", type=float, default=0.1, metavar="FRAC",
                    help="fraction of the train part the search validates on (default 0.1)")
    tn.add_argument("--seed", type=int, default=None, metavar="N", help="seed of the split, sampler and models")
    tn.add_argument("--k", type=int, default=10, help="cut-off of the ranking metrics (default 10)")
    tn.add_argument("--top", type=int, default=10, metavar="N", help="configurations shown (default 10)")
    tn.add_argument("--save", default=None, metavar="FILE", help="write the best model (refit on train) to FILE")
    tn.add_argument("--json", action="store_true", help="print one JSON object instead of the report")

    cp = _sub(sub, "compare", common, "fit several models on one split and tabulate their test metrics",
              COMPARE_EPILOG, cmd_compare)
    _add_data_options(cp, "a MovieLens name (ml-100k, ...), a MovieLens folder or a ratings file")
    cp.add_argument("--models", default=None, metavar="A,B,...",
                    help=f"models to compare (default all: {', '.join(MODELS)})")
    cp.add_argument("--split", default="random", choices=("random", "temporal", "leave-last-out", "user-holdout"),
                    help="how to hold out test ratings (default random)")
    cp.add_argument("--test-size", type=_number, default=None, metavar="S", help="as for 'fastmf train'")
    cp.add_argument("--seed", type=int, default=None, metavar="N", help="seed of the split and the models")
    cp.add_argument("--k", type=int, default=10, help="cut-off of the ranking metrics (default 10)")
    cp.add_argument("--tune", type=int, default=None, metavar="N",
                    help="search each model first (budget N) on the train part only")
    cp.add_argument("--validation", type=float, default=0.1, metavar="FRAC",
                    help="with --tune: fraction of the train part to validate on (default 0.1)")
    cp.add_argument("--threads", type=int, default=None, metavar="N", help="threads of each model")
    cp.add_argument("--json", action="store_true", help="print one JSON object")

    pl = _sub(sub, "plot", common, "draw a saved model's factor map and learning curve", PLOT_EPILOG, cmd_plot)
    pl.add_argument("model", metavar="MODEL", help="a model file written by 'fastmf train --save'")
    pl.add_argument("--factor-map", default=None, metavar="FILE", help="draw the items in 2-D to FILE (.png)")
    pl.add_argument("--dims", default=None, metavar="I,J",
                    help="two factors to plot (default: the first two principal components)")
    pl.add_argument("--labels", type=int, default=15, help="label this many most-rated items (default 15)")
    pl.add_argument("--curves", default=None, metavar="FILE", help="draw the learning curve to FILE (.png)")

    w = _sub(sub, "web", common, "a local web page: rate a few movies, get recommendations, explore similar ones",
             WEB_EPILOG, cmd_web)
    w.add_argument("source", metavar="MODEL|DATA", nargs="?", default=None,
                   help="a model file written by 'fastmf train --save', or data to train the best model on "
                        "(a MovieLens name or folder, a ratings file; default ml-100k, else synthetic)")
    w.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this computer only)")
    w.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    w.add_argument("--offline", action="store_true", help="never download data")
    return p


def _version():
    from fastmf._version import __version__

    return __version__


def _error_text(exc):
    msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    return str(msg)


def _show_warning(command, message, category, filename, lineno, file=None, line=None):
    """``warnings.showwarning`` for the command line: ``fastmf CMD: warning: text`` on stderr."""
    print(f"fastmf {command}: warning: {message}", file=sys.stderr if file is None else file)


def _max_model_bytes(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be a number of bytes >= 0 (0: no limit), got {text!r}")
    return n


def _model_limit(args: argparse.Namespace) -> Optional[int]:
    """The size limit of model files: --max-model-bytes (0: none), else the service's default."""
    n = getattr(args, "max_model_bytes", -1)
    return None if n == 0 else n


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    setup_logging(args.verbose)
    try:
        with warnings.catch_warnings():
            # fastmf's warnings (evaluation on training data, repeated pairs in a file, ...) read as
            # one line each, like the errors, not as Python's file:line plus a source line
            warnings.showwarning = functools.partial(_show_warning, args.command)
            return args.func(args)
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): stop quietly, and keep the interpreter from
        # complaining when it flushes stdout at exit
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:  # pragma: no cover
            pass
        return 0
    except (UserError, ValueError, KeyError, OSError, FloatingPointError) as exc:
        if args.verbose:
            raise
        print(f"fastmf {args.command}: error: {_error_text(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
