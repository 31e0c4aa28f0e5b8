"""The restricted unpickler: every opcode that calls or mutates something is checked here.

See :mod:`.safe_unpickle` for the whole design.
"""
from __future__ import annotations

import pickle
from collections import OrderedDict
from typing import Any

import torch

from ..errors import CheckpointError, UnsafeCheckpointError
from .allowlist import ALLOWED_GLOBALS, resolve_global
from .inert import InertAttribute, InertObject, _Marker


def _is_standin_class(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, InertObject)


_ALLOWED_CALLABLE_IDS = frozenset(id(v) for v in ALLOWED_GLOBALS.values() if callable(v))


def _refuse_call(func: Any, how: str) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f"the pickle tries to {how} {func!r}, which is not on tsprobe's allow-list; the file may be malicious, "
        "so tsprobe refused to load it"
    )


class RestrictedUnpickler(pickle._Unpickler):  # the pure-Python unpickler: every opcode that calls is ours
    """A pickle reader that never imports and only calls allow-listed, argument-checked functions.

    Built on the pure-Python unpickler so that every opcode which calls or mutates something
    (``REDUCE``, ``NEWOBJ``, ``INST``/``OBJ``, ``BUILD``) goes through a check here. ``persistent_load``
    is given ``storage_loader(dtype, key, numel, view_metadata)`` for torch storages; any other
    persistent id is refused.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, storage_loader=None, allow_module_ids: bool = False) -> None:
        super().__init__(file, encoding="utf-8")
        self._classes: dict[tuple[str, str], type] = {}
        self._storage_loader = storage_loader
        self._allow_module_ids = allow_module_ids

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 (pickle API)
        return resolve_global(module, name, self._classes)

    # -- opcodes that call something
    def load_reduce(self) -> None:
        stack = self.stack
        args = stack.pop()
        func = stack[-1]
        if not isinstance(args, tuple):
            raise CheckpointError("malformed REDUCE in the pickle (arguments are not a tuple); the file is corrupt")
        if not (id(func) in _ALLOWED_CALLABLE_IDS or _is_standin_class(func) or isinstance(func, (InertObject, InertAttribute))):
            raise _refuse_call(func, "call")
        stack[-1] = func(*args)

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        if not _is_standin_class(cls) or not isinstance(args, tuple):
            raise _refuse_call(cls, "create an object of")
        self.append(cls.__new__(cls, *args))

    def load_newobj_ex(self) -> None:
        self.stack.pop()  # kwargs: stand-ins take none (their state comes from BUILD)
        args = self.stack.pop()
        cls = self.stack.pop()
        if not _is_standin_class(cls) or not isinstance(args, tuple):
            raise _refuse_call(cls, "create an object of")
        self.append(cls.__new__(cls, *args))

    def _instantiate(self, klass: Any, args: list) -> None:
        if not _is_standin_class(klass):
            raise _refuse_call(klass, "create an object of")
        self.append(klass(*args))

    def load_build(self) -> None:
        stack = self.stack
        state = stack.pop()
        inst = stack[-1]
        if isinstance(inst, InertObject):
            inst.__setstate__(state)
        elif isinstance(inst, torch.Tensor):
            return  # tensor attributes (hooks, flags) are dropped
        elif type(inst) is OrderedDict and (state is None or isinstance(state, (dict, tuple))):
            d = state[0] if isinstance(state, tuple) else state
            if isinstance(d, dict):  # e.g. a state dict's ``_metadata``
                inst.__dict__.update({k: v for k, v in d.items() if isinstance(k, str) and not k.startswith("__")})
        else:
            raise _refuse_call(inst if isinstance(inst, type) else type(inst), "set the state of")

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex
    dispatch[pickle.BUILD[0]] = load_build

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid:
            raise UnsafeCheckpointError(
                f"malformed persistent id ({type(pid).__name__}) in the pickle; the file may be malicious, so tsprobe refused to load it"
            )
        typename = pid[0].decode("ascii", "replace") if isinstance(pid[0], bytes) else pid[0]
        if typename == "storage" and self._storage_loader is not None and len(pid) in (5, 6):
            storage_type, key, location, numel = pid[1:5]
            view = pid[5] if len(pid) == 6 else None
            if not isinstance(storage_type, _Marker) or storage_type.dtype is None:
                raise UnsafeCheckpointError(
                    "a persistent id of the pickle names something other than a torch storage type; the file may be "
                    "malicious, so tsprobe refused to load it"
                )
            if not isinstance(key, (str, int)) or not isinstance(numel, int) or numel < 0:
                raise CheckpointError(f"malformed storage record {pid[:5]!r} in the pickle; the file is corrupt")
            return self._storage_loader(storage_type.dtype, str(key), numel, view)
        if typename == "module" and self._allow_module_ids and len(pid) >= 2 and _is_standin_class(pid[1]):
            return pid[1]  # the class's source text in pid[2:] is ignored, never compiled
        raise UnsafeCheckpointError(
            f"unexpected persistent id '{str(typename)[:40]}' in the pickle; the file may be malicious, so tsprobe refused to load it"
        )
