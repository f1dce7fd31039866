"""Plots of what a model learned: learning curves and a 2-D map of the item factors.

Needs matplotlib (``pip install 'fastmf[plot]'``), imported only when a function here is called.
Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas directly, never through
``pyplot``: nothing opens a window, no figure is left registered with pyplot, and a backend the user
has chosen is left untouched. Each function returns the Figure (it displays inline in Jupyter) and,
given ``path``, saves it (PNG unless the file name says otherwise, e.g. ``.svg`` or ``.pdf``).
"""

from __future__ import annotations

import math
import os
from numbers import Integral, Real

import numpy as np

__all__ = ["learning_curve", "factor_map", "factor_coordinates", "MatplotlibMissingError"]

MISSING_MESSAGE = "fastmf.plot needs matplotlib: pip install 'fastmf[plot]'"

# up to this many first genres get their own colour (tab10); the rest are drawn as "other"
_MAX_GENRE_COLORS = 10
_LABEL_CHARS = 32


class MatplotlibMissingError(ImportError):
    """matplotlib is not installed; install the plot extra: ``pip install 'fastmf[plot]'``."""


def _matplotlib():
    """(Figure, FigureCanvasAgg), or MatplotlibMissingError naming the extra to install."""
    try:
        import matplotlib  # noqa: F401  (imported first, so a missing package fails here)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MatplotlibMissingError(MISSING_MESSAGE) from exc
    return Figure, FigureCanvasAgg


# ---------------------------------------------------------------------- learning curve
def learning_curve(history_or_model, path=None, ax=None, title=None, *, figsize=(6.4, 4.0), dpi=100):
    """Train (and eval) RMSE per epoch, with the best eval epoch marked.

    Parameters
    ----------
    history_or_model : fitted model or list of dict
        A model with ``history_`` (e.g. :class:`fastmf.MatrixFactorization`), or its history: one
        dict per epoch with ``"train_rmse"``, optionally ``"epoch"`` (default: position + 1) and
        ``"eval_rmse"`` (present when the model was fitted with an ``eval_set``). ``train_rmse`` is
        :math:`\\sqrt{\\frac{1}{|R|}\\sum_{(u,i)\\in R} e_{ui}^2}` over the epoch's training ratings and
        ``eval_rmse`` the same on the eval set after the epoch.
    path : str or os.PathLike, optional
        Save the figure there (PNG unless the extension names another format matplotlib writes).
    ax : matplotlib Axes, optional
        Draw into these axes (of a figure of yours) instead of a new figure.
    title : str, optional
        Axes title (default: "Learning curve", with the model's class name when a model is given;
        "" for none).
    figsize : (float, float)
        Size in inches of a new figure; the saved image is ``figsize * dpi`` pixels.
    dpi : float
        Resolution of a new figure (pixels per inch).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        An empty or malformed history, a model without ``history_``, bad ``figsize``/``dpi``/``ax``.
    MatplotlibMissingError
        (an ImportError) when matplotlib is not installed.
    """
    history, name = _history(history_or_model)
    _check_size(figsize, dpi)
    _check_ax(ax)
    epochs = np.array([float(e.get("epoch", i + 1)) for i, e in enumerate(history)])
    train = np.array([float(e["train_rmse"]) for e in history])
    has_eval = any("eval_rmse" in e for e in history)
    fig, ax = _figure_and_axes(ax, figsize, dpi)
    marker = "o" if len(history) <= 30 else None
    ax.plot(epochs, train, marker=marker, markersize=3, color="C0", label="train RMSE")
    if has_eval:
        evals = np.array([float(e.get("eval_rmse", np.nan)) for e in history])
        ax.plot(epochs, evals, marker=marker, markersize=3, color="C1", label="eval RMSE")
        if np.isfinite(evals).any():
            best = int(np.nanargmin(np.where(np.isfinite(evals), evals, np.nan)))  # first of ties
            ax.axvline(epochs[best], color="0.5", linestyle=":", linewidth=1)
            ax.plot([epochs[best]], [evals[best]], linestyle="none", marker="*", markersize=12,
                    color="C3", label=f"best eval: epoch {epochs[best]:g} ({evals[best]:.4f})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("RMSE")
    ax.set_title(("Learning curve" + (f": {name}" if name else "")) if title is None else title)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    if path is not None:
        _save(fig, path)
    return fig


def _history(obj):
    name = None
    if isinstance(obj, (list, tuple)):
        history = list(obj)
    else:
        name = type(obj).__name__
        if not hasattr(obj, "history_"):
            if hasattr(obj, "_param_names") and not hasattr(obj, "user_map_"):
                raise ValueError(f"this {name} is not fitted yet; call fit(train) before plotting its learning curve")
            raise ValueError(f"{name} has no history_ (training history); pass a fitted iterative model "
                             "such as MatrixFactorization or a list of per-epoch dicts")
        history = list(obj.history_)
    if not history:
        raise ValueError("the training history is empty (was the model fitted with n_epochs=0?)")
    for i, entry in enumerate(history):
        if not isinstance(entry, dict):
            raise ValueError(f"history[{i}] must be a dict with 'train_rmse', got {type(entry).__name__}")
        if "train_rmse" not in entry:
            raise ValueError(f"history[{i}] has no 'train_rmse' (keys: {sorted(entry)})")
        for key in ("epoch", "train_rmse", "eval_rmse"):
            if key in entry and (isinstance(entry[key], bool) or not isinstance(entry[key], Real)):
                raise ValueError(f"history[{i}][{key!r}] must be a number, got {entry[key]!r}")
    return history, name


# ---------------------------------------------------------------------- factor map
def factor_coordinates(model, dims=None):
    """2-D coordinates of every item of a fitted model, as :func:`factor_map` draws them.

    Parameters
    ----------
    model : fitted model with ``item_factors_`` (n_items, k)
    dims : (int, int), optional
        Two distinct factor dimensions in ``[0, k)``: the coordinates are those columns of the item
        factors. By default the first two principal components: with :math:`X = Q - \\bar Q` the
        item factors centred per dimension and :math:`X = U S V^\\top` its thin SVD, the coordinates
        are the first two columns of :math:`X V = U S`, each component's sign chosen so that its
        largest loading in :math:`V` is positive (a deterministic orientation).

    Returns
    -------
    coords : ndarray, shape (n_items, 2), float64
        Row ``i`` is item index ``i`` (raw id ``model.item_map_.ids[i]``).
    """
    coords, _ = _coordinates(_item_factors(model), dims)
    return coords


def factor_map(model, path=None, dims=None, n_labels=15, color_by="genre", *, ax=None, title=None,
               figsize=(8.0, 6.5), dpi=100):
    """Items in 2-D: two chosen factors or the first two principal components of the item factors.

    Each item is a point whose area grows with its number of training ratings
    (``model.item_counts_``); the ``n_labels`` most-rated items are labelled with their titles (or
    their raw ids when the model's data had no titles) and, when the data had genres, points are
    coloured by each item's first genre with a legend (the 9 most common first genres get a colour,
    the rest "other", when there are more than 10).

    Parameters
    ----------
    model : fitted model with ``item_factors_`` (e.g. :class:`fastmf.MatrixFactorization`)
        Titles and genres come from ``model.item_info_`` (a :class:`fastmf.data.Metadata` or None):
        columns ``"title"`` and ``"genres"`` (``"|"``-joined).
    path : str or os.PathLike, optional
        Save the figure there (PNG unless the extension names another format matplotlib writes).
    dims : (int, int), optional
        Plot these two factor dimensions (0-based, distinct, in ``[0, n_factors)``) instead of the
        principal components; see :func:`factor_coordinates`.
    n_labels : int
        How many of the most-rated items to label (ties by lower item index); 0 for none.
    color_by : {"genre", None}
        ``"genre"`` colours by first genre when the metadata has genres; None draws one colour.
    ax : matplotlib Axes, optional
        Draw into these axes instead of a new figure.
    title : str, optional
        Axes title (default names the projection; "" for none).
    figsize : (float, float)
        Size in inches of a new figure; the saved image is ``figsize * dpi`` pixels.
    dpi : float
        Resolution of a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        Unfitted model or one without item factors, bad ``dims`` (wrong length, equal, out of range,
        fewer than 2 factors for the principal components), bad ``n_labels``, ``color_by``,
        ``figsize``, ``dpi`` or ``ax``.
    MatplotlibMissingError
        (an ImportError) when matplotlib is not installed.
    """
    factors = _item_factors(model)
    if isinstance(n_labels, bool) or not isinstance(n_labels, Integral) or n_labels < 0:
        raise ValueError(f"n_labels must be an int >= 0, got {n_labels!r}")
    if color_by not in ("genre", None):
        raise ValueError(f"color_by must be 'genre' or None, got {color_by!r}")
    _check_size(figsize, dpi)
    _check_ax(ax)
    coords, axis_labels = _coordinates(factors, dims)
    n_items = coords.shape[0]
    raw_ids = model.item_map_.ids
    counts = np.asarray(getattr(model, "item_counts_", np.ones(n_items)), dtype=np.float64)
    info = getattr(model, "item_info_", None)

    genres = None
    if color_by == "genre" and info is not None and "genres" in info:
        genres = np.array([_first_genre(g) for g in info.get(raw_ids, "genres", default="")], dtype=object)

    fig, ax = _figure_and_axes(ax, figsize, dpi)
    top = counts.max() if counts.size and counts.max() > 0 else 1.0
    sizes = 6.0 + 114.0 * np.sqrt(np.clip(counts, 0, None) / top)  # area in points^2
    draw = np.argsort(-sizes, kind="stable")  # big points first, small ones stay visible on top
    if genres is not None:
        names, colors, item_color = _genre_colors(genres)
        point_colors = item_color[draw]
    else:
        point_colors = "C0"
    ax.scatter(coords[draw, 0], coords[draw, 1], s=sizes[draw], c=point_colors, alpha=0.75,
               edgecolors="white", linewidths=0.4)
    ax.axhline(0.0, color="0.85", linewidth=0.8, zorder=0)
    ax.axvline(0.0, color="0.85", linewidth=0.8, zorder=0)

    labelled = np.argsort(-counts, kind="stable")[:min(int(n_labels), n_items)]
    if labelled.size:
        texts = _label_texts(info, raw_ids[labelled])
        ax.scatter(coords[labelled, 0], coords[labelled, 1], s=sizes[labelled], facecolors="none",
                   edgecolors="black", linewidths=0.8)
        for i, text in zip(labelled.tolist(), texts):
            ax.annotate(text, (coords[i, 0], coords[i, 1]), xytext=(4, 3), textcoords="offset points",
                        fontsize=7)
    if genres is not None:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], linestyle="none", marker="o", markersize=7, color=c, label=g)
                   for g, c in zip(names, colors)]
        ax.legend(handles=handles, title="first genre", loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  fontsize="small", frameon=False)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    if title is None:
        title = ("Item factor map: first two principal components" if dims is None
                 else f"Item factor map: factors {dims[0]} and {dims[1]}")
    ax.set_title(title)
    ax.text(0.99, 0.01, "point area ~ number of ratings", transform=ax.transAxes, ha="right",
            va="bottom", fontsize="x-small", color="0.45")
    if path is not None:
        _save(fig, path)
    return fig


def _item_factors(model):
    factors = getattr(model, "item_factors_", None)
    if factors is None:
        name = type(model).__name__
        if hasattr(model, "_param_names") and not hasattr(model, "user_map_"):
            raise ValueError(f"this {name} is not fitted yet; call fit(train) before plotting its factors")
        raise ValueError(f"{name} has no item factors (item_factors_); factor_map needs a latent-factor "
                         "model such as MatrixFactorization")
    factors = np.asarray(factors, dtype=np.float64)
    if factors.ndim != 2 or factors.shape[0] == 0:
        raise ValueError(f"item_factors_ must be a non-empty (n_items, k) array, got shape {factors.shape}")
    if not hasattr(model, "item_map_") or len(model.item_map_) != factors.shape[0]:
        raise ValueError("the model's item_map_ does not match its item_factors_")
    return factors


def _coordinates(factors, dims):
    """(n_items, 2) coordinates and the two axis labels."""
    k = factors.shape[1]
    if dims is not None:
        if (not isinstance(dims, (tuple, list, np.ndarray)) or len(dims) != 2
                or any(isinstance(d, (bool, np.bool_)) or not isinstance(d, Integral) for d in dims)):
            raise ValueError(f"dims must be a pair of factor indices (a, b), got {dims!r}")
        a, b = int(dims[0]), int(dims[1])
        for d in (a, b):
            if not 0 <= d < k:
                raise ValueError(f"dims: factor {d} is outside [0, {k}) (the model has {k} factors)")
        if a == b:
            raise ValueError(f"dims must name two different factors, got ({a}, {b})")
        return factors[:, [a, b]].copy(), (f"factor {a}", f"factor {b}")
    if k < 2:
        raise ValueError(f"the principal components need at least 2 factors, the model has {k}; "
                         "fit it with n_factors >= 2")
    x = factors - factors.mean(axis=0)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    coords = u[:, :2] * s[:2]
    # orientation: the largest |loading| of each component is positive
    flip = np.sign(vt[np.arange(2), np.argmax(np.abs(vt[:2]), axis=1)])
    flip[flip == 0] = 1.0
    coords *= flip
    total = float(np.sum(s * s))
    share = s[:2] ** 2 / total if total > 0 else np.zeros(2)
    return coords, (f"PC1 ({share[0]:.0%} of variance)", f"PC2 ({share[1]:.0%} of variance)")


def _first_genre(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "(none)"
    first = str(value).split("|")[0].strip()
    return first or "(none)"


def _genre_colors(genres):
    """Legend names, their colours and one colour per item: most common first genres first."""
    from matplotlib import colormaps

    names, counts = np.unique(genres.astype(str), return_counts=True)
    order = np.lexsort((names, -counts))
    names = names[order].tolist()
    if len(names) > _MAX_GENRE_COLORS:
        names = names[:_MAX_GENRE_COLORS - 1] + ["other"]
    cmap = colormaps["tab10"]
    colors = [cmap(j) for j in range(len(names))]
    if names[-1] == "other" and len(names) == _MAX_GENRE_COLORS:
        colors[-1] = (0.6, 0.6, 0.6, 1.0)
    index = {g: j for j, g in enumerate(names)}
    other = index.get("other", len(names) - 1)
    item_color = np.array([colors[index.get(g, other)] for g in genres.tolist()])
    return names, colors, item_color


def _label_texts(info, raw_ids):
    titles = None
    if info is not None and "title" in info:
        titles = info.get(raw_ids, "title")
    out = []
    for j, raw in enumerate(raw_ids.tolist()):
        text = str(raw)
        if titles is not None and titles[j] is not None and str(titles[j]).strip():
            text = str(titles[j]).strip()
        if len(text) > _LABEL_CHARS:
            text = text[:_LABEL_CHARS - 1] + "\u2026"
        out.append(text)
    return out


# ---------------------------------------------------------------------- figure helpers
def _check_size(figsize, dpi):
    ok = (isinstance(figsize, (tuple, list)) and len(figsize) == 2
          and all(isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v) and v > 0
                  for v in figsize))
    if not ok:
        raise ValueError(f"figsize must be (width, height) in inches, two positive numbers; got {figsize!r}")
    if isinstance(dpi, bool) or not isinstance(dpi, Real) or not math.isfinite(dpi) or dpi <= 0:
        raise ValueError(f"dpi must be a positive number, got {dpi!r}")


def _check_ax(ax):
    if ax is not None and not (hasattr(ax, "plot") and hasattr(ax, "figure") and hasattr(ax, "transAxes")):
        raise ValueError(f"ax must be a matplotlib Axes, got {type(ax).__name__}")


def _figure_and_axes(ax, figsize, dpi):
    if ax is not None:
        _matplotlib()
        fig = ax.figure
        while getattr(fig, "figure", fig) is not fig:  # a SubFigure's root figure
            fig = fig.figure
        return fig, ax
    Figure, FigureCanvasAgg = _matplotlib()
    fig = Figure(figsize=tuple(float(v) for v in figsize), dpi=float(dpi), layout="constrained")
    FigureCanvasAgg(fig)  # attaches itself: savefig renders with Agg, whatever pyplot's backend is
    return fig, fig.add_subplot()


def _save(fig, path):
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    fmt = ext or "png"
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise ValueError(f"cannot save a figure as {path!r}: unknown image format {ext!r}; "
                         f"use one of {', '.join(sorted(supported))}")
    fig.savefig(path, format=fmt, dpi=fig.dpi)
