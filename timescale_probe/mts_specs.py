"""Multi-timescale (MTS) specs: which timescales to impose on the units of a recurrent stack.

A spec says, layer by layer, which timescales its units get. Applied to an LSTM layer, the forget
bias is set from ``T`` (``bias_hh[f] = b_f``), the input-gate bias to ``-b_f``, the input biases of
those two gates to 0; applied to a GRU layer, the update-gate bias ``bias_hh[z] = b_z`` and
``bias_ih[z] = 0``. Biases come from ``T`` through the layer's gate activation
(:func:`timescale_probe.timescale_math.timescale_to_forget_bias`). The bias vectors of the layer are
frozen (the paper's choice). Text forms are parsed by :func:`timescale_probe.timescales.parse_mts_spec`.

The spec JSON (:meth:`MTSSpec.to_dict`) is stored in every checkpoint trained with it and read back
by :meth:`MTSSpec.from_dict`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence, Union

import numpy as np

from .errors import OptionError
from .timescale_math import BIAS_LIMIT, check_convention, timescale_to_forget_bias

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
    (:func:`timescale_probe.timescales.fit_inverse_gamma_spec`); the JSON then stores ``shape``, ``scale``, ``source`` (file,
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

    def forget_biases(self, layer_sizes: Sequence[int], gate_activation: str = "sigmoid") -> list[np.ndarray | None]:
        """Retention-gate biases each constrained layer gets (clipped to +-bias_limit), None for free layers."""
        out = []
        for T in self.timescales(layer_sizes):
            if T is None:
                out.append(None)
            else:
                b = np.asarray(timescale_to_forget_bias(T, self.convention, gate_activation), dtype=np.float64)
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
        check_convention(spec.convention)
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


def module_cell(module):
    """The :class:`~timescale_probe.cells.CellSpec` of a recurrent module (``nn.LSTM``/``nn.GRU``/
    ``nn.RNN`` or a :class:`~timescale_probe.cells.StepRecurrent`)."""
    import torch

    from .cells import CellSpec

    cell = getattr(module, "cell", None)
    if isinstance(cell, CellSpec):
        return cell
    if isinstance(module, torch.nn.LSTM):
        return CellSpec("lstm")
    if isinstance(module, torch.nn.GRU):
        return CellSpec("gru")
    if isinstance(module, torch.nn.RNN):
        return CellSpec("rnn", activation="relu" if module.nonlinearity == "relu" else "tanh")
    raise OptionError(f"cannot apply an MTS spec to a {type(module).__name__}: expected a recurrent layer")


def apply_layer_spec(lstm, layer_spec: LayerSpec, *, module_layer: int = 0, convention: str = "paper",
                     bias_limit: float = BIAS_LIMIT) -> np.ndarray | None:
    """Impose ``layer_spec`` on layer ``module_layer`` of a recurrent module in place.

    LSTM: ``bias_hh[f] = b_f``, ``bias_hh[i] = -b_f``, ``bias_ih[i] = bias_ih[f] = 0`` (the effective
    forget bias is then ``b_f``). GRU: ``bias_hh[z] = b_z``, ``bias_ih[z] = 0`` (``1 - z`` is its
    input gate already). ``b`` comes from ``T`` through the layer's gate activation. Freezing:
    ``all`` = the whole bias vectors stop training (the paper), ``gates`` = only the rows set here
    (gradient mask), ``none``. Returns the timescales imposed, or None for a free layer. A plain
    RNN has no gate to set: one ``OptionError``.
    """
    import torch

    from .cells import NO_RETENTION_GATE

    cell = module_cell(lstm)
    H = lstm.hidden_size
    T = layer_spec.timescales(H)
    if T is None:
        return None
    if cell.retention_gate is None:
        raise OptionError(f"an MTS spec sets retention-gate biases, but {NO_RETENTION_GATE}", param="mts_spec")
    b_f = np.clip(np.asarray(timescale_to_forget_bias(T, convention, cell.gate_activation), dtype=np.float64),
                  -bias_limit, bias_limit)
    b_ih = getattr(lstm, f"bias_ih_l{module_layer}")
    b_hh = getattr(lstm, f"bias_hh_l{module_layer}")
    keep = cell.retention_rows(H)
    set_rows = [keep] + ([cell.gate_rows("i", H)] if cell.kind == "lstm" else [])
    with torch.no_grad():
        bf = torch.as_tensor(b_f, dtype=b_hh.dtype, device=b_hh.device)
        for rows in set_rows:
            b_ih[rows].zero_()
        b_hh[keep].copy_(bf)
        if cell.kind == "lstm":
            b_hh[cell.gate_rows("i", H)].copy_(-bf)
    if layer_spec.freeze == "all":
        b_ih.requires_grad_(False)
        b_hh.requires_grad_(False)
    elif layer_spec.freeze == "gates":
        mask = torch.ones_like(b_hh)
        for rows in set_rows:
            mask[rows] = 0
        for p in (b_ih, b_hh):
            p.register_hook(lambda g, m=mask: g * m.to(g.device))
    return T


def apply_mts_spec(lstms, spec: MTSSpec) -> list[np.ndarray | None]:
    """Apply ``spec`` to a stack given as one multi-layer recurrent module or a list of single-layer
    ones (AWD-LSTM style). Returns the imposed timescales per layer."""
    import torch

    if isinstance(lstms, torch.nn.RNNBase):
        targets = [(lstms, k) for k in range(lstms.num_layers)]
    else:
        targets = [(m, 0) for m in lstms]
    return [
        apply_layer_spec(m, spec.layer(i), module_layer=k, convention=spec.convention, bias_limit=spec.bias_limit)
        for i, (m, k) in enumerate(targets)
    ]
