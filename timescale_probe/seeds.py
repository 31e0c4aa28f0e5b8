"""Per-seed result folders: everything later analyses need from one trained language model.

One folder per model, named ``<corpus>-<arch>-seed<N>`` (e.g. ``ptb-mts-seed141``), written by
:func:`write_seed_tables` (or :func:`ingest`, which names the folder from the model's card) from a
checkpoint with the library's own evaluation, gate and ablation functions:

- ``card.json``: the training model card (train_config, epochs run, best epoch, device, torch
  version, seed) plus ``seed_tables``: how the tables below were made, the device and torch
  version that made them, and the training ``recipe`` (:func:`recipe_of`: everything that
  defines the training but the seed; pooled seeds must share it, :func:`check_recipes`);
- ``metrics.csv``: the trainer's per-epoch curve (``X.metrics.csv`` beside the checkpoint);
- ``token_nll.npy``: NLL (nats) of every target of the test stream, batch 1, hidden state
  carried, windows of ``bptt`` (70), in stream order; stored as float32 where that is exact (the
  NLLs of a float32 model are float32 values), read back as float64;
- ``perplexity.csv``: per-bin perplexity (``model, bin, tokens, nll_mean, ppl``; bins counted over
  train);
- ``ablation.csv`` (MTS models): layer 2 ablated in ``groups`` (23 quantile groups, longest T first)
  plus ``controls`` random groups (default :data:`DEFAULT_CONTROLS` = 230, >= :data:`MIN_CONTROLS`)
  drawn with the model's own training seed, so every seed has its own controls, taking the
  timescale groups' sizes in turn; the ratio table of
  :func:`timescale_probe.ablation.run_ablation_study` (``kind``: ``group`` or ``control``) with each
  group's size and T range, at the one interval level (95%); its batched passes are kept under
  ``--resume-dir`` (default :data:`DEFAULT_RESUME_DIR`) as they finish, so an ingestion stopped
  part-way (about an hour per MTS seed on one CPU core) picks up where it stopped when run again;
- ``timescales.csv``: per unit ``layer, unit, forget_bias, T_bias, T_data, ...`` (T_data: batch 1,
  windows of 70, test split).

Command line (one command per finished run; the folder is named from the card)::

    python -m timescale_probe.seeds ingest runs/evidence-seeds/ptb-mts-seed4.pt --into figures/seeds --threads 1
    python -m timescale_probe.seeds ingest runs/m/markov-ptb-baseline-seed2.pt --corpus DIR/markov-ptb --into figures/seeds
    python -m timescale_probe.seeds check figures/seeds          # recipes of pooled seeds identical?
    python -m timescale_probe.seeds reconcile figures/seeds/ptb-mts-seed2   # card <- metrics
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from .errors import InputError, OptionError, TsprobeError
from .fileio import file_sha256

SEED_FILES = ("card.json", "metrics.csv", "token_nll.npy", "perplexity.csv", "ablation.csv", "timescales.csv")
#: the fewest random control groups a seed's ablation needs to enter Fig. 3 over seeds
MIN_CONTROLS = 200
#: controls drawn per seed by default: 10 per timescale group of ``quantiles:23``
DEFAULT_CONTROLS = 230
#: where ``ingest`` / ``write`` keep an ablation's finished passes until the seed's folder is written
DEFAULT_RESUME_DIR = Path(tempfile.gettempdir()) / "tsprobe-ablation"
#: the interval level of every per-seed table (the report's one level)
LEVEL = 0.95


#: ``<corpus>-<arch>-seed<N>``; corpus ``ptb`` or ``markov-ptb``.
FOLDER_RE = re.compile(r"^(markov-ptb|ptb)-(.+)-seed(\d+)$")


def seed_folder_name(corpus: str, arch: str, seed: int) -> str:
    """``<corpus>-<arch>-seed<N>`` (the shared per-seed folder name)."""
    return f"{corpus}-{arch}-seed{int(seed)}"


def parse_folder_name(name: str) -> tuple[str, str, int] | None:
    """``ptb-mts-seed2`` -> ``("ptb", "mts", 2)``; None for a name not in the shared format."""
    m = FOLDER_RE.match(name)
    return None if m is None else (m.group(1), m.group(2), int(m.group(3)))


def seed_folders(directory: str | Path | None) -> list[Path]:
    """The per-seed folders directly under ``directory`` (sorted; none when it does not exist)."""
    if directory is None or not Path(directory).is_dir():
        return []
    return sorted(q for q in Path(directory).iterdir() if q.is_dir() and parse_folder_name(q.name))


def is_ablated(arch: str) -> bool:
    """Whether a per-seed folder of this arch carries ``ablation.csv``: only MTS models are ablated
    (Fig. 3), so a baseline folder without one misses nothing."""
    return arch == "mts"


def _plain(obj: Any) -> Any:
    from .fileio import jsonable

    return jsonable(obj)


# ----------------------------------------------------------------------------------------------
# recipes
# ----------------------------------------------------------------------------------------------

def corpus_key(card: dict[str, Any]) -> str:
    """``ptb`` or ``markov-ptb`` (the folder prefix) from a card's ``corpus`` (a name or a path)."""
    c = str(card.get("corpus") or "ptb").rstrip("/")
    name = Path(c).name.lower()
    return "markov-ptb" if "markov" in name else ("ptb" if name in ("ptb", "penn", "penn-treebank") else name)


def _normal_mts(spec: Any) -> Any:
    """An MTS spec dict with defaults that later versions write explicitly filled in (so an old and a
    new card of one spec compare equal)."""
    if not isinstance(spec, dict):
        return spec
    spec = json.loads(json.dumps(spec))
    for layer in spec.get("layers", []):
        if isinstance(layer, dict) and layer.get("kind") == "fixed":
            layer.setdefault("split", "smaller-first")
    return spec


def recipe_of(card: dict[str, Any]) -> dict[str, Any]:
    """Everything that defines a training run but its seed: corpus, arch, profile, the model config
    (MTS spec normalised; fields the card predates, e.g. ``cell``, at their defaults) and the train
    config with its defaults filled in (``None`` = default), so that cards written before and after
    a field was added compare equal when they describe the same run."""
    import dataclasses
    from dataclasses import asdict

    from .models import LMConfig
    from .training import TrainConfig

    tc = asdict(TrainConfig())
    for k, v in (card.get("train_config") or {}).items():
        if v is not None:
            tc[k] = v
    tc.pop("seed", None)
    mc = dict(card.get("model_config") or {})
    mc["mts_spec"] = _normal_mts(mc.get("mts_spec"))
    for f in dataclasses.fields(LMConfig):  # fields a later version added (cell, gate_activation, ...): their defaults
        if f.name not in mc and f.default is not dataclasses.MISSING:
            mc[f.name] = f.default
    return {"corpus": corpus_key(card), "arch": card.get("arch"), "profile": card.get("profile"),
            "model_config": mc, "train_config": tc}


def recipe_hash(recipe: dict[str, Any]) -> str:
    """A short stable fingerprint of a recipe (sha256 of its canonical JSON, 12 hex digits)."""
    return hashlib.sha256(json.dumps(_plain(recipe), sort_keys=True).encode()).hexdigest()[:12]


def check_recipes(cards: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Group seed folders by recipe: ``{recipe hash: [names]}`` per arm. ``cards``: folder name ->
    card. Raises :class:`InputError` naming the differing fields when one arm (corpus, arch) holds
    two recipes; the device and torch version may differ (they are not part of a recipe)."""
    by_arm: dict[tuple[str, str], dict[str, list[str]]] = {}
    recipes: dict[str, dict[str, Any]] = {}
    for name, card in sorted(cards.items()):
        r = recipe_of(card)
        h = recipe_hash(r)
        recipes[h] = r
        by_arm.setdefault((r["corpus"], str(r["arch"])), {}).setdefault(h, []).append(name)
    out: dict[str, list[str]] = {}
    for arm, groups in by_arm.items():
        if len(groups) > 1:
            (h1, n1), (h2, n2) = list(groups.items())[:2]
            a, b = flatten_recipe(recipes[h1]), flatten_recipe(recipes[h2])
            diff = [f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
            raise InputError(f"{arm[0]} {arm[1]}: seeds trained with different recipes ({', '.join(n1)} vs "
                             f"{', '.join(n2)}): " + "; ".join(diff[:6]))
        out.update(groups)
    return out


def flatten_recipe(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A recipe as ``{'train_config.epochs': '10', ...}`` (values as canonical JSON), to name differences."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten_recipe(v, key + "."))
        else:
            out[key] = json.dumps(_plain(v), sort_keys=True)
    return out


def reconcile_card(card: dict[str, Any], metrics: pd.DataFrame) -> dict[str, Any]:
    """A card made to agree with the trainer's metrics of the same run.

    A card snapshot written while training (``status: training``) can say fewer epochs than the
    metrics file holds. The checkpoint is the best-validation epoch, so its tables stay valid when
    the metrics' best epoch is the card's ``best_epoch``: then ``epochs`` (and the train config's
    budget, ``epochs_planned``) become the epochs the metrics hold, ``status`` ``complete``, and
    ``reconciled`` records what changed and why. When the best epochs differ, the checkpoint is
    not the run's best and must be evaluated again: :class:`InputError`.
    """
    if metrics is None or not {"epoch", "valid_ppl"} <= set(metrics):
        raise InputError("reconciling a card needs the metrics (epoch, valid_ppl)")
    m = metrics.sort_values("epoch")
    best_epoch = int(m.loc[m["valid_ppl"].idxmin(), "epoch"])
    epochs = int(m["epoch"].max())
    if int(card.get("best_epoch", -1)) != best_epoch:
        raise InputError(f"the card's best epoch {card.get('best_epoch')} is not the metrics' best epoch {best_epoch}: "
                         "the checkpoint is not the run's best-validation model; evaluate that model instead")
    new = json.loads(json.dumps(card))
    before = {"status": card.get("status"), "epochs": card.get("epochs"), "epochs_planned": card.get("epochs_planned"),
              "train_config.epochs": (card.get("train_config") or {}).get("epochs")}
    new.update(status="complete", epochs=epochs, epochs_planned=epochs, best_epoch=best_epoch,
               best_valid_ppl=float(m["valid_ppl"].min()))
    new.setdefault("train_config", {})["epochs"] = epochs
    if before != {"status": "complete", "epochs": epochs, "epochs_planned": epochs, "train_config.epochs": epochs}:
        snap = int(before["epochs"] or 0)
        why = (f"the card was a snapshot written when epoch {snap} was saved as the best checkpoint, before the run "
               f"was marked complete" + (f"; the metrics hold {epochs} epochs" if snap != epochs else "")
               + f"; epoch {best_epoch} is the best validation perplexity ({float(m['valid_ppl'].min()):.2f}) of all "
               f"{epochs}, so the tables (made from that checkpoint) are the run's best-validation model, as the recipe "
               "keeps")
        new["reconciled"] = {"before": before, "why": why}
    return new


# ----------------------------------------------------------------------------------------------
# writing one folder
# ----------------------------------------------------------------------------------------------

def _ablation_groups(groups: str, T: np.ndarray, layer: int, controls: int, seed: int):
    """The timescale groups and ``controls`` random groups taking the groups' sizes in turn."""
    from .ablation import control_groups, make_groups

    main = make_groups(groups, T, layer)
    ctl = control_groups(len(T), [g.size for g in main], controls, T, layer, seed=seed)
    return main, ctl


def write_seed_tables(checkpoint: Any, corpus: Any, out_dir: str | Path, *, device: Any = "cpu",
                      card: dict[str, Any] | None = None, metrics: pd.DataFrame | str | Path | None = None,
                      layer: int = 2, groups: str = "quantiles:23", controls: int = DEFAULT_CONTROLS,
                      control_seed: int | None = None, order_by: str = "bias", mode: str = "output", seed: int = 0,
                      n_resamples: int = 10000, level: float = LEVEL, bptt: int = 70, group_batch: int | None = None,
                      bins_from: str = "train", bin_edges=None, max_tokens: int = 0, ablation: bool = True,
                      model_name: str | None = None, resume_dir: str | Path | None = None) -> dict[str, Any]:
    """Write one per-seed folder (see the module docstring) into ``out_dir``; return a summary dict.

    ``checkpoint``: a checkpoint path (any supported format) or an ``LSTMStack``. ``corpus``: a
    :class:`~timescale_probe.corpora.Corpus` or a corpus spec (``ptb``, a directory, a file).
    ``card`` / ``metrics`` default to the checkpoint's card (its ``.json`` companion, else the card
    inside) and its ``.metrics.csv`` companion. ``control_seed``: the draw of the random control
    groups (default: the model's training seed from the card, so seeds get independent controls);
    ``seed``: the chunk bootstrap's. ``order_by``: ``bias`` (T_bias, the assigned timescales of an
    MTS layer, as Fig. 3) or ``data``. ``group_batch``: ablation copies per batched pass (default
    all groups in one pass on CUDA, 8 on the CPU). ``max_tokens`` > 0 uses only the first tokens of
    the test split (tests, dry runs). ``resume_dir``: where the ablation keeps its finished passes,
    so that a run stopped part-way (an hour per seed on a CPU) resumes (see
    :func:`~timescale_probe.ablation.ablated_nll`). Files appear only when everything succeeded.
    """
    from .ablation import run_ablation_study
    from .checkpoints import load_checkpoint, read_card
    from .corpora import DEFAULT_BIN_EDGES, Corpus, check_vocab_compatible, load_corpus
    from .evaluation import perplexity_by_bin, token_nll
    from .fileio import atomic_write_with, save_npy, write_table
    from .gates import estimate_timescales, timescales_table
    from .models import LanguageModel
    from .stack import LSTMStack
    from .training import companion_paths

    if order_by not in ("bias", "data"):
        raise OptionError(f"order_by must be 'bias' or 'data', got '{order_by}'", param="order_by")
    if mode not in ("output", "silence"):
        raise OptionError(f"mode must be 'output' or 'silence', got '{mode}'", param="mode")
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
    if card is None and ckpt_path is not None:
        cj = companion_paths(ckpt_path)["card"]
        card = json.loads(cj.read_text(encoding="utf-8")) if cj.is_file() else read_card(ckpt_path)
    card = dict(card or {})
    if metrics is None and ckpt_path is not None:
        mpath = companion_paths(ckpt_path)["metrics"]
        metrics = mpath if mpath.is_file() else None
    if metrics is not None and not isinstance(metrics, pd.DataFrame):
        metrics = pd.read_csv(metrics)
    if control_seed is None:
        control_seed = int(card.get("seed", (card.get("train_config") or {}).get("seed", seed)))

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
        save_npy(work / "token_nll.npy", nll.astype(np.float64), exact_narrow=True)
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
                raise OptionError(f"layer {layer} does not exist: the model has layers 1-{len(sizes)}", param="layer")
            col = "T_bias" if order_by == "bias" else "T_data"
            T = ts.loc[ts.layer == layer].sort_values("unit")[col].to_numpy(dtype=np.float64)
            main, ctl = _ablation_groups(groups, T, layer, controls, control_seed)
            gb = group_batch or (len(main) + len(ctl) if device.type == "cuda" else 8)
            t0 = time.perf_counter()
            study = run_ablation_study(model, tokens, T, layer=layer, groups=main + ctl, mode=mode,
                                       binnings=[("frequency", bin_of, labels)], controls=0, seed=seed,
                                       bptt=bptt, group_batch=gb, n_resamples=n_resamples, level=level,
                                       device=device, resume_dir=resume_dir)
            timings["ablation_s"] = time.perf_counter() - t0
            g = study.groups_[["group", "size", "T_mean", "T_median", "T_min", "T_max"]]
            abl = study.ratios_.merge(g, on="group", how="left")
            abl.insert(0, "layer", layer)
            abl["mode"] = mode
            abl["order_by"] = col
            write_table(abl, work / "ablation.csv")
            abl_summary = dict(layer=layer, groups=groups, controls=controls,
                               control_sizes=sorted({int(c.size) for c in ctl}), control_seed=int(control_seed),
                               mode=mode, order_by=col, group_batch=gb, seed=seed, n_resamples=n_resamples,
                               level=level, passes=study.passes.get("passes"),
                               # read back from resume_dir, not run: seconds.ablation_s times only the others
                               passes_resumed=study.passes.get("passes_resumed"))
        if metrics is not None:
            write_table(metrics, work / "metrics.csv")
        timings["total_s"] = time.perf_counter() - t_start
        recipe = recipe_of(card) if card else None
        tables = dict(device=str(device), torch=str(torch.__version__), threads=torch.get_num_threads(),
                      test_tokens=int(len(tokens)), scored_targets=int(nll.size), bptt=bptt, eval_batch_size=1,
                      bins_from=bins_from, bin_edges=list(edges), test_ppl=float(math.exp(nll.mean())),
                      ablation=abl_summary, checkpoint=str(ckpt_path) if ckpt_path is not None else None,
                      trained_on={"device": card.get("device"), "torch": card.get("torch_version")},
                      recipe=recipe, recipe_hash=recipe_hash(recipe) if recipe else None, seconds=timings,
                      files=[f for f in SEED_FILES if f == "card.json" or (work / f).is_file()])
        card["seed_tables"] = tables
        atomic_write_with(work / "card.json", lambda p: Path(p).write_text(json.dumps(_plain(card), indent=2) + "\n"))
        out_dir.mkdir(parents=True, exist_ok=True)
        for f in SEED_FILES:
            if (work / f).is_file():
                (work / f).replace(out_dir / f)
            else:
                (out_dir / f).unlink(missing_ok=True)  # a stale file of an earlier ingestion would mix two runs
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tables


def ingest(checkpoint: str | Path, into: str | Path, *, corpus: str | None = None, device: Any = "cpu",
           ablation: bool | None = None, force: bool = False, **kw: Any) -> tuple[Path, dict[str, Any] | None]:
    """Turn one finished training run (``X.pt`` with its ``X.json`` card and ``X.metrics.csv``, as
    ``tsprobe train`` / ``train-sweep`` write them) into ``into/<corpus>-<arch>-seed<N>/``.

    ``corpus``: the corpus spec to evaluate on (default: ``ptb`` for a PTB model; a Markov-PTB model
    needs its resample's folder). ``ablation``: default True for MTS models only (Fig. 3). A run
    whose card is not ``complete`` is refused (still training); a folder already made from the same
    checkpoint (same bytes: SHA-256; a copied or touched file counts as the same) is kept unless
    ``force``. Returns the folder and the summary (None when kept)."""
    from .fileio import require_file
    from .training import companion_paths

    ckpt = require_file(checkpoint, "checkpoint")
    cj = companion_paths(ckpt)["card"]
    if not cj.is_file():
        raise InputError(f"{cj} not found: a run is finished when its card is written (still training?)")
    card = json.loads(cj.read_text(encoding="utf-8"))
    if card.get("status") != "complete":
        raise InputError(f"{ckpt}: the card says status '{card.get('status')}', not 'complete' (still training?)")
    key = corpus_key(card)
    if corpus is None:
        if key != "ptb":
            raise OptionError(f"{ckpt} was trained on {card.get('corpus')}: pass corpus= (the folder it was "
                              "trained on, e.g. the Markov-PTB resample)", param="corpus")
        corpus = "ptb"
    arch = str(card.get("arch"))
    seed = int(card.get("seed", (card.get("train_config") or {}).get("seed")))
    out = Path(into) / seed_folder_name(key, arch, seed)
    st = ckpt.stat()
    stamp = {"size": st.st_size, "sha256": file_sha256(ckpt)}
    old = out / "card.json"
    if old.is_file() and not force:
        prev = json.loads(old.read_text(encoding="utf-8")).get("seed_tables", {}).get("checkpoint_stamp")
        legacy = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}  # folders ingested before stamps held a hash
        if prev == stamp or prev == legacy:
            return out, None
    res = write_seed_tables(ckpt, corpus, out, device=device, card=card,
                            ablation=is_ablated(arch) if ablation is None else ablation, model_name=out.name, **kw)
    data = json.loads(old.read_text(encoding="utf-8"))
    data["seed_tables"]["checkpoint_stamp"] = stamp
    from .fileio import atomic_write_text

    atomic_write_text(old, json.dumps(_plain(data), indent=2) + "\n")
    return out, res


@dataclass
class SeedRun:
    """One per-seed folder's tables (any part may be missing; ``missing`` says which). ``source``:
    the folder, or ``this run`` for a model the report trained itself."""

    corpus: str
    arch: str
    seed: int
    source: str
    card: dict[str, Any] | None = None
    metrics: pd.DataFrame | None = None
    token_nll: np.ndarray | None = None
    perplexity: pd.DataFrame | None = None
    ablation: pd.DataFrame | None = None
    timescales: pd.DataFrame | None = None
    missing: list[str] = field(default_factory=list)
    #: how the ablation's controls were drawn: ``{"controls": n, "control_seed": s}`` (from the card)
    ablation_meta: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.corpus, self.arch, self.seed)

    @property
    def name(self) -> str:
        return seed_folder_name(self.corpus, self.arch, self.seed)

    @property
    def profile(self) -> str | None:
        return None if not self.card else self.card.get("profile")


_READERS = {"card.json": ("card", lambda f: json.loads(f.read_text(encoding="utf-8"))),
            "metrics.csv": ("metrics", pd.read_csv),
            "token_nll.npy": ("token_nll", lambda f: np.asarray(np.load(f, allow_pickle=False), dtype=np.float64)),
            "perplexity.csv": ("perplexity", pd.read_csv),
            "ablation.csv": ("ablation", lambda f: pd.read_csv(f, dtype={"group": str})),
            "timescales.csv": ("timescales", pd.read_csv)}


def read_seed_folder(path: str | Path) -> SeedRun:
    """A per-seed folder as a :class:`SeedRun` (the one reader of the format). Missing or unreadable
    files are listed in ``missing`` (an unreadable one as ``name (unreadable: why)``), never raised;
    ``ablation.csv`` counts as missing only for an arch that is ablated (:func:`is_ablated`). The
    corpus, arch and seed come from the folder's name, else from its card; :class:`OptionError`
    when the folder does not exist or neither names them."""
    p = Path(path)
    if not p.is_dir():
        raise OptionError(f"per-seed folder not found: {p}")
    tables: dict[str, Any] = {}
    missing: list[str] = []
    for fname, (attr, read) in _READERS.items():
        f = p / fname
        if not f.is_file():
            missing.append(fname)
            continue
        try:
            tables[attr] = read(f)
        except (OSError, ValueError, UnicodeDecodeError) as exc:  # json/csv/npy errors are ValueErrors
            missing.append(f"{fname} (unreadable: {type(exc).__name__})")
    card = tables.get("card")
    parsed = parse_folder_name(p.name)
    if parsed is None and isinstance(card, dict) and card.get("arch") and card.get("seed") is not None:
        parsed = (corpus_key(card), str(card["arch"]), int(card["seed"]))
    if parsed is None:
        raise OptionError(f"{p}: neither its name (<corpus>-<arch>-seed<N>) nor a card.json says which model it holds")
    run = SeedRun(*parsed, source=str(p), **tables)
    run.missing = [m for m in missing if m != "ablation.csv" or is_ablated(run.arch)]
    meta = ((card or {}).get("seed_tables") or {}).get("ablation") or {}
    run.ablation_meta = {"controls": meta.get("controls"), "control_seed": meta.get("control_seed")}
    return run


# ----------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------

def _common(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--corpus", default=None, help="ptb, a corpus directory or a text file")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--layer", type=int, default=2)
    ap.add_argument("--groups", default="quantiles:23")
    ap.add_argument("--controls", type=int, default=DEFAULT_CONTROLS,
                    help=f"random control groups (>= {MIN_CONTROLS} for Fig. 3 over seeds)")
    ap.add_argument("--order-by", default="bias", choices=("bias", "data"))
    ap.add_argument("--bootstrap", type=int, default=10000)
    ap.add_argument("--max-tokens", type=int, default=0, help="first N test tokens only (0 = all)")
    ap.add_argument("--no-ablation", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--resume-dir", type=Path, default=DEFAULT_RESUME_DIR,
                    help="where the ablation keeps finished passes so that a stopped run resumes "
                         "(default: %(default)s)")


def _kw(a) -> dict[str, Any]:
    return dict(layer=a.layer, groups=a.groups, controls=a.controls, order_by=a.order_by, n_resamples=a.bootstrap,
                max_tokens=a.max_tokens, resume_dir=a.resume_dir)


def _say(path, res) -> None:
    if res is None:
        print(f"kept {path} (already made from this checkpoint)")
    else:
        print(f"wrote {path} ({', '.join(res['files'])}): test ppl {res['test_ppl']:.2f} in "
              f"{res['seconds']['total_s']:.1f} s")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = ("ingest", "check", "reconcile", "write")
    if not argv or argv[0] not in commands + ("-h", "--help"):
        argv = ["write"] + argv  # the original form: CHECKPOINT --out DIR
    ap = argparse.ArgumentParser(prog="python -m timescale_probe.seeds",
                                 description="Per-seed result folders (card, metrics, token NLL, per-bin perplexity, "
                                             "layer-2 ablation with controls, timescales).")
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write", help="one checkpoint into the folder --out")
    w.add_argument("checkpoint", type=Path)
    w.add_argument("--out", type=Path, required=True, help="the folder to write, e.g. figures/seeds/ptb-mts-seed141")
    _common(w)
    i = sub.add_parser("ingest", help="finished runs into INTO/<corpus>-<arch>-seed<N>/ (named from their cards)")
    i.add_argument("checkpoints", type=Path, nargs="+")
    i.add_argument("--into", type=Path, default=Path("figures/seeds"))
    i.add_argument("--force", action="store_true", help="redo folders already made from the same checkpoint")
    _common(i)
    c = sub.add_parser("check", help="the recipes of the seeds under a folder: identical per arm?")
    c.add_argument("folder", type=Path)
    r = sub.add_parser("reconcile", help="make a folder's card agree with its metrics (see reconcile_card)")
    r.add_argument("folder", type=Path)
    a = ap.parse_args(argv)
    try:
        from .fileio import atomic_write_text, require_file, resolve_device

        if a.cmd == "check":
            cards = {q.name: json.loads((q / "card.json").read_text()) for q in seed_folders(a.folder)
                     if (q / "card.json").is_file()}
            for h, names in check_recipes(cards).items():
                print(f"recipe {h}: {', '.join(names)}")
            return 0
        if a.cmd == "reconcile":
            card = json.loads(require_file(a.folder / "card.json", "card").read_text())
            new = reconcile_card(card, pd.read_csv(require_file(a.folder / "metrics.csv", "metrics")))
            if card.get("seed_tables"):
                new["seed_tables"]["recipe"] = recipe_of(new)
                new["seed_tables"]["recipe_hash"] = recipe_hash(new["seed_tables"]["recipe"])
            atomic_write_text(a.folder / "card.json", json.dumps(_plain(new), indent=2) + "\n")
            print(f"{a.folder}: " + (new["reconciled"]["why"] if "reconciled" in new else "card already agrees"))
            return 0
        if a.threads:
            torch.set_num_threads(a.threads)
        dev = resolve_device(a.device)
        if a.cmd == "write":
            require_file(a.checkpoint, "checkpoint")
            res = write_seed_tables(a.checkpoint, a.corpus or "ptb", a.out, device=dev, ablation=not a.no_ablation,
                                    **_kw(a))
            _say(a.out, res)
            return 0
        for ck in a.checkpoints:
            path, res = ingest(ck, a.into, corpus=a.corpus, device=dev, force=a.force,
                               ablation=False if a.no_ablation else None, **_kw(a))
            _say(path, res)
    except TsprobeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
