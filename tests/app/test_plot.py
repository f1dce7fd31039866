"""fastmf.plot: images of the expected size with drawn content, the drawn data checked against the
model, matplotlib missing, bad arguments."""

import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import fastmf
from fastmf import plot
from fastmf.plot import MISSING_MESSAGE, MatplotlibMissingError, factor_coordinates, factor_map, learning_curve

mpl = pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.legend import Legend  # noqa: E402
from matplotlib.text import Annotation, Text  # noqa: E402


# ---------------------------------------------------------------------- fixtures and helpers
@pytest.fixture(scope="module")
def data():
    return fastmf.make_ratings(200, 100, 5000, seed=0)


@pytest.fixture(scope="module")
def model(data):
    """Fitted with an eval set (history has eval_rmse)."""
    train, test = fastmf.split.random_split(data, test_size=0.2, random_state=0)
    return fastmf.MatrixFactorization(n_factors=4, n_epochs=3, random_state=0).fit(train, eval_set=test)


@pytest.fixture(scope="module")
def model_no_eval(data):
    return fastmf.MatrixFactorization(n_factors=4, n_epochs=3, random_state=0).fit(data)


def png_size(path):
    """(width, height) from the PNG signature and IHDR chunk."""
    head = Path(path).read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def ink(path):
    """(fraction of pixels that are not white, number of distinct RGB colours) of a PNG."""
    import matplotlib.image

    img = matplotlib.image.imread(str(path))
    rgb = np.round(img[..., :3] * 255).astype(np.int64)
    nonwhite = np.any(rgb < 245, axis=-1).mean()
    colours = np.unique(rgb.reshape(-1, 3) @ np.array([1 << 16, 1 << 8, 1])).size
    return img.shape[1], img.shape[0], nonwhite, colours


def the_axes(fig):
    (ax,) = fig.axes
    return ax


# ---------------------------------------------------------------------- learning curve
def test_learning_curve_png(model, tmp_path):
    path = tmp_path / "curves.png"
    fig = learning_curve(model, path, figsize=(5, 3), dpi=80)
    assert isinstance(fig, Figure)
    assert png_size(path) == (400, 240)
    w, h, nonwhite, colours = ink(path)
    assert (w, h) == (400, 240)
    assert nonwhite > 0.03 and colours > 20  # axes, two curves, legend, text


def lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_learning_curve_draws_the_history(model):
    ax = the_axes(learning_curve(model))  # train_rmse, eval_rmse, eval_mae: one panel of errors
    hist = model.history_
    lines = lines_by_label(ax)
    epochs = [e["epoch"] for e in hist]
    for label, key in (("train RMSE", "train_rmse"), ("eval RMSE", "eval_rmse"), ("eval MAE", "eval_mae")):
        np.testing.assert_array_equal(lines[label].get_xdata(), epochs)
        np.testing.assert_array_equal(lines[label].get_ydata(), [e[key] for e in hist])
    stars = []
    for name, key in (("RMSE", "eval_rmse"), ("MAE", "eval_mae")):
        best = min(range(len(hist)), key=lambda j: hist[j][key])
        (star,) = [line for label, line in lines.items() if label.startswith(f"best eval {name}:")]
        assert star.get_label() == f"best eval {name}: epoch {hist[best]['epoch']} ({hist[best][key]:.4f})"
        assert list(star.get_xdata()) == [hist[best]["epoch"]] and list(star.get_ydata()) == [hist[best][key]]
        stars.append(star.get_label())
    assert ax.get_title() == "Learning curve: MatrixFactorization"
    assert ax.get_ylabel() == "RMSE / MAE" and ax.get_xlabel() == "epoch"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train RMSE", "eval RMSE", "eval MAE"] + stars
    assert not [label for label in lines if label.startswith("kept")]  # no early stopping: nothing kept


def test_learning_curve_marks_the_first_best_epoch_of_a_history_list(tmp_path):
    hist = [{"epoch": 1, "train_rmse": 1.2, "eval_rmse": 1.1}, {"epoch": 2, "train_rmse": 1.0, "eval_rmse": 0.95},
            {"epoch": 3, "train_rmse": 0.9, "eval_rmse": 0.95}, {"epoch": 4, "train_rmse": 0.8, "eval_rmse": 0.97}]
    ax = the_axes(learning_curve(hist, title="mine"))
    (star,) = [line for line in ax.get_lines() if line.get_label().startswith("best eval")]
    assert star.get_label() == "best eval RMSE: epoch 2 (0.9500)"
    assert ax.get_title() == "mine"
    # without "epoch" keys the position counts from 1
    ax = the_axes(learning_curve([{"train_rmse": 1.0}, {"train_rmse": 0.5}]))
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [1, 2])


def ials_history():
    """As ImplicitALS records it with calculate_loss and a ranking eval set (made up numbers)."""
    ndcg = [0.20, 0.31, 0.36, 0.38, 0.37, 0.38]
    prec = [0.15, 0.22, 0.26, 0.27, 0.27, 0.26]
    loss = [900.0, 610.0, 540.0, 520.0, 515.0, 513.0]
    return [{"epoch": e + 1, "train_loss": loss[e], "eval_ndcg@10": ndcg[e], "eval_precision@10": prec[e],
             "seconds": 0.01} for e in range(6)]


def test_learning_curve_of_a_ranking_history_has_a_loss_and_a_ranking_panel(tmp_path):
    hist = ials_history()
    path = tmp_path / "ials.png"
    fig = learning_curve(hist, path)
    loss_ax, rank_ax = fig.axes
    # 4.0 in for the first panel, 2.6 more for the second; 3.4 in wider for the ranking panel's legend
    # of five entries (two curves, their best epochs... ), which goes beside the panel, not over it
    assert png_size(path) == (980, 660)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    rank_box = rank_ax.get_window_extent(renderer)
    legend_box = rank_ax.get_legend().get_window_extent(renderer)
    assert legend_box.x0 >= rank_box.x1 and legend_box.x1 <= fig.bbox.x1
    assert loss_ax.get_legend().get_window_extent(renderer).x1 <= loss_ax.get_window_extent(renderer).x1
    assert loss_ax.get_ylabel() == "loss" and rank_ax.get_ylabel() == "NDCG@10 / precision@10"
    assert loss_ax.get_title() == "Learning curve" and rank_ax.get_xlabel() == "epoch"
    assert loss_ax.get_shared_x_axes().joined(loss_ax, rank_ax)
    lines = lines_by_label(loss_ax)
    assert list(lines) == ["train loss"]  # no eval loss: nothing starred; "seconds" is not drawn
    np.testing.assert_array_equal(lines["train loss"].get_ydata(), [e["train_loss"] for e in hist])
    lines = lines_by_label(rank_ax)
    np.testing.assert_array_equal(lines["eval NDCG@10"].get_ydata(), [e["eval_ndcg@10"] for e in hist])
    np.testing.assert_array_equal(lines["eval precision@10"].get_ydata(), [e["eval_precision@10"] for e in hist])
    assert lines["eval NDCG@10"].get_linestyle() != lines["eval precision@10"].get_linestyle()
    # ranking metrics: higher is better, the first of ties wins
    assert "best eval NDCG@10: epoch 4 (0.3800)" in lines
    assert "best eval precision@10: epoch 4 (0.2700)" in lines
    assert ink(path)[2] > 0.03


def test_learning_curve_panels_in_family_order_and_the_kept_epoch(tmp_path):
    hist = [{"epoch": e, "eval_ndcg@10": 0.1 * e, "train_loss": 10.0 - e, "eval_rmse": 1.0 + abs(e - 2) / 10,
             "train_rmse": 1.0 - e / 10, "lr": 0.01, "note": "warm-up" if e == 1 else ""} for e in range(1, 5)]
    fig = learning_curve(hist, best_epoch=2)
    assert [a.get_ylabel() for a in fig.axes] == ["RMSE", "loss", "NDCG@10", "lr"]  # errors, loss, ranking, other
    for a in fig.axes:
        (kept,) = [line for line in a.get_lines() if line.get_label().startswith("kept")]
        assert kept.get_label() == "kept: epoch 2" and list(kept.get_xdata()) == [2, 2]
    assert not [line for line in fig.axes[3].get_lines() if line.get_label().startswith("best")]  # lr: no direction
    lines = lines_by_label(fig.axes[0])
    assert "best eval RMSE: epoch 2 (1.0000)" in lines
    # a model kept by early stopping marks its best_epoch_ by itself
    data = fastmf.make_ratings(150, 80, 4000, seed=3)
    train, test = fastmf.split.random_split(data, test_size=0.2, random_state=0)
    m = fastmf.MatrixFactorization(n_factors=8, n_epochs=60, lr=0.05, reg=0.0, random_state=0)
    m.fit(train, eval_set=test, early_stopping_rounds=2)
    assert m.best_epoch_ < len(m.history_)  # over-fits without regularisation, so it stopped early
    ax = the_axes(learning_curve(m))
    (kept,) = [line for line in ax.get_lines() if line.get_label().startswith("kept")]
    assert kept.get_label() == f"kept: epoch {m.best_epoch_}"
    best = min(m.history_, key=lambda e: e["eval_rmse"])
    assert best["epoch"] == m.best_epoch_


def test_learning_curve_gaps_and_keys_without_prefix():
    # eval every second epoch; an unprefixed numeric key is drawn under its own name
    hist = [{"epoch": e, "loss": 5.0 - e, **({"eval_rmse": 1.0 - e / 100} if e % 2 == 0 else {})} for e in range(1, 6)]
    fig = learning_curve(hist)
    err, loss = fig.axes
    y = lines_by_label(err)["eval RMSE"].get_ydata()
    np.testing.assert_array_equal(np.isnan(y), [True, False, True, False, True])
    assert lines_by_label(err)["eval RMSE"].get_marker() == "o"  # isolated points stay visible
    assert list(lines_by_label(loss)) == ["loss"]


def test_learning_curve_of_fitted_implicit_als():
    data = fastmf.make_ratings(100, 60, 2000, seed=1)
    m = fastmf.ImplicitALS(n_factors=4, n_epochs=3, calculate_loss=True, random_state=0).fit(data)
    fig = learning_curve(m)
    (ax,) = fig.axes
    assert ax.get_ylabel() == "loss" and ax.get_title() == "Learning curve: ImplicitALS"
    (line,) = ax.get_lines()
    key = "train_loss" if "train_loss" in m.history_[0] else "loss"
    np.testing.assert_array_equal(line.get_ydata(), [e[key] for e in m.history_])


def test_learning_curve_without_eval_history(model_no_eval, tmp_path):
    assert all("eval_rmse" not in e for e in model_no_eval.history_)
    path = tmp_path / "train_only.png"
    ax = the_axes(learning_curve(model_no_eval, path))
    assert [line.get_label() for line in ax.get_lines()] == ["train RMSE"]
    assert png_size(path) == (640, 400)  # default figsize (6.4, 4.0) at 100 dpi
    assert ink(path)[2] > 0.03


def test_learning_curve_into_given_axes_and_other_formats(model, tmp_path):
    fig = Figure(figsize=(4, 2), dpi=50)
    axes = fig.subplots(1, 2)
    out = learning_curve(model, tmp_path / "pair.png", ax=axes[1])
    # train RMSE, eval RMSE, eval MAE and the two stars
    assert out is fig and len(axes[1].get_lines()) == 5 and len(axes[0].get_lines()) == 0
    assert png_size(tmp_path / "pair.png") == (200, 100)
    # two panels into two given axes; the wrong number is refused
    fig2 = Figure()
    two = fig2.subplots(2, 1)
    assert learning_curve(ials_history(), ax=two) is fig2 and all(a.get_lines() for a in two)
    with pytest.raises(ValueError, match=r"this history has 2 metric panels \(loss, ranking\); pass ax as a "
                                         r"sequence of 2 Axes, got 1"):
        learning_curve(ials_history(), ax=axes[0])
    with pytest.raises(ValueError, match="ax must be a matplotlib Axes, got str"):
        learning_curve(ials_history(), ax=[axes[0], "x"])
    learning_curve(model, str(tmp_path / "curves.svg"))
    assert b"<svg" in (tmp_path / "curves.svg").read_bytes()[:400]
    learning_curve(model, tmp_path / "noext")  # no extension: PNG at exactly that path
    assert png_size(tmp_path / "noext") == (980, 400)  # 6.4 in + 3.4 for the legend of 5 entries beside it


@pytest.mark.parametrize("arg, match", [
    ([], "the training history is empty"),
    ([{"epoch": 1}], r"the training history has no metric to draw \(keys: \['epoch'\]\)"),
    ([{"epoch": 1, "seconds": 0.3, "note": "x"}, {"epoch": 2}],
     r"no metric to draw \(keys: \['epoch', 'note', 'seconds'\]\); its entries need numbers such as 'train_rmse'"),
    ([{"train_rmse": 1.0}, "x"], r"history\[1\] must be a dict of per-epoch numbers \(train_<metric>, "
                                 r"eval_<metric>\), got str"),
    ([{"train_rmse": "1.0"}], r"history\[0\]\['train_rmse'\] must be a number, got '1.0'"),
    ([{"train_loss": 1.0}, {"eval_ndcg@10": None}], r"history\[1\]\['eval_ndcg@10'\] must be a number, got None"),
    ([{"epoch": "1", "train_rmse": 1.0}], r"history\[0\]\['epoch'\] must be a number, got '1'"),
    (fastmf.MatrixFactorization(), "this MatrixFactorization is not fitted yet"),
    (object(), "object has no history_"),
])
def test_learning_curve_bad_history(arg, match):
    with pytest.raises(ValueError, match=match):
        learning_curve(arg)


def test_learning_curve_bad_arguments(model, data, tmp_path):
    with pytest.raises(ValueError, match="Biases has no history_"):
        learning_curve(fastmf.Biases().fit(data))
    with pytest.raises(ValueError, match=r"figsize must be \(width, height\) in inches"):
        learning_curve(model, figsize=(0, 3))
    with pytest.raises(ValueError, match="figsize"):
        learning_curve(model, figsize=5)
    with pytest.raises(ValueError, match="dpi must be a positive number, got -1"):
        learning_curve(model, dpi=-1)
    with pytest.raises(ValueError, match="ax must be a matplotlib Axes, got str"):
        learning_curve(model, ax="left")
    with pytest.raises(ValueError, match="best_epoch must be a number"):
        learning_curve(model, best_epoch="last")
    with pytest.raises(ValueError, match=r"unknown image format 'txt'; use one of .*png"):
        learning_curve(model, tmp_path / "curves.txt")
    assert not (tmp_path / "curves.txt").exists()


# ---------------------------------------------------------------------- factor map
def pca_oracle(F):
    """Principal-component scores from the eigenvectors of the covariance (not an SVD)."""
    X = F - F.mean(axis=0)
    w, V = np.linalg.eigh(X.T @ X)
    V = V[:, np.argsort(w)[::-1][:2]]
    return X @ V


def test_factor_coordinates_pca_and_dims(model):
    F = model.item_factors_.astype(np.float64)
    got = factor_coordinates(model)
    ref = pca_oracle(F)
    assert got.shape == (100, 2)
    for c in range(2):  # equal up to the sign of each component ...
        sign = np.sign(got[:, c] @ ref[:, c])
        np.testing.assert_allclose(got[:, c], sign * ref[:, c], rtol=1e-9, atol=1e-12)
    # ... which is fixed: the largest loading of each component is positive
    X = F - F.mean(axis=0)
    loadings = np.linalg.lstsq(X, got, rcond=None)[0]  # X @ loadings = coords
    for c in range(2):
        assert loadings[np.argmax(np.abs(loadings[:, c])), c] > 0
    # the components are uncorrelated and ordered by variance
    assert abs(got[:, 0] @ got[:, 1]) < 1e-10 * (got ** 2).sum()
    assert got[:, 0].var() >= got[:, 1].var()
    np.testing.assert_array_equal(factor_coordinates(model, dims=(3, 1)), F[:, [3, 1]])


@pytest.mark.parametrize("seed", range(6))
def test_factor_coordinates_orientation_is_fixed(seed):
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(30, 5)) * [3.0, 2.0, 1.0, 0.5, 0.2] + rng.normal(size=5)
    stub = SimpleNamespace(item_factors_=F, item_map_=fastmf.IdMap(np.arange(30)))
    got = factor_coordinates(stub)
    ref = pca_oracle(F)
    X = F - F.mean(axis=0)
    for c in range(2):
        loading = np.linalg.lstsq(X, got[:, c], rcond=None)[0]
        assert loading[np.argmax(np.abs(loading))] > 0
        np.testing.assert_allclose(np.abs(got[:, c]), np.abs(ref[:, c]), rtol=1e-9)
    # the loadings keep their orientation when the factors are negated, so the map is mirrored
    stub.item_factors_ = -F
    np.testing.assert_allclose(factor_coordinates(stub), -got, rtol=1e-9, atol=1e-12)


def labelled_items(ax, coords):
    """Item indices of the labels (Annotations), found from their anchor points, in drawing order."""
    out = []
    for t in ax.texts:
        if isinstance(t, Annotation):
            (i,) = np.flatnonzero(np.all(np.isclose(coords, t.xy, rtol=0, atol=1e-12), axis=1))[:1]
            out.append(int(i))
    return out


def text_box(t, renderer):
    return Text.get_window_extent(t, renderer)  # the text alone (an Annotation adds its leader line)


def overlaps(a, b):
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_factor_map_draws_points_labels_and_genre_colours(model):
    fig = factor_map(model, n_labels=7)
    ax = the_axes(fig)
    points, rings = ax.collections
    coords = factor_coordinates(model)
    # every item is drawn once, at its coordinates
    offsets = points.get_offsets()
    np.testing.assert_allclose(offsets[np.lexsort(offsets.T)], coords[np.lexsort(coords.T)])
    counts = model.item_counts_
    # labels: taken in order of the number of ratings (ties by lower index), starting with the most
    # rated; at most 7; each ringed and labelled with its title
    by_count = np.argsort(-counts, kind="stable").tolist()
    items = labelled_items(ax, coords)
    assert 4 <= len(items) <= 7 and items[0] == by_count[0]
    assert [by_count.index(i) for i in items] == sorted(by_count.index(i) for i in items)
    np.testing.assert_allclose(rings.get_offsets(), coords[items])
    labels = [t for t in ax.texts if isinstance(t, Annotation)]
    assert [t.get_text() for t in labels] == [f"Item {i}" for i in model.item_map_.ids[items]]
    # point area grows with the number of ratings
    order = np.lexsort(coords.T)
    sizes = points.get_sizes()[np.lexsort(offsets.T)]
    assert np.all(np.diff(sizes[np.argsort(counts[order], kind="stable")]) >= 0)
    # legend: the highlighted genres, then grey for the rest; each point has the colour of its
    # highlighted genre with the fewest items in the catalogue (ties by legend order)
    genres = [g.split("|") for g in model.item_info_.get(model.item_map_.ids, "genres")]
    legend = ax.get_legend()
    names = [t.get_text() for t in legend.get_texts()]
    assert legend.get_title().get_text() == "genre"
    highlight = [n for n in names if n != "other genres"]
    assert 1 <= len(highlight) <= 6 and len(set(highlight)) == len(highlight)
    colour_of = {t.get_text(): tuple(h.get_color()[:3]) for t, h in zip(legend.get_texts(), legend.legend_handles)}
    assert len(set(colour_of.values())) == len(names)
    freq = {g: sum(g in gs for gs in genres) for g in highlight}
    drawn = {tuple(np.round(o, 12)): tuple(c[:3]) for o, c in zip(offsets, points.get_facecolors())}
    for i in range(100):
        mine = [g for g in genres[i] if g in highlight]
        expect = min(mine, key=lambda g: (freq[g], highlight.index(g))) if mine else "other genres"
        assert drawn[tuple(np.round(coords[i], 12))] == pytest.approx(colour_of[expect])


def genre_stub(n_a=120, n_b=60, n_rest=120, tiny=2, seed=0, titles=None, counts=None):
    """300 items on 3 factors (PCA axes = the factors): genre A at x=+2, B at x=-2, C on half the
    items wherever they are, D on `tiny` far-away items; item 0 is A|B, item 1 is A|C."""
    rng = np.random.default_rng(seed)
    n = n_a + n_b + n_rest
    x = np.r_[np.full(n_a, 2.0), np.full(n_b, -2.0), np.zeros(n_rest)] + rng.normal(0, 0.3, n)
    F = np.c_[x, rng.normal(0, 1.0, n), rng.normal(0, 0.05, n)]
    genres = [["A"]] * n_a + [["B"]] * n_b + [[]] * n_rest
    genres = [list(g) + (["C"] if rng.random() < 0.5 else []) for g in genres]
    genres[0] = ["A", "B"]
    genres[1] = ["A", "C"]
    for j in range(tiny):
        F[n - 1 - j, 1] = 6.0
        genres[n - 1 - j] = ["D"]
    ids = np.arange(n) + 1000
    info = fastmf.data.Metadata(ids, {"title": np.array(titles if titles is not None else [f"T{i}" for i in ids]),
                                      "genres": np.array(["|".join(g) for g in genres])})
    stub = SimpleNamespace(item_factors_=F, item_map_=fastmf.IdMap(ids), item_info_=info,
                           item_counts_=np.ones(n) if counts is None else counts)
    return stub, genres


def colours_by_item(ax, coords):
    points = [c for c in ax.collections if len(c.get_offsets()) and c.get_facecolors().shape[0] > 1][0]
    drawn = {tuple(np.round(o, 12)): tuple(c[:3]) for o, c in zip(points.get_offsets(), points.get_facecolors())}
    legend = ax.get_legend()
    name_of = {tuple(h.get_color()[:3]): t.get_text() for t, h in zip(legend.get_texts(), legend.legend_handles)}
    return [name_of.get(drawn.get(tuple(np.round(c, 12)))) for c in coords]


def test_factor_map_genre_choice_and_colour_rule():
    stub, genres = genre_stub()
    coords = factor_coordinates(stub)
    # automatic choice: A (40% of the items, far from the rest) explains more of the map than B
    # (20%); C lies everywhere and D has fewer than 1% of the items, however far away they are
    ax = the_axes(factor_map(stub, n_genres=2, n_labels=0))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["A", "B", "other genres"]
    got = colours_by_item(ax, coords)
    assert got[0] == "B"  # A|B: B has fewer items (60 vs 120), the higher lift
    assert got[1] == "A" and got[2] == "A"
    assert got[-1] == "other genres" and got[-3] == ("other genres")  # D; C or no genre
    assert got[130] == "B"
    # with a third highlighted genre C (about 150 items): A|C is A (A has fewer items than C)
    ax = the_axes(factor_map(stub, n_genres=3, n_labels=0))
    names = [t.get_text() for t in ax.get_legend().get_texts()]
    assert names[:2] == ["A", "B"] and len(names) == 4
    # the genres given by name, in this legend order; every item has its rarest chosen genre
    ax = the_axes(factor_map(stub, genres=["C", "D", "A"], n_labels=0))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["C", "D", "A", "other genres"]
    got = colours_by_item(ax, coords)
    freq = {g: sum(g in gs for gs in genres) for g in "ABCD"}
    assert freq["D"] < freq["A"] < freq["C"]
    for i, gs in enumerate(genres):
        mine = [g for g in gs if g in ("C", "D", "A")]
        assert got[i] == (min(mine, key=lambda g: freq[g]) if mine else "other genres")
    with pytest.raises(ValueError, match=r"genres: no item has the genre 'Z' \(genres in the data: A, B, C, D\)"):
        factor_map(stub, genres=["A", "Z"])


def test_factor_map_lift_ties_go_to_the_legend_order():
    stub, genres = genre_stub(n_a=61, n_b=60)  # item 0 (an A) is also B: 61 each
    coords = factor_coordinates(stub)
    ax = the_axes(factor_map(stub, genres=["B", "A"], n_labels=0))
    assert sum("A" in g for g in genres) == sum("B" in g for g in genres)
    assert colours_by_item(ax, coords)[0] == "B"
    ax = the_axes(factor_map(stub, genres=["A", "B"], n_labels=0))
    assert colours_by_item(ax, coords)[0] == "A"


@pytest.mark.parametrize("seed", range(3))
def test_factor_map_labels_never_overlap_and_legends_sit_outside(seed, tmp_path):
    """A crowded map: 300 items, long titles, 40 labels wanted; measured in the saved figure."""
    rng = np.random.default_rng(seed)
    titles = [f"A rather long film title number {i} (19{i % 100:02d})" for i in range(300)]
    stub, _ = genre_stub(seed=seed, titles=titles, counts=rng.integers(1, 500, 300).astype(float))
    stub.item_factors_ = stub.item_factors_ * 0.1  # a clump
    path = tmp_path / "crowded.png"
    fig = factor_map(stub, path, n_labels=40, figsize=(7, 5), dpi=80)
    ax = the_axes(fig)
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    labels = [t for t in ax.texts if isinstance(t, Annotation)]
    assert 5 <= len(labels) <= 40
    boxes = [text_box(t, renderer) for t in labels]
    for a in range(len(boxes)):
        assert frame.x0 <= boxes[a].x0 and boxes[a].x1 <= frame.x1
        assert frame.y0 <= boxes[a].y0 and boxes[a].y1 <= frame.y1
        for b in range(a):
            assert not overlaps(boxes[a], boxes[b]), (labels[a].get_text(), labels[b].get_text())
    # no label covers a labelled point (its ring), and each is nearer its own point than any other
    coords = factor_coordinates(stub)
    items = labelled_items(ax, coords)
    anchors = ax.transData.transform(coords[items])
    rings = ax.collections[-1]
    radii = np.sqrt(rings.get_sizes() / np.pi) * fig.dpi / 72.0
    for box, (x, y) in zip(boxes, anchors):
        dist = [np.hypot(max(box.x0 - u, 0, u - box.x1), max(box.y0 - v, 0, v - box.y1)) for u, v in anchors]
        assert np.argmin(dist) == [tuple(a) for a in anchors].index((x, y))
        for (u, v), r in zip(anchors, np.broadcast_to(radii, len(anchors))):
            assert not (box.x0 < u + r - 1.5 and u - r + 1.5 < box.x1 and box.y0 < v + r - 1.5 and v - r + 1.5 < box.y1)
    # the legends (genres; point sizes) lie outside the axes and inside the figure
    legends = [ax.get_legend()] + [a for a in ax.artists if isinstance(a, Legend)]
    assert len(legends) == 2
    for leg in legends:
        box = leg.get_window_extent(renderer)
        assert not overlaps(box, frame) and box.x0 >= frame.x1
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1
    # the saved image is this figure (same size), so the boxes measured are those in the file
    assert png_size(path) == (560, 400)


def test_factor_map_large_catalogue_density_and_most_rated_points():
    rng = np.random.default_rng(0)
    n = 3000
    counts = np.floor(rng.pareto(1.2, n) * 5 + 1)
    stub = SimpleNamespace(item_factors_=rng.normal(size=(n, 4)) * [2, 1, 0.5, 0.1],
                           item_map_=fastmf.IdMap(np.arange(n)), item_counts_=counts)
    ax = the_axes(factor_map(stub, n_labels=5))
    density, points, rings = ax.collections
    assert density.get_array().sum() == n  # every item is in the density background
    coords = factor_coordinates(stub)
    top = np.argsort(-counts, kind="stable")[:1000]
    got = points.get_offsets()
    np.testing.assert_allclose(got[np.lexsort(got.T)], coords[top][np.lexsort(coords[top].T)])
    assert set(labelled_items(ax, coords)) <= set(top.tolist())
    # the size legend says what is drawn, and both legends fit in the figure, outside the axes
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (sizes,) = [a for a in ax.artists if isinstance(a, Legend)]
    assert sizes.get_title().get_text().split() == "ratings (points: the 1,000 most rated; shading: all 3,000 items)".split()
    frame = ax.get_window_extent(renderer)
    for leg in (sizes, ax.get_legend()):
        if leg is None:
            continue
        box = leg.get_window_extent(renderer)
        assert box.x0 >= frame.x1 and fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1
        assert fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1


def test_short_labels_keep_the_year():
    assert plot._short_label("Star Wars: Episode V - The Empire Strikes Back (1980)") == \
        "Star Wars: Episode V - The\u2026 (1980)"
    assert plot._short_label("Toy Story (1995)") == "Toy Story (1995)"
    assert plot._short_label("x" * 40) == "x" * 33 + "\u2026"
    assert all(len(plot._short_label(t)) <= 34 for t in ("a" * 50 + " (2001)", "b" * 34, "c" * 35))


def test_factor_map_png(model, tmp_path):
    path = tmp_path / "map.png"
    fig = factor_map(model, path, figsize=(6, 5), dpi=70)
    assert isinstance(fig, Figure)
    assert png_size(path) == (420, 350)
    w, h, nonwhite, colours = ink(path)
    assert (w, h) == (420, 350)
    assert nonwhite > 0.05 and colours > 50  # 100 points in several genre colours, labels, legend


def test_factor_map_dims_option(model, tmp_path):
    path = tmp_path / "dims.png"
    ax = the_axes(factor_map(model, path, dims=(2, 0), n_labels=0, color_by=None))
    (points,) = ax.collections
    F = model.item_factors_.astype(np.float64)
    offsets = points.get_offsets()
    np.testing.assert_array_equal(offsets[np.lexsort(offsets.T)], F[:, [2, 0]][np.lexsort(F[:, [2, 0]].T)])
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("factor 2", "factor 0")
    assert ax.get_title() == "Item factor map: factors 2 and 0"
    assert ax.get_legend() is None and not [t for t in ax.texts if isinstance(t, Annotation)]
    assert len(np.unique(points.get_facecolors(), axis=0)) == 1  # color_by=None: one colour
    assert png_size(path) == (800, 650) and ink(path)[2] > 0.02  # default figsize (8.0, 6.5)


def test_factor_map_without_metadata_labels_raw_ids(data):
    users, items, ratings, _ = data.to_arrays()
    names = np.char.add("m", items.astype(str))  # string raw ids, no item_info
    ds = fastmf.Ratings.from_arrays(users, names, ratings)
    assert ds.item_info is None
    m = fastmf.MatrixFactorization(n_factors=3, n_epochs=2, random_state=0).fit(ds)
    ax = the_axes(factor_map(m, n_labels=5))
    top = np.argsort(-m.item_counts_, kind="stable")[:5]
    assert [t.get_text() for t in ax.texts if isinstance(t, Annotation)] == m.item_map_.ids[top].tolist()
    assert ax.get_legend() is None
    assert len(np.unique(ax.collections[0].get_facecolors(), axis=0)) == 1
    assert ax.get_xlabel().startswith("PC1 (") and ax.get_ylabel().startswith("PC2 (")


@pytest.mark.parametrize("kwargs, match", [
    (dict(dims=(0, 4)), r"dims: factor 4 is outside \[0, 4\) \(the model has 4 factors\)"),
    (dict(dims=(-1, 2)), r"dims: factor -1 is outside \[0, 4\)"),
    (dict(dims=(1, 1)), r"dims must name two different factors, got \(1, 1\)"),
    (dict(dims=(0, 1, 2)), r"dims must be a pair of factor indices \(a, b\), got \(0, 1, 2\)"),
    (dict(dims=(0, 1.0)), "dims must be a pair of factor indices"),
    (dict(dims=(True, 0)), "dims must be a pair of factor indices"),
    (dict(dims=2), "dims must be a pair of factor indices"),
    (dict(n_labels=-1), "n_labels must be an int >= 0, got -1"),
    (dict(n_labels=2.5), "n_labels must be an int >= 0, got 2.5"),
    (dict(color_by="title"), "color_by must be 'genre' or None, got 'title'"),
    (dict(n_genres=0), r"n_genres must be an int in \[1, 9\], got 0"),
    (dict(n_genres=10), r"n_genres must be an int in \[1, 9\], got 10"),
    (dict(genres="Drama"), "genres must be a sequence of genre names, got 'Drama'"),
    (dict(genres=[]), "genres: give 1 to 9 genre names, got 0"),
    (dict(genres=["Drama", 3]), "genres must be a sequence of genre names"),
    (dict(figsize=(8, -1)), "figsize must be"),
    (dict(dpi=0), "dpi must be a positive number, got 0"),
    (dict(ax=42), "ax must be a matplotlib Axes, got int"),
    (dict(path="map.jpeg2000"), "unknown image format 'jpeg2000'"),
])
def test_factor_map_bad_arguments(model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        factor_map(model, **kwargs)


def test_factor_map_bad_models(data):
    with pytest.raises(ValueError, match="this MatrixFactorization is not fitted yet"):
        factor_map(fastmf.MatrixFactorization())
    with pytest.raises(ValueError, match=r"Popularity has no item factors \(item_factors_\)"):
        factor_map(fastmf.Popularity().fit(data))
    one = fastmf.MatrixFactorization(n_factors=1, n_epochs=1, random_state=0).fit(data)
    with pytest.raises(ValueError, match="the principal components need at least 2 factors, the model has 1"):
        factor_map(one)


# ---------------------------------------------------------------------- without matplotlib
def test_missing_matplotlib_message(monkeypatch, model):
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for call in (lambda: learning_curve(model), lambda: factor_map(model)):
        with pytest.raises(MatplotlibMissingError) as info:
            call()
        assert str(info.value) == "fastmf.plot needs matplotlib: pip install 'fastmf[plot]'"
        assert isinstance(info.value, ImportError)
    assert MISSING_MESSAGE == "fastmf.plot needs matplotlib: pip install 'fastmf[plot]'"


def test_no_pyplot_and_no_import_until_called(tmp_path):
    """Importing fastmf.plot loads no matplotlib; plotting never imports pyplot (the user's backend
    and pyplot's figure list are untouched)."""
    code = f"""
import sys
import fastmf.plot
assert "matplotlib" not in sys.modules
fig = fastmf.plot.learning_curve([{{"train_rmse": 1.0}}, {{"train_rmse": 0.9}}], {str(tmp_path / "c.png")!r})
assert "matplotlib" in sys.modules and "matplotlib.pyplot" not in sys.modules
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert png_size(tmp_path / "c.png") == (640, 400)


def test_pyplot_backend_left_alone(model, tmp_path):
    import matplotlib

    before = matplotlib.get_backend()
    learning_curve(model, tmp_path / "a.png")
    assert matplotlib.get_backend() == before
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def test_plot_module_names():
    assert plot.__all__ == ["learning_curve", "factor_map", "factor_coordinates", "MatplotlibMissingError"]
