"""What a pickle's globals may mean: an allow-list of argument-checked re-implementations, refusals,
and inert stand-in classes for everything else (:func:`resolve_global`).

Never imports a module named in a file. See :mod:`.safe_unpickle` for the whole design.
"""
from __future__ import annotations

import _compat_pickle
from collections import OrderedDict
from typing import Any

import torch

from ..errors import CheckpointError, UnsafeCheckpointError
from .inert import InertAttribute, InertObject, _Marker, _Storage

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


def _restore_type_tag(value, type_str=None):
    return value


def _as_list(data):
    if not isinstance(data, (list, tuple)):
        raise CheckpointError("a TorchScript list in the file is not a list; the file is corrupt")
    return list(data)


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
# TorchScript archives (torch.jit.save) tag containers with their static type; the helpers of
# torch.jit._pickle return their first argument, so ours do exactly that and nothing else
ALLOWED_GLOBALS[("torch.jit._pickle", "restore_type_tag")] = _restore_type_tag
for _name in ("build_intlist", "build_doublelist", "build_boollist", "build_tensorlist"):
    ALLOWED_GLOBALS[("torch.jit._pickle", _name)] = _as_list
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
