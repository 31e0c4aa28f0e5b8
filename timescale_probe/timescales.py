"""Forget-gate bias <-> memory timescale, and multi-timescale (MTS) specs.

Two conventions for what a forget gate value ``f = sigmoid(b)`` means as a timescale ``T`` (in
time steps):

- ``paper`` (Mahto et al. 2021, the default): with no input the cell decays as ``f**t = exp(-t/T)``,
  so ``T = -1/log(f) = 1/softplus(-b)`` and ``b = -log(expm1(1/T))``. ``b=+inf -> T=inf``,
  ``b=-inf -> T=0``.
- ``chrono`` (Tallec & Ollivier 2018): ``T = 1/(1-f) = 1 + exp(b)`` and ``b = log(T-1)``;
  ``T`` lies in ``[1, inf]``.

Every function accepts Python scalars, numpy arrays and torch tensors and returns the same kind.

An MTS spec says, layer by layer, which timescales to impose on the units of a stacked LSTM: the
forget bias is set from ``T`` (``bias_hh[f] = b_f``), the input-gate bias to ``-b_f``, the input
biases of those two gates to 0, and the bias vectors of the layer are frozen (the paper's choice).
Per-layer spec text (layers separated by ``;``, e.g. ``fixed:3,4;ig:0.56;free``):

- ``free``: trained as usual; ``fixed:3,4``: equal blocks at the given timescales;
- ``ig:A[,B[,ENDS]]``: deterministic inverse-gamma quantiles (the paper's layer 2: ``ig:0.56,1``);
  ``ig-draws:A,B,SEED``: seeded random draws;
- controls: ``single:T`` (every unit at one T), ``loguniform:LO,HI`` (deterministic log-uniform
  quantiles), ``ig-fit:PATH[,LAYER[,ENDS]]`` (inverse-gamma quantiles whose A and B are the ML fit
  to a baseline's timescales, resolved when the text is parsed and stored as numbers plus their
  source in the spec JSON).

The spec JSON (:meth:`MTSSpec.to_dict`) is stored in every checkpoint trained with it and read back
by :meth:`MTSSpec.from_dict`. Conversions from gate values (``gate_to_timescale``,
``gate_complement_to_timescale``, ``mean_gate_timescale``) also live here: every f <-> T formula
of the package is in this module.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np

from .errors import OptionError

CONVENTIONS = ("paper", "chrono")
#: Forget biases are clipped to +-BIAS_LIMIT when a spec is applied. 30 keeps every finite
#: quantile of the paper's specs exact (the longest paper-lm T, 359,932 steps, needs b=12.8) and
#: turns the T=0 quantile (b=-inf) into b=-30, a gate of 9e-14 whose timescale is 0.033 steps.
BIAS_LIMIT = 30.0


def check_convention(convention: str) -> str:
    """``paper`` (T = -1/log f) or ``chrono`` (T = 1/(1-f)); else one ``OptionError`` naming ``convention``."""
    if convention not in CONVENTIONS:
        raise OptionError(f"unknown convention '{convention}': use paper or chrono", param="convention")
    return convention


_check_convention = check_convention  # the former private name


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def forget_bias_to_timescale(bias, convention: str = "paper"):
    """Timescale in steps of a unit whose effective forget-gate bias is ``bias``.

    The effective bias of a PyTorch LSTM is ``bias_ih + bias_hh`` (forget rows ``H:2H``).
    Stable for any ``|b|`` up to 1e4 and for infinities: overflow gives ``inf``, never ``nan``.
    """
    _check_convention(convention)
    if _is_torch(bias):
        import torch

        b = bias if bias.is_floating_point() else bias.double()
        if convention == "paper":
            return 1.0 / torch.logaddexp(torch.zeros_like(b), -b)
        return 1.0 + torch.exp(b)
    b = np.asarray(bias, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        if convention == "paper":
            out = 1.0 / np.logaddexp(0.0, -b)
        else:
            out = 1.0 + np.exp(b)
    return out if out.ndim else float(out)


def _log_expm1(x):
    """log(exp(x) - 1) for x >= 0 without overflow (x large) or cancellation (x small)."""
    big = x > 1.0
    safe_small = np.where(big, 1.0, x)
    safe_big = np.where(big, x, 1.0)
    with np.errstate(divide="ignore", under="ignore"):
        return np.where(big, safe_big + np.log1p(-np.exp(-safe_big)), np.log(np.expm1(safe_small)))


def timescale_to_forget_bias(timescale, convention: str = "paper"):
    """Forget-gate bias that gives a unit the timescale ``timescale`` (the inverse of
    :func:`forget_bias_to_timescale`). ``paper``: T=0 -> -inf, T=inf -> +inf. ``chrono``: T=1 ->
    -inf; T < 1 has no chrono bias and raises."""
    _check_convention(convention)
    torch_in = _is_torch(timescale)
    if torch_in:
        import torch

        dtype, device = timescale.dtype, timescale.device
        T = timescale.detach().cpu().double().numpy()
    else:
        T = np.asarray(timescale, dtype=np.float64)
    if np.any(np.isnan(T)) or np.any(T < 0):
        raise OptionError("timescales must be >= 0 (no NaN)")
    with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
        if convention == "paper":
            inv = np.where(T == 0, np.inf, 1.0 / np.where(T == 0, 1.0, T))
            out = np.where(np.isinf(inv), -np.inf, -_log_expm1(np.where(np.isinf(inv), 1.0, inv)))
        else:
            if np.any(T < 1):
                raise OptionError("the chrono convention needs timescales >= 1 (T = 1/(1-f))")
            out = np.log(T - 1.0)
    if torch_in:
        return torch.as_tensor(out, dtype=dtype if dtype.is_floating_point else torch.float64, device=device)
    return out if out.ndim else float(out)


def gate_complement_to_timescale(f_comp, convention: str = "paper"):
    """Timescale of a (mean) forget gate ``f`` given as ``1 - f``, in steps.

    ``paper``: ``T = -1/log(f) = -1/log1p(-(1-f))``; ``chrono``: ``T = 1/(1-f)``. ``1-f = 0`` gives
    ``inf``; ``1-f = 1`` gives 0 (paper).
    """
    _check_convention(convention)
    q = np.asarray(f_comp, dtype=np.float64)
    with np.errstate(divide="ignore"):
        if convention == "paper":
            out = -1.0 / np.log1p(-q)
        else:
            out = 1.0 / q
    out = np.where(q == 0, np.inf, out)
    return out if out.ndim else float(out)


def gate_to_timescale(f, convention: str = "paper"):
    """Timescale of a forget-gate value ``f`` (see :func:`gate_complement_to_timescale`)."""
    return gate_complement_to_timescale(1.0 - np.asarray(f, dtype=np.float64), convention)


def mean_gate_timescale(f_bar, fc_bar, convention: str = "paper"):
    """T of a mean gate known two ways, ``f_bar`` and ``fc_bar = 1 - f_bar``: the complement is
    exact near f = 1 (long timescales), ``f_bar`` itself near f = 0 (the T ~ 0 units)."""
    f_bar = np.clip(np.asarray(f_bar, dtype=np.float64), 0.0, 1.0)
    fc_bar = np.clip(np.asarray(fc_bar, dtype=np.float64), 0.0, 1.0)
    from_comp = gate_complement_to_timescale(fc_bar, convention)
    if convention == "chrono":
        return from_comp
    with np.errstate(divide="ignore"):
        from_f = np.where(f_bar > 0, -1.0 / np.log(np.where(f_bar > 0, f_bar, 0.5)), 0.0)
    return np.where(fc_bar < 0.5, from_comp, from_f)


def population_memory(timescales, t):
    """``M(t) = mean_T exp(-t/T)`` over a population of unit timescales (T=0 contributes 0).

    ``t`` may be a scalar or an array; returns an array of the same shape as ``t``.
    """
    T = np.asarray(timescales, dtype=np.float64).ravel()
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(divide="ignore", over="ignore", under="ignore"):
        rate = np.where(T > 0, 1.0 / np.where(T > 0, T, 1.0), np.inf)
        out = np.exp(-np.multiply.outer(t, rate)).mean(axis=-1)
    return out if out.ndim else float(out)


def inverse_gamma_memory(t, shape: float, scale: float = 1.0):
    """``E[exp(-t/T)]`` for ``T ~ InvGamma(shape, scale)``: the power law ``(1 + t/scale)**-shape``."""
    return (1.0 + np.asarray(t, dtype=np.float64) / scale) ** (-shape)


# ----------------------------------------------------------------------------------------------
# MTS specs
# ----------------------------------------------------------------------------------------------

FREEZE_CHOICES = ("all", "gates", "none")
ENDS_CHOICES = ("drop-first", "drop-both", "midpoints")


@dataclass(frozen=True)
class FreeLayer:
    """Biases initialised and trained as usual."""

    kind: str = field(default="free", init=False)

    def timescales(self, n_units: int) -> None:
        return None

    @property
    def freeze(self) -> str:
        return "none"


@dataclass(frozen=True)
class FixedTimescales:
    """Fixed timescales: ``values`` split into equal consecutive blocks over the layer's units
    (``(3, 4)`` on 1150 units gives 575 x T=3 then 575 x T=4), or one value per unit when
    ``len(values)`` equals the layer size. ``split`` orders unequal blocks: ``larger-first``
    (``np.array_split``: 24 x T=3, 23 x T=4 on 47 units) or ``smaller-first`` (the reference's
    ``int(0.5*H)`` units T=3, the rest T=4: 23 then 24; the paper-lm preset)."""

    values: tuple[float, ...]
    freeze: str = "all"
    split: str = "larger-first"
    kind: str = field(default="fixed", init=False)

    def timescales(self, n_units: int) -> np.ndarray:
        values = np.asarray(self.values, dtype=np.float64)
        if len(values) == n_units:
            return values.copy()
        if len(values) > n_units:
            raise OptionError(f"fixed spec has {len(values)} values for a layer of {n_units} units")
        sizes = [len(b) for b in np.array_split(np.arange(n_units), len(values))]
        if self.split == "smaller-first":
            sizes = sizes[::-1]
        elif self.split != "larger-first":
            raise OptionError(f"unknown fixed-block split '{self.split}': use larger-first or smaller-first", param="split")
        return np.concatenate([np.full(k, v) for k, v in zip(sizes, values)])


@dataclass(frozen=True)
class InverseGammaQuantiles:
    """Deterministic inverse-gamma quantiles, longest timescale first.

    ``ends`` says how the infinite (q=0) and zero (q=1) quantiles are treated for ``n`` units:

    - ``drop-first`` (the paper's LM spec): ``isf(linspace(0, 1, n+1))[1:]``; the last unit gets
      T=0, whose bias -inf is clipped to ``-BIAS_LIMIT`` when applied;
    - ``drop-both`` (the paper's Dyck spec): ``isf(linspace(0, 1, n+2))[1:-1]``;
    - ``midpoints``: ``isf((i + 0.5) / n)``.

    ``n=None`` means the size of the layer the spec is applied to.
    """

    shape: float
    scale: float = 1.0
    n: int | None = None
    ends: str = "drop-first"
    freeze: str = "all"
    kind: str = field(default="ig-quantiles", init=False)

    def timescales(self, n_units: int) -> np.ndarray:
        from scipy.stats import invgamma

        n = self.n or n_units
        if n != n_units:
            raise OptionError(f"inverse-gamma spec is for {n} units but the layer has {n_units}")
        if self.ends == "drop-first":
            q = np.linspace(0.0, 1.0, n + 1)[1:]
        elif self.ends == "drop-both":
            q = np.linspace(0.0, 1.0, n + 2)[1:-1]
        elif self.ends == "midpoints":
            q = (np.arange(n) + 0.5) / n
        else:
            raise OptionError(f"unknown ends treatment '{self.ends}': use one of {', '.join(ENDS_CHOICES)}")
        return invgamma.isf(q, self.shape, scale=self.scale)


@dataclass(frozen=True)
class InverseGammaDraws:
    """Random inverse-gamma timescales (seeded), sorted longest first."""

    shape: float
    scale: float = 1.0
    seed: int = 0
    n: int | None = None
    freeze: str = "all"
    kind: str = field(default="ig-draws", init=False)

    def timescales(self, n_units: int) -> np.ndarray:
        from scipy.stats import invgamma

        n = self.n or n_units
        if n != n_units:
            raise OptionError(f"inverse-gamma spec is for {n} units but the layer has {n_units}")
        draws = invgamma.rvs(self.shape, scale=self.scale, size=n, random_state=np.random.default_rng(self.seed))
        return np.sort(draws)[::-1].copy()


@dataclass(frozen=True)
class SingleTimescale:
    """Control: every unit of the layer at one timescale ``T`` (steps; ``T > 0``). Spec text
    ``single:T``, e.g. ``single:3.57`` (the median of the paper's a=0.56 quantiles)."""

    T: float
    freeze: str = "all"
    kind: str = field(default="single", init=False)

    def __post_init__(self) -> None:
        if not (np.isfinite(self.T) and self.T > 0):
            raise OptionError(f"single timescale T must be finite and > 0, got {self.T}", param="mts_spec")

    def timescales(self, n_units: int) -> np.ndarray:
        return np.full(n_units, float(self.T))


@dataclass(frozen=True)
class LogUniformQuantiles:
    """Control: deterministic log-uniform quantiles between ``low`` and ``high`` (steps,
    ``0 < low <= high < inf``), longest first: unit ``i`` of ``n`` gets
    ``exp(log high - (i + 0.5)/n * (log high - log low))`` (the quantiles at the midpoints
    ``(i+0.5)/n``, so neither end is reached exactly). A log-uniform population has memory
    ``M(t) ~ 1/log`` decay between the ends: no single power law. Spec text ``loguniform:LO,HI``."""

    low: float
    high: float
    n: int | None = None
    freeze: str = "all"
    kind: str = field(default="loguniform", init=False)

    def __post_init__(self) -> None:
        if not (np.isfinite(self.low) and np.isfinite(self.high) and 0 < self.low <= self.high):
            raise OptionError(f"loguniform needs 0 < LO <= HI < inf, got {self.low}, {self.high}", param="mts_spec")

    def timescales(self, n_units: int) -> np.ndarray:
        n = self.n or n_units
        if n != n_units:
            raise OptionError(f"log-uniform spec is for {n} units but the layer has {n_units}")
        q = (np.arange(n) + 0.5) / n
        lo, hi = np.log(self.low), np.log(self.high)
        return np.exp(hi - q * (hi - lo))


@dataclass(frozen=True)
class FittedInverseGamma(InverseGammaQuantiles):
    """Inverse-gamma quantiles (as :class:`InverseGammaQuantiles`) whose shape and scale were
    fitted by maximum likelihood (loc 0, :func:`timescale_probe.distributions.fit_mle`) to the
    timescales of a baseline. Spec text ``ig-fit:PATH[,LAYER[,ENDS]]`` resolves **when parsed**
    (:func:`fit_inverse_gamma_spec`); the JSON then stores ``shape``, ``scale``, ``source`` (file,
    column, layer, units used and excluded, file SHA-256) and ``fit_n``, so a checkpoint trained
    with it never needs the baseline file again."""

    source: str = ""
    fit_n: int = 0
    kind: str = field(default="ig-fit", init=False)


LayerSpec = Union[FreeLayer, FixedTimescales, InverseGammaQuantiles, InverseGammaDraws, SingleTimescale,
                  LogUniformQuantiles, FittedInverseGamma]
_KINDS = {"free": FreeLayer, "fixed": FixedTimescales, "ig-quantiles": InverseGammaQuantiles,
          "ig-draws": InverseGammaDraws, "single": SingleTimescale, "loguniform": LogUniformQuantiles,
          "ig-fit": FittedInverseGamma}


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


def layer_spec_from_dict(d: dict[str, Any]) -> LayerSpec:
    d = dict(d)
    kind = d.pop("kind", None)
    if kind not in _KINDS:
        raise OptionError(f"unknown layer spec kind '{kind}': use one of {', '.join(_KINDS)}")
    if kind == "fixed":
        d["values"] = tuple(float(v) for v in d["values"])
    try:
        spec = _KINDS[kind](**d)
    except TypeError as exc:
        raise OptionError(f"bad '{kind}' layer spec {d}: {exc}") from None
    if spec.freeze not in FREEZE_CHOICES:
        raise OptionError(f"unknown freeze '{spec.freeze}': use one of {', '.join(FREEZE_CHOICES)}")
    return spec


@dataclass(frozen=True)
class MTSSpec:
    """Per-layer timescale specs of a stacked LSTM (layer 1 first). Layers beyond the list are free.

    ``convention`` is the bias<->timescale convention used to turn ``T`` into biases.
    """

    layers: tuple[LayerSpec, ...]
    name: str = "custom"
    convention: str = "paper"
    bias_limit: float = BIAS_LIMIT

    def layer(self, index: int) -> LayerSpec:
        """Spec of layer ``index`` (0-based); free beyond the list."""
        return self.layers[index] if index < len(self.layers) else FreeLayer()

    def timescales(self, layer_sizes: Sequence[int]) -> list[np.ndarray | None]:
        return [self.layer(i).timescales(n) for i, n in enumerate(layer_sizes)]

    def forget_biases(self, layer_sizes: Sequence[int]) -> list[np.ndarray | None]:
        """Forget biases each constrained layer gets (clipped to +-bias_limit), None for free layers."""
        out = []
        for T in self.timescales(layer_sizes):
            if T is None:
                out.append(None)
            else:
                b = np.asarray(timescale_to_forget_bias(T, self.convention), dtype=np.float64)
                out.append(np.clip(b, -self.bias_limit, self.bias_limit))
        return out

    @property
    def is_free(self) -> bool:
        return all(isinstance(l, FreeLayer) for l in self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "convention": self.convention,
            "bias_limit": self.bias_limit,
            "layers": [asdict(l) | {"kind": l.kind} for l in self.layers],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MTSSpec":
        try:
            layers = tuple(layer_spec_from_dict(l) for l in d["layers"])
            spec = cls(
                layers=layers,
                name=str(d.get("name", "custom")),
                convention=str(d.get("convention", "paper")),
                bias_limit=float(d.get("bias_limit", BIAS_LIMIT)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise OptionError(f"malformed MTS spec: {exc}") from None
        _check_convention(spec.convention)
        return spec

    def describe(self) -> str:
        parts = []
        for i, l in enumerate(self.layers, 1):
            if isinstance(l, FreeLayer):
                parts.append(f"layer {i}: free")
            elif isinstance(l, FixedTimescales):
                parts.append(f"layer {i}: fixed T={','.join(f'{v:g}' for v in l.values)}")
            elif isinstance(l, FittedInverseGamma):
                parts.append(f"layer {i}: inverse-gamma quantiles a={l.shape:.4g} b={l.scale:.4g} ({l.ends}; {l.source})")
            elif isinstance(l, InverseGammaQuantiles):
                parts.append(f"layer {i}: inverse-gamma quantiles a={l.shape:g} b={l.scale:g} ({l.ends})")
            elif isinstance(l, SingleTimescale):
                parts.append(f"layer {i}: single T={l.T:g}")
            elif isinstance(l, LogUniformQuantiles):
                parts.append(f"layer {i}: log-uniform quantiles T in [{l.low:g}, {l.high:g}]")
            else:
                parts.append(f"layer {i}: inverse-gamma draws a={l.shape:g} b={l.scale:g} seed={l.seed}")
        return f"{self.name} [{self.convention}]: " + "; ".join(parts or ["all free"])


BASELINE = MTSSpec(layers=(), name="baseline")


def paper_lm_spec(shape: float = 0.56, scale: float = 1.0) -> MTSSpec:
    """The paper's LM spec: layer 1 half T=3 / half T=4, layer 2 inverse-gamma quantiles
    (``drop-first``: the last unit has T=0, clipped), layer 3 free; bias vectors frozen."""
    return MTSSpec(
        layers=(FixedTimescales((3.0, 4.0), split="smaller-first"), InverseGammaQuantiles(shape, scale, ends="drop-first"),
                FreeLayer()),
        name="paper-lm" if (shape, scale) == (0.56, 1.0) else f"paper-lm(a={shape:g},b={scale:g})",
    )


def paper_dyck_spec(shape: float = 1.5, scale: float = 1.0) -> MTSSpec:
    """The paper's Dyck spec: one layer of inverse-gamma quantiles with both ends dropped."""
    return MTSSpec(
        layers=(InverseGammaQuantiles(shape, scale, ends="drop-both"),),
        name="paper-dyck" if (shape, scale) == (1.5, 1.0) else f"paper-dyck(a={shape:g},b={scale:g})",
    )


PRESETS = {"baseline": lambda: BASELINE, "none": lambda: BASELINE, "paper-lm": paper_lm_spec, "paper-dyck": paper_dyck_spec}


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


def apply_layer_spec(lstm, layer_spec: LayerSpec, *, module_layer: int = 0, convention: str = "paper",
                     bias_limit: float = BIAS_LIMIT) -> np.ndarray | None:
    """Impose ``layer_spec`` on layer ``module_layer`` of an ``nn.LSTM`` in place.

    Sets ``bias_hh[f] = b_f``, ``bias_hh[i] = -b_f``, ``bias_ih[i] = bias_ih[f] = 0`` (the effective
    forget bias is then ``b_f``) and freezes: ``all`` = the whole bias vectors stop training (the
    paper), ``gates`` = only the input/forget rows (gradient mask), ``none``. Returns the
    timescales imposed, or None for a free layer.
    """
    import torch

    H = lstm.hidden_size
    T = layer_spec.timescales(H)
    if T is None:
        return None
    b_f = np.clip(np.asarray(timescale_to_forget_bias(T, convention), dtype=np.float64), -bias_limit, bias_limit)
    b_ih = getattr(lstm, f"bias_ih_l{module_layer}")
    b_hh = getattr(lstm, f"bias_hh_l{module_layer}")
    with torch.no_grad():
        bf = torch.as_tensor(b_f, dtype=b_hh.dtype, device=b_hh.device)
        b_ih[0:2 * H].zero_()
        b_hh[H:2 * H].copy_(bf)
        b_hh[0:H].copy_(-bf)
    if layer_spec.freeze == "all":
        b_ih.requires_grad_(False)
        b_hh.requires_grad_(False)
    elif layer_spec.freeze == "gates":
        mask = torch.ones_like(b_hh)
        mask[0:2 * H] = 0
        for p in (b_ih, b_hh):
            p.register_hook(lambda g, m=mask: g * m.to(g.device))
    return T


def apply_mts_spec(lstms, spec: MTSSpec) -> list[np.ndarray | None]:
    """Apply ``spec`` to a stack given as one multi-layer ``nn.LSTM`` or a list of single-layer
    ``nn.LSTM`` modules (AWD-LSTM style). Returns the imposed timescales per layer."""
    import torch

    if isinstance(lstms, torch.nn.LSTM):
        targets = [(lstms, k) for k in range(lstms.num_layers)]
    else:
        targets = [(m, 0) for m in lstms]
    return [
        apply_layer_spec(m, spec.layer(i), module_layer=k, convention=spec.convention, bias_limit=spec.bias_limit)
        for i, (m, k) in enumerate(targets)
    ]


# ----------------------------------------------------------------------------------------------
# one summary of a set of timescales (reproduce, estimate-timescales, inspect)
# ----------------------------------------------------------------------------------------------

def summarize_timescales(T, long_t: float = 10.0) -> dict[str, Any]:
    """Summary of one set of timescales (steps): ``units, median, q90, max, share_gt_<long_t>,
    share_gt_100, share_lt_1``. NaN is left out; zeros and infinities count (an infinite T makes
    ``max`` infinite). Empty input gives ``units = 0`` and NaN statistics."""
    T = np.asarray(T, dtype=np.float64).ravel()
    T = T[~np.isnan(T)]
    if T.size == 0:
        nan = float("nan")
        return {"units": 0, "median": nan, "q90": nan, "max": nan, f"share_gt_{long_t:g}": nan,
                "share_gt_100": nan, "share_lt_1": nan}
    return {"units": int(T.size), "median": float(np.median(T)), "q90": float(np.quantile(T, 0.9)),
            "max": float(np.max(T)), f"share_gt_{long_t:g}": float(np.mean(T > long_t)),
            "share_gt_100": float(np.mean(T > 100)), "share_lt_1": float(np.mean(T < 1))}


def summarize_timescale_table(table, column: str = "T_data", long_t: float = 10.0):
    """:func:`summarize_timescales` per layer and over all units (last row, ``layer = "all"``) of a
    timescales table (``layer`` and ``column`` columns): a DataFrame ``layer, units, median, q90,
    max, share_gt_<long_t>, share_gt_100, share_lt_1``."""
    import pandas as pd

    rows = [{"layer": str(k), **summarize_timescales(g[column], long_t)} for k, g in table.groupby("layer", sort=True)]
    rows.append({"layer": "all", **summarize_timescales(table[column], long_t)})
    return pd.DataFrame(rows)
