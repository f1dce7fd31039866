"""Moved: text-file readers to :mod:`fastmf.data.readers`, the MovieLens sets to
:mod:`fastmf.data.movielens`. Every name of the old module, private ones included, is found here."""

from __future__ import annotations

import importlib
from typing import Any

from fastmf.data.movielens import *  # noqa: F401,F403
from fastmf.data.movielens import __all__ as _movielens_all
from fastmf.data.readers import *  # noqa: F401,F403
from fastmf.data.readers import __all__ as _readers_all

__all__ = [*_readers_all, *_movielens_all]
_PARTS = ("fastmf.data.readers", "fastmf.data.movielens")


def __getattr__(name: str) -> Any:
    for part in _PARTS:
        module = importlib.import_module(part)
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module 'fastmf.io' has no attribute {name!r}")
