"""Reading ``torch.save`` files of whole pickled objects without running any code from them.

A pickle is a small program: its ``GLOBAL`` opcodes import any name and its ``REDUCE`` opcodes call
it. :class:`RestrictedUnpickler` resolves every global itself (``find_class``) and never imports a
module named in the file:

- an explicit allow-list of harmless callables torch needs to rebuild tensors is mapped to our own
  re-implementations (``torch._utils._rebuild_tensor_v2``, ``_rebuild_parameter``, storage types,
  ``collections.OrderedDict``, ``builtins.set`` ...), which check their arguments;
- names in modules that can reach the operating system or the interpreter (``os``, ``posix``,
  ``subprocess``, ``builtins.eval``, ``importlib`` ...), functions such as ``system`` or ``loads``
  under any module, and every other ``torch`` name raise :class:`UnsafeCheckpointError`;
- every other name (``model.RNNModel``, ``weight_drop.WeightDrop``, ``torch.nn.modules.rnn.LSTM``,
  ``torch.optim.sgd.SGD`` ...) becomes an *inert stand-in* class (:class:`InertObject`) that records
  its module/class name, constructor arguments and pickled state, and never runs anything;
- ``builtins.getattr`` (how a bound method is pickled) returns an inert record of the attribute
  name; calling such a record, or a stand-in, raises :class:`UnsafeCheckpointError`.

Both torch serialisations are read: the zip archive (``archive/data.pkl`` plus one record per
storage, read with :mod:`zipfile`) and the legacy sequence of pickles (magic number, protocol,
sys info, the object, storage keys, then raw storage bytes).
"""
from __future__ import annotations

import _compat_pickle
import io
import os
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, UnsafeCheckpointError

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

# ----------------------------------------------------------------------------- stand-ins


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


# ----------------------------------------------------------------------------- the allow-list

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128, "UntypedStorage": torch.uint8,
}
_DTYPE_NAMES = (
    "float32", "float", "float64", "double", "float16", "half", "bfloat16", "int64", "long", "int32", "int",
    "int16", "short", "int8", "uint8", "bool", "complex64", "complex128", "cfloat", "cdouble",
)
_TENSOR_TYPE = _Marker("torch.Tensor")


def _check_storage(storage: Any) -> torch.Tensor:
    if not isinstance(storage, _Storage):
        raise UnsafeCheckpointError(
            f"a tensor in the pickle is built from a {type(storage).__name__}, not from a storage of the file; "
            "the file may be malicious, so tsprobe refused to load it"
        )
    return storage.flat


def _int_tuple(x: Any, what: str) -> tuple[int, ...]:
    if not isinstance(x, (tuple, list, torch.Size)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in x):
        raise CheckpointError(f"malformed tensor record in the pickle: {what} is {x!r}, expected a tuple of integers")
    return tuple(int(v) for v in x)


def _view(flat: torch.Tensor, offset: Any, size: Any, stride: Any) -> torch.Tensor:
    if not isinstance(offset, int) or offset < 0:
        raise CheckpointError(f"malformed tensor record in the pickle: storage offset {offset!r}")
    size_t, stride_t = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if len(size_t) != len(stride_t) or any(s < 0 for s in size_t) or any(s < 0 for s in stride_t):
        raise CheckpointError(f"malformed tensor record in the pickle: size {size_t} / stride {stride_t}")
    try:
        return flat.as_strided(size_t, stride_t, offset)
    except RuntimeError as exc:
        raise CheckpointError(f"a tensor of the pickle lies outside its storage ({str(exc).splitlines()[0]}); the file is corrupt") from None


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _view(_check_storage(storage), storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    # backward hooks and metadata are ignored: we never run backward and never call anything from the file
    return _view(_check_storage(storage), storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    flat = _check_storage(storage)
    if not isinstance(dtype, torch.dtype):
        raise CheckpointError(f"malformed tensor record in the pickle: dtype {dtype!r}")
    if flat.dtype != dtype:
        try:
            flat = flat.view(torch.uint8).view(dtype)
        except RuntimeError as exc:
            raise CheckpointError(f"malformed tensor record in the pickle: {str(exc).splitlines()[0]}") from None
    return _view(flat, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *rest):
    if not isinstance(data, torch.Tensor):
        raise UnsafeCheckpointError(
            f"a parameter in the pickle wraps a {type(data).__name__}, not a tensor; the file may be malicious, "
            "so tsprobe refused to load it"
        )
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    if func not in _REBUILDERS or new_type is not _TENSOR_TYPE or not isinstance(args, tuple):
        raise UnsafeCheckpointError(
            "the pickle uses torch._tensor._rebuild_from_type_v2 with a function or type outside the allow-list; "
            "the file may be malicious, so tsprobe refused to load it"
        )
    return func(*args)  # state (tensor attributes) ignored


_REBUILDERS = {_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter}


def _safe_set(*args):
    if len(args) > 1:
        raise CheckpointError("malformed set in the pickle")
    return set(args[0]) if args else set()


def _safe_frozenset(*args):
    return frozenset(_safe_set(*args))


def _safe_bytes_like(kind):
    def make(*args):
        if not args:
            return kind()
        if len(args) == 1 and isinstance(args[0], (bytes, bytearray, list, tuple)):
            return kind(args[0])
        if len(args) == 2 and isinstance(args[0], str) and args[1] in ("latin1", "latin-1"):
            return kind(args[0], "latin1")
        raise CheckpointError(f"malformed {kind.__name__} in the pickle")
    return make


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    if isinstance(obj, str) and encoding in ("latin1", "latin-1", "utf-8", "utf8") and errors == "strict":
        return obj.encode(encoding)
    raise CheckpointError("malformed bytes record (_codecs.encode) in the pickle")


def _defaultdict(*args):
    # the default factory is dropped: a plain dict never calls anything on a missing key
    return dict(args[1]) if len(args) > 1 and isinstance(args[1], dict) else {}


def _counter(*args):
    return dict(args[0]) if args and isinstance(args[0], dict) else {}


def _deque(*args):
    return list(args[0]) if args and isinstance(args[0], (list, tuple)) else []


def _torch_size(*args):
    return torch.Size(_int_tuple(args[0] if args else (), "torch.Size"))


def _torch_device(*args):
    if not args or not all(isinstance(a, (str, int)) for a in args) or len(args) > 2:
        raise CheckpointError(f"malformed torch.device{args!r} in the pickle")
    return "cpu"  # everything is loaded onto the CPU


def _scalar(kind):
    def make(*args):
        if len(args) > 2 or not all(isinstance(a, (str, int, float, bool, complex)) for a in args):
            raise CheckpointError(f"malformed {kind.__name__} in the pickle")
        return kind(*args)
    return make


def _slice(*args):
    if len(args) > 3 or not all(a is None or isinstance(a, int) for a in args):
        raise CheckpointError("malformed slice in the pickle")
    return slice(*args)


def _inert_getattr(owner, name, *default):
    return InertAttribute(owner, name)


class _ObjectBase:
    """``builtins.object`` as used by ``copyreg._reconstructor``: a tag, never called."""


def _reconstructor(cls, base, state=None):
    if isinstance(cls, type) and issubclass(cls, InertObject):
        obj = cls.__new__(cls)
        if state is not None:
            obj.__dict__["tsprobe_args"] = (state,)
        return obj
    raise UnsafeCheckpointError(
        "the pickle uses copyreg._reconstructor on something other than a plain class; the file may be malicious, "
        "so tsprobe refused to load it"
    )


def _newobj(cls, *args):
    if isinstance(cls, type) and issubclass(cls, InertObject):
        return cls.__new__(cls, *args)
    if cls in (OrderedDict, dict, list, set):
        return cls()
    raise UnsafeCheckpointError(
        "the pickle uses copyreg.__newobj__ on something other than a plain class; the file may be malicious, "
        "so tsprobe refused to load it"
    )


def _newobj_ex(cls, args=(), kwargs=None):
    return _newobj(cls, *tuple(args or ()))


def _unsupported_tensor(name: str):
    def refuse(*args, **kwargs):
        raise CheckpointError(f"the file holds a tensor kind tsprobe does not read (torch._utils.{name}); save dense CPU tensors")
    return refuse


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("collections", "defaultdict"): _defaultdict,
    ("collections", "Counter"): _counter,
    ("collections", "deque"): _deque,
    ("builtins", "set"): _safe_set,
    ("builtins", "frozenset"): _safe_frozenset,
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
    ("builtins", "tuple"): tuple,
    ("builtins", "int"): _scalar(int),
    ("builtins", "float"): _scalar(float),
    ("builtins", "complex"): _scalar(complex),
    ("builtins", "bool"): _scalar(bool),
    ("builtins", "str"): _scalar(str),
    ("builtins", "bytes"): _safe_bytes_like(bytes),
    ("builtins", "bytearray"): _safe_bytes_like(bytearray),
    ("builtins", "slice"): _slice,
    ("builtins", "object"): _ObjectBase,
    ("builtins", "getattr"): _inert_getattr,
    ("_codecs", "encode"): _codecs_encode,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("copyreg", "__newobj__"): _newobj,
    ("copyreg", "__newobj_ex__"): _newobj_ex,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Tensor"): _TENSOR_TYPE,
    ("torch._tensor", "Tensor"): _TENSOR_TYPE,
    ("torch.nn.parameter", "Parameter"): _TENSOR_TYPE,
    ("torch", "Size"): _torch_size,
    ("torch", "device"): _torch_device,
}
for _name, _dtype in _STORAGE_DTYPES.items():
    ALLOWED_GLOBALS[("torch", _name)] = _Marker(f"torch.{_name}", _dtype)
ALLOWED_GLOBALS[("torch.storage", "UntypedStorage")] = _Marker("torch.UntypedStorage", torch.uint8)
ALLOWED_GLOBALS[("torch.storage", "TypedStorage")] = _Marker("torch.TypedStorage", None)
for _name in _DTYPE_NAMES:
    ALLOWED_GLOBALS[("torch", _name)] = getattr(torch, _name)
for _name in ("_rebuild_sparse_tensor", "_rebuild_qtensor", "_rebuild_nested_tensor", "_rebuild_wrapper_subclass",
              "_rebuild_meta_tensor_no_storage", "_rebuild_device_tensor_from_numpy", "_rebuild_xla_tensor",
              "_rebuild_mtia_tensor", "_rebuild_device_tensor_from_cpu_tensor", "_rebuild_sparse_csr_tensor"):
    ALLOWED_GLOBALS[("torch._utils", _name)] = _unsupported_tensor(_name)

#: Modules whose names can reach the operating system, files, the network or the interpreter.
FORBIDDEN_MODULES = frozenset("""
os posix nt posixpath ntpath subprocess _posixsubprocess sys builtins importlib imp runpy shutil socket
pickle _pickle cPickle pickletools marshal shelve dill cloudpickle joblib types ctypes _ctypes code codeop pty
webbrowser multiprocessing concurrent io _io pathlib functools operator _operator itertools tempfile signal
platform threading _thread asyncio ssl urllib urllib2 http httplib ftplib smtplib telnetlib requests pip
setuptools pkg_resources distutils inspect gc glob fileinput zipimport zipfile tarfile bdb pdb timeit trace
cProfile profile sqlite3 select selectors mmap resource pwd grp termios tty fcntl syslog _winapi msvcrt winreg
copyreg _codecs codecs collections ast dis linecache traceback weakref atexit sched site sysconfig _sitebuiltins
commands popen2 nturl2path xmlrpc logging _io shlex
""".split())

#: Module names refused wherever they appear in a dotted path (``mypkg.os.system``).
FORBIDDEN_ANYWHERE = frozenset("os posix nt subprocess builtins __builtin__ importlib runpy pickle _pickle marshal ctypes pty".split())

#: Names that are refused under any module (they run commands, evaluate code or load more pickles).
FORBIDDEN_NAMES = frozenset("""
system popen Popen popen2 popen3 popen4 spawnl spawnle spawnlp spawnlpe spawnv spawnve spawnvp spawnvpe
execl execle execlp execlpe execv execve execvp execvpe fork forkpty startfile eval exec execfile compile
__import__ import_module __builtins__ __globals__ __subclasses__ __code__ __getattribute__ check_output
check_call getoutput getstatusoutput loads _load_from_bytes load_module exec_module getattr setattr delattr
globals locals breakpoint
""".split())

#: torch namespaces whose classes become inert stand-ins (modules, losses, optimizers, schedulers).
STANDIN_TORCH_PREFIXES = ("torch.nn.modules.", "torch.nn.utils.", "torch.optim.", "torch.nn.functional")


def _normalise(module: str, name: str) -> tuple[str, str]:
    """Python 2 names in protocol-2 pickles (``__builtin__.set``, ``copy_reg``) to Python 3 ones."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return module, name


def _forbidden(module: str, name: str, why: str) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f"forbidden global '{module}.{name}' in the pickle ({why}); the file may be malicious, "
        "so tsprobe refused to load it (nothing from it was run)"
    )


def resolve_global(module: str, name: str, cache: dict[tuple[str, str], type]) -> Any:
    """What a pickle's ``GLOBAL module name`` means to us: an allowed callable, a stand-in class, or a refusal."""
    if not isinstance(module, str) or not isinstance(name, str):
        raise _forbidden(str(module), str(name), "not a plain name")
    module, name = _normalise(module, name)
    key = (module, name)
    if key in ALLOWED_GLOBALS:
        return ALLOWED_GLOBALS[key]
    parts = module.split(".") + name.split(".")
    if parts[0] in FORBIDDEN_MODULES:
        raise _forbidden(module, name, f"module '{parts[0]}' can reach the system or the interpreter")
    bad = [p for p in parts if p in FORBIDDEN_NAMES or p in FORBIDDEN_ANYWHERE]
    if bad:
        raise _forbidden(module, name, f"'{bad[0]}' can run code")
    if parts[0] == "torch" and not (module + ".").startswith(STANDIN_TORCH_PREFIXES):
        raise _forbidden(module, name, "a torch function outside tsprobe's allow-list")
    if not all(p.isidentifier() for p in parts):
        raise _forbidden(module, name, "not a valid Python name")
    if key not in cache:
        cache[key] = type(name.split(".")[-1], (InertObject,), {
            "tsprobe_module": module, "tsprobe_name": name, "__module__": "timescale_probe.checkpoints.inert",
        })
    return cache[key]


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


# ----------------------------------------------------------------------------- the two torch serialisations


def _flat_from_bytes(data: bytes | bytearray, dtype: torch.dtype, big_endian: bool = False) -> torch.Tensor:
    elsize = torch.empty((), dtype=dtype).element_size()
    if len(data) % elsize:
        raise CheckpointError(f"a storage of {len(data)} bytes is not a whole number of {dtype} values; the file is corrupt")
    buf = bytearray(data)
    if not buf:
        return torch.empty(0, dtype=dtype)
    raw = torch.frombuffer(buf, dtype=torch.uint8)
    if big_endian and elsize > 1:
        raw = raw.view(-1, elsize).flip(1).contiguous().view(-1)
    return raw.view(dtype)


def _wrap_errors(exc: BaseException, path: Path, what: str) -> CheckpointError:
    if isinstance(exc, CheckpointError):
        return exc
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, (EOFError, struct.error, zipfile.BadZipFile)) or "truncated" in detail.lower() or "ran out of input" in detail.lower():
        return CheckpointError(f"{path} ends early ({what}): the file is truncated or corrupt; download or save it again")
    return CheckpointError(f"cannot read {path} as {what}: {detail}; the file is corrupt or not a PyTorch checkpoint")


def load_zip_torch_file(path: str | os.PathLike) -> Any:
    """Unpickle ``data.pkl`` of a zip-format ``torch.save`` file with the restricted unpickler."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            pkls = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
            if not pkls:
                if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
                    raise CheckpointError(
                        f"{path} is a TorchScript archive (torch.jit.save), not a torch.save checkpoint; "
                        "load it in a trusted environment and save its state_dict() with torch.save"
                    )
                raise CheckpointError(f"{path} is a zip archive without data.pkl: not a PyTorch checkpoint")
            prefix = pkls[0][: -len("data.pkl")]
            big = False
            if prefix + "byteorder" in names:
                big = zf.read(prefix + "byteorder").strip() == b"big"
            total = path.stat().st_size
            storages: dict[str, _Storage] = {}

            def load_storage(dtype: torch.dtype, key: str, numel: int, view: Any) -> _Storage:
                if key not in storages:
                    record = f"{prefix}data/{key}"
                    try:
                        info = zf.getinfo(record)
                    except KeyError:
                        raise CheckpointError(f"{path}: storage record '{record}' is missing; the file is corrupt") from None
                    if info.file_size > total * 4 + (1 << 20) and info.compress_type == zipfile.ZIP_STORED:
                        raise CheckpointError(f"{path}: storage record '{record}' claims an impossible size; the file is corrupt")
                    storages[key] = _Storage(_flat_from_bytes(zf.read(record), dtype, big))
                st = storages[key]
                if st.flat.dtype != dtype:  # the same bytes seen as another dtype
                    return _Storage(st.flat.view(torch.uint8).view(dtype))
                return st

            data = zf.read(pkls[0])
            return RestrictedUnpickler(io.BytesIO(data), storage_loader=load_storage).load()
    except CheckpointError:
        raise
    except RecursionError:
        raise CheckpointError(f"{path}: the pickle nests too deeply; the file is corrupt or hostile") from None
    except Exception as exc:  # noqa: BLE001 (zipfile/pickle errors of any kind become one line)
        raise _wrap_errors(exc, path, "a zip-format PyTorch checkpoint") from None


def load_legacy_torch_file(path: str | os.PathLike) -> Any:
    """Unpickle a legacy (``_use_new_zipfile_serialization=False``) ``torch.save`` file."""
    path = Path(path)
    data = path.read_bytes()
    f = io.BytesIO(data)
    try:
        magic = RestrictedUnpickler(f).load()
        if magic != LEGACY_MAGIC_NUMBER:
            raise CheckpointError(
                f"{path} is a Python pickle but not a PyTorch checkpoint (no torch.save magic number); "
                "tsprobe reads torch.save files only"
            )
        proto = RestrictedUnpickler(f).load()
        if proto != LEGACY_PROTOCOL_VERSION:
            raise CheckpointError(f"{path}: unsupported legacy torch protocol version {proto!r}")
        sys_info = RestrictedUnpickler(f).load()
        little = not (isinstance(sys_info, dict) and sys_info.get("little_endian") is False)
        pending: dict[str, tuple[torch.dtype, int]] = {}
        storages: dict[str, _Storage] = {}

        def load_storage(dtype: torch.dtype, key: str, numel: int, view: Any) -> _Storage:
            elsize = torch.empty((), dtype=dtype).element_size()
            if numel * elsize > len(data):
                raise CheckpointError(f"{path}: a storage claims {numel} values, more than the file holds; the file is corrupt")
            if key not in storages:
                storages[key] = _Storage(torch.empty(numel, dtype=dtype))
                pending[key] = (dtype, numel)
            st = storages[key]
            if view is not None:
                if not (isinstance(view, tuple) and len(view) == 3 and all(isinstance(v, (int, str)) for v in view)):
                    raise CheckpointError(f"{path}: malformed storage view {view!r}; the file is corrupt")
                _, offset, size = view
                return _Storage(st.flat[int(offset): int(offset) + int(size)])
            return st

        result = RestrictedUnpickler(f, storage_loader=load_storage, allow_module_ids=True).load()
        keys = RestrictedUnpickler(f).load()
        if not isinstance(keys, list):
            raise CheckpointError(f"{path}: malformed storage key list; the file is corrupt")
        pos = f.tell()
        for key in keys:
            key = str(key)
            if key not in pending:
                raise CheckpointError(f"{path}: storage '{key}' listed but never used; the file is corrupt")
            dtype, numel = pending[key]
            elsize = storages[key].flat.element_size()
            if pos + 8 > len(data):
                raise EOFError
            (stored,) = struct.unpack("<q" if little else ">q", data[pos: pos + 8])
            nbytes = stored * elsize
            if stored != numel or pos + 8 + nbytes > len(data):
                raise EOFError if pos + 8 + nbytes > len(data) else CheckpointError(
                    f"{path}: storage '{key}' has {stored} values, expected {numel}; the file is corrupt")
            flat = _flat_from_bytes(data[pos + 8: pos + 8 + nbytes], dtype, big_endian=not little)
            storages[key].flat.copy_(flat)
            pos += 8 + nbytes
        return result
    except CheckpointError:
        raise
    except RecursionError:
        raise CheckpointError(f"{path}: the pickle nests too deeply; the file is corrupt or hostile") from None
    except Exception as exc:  # noqa: BLE001
        raise _wrap_errors(exc, path, "a legacy PyTorch checkpoint") from None


def load_torch_file_restricted(path: str | os.PathLike) -> Any:
    """Read any ``torch.save`` file (zip or legacy) into plain containers, tensors and inert stand-ins."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK"):
        return load_zip_torch_file(path)
    return load_legacy_torch_file(path)
