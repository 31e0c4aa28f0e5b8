"""Unit groups of one layer, ordered by timescale (see :mod:`timescale_probe.ablation`): the spec
parser (``chunks:N``, ``quantiles:K``, ``edges:a,b,...``, ``units:LIST|FILE``), random control
groups and the groups table."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError, OptionError
from ..validation import check_ascending


@dataclass
class UnitGroup:
    """A set of units of one layer. ``kind`` is ``group`` or ``control``; ``T`` the timescales of
    its units (in steps, same order as ``units``)."""

    name: str
    layer: int
    units: np.ndarray
    T: np.ndarray
    kind: str = "group"

    @property
    def size(self) -> int:
        return len(self.units)

    def summary(self) -> dict[str, Any]:
        T = self.T[np.isfinite(self.T)] if np.any(np.isfinite(self.T)) else self.T
        return {
            "group": self.name, "kind": self.kind, "layer": self.layer, "size": self.size,
            "T_mean": float(np.mean(T)) if len(T) else float("nan"),
            "T_median": float(np.median(self.T)) if self.size else float("nan"),
            "T_min": float(np.min(self.T)) if self.size else float("nan"),
            "T_max": float(np.max(self.T)) if self.size else float("nan"),
            "units": " ".join(str(int(u)) for u in self.units),
        }


def timescale_order(T: np.ndarray) -> np.ndarray:
    """Unit indices sorted by timescale, longest first; ties (and NaN last) keep unit order."""
    T = np.asarray(T, dtype=np.float64)
    key = np.where(np.isnan(T), -np.inf, T)
    return np.argsort(-key, kind="stable")


def _parse_unit_list(text: str, n_units: int, where: str) -> np.ndarray:
    parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
    units = []
    for p in parts:
        if re.fullmatch(r"\d+-\d+", p):
            a, b = (int(v) for v in p.split("-"))
            units.extend(range(a, b + 1))
        elif p.isdigit():
            units.append(int(p))
        else:
            raise OptionError(f"cannot read unit '{p}' in {where}: give unit numbers from 0, e.g. 1,5,9 or 10-19")
    arr = np.array(units, dtype=np.int64)
    if len(arr) == 0:
        raise OptionError(f"no units in {where}")
    bad = arr[(arr < 0) | (arr >= n_units)]
    if len(bad):
        raise OptionError(f"unit {int(bad[0])} in {where} is out of range: the layer has units 0-{n_units - 1}")
    if len(np.unique(arr)) != len(arr):
        raise OptionError(f"{where} names a unit twice")
    return arr


def make_groups(spec: str, T: np.ndarray, layer: int) -> list[UnitGroup]:
    """Groups of one layer's units from a spec (see the module docstring). ``T``: timescale of
    every unit of the layer (index = unit number), used for ordering and labels."""
    T = np.asarray(T, dtype=np.float64)
    H = len(T)
    kind, _, arg = str(spec).partition(":")
    kind = kind.strip().lower()
    order = timescale_order(T)

    def grp(i: int, units: np.ndarray) -> UnitGroup:
        return UnitGroup(str(i), layer, units, T[units])

    if kind in ("chunks", "quantiles"):
        try:
            n = int(arg)
        except ValueError:
            raise OptionError(f"cannot read '{spec}': use {kind}:N with a whole number", param="groups") from None
        if n < 1 or n > H:
            raise OptionError(f"'{spec}': N must lie in 1..{H} (units in layer {layer})", param="groups")
        parts = [order[s:s + n] for s in range(0, H, n)] if kind == "chunks" else np.array_split(order, n)
        return [grp(i, p) for i, p in enumerate(parts, 1)]
    if kind == "edges":
        try:
            edges = [float(v) for v in arg.split(",") if v.strip()]
        except ValueError:
            raise OptionError(f"cannot read '{spec}': use edges:a,b,... with timescales in steps",
                              param="groups") from None
        if not edges:
            raise OptionError(f"'{spec}' gives no edges", param="groups")
        check_ascending(edges, "groups", spec)  # refused, as --bin-edges are, never sorted silently
        which = np.searchsorted(np.asarray(edges), T, side="right")  # 0 = below the first edge
        groups = []
        for b in range(len(edges), -1, -1):  # longest range first
            members = order[which[order] == b]
            if len(members):
                groups.append(members)
        return [grp(i, p) for i, p in enumerate(groups, 1)]
    if kind == "units":
        path = Path(arg.strip())
        if arg.strip() and not re.fullmatch(r"[\d,\s-]+", arg) and path.exists():
            if path.is_dir():
                raise InputError(f"unit list is a directory, expected a file: {path}")
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise InputError(f"unit list {path} is not UTF-8 text") from None
            lines = [l.split("#", 1)[0].strip() for l in text.splitlines()]
            lines = [l for l in lines if l]
            if not lines:
                raise InputError(f"unit list {path} has no units")
            return [grp(i, _parse_unit_list(l, H, f"{path} line {i}")) for i, l in enumerate(lines, 1)]
        if not re.fullmatch(r"[\d,\s-]+", arg or ""):
            raise OptionError(f"unit list file not found: {arg.strip() or '(empty)'}", param="groups")
        return [grp(1, _parse_unit_list(arg, H, f"'{spec}'"))]
    raise OptionError(f"unknown group spec '{spec}': use chunks:N, quantiles:K, edges:a,b,... or units:LIST|FILE",
                      param="groups")


def check_group_spec(spec: str) -> None:
    """The syntax of a group spec, before the layer is known (its size is checked by :func:`make_groups`)."""
    kind, _, arg = str(spec).partition(":")
    kind = kind.strip().lower()
    if kind in ("chunks", "quantiles"):
        try:
            n = int(arg)
        except ValueError:
            raise OptionError(f"cannot read '{spec}': use {kind}:N with a whole number", param="groups") from None
        if n < 1:
            raise OptionError(f"'{spec}': N must be >= 1", param="groups")
    elif kind == "edges":
        make_groups(spec, np.ones(1), 1)
    elif kind == "units":
        a = arg.strip()
        if not (re.fullmatch(r"[\d,\s-]+", a) or Path(a).is_file()):
            make_groups(spec, np.ones(1), 1)  # the same one-line error as later
    else:
        make_groups(spec, np.ones(1), 1)


def control_groups(n_units: int, size: int | Sequence[int], k: int, T: np.ndarray, layer: int,
                   seed: int = 0) -> list[UnitGroup]:
    """``k`` random groups of units (without replacement within a group), seeded.

    ``size``: one size for every group, or a sequence of sizes that the groups take in turn
    (control ``j`` has ``size[(j - 1) % len(size)]`` units), so that controls can match the sizes
    of the timescale groups they are a null for."""
    if k <= 0:
        return []
    sizes = [int(size)] if np.ndim(size) == 0 else [int(s) for s in size]
    if not sizes or min(sizes) < 1:
        raise OptionError(f"control group sizes must be >= 1, got {size}")
    if max(sizes) > n_units:
        raise OptionError(f"control groups of {max(sizes)} units do not fit in a layer of {n_units}")
    rng = np.random.default_rng(seed)
    T = np.asarray(T, dtype=np.float64)
    out = []
    for j in range(1, k + 1):
        units = np.sort(rng.choice(n_units, size=sizes[(j - 1) % len(sizes)], replace=False))
        out.append(UnitGroup(f"control {j}", layer, units, T[units], kind="control"))
    return out


def groups_table(groups: Sequence[UnitGroup]) -> pd.DataFrame:
    """One row per group: ``group, kind, layer, size, T_mean, T_median, T_min, T_max, units``."""
    return pd.DataFrame([g.summary() for g in groups])
