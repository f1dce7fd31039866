"""Renamed parameters: ``n_epochs`` everywhere, ``linear_solver`` for how a row's system is solved.

Each class lists its old names in ``_renamed_params`` (old -> new): the old keyword still works in
the constructor and in ``set_params`` with a FutureWarning naming the new one, ``get_params`` and
``repr`` show only the new names, and both names at once are a TypeError naming both.
"""

import re
import warnings

import numpy as np
import pytest

import fastmf

# (class, old name, new name, a non-default value, constructor arguments of a small fit)
RENAMES = [
    (fastmf.ImplicitALS, "n_iterations", "n_epochs", 3, dict(n_factors=4, random_state=0)),
    (fastmf.ImplicitALS, "solver", "linear_solver", "cholesky", dict(n_factors=4, n_epochs=2, random_state=0)),
    (fastmf.MatrixFactorization, "als_solver", "linear_solver", "cg",
     dict(n_factors=4, n_epochs=2, solver="als", random_state=0)),
    (fastmf.Biases, "n_iter", "n_epochs", 4, dict(reg=2.0)),
]
IDS = [f"{cls.__name__}.{old}" for cls, old, *_ in RENAMES]


@pytest.fixture(scope="module")
def data():
    return fastmf.make_ratings(30, 20, 300, seed=3)


def _fitted_arrays(model):
    return {name: value for name, value in vars(model).items()
            if name.endswith("_") and isinstance(value, np.ndarray)}


@pytest.mark.parametrize("cls, old, new, value, kw", RENAMES, ids=IDS)
def test_old_keyword_warns_and_fits_the_same_model(data, cls, old, new, value, kw):
    with pytest.warns(FutureWarning, match=rf"{cls.__name__}: {old} is renamed {new}; {old} will be "
                                           r"removed in fastmf 0\.4"):
        via_old = cls(**kw, **{old: value})
    via_new = cls(**kw, **{new: value})
    assert getattr(via_old, new) == value
    assert via_old.get_params() == via_new.get_params()
    a, b = _fitted_arrays(via_old.fit(data)), _fitted_arrays(via_new.fit(data))
    assert a.keys() == b.keys() and a
    for name in a:
        assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), name


@pytest.mark.parametrize("cls, old, new, value, kw", RENAMES, ids=IDS)
def test_params_show_only_the_new_names(cls, old, new, value, kw):
    m = cls(**{new: value})
    params = m.get_params()
    assert new in params and old not in params
    assert old not in cls._param_names() and not set(cls._renamed_params) & set(cls._param_names())
    assert f"{new}={value!r}" in repr(m) and not re.search(rf"[(, ]{old}=", repr(m))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clone through get_params uses the new names only
        clone = type(m)(**m.get_params())
    assert clone.get_params() == params


@pytest.mark.parametrize("cls, old, new, value, kw", RENAMES, ids=IDS)
def test_set_params_takes_the_old_name_with_a_warning(cls, old, new, value, kw):
    m = cls()
    with pytest.warns(FutureWarning, match=f"{old} is renamed {new}"):
        assert m.set_params(**{old: value}) is m
    assert getattr(m, new) == value and old not in m.get_params()
    with pytest.warns(FutureWarning, match=f"{old} is renamed {new}"):  # reading the old attribute
        assert getattr(m, old) == value


@pytest.mark.parametrize("cls, old, new, value, kw", RENAMES, ids=IDS)
def test_both_names_together_is_a_type_error(cls, old, new, value, kw):
    with pytest.raises(TypeError, match=rf"{cls.__name__}: got both '{old}' and '{new}'"):
        cls(**{old: value, new: value})
    with pytest.raises(TypeError, match=f"'{old}' and '{new}'"):
        cls().set_params(**{old: value, new: value})


def test_the_old_value_is_validated_under_the_new_name():
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="linear_solver must be one of"):
        fastmf.ImplicitALS().set_params(solver="lu")


def test_renamed_params_tables():
    """Persistence maps old names in older model files through these tables."""
    assert fastmf.ImplicitALS._renamed_params == {"n_iterations": "n_epochs", "solver": "linear_solver"}
    assert fastmf.MatrixFactorization._renamed_params == {"als_solver": "linear_solver"}
    assert fastmf.Biases._renamed_params == {"n_iter": "n_epochs"}
    assert "solver" in fastmf.MatrixFactorization._param_names()  # the algorithm keeps its name
    assert "solver" not in fastmf.ImplicitALS._param_names()     # ImplicitALS has one algorithm
    for cls in (fastmf.GlobalMean, fastmf.Popularity):
        assert cls._renamed_params == {}


def test_unknown_attribute_still_raises():
    with pytest.raises(AttributeError, match="user_factors_"):
        fastmf.ImplicitALS().user_factors_
