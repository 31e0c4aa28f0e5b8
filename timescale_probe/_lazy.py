"""Lazy package exports: a package's public names load their module on first use.

A package whose options classes are read at command-line start-up (``tsprobe --help``) must not
import torch or pandas just to be imported; its ``__init__`` declares where each name lives::

    __all__, __getattr__, __dir__ = lazy_exports(__name__, {"corpus": ["Corpus", "load_corpus"]})
"""
from __future__ import annotations

import importlib
import sys
from typing import Callable


def lazy_exports(package: str, exports: dict[str, list[str]]) -> tuple[list[str], Callable, Callable]:
    """``(__all__, __getattr__, __dir__)`` for ``package``: ``exports`` maps a submodule (relative
    name) to the names it provides."""
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str):
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return sorted(where), __getattr__, __dir__
