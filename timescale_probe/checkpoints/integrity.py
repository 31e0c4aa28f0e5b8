"""Integrity of checkpoint files: the CRC-32 every record of a zip-format ``torch.save`` file carries.

torch reads zip checkpoints without checking these checksums, so a file damaged on disk or in a
download (a run of zeroed bytes in the middle) loads without complaint, with some weights silently
wrong. :func:`check_zip_records` reads each record once and compares it with its stored CRC-32
(about as fast as reading the file; the loader calls it before ``torch.load``). Files in torch's
legacy (pre-1.6, non-zip) format carry no checksum: the loader says so in the stack's notes.
"""
from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

from ..errors import CheckpointError

__all__ = ["check_zip_records", "is_torchscript_names", "LEGACY_NO_CHECKSUM_NOTE"]

LEGACY_NO_CHECKSUM_NOTE = ("torch legacy (non-zip) format: the file carries no checksum, so damage to it cannot be "
                           "detected; compare its sha256 with the source's")

_CHUNK = 1 << 20


def is_torchscript_names(names: list[str]) -> bool:
    """Whether a zip's record names are a TorchScript archive's (``torch.jit.save``: ``code/`` and
    ``constants.pkl`` beside ``data.pkl``), which ``torch.load`` would hand to ``torch.jit.load``."""
    return any(n.endswith("constants.pkl") or "/code/" in n for n in names)


def check_zip_records(path: str | os.PathLike) -> int:
    """Compare every record of the zip file ``path`` with its stored CRC-32; returns how many
    records were checked (0 when the archive's directory cannot be read: the loader's readers
    then report the damage). A mismatch (or a record that cannot be read) raises
    :class:`CheckpointError` naming the record."""
    p = Path(path)
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError):  # no readable directory (a truncated file): the torch readers say so
        return 0
    with zf:
        infos = zf.infolist()
        for info in infos:
            try:
                with zf.open(info) as fh:  # zipfile compares the CRC-32 when a record is read to its end
                    while fh.read(_CHUNK):
                        pass
            except zipfile.BadZipFile as exc:
                if "CRC" in str(exc):
                    raise CheckpointError(
                        f"{p}: record '{info.filename}' does not match its CRC-32 (stored {info.CRC:08x}): the file "
                        "is corrupted; download or copy it again") from None
                raise CheckpointError(f"{p}: record '{info.filename}' cannot be read ({exc}): the file is corrupted; "
                                      "download or copy it again") from None
            except (OSError, EOFError, zlib.error) as exc:
                raise CheckpointError(f"{p}: record '{info.filename}' cannot be read ({exc}): the file is corrupted; "
                                      "download or copy it again") from None
    return len(infos)
