"""Per-seed result folders: everything later analyses need from one trained language model.

One folder per model, named ``<corpus>-<arch>-seed<N>`` (e.g. ``ptb-mts-seed141``), written by
:func:`write_seed_tables` from a checkpoint (or an in-memory :class:`~timescale_probe.stack.LSTMStack`)
with the library's own evaluation, gate and ablation functions:

- ``card.json``: the training model card (train_config, epochs run, best epoch, device, seed,
  valid/test perplexity) plus a ``seed_tables`` entry saying how the tables below were made;
- ``metrics.csv``: the trainer's per-epoch curve (copied from ``X.metrics.csv`` beside the checkpoint,
  or given as a table); absent when there is none;
- ``token_nll.npy``: float64 NLL (nats) of every target of the test stream, batch 1, hidden state
  carried, windows of ``bptt`` (70), in stream order (:func:`timescale_probe.evaluation.token_nll`);
- ``perplexity.csv``: per-bin perplexity, the columns of ``tsprobe evaluate`` (``model, bin, tokens,
  nll_mean, ppl``; bins counted over ``bins_from``, train by default);
- ``ablation.csv``: layer ``layer`` (2) ablated in ``groups`` (23 quantile groups, units ordered
  longest to shortest T) plus ``controls`` (20) random groups of the same size, output mode: the
  ratio table of :func:`timescale_probe.ablation.run_ablation_study` (column ``kind``: ``group`` or
  ``control``) with each group's size and T range, the mode and the ordering added;
- ``timescales.csv``: per unit ``layer, unit, forget_bias, T_bias, T_data, ...`` as
  ``tsprobe estimate-timescales`` writes it (T_data: batch 1, windows of 70, test split).

Command line (no ``tsprobe`` subcommand needed)::

    python -m timescale_probe.seeds checkpoints/ptb-mts-small.pt --corpus ptb --out figures/seeds/ptb-mts-seed141
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .errors import OptionError, TsprobeError

SEED_FILES = ("card.json", "metrics.csv", "token_nll.npy", "perplexity.csv", "ablation.csv", "timescales.csv")


def seed_folder_name(corpus: str, arch: str, seed: int) -> str:
    """``<corpus>-<arch>-seed<N>`` (the shared per-seed folder name)."""
    return f"{corpus}-{arch}-seed{int(seed)}"


def _plain(obj: Any) -> Any:
    from .fileio import jsonable

    return jsonable(obj)


def _save_npy(path: Path, array: np.ndarray) -> None:
    """``np.save`` to exactly ``path`` (through an open file, so no '.npy' is appended)."""
    with open(path, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


def write_seed_tables(checkpoint: Any, corpus: Any, out_dir: str | Path, *, device: Any = "cpu",
                      card: dict[str, Any] | None = None, metrics: pd.DataFrame | str | Path | None = None,
                      layer: int = 2, groups: str = "quantiles:23", controls: int = 20, order_by: str = "bias",
                      mode: str = "output", seed: int = 0, n_resamples: int = 10000, level: float = 0.999,
                      bptt: int = 70, group_batch: int | None = None, bins_from: str = "train",
                      bin_edges=None, max_tokens: int = 0, ablation: bool = True, model_name: str | None = None) -> dict[str, Any]:
    """Write one per-seed folder (see the module docstring) into ``out_dir``; return a summary dict.

    ``checkpoint``: a checkpoint path (any supported format) or an ``LSTMStack``. ``corpus``: a
    :class:`~timescale_probe.corpora.Corpus` or a corpus spec (``ptb``, a directory, a file).
    ``card`` / ``metrics`` default to the checkpoint's own card and its ``.metrics.csv`` companion.
    ``order_by``: ``bias`` (T_bias: the assigned timescales of an MTS layer, as Fig. 3 and
    ``tsprobe ablate`` by default) or ``data`` (T_data measured here). ``group_batch``: ablation
    copies per batched pass (default: all groups in one pass on CUDA, 8 on the CPU).
    ``max_tokens`` > 0 uses only the first tokens of the test split (tests, dry runs).
    Files appear only when everything succeeded (built in a temporary folder, then moved).
    """
    from .ablation import run_ablation_study
    from .checkpoints import load_checkpoint, read_card
    from .corpora import DEFAULT_BIN_EDGES, Corpus, check_vocab_compatible, load_corpus
    from .evaluation import perplexity_by_bin, token_nll
    from .fileio import atomic_write_with, write_table
    from .gates import estimate_timescales, timescales_table
    from .models import LanguageModel
    from .stack import LSTMStack

    if order_by not in ("bias", "data"):
        raise OptionError(f"order_by must be 'bias' or 'data', got '{order_by}'")
    if mode not in ("output", "silence"):
        raise OptionError(f"mode must be 'output' or 'silence', got '{mode}'")
    if controls < 0 or max_tokens < 0 or n_resamples < 1 or bptt < 1:
        raise OptionError("controls and max_tokens must be >= 0, n_resamples and bptt >= 1")
    edges = tuple(bin_edges) if bin_edges is not None else DEFAULT_BIN_EDGES
    device = torch.device(device)
    t_start = time.perf_counter()

    ckpt_path = None
    if isinstance(checkpoint, LSTMStack):
        stack = checkpoint
    else:
        ckpt_path = Path(checkpoint)
        stack = load_checkpoint(ckpt_path)
    if card is None:
        card = read_card(ckpt_path) if ckpt_path is not None else {}
    card = dict(card or {})
    if metrics is None and ckpt_path is not None:
        from .training import companion_paths

        mpath = companion_paths(ckpt_path)["metrics"]
        metrics = mpath if mpath.is_file() else None
    if metrics is not None and not isinstance(metrics, pd.DataFrame):
        metrics = pd.read_csv(metrics)

    corp = corpus if isinstance(corpus, Corpus) else load_corpus(str(corpus))
    corp = check_vocab_compatible(corp, stack.vocab, stack.vocab_size, f"checkpoint {ckpt_path or 'in memory'}")
    model = LanguageModel.from_stack(stack).to(device).eval()
    tokens = corp.tokens("test")
    if max_tokens:
        tokens = tokens[:max_tokens]
    bin_of, labels = corp.bins(bins_from, edges)
    name = model_name or (ckpt_path.stem if ckpt_path is not None else "model")
    timings: dict[str, float] = {}

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OptionError(f"out_dir must be a directory, but {out_dir} is a file")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        t0 = time.perf_counter()
        nll, targets = token_nll(model, tokens, batch_size=1, bptt=bptt, device=device)
        timings["evaluate_s"] = time.perf_counter() - t0
        _save_npy(work / "token_nll.npy", nll.astype(np.float64))
        ppl = perplexity_by_bin(nll, targets, bin_of, labels)
        ppl.insert(0, "model", name)
        write_table(ppl, work / "perplexity.csv")

        t0 = time.perf_counter()
        est = estimate_timescales(model, tokens, batch_size=1, window=bptt, device=device)
        ts = timescales_table(stack, est)
        timings["timescales_s"] = time.perf_counter() - t0
        write_table(ts, work / "timescales.csv")

        abl_summary: dict[str, Any] | None = None
        if ablation:
            sizes = stack.layer_sizes
            if not 1 <= layer <= len(sizes):
                raise OptionError(f"layer {layer} does not exist: the model has layers 1-{len(sizes)}")
            col = "T_bias" if order_by == "bias" else "T_data"
            T = ts.loc[ts.layer == layer].sort_values("unit")[col].to_numpy(dtype=np.float64)
            gb = group_batch or (64 if device.type == "cuda" else 8)
            t0 = time.perf_counter()
            study = run_ablation_study(model, tokens, T, layer=layer, groups=groups, mode=mode,
                                       binnings=[("frequency", bin_of, labels)], controls=controls, seed=seed,
                                       bptt=bptt, group_batch=gb, n_resamples=n_resamples, level=level,
                                       device=device)
            timings["ablation_s"] = time.perf_counter() - t0
            g = study.groups_[["group", "size", "T_mean", "T_median", "T_min", "T_max"]]
            abl = study.ratios_.merge(g, on="group", how="left")
            abl.insert(0, "layer", layer)
            abl["mode"] = mode
            abl["order_by"] = col
            write_table(abl, work / "ablation.csv")
            abl_summary = dict(layer=layer, groups=groups, controls=controls, control_size=study.options["control_size"],
                               mode=mode, order_by=col, group_batch=gb, seed=seed, n_resamples=n_resamples,
                               level=level)
        if metrics is not None:
            write_table(metrics, work / "metrics.csv")
        timings["total_s"] = time.perf_counter() - t_start
        tables = dict(device=str(device), torch=str(torch.__version__), test_tokens=int(len(tokens)),
                      scored_targets=int(nll.size), bptt=bptt, eval_batch_size=1, bins_from=bins_from,
                      bin_edges=list(edges), test_ppl=float(math.exp(nll.mean())), ablation=abl_summary,
                      checkpoint=str(ckpt_path) if ckpt_path is not None else None, seconds=timings,
                      files=[f for f in SEED_FILES if f == "card.json" or (work / f).is_file()])
        card["seed_tables"] = tables
        atomic_write_with(work / "card.json", lambda p: Path(p).write_text(json.dumps(_plain(card), indent=2) + "\n"))
        out_dir.mkdir(parents=True, exist_ok=True)
        for f in SEED_FILES:
            if (work / f).is_file():
                (work / f).replace(out_dir / f)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tables


def read_seed_folder(path: str | Path) -> dict[str, Any]:
    """Read a per-seed folder: ``{'card', 'metrics', 'token_nll', 'perplexity', 'ablation',
    'timescales'}`` (None for each missing file) plus ``'missing'`` (names of absent files)."""
    p = Path(path)
    if not p.is_dir():
        raise OptionError(f"per-seed folder not found: {p}")
    out: dict[str, Any] = {"path": p, "missing": []}
    for f in SEED_FILES:
        fp = p / f
        key = f.split(".")[0]
        if not fp.is_file():
            out[key] = None
            out["missing"].append(f)
        elif f.endswith(".json"):
            out[key] = json.loads(fp.read_text())
        elif f.endswith(".npy"):
            out[key] = np.load(fp, allow_pickle=False)
        else:
            out[key] = pd.read_csv(fp)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m timescale_probe.seeds",
                                 description="Write a per-seed result folder (card, metrics, token NLL, per-bin "
                                             "perplexity, layer-2 ablation with controls, timescales) from a checkpoint.")
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--corpus", default="ptb", help="ptb, a corpus directory or a text file")
    ap.add_argument("--out", type=Path, required=True, help="the folder to write, e.g. figures/seeds/ptb-mts-seed141")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--layer", type=int, default=2)
    ap.add_argument("--groups", default="quantiles:23")
    ap.add_argument("--controls", type=int, default=20)
    ap.add_argument("--order-by", default="bias", choices=("bias", "data"))
    ap.add_argument("--bootstrap", type=int, default=10000)
    ap.add_argument("--max-tokens", type=int, default=0, help="first N test tokens only (0 = all)")
    ap.add_argument("--no-ablation", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    try:
        from .fileio import require_file, resolve_device

        if a.threads:
            torch.set_num_threads(a.threads)
        require_file(a.checkpoint, "checkpoint")
        res = write_seed_tables(a.checkpoint, a.corpus, a.out, device=resolve_device(a.device), layer=a.layer,
                                groups=a.groups, controls=a.controls, order_by=a.order_by, n_resamples=a.bootstrap,
                                max_tokens=a.max_tokens, ablation=not a.no_ablation)
    except TsprobeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {a.out} ({', '.join(res['files'])}): test ppl {res['test_ppl']:.2f} in {res['seconds']['total_s']:.1f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
