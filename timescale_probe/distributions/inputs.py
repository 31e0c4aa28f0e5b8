"""Reading timescales (``.npy`` arrays, CSV tables, checkpoints) and choosing the scopes to fit
(``layers``)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import InputError, OptionError

__all__ = ["load_timescales", "layer_timescales", "parse_layers"]


def parse_layers(spec: str | Sequence | None, available: Sequence) -> list[tuple[str, list]]:
    """Scopes from ``layers``: ``pooled`` (every unit), ``each`` (each layer), ``all`` (each layer
    and pooled; just pooled when there is one layer), or a comma-separated list of layer labels and
    the words above, e.g. ``1,2`` or ``2,pooled``. Returns ``[(scope name, [layers])]``."""
    available = list(available)
    items = ["all"] if spec is None else ([s.strip() for s in spec.split(",")] if isinstance(spec, str)
                                           else [str(s) for s in spec])
    items = [i for i in items if i]
    if not items:
        raise OptionError("layers is empty: use pooled, each, all or layer numbers such as 1,2", param="layers")
    by_label = {str(l): l for l in available}
    scopes: list[tuple[str, list]] = []

    def add(name, layers):
        if name not in [s[0] for s in scopes]:
            scopes.append((name, layers))

    for item in items:
        low = item.lower()
        if low == "all":
            if len(available) > 1:
                for l in available:
                    add(f"layer {l}", [l])
            add("pooled", available)
        elif low == "each":
            for l in available:
                add(f"layer {l}", [l])
        elif low == "pooled":
            add("pooled", available)
        elif item in by_label:
            add(f"layer {item}", [by_label[item]])
        else:
            raise OptionError(
                f"layers: no layer '{item}' (layers present: {', '.join(map(str, available)) or 'none'}); "
                "use pooled, each, all or layer labels", param="layers"
            )
    return scopes


_TABLE_SUFFIXES = (".csv", ".tsv", ".txt")


def _numeric(values, where: str) -> np.ndarray:
    """Column as float64; blank cells and 'nan' become NaN (excluded and counted later), any other
    text is an InputError naming the first bad cell."""
    s = pd.Series(values)
    if pd.api.types.is_bool_dtype(s):
        raise InputError(f"{where}: values are true/false, not timescales")
    if pd.api.types.is_numeric_dtype(s):
        return s.to_numpy(dtype=np.float64)
    text = s.astype(str).str.strip()
    blank = s.isna() | text.str.lower().isin(["", "nan"])
    conv = pd.to_numeric(text.where(~blank, "nan"), errors="coerce")
    bad = conv.isna() & ~blank
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"{where}: non-numeric value {text.iloc[i][:40]!r} in data row {i + 1}")
    return conv.to_numpy(dtype=np.float64)


def _load_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as fh:
        if fh.read(6) != b"\x93NUMPY":
            raise InputError(f"cannot read {path} as a .npy array: no NPY header (save it with numpy.save)")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        msg = str(exc).splitlines()[0]
        if "allow_pickle" in msg or "Object arrays" in msg:
            raise InputError(f"{path} holds Python objects, not numbers; save a float array "
                             "(np.save(path, np.asarray(T, dtype=float)))") from None
        raise InputError(f"cannot read {path} as a .npy array: {msg}") from None
    except Exception as exc:  # noqa: BLE001  (truncated file, not npy)
        raise InputError(f"cannot read {path} as a .npy array: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if not isinstance(arr, np.ndarray):
        raise InputError(f"{path} is an .npz archive; give one .npy array per layer")
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{path} holds {arr.dtype} values; expected real numbers (timescales in steps)")
    if arr.ndim != 1:
        raise InputError(f"{path} has shape {arr.shape}; expected a 1-D array of timescales (one file per layer)")
    if arr.size == 0:
        raise InputError(f"{path} is empty")
    return arr.astype(np.float64)


def _is_number(text: str) -> bool:
    """Whether ``text`` is a number as float() reads it ('1.5', '2e-3', 'inf', 'nan')."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _headerless(path: Path, column: str | None) -> pd.DataFrame:
    """A table without a header whose cells are numbers: one column of timescales."""
    if column not in (None, "T"):
        raise InputError(f"{path} has no header (its first line holds numbers), so it has no column '{column}'")
    df = pd.read_csv(path, sep=r"[,\t ]+", engine="python", header=None, skipinitialspace=True)
    if df.shape[1] != 1:
        raise InputError(f"{path} has no header and {df.shape[1]} columns; write one timescale per line, "
                         "or add a header with a T column")
    df.columns = ["T"]
    return df


def _load_csv(path: Path, column: str | None) -> pd.DataFrame:
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        df = pd.read_csv(path, sep=sep, low_memory=False)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot read {path} as a CSV table: {str(exc).splitlines()[0]}") from None
    df.columns = [str(c).strip() for c in df.columns]
    if len(df.columns) and all(_is_number(part) for c in df.columns for part in c.split()):
        df = _headerless(path, column)  # one number per line, as np.savetxt writes: the first line is data
        column = "T"
    if column is None:
        for cand in ("T", "T_data", "T_bias"):
            if cand in df.columns:
                column = cand
                break
        else:
            raise InputError(f"{path} has no timescale column (looked for T, T_data, T_bias; columns: "
                             f"{', '.join(df.columns[:12])}); name one with the column option")
    elif column not in df.columns:
        raise InputError(f"{path} has no column '{column}' (columns: {', '.join(df.columns[:12])})")
    if len(df) == 0:
        raise InputError(f"{path} has a header but no rows")
    out = pd.DataFrame({"T": _numeric(df[column], f"{path}, column {column}")})
    if "layer" in df.columns:
        layer = _numeric(df["layer"], f"{path}, column layer")
        if np.any(~np.isfinite(layer)) or np.any(layer != np.round(layer)):
            raise InputError(f"{path}: column 'layer' must hold whole layer numbers")
        out.insert(0, "layer", layer.astype(int))
    out["unit"] = (out.groupby("layer").cumcount() if "layer" in out.columns else np.arange(len(out)))
    if "unit" in df.columns:
        try:
            out["unit"] = _numeric(df["unit"], f"{path}, column unit").astype(int)
        except (InputError, ValueError):
            pass
    out.attrs["column"] = column
    return out


def load_timescales(paths: str | os.PathLike | Sequence[str | os.PathLike], column: str | None = None, *,
                    layer_names: Sequence | None = None, convention: str = "paper") -> pd.DataFrame:
    """Read timescales into a table ``layer, unit, T, source``.

    Inputs, by suffix: ``.npy`` (1-D float array; several files are layers 1..k in the given order,
    or named by ``layer_names``), ``.csv``/``.tsv`` (a column ``T``, else ``T_data``, else
    ``T_bias``, or ``column``; a ``layer`` column is used when present), anything else a checkpoint
    (``load_checkpoint``; its ``T_bias`` under ``convention``). Several inputs must be one layer
    each. ``df.attrs['column']`` says which column was read.
    """
    from ..fileio import require_file

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise OptionError("no input given: pass a checkpoint, a CSV with a T column, or .npy arrays")
    frames, used_column = [], None
    for p in paths:
        require_file(p, "timescales input")
        suffix = p.suffix.lower()
        if suffix == ".npy":
            if column not in (None, "T"):
                raise OptionError(f"column '{column}' applies to CSV tables, not to .npy arrays ({p})", param="column")
            arr = _load_npy(p)
            f = pd.DataFrame({"unit": np.arange(arr.size), "T": arr})
            used_column = used_column or "T"
        elif suffix in _TABLE_SUFFIXES:
            f = _load_csv(p, column)
            used_column = used_column or f.attrs["column"]
        elif suffix == ".npz":
            raise InputError(f"{p}: .npz archives are not read; give one .npy array per layer")
        else:
            if column not in (None, "T_bias", "T"):
                raise OptionError(f"a checkpoint gives T_bias only; '{column}' needs a timescales table "
                                  f"(measure T_data first and pass the CSV) ({p})")
            from ..checkpoints import load_checkpoint

            table = load_checkpoint(p).timescales_table(convention=convention)
            f = table[["layer", "unit"]].copy()
            f["T"] = table["T_bias"].to_numpy(dtype=np.float64)
            used_column = used_column or "T_bias"
        f["source"] = str(p)
        frames.append(f)
    if len(frames) > 1:
        if any("layer" in f.columns for f in frames):
            raise OptionError("several inputs must be one layer each (.npy arrays or CSVs without a layer "
                              "column); a checkpoint or layered table is given alone")
        for i, f in enumerate(frames, 1):
            f.insert(0, "layer", i)
    elif "layer" not in frames[0].columns and layer_names is not None:
        frames[0].insert(0, "layer", 1)
    df = pd.concat(frames, ignore_index=True)
    if layer_names is not None:
        names = [str(s).strip() for s in (layer_names.split(",") if isinstance(layer_names, str) else layer_names)]
        present = list(dict.fromkeys(df["layer"]))
        if len(names) != len(present) or len(set(names)) != len(names):
            raise OptionError(f"layer_names gives {len(names)} distinct names for {len(present)} layers",
                              param="layer_names")
        labels = [int(s) if s.lstrip("-").isdigit() else s for s in names]
        df["layer"] = df["layer"].map(dict(zip(present, labels)))
    df.attrs["column"] = used_column
    df.attrs["convention"] = convention
    return df


def layer_timescales(path: str | os.PathLike, layer: int, n_units: int, column: str = "T_data") -> np.ndarray:
    """The timescales of every unit of one ``layer`` from a table written by
    ``tsprobe estimate-timescales`` (read by :func:`load_timescales`), in unit order.

    The table must have ``layer`` and ``unit`` columns and list units ``0 .. n_units - 1`` of the
    layer exactly once (InputError otherwise): an ablation orders exactly those units.
    """
    df = load_timescales(path, column)
    if "layer" not in df.columns:
        raise InputError(f"{path} has no layer column; write it with tsprobe estimate-timescales")
    sub = df[df["layer"] == layer].sort_values("unit", kind="stable")
    if len(sub) != n_units or not np.array_equal(sub["unit"].to_numpy(), np.arange(n_units)):
        raise InputError(f"{path} does not list units 0-{n_units - 1} of layer {layer} exactly once "
                         f"({len(sub)} rows for that layer)")
    return sub["T"].to_numpy(dtype=np.float64)
