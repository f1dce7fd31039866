"""Moved to :mod:`fastmf.models.implicit`; this old path is the same module."""

from fastmf._moved import alias

alias(__name__)
