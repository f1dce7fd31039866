"""A corpus of hostile model files, generated here from real fitted models of every registry entry:
each attribute removed, nulled, replaced by scalars of every kind and out-of-range values, each
array with the wrong dtype or shape, non-finite or huge entries, manifests nested deeply or with
bad fields and parameters, declared sizes the archive does not hold, truncations and flipped
bytes. A file must either raise ModelFileError naming the file, or load as a fully valid model
(predict, recommend, recommend_new, similar items, save and load again all work, with finite
scores). Run with ``-s`` for the table of outcomes.
"""

import json
import os
import zipfile

import numpy as np
import pytest

import fastmf
from fastmf import persistence
from fastmf.errors import ModelFileError
from fastmf.models import registry

SCALARS = [7, None, 2**31, 2**70, -1, "x", {"float": "nan"}, {"float": "inf"}, 1e308, True, [1], {}]


def _data():
    rng = np.random.default_rng(0)
    n = 600
    users, items = rng.integers(0, 40, n), rng.integers(0, 30, n)
    keep = np.unique(users * 30 + items, return_index=True)[1]
    titles = fastmf.data.Metadata(np.arange(30), {"title": np.array([f"t{i}" for i in range(30)])})
    return fastmf.Ratings.from_arrays(users[keep], items[keep], rng.integers(1, 6, keep.size).astype(float),
                                      rating_scale=(1, 5), item_info=titles)


def _models():
    data = _data()
    out = {}
    for entry in registry.entries():
        params = {}
        names = entry.cls._param_names()
        if "n_factors" in names:
            params["n_factors"] = 4
        if "n_epochs" in names:
            params["n_epochs"] = 2
        if "random_state" in names:
            params["random_state"] = 0
        out[entry.key] = entry.cls(**params).fit(data)
    out["als"] = fastmf.MatrixFactorization(solver="als", n_factors=4, n_epochs=2, random_state=0,
                                            ranking="rating", biased=False).fit(data)
    return out


def _unpack(path):
    with zipfile.ZipFile(path) as zf:
        members = {info.filename[:-4]: np.lib.format.read_array(zf.open(info), allow_pickle=False)
                   for info in zf.infolist()}
    manifest = json.loads(str(members.pop(persistence.MANIFEST)[()]))
    return manifest, members


def _pack(path, manifest, members, manifest_text=None):
    text = manifest_text if manifest_text is not None else json.dumps(manifest)
    with open(path, "wb") as fh:
        persistence._write_npz(fh, {persistence.MANIFEST: np.array(text), **members})


def _spec(arr):
    return {"dtype": arr.dtype.str, "shape": list(arr.shape)}


def _variants(manifest, members):
    """(name, manifest, members[, manifest text]) of every hostile variant of one model file."""
    attrs = manifest["attributes"]

    def copy():
        return json.loads(json.dumps(manifest)), dict(members)

    for attr, entry in attrs.items():
        m, a = copy()
        del m["attributes"][attr]
        for key in entry.get("arrays", {}):
            a.pop(key)
        yield f"{attr}: removed", m, a
        m, a = copy()
        m["attributes"][attr] = {"kind": "none"}
        for key in entry.get("arrays", {}):
            a.pop(key)
        yield f"{attr}: null", m, a
        for value in SCALARS:
            m, a = copy()
            m["attributes"][attr] = {"kind": "scalar", "value": value}
            for key in entry.get("arrays", {}):
                a.pop(key)
            yield f"{attr}: scalar {value!r:.20}", m, a
        if entry["kind"] in ("tuple", "list"):
            for items in ([], [None, None], [1e308, 1e309], [{"float": "nan"}, 1], [5, 1], [1, 2, 3]):
                m, a = copy()
                m["attributes"][attr]["items"] = items
                yield f"{attr}: items {items!r:.30}", m, a
        if entry["kind"] == "records":
            for recs in ([{"epoch": 1}] * 3, [1, 2], [{"epoch": [1]}]):
                m, a = copy()
                m["attributes"][attr]["records"] = recs
                yield f"{attr}: records {recs!r:.30}", m, a
        for key in entry.get("arrays", {}):
            arr = members[key]
            replacements = []
            if arr.dtype.kind == "f":
                replacements += [("float64<->float32", arr.astype(np.float32 if arr.dtype == np.float64
                                                                  else np.float64))]
                for value in (np.nan, np.inf, 1e30, 2e15, 1e14, -1e14):
                    if arr.size:
                        bad = arr.copy()
                        bad.reshape(-1)[0] = value
                        replacements.append((f"[0] = {value:g}", bad))
                if arr.size:
                    replacements.append(("all 1e14", np.full_like(arr, 1e14)))
                    replacements.append(("all 1e5", np.full_like(arr, 1e5)))
            elif arr.dtype.kind in "iu":
                replacements.append(("as float", arr.astype(np.float64)))
                for value in (-1, -(2**31), 2**31 - 1, 10**6):
                    if arr.size:
                        bad = arr.copy()
                        bad.reshape(-1)[-1] = value
                        replacements.append((f"[-1] = {value}", bad))
                if arr.size > 2:
                    replacements.append(("reversed", arr[::-1].copy()))
            elif arr.dtype.kind == "U" and arr.size > 1:
                dup = arr.copy()
                dup[1] = dup[0]
                replacements.append(("duplicate id", dup))
                replacements.append(("as int", np.arange(arr.size, dtype=np.int64)))
            if arr.ndim >= 1 and arr.shape[0] > 0:
                replacements.append(("one row less", arr[:-1].copy()))
                replacements.append(("extra axis", arr[..., None].copy()))
            replacements.append(("0-d", np.array(arr.reshape(-1)[0] if arr.size else 0, dtype=arr.dtype)))
            for what, new in replacements:
                m, a = copy()
                a[key] = new
                m["attributes"][attr]["arrays"][key] = _spec(new)
                yield f"{key}: {what}", m, a
                # the same member changed behind the manifest's back
                m, a = copy()
                a[key] = new
                yield f"{key}: {what} (manifest unchanged)", m, a
            m, a = copy()
            m["attributes"][attr]["arrays"][key] = {"dtype": arr.dtype.str, "shape": [4096, 65536]}
            yield f"{key}: declared 4096 x 65536", m, a
    deep = "[" * 100000 + "]" * 100000
    for where in ("params", "attributes", "notes"):
        text = json.dumps(manifest).replace(f'"{where}": ', f'"{where}": {deep}, "_{where}": ', 1)
        yield f"manifest: {where} nested 100000 deep", manifest, members, text
    yield "manifest: nested object 100000 deep", manifest, members, '{"a":' * 100000 + "1" + "}" * 100000
    yield "manifest: NaN literal", manifest, members, json.dumps(manifest).replace('"format_version": 2', '"format_version": NaN')
    for key, value in (("format_version", 2**70), ("format_version", "2"), ("format_version", 0),
                       ("model", "nope"), ("model", None), ("params", []), ("attributes", []),
                       ("notes", {}), ("format", "other")):
        m, a = copy()
        m[key] = value
        yield f"manifest: {key} = {value!r}", m, a
    for key, value in (("n_threads", 65536), ("n_threads", 40000), ("n_threads", 0), ("n_factors", 0),
                       ("n_factors", 2**40), ("n_epochs", -1), ("dtype", "float16"), ("nope", 1),
                       ("random_state", -5), ("reg", {"float": "nan"}), ("reg", [1])):
        m, a = copy()
        m["params"][key] = value
        yield f"params: {key} = {value!r}", m, a


def _exercise(model, tmp_path):
    """Everything a loaded model must do, with finite answers; raises on anything wrong."""
    users, items = model.user_map_.ids, model.item_map_.ids
    pred = np.asarray(model.predict(users[:5], items[:5]))
    assert pred.shape == (5,) and np.all(np.isfinite(pred)), pred
    ids, scores = model.recommend(users[:3], n=5)
    assert ids.shape == (3, 5) and not np.any(np.isnan(scores)) and not np.any(scores == np.inf), scores
    lo, hi = model.rating_scale_ if model.rating_scale_ is not None else (1.0, 5.0)
    ids, scores = model.recommend_new(items[:2], [float(lo + hi) / 2] * 2, n=5)
    assert not np.any(np.isnan(scores)) and not np.any(scores == np.inf), scores
    if hasattr(model, "item_factors_"):
        ids, scores = model.similar_items(items[0], n=3)
        assert not np.any(np.isnan(scores)) and not np.any(scores == np.inf), scores
    path = os.path.join(tmp_path, "again.npz")
    model.save(path)
    fastmf.load(path)


def _run_corpus(tmp, step):
    """{outcome: [case names]} over every ``step``-th case of the corpus (outcomes: clean error,
    loaded and valid, invalid load, crash = any exception other than ModelFileError, unclear = a
    ModelFileError not naming the file)."""
    outcomes = {"clean error": [], "loaded, valid": [], "invalid load": [], "crash": [], "unclear": []}
    n = 0
    for key, model in _models().items():
        base = os.path.join(tmp, f"{key}.npz")
        model.save(base)
        manifest, members = _unpack(base)
        cases = list(_variants(manifest, members))
        raw = open(base, "rb").read()
        rng = np.random.default_rng(len(raw))
        for cut in sorted(set(rng.integers(1, len(raw), 12).tolist()) | {len(raw) - 1, len(raw) // 2}):
            cases.append((f"truncated at {cut}", None, raw[:cut]))
        for pos in rng.integers(0, len(raw), 40).tolist():
            flipped = bytearray(raw)
            flipped[pos] ^= 0xFF
            cases.append((f"byte {pos} flipped", None, bytes(flipped)))
        for case in cases[::step]:
            name = f"{key}: {case[0]}"
            path = os.path.join(tmp, f"case{n}.npz")
            n += 1
            if case[1] is None:
                with open(path, "wb") as fh:
                    fh.write(case[2])
            else:
                _pack(path, case[1], case[2], case[3] if len(case) > 3 else None)
            try:
                loaded = fastmf.load(path)
            except ModelFileError as exc:
                outcomes["clean error" if str(exc).startswith(path) else "unclear"].append(f"{name}: {exc}")
                continue
            except BaseException as exc:  # noqa: B902 - anything else is a crash of the loader
                outcomes["crash"].append(f"{name}: {type(exc).__name__}: {exc}"[:300])
                continue
            try:
                _exercise(loaded, tmp)
            except BaseException as exc:  # noqa: B902
                outcomes["invalid load"].append(f"{name}: {type(exc).__name__}: {exc}"[:300])
            else:
                outcomes["loaded, valid"].append(name)
    print(f"\nhostile model files: {n} tried; " + "; ".join(f"{k}: {len(v)}" for k, v in outcomes.items()))
    return outcomes


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A fifth of the corpus (every fifth case: all kinds of mutation, ~650 files, seconds); the
    whole corpus runs with ``-m hostile``."""
    return _run_corpus(tmp_path_factory.mktemp("hostile"), 5)


@pytest.mark.hostile
def test_whole_corpus(tmp_path):
    outcomes = _run_corpus(tmp_path, 1)
    assert outcomes["crash"] == [] and outcomes["invalid load"] == [] and outcomes["unclear"] == []
    assert len(outcomes["clean error"]) > 2500


def test_no_hostile_file_crashes_the_loader(corpus):
    assert corpus["crash"] == []


def test_no_hostile_file_loads_an_invalid_model(corpus):
    assert corpus["invalid load"] == []


def test_every_error_names_the_file(corpus):
    assert corpus["unclear"] == []


def test_the_corpus_exercises_both_outcomes(corpus):
    # most variants are refused; some are harmless (a valid n_threads, a value within bounds)
    assert len(corpus["clean error"]) > 400 and len(corpus["loaded, valid"]) > 10


def test_declared_size_limit_refuses_before_reading(tmp_path):
    model = fastmf.MatrixFactorization(n_factors=64, n_epochs=1, random_state=0,
                                       ranking="rating").fit(_data())
    path = model.save(tmp_path / "m.npz")
    with pytest.raises(ModelFileError, match="above the limit of 1000 bytes"):
        fastmf.load(path, max_bytes=1000)
    assert fastmf.load(path, max_bytes=10**9).n_factors == 64


def test_a_deflated_bomb_is_refused_by_the_limit_without_decompressing(tmp_path):
    # 4096 x 65536 float32 zeros (1 GiB) deflate to ~1 MB: the zip directory says 1 GiB, and the
    # limit refuses it from that alone
    model = fastmf.MatrixFactorization(n_factors=4, n_epochs=1, random_state=0, ranking="rating").fit(_data())
    base = model.save(tmp_path / "m.npz")
    manifest, members = _unpack(base)
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("__manifest__.npy", b"")
    shape = (4096, 65536)
    manifest["attributes"]["user_factors_"]["arrays"]["user_factors_"] = {"dtype": "<f4", "shape": list(shape)}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("__manifest__.npy", "w") as out:
            np.lib.format.write_array(out, np.array(json.dumps(manifest)))
        for key, arr in members.items():
            with zf.open(key + ".npy", "w", force_zip64=True) as out:
                if key == "user_factors_":
                    np.lib.format.write_array_header_1_0(
                        out, {"descr": "<f4", "fortran_order": False, "shape": shape})
                    zeros = bytes(1 << 24)
                    for _ in range(4096 * 65536 * 4 // len(zeros)):
                        out.write(zeros)
                else:
                    np.lib.format.write_array(out, arr)
    assert os.path.getsize(path) < 8 << 20
    with pytest.raises(ModelFileError, match="above the limit"):
        fastmf.load(path, max_bytes=persistence.DEFAULT_MAX_BYTES // 8)



@pytest.mark.parametrize("header_tail", [b"(3,", b"(3,)) }", b"\x00\x01"])
def test_a_corrupted_npy_header_is_a_model_file_error(tmp_path, header_tail):
    """NumPy parses a member's header dict as Python: depending on the bytes a corrupted one raises
    ValueError, SyntaxError or tokenize.TokenError (found by a byte flip in CI); each is a
    ModelFileError naming the entry."""
    import zipfile

    model = fastmf.Biases().fit(fastmf.make_ratings(20, 10, 100, seed=1))
    good = model.save(tmp_path / "good.npz")
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "item_counts_.npy":
                start = data.index(b"'shape': ") + len(b"'shape': ")
                end = data.index(b"\n")
                patched = data[:start] + header_tail
                data = patched + b" " * (end - len(patched)) + data[end:]
            dst.writestr(info.filename, data)
    with pytest.raises(fastmf.errors.ModelFileError, match="item_counts_"):
        fastmf.load(bad)
