"""fastmf: fast, exact matrix-factorization recommenders with C kernels.

Quick start::

    import fastmf
    ds = fastmf.load_movielens("ml-100k")
    train, test = fastmf.split.random_split(ds, test_size=0.2, random_state=0)
    model = fastmf.Biases().fit(train)
    fastmf.evaluate(model, test, k=10)

Names are imported on first use (PEP 562), so ``import fastmf`` stays fast for the command line.
"""

from __future__ import annotations


from fastmf._version import __version__
from fastmf._moved import lazy_getattr as _lazy_getattr
from fastmf.models import registry as _registry

# public name -> module that defines it
_EXPORTS = {
    "Ratings": "fastmf.data.ratings",
    "IdMap": "fastmf.data.ratings",
    "Metadata": "fastmf.data.ratings",
    "read_ratings": "fastmf.data.readers",
    "load_movielens": "fastmf.data.movielens",
    "make_ratings": "fastmf.data.synthetic",
    "evaluate": "fastmf.evaluation",
    "EvaluationWarning": "fastmf.errors",
    "DuplicateRatingsWarning": "fastmf.errors",
    "MissingTimestampsWarning": "fastmf.errors",
    "NotFittedError": "fastmf.errors",
    "ModelFileError": "fastmf.errors",
    "DivergenceError": "fastmf.errors",
    "load": "fastmf.persistence",
}
# the model classes: from the registry, the one table of models
_EXPORTS.update({e.class_name: e.class_path.partition(":")[0] for e in _registry.entries()})
_SUBMODULES = ("data", "models", "training", "app", "errors", "io", "synthetic", "split", "metrics", "evaluation",
               "baselines", "reference", "base", "mf", "cli", "persistence", "implicit", "similarity", "plot",
               "tune", "distributed", "spark")

__all__ = ["__version__", "openmp_enabled", *_EXPORTS, *_SUBMODULES]


def openmp_enabled() -> bool:
    """True when the C kernels were compiled with OpenMP (multi-threaded), False for the serial build."""
    from fastmf import _csr

    return _csr.openmp_enabled()


__getattr__ = _lazy_getattr(__name__, globals(), _EXPORTS, _SUBMODULES)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
