"""Reading every supported checkpoint format into one :class:`~timescale_probe.stack.LSTMStack`.

``load_checkpoint(path)`` detects the format; nothing in a file can run code (see ``safe_unpickle``).
"""
from __future__ import annotations

from .loader import FORMATS, load_checkpoint, sniff  # noqa: F401
from .ours import FORMAT_NAME, FORMAT_VERSION, read_card, save_checkpoint  # noqa: F401
