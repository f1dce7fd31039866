"""Ratings and everything that produces them: the :class:`Ratings` container with its id maps and
metadata (:mod:`~fastmf.data.ratings`), text-file readers (:mod:`~fastmf.data.readers`), the MovieLens
sets (:mod:`~fastmf.data.movielens`), splits (:mod:`~fastmf.data.split`) and synthetic data
(:mod:`~fastmf.data.synthetic`).

``fastmf.data`` was a module before 0.2; every name it had is still here.
"""

from __future__ import annotations

import importlib
from typing import Any

from fastmf.data.ratings import (CSR, DUPLICATE_POLICIES, Description, IdMap, Ids, Metadata, Ratings,
                                 normalize_ids)
from fastmf.errors import DuplicateRatingsWarning

__all__ = ["IdMap", "Metadata", "Ratings", "CSR", "DuplicateRatingsWarning", "Ids", "Description",
           "normalize_ids", "DUPLICATE_POLICIES", "read_ratings", "load_movielens", "make_ratings"]

_LAZY = {"read_ratings": "fastmf.data.readers", "load_movielens": "fastmf.data.movielens",
         "load_movielens_split": "fastmf.data.movielens", "make_ratings": "fastmf.data.synthetic"}
_SUBMODULES = ("ratings", "readers", "movielens", "split", "synthetic")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"fastmf.data.{name}")
    else:
        raise AttributeError(f"module 'fastmf.data' has no attribute {name!r}")
    globals()[name] = value
    return value
