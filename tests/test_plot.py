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
from matplotlib.text import Annotation  # noqa: E402


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


def test_learning_curve_draws_the_history(model):
    ax = the_axes(learning_curve(model))
    hist = model.history_
    lines = {line.get_label(): line for line in ax.get_lines()}
    epochs = [e["epoch"] for e in hist]
    np.testing.assert_array_equal(lines["train RMSE"].get_xdata(), epochs)
    np.testing.assert_array_equal(lines["train RMSE"].get_ydata(), [e["train_rmse"] for e in hist])
    np.testing.assert_array_equal(lines["eval RMSE"].get_ydata(), [e["eval_rmse"] for e in hist])
    best = min(range(len(hist)), key=lambda j: hist[j]["eval_rmse"])
    (star,) = [line for label, line in lines.items() if label.startswith("best eval")]
    assert star.get_label() == f"best eval: epoch {hist[best]['epoch']} ({hist[best]['eval_rmse']:.4f})"
    assert list(star.get_xdata()) == [hist[best]["epoch"]] and list(star.get_ydata()) == [hist[best]["eval_rmse"]]
    assert ax.get_title() == "Learning curve: MatrixFactorization"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train RMSE", "eval RMSE", star.get_label()]


def test_learning_curve_marks_the_first_best_epoch_of_a_history_list(tmp_path):
    hist = [{"epoch": 1, "train_rmse": 1.2, "eval_rmse": 1.1}, {"epoch": 2, "train_rmse": 1.0, "eval_rmse": 0.95},
            {"epoch": 3, "train_rmse": 0.9, "eval_rmse": 0.95}, {"epoch": 4, "train_rmse": 0.8, "eval_rmse": 0.97}]
    ax = the_axes(learning_curve(hist, title="mine"))
    (star,) = [line for line in ax.get_lines() if line.get_label().startswith("best eval")]
    assert star.get_label() == "best eval: epoch 2 (0.9500)"
    assert ax.get_title() == "mine"
    # without "epoch" keys the position counts from 1
    ax = the_axes(learning_curve([{"train_rmse": 1.0}, {"train_rmse": 0.5}]))
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [1, 2])


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
    assert out is fig and len(axes[1].get_lines()) == 4 and len(axes[0].get_lines()) == 0
    assert png_size(tmp_path / "pair.png") == (200, 100)
    learning_curve(model, str(tmp_path / "curves.svg"))
    assert b"<svg" in (tmp_path / "curves.svg").read_bytes()[:400]
    learning_curve(model, tmp_path / "noext")  # no extension: PNG at exactly that path
    assert png_size(tmp_path / "noext") == (640, 400)


@pytest.mark.parametrize("arg, match", [
    ([], "the training history is empty"),
    ([{"epoch": 1}], r"history\[0\] has no 'train_rmse' \(keys: \['epoch'\]\)"),
    ([{"train_rmse": 1.0}, "x"], r"history\[1\] must be a dict with 'train_rmse', got str"),
    ([{"train_rmse": "1.0"}], r"history\[0\]\['train_rmse'\] must be a number, got '1.0'"),
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
    with pytest.raises(ValueError, match=r"unknown image format 'txt'; use one of .*png"):
        learning_curve(model, tmp_path / "curves.txt")
    assert not (tmp_path / "curves.txt").exists()


# ---------------------------------------------------------------------- factor map
def test_factor_map_png(model, tmp_path):
    path = tmp_path / "map.png"
    fig = factor_map(model, path, figsize=(6, 5), dpi=70)
    assert isinstance(fig, Figure)
    assert png_size(path) == (420, 350)
    w, h, nonwhite, colours = ink(path)
    assert (w, h) == (420, 350)
    assert nonwhite > 0.05 and colours > 50  # 100 points in several genre colours, labels, legend


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


def test_factor_map_draws_points_labels_and_genre_colours(model):
    ax = the_axes(factor_map(model, n_labels=7))
    points, rings = ax.collections
    coords = factor_coordinates(model)
    # every item is drawn once, at its coordinates
    offsets = points.get_offsets()
    np.testing.assert_allclose(offsets[np.lexsort(offsets.T)], coords[np.lexsort(coords.T)])
    counts = model.item_counts_
    # the 7 most-rated items (ties by lower index) are ringed and labelled with their titles
    top = np.argsort(-counts, kind="stable")[:7]
    np.testing.assert_allclose(rings.get_offsets(), coords[top])
    labels = [t for t in ax.texts if isinstance(t, Annotation)]
    assert [t.get_text() for t in labels] == [f"Item {i}" for i in model.item_map_.ids[top]]
    np.testing.assert_allclose([t.xy for t in labels], coords[top])
    # point area grows with the number of ratings
    order = np.lexsort(coords.T)
    sizes = points.get_sizes()[np.lexsort(offsets.T)]
    assert np.all(np.diff(sizes[np.argsort(counts[order], kind="stable")]) >= 0)
    # legend: first genres by frequency, one colour each; each point has its item's genre colour
    genres = model.item_info_.get(model.item_map_.ids, "genres")
    first = np.array([g.split("|")[0] for g in genres])
    names, freq = np.unique(first, return_counts=True)
    expect = names[np.lexsort((names, -freq))].tolist()
    if len(expect) > 10:
        expect = expect[:9] + ["other"]
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == expect
    assert legend.get_title().get_text() == "first genre"
    colour_of = {t.get_text(): tuple(h.get_color()[:3]) for t, h in zip(legend.get_texts(), legend.legend_handles)}
    assert len(set(colour_of.values())) == len(expect)
    drawn = {tuple(np.round(o, 12)): tuple(c[:3]) for o, c in zip(offsets, points.get_facecolors())}
    for i in range(100):
        g = first[i] if first[i] in colour_of else "other"
        assert drawn[tuple(np.round(coords[i], 12))] == pytest.approx(colour_of[g])


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
    assert png_size(path) == (800, 650) and ink(path)[2] > 0.02


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
