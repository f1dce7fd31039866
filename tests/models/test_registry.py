"""The model registry: one table of models, their tags, presets and declared fitted state."""

import os

import numpy as np
import pytest

import fastmf
from fastmf.models import registry
from fastmf.models.registry import TAGS, Field, ModelEntry


@pytest.fixture(scope="module")
def data():
    return fastmf.make_ratings(60, 40, 900, seed=3)


def fitted(entry, data):
    params = {"n_factors": 4} if "n_factors" in entry.cls._param_names() else {}
    if "n_epochs" in entry.cls._param_names():
        params["n_epochs"] = 2
    return entry.cls(**params).fit(data)


def test_every_exported_model_is_registered_and_only_those():
    classes = {e.cls for e in registry.entries()}
    exported = {getattr(fastmf, n) for n in fastmf.__all__
                if isinstance(getattr(fastmf, n), type) and issubclass(getattr(fastmf, n), fastmf.base.Recommender)}
    assert classes == exported
    for e in registry.entries():
        assert registry.for_class(e.cls) is e and registry.get(e.key) is e
        assert getattr(fastmf, e.class_name) is e.cls  # fastmf.__init__ reads the registry
        assert set(e.tags) <= set(TAGS)


def test_presets_are_the_command_line_model_names():
    names = registry.presets()
    assert list(names) == ["mf", "als", "ials", "bayes", "svdpp", "timesvdpp", "biases", "popularity", "globalmean"]
    entry, params, _ = names["als"]
    assert entry.key == "mf" and params == {"solver": "als"}


@pytest.mark.parametrize("entry", registry.entries(), ids=lambda e: e.key)
def test_fit_sets_exactly_the_declared_state(entry, data):
    model = fitted(entry, data)
    state = {k: v for k, v in vars(model).items() if k.endswith("_") and not k.startswith("_")}
    registry.check_state(entry, model.get_params(), state)  # raises on any difference
    required = {f.name for f in entry.fields if not f.optional}
    assert required <= set(state)


def test_undeclared_state_does_not_save(tmp_path, data):
    """What a time-aware model would add, on a model that does not declare it, must fail on save,
    never save and then fail to load."""
    model = fastmf.MatrixFactorization(n_factors=4, n_epochs=2).fit(data)
    model.user_day_bias_ = np.zeros(7)
    path = tmp_path / "m.npz"
    with pytest.raises(ValueError, match=r"user_day_bias_ is not part of its declared fitted state \(registry "
                                         r"entry 'mf'"):
        model.save(path)
    assert not os.path.exists(path) and os.listdir(tmp_path) == []


def test_a_model_declares_its_own_sizes(tmp_path, data):
    """A declared (7,)-shaped day bias saves and loads; one of another length than its declared
    size elsewhere is refused on save, with the same message load would give."""

    class DayBiases(fastmf.Biases):
        pass

    DayBiases.__qualname__ = "DayBiases"
    state = registry.get("biases").state + (Field("user_day_bias_", "array", "float64", ("n_days",)),
                                            Field("item_day_bias_", "array", "float64", ("n_items", "n_days")))
    entry = registry.register(ModelEntry("day-biases", f"{__name__}:DayBiases", "test", frozenset(), state))
    globals()["DayBiases"] = DayBiases
    try:
        model = DayBiases().fit(data)
        model.user_day_bias_ = np.arange(7.0)
        model.item_day_bias_ = np.zeros((model.n_items_, 7))
        model.save(tmp_path / "m.npz")
        loaded = fastmf.load(tmp_path / "m.npz")
        assert type(loaded) is DayBiases and np.array_equal(loaded.user_day_bias_, np.arange(7.0))
        model.item_day_bias_ = np.zeros((model.n_items_, 6))
        with pytest.raises(ValueError, match=r"item_day_bias_ has shape \(40, 6\); axis 1 must be n_days = 7"):
            model.save(tmp_path / "m2.npz")
        del model.item_day_bias_
        with pytest.raises(ValueError, match="fitted attribute item_day_bias_ is missing"):
            model.save(tmp_path / "m2.npz")
    finally:
        registry.unregister(entry.key)
        del globals()["DayBiases"]
    with pytest.raises(KeyError, match="unknown model 'day-biases'"):
        registry.get("day-biases")


def test_register_refuses_clashes_and_builtins_stay():
    mf = registry.get("mf")
    with pytest.raises(ValueError, match="cannot register 'mf': mf is registered already"):
        registry.register(ModelEntry("mf", "x:Y", "clash"))
    with pytest.raises(ValueError, match="als is registered already"):
        registry.register(ModelEntry("other", "x:Y", "clash", presets={"als": ({}, "")}))
    with pytest.raises(ValueError, match="registered already"):
        registry.register(ModelEntry("other", mf.class_path, "same class"))
    with pytest.raises(ValueError, match="cannot be unregistered"):
        registry.unregister("mf")
    with pytest.raises(ValueError, match="unknown tags"):
        ModelEntry("x", "x:Y", "bad", frozenset({"fast"}))
    with pytest.raises(ValueError, match="end with '_'"):
        Field("factors", "array")
    with pytest.raises(ValueError, match="kind must be one of"):
        Field("factors_", "blob")


def test_a_subclass_is_not_its_parents_model():
    class Mine(fastmf.Biases):
        pass

    with pytest.raises(KeyError, match="is not a registered fastmf model"):
        registry.for_class(Mine)


def test_old_files_map_to_keys():
    for e in registry.entries():
        for name in e.legacy_classes:
            assert registry.key_of(name) is e
        assert registry.key_of(e.key) is e
    assert registry.key_of("os.system") is None
