"""The 0.2 layout (data/, models/, training/, app/, reference/, errors.py) keeps every old import path."""

import importlib
import pathlib
import pkgutil
import subprocess
import sys

import pytest

import fastmf
import fastmf.errors
from fastmf._moved import MOVED

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_module_path_is_the_new_module(old):
    assert importlib.import_module(old) is importlib.import_module(MOVED[old])


def test_old_paths_in_a_fresh_interpreter():
    # the aliases must work as the first import of a process, in any order
    code = ("from fastmf.mf import MatrixFactorization; from fastmf.base import Recommender, NotFittedError; "
            "import fastmf.split, fastmf.io, fastmf.synthetic, fastmf.cli, fastmf.data, fastmf.reference; "
            "import fastmf.models.mf as m; assert MatrixFactorization is m.MatrixFactorization; "
            "assert fastmf.split.random_split is fastmf.data.split.random_split; "
            "assert fastmf.io.read_ratings is fastmf.data.readers.read_ratings; "
            "assert fastmf.io.load_movielens is fastmf.data.movielens.load_movielens; "
            "assert fastmf.cli.main is fastmf.app.cli.main; "
            "assert issubclass(MatrixFactorization, Recommender)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_old_io_module_keeps_its_names():
    import fastmf.data.movielens as ml
    import fastmf.data.readers as rd
    import fastmf.io as fio

    for module in (rd, ml):
        for name in [*module.__all__, *(n for n in vars(module) if n.startswith("_") and not n.startswith("__"))]:
            assert getattr(fio, name) is getattr(module, name), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        fio.nope


@pytest.mark.parametrize("name", fastmf.errors.__all__)
def test_every_error_type_lives_in_errors_and_keeps_its_old_home(name):
    cls = getattr(fastmf.errors, name)
    assert issubclass(cls, Exception) and cls.__module__ == "fastmf.errors"
    old_homes = {"NotFittedError": "fastmf.base", "UnknownUserWarning": "fastmf.base",
                 "DivergenceError": "fastmf.training", "DuplicateRatingsWarning": "fastmf.data",
                 "MissingTimestampsWarning": "fastmf.io", "ParseError": "fastmf._parse",
                 "DatasetNotFoundError": "fastmf.io", "ModelFileError": "fastmf.persistence",
                 "EvaluationWarning": "fastmf.evaluation", "MatplotlibMissingError": "fastmf.plot",
                 "UserError": "fastmf.cli"}
    # types added after the layout move had no other home: fastmf.errors is their only one
    assert getattr(importlib.import_module(old_homes.get(name, "fastmf.errors")), name) is cls


def test_the_old_reference_names_are_all_there():
    from fastmf import reference

    for name in reference.__all__:
        assert callable(getattr(reference, name)) or name == "Scaling"
    # the private twins the tests compare against are where the kernels' files say
    from fastmf.reference.rng import _Xoshiro256  # noqa: F401


def test_every_subpackage_is_packaged():
    """pyproject's explicit package list must name every folder of fastmf, or the wheel lacks it."""
    tomllib = pytest.importorskip("tomllib")
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = ["fastmf"] + [info.name for info in pkgutil.walk_packages(fastmf.__path__, "fastmf.") if info.ispkg]
    assert sorted(found) == sorted(packages)
