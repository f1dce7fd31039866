"""Model files written by fastmf 0.1.0 (format version 1, before the architecture move) load with
today's code and give the same predictions, recommendations and similar items, bit for bit
(except the scores of the engagement ranking, which are now computed in float64 by the top-k
kernel's scorer: equal to 0.1.0's up to its float32 rounding).

The fixtures in ``tests/fixtures/models_v1`` were written once by ``make_models_v1.py`` at commit
78d5af8 and are never regenerated: they are what users' saved models look like.
"""

import os

import numpy as np
import pytest

import fastmf

HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "models_v1")
KEYS = ("global_mean", "biases", "popularity", "mf_sgd", "mf_sgd_rating", "mf_als", "ials")
CLASSES = {"global_mean": "GlobalMean", "biases": "Biases", "popularity": "Popularity",
           "mf_sgd": "MatrixFactorization", "mf_sgd_rating": "MatrixFactorization",
           "mf_als": "MatrixFactorization", "ials": "ImplicitALS"}


def _has_avx512():
    try:
        with open("/proc/cpuinfo") as fh:
            return " avx512f" in fh.read()
    except OSError:  # not Linux: another kind of machine than the one that recorded the answers
        return False


#: The answers were recorded on an x86-64 CPU with AVX-512. Float32 factor products run through
#: NumPy's einsum and BLAS, whose summation order follows the SIMD width the CPU dispatches, so the
#: last bits are reproducible on a CPU of that class (fastmf's results are bit-identical per
#: machine, not across CPUs); on any other the floats must agree to float32 rounding, ids exactly.
SAME_CPU_CLASS = _has_avx512()


def same_answers(actual, want):
    if SAME_CPU_CLASS or want.dtype.kind != "f":
        np.testing.assert_array_equal(actual, want)
    else:
        assert actual.shape == want.shape and actual.dtype == want.dtype
        np.testing.assert_allclose(actual, want, rtol=2e-6, atol=0)


@pytest.fixture(scope="module")
def expected():
    with np.load(os.path.join(HERE, "expected.npz"), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def test_every_fixture_is_checked(expected):
    assert sorted({name.split("/")[0] for name in expected}) == sorted(KEYS)
    assert sorted(f[:-4] for f in os.listdir(HERE) if f != "expected.npz") == sorted(KEYS)


@pytest.mark.parametrize("key", KEYS)
def test_old_file_loads_with_identical_answers(key, expected):
    model = fastmf.load(os.path.join(HERE, f"{key}.npz"))
    assert type(model).__name__ == CLASSES[key]
    users = model.user_map_.ids[:8]
    items = model.item_map_.ids[:10]
    uu, ii = np.meshgrid(users, items, indexing="ij")
    same_answers(model.predict(uu.ravel(), ii.ravel()), expected[f"{key}/predict"])
    ids, scores = model.recommend(users, n=5)
    np.testing.assert_array_equal(ids, expected[f"{key}/recommend_ids"])
    if getattr(model, "ranking", None) == "engagement":
        # 0.1.0 formed these scores in float32 with two BLAS products, whose rounding depended on the
        # batch of users (a defect); they are now the top-k kernel's float64 scores, the same for any
        # batch: equal to 0.1.0's up to the float32 rounding of its result, the same items in order
        want = expected[f"{key}/recommend_scores"]
        assert scores.shape == want.shape
        np.testing.assert_allclose(scores, want, rtol=2e-6, atol=0)
    else:
        same_answers(scores, expected[f"{key}/recommend_scores"])
    if f"{key}/similar_ids" in expected:
        ids, scores = model.similar_items(items[0], n=5)
        np.testing.assert_array_equal(ids, expected[f"{key}/similar_ids"])
        same_answers(scores, expected[f"{key}/similar_scores"])


@pytest.mark.parametrize("key", KEYS)
def test_old_file_saves_again_identically(key, tmp_path):
    """Loading and saving an old file keeps every answer (the new file loads to the same model)."""
    old = fastmf.load(os.path.join(HERE, f"{key}.npz"))
    old.save(tmp_path / "again.npz")
    new = fastmf.load(tmp_path / "again.npz")
    users = old.user_map_.ids
    np.testing.assert_array_equal(new.recommend(users, n=7)[0], old.recommend(users, n=7)[0])
    np.testing.assert_array_equal(new.predict(users, np.repeat(old.item_map_.ids[0], len(users))),
                                  old.predict(users, np.repeat(old.item_map_.ids[0], len(users))))


def test_old_parameter_names_map_to_the_new_ones(recwarn):
    """0.1 wrote n_iterations / solver="cg" (ImplicitALS), n_iter (Biases), als_solver (MF): they load
    under the new names, silently (the file is not the user's code to change)."""
    ials = fastmf.load(os.path.join(HERE, "ials.npz"))
    assert ials.get_params()["n_epochs"] == manifest_params("ials.npz")["n_iterations"] and ials.get_params()["linear_solver"] == "cg"
    assert "solver" not in ials.get_params() and "n_iterations" not in ials.get_params()
    biases = fastmf.load(os.path.join(HERE, "biases.npz"))
    assert "n_epochs" in biases.get_params() and "n_iter" not in biases.get_params()
    mf = fastmf.load(os.path.join(HERE, "mf_als.npz"))
    assert mf.get_params()["linear_solver"] in ("cholesky", "cg") and mf.get_params()["solver"] == "als"
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning)]
    manifest = fastmf.persistence.read_manifest(os.path.join(HERE, "ials.npz"))
    assert manifest["format_version"] == 1 and "n_iterations" in manifest["params"]


def manifest_params(name):
    return fastmf.persistence.read_manifest(os.path.join(HERE, name))["params"]
