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

Modules: :mod:`.inert` (the stand-ins), :mod:`.allowlist` (what each global means),
:mod:`.unpickler` (the opcodes), this one (the two torch serialisations, and the public names).
"""
from __future__ import annotations

import io
import os
import struct
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from .allowlist import (  # noqa: F401 (re-exported: the allow-list's public names)
    ALLOWED_GLOBALS,
    FORBIDDEN_ANYWHERE,
    FORBIDDEN_MODULES,
    FORBIDDEN_NAMES,
    STANDIN_TORCH_PREFIXES,
    resolve_global,
)
from .inert import InertAttribute, InertObject, _Storage, is_inert  # noqa: F401 (re-exported)
from .unpickler import RestrictedUnpickler

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001


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
