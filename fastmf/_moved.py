"""Old module paths kept working after the 0.2 layout move (``fastmf.mf`` is now
``fastmf.models.mf``...). An alias module calls :func:`alias` and *is* the new module from then on:
``fastmf.mf is fastmf.models.mf``, so its names, private ones included, and monkeypatching
behave exactly as before. Where one old module became two (``fastmf.io``), the alias module
re-exports both instead (see ``fastmf/io.py``)."""

from __future__ import annotations

import importlib
import sys

#: old module path -> new module path (the aliases tests walk this table)
MOVED = {
    "fastmf.base": "fastmf.models.base",
    "fastmf.baselines": "fastmf.models.baselines",
    "fastmf.mf": "fastmf.models.mf",
    "fastmf.implicit": "fastmf.models.implicit",
    "fastmf.split": "fastmf.data.split",
    "fastmf.synthetic": "fastmf.data.synthetic",
    "fastmf.cli": "fastmf.app.cli",
    "fastmf._progress": "fastmf.training.progress",
}


def alias(old: str) -> None:
    """Make the module being imported as ``old`` the module :data:`MOVED` names for it."""
    sys.modules[old] = importlib.import_module(MOVED[old])
