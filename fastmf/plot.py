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
from collections.abc import Sequence
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, Mapping, Union

import numpy as np

from fastmf.errors import MatplotlibMissingError

if TYPE_CHECKING:  # matplotlib stays optional: these names are for type checkers only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from fastmf.models.base import Recommender

__all__ = ["learning_curve", "factor_map", "factor_coordinates", "MatplotlibMissingError"]

MISSING_MESSAGE = "fastmf.plot needs matplotlib: pip install 'fastmf[plot]'"





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
# metric families: one panel each. Errors on the rating scale share an axis; a training objective
# has its own scale; ranking metrics are fractions in [0, 1] where higher is better.
_ERROR_METRICS = ("rmse", "mae", "mse")
_RANKING_METRICS = ("ndcg", "precision", "recall", "map", "mrr", "hit_rate", "hitrate", "hr", "auc",
                    "coverage", "f1")
_UPPER = {"rmse": "RMSE", "mae": "MAE", "mse": "MSE", "ndcg": "NDCG", "map": "MAP", "mrr": "MRR",
          "auc": "AUC", "hr": "HR"}
_NOT_METRICS = ("epoch", "seconds")
_SPLIT_COLOR = {"train": "C0", "eval": "C1", None: "C2"}
_LINESTYLES = ("-", "--", ":", "-.")


def _family(metric: str) -> str:
    base = metric.split("@")[0].lower()
    if base in _ERROR_METRICS:
        return "error"
    if "loss" in base or base == "objective":
        return "loss"
    if base in _RANKING_METRICS:
        return "ranking"
    return "metric:" + metric


def _higher_is_better(metric: str):
    """True, False, or None (direction unknown: no best marker)."""
    family = _family(metric)
    return {"error": False, "loss": False, "ranking": True}.get(family)


def _metric_name(metric: str) -> str:
    base, at, k = metric.partition("@")
    return _UPPER.get(base.lower(), base) + at + k


def learning_curve(history_or_model: Union[Sequence[Mapping[str, Any]], Recommender], path: str | os.PathLike | None = None,
                   ax: Axes | Sequence[Axes] | None = None, title: str | None = None, *,
                   best_epoch: float | None = None, figsize: tuple[float, float] | None = None,
                   dpi: float = 100) -> Figure:
    """Every metric of a training history per epoch, one panel per metric family.

    The history is a list of dicts, one per epoch: ``"epoch"`` (default: position + 1) and metrics
    ``"train_<metric>"`` / ``"eval_<metric>"`` (e.g. ``train_rmse``, ``eval_rmse``, ``eval_mae``,
    ``train_loss``, ``eval_ndcg@10``, ``eval_precision@10``); a numeric key without a prefix (e.g.
    ``"loss"``) is drawn as it is; ``"seconds"`` and non-numeric values of other keys are not
    metrics and are skipped. An entry may lack a metric (a metric evaluated every few epochs):
    its curve has a gap there. Metrics are grouped into panels stacked over a shared epoch axis, in
    this order: errors on the rating scale (RMSE, MAE, MSE) on one axis; losses (any name with
    "loss") on their own; ranking metrics (NDCG, precision, recall, MAP, MRR, hit rate, AUC,
    coverage, at any cut-off) on their own; any other metric on a panel of its own. Train curves
    are blue, eval curves orange; metrics sharing a panel differ by line style.

    Each eval curve of known direction (errors and losses: lower is better, ranking metrics:
    higher) has its best epoch starred (the first of ties), labelled ``"best eval RMSE: epoch 7
    (0.9123)"``. The epoch whose parameters an early-stopped model kept is marked by a vertical
    dotted line across all panels, labelled ``"kept: epoch 7"``: ``model.best_epoch_`` when a
    model is given and it is not its last epoch, or ``best_epoch``.

    Parameters
    ----------
    history_or_model : fitted model or list of dict
        A model with ``history_`` (e.g. :class:`fastmf.MatrixFactorization`, whose ``train_rmse`` is
        :math:`\\sqrt{\\frac{1}{|R|}\\sum_{(u,i)\\in R} e_{ui}^2}` over the epoch's training ratings
        and ``eval_rmse`` the same on the eval set after the epoch), or its history.
    path : str or os.PathLike, optional
        Save the figure there (PNG unless the extension names another format matplotlib writes).
    ax : matplotlib Axes or sequence of Axes, optional
        Draw into these axes (of a figure of yours) instead of a new figure: one Axes per panel.
    title : str, optional
        Title of the top panel (default: "Learning curve", with the model's class name when a model
        is given; "" for none).
    best_epoch : number, optional
        The epoch to mark as kept (default: the model's ``best_epoch_`` when early stopping kept an
        earlier epoch than the last).
    figsize : (float, float), optional
        Size in inches of a new figure (default 6.4 wide, 4.0 high for one panel and 2.6 more per
        further panel); the saved image is ``figsize * dpi`` pixels.
    dpi : float
        Resolution of a new figure (pixels per inch).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        An empty history, one without any numeric metric, an entry that is not a dict, a non-number
        ``epoch`` or ``train_``/``eval_`` value, a model without ``history_``, ``ax`` not matching
        the number of panels, bad ``figsize``/``dpi``/``best_epoch``.
    MatplotlibMissingError
        (an ImportError) when matplotlib is not installed.
    """
    history, name, model = _history(history_or_model)
    epochs, series = _history_series(history)
    if best_epoch is None and model is not None:
        kept = getattr(model, "best_epoch_", None)
        if isinstance(kept, Real) and not isinstance(kept, bool) and 0 < kept < epochs[-1]:
            best_epoch = kept
    if best_epoch is not None and (isinstance(best_epoch, bool) or not isinstance(best_epoch, Real)
                                   or not math.isfinite(best_epoch)):
        raise ValueError(f"best_epoch must be a number (an epoch of the history), got {best_epoch!r}")
    panels: dict = {}  # family -> [(split, metric)], families in their drawing order
    for key in series:
        panels.setdefault(_family(key[1]), []).append(key)
    order = [f for f in ("error", "loss", "ranking") if f in panels] + \
            [f for f in panels if f not in ("error", "loss", "ranking")]
    default_size = figsize is None
    if default_size:
        figsize = (6.4, 4.0 + 2.6 * (len(order) - 1))
    _check_size(figsize, dpi)
    fig, axes = _panel_axes(ax, len(order), order, figsize, dpi)
    marker = "o" if len(history) <= 30 else None
    wide = False
    for panel, (family, a) in enumerate(zip(order, axes)):
        metrics = list(dict.fromkeys(m for _, m in panels[family]))
        for split, metric in panels[family]:
            y = series[(split, metric)]
            label = (f"{split} " if split else "") + _metric_name(metric)
            gaps = not np.isfinite(y).all()
            a.plot(epochs, y, marker=marker if not gaps else "o", markersize=3, color=_SPLIT_COLOR[split],
                   linestyle=_LINESTYLES[metrics.index(metric) % len(_LINESTYLES)], label=label)
        for split, metric in panels[family]:
            higher = _higher_is_better(metric)
            y = series[(split, metric)]
            if split != "eval" or higher is None or not np.isfinite(y).any():
                continue
            j = int(np.nanargmax(y) if higher else np.nanargmin(y))  # first of ties
            a.plot([epochs[j]], [y[j]], linestyle="none", marker="*", markersize=12, color="C3",
                   label=f"best eval {_metric_name(metric)}: epoch {epochs[j]:g} ({y[j]:.4f})")
        if best_epoch is not None:
            a.axvline(best_epoch, color="0.4", linestyle=":", linewidth=1.2,
                      label=f"kept: epoch {best_epoch:g}")
        a.set_ylabel(" / ".join(_metric_name(m) for m in metrics) if family != "loss" or len(metrics) > 1
                     else "loss")
        a.xaxis.get_major_locator().set_params(integer=True)
        a.grid(True, alpha=0.3)
        # beside the panel once the stars and the kept-epoch line make it long: inside it would cover
        # the curves (the constrained layout makes room for it)
        n_entries = len(a.get_legend_handles_labels()[1])
        if n_entries > 3:
            a.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", borderaxespad=0.0)
            wide = True
        else:
            a.legend(loc="best", fontsize="small")
        if panel == len(axes) - 1:
            a.set_xlabel("epoch")
    axes[0].set_title(("Learning curve" + (f": {name}" if name else "")) if title is None else title)
    if wide and default_size and ax is None:  # room for the legends beside the panels
        fig.set_size_inches(fig.get_size_inches()[0] + 3.4, fig.get_size_inches()[1])
    if path is not None:
        _save(fig, path)
    return fig


def _panel_axes(ax, n, order, figsize, dpi):
    """(figure, [Axes] * n): new stacked panels sharing the epoch axis, or the given ones."""
    if ax is None:
        fig, first = _figure_and_axes(None, figsize, dpi)
        if n == 1:
            return fig, [first]
        first.remove()
        axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0].tolist()
        return fig, axes
    given = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
    for a in given:
        _check_ax(a)
    if len(given) != n:
        names = ", ".join(f.removeprefix("metric:") for f in order)
        raise ValueError(f"this history has {n} metric panel{'s' if n != 1 else ''} ({names}); pass ax "
                         f"as {'one Axes' if n == 1 else f'a sequence of {n} Axes'}, got {len(given)}")
    fig, _ = _figure_and_axes(given[0], figsize, dpi)
    return fig, given


def _history(obj):
    name = model = None
    if isinstance(obj, (list, tuple)):
        history = list(obj)
    else:
        name = type(obj).__name__
        if not hasattr(obj, "history_"):
            if hasattr(obj, "_param_names") and not hasattr(obj, "user_map_"):
                raise ValueError(f"this {name} is not fitted yet; call fit(train) before plotting its learning curve")
            raise ValueError(f"{name} has no history_ (training history); pass a fitted iterative model "
                             "such as MatrixFactorization or a list of per-epoch dicts")
        model = obj
        history = list(obj.history_)
    if not history:
        raise ValueError("the training history is empty (was the model fitted with n_epochs=0?)")
    return history, name, model


def _history_series(history):
    """(epochs, {(split, metric): values}) with NaN where an entry lacks the metric; split is
    "train", "eval" or None (a key without a prefix)."""
    n = len(history)
    epochs = np.empty(n)
    series = {}
    keys_seen = set()
    for i, entry in enumerate(history):
        if not isinstance(entry, dict):
            raise ValueError(f"history[{i}] must be a dict of per-epoch numbers (train_<metric>, "
                             f"eval_<metric>), got {type(entry).__name__}")
        epoch = entry.get("epoch", i + 1)
        if isinstance(epoch, bool) or not isinstance(epoch, Real):
            raise ValueError(f"history[{i}]['epoch'] must be a number, got {epoch!r}")
        epochs[i] = float(epoch)
        for key, value in entry.items():
            keys_seen.add(str(key))
            if not isinstance(key, str) or key in _NOT_METRICS:
                continue
            split, sep, metric = key.partition("_")
            if split not in ("train", "eval") or not metric:
                split, metric = None, key
            if isinstance(value, bool) or not isinstance(value, Real) or value is None:
                if split is not None:
                    raise ValueError(f"history[{i}][{key!r}] must be a number, got {value!r}")
                continue  # a note or a setting, not a metric
            series.setdefault((split, metric), np.full(n, np.nan))[i] = float(value)
    if not series:
        raise ValueError(f"the training history has no metric to draw (keys: {sorted(keys_seen)}); its "
                         "entries need numbers such as 'train_rmse', 'eval_rmse', 'train_loss' or "
                         "'eval_ndcg@10'")
    return epochs, series


# ---------------------------------------------------------------------- factor map
_LABEL_CHARS = 34
_LABEL_FONTSIZE = 7.5
_DENSE_ITEMS = 2000     # above this many items: a density background, coloured points for the most rated
_DENSE_POINTS = 1000    # ... this many of them
_NO_GENRE = ("", "(no genres listed)", "unknown", "(none)")
_GREY = (0.72, 0.72, 0.72, 1.0)
_HIGHLIGHT_COLORS = (0, 1, 2, 3, 4, 5, 6, 8, 9)  # tab10 without its grey


def factor_coordinates(model: Recommender, dims: tuple[int, int] | None = None) -> np.ndarray:
    """2-D coordinates of every item of a fitted model, as :func:`factor_map` draws them.

    Parameters
    ----------
    model : fitted model with ``item_factors_`` (n_items, k)
    dims : (int, int), optional
        Two distinct factor dimensions in ``[0, k)``: the coordinates are those columns of the item
        factors. By default the first two principal components: with :math:`X = Q - \\bar Q` the
        item factors centred per dimension and :math:`X = U S V^\\top` its thin SVD, the coordinates
        are the first two columns of :math:`X V = U S`, each component's sign chosen so that its
        largest loading in :math:`V` is positive (a deterministic orientation). Every item counts
        once (no popularity weights): a regularised model keeps the factors of rarely rated items
        near zero (on ml-latest-small the mean factor norm is 0.12 for items with one rating, 0.71
        for items with over 100), so they add little variance and the components are already
        those of the well-rated items, while weighting by ratings would let a few dozen
        blockbusters decide both axes.

    Returns
    -------
    coords : ndarray, shape (n_items, 2), float64
        Row ``i`` is item index ``i`` (raw id ``model.item_map_.ids[i]``).
    """
    coords, _ = _coordinates(_item_factors(model), dims)
    return coords


def factor_map(model: Recommender, path: str | os.PathLike | None = None, dims: tuple[int, int] | None = None,
               n_labels: int = 15, color_by: str | None = "genre", *, genres: Sequence[str] | None = None,
               n_genres: int = 6, ax: Axes | None = None, title: str | None = None,
               figsize: tuple[float, float] = (8.0, 6.5), dpi: float = 100) -> Figure:
    """Items in 2-D: the first two principal components of the item factors (or two chosen factors).

    Each item is a point whose area grows with its number of training ratings
    (``model.item_counts_``). Catalogues of more than 2,000 items are drawn as a grey hexagonal
    density of all items (log scale) with the 1,000 most rated items as points on top, so both the
    mass of rarely rated items (near the origin: their factors stay small) and the layout of the
    well-known ones show.

    **Colour** (when the metadata has genres): a few genres are highlighted and every other item is
    grey. By default the ``n_genres`` genres that the map separates best are chosen: splitting the
    items into those of genre *g* and the rest, the share of the map's variance (items weighted by
    their ratings) that lies between the two groups, :math:`\\eta^2_g = s(1-s)\\,\\lVert \\bar x_g -
    \\bar x_{\\neg g}\\rVert^2 / \\sigma^2` with *s* the genre's share of the ratings, :math:`\\bar
    x` the weighted mean positions and :math:`\\sigma^2` the weighted variance of all positions;
    genres with fewer than 1% of the items (or 3) are not candidates. A genre whose items lie
    everywhere would colour noise, and a tiny genre would colour a handful of points, so neither is
    chosen. Each item takes, among its highlighted genres, the most distinctive one: the one with
    the highest lift :math:`P(g \\mid i) / P(g)`, which for an item's equally weighted genres is
    the one with the fewest items in the catalogue (on ml-latest-small *Toy Story*, Adventure |
    Animation | Children | Comedy | Fantasy, is Children, not Adventure); ties go to the legend
    order. The first genre of the list (alphabetical in MovieLens) would carry no meaning.
    Genre names ``"(no genres listed)"`` and ``"unknown"`` count as no genre.

    **Labels**: titles (or raw ids) of up to ``n_labels`` of the most rated items, spread out.
    Candidates are the ``max(4 * n_labels, 40)`` most rated items, taken by number of ratings
    (ties by lower item index); one is skipped when its point
    lies within about two text heights of an already labelled point or under a placed label. Each
    label is placed by a greedy pass over positions around its point, nearest first: the first
    whose text box (measured by the renderer in display coordinates) stays inside the axes,
    overlaps no placed label and no labelled point, and is nearer its own point than any other
    labelled point; a label moved away from its point gets a leader line, and one with no free
    position is dropped (the next candidate is tried). After the figure is drawn the boxes are
    measured again and a label that still collides is removed. This is a small placer of our own
    rather than adjustText: that package would be a new dependency, and its force-directed moves
    neither guarantee zero overlaps nor drop what cannot fit.

    The legends (genres, point sizes) sit outside the axes on the right.

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
        How many items to label (at most; fewer when no free place is left); 0 for none.
    color_by : {"genre", None}
        ``"genre"`` colours by genre as above when the metadata has genres; None draws one colour.
    genres : sequence of str, optional
        The genres to highlight, in legend order, instead of the automatic choice.
    n_genres : int
        How many genres the automatic choice highlights (at most 9).
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
        ``genres``, ``n_genres``, ``figsize``, ``dpi`` or ``ax``.
    MatplotlibMissingError
        (an ImportError) when matplotlib is not installed.
    """
    factors = _item_factors(model)
    if isinstance(n_labels, bool) or not isinstance(n_labels, Integral) or n_labels < 0:
        raise ValueError(f"n_labels must be an int >= 0, got {n_labels!r}")
    if color_by not in ("genre", None):
        raise ValueError(f"color_by must be 'genre' or None, got {color_by!r}")
    if (isinstance(n_genres, bool) or not isinstance(n_genres, Integral)
            or not 1 <= n_genres <= len(_HIGHLIGHT_COLORS)):
        raise ValueError(f"n_genres must be an int in [1, {len(_HIGHLIGHT_COLORS)}], got {n_genres!r}")
    if genres is not None:
        if isinstance(genres, str) or not all(isinstance(g, str) for g in genres):
            raise ValueError(f"genres must be a sequence of genre names, got {genres!r}")
        genres = list(dict.fromkeys(genres))
        if not 1 <= len(genres) <= len(_HIGHLIGHT_COLORS):
            raise ValueError(f"genres: give 1 to {len(_HIGHLIGHT_COLORS)} genre names, got {len(genres)}")
    _check_size(figsize, dpi)
    _check_ax(ax)
    coords, axis_labels = _coordinates(factors, dims)
    n_items = coords.shape[0]
    raw_ids = model.item_map_.ids
    counts = np.asarray(getattr(model, "item_counts_", np.ones(n_items)), dtype=np.float64)
    info = getattr(model, "item_info_", None)

    lists = None
    if color_by == "genre" and info is not None and "genres" in info:
        lists = _genre_lists(info.get(raw_ids, "genres", default=""))
        if not any(lists):
            lists = None
    if lists is not None:
        if genres is not None:
            known = set().union(*lists)
            unknown = [g for g in genres if g not in known]
            if unknown:
                raise ValueError(f"genres: no item has the genre {unknown[0]!r} (genres in the data: "
                                 f"{', '.join(sorted(known))})")
            highlight = genres
        else:
            highlight = _choose_genres(lists, coords, counts, n_genres)
        item_genre = _assign_genres(lists, highlight)

    fig, ax = _figure_and_axes(ax, figsize, dpi)
    dense = n_items > _DENSE_ITEMS
    top = counts.max() if counts.size and counts.max() > 0 else 1.0
    rel = np.sqrt(np.clip(counts, 0, None) / top)
    sizes = (3.0 + 57.0 * rel) if dense else (6.0 + 114.0 * rel)  # area in points^2
    by_count = np.argsort(-counts, kind="stable")
    if dense:
        from matplotlib.colors import LinearSegmentedColormap

        shade = LinearSegmentedColormap.from_list("fastmf_density", ["0.93", "0.45"])
        ax.hexbin(coords[:, 0], coords[:, 1], gridsize=55, bins="log", mincnt=1, cmap=shade,
                  linewidths=0.0, zorder=0)
        shown = np.sort(by_count[:_DENSE_POINTS])
    else:
        shown = np.arange(n_items)
    if lists is not None:
        from matplotlib import colormaps

        cmap = colormaps["tab10"]
        colour_of = {g: cmap(_HIGHLIGHT_COLORS[j]) for j, g in enumerate(highlight)}
        coloured = np.array([g is not None for g in item_genre])
        point_colors = np.array([colour_of[g] if g is not None else _GREY for g in item_genre])
        # grey under colour; within each, big points first so small ones stay visible on top
        draw = shown[np.lexsort((-sizes[shown], coloured[shown]))]
        point_colors = point_colors[draw]
    else:
        draw = shown[np.argsort(-sizes[shown], kind="stable")]
        point_colors = "C0"
    ax.scatter(coords[draw, 0], coords[draw, 1], s=sizes[draw], c=point_colors,
               alpha=0.7 if dense else 0.8, edgecolors="white", linewidths=0.0 if dense else 0.4, zorder=2)
    ax.axhline(0.0, color="0.85", linewidth=0.8, zorder=1)
    ax.axvline(0.0, color="0.85", linewidth=0.8, zorder=1)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    if title is None:
        title = ("Item factor map: first two principal components" if dims is None
                 else f"Item factor map: factors {dims[0]} and {dims[1]}")
    ax.set_title(title)
    _size_legend(ax, counts, top, dense, n_items, float(counts[shown].min()) if shown.size else 0.0)
    if lists is not None:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], linestyle="none", marker="o", markersize=7, color=colour_of[g], label=g)
                   for g in highlight]
        if not coloured.all():
            handles.append(Line2D([], [], linestyle="none", marker="o", markersize=7, color=_GREY,
                                  label="other genres"))
        ax.legend(handles=handles, title="genre", loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  borderaxespad=0.0, fontsize="small", frameon=False, alignment="left")
    # freeze the limits (labels must not move them) and settle the layout before measuring
    ax.autoscale_view()
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())
    if n_labels:
        pool = by_count[:max(4 * int(n_labels), 40)]
        labels, kept = _place_labels(fig, ax, coords, pool, _label_texts(info, raw_ids[pool]), sizes,
                                     int(n_labels))
        if labels:
            ringed = np.array([pool[j] for j in kept], dtype=np.intp)
            ax.scatter(coords[ringed, 0], coords[ringed, 1], s=sizes[ringed], facecolors="none",
                       edgecolors="black", linewidths=0.8, zorder=3)
    if path is not None:
        _save(fig, path)
    return fig


def _size_legend(ax, counts, top, dense, n_items, least):
    """A legend of point areas for a few round numbers of ratings (at least ``least``, the fewest
    of a drawn point), outside the axes (lower right); for a dense map it says what is drawn."""
    from matplotlib.legend import Legend
    from matplotlib.lines import Line2D

    if top <= 1:
        return
    steps = [v for v in (1, 10, 100, 1000, 10000, 100000) if least <= v <= top]
    if len(steps) < 2:
        steps = [v for v in (1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000) if least <= v <= top]
    steps = steps[-3:] or [int(top)]
    rel = np.sqrt(np.array(steps, dtype=float) / top)
    areas = (3.0 + 57.0 * rel) if dense else (6.0 + 114.0 * rel)
    handles = [Line2D([], [], linestyle="none", marker="o", markersize=math.sqrt(a), color="0.55",
                      markeredgecolor="white", label=f"{v:,}") for v, a in zip(steps, areas)]
    title = "ratings"
    if dense:
        title = f"ratings\n(points: the\n{_DENSE_POINTS:,} most rated;\nshading: all\n{n_items:,} items)"
    leg = Legend(ax, handles, [h.get_label() for h in handles], title=title, loc="lower left",
                 bbox_to_anchor=(1.02, 0.0), borderaxespad=0.0, fontsize="small", frameon=False,
                 labelspacing=1.0, alignment="left", title_fontsize="small")
    ax.add_artist(leg)
    leg.set_clip_on(False)  # add_artist clips to the axes: the layout would then ignore the legend


def _genre_lists(values):
    """One tuple of genre names per item ("|"-joined strings; none for missing/placeholder names)."""
    out = []
    for value in values:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out.append(())
            continue
        names = [g.strip() for g in str(value).split("|")]
        out.append(tuple(dict.fromkeys(g for g in names if g not in _NO_GENRE)))
    return out


def _genre_frequency(lists):
    freq = {}
    for gs in lists:
        for g in gs:
            freq[g] = freq.get(g, 0) + 1
    return freq


def _choose_genres(lists, coords, weights, n):
    """The n genres that explain most of the map's weighted variance (see factor_map); ties by name."""
    w = np.clip(np.asarray(weights, dtype=np.float64), 0, None)
    if not w.sum() > 0:
        w = np.ones(len(lists))
    total = w.sum()
    mean = w @ coords / total
    variance = float(w @ np.sum((coords - mean) ** 2, axis=1)) / total
    freq = _genre_frequency(lists)
    n_with = sum(1 for gs in lists if gs)
    least = max(3, math.ceil(0.01 * n_with))
    scores = []
    for g in sorted(freq):
        mask = np.array([g in gs for gs in lists])
        win, wout = w[mask].sum(), w[~mask].sum()
        if freq[g] < least or not win > 0 or not wout > 0 or not variance > 0:
            continue
        gap = w[mask] @ coords[mask] / win - w[~mask] @ coords[~mask] / wout
        share = win / total
        scores.append((-share * (1.0 - share) * float(gap @ gap) / variance, g))  # between-group share
    return [g for _, g in sorted(scores)[:n]]


def _assign_genres(lists, highlight):
    """Per item: its highlighted genre with the highest lift (the rarest in the catalogue; ties by
    highlight order), or None."""
    freq = _genre_frequency(lists)
    rank = {g: j for j, g in enumerate(highlight)}
    out = []
    for gs in lists:
        mine = [g for g in gs if g in rank]
        out.append(min(mine, key=lambda g: (freq[g], rank[g])) if mine else None)
    return out


def _renderer(fig):
    """Draw the figure (settling its layout) and return its renderer."""
    from matplotlib.backend_bases import FigureCanvasBase

    if type(fig.canvas) is FigureCanvasBase:  # no backend chosen for this figure: use Agg
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _overlap(a, b):
    """Boxes (x0, y0, x1, y1) intersect (touching edges do not count)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _box_distance(box, x, y):
    """Distance from the point (x, y) to the box (x0, y0, x1, y1) (0 inside)."""
    return math.hypot(max(box[0] - x, 0.0, x - box[2]), max(box[1] - y, 0.0, y - box[3]))


def _text_box(text, renderer):
    from matplotlib.text import Text

    bb = Text.get_window_extent(text, renderer)  # the text only (an Annotation adds its arrow)
    return (bb.x0, bb.y0, bb.x1, bb.y1)


def _place_labels(fig, ax, coords, pool, texts, sizes, n_labels):
    """Greedy label placement in display coordinates (see factor_map): (Annotations, their positions in pool)."""
    from matplotlib import patheffects

    renderer = _renderer(fig)
    px = fig.dpi / 72.0  # pixels per point
    frame = ax.get_window_extent(renderer)
    inner = (frame.x0 + 2, frame.y0 + 2, frame.x1 - 2, frame.y1 - 2)
    anchors = ax.transData.transform(coords[pool])
    radii = np.sqrt(sizes[pool] / math.pi) * px + 1.5  # marker radius in pixels
    angles = np.deg2rad([0, 45, -45, 90, -90, 135, -135, 180, 22.5, -22.5, 157.5, -157.5, 67.5, -67.5,
                         112.5, -112.5])
    gaps = (2.0, 8.0, 16.0, 28.0, 44.0, 64.0)
    min_sep = 2.2 * _LABEL_FONTSIZE * px  # labelled points at least this far apart (pixels)
    placed_boxes, kept_anchors, kept, labels = [], [], [], []
    # rings of the candidates that may be labelled: labels avoid covering them
    ring_boxes = [(x - r, y - r, x + r, y + r) for (x, y), r in zip(anchors, radii)]
    halo = [patheffects.withStroke(linewidth=2.2, foreground="white")]
    for j, (item, text) in enumerate(zip(pool.tolist(), texts)):
        if len(kept) >= n_labels:
            break
        x, y = anchors[j]
        if not (frame.x0 <= x <= frame.x1 and frame.y0 <= y <= frame.y1):
            continue
        if any(math.hypot(x - a, y - b) < min_sep for a, b in kept_anchors):
            continue
        if any(_overlap(ring_boxes[j], b) for b in placed_boxes):  # its point is under a label
            continue
        if any(_box_distance(b, x, y) <= _box_distance(b, *kept_anchors[k]) for k, b in enumerate(placed_boxes)):
            continue  # a placed label would read as this point's
        t = ax.annotate(text, (coords[item, 0], coords[item, 1]), xytext=(0, 0), textcoords="offset pixels",
                        fontsize=_LABEL_FONTSIZE, ha="left", va="bottom", zorder=5, path_effects=halo)
        t.set_in_layout(False)
        x0, y0, x1, y1 = _text_box(t, renderer)
        w, h = x1 - x0, y1 - y0
        # the kept rings (and this item's own) must stay uncovered; nearer rings of later
        # candidates are avoided when possible, tried in a second round otherwise
        must = [ring_boxes[k] for k in kept] + [ring_boxes[j]]
        others = [ring_boxes[k] for k in range(len(pool)) if k != j and k not in kept]
        spot = None
        kept_xy = [tuple(anchors[k]) for k in kept]
        rest_xy = [tuple(anchors[k]) for k in range(len(pool)) if k != j and k not in kept]
        for avoid, near in ((must + others, kept_xy + rest_xy), (must, kept_xy)):
            for gap in gaps:
                r = radii[j] + gap
                for a in angles:
                    c, s = math.cos(a), math.sin(a)
                    bx = x + r * c - w * (1 - c) / 2
                    by = y + r * s - h * (1 - s) / 2
                    box = (bx, by, bx + w, by + h)
                    if not (box[0] >= inner[0] and box[1] >= inner[1] and box[2] <= inner[2] and box[3] <= inner[3]):
                        continue
                    pad = (box[0] - 1.5, box[1] - 1.5, box[2] + 1.5, box[3] + 1.5)
                    if any(_overlap(pad, b) for b in placed_boxes) or any(_overlap(box, b) for b in avoid):
                        continue
                    # the label must be nearer its own point than any other labelled point
                    own = _box_distance(box, x, y)
                    if any(_box_distance(box, a, b) <= own for a, b in near):
                        continue
                    spot = (box, gap)
                    break
                if spot:
                    break
            if spot:
                break
        if spot is None:
            t.remove()
            continue
        box, gap = spot
        t.remove()
        leader = None
        if gap >= 8.0:  # moved away from its point: a leader line from the text to the point's edge
            leader = dict(arrowstyle="-", color="0.35", linewidth=0.6, shrinkA=1.0, shrinkB=radii[j] / px)
        t = ax.annotate(text, (coords[item, 0], coords[item, 1]), xytext=(box[0] - x, box[1] - y),
                        textcoords="offset pixels", fontsize=_LABEL_FONTSIZE, ha="left", va="bottom",
                        zorder=5, path_effects=halo, arrowprops=leader)
        t.set_in_layout(False)
        labels.append(t)
        placed_boxes.append(box)
        kept_anchors.append((x, y))
        kept.append(j)
    # after drawing: measure again and drop any label that collides with an earlier one
    renderer = _renderer(fig)
    boxes, final = [], []
    for t, j in zip(labels, kept):
        box = _text_box(t, renderer)
        if any(_overlap(box, b) for b in boxes):
            t.remove()
        else:
            boxes.append(box)
            final.append((t, j))
    return [t for t, _ in final], [j for _, j in final]


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


def _label_texts(info, raw_ids):
    titles = None
    if info is not None and "title" in info:
        titles = info.get(raw_ids, "title")
    return [_short_label(str(titles[j]).strip() if titles is not None and titles[j] is not None
                         and str(titles[j]).strip() else str(raw))
            for j, raw in enumerate(raw_ids.tolist())]


def _short_label(text):
    """At most _LABEL_CHARS characters; a trailing "(year)" is kept when the title is shortened."""
    if len(text) <= _LABEL_CHARS:
        return text
    body, year = text, ""
    if len(text) > 7 and text.endswith(")") and text[-6] == "(" and text[-5:-1].isdigit():
        body, year = text[:-7].rstrip(), " " + text[-6:]
    keep = _LABEL_CHARS - 1 - len(year)
    return body[:keep].rstrip(" -:,") + "\u2026" + year


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
