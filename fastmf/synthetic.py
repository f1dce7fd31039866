"""Moved to :mod:`fastmf.data.synthetic`; this old path is the same module."""

from fastmf._moved import alias

alias(__name__)
