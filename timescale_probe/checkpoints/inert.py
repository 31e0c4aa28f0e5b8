"""Inert stand-ins for what a pickle names: objects that record and never run anything.

Used by the restricted unpickler (:mod:`.unpickler`); see :mod:`.safe_unpickle` for the whole design.
"""
from __future__ import annotations

from typing import Any

import torch

from ..errors import UnsafeCheckpointError


class InertObject:
    """Stand-in for an instance of a class named in a pickle. Records, never runs.

    ``tsprobe_class`` is ``"module.Class"``; ``tsprobe_args`` the constructor arguments the pickle
    gave; ``tsprobe_state`` what ``BUILD`` passed (for an ``nn.Module``: its ``__dict__``);
    ``tsprobe_items`` / ``tsprobe_setitems`` what ``APPENDS`` / ``SETITEMS`` added.
    """

    tsprobe_module = "?"
    tsprobe_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> "InertObject":
        obj = object.__new__(cls)
        d = obj.__dict__
        d["tsprobe_args"] = args
        d["tsprobe_state"] = None
        d["tsprobe_items"] = []
        d["tsprobe_setitems"] = {}
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # never runs any code of the real class
        pass

    def __setstate__(self, state: Any) -> None:
        self.__dict__["tsprobe_state"] = state

    def __setitem__(self, key: Any, value: Any) -> None:
        try:
            self.__dict__["tsprobe_setitems"][key] = value
        except TypeError:  # unhashable key: keep nothing
            pass

    def append(self, value: Any) -> None:
        self.__dict__["tsprobe_items"].append(value)

    def extend(self, values: Any) -> None:
        self.__dict__["tsprobe_items"].extend(list(values))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise UnsafeCheckpointError(
            f"the pickle tries to call an object of class '{self.tsprobe_class}' (forbidden global call); "
            "the file may be malicious, so tsprobe refused to load it"
        )

    @property
    def tsprobe_class(self) -> str:
        return f"{self.tsprobe_module}.{self.tsprobe_name}"

    @property
    def attributes(self) -> dict[str, Any]:
        """The pickled ``__dict__`` (or the dict part of a ``(dict, slots)`` state); ``{}`` if none."""
        state = self.tsprobe_state
        if isinstance(state, dict):
            return state
        if isinstance(state, tuple) and len(state) == 2:
            merged: dict[str, Any] = {}
            for part in state:
                if isinstance(part, dict):
                    merged.update(part)
            return merged
        return {}

    def __repr__(self) -> str:
        return f"<inert {self.tsprobe_class}>"


class InertAttribute:
    """What ``builtins.getattr(obj, name)`` gives in a pickle (a pickled bound method): a record."""

    def __init__(self, owner: Any, name: Any) -> None:
        self.owner = owner
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(self.owner, "tsprobe_class", type(self.owner).__name__)
        raise UnsafeCheckpointError(
            f"the pickle tries to call '{owner}.{self.name}' obtained through builtins.getattr (forbidden global call); "
            "the file may be malicious, so tsprobe refused to load it"
        )

    def __repr__(self) -> str:
        return f"<inert attribute {self.name!r}>"


def is_inert(obj: Any) -> bool:
    return isinstance(obj, InertObject)


class _Marker:
    """A non-callable value standing for a torch type used only as a tag (storage types, Tensor)."""

    __slots__ = ("what", "dtype")

    def __init__(self, what: str, dtype: torch.dtype | None = None) -> None:
        object.__setattr__(self, "what", what)
        object.__setattr__(self, "dtype", dtype)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("read-only")

    def __repr__(self) -> str:
        return f"<{self.what}>"


class _Storage:
    """A storage read from the file: a flat CPU tensor of its dtype (only our loaders make these)."""

    def __init__(self, flat: torch.Tensor) -> None:
        self.flat = flat
