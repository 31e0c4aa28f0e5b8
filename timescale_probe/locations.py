"""Where tsprobe looks for files it was not given: the one place that knows the layout of a source
checkout and of an installed wheel.

- **Shipped checkpoints** (the small PTB baseline and MTS models the demo compares): a wheel holds
  them as package data in ``timescale_probe/shipped/`` (copied there when the wheel is built, byte
  for byte, by ``scripts/build_hooks.py``); a source checkout (an editable install, or the package
  imported from the checkout) has them in ``checkpoints/``.
- **The source checkout** (``checkpoints/``, ``figures/dyck``, ``figures/seeds``): only when the
  package is imported from one, recognised by ``pyproject.toml`` and ``timescale_probe/`` side by
  side. An installed wheel has no checkout: inputs that live only there must be passed explicitly.
- **Reference data** (the authors' arrays, ``reference-results/``; corpora, ``corpora/``): in the
  folder ``$TSPROBE_SHARED`` names, else in ``../shared`` beside a source checkout. Nothing else is
  searched (not the current directory, not site-packages).

Every function returns ``None`` (never a guess) when the thing is not there, so callers can say
what is missing and which option or variable supplies it.
"""
from __future__ import annotations

import os
from pathlib import Path

#: The checkpoints a wheel ships (the demo's pair); a checkout has these and the Markov-PTB baseline.
SHIPPED_CHECKPOINTS = ("ptb-baseline-small.pt", "ptb-mts-small.pt")

#: Package-data folder of a wheel install holding :data:`SHIPPED_CHECKPOINTS`.
PACKAGE_DATA_DIR = Path(__file__).resolve().parent / "shipped"

#: Environment variable naming the folder that holds ``reference-results/`` and ``corpora/``.
SHARED_ENV = "TSPROBE_SHARED"


def source_checkout() -> Path | None:
    """The source checkout the package was imported from, or None for an installed wheel."""
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "timescale_probe" / "__init__.py").is_file():
        return root
    return None


def shipped_checkpoints_dir() -> Path | None:
    """The folder holding every file of :data:`SHIPPED_CHECKPOINTS`: the wheel's package data,
    else the checkout's ``checkpoints/``; None when neither has them all."""
    candidates = [PACKAGE_DATA_DIR]
    checkout = source_checkout()
    if checkout is not None:
        candidates.append(checkout / "checkpoints")
    for folder in candidates:
        if all((folder / name).is_file() for name in SHIPPED_CHECKPOINTS):
            return folder
    return None


def checkout_path(*parts: str) -> Path | None:
    """``<checkout>/parts...`` of the source checkout, or None outside one (whether or not it exists)."""
    checkout = source_checkout()
    return None if checkout is None else checkout.joinpath(*parts)


def shared_dir() -> Path | None:
    """``$TSPROBE_SHARED`` when set, else ``../shared`` beside a source checkout; None otherwise.
    Returned whether or not the folder exists: callers check the part they need."""
    env = os.environ.get(SHARED_ENV)
    if env:
        return Path(env).expanduser()
    checkout = source_checkout()
    return None if checkout is None else checkout.parent / "shared"


def reference_results_dir() -> Path | None:
    """The authors' reference results (``<shared>/reference-results``), if that folder exists."""
    shared = shared_dir()
    p = None if shared is None else shared / "reference-results"
    return p if p is not None and p.is_dir() else None


def where_reference_results_are_looked_for() -> str:
    """One phrase naming where :func:`reference_results_dir` looked, for 'not found' messages."""
    env = os.environ.get(SHARED_ENV)
    if env:
        return f"${SHARED_ENV}/reference-results ({Path(env).expanduser() / 'reference-results'})"
    checkout = source_checkout()
    if checkout is not None:
        return (f"../shared/reference-results beside the source checkout ({checkout.parent / 'shared' / 'reference-results'}); "
                f"${SHARED_ENV} is not set")
    return f"nowhere by default outside a source checkout (${SHARED_ENV} is not set)"
