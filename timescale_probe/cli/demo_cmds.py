"""Commands of this group are registered on ``app`` (see ``timescale_probe/cli/__init__.py``)."""
from __future__ import annotations

from . import app  # noqa: F401
