"""Moved to :mod:`fastmf.data.split`; this old path is the same module."""

from fastmf._moved import alias

alias(__name__)
