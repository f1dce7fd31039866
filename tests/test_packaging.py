"""What an installed fastmf ships (runs against whichever fastmf is imported: the checkout, an
editable install, or a wheel/sdist install in CI)."""

from pathlib import Path

import fastmf


def test_py_typed_marker_is_shipped():
    """PEP 561: type checkers use fastmf's inline hints only when the package has a py.typed file."""
    assert (Path(fastmf.__file__).parent / "py.typed").is_file()
