"""Retention-gate bias <-> memory timescale, and multi-timescale (MTS) specs: the public home of both.

This module gathers, under one name, what lives in two lower-level modules, and adds the spec text
parser (which reads baseline files, so it sits above :mod:`timescale_probe.distributions`):

- :mod:`timescale_probe.timescale_math`: ``forget_bias_to_timescale`` / ``timescale_to_forget_bias``
  under both conventions (``paper`` T = -1/log f, ``chrono`` T = 1/(1-f)) and any gate activation
  (sigmoid, Keras 2 / Keras 3 hard sigmoid), gate values to timescales, population memory,
  summaries (infinite timescales counted apart);
- :mod:`timescale_probe.mts_specs`: the spec classes, presets (``baseline``, ``paper-lm``,
  ``paper-dyck``) and ``apply_mts_spec`` (LSTM forget and GRU update gates).

Per-layer spec text (layers separated by ``;``, e.g. ``fixed:3,4;ig:0.56;free``):

- ``free``: trained as usual; ``fixed:3,4``: equal blocks at the given timescales;
- ``ig:A[,B[,ENDS]]``: deterministic inverse-gamma quantiles (the paper's layer 2: ``ig:0.56,1``);
  ``ig-draws:A,B,SEED``: seeded random draws;
- controls: ``single:T`` (every unit at one T), ``loguniform:LO,HI`` (deterministic log-uniform
  quantiles), ``ig-fit:PATH[,LAYER[,ENDS]]`` (inverse-gamma quantiles whose A and B are the ML fit
  to a baseline's timescales, resolved when the text is parsed and stored as numbers plus their
  source in the spec JSON).

Layering (no import circle): ``activations`` <- ``timescale_math`` <- ``mts_specs`` <- ``stack`` <-
``checkpoints`` <- ``distributions`` <- this module. Code below ``distributions`` imports the two
lower modules directly.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import OptionError
from .mts_specs import (  # noqa: F401 (re-exported: the public names of MTS specs)
    _KINDS,
    BASELINE,
    ENDS_CHOICES,
    FREEZE_CHOICES,
    PRESETS,
    FittedInverseGamma,
    FixedTimescales,
    FreeLayer,
    InverseGammaDraws,
    InverseGammaQuantiles,
    LayerSpec,
    LogUniformQuantiles,
    MTSSpec,
    SingleTimescale,
    apply_layer_spec,
    apply_mts_spec,
    layer_spec_from_dict,
    module_cell,
    paper_dyck_spec,
    paper_lm_spec,
)
from .timescale_math import (  # noqa: F401 (re-exported: every f <-> T formula)
    BIAS_LIMIT,
    CONVENTIONS,
    _check_convention,
    _log_expm1,
    check_convention,
    forget_bias_to_timescale,
    gate_complement_to_timescale,
    gate_to_timescale,
    inverse_gamma_memory,
    mean_gate_timescale,
    population_memory,
    summarize_timescale_table,
    summarize_timescales,
    timescale_to_forget_bias,
)


def fit_inverse_gamma_spec(path: str, layer: str | int | None = None, *, ends: str = "drop-first",
                           convention: str = "paper") -> FittedInverseGamma:
    """Layer spec of inverse-gamma quantiles with the shape and scale of an ML fit to a baseline's
    timescales. ``path``: a ``timescales.csv`` (column ``T_data`` when present, else ``T``/
    ``T_bias``, as :func:`timescale_probe.distributions.load_timescales` reads it), a ``.npy``
    array, or a checkpoint (its bias timescales ``T_bias`` under ``convention``). ``layer``: a
    layer number (from 1) or ``None``/``all`` for all layers pooled. Units with T = 0, inf or NaN
    are excluded (and counted in ``source``)."""
    from .distributions import fit_mle, load_timescales
    from .fileio import file_sha256

    df = load_timescales(path, convention=convention)
    if layer is not None and str(layer).strip().lower() not in ("", "all"):
        try:
            want = int(layer)
        except ValueError:
            raise OptionError(f"ig-fit layer must be a number or 'all', got '{layer}'", param="mts_spec") from None
        layers = sorted({int(v) for v in df["layer"].unique() if str(v).lstrip("-").isdigit()})
        if want not in layers:
            raise OptionError(f"ig-fit: {path} has no layer {want} (layers: {', '.join(map(str, layers)) or 'none'})",
                              param="mts_spec")
        df = df[df["layer"].astype(str) == str(want)]
        where = f"layer {want}"
    else:
        where = "all layers"
    T = df["T"].to_numpy(np.float64)
    ok = np.isfinite(T) & (T > 0)
    if ok.sum() < 3:
        raise OptionError(f"ig-fit: {path} ({where}) has fewer than 3 finite, positive timescales", param="mts_spec")
    shape, scale, converged = fit_mle(T[ok], "invgamma")
    if not converged or not (np.isfinite(shape) and np.isfinite(scale)):
        raise OptionError(f"ig-fit: the inverse-gamma fit to {path} ({where}) did not converge", param="mts_spec")
    column = df.attrs.get("column", "T")
    source = (f"ML inverse-gamma fit (loc 0) to {column} of {where} in {path} "
              f"({int(ok.sum())} units, {int((~ok).sum())} excluded; sha256 {file_sha256(path)[:16]})")
    return FittedInverseGamma(float(shape), float(scale), ends=ends, source=source, fit_n=int(ok.sum()))



LAYER_SPEC_SYNTAX = ("free, fixed:3,4, single:T, loguniform:LO,HI, ig:SHAPE[,SCALE[,ENDS]], "
                     "ig-draws:SHAPE,SCALE,SEED or ig-fit:PATH[,LAYER[,ENDS]]")


def _parse_layer_text(text: str) -> LayerSpec:
    """``free`` | ``fixed:3,4`` | ``single:T`` | ``loguniform:LO,HI`` | ``ig:0.56[,1[,ends]]`` |
    ``ig-draws:0.56,1,SEED`` | ``ig-fit:PATH[,LAYER[,ends]]`` (fitted now, see
    :func:`fit_inverse_gamma_spec`)."""
    text = text.strip()
    kind, _, args = text.partition(":")
    if kind == "ig-fit":
        path, _, rest = args.partition(",")
        extra = [a.strip() for a in rest.split(",") if a.strip()]
        if not path.strip() or len(extra) > 2:
            raise OptionError(f"cannot read layer spec '{text}': use ig-fit:PATH[,LAYER[,ENDS]]", param="mts_spec")
        ends = extra[1] if len(extra) > 1 else "drop-first"
        if ends not in ENDS_CHOICES:
            raise OptionError(f"unknown ends '{ends}' in '{text}': use one of {', '.join(ENDS_CHOICES)}",
                              param="mts_spec")
        return fit_inverse_gamma_spec(path.strip(), extra[0] if extra else None, ends=ends)
    vals = [a.strip() for a in args.split(",") if a.strip()]
    try:
        if kind == "free":
            return FreeLayer()
        if kind == "fixed":
            return FixedTimescales(tuple(float(v) for v in vals))
        if kind == "single" and len(vals) == 1:
            return SingleTimescale(float(vals[0]))
        if kind == "loguniform" and len(vals) == 2:
            return LogUniformQuantiles(float(vals[0]), float(vals[1]))
        if kind in ("ig", "ig-quantiles"):
            ends = vals[2] if len(vals) > 2 else "drop-first"
            if ends not in ENDS_CHOICES:
                raise OptionError(f"unknown ends '{ends}' in '{text}': use one of {', '.join(ENDS_CHOICES)}")
            return InverseGammaQuantiles(float(vals[0]), float(vals[1]) if len(vals) > 1 else 1.0, ends=ends)
        if kind == "ig-draws":
            return InverseGammaDraws(float(vals[0]), float(vals[1]) if len(vals) > 1 else 1.0,
                                     seed=int(vals[2]) if len(vals) > 2 else 0)
    except (ValueError, IndexError):
        pass
    raise OptionError(f"cannot read layer spec '{text}': use {LAYER_SPEC_SYNTAX}", param="mts_spec")


def parse_mts_spec(text: str | None) -> MTSSpec:
    """An MTS spec from a preset name (``baseline``, ``paper-lm``, ``paper-dyck``), a JSON file
    (as written by :meth:`MTSSpec.to_dict`), or per-layer text such as
    ``"fixed:3,4;ig:0.56,1;free"``."""
    if text is None or text == "":
        return BASELINE
    if text in PRESETS:
        return PRESETS[text]()
    path = Path(text)
    if text.endswith(".json"):
        if not path.is_file():
            raise OptionError(f"MTS spec file not found: {text}")
        try:
            return MTSSpec.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise OptionError(f"MTS spec file {text} is not valid JSON: {exc}") from None
    return MTSSpec(layers=tuple(_parse_layer_text(t) for t in text.split(";")), name=text)

