"""Ratings and everything that produces them: the :class:`Ratings` container with its id maps and
metadata (:mod:`~fastmf.data.ratings`), text-file readers (:mod:`~fastmf.data.readers`), the MovieLens
sets (:mod:`~fastmf.data.movielens`), splits (:mod:`~fastmf.data.split`) and synthetic data
(:mod:`~fastmf.data.synthetic`), and the on-disk store of ratings larger than memory
(:mod:`~fastmf.data.store`).

``fastmf.data`` was a module before 0.2; every name it had is still here.
"""

from __future__ import annotations

from fastmf._moved import lazy_getattr
from fastmf.data.ratings import (CSR, DUPLICATE_POLICIES, Description, IdMap, Ids, Metadata, Ratings,
                                 normalize_ids)
from fastmf.errors import DuplicateRatingsWarning

__all__ = ["IdMap", "Metadata", "Ratings", "CSR", "DuplicateRatingsWarning", "Ids", "Description",
           "normalize_ids", "DUPLICATE_POLICIES", "read_ratings", "load_movielens", "make_ratings",
           "write_store", "open_store", "RatingStore"]

_LAZY = {"read_ratings": "fastmf.data.readers", "load_movielens": "fastmf.data.movielens",
         "load_movielens_split": "fastmf.data.movielens", "make_ratings": "fastmf.data.synthetic",
         "write_store": "fastmf.data.store", "open_store": "fastmf.data.store", "RatingStore": "fastmf.data.store"}
_SUBMODULES = ("ratings", "readers", "movielens", "split", "synthetic", "features", "store")


__getattr__ = lazy_getattr(__name__, globals(), _LAZY, _SUBMODULES)
