"""Old module paths kept working after the 0.2 layout move (``fastmf.mf`` is now
``fastmf.models.mf``...). An alias module calls :func:`alias` and *is* the new module from then on:
``fastmf.mf is fastmf.models.mf``, so its names, private ones included, and monkeypatching
behave exactly as before. Where one old module became two (``fastmf.io``), the alias module
re-exports both instead (see ``fastmf/io.py``)."""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Mapping, Sequence

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


def lazy_getattr(package: str, namespace: dict, exports: Mapping[str, str],
                 submodules: Sequence[str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) for ``package``: a name of ``exports`` (name -> module)
    or a submodule is imported on first use and then kept in ``namespace`` (the module's globals)."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
        elif name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    return __getattr__
