"""Model files (fastmf.persistence): round trips are bit-identical, bad files are rejected with a
ModelFileError naming the file, saving is atomic."""

import json
import os
import pathlib
import sys
import zipfile

import numpy as np
import pytest

import fastmf
from fastmf import persistence
from fastmf.base import NotFittedError
from fastmf.data import Metadata, Ratings
from fastmf.persistence import FORMAT_VERSION, ModelFileError, load_model, read_manifest, save_model


# ---------------------------------------------------------------------- data and models
def string_ratings():
    """String user and item ids, item metadata covering one item with no rating, user metadata."""
    base = fastmf.make_ratings(60, 40, 900, rank=4, seed=7, timestamps=False)
    u, i, r, _ = base.to_arrays()
    users = np.array([f"user-{x:03d}" for x in u])
    items = np.array([f"it\u00e9m {x:02d}" for x in i])  # non-ASCII ids
    item_ids = np.array([f"it\u00e9m {x:02d}" for x in range(41)])  # 41: one item never rated
    info = Metadata(item_ids, {
        "title": np.array([f"Film {x} (19{50 + x})" for x in range(41)]),
        "genres": np.array(["Drama|Comedy" if x % 2 else "Action" for x in range(41)]),
        "year": np.arange(1950, 1991, dtype=np.int64),
    })
    user_ids = np.array([f"user-{x:03d}" for x in range(60)])
    user_info = Metadata(user_ids, {"age": np.arange(60, dtype=np.int64) % 50 + 18})
    return Ratings.from_arrays(users, items, r, rating_scale=(1, 5), item_info=info, user_info=user_info)


@pytest.fixture(scope="module")
def str_data():
    return string_ratings()


@pytest.fixture(scope="module")
def int_data():
    return fastmf.make_ratings(50, 30, 700, rank=3, seed=11)  # int ids, titles and genres


def make_model(kind, data):
    if kind == "GlobalMean":
        return fastmf.GlobalMean().fit(data)
    if kind == "Biases":
        return fastmf.Biases(reg=2.0, reg_item=1.5, n_epochs=5).fit(data)
    if kind == "Popularity":
        return fastmf.Popularity(by="sum").fit(data)
    dtype = kind.split("-")[1]
    return fastmf.MatrixFactorization(n_factors=5, n_epochs=3, dtype=dtype, random_state=1,
                                      reg_bias=None).fit(data)


MODELS = ["GlobalMean", "Biases", "Popularity", "MF-float32", "MF-float64"]


def fitted_state(model):
    return {k: v for k, v in vars(model).items() if k.endswith("_") and not k.startswith("_")}


def assert_same_state(a, b):
    """Every fitted attribute of ``b`` equals that of ``a`` exactly (type, dtype, bits)."""
    sa, sb = fitted_state(a), fitted_state(b)
    assert list(sa) == list(sb)
    for name, va in sa.items():
        vb = sb[name]
        if isinstance(va, np.ndarray):
            assert isinstance(vb, np.ndarray) and vb.dtype == va.dtype and vb.shape == va.shape, name
            assert np.array_equal(va, vb), name
            assert vb.flags.writeable == va.flags.writeable, name
        elif isinstance(va, fastmf.IdMap):
            assert vb.ids.dtype == va.ids.dtype and np.array_equal(vb.ids, va.ids), name
        elif isinstance(va, Metadata):
            assert np.array_equal(vb.map.ids, va.map.ids) and vb.map.ids.dtype == va.map.ids.dtype, name
            assert list(vb.columns) == list(va.columns), name
            for col in va.columns:
                assert vb.columns[col].dtype == va.columns[col].dtype, (name, col)
                assert np.array_equal(vb.columns[col], va.columns[col]), (name, col)
        else:
            assert type(vb) is type(va) and vb == va, name


def all_pairs(data, extra_user, extra_item):
    users = np.append(data.user_map.ids, extra_user)
    items = np.append(data.item_map.ids, extra_item)
    uu, ii = np.meshgrid(users, items, indexing="ij")
    return uu.ravel(), ii.ravel()


def assert_same_answers(a, b, data, unknown_user, unknown_item):
    u, i = all_pairs(data, unknown_user, unknown_item)
    fb = dict(unknown="fallback")
    pa, pb = a.predict(u, i, **fb), b.predict(u, i, **fb)
    assert pa.dtype == pb.dtype and np.array_equal(pa, pb)
    assert np.array_equal(a.predict(u, i, clip=False, **fb), b.predict(u, i, clip=False, **fb))
    users = np.append(data.user_map.ids, unknown_user)
    for kw in ({}, {"exclude_seen": False}, {"exclude_items": data.item_map.ids[:3]}):
        ia, sa = a.recommend(users, n=7, **kw, **fb)
        ib, sb = b.recommend(users, n=7, **kw, **fb)
        assert ia.dtype == ib.dtype and np.array_equal(ia, ib)
        assert np.array_equal(sa, sb)
    ia, sa = a.recommend(data.user_map.ids[0], n=len(data.item_map.ids) + 2)
    ib, sb = b.recommend(data.user_map.ids[0], n=len(data.item_map.ids) + 2)
    assert np.array_equal(ia, ib) and np.array_equal(sa, sb)


# ---------------------------------------------------------------------- round trips
@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("ids", ["str", "int"])
def test_round_trip_is_identical(tmp_path, kind, ids, str_data, int_data):
    data = str_data if ids == "str" else int_data
    model = make_model(kind, data)
    path = tmp_path / "model.npz"
    assert save_model(model, path) == str(path)
    loaded = load_model(path)
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    assert_same_state(model, loaded)
    unknown_user, unknown_item = ("nobody", "nothing") if ids == "str" else (10**9, 10**9)
    assert_same_answers(model, loaded, data, unknown_user, unknown_item)
    # metadata travels with the model: titles, genres and years without the data set
    item = data.item_map.ids[3]
    assert loaded.item_info_.get(item, "title") == data.item_info.get(item, "title")
    assert loaded.item_info_.get(item, "genres") == data.item_info.get(item, "genres")
    if ids == "str":
        assert loaded.item_info_.get("it\u00e9m 40", "year") == 1990  # the item without ratings
        assert loaded.user_info_.get("user-007", "age") == 25
    else:
        assert loaded.user_info_ is None
    if kind.startswith("MF"):
        assert loaded.history_ == model.history_ and len(loaded.history_) == 3
        assert loaded.best_epoch_ == 3 and loaded.seed_ == model.seed_
        for f in (loaded.user_factors_, loaded.item_factors_):
            # rows start on 64-byte boundaries like the buffers fit() trains (_sgd.aligned_factors)
            assert f.ctypes.data % 64 == 0 and f.strides[0] % 64 == 0


def test_model_save_and_fastmf_load(tmp_path, int_data):
    """The public spelling: model.save(path) / fastmf.load(path) (wired up in base.py / __init__.py)."""
    if not hasattr(fastmf.base.Recommender, "save"):
        pytest.skip("Recommender.save is not wired to fastmf.persistence.save_model yet")
    model = make_model("MF-float64", int_data)
    model.save(tmp_path / "m.npz")
    loaded = fastmf.load(tmp_path / "m.npz")
    assert fastmf.load is load_model
    assert_same_state(model, loaded)
    assert_same_answers(model, loaded, int_data, 10**9, 10**9)


def test_saved_bytes_are_deterministic_and_plain_npz(tmp_path, str_data):
    model = make_model("MF-float32", str_data)
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    save_model(model, a)
    save_model(model, b)
    assert a.read_bytes() == b.read_bytes()
    # an ordinary npz: numpy reads it without pickle, the manifest is JSON
    with np.load(a, allow_pickle=False) as npz:
        manifest = json.loads(str(npz["__manifest__"][()]))
        assert np.array_equal(npz["item_bias_"], model.item_bias_)
        assert npz["user_map_"].dtype.kind == "U"
    assert manifest["format"] == "fastmf-model" and manifest["format_version"] == 2
    assert manifest["model"] == "mf" and manifest["class"] == "fastmf.models.mf.MatrixFactorization"
    assert manifest["fastmf_version"] == fastmf.__version__
    assert manifest["params"]["n_factors"] == 5 and manifest["params"]["dtype"] == "float32"
    kinds = {name: entry["kind"] for name, entry in manifest["attributes"].items()}
    assert kinds["user_map_"] == "idmap" and kinds["item_info_"] == "metadata"
    assert kinds["history_"] == "records" and kinds["rating_scale_"] == "tuple"
    assert kinds["global_mean_"] == "scalar" and kinds["user_factors_"] == "array"
    assert manifest["attributes"]["user_factors_"]["arrays"]["user_factors_"] == {"dtype": "<f4", "shape": [60, 5]}
    assert read_manifest(a) == manifest


def test_refit_after_load_reproduces_the_model(tmp_path, int_data):
    """Every hyper-parameter comes back: refitting the loaded model with its int seed gives the same
    bits as the original fit."""
    model = fastmf.MatrixFactorization(n_factors=4, n_epochs=2, lr=0.02, reg=0.03, init_std=0.05,
                                       schedule="shuffle", n_threads=1, random_state=5).fit(int_data)
    save_model(model, tmp_path / "m.npz")
    again = load_model(tmp_path / "m.npz").fit(int_data)
    assert np.array_equal(again.user_factors_, model.user_factors_)
    assert np.array_equal(again.item_bias_, model.item_bias_)


def test_factor_layout_is_kept(tmp_path, int_data):
    """Padded factors come back padded, plain contiguous ones (as after early stopping) contiguous:
    a BLAS product can round differently with another row stride (with OpenBLAS, re-padding the
    contiguous k=5 float32 factors below changed the last bits of a single-user ranking)."""
    model = make_model("MF-float32", int_data)
    save_model(model, tmp_path / "padded.npz")
    padded = load_model(tmp_path / "padded.npz")
    assert padded.user_factors_.strides == (64, 4) and padded.item_factors_.strides == (64, 4)
    model.user_factors_ = np.ascontiguousarray(model.user_factors_)
    model.item_factors_ = np.ascontiguousarray(model.item_factors_)
    save_model(model, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.user_factors_.strides == (20, 4) and loaded.item_factors_.strides == (20, 4)
    assert_same_answers(model, loaded, int_data, 10**9, 10**9)


def test_generator_and_dtype_parameters(tmp_path, int_data):
    model = fastmf.MatrixFactorization(n_factors=3, n_epochs=1, dtype=np.float64,
                                       random_state=np.random.default_rng(0)).fit(int_data)
    save_model(model, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.random_state is None and loaded.dtype == "float64"
    notes = read_manifest(tmp_path / "m.npz")["notes"]
    assert len(notes) == 1 and "random_state" in notes[0] and "Generator" in notes[0]
    assert_same_state(model, loaded)


class KindsProbe(fastmf.Biases):
    """A model whose declared state has an attribute of every kind a file can hold."""


def _kinds_entry():
    from fastmf.models.registry import COMMON_STATE, Field, ModelEntry

    state = (Field("user_bias_", "array", "float64", ("n_users",)), Field("item_bias_", "array", "float64", ("n_items",)),
             Field("history_", "records"), Field("eps_", "scalar", "float"), Field("count_", "scalar", "int"),
             Field("flag_", "scalar", "bool"), Field("label_", "scalar", "str"), Field("inf_", "scalar", "float", finite=False),
             Field("pair_", "tuple", shape=(4,)), Field("list_", "list", "float"), Field("empty_list_", "list"),
             Field("mask_", "array", "bool", (3,)), Field("scalar_array_", "array", "float64", ()),
             Field("matrix_", "array", "int16", (2, "n_cols")), Field("nothing_", "scalar", optional=True))
    assert COMMON_STATE[0].name == "user_map_"
    return ModelEntry("kinds-probe", f"{__name__}:KindsProbe", "test model", frozenset(), state)


@pytest.fixture
def kinds_probe():
    from fastmf.models import registry

    entry = registry.register(_kinds_entry())
    yield entry
    registry.unregister(entry.key)


def test_every_attribute_kind_round_trips(tmp_path, int_data, kinds_probe):
    """Attributes of every supported kind come back with their exact types, including non-finite
    floats and NumPy scalars."""
    model = KindsProbe().fit(int_data)
    model.history_ = [{"epoch": 1, "loss": float("nan"), "best": True, "note": "x"},
                      {"epoch": 2, "loss": float("-inf"), "best": False, "note": "y\u00e9"}]
    model.eps_ = np.float32(0.1)
    model.count_ = np.int64(2**40)
    model.flag_ = True
    model.label_ = "trained"
    model.inf_ = float("inf")
    model.pair_ = (1, 2.5, "a", None)
    model.list_ = [0.1, 0.2, 3]
    model.empty_list_ = []
    model.mask_ = np.array([True, False, True])
    model.scalar_array_ = np.array(3.25)
    model.matrix_ = np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3))
    model.nothing_ = None
    model._private = object()  # not fitted state: ignored
    save_model(model, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert type(loaded.eps_) is np.float32 and loaded.eps_ == np.float32(0.1)
    assert type(loaded.count_) is np.int64 and loaded.count_ == 2**40
    assert loaded.flag_ is True and loaded.label_ == "trained" and loaded.inf_ == float("inf")
    assert loaded.pair_ == (1, 2.5, "a", None) and type(loaded.pair_[0]) is int
    assert loaded.list_ == [0.1, 0.2, 3] and loaded.empty_list_ == [] and loaded.nothing_ is None
    h = loaded.history_
    assert np.isnan(h[0]["loss"]) and h[1]["loss"] == float("-inf") and h[1]["note"] == "y\u00e9"
    assert h[0]["best"] is True and h[0]["epoch"] == 1
    assert np.array_equal(loaded.mask_, model.mask_) and loaded.mask_.dtype == bool
    assert loaded.scalar_array_.shape == () and loaded.scalar_array_ == 3.25
    assert np.array_equal(loaded.matrix_, model.matrix_) and loaded.matrix_.dtype == np.int16
    assert not hasattr(loaded, "_private")


def test_object_metadata_column_is_saved_as_strings(tmp_path):
    info = Metadata(np.array([1, 2, 3]), {"title": np.array(["a", "bb", "ccc"], dtype=object)})
    data = Ratings.from_arrays([1, 1, 2], [1, 2, 3], [3, 4, 5], item_info=info)
    model = fastmf.Biases().fit(data)
    save_model(model, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.item_info_.columns["title"].dtype.kind == "U"
    assert list(loaded.item_info_.columns["title"]) == ["a", "bb", "ccc"]


# ---------------------------------------------------------------------- paths and saving errors
def test_paths_str_pathlike_and_exact_name(tmp_path, int_data):
    model = make_model("Biases", int_data)
    p = tmp_path / "model.bin"  # kept exactly: no ".npz" appended
    save_model(model, p)
    assert sorted(os.listdir(tmp_path)) == ["model.bin"]
    assert np.array_equal(load_model(str(p)).user_bias_, model.user_bias_)
    assert np.array_equal(load_model(pathlib.Path(p)).user_bias_, model.user_bias_)


def test_save_refuses_unfitted_foreign_and_unsavable(tmp_path, int_data):
    with pytest.raises(NotFittedError, match="not fitted"):
        save_model(fastmf.MatrixFactorization(), tmp_path / "m.npz")
    with pytest.raises(ValueError, match="expects a fitted fastmf model"):
        save_model(object(), tmp_path / "m.npz")

    class MyBiases(fastmf.Biases):
        pass

    with pytest.raises(ValueError, match="only fastmf's registered model classes"):
        save_model(MyBiases().fit(int_data), tmp_path / "m.npz")
    model = make_model("Biases", int_data)
    model.bad_ = {"a": 1}  # state the registry does not declare for Biases
    with pytest.raises(ValueError, match="bad_ is not part of its declared fitted state"):
        save_model(model, tmp_path / "m.npz")
    del model.bad_
    good = model.user_bias_
    model.user_bias_ = {"a": 1}
    with pytest.raises(ValueError, match="user_bias_ must be a NumPy array, got dict"):
        save_model(model, tmp_path / "m.npz")
    model.user_bias_ = np.array([{"a": 1}] * len(good), dtype=object)
    with pytest.raises(ValueError, match="user_bias_ must be float64, got object"):
        save_model(model, tmp_path / "m.npz")
    model.user_bias_ = good
    assert os.listdir(tmp_path) == []
    model.reg = lambda: 0  # not a storable parameter
    with pytest.raises(ValueError, match="parameter 'reg'"):
        save_model(model, tmp_path / "m.npz")
    model.reg = 2.0
    with pytest.raises(ValueError, match="is a folder"):
        save_model(model, tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_model(model, tmp_path / "no" / "m.npz")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("failure", ["write", "replace", "interrupt"])
def test_interrupted_save_keeps_the_previous_file(tmp_path, monkeypatch, int_data, failure):
    old = make_model("Biases", int_data)
    new = make_model("MF-float32", int_data)
    path = tmp_path / "model.npz"
    save_model(old, path)
    before = path.read_bytes()
    calls = []
    real_write = persistence._write_array

    def failing_write(out, arr):
        calls.append(1)
        if len(calls) == 4:  # a few members already written
            raise KeyboardInterrupt if failure == "interrupt" else OSError(28, "No space left on device")
        real_write(out, arr)

    def failing_replace(src, dst):
        raise PermissionError(13, "Permission denied")

    if failure == "replace":
        monkeypatch.setattr(os, "replace", failing_replace)
    else:
        monkeypatch.setattr(persistence, "_write_array", failing_write)
    with pytest.raises(KeyboardInterrupt if failure == "interrupt" else OSError):
        save_model(new, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind
    assert path.read_bytes() == before
    assert type(load_model(path)) is fastmf.Biases
    save_model(new, path)  # and a later save replaces it
    assert type(load_model(path)) is fastmf.MatrixFactorization
    assert os.listdir(tmp_path) == ["model.npz"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_saved_file_gets_the_umask_permissions(tmp_path, int_data):
    old = os.umask(0o027)
    try:
        save_model(make_model("GlobalMean", int_data), tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert (tmp_path / "m.npz").stat().st_mode & 0o777 == 0o640


# ---------------------------------------------------------------------- rejected files
@pytest.fixture
def saved(tmp_path, str_data):
    model = make_model("MF-float32", str_data)
    path = tmp_path / "model.npz"
    save_model(model, path)
    return path


def members_of(path):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return json.loads(str(arrays.pop("__manifest__")[()])), arrays


def rewrite(path, manifest, arrays, allow_pickle=False):
    """Write a model file by hand with np.savez (used to build bad files). ``allow_pickle`` says
    whether the arrays may hold objects; np.savez pickles those (its ``allow_pickle`` keyword only
    exists from NumPy 2 on, so it is not passed)."""
    members = dict(arrays)
    members["__manifest__"] = np.array(json.dumps(manifest))
    if not allow_pickle:
        assert all(np.asarray(a).dtype != object for a in members.values())
    with open(path, "wb") as fh:
        np.savez(fh, **members)


def rejects(path, *patterns):
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    msg = str(info.value)
    assert str(path) in msg
    for pat in patterns:
        assert pat in msg, (pat, msg)
    assert isinstance(info.value, ValueError)
    return msg


def test_hand_rewritten_file_still_loads(saved):
    """The rewrite helper itself yields a loadable file, so each rejection below is caused by the
    one change it makes."""
    manifest, arrays = members_of(saved)
    rewrite(saved, manifest, arrays)
    assert isinstance(load_model(saved), fastmf.MatrixFactorization)


@pytest.mark.parametrize("keep", [0, 3, 100, 0.5, -1, -22])
def test_truncated_file(saved, keep):
    data = saved.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else (keep if keep >= 0 else len(data) + keep)
    saved.write_bytes(data[:n])
    rejects(saved, "not a fastmf model file" if n < 4 else "truncated or corrupted")


def test_corrupted_array_bytes_fail_the_crc(saved):
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as zf:
        info = zf.getinfo("user_factors_.npy")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    # skip the local header's own extra field: find the .npy magic, then hit the data after its header
    start = data.index(b"\x93NUMPY", start) + 200
    data[start] ^= 0x01
    saved.write_bytes(bytes(data))
    rejects(saved, "truncated or corrupted", "user_factors_", "CRC")


def test_not_a_model(tmp_path):
    p = tmp_path / "x.npz"
    p.write_bytes(np.random.default_rng(0).bytes(3000))
    rejects(p, "not a fastmf model file", "not an .npz")
    p.write_bytes(b"")
    rejects(p, "empty")
    np.save(tmp_path / "y.npy", np.arange(3))
    rejects(tmp_path / "y.npy", "single .npy array")
    np.savez(p, a=np.arange(3))
    rejects(p, "not a fastmf model file", "__manifest__")
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("hello.txt", "hi")
    rejects(p, "not a fastmf model file")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.npz")


def test_manifest_of_another_format(saved):
    manifest, arrays = members_of(saved)
    rewrite(saved, dict(manifest, format="something-else"), arrays)
    rejects(saved, "not a fastmf model file", "something-else")
    members = dict(arrays, __manifest__=np.array("{not json"))
    with open(saved, "wb") as fh:
        np.savez(fh, **members)
    rejects(saved, "not valid JSON")
    members = dict(arrays, __manifest__=np.frombuffer(b"{}", dtype=np.uint8))
    with open(saved, "wb") as fh:
        np.savez(fh, **members)
    rejects(saved, "0-d unicode array")


def test_newer_format_version(saved):
    manifest, arrays = members_of(saved)
    rewrite(saved, dict(manifest, format_version=999), arrays)
    rejects(saved, "newer fastmf (format 999", f"reads format <= {FORMAT_VERSION}", "upgrade")
    rewrite(saved, dict(manifest, format_version="1"), arrays)
    rejects(saved, "invalid format_version")


def test_pickled_object_array_is_never_unpickled(saved, monkeypatch):
    import pickle

    def no_unpickling(*args, **kwargs):
        raise AssertionError("pickle.load was called")

    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    manifest, arrays = members_of(saved)
    titles = arrays["item_info_/col0"]
    arrays["item_info_/col0"] = titles.astype(object)  # same values, now a pickled object array
    rewrite(saved, manifest, arrays, allow_pickle=True)
    rejects(saved, "'item_info_/col0'", "pickled object array")
    # the manifest cannot ask for object dtype either
    manifest["attributes"]["item_info_"]["arrays"]["item_info_/col0"]["dtype"] = "|O"
    rewrite(saved, manifest, arrays, allow_pickle=True)
    rejects(saved, "'item_info_/col0'", "dtype object is not allowed")


def test_wrong_shape(saved):
    manifest, arrays = members_of(saved)
    arrays["user_factors_"] = arrays["user_factors_"][:-1]
    rewrite(saved, manifest, arrays)
    rejects(saved, "'user_factors_' has shape (59, 5), the manifest says (60, 5)")
    # a consistent manifest does not help: the rows must match the user map
    manifest["attributes"]["user_factors_"]["arrays"]["user_factors_"]["shape"] = [59, 5]
    rewrite(saved, manifest, arrays)
    rejects(saved, "user_factors_ has shape (59, 5); axis 0 must be n_users = 60")


def test_factor_width_mismatch(saved):
    manifest, arrays = members_of(saved)
    arrays["item_factors_"] = np.zeros((40, 4), dtype=np.float32)
    manifest["attributes"]["item_factors_"]["arrays"]["item_factors_"]["shape"] = [40, 4]
    rewrite(saved, manifest, arrays)
    rejects(saved, "item_factors_ has shape (40, 4); axis 1 must be k = 5")
    arrays["item_factors_"] = np.zeros((40, 4), dtype=np.float32)
    arrays["user_factors_"] = np.zeros((60, 4), dtype=np.float32)
    manifest["attributes"]["user_factors_"]["arrays"]["user_factors_"]["shape"] = [60, 4]
    rewrite(saved, manifest, arrays)
    rejects(saved, "user_factors_ has shape (60, 4); axis 1 must be k = 5")


def test_wrong_dtype(saved):
    manifest, arrays = members_of(saved)
    arrays["item_bias_"] = arrays["item_bias_"].astype(np.float64)
    rewrite(saved, manifest, arrays)
    rejects(saved, "'item_bias_' has dtype float64, the manifest says float32")
    manifest["attributes"]["item_bias_"]["arrays"]["item_bias_"]["dtype"] = "not-a-dtype"
    rewrite(saved, manifest, arrays)
    rejects(saved, "invalid dtype 'not-a-dtype'")


def test_unknown_model(saved):
    """A file names its model by registry key; nothing it names is ever imported."""
    manifest, arrays = members_of(saved)
    for key in ("fastmf.mf.Evil", "os.system", "subprocess.Popen", "fastmf.data.Ratings", "MatrixFactorization",
                "fastmf.mf.MatrixFactorization", ""):
        rewrite(saved, dict(manifest, model=key), arrays)
        rejects(saved, f"unknown model {key!r} (registered: mf, ials,")
    rewrite(saved, dict(manifest, model=None), arrays)
    rejects(saved, "the manifest's 'model' must be a registry key")
    # the class name is information only: the key decides
    rewrite(saved, dict(manifest, **{"class": "os.system"}), arrays)
    assert isinstance(load_model(saved), fastmf.MatrixFactorization)


def test_unknown_class_in_a_format_1_file(saved):
    """Format 1 stored "module.qualname": only the names 0.1 wrote for its own models are taken."""
    manifest, arrays = members_of(saved)
    manifest = {k: v for k, v in manifest.items() if k != "model"}
    for name in ("fastmf.mf.Evil", "os.system", "subprocess.Popen", "fastmf.data.Ratings",
                 "fastmf.baselines.MatrixFactorization", "MatrixFactorization", "mf",
                 "fastmf.models.mf.MatrixFactorization"):
        rewrite(saved, dict(manifest, format_version=1, **{"class": name}), arrays)
        rejects(saved, f"unknown model class {name!r}")
    rewrite(saved, dict(manifest, format_version=1, **{"class": "fastmf.mf.MatrixFactorization"}), arrays)
    assert isinstance(load_model(saved), fastmf.MatrixFactorization)


def test_missing_and_extra_entries(saved):
    manifest, arrays = members_of(saved)
    extra = dict(arrays, surprise=np.arange(3))
    rewrite(saved, manifest, extra)
    rejects(saved, "unexpected entry ['surprise']")
    del arrays["seen_indices_"]
    rewrite(saved, manifest, arrays)
    rejects(saved, "missing entry ['seen_indices_']")


def test_inconsistent_seen_items(saved):
    manifest, arrays = members_of(saved)
    good_ptr, good_idx = arrays["seen_indptr_"], arrays["seen_indices_"]
    arrays["seen_indices_"] = good_idx.copy()
    arrays["seen_indices_"][5] = 40
    rewrite(saved, manifest, arrays)
    rejects(saved, "seen_indices_[5] = 40 is outside [0, n_items_ = 40)")
    arrays["seen_indices_"] = good_idx
    arrays["seen_indptr_"] = good_ptr.copy()
    arrays["seen_indptr_"][3] = arrays["seen_indptr_"][4] + 1
    rewrite(saved, manifest, arrays)
    rejects(saved, "seen_indptr_ decreases at position 4")
    arrays["seen_indptr_"] = good_ptr[:-1]
    manifest["attributes"]["seen_indptr_"]["arrays"]["seen_indptr_"]["shape"] = [60]
    rewrite(saved, manifest, arrays)
    rejects(saved, "seen_indptr_ has shape (60,); axis 0 must be n_users+1 = 61")


def test_inconsistent_sizes_values_and_params(saved):
    manifest, arrays = members_of(saved)
    attrs = manifest["attributes"]
    rewrite(saved, dict(manifest, attributes=dict(attrs, n_users_={"kind": "scalar", "value": 61})), arrays)
    rejects(saved, "n_users_ = 61 but user_map_ has 60 ids")
    factors = arrays["user_factors_"].copy()
    factors[2, 1] = np.nan
    rewrite(saved, manifest, dict(arrays, user_factors_=factors))
    rejects(saved, "user_factors_[2, 1] = nan is not finite")
    ids = arrays["item_map_"].copy()
    ids[1] = ids[0]
    rewrite(saved, manifest, dict(arrays, item_map_=ids))
    rejects(saved, "attribute 'item_map_'", "duplicate id")
    rewrite(saved, dict(manifest, params=dict(manifest["params"], n_factors=-1)), arrays)
    rejects(saved, "invalid parameters for MatrixFactorization", "n_factors")
    rewrite(saved, dict(manifest, params=dict(manifest["params"], learning_rate=0.1)), arrays)
    rejects(saved, "unknown parameter 'learning_rate'")
    rewrite(saved, dict(manifest, attributes=dict(attrs, history_={"kind": "pickle"})), arrays)
    rejects(saved, "attribute 'history_': unknown kind 'pickle'")
    rewrite(saved, dict(manifest, attributes=dict(attrs, global_mean_={"kind": "scalar", "value": [1]})), arrays)
    rejects(saved, "attribute 'global_mean_': invalid value [1]")
