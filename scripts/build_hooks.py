"""Build hook named in ``pyproject.toml`` (``[tool.setuptools] cmdclass``): a wheel carries the
shipped demo checkpoints as package data.

The checkpoints live once, in ``checkpoints/`` of the source tree. Building a wheel copies the ones
:data:`timescale_probe.locations.SHIPPED_CHECKPOINTS` names, byte for byte, into
``timescale_probe/shipped/`` of the wheel, where :func:`timescale_probe.locations.shipped_checkpoints_dir`
finds them after ``pip install``. They are copied as they are (float32, about 15 MB each; the wheel's
zip deflates them to about 14 MB): a lossless repacking (byte planes + xz) would save about 10% more,
and anything lossy would change the demo's tables. An editable install needs no copy: the package
then finds ``checkpoints/`` of the checkout. A build from a tree without them fails with a message
instead of producing a wheel whose demo cannot run.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parents[1]


def shipped_names() -> tuple[str, ...]:
    """``SHIPPED_CHECKPOINTS`` read from ``timescale_probe/locations.py`` (loaded on its own: the
    build environment need not have the package's dependencies)."""
    spec = importlib.util.spec_from_file_location("_tsprobe_locations", ROOT / "timescale_probe" / "locations.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(module.SHIPPED_CHECKPOINTS)


class BuildPyWithCheckpoints(build_py):
    """``build_py`` that also copies the shipped checkpoints into ``timescale_probe/shipped/``."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "timescale_probe" / "shipped"
        self.mkpath(str(target))
        for name in shipped_names():
            source = ROOT / "checkpoints" / name
            if not source.is_file():
                raise SystemExit(f"build: {source} is missing; a tsprobe wheel ships it (the demo compares it). "
                                 "Build from a full source checkout (git clone) or an sdist that includes it.")
            self.copy_file(str(source), str(target / name))
