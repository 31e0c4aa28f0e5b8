"""One ablation study: groups and controls of one layer, the NLL passes, ratio tables, null band
and routing (see :mod:`timescale_probe.ablation`)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from ..errors import OptionError
from ..progress import ProgressLike
from ..validation import check_choice, check_int
from .groups import UnitGroup, check_group_spec, control_groups, groups_table, make_groups
from .passes import MODES, ablated_nll
from .tables import bootstrap_chunk_counts, control_band, ratio_table, routing_summary

ORDER_BY = ("bias", "data")


def check_ablation_options(*, groups: str | Sequence[UnitGroup] | None = None, layer: int = 2, mode: str = "output",
                           controls: int = 0, control_size: int | None = None, bptt: int = 70, group_batch: int = 8,
                           chunk: int = 100, n_resamples: int = 10000, level: float = 0.999, top: int = 3) -> None:
    """Options of :func:`run_ablation_study`, one ``OptionError`` naming the parameter; commands
    call it before any work (the layer's existence needs the model and is checked there)."""
    from ..evaluation import check_bootstrap_options

    check_int(layer, "layer", minimum=1)
    check_choice(mode, "mode", MODES)
    check_int(controls, "controls", minimum=0)
    if control_size is not None:
        check_int(control_size, "control_size", minimum=1)
    check_int(bptt, "bptt", minimum=1)
    check_int(group_batch, "group_batch", minimum=1)
    check_int(top, "top", minimum=1)
    check_bootstrap_options(chunk=chunk, n_resamples=n_resamples, level=level)
    if isinstance(groups, str):
        check_group_spec(groups)


@dataclass
class AblationStudy:
    """Everything an ablation run produced (tables are tidy DataFrames)."""

    groups_: pd.DataFrame
    ratios_: pd.DataFrame
    controls_: pd.DataFrame
    routing_: pd.DataFrame
    options: dict[str, Any] = field(default_factory=dict)
    #: ``passes`` and ``passes_resumed`` of :func:`ablated_nll` (kept out of ``options``, which
    #: describe the numbers: a resumed run gives the same ones)
    passes: dict[str, int] = field(default_factory=dict)


def run_ablation_study(model, tokens: torch.Tensor, T: np.ndarray, *, layer: int, groups: str | Sequence[UnitGroup],
                       mode: str = "output", binnings: Sequence[tuple[str, np.ndarray, Sequence[str]]] = (),
                       controls: int = 0, control_size: int | None = None, seed: int = 0, bptt: int = 70,
                       group_batch: int = 8, chunk: int = 100, n_resamples: int = 10000, level: float = 0.999,
                       top: int = 3, device: Any = "cpu", progress: ProgressLike = False,
                       resume_dir: Any = None) -> AblationStudy:
    """Ablate groups of ``layer``'s units (ordered by ``T``, the timescale of every unit of that
    layer) and tabulate per-bin perplexity ratios for every binning ``(name, category_of_vocab,
    labels)``. Control groups: ``controls`` random groups of ``control_size`` units (default: the
    most common group size), drawn with ``seed``; the bootstrap uses ``seed`` too. ``resume_dir``:
    where finished NLL passes are kept so that a stopped run resumes (see :func:`ablated_nll`)."""
    check_ablation_options(groups=groups, layer=layer, mode=mode, controls=controls, control_size=control_size,
                           bptt=bptt, group_batch=group_batch, chunk=chunk, n_resamples=n_resamples, level=level,
                           top=top)
    sizes = [m.hidden_size for m in model.lstm_layers()]
    if not 1 <= layer <= len(sizes):
        raise OptionError(f"layer {layer} does not exist: the model has layers 1-{len(sizes)}", param="layer")
    T = np.asarray(T, dtype=np.float64)
    if len(T) != sizes[layer - 1]:
        raise OptionError(f"{len(T)} timescales given for layer {layer} of {sizes[layer - 1]} units")
    main = make_groups(groups, T, layer) if isinstance(groups, str) else list(groups)
    if control_size is None:
        vals, cnt = np.unique([g.size for g in main], return_counts=True)
        control_size = int(vals[np.argmax(cnt)])
    ctl = control_groups(sizes[layer - 1], control_size, controls, T, layer, seed)
    all_groups = main + ctl
    passes: dict[str, int] = {}
    intact, ablated = ablated_nll(model, tokens, all_groups, mode=mode, bptt=bptt, group_batch=group_batch,
                                  device=device, progress=progress, resume_dir=resume_dir, stats=passes)
    targets = torch.as_tensor(tokens).long().numpy()[1:]
    counts = bootstrap_chunk_counts(len(targets), chunk, n_resamples, seed)
    if not binnings:
        raise OptionError("no binning of the target words was given")
    ratios = pd.concat([
        ratio_table(intact, ablated, targets, cat, labels, all_groups, binning=name, chunk=chunk,
                    n_resamples=n_resamples, level=level, seed=seed, counts=counts)
        for name, cat, labels in binnings
    ], ignore_index=True)
    gtab = groups_table(all_groups)
    band = control_band(ratios)
    routing = routing_summary(ratios, gtab, top=top)
    opts = dict(layer=layer, groups=groups if isinstance(groups, str) else "explicit", mode=mode, controls=controls,
                control_size=control_size, seed=seed, bptt=bptt, group_batch=group_batch, chunk=chunk,
                n_resamples=n_resamples, level=level, n_targets=len(targets),
                ppl_intact=float(math.exp(intact.mean())))
    return AblationStudy(gtab, ratios, band, routing, opts, passes)
