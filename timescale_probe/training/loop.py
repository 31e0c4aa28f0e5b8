"""Training word-level LSTM language models with the AWD-LSTM recipe (docs/methods.md §2), resumable.

Recipe (``optimizer='sgd'``, the paper's): SGD at ``lr`` (30) with weight decay 1.2e-6, gradient
norm clipped to 0.25, cross-entropy plus activation regularisation ``alpha * mean(h_drop**2)``
(AR=2, on the last layer's dropped output) and temporal AR ``beta * mean((h_t - h_{t-1})**2)``
(TAR=1, on its raw output). Sequence length per batch: ``bptt`` with probability 0.95 else
``bptt/2``, then ``Normal(., 5)``, at least 5; the learning rate is scaled by ``seq_len/bptt``
for that batch. NT-ASGD: after an epoch whose validation loss is worse than the best of all but
the last ``nonmono`` (5) epochs, every later step also updates a running average of the weights
(torch's ASGD with ``t0=0, lambd=0``); validation then uses the averaged weights. The checkpoint
holds the weights with the best validation loss. ``optimizer='adam'`` uses Adam instead (no
averaging). Only parameters with ``requires_grad`` are optimised (MTS bias vectors are frozen).

Files beside ``out`` (``X.pt``): ``X.json`` (model card, also inside the checkpoint as ``card``),
``X.metrics.csv`` (one row per epoch), ``X.resume.pt`` (state to resume, readable with
``torch.load(weights_only=True)``). All are written atomically after every epoch, so a kill loses
at most the current epoch. Randomness is reseeded from ``(seed, epoch)`` at each epoch start, so
a resumed run gives the same weights as an uninterrupted one (CPU, same thread count).
"""
from __future__ import annotations

import json
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..checkpoints import load_checkpoint, save_checkpoint
from ..corpora import DEFAULT_BIN_EDGES, Corpus
from ..errors import OptionError
from ..evaluation import HEAD_TOKENS, batchify, evaluate_model, head_perplexity, token_nll
from ..fileio import atomic_write_text, atomic_write_with, write_table
from ..models import LanguageModel, LMConfig, repackage_hidden
from ..progress import LOGGER, Progress, RichProgress, as_progress
from ..stack import Provenance
from ..timescales import MTSSpec
from .config import TrainConfig, companion_paths, default_mts_spec, resolve_profile, train_config


def _epoch_seeds(seed: int, epoch: int) -> tuple[int, np.random.Generator]:
    return (seed * 1_000_003 + epoch) % (2**63 - 1), np.random.default_rng([seed, epoch])


def should_switch_to_asgd(val_history: list[float], val_loss: float, nonmono: int = 5) -> bool:
    """AWD-LSTM's non-monotone trigger: more than ``nonmono`` earlier validation losses exist and
    ``val_loss`` is worse than the best of all but the last ``nonmono`` of them."""
    return len(val_history) > nonmono and val_loss > min(val_history[:-nonmono])


class _Averager:
    """Running mean of parameters since the NT-ASGD switch (``ax`` of torch's ASGD)."""

    def __init__(self, params: list[torch.Tensor], avg: list[torch.Tensor] | None = None, steps: int = 0):
        self.params = params
        self.avg = avg if avg is not None else [p.detach().clone() for p in params]
        self.steps = steps

    @torch.no_grad()
    def update(self) -> None:
        self.steps += 1
        if self.steps == 1:
            torch._foreach_copy_(self.avg, [p.detach() for p in self.params])
        else:
            delta = torch._foreach_sub([p.detach() for p in self.params], self.avg)
            torch._foreach_add_(self.avg, delta, alpha=1.0 / self.steps)

    @torch.no_grad()
    def swap(self) -> None:
        """Exchange the live weights and the averages (call twice to restore)."""
        for p, a in zip(self.params, self.avg):
            tmp = p.detach().clone()
            p.copy_(a)
            a.copy_(tmp)


@dataclass
class TrainedLM:
    """What :func:`train_language_model` returns: the checkpoint path, the model card (also
    ``X.json`` and inside the checkpoint), the per-epoch metrics and the final per-bin tables
    (``valid``, ``test``; empty without the final evaluation)."""

    out: Path
    card: dict[str, Any]
    metrics: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def _mean_nll(model, stream, batch_size, bptt, device) -> float:
    nll, _ = token_nll(model, stream, batch_size=batch_size, bptt=bptt, device=device)
    return float(nll.mean())


def awd_loss(logits: torch.Tensor, targets: torch.Tensor, extras: dict[str, list[torch.Tensor]], *,
             alpha: float, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """AWD-LSTM's training loss: ``(loss, cross_entropy)``, where ``loss`` adds activation
    regularisation ``alpha * mean(m^2)`` of the last layer's dropped output ``m`` and temporal
    activation regularisation ``beta * mean((h_{t+1} - h_t)^2)`` of its raw output ``h``
    (Merity et al. 2018; ``extras`` as returned by :class:`~timescale_probe.models.LanguageModel`)."""
    raw_loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
    loss = raw_loss
    if alpha:
        loss = loss + alpha * extras["dropped_outputs"][-1].pow(2).mean()
    if beta:
        h = extras["raw_outputs"][-1]
        loss = loss + beta * (h[1:] - h[:-1]).pow(2).mean()
    return loss, raw_loss


def train_language_model(
    corpus: Corpus,
    out: str | os.PathLike,
    *,
    arch: str = "baseline",
    profile: str = "small",
    mts_spec: str | MTSSpec | dict | None = None,
    model_overrides: dict[str, Any] | None = None,
    train_overrides: dict[str, Any] | None = None,
    device: str | torch.device = "cpu",
    resume: bool = False,
    progress: bool | Progress = False,
    log: Callable[[str], None] | None = None,
    command: str | None = None,
    bins_from: str = "train",
    bin_edges=DEFAULT_BIN_EDGES,
    final_eval: bool = True,
) -> TrainedLM:
    """Train a language model on ``corpus`` and write the best-validation checkpoint to ``out``.

    ``model_overrides`` / ``train_overrides`` replace profile values (e.g. ``{'epochs': 3}``; None
    values are ignored; Adam without an ``lr`` takes 2e-3, see :func:`.config.train_config`).
    ``resume=True`` continues from ``out``'s resume file (its options must match, except the
    epoch budget). Returns the model card, the metrics table and the final per-bin tables.
    ``progress``: a bool or a :class:`~timescale_probe.progress.Progress` (one loop per epoch, then
    the final evaluation); ``log``: where status lines go (default: the ``timescale_probe`` logger).
    """
    log = log or LOGGER.info
    out = Path(out)
    paths = companion_paths(out)
    device = torch.device(device)
    model_opts = resolve_profile(profile, corpus.name)[0] | dict(model_overrides or {})
    tcfg = train_config(profile, corpus.name, train_overrides)
    spec = default_mts_spec(arch, mts_spec)
    cfg = LMConfig(vocab_size=corpus.vocab_size, mts_spec=None if spec is None else spec.to_dict(), **model_opts)

    state = None
    if resume:
        if not paths["resume"].is_file():
            raise OptionError(f"resume: no resume state at {paths['resume']}; start without it", param="resume")
        state = torch.load(paths["resume"], map_location="cpu", weights_only=True)
        # a state saved before LMConfig grew a field (cell, gate_activation, ...) holds its default
        saved_cfg, saved_t = LMConfig(**state["model_config"]).to_dict(), dict(state["train_config"])
        saved_t = TrainConfig(**saved_t).to_dict()  # likewise for a TrainConfig field added later
        mine_t = tcfg.to_dict()
        saved_t.pop("epochs", None)
        mine_t.pop("epochs", None)
        if saved_cfg != cfg.to_dict() or saved_t != mine_t or state.get("vocab") != corpus.vocab:
            diff = [k for k in mine_t if saved_t.get(k) != mine_t[k]] + [k for k in cfg.to_dict() if saved_cfg.get(k) != cfg.to_dict()[k]]
            raise OptionError(
                f"resume: {paths['resume']} was made with other options or another corpus "
                f"({', '.join(diff) or 'vocabulary'} differ); use the same options or start without resuming",
                param="resume")

    torch.manual_seed(tcfg.seed)
    model = LanguageModel(cfg, vocab=corpus.vocab).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if tcfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=tcfg.lr, weight_decay=tcfg.wdecay)
    else:
        opt = torch.optim.Adam(params, lr=tcfg.lr, weight_decay=tcfg.wdecay)

    start_epoch, elapsed, rows, val_history = 1, 0.0, [], []
    stopped_early = False
    best_val, best_epoch, switch_epoch, averager = math.inf, None, None, None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_epoch = int(state["epoch"]) + 1
        elapsed = float(state["elapsed"])
        rows = list(state["metrics"])
        val_history = list(state["val_history"])
        best_val, best_epoch = float(state["best_val"]), state["best_epoch"]
        switch_epoch = state["switch_epoch"]
        if state["avg"] is not None:
            averager = _Averager(params, [a.to(device) for a in state["avg"]], int(state["avg_steps"]))
        log(f"resuming after epoch {start_epoch - 1} (best valid ppl {math.exp(best_val):.2f})")

    train_data = batchify(corpus.tokens("train"), tcfg.batch_size).to(device)
    valid_stream = corpus.tokens("valid")
    n_params = model.num_parameters()
    card_base = {
        "command": command or "",
        "corpus": corpus.name,
        "arch": arch,
        "profile": profile,
        "seed": tcfg.seed,
        "mts_spec": None if spec is None else spec.describe(),
        "model_config": cfg.to_dict(),
        "train_config": tcfg.to_dict(),
        "parameters": n_params,
        "trainable_parameters": model.num_parameters(trainable_only=True),
        "device": str(device) + ("" if device.type != "cpu" else f" ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"),
        "torch_version": str(torch.__version__),
        "python_version": platform.python_version(),
        "epochs_planned": tcfg.epochs,
    }

    def save_best(epoch: int, epoch_start: float) -> None:
        card = card_base | {"status": "training", "epochs": epoch, "best_epoch": epoch,
                            "best_valid_ppl": math.exp(best_val), "wall_time_s": elapsed + time.time() - epoch_start}
        stack = model.to_stack(Provenance("tsprobe-checkpoint", path=str(out)))
        save_checkpoint(out, stack, _plain(card))

    def write_state(epoch: int) -> None:
        write_table(pd.DataFrame(rows), paths["metrics"])
        payload = {
            "epoch": epoch, "elapsed": elapsed, "metrics": rows, "val_history": val_history,
            "best_val": best_val, "best_epoch": best_epoch, "switch_epoch": switch_epoch,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": opt.state_dict(),
            "avg": None if averager is None else [a.detach().cpu() for a in averager.avg],
            "avg_steps": 0 if averager is None else averager.steps,
            "model_config": cfg.to_dict(), "train_config": tcfg.to_dict(), "vocab": list(corpus.vocab),
        }
        atomic_write_with(paths["resume"], lambda p: torch.save(payload, p))

    if not resume and paths["resume"].is_file():
        log(f"note: starting afresh (epoch 1) although {paths['resume']} exists; --resume continues it")
    with _EpochBars(as_progress(progress)) as bar:  # status lines are logged between epochs, not under a live bar
        for epoch in range(start_epoch, tcfg.epochs + 1):
            t0 = time.time()
            torch_seed, rng = _epoch_seeds(tcfg.seed, epoch)
            torch.manual_seed(torch_seed)
            model.train()
            hidden = model.init_hidden(tcfg.batch_size)
            n = train_data.size(0)
            total_loss, total_tokens, i = 0.0, 0, 0
            bar.start(n - 1, f"epoch {epoch}/{tcfg.epochs}")
            lr_now = tcfg.lr
            while i < n - 2:
                bptt = tcfg.bptt if rng.random() < 0.95 else tcfg.bptt / 2.0
                seq_len = max(5, int(rng.normal(bptt, 5)))
                seq_len = min(seq_len, n - 1 - i)
                for g in opt.param_groups:
                    g["lr"] = lr_now * seq_len / tcfg.bptt
                x, y = train_data[i:i + seq_len], train_data[i + 1:i + 1 + seq_len]
                hidden = repackage_hidden(hidden)
                opt.zero_grad(set_to_none=True)
                logits, hidden, extras = model(x, hidden)
                loss, raw_loss = awd_loss(logits, y, extras, alpha=tcfg.alpha, beta=tcfg.beta)
                loss.backward()
                if tcfg.clip:
                    torch.nn.utils.clip_grad_norm_(params, tcfg.clip)
                opt.step()
                if averager is not None:
                    averager.update()
                for g in opt.param_groups:
                    g["lr"] = lr_now
                rl = float(raw_loss.detach())
                if not math.isfinite(rl):
                    raise OptionError(f"training diverged (loss {rl}) in epoch {epoch}; lower lr", param="lr")
                total_loss += rl * seq_len
                total_tokens += seq_len
                i += seq_len
                bar.advance(seq_len)
                if isinstance(bar.progress, RichProgress):
                    avg = total_loss / total_tokens
                    bar.progress.info(f"loss {avg:.3f} ppl {math.exp(min(avg, 50)):.1f}")
            bar.done()
            train_loss = total_loss / max(total_tokens, 1)

            if averager is not None:
                averager.swap()
                val_loss = _mean_nll(model, valid_stream, tcfg.eval_batch_size, tcfg.bptt, device)
                improved = val_loss < best_val
                if improved:
                    best_val, best_epoch = val_loss, epoch
                    save_best(epoch, t0)
                averager.swap()
            else:
                val_loss = _mean_nll(model, valid_stream, tcfg.eval_batch_size, tcfg.bptt, device)
                improved = val_loss < best_val
                if improved:
                    best_val, best_epoch = val_loss, epoch
                    save_best(epoch, t0)
                if tcfg.optimizer == "sgd" and should_switch_to_asgd(val_history, val_loss, tcfg.nonmono):
                    averager = _Averager(params)
                    switch_epoch = epoch
                    log(f"epoch {epoch}: switching to averaged SGD (NT-ASGD)")
            val_history.append(val_loss)
            elapsed += time.time() - t0
            rows.append({"epoch": epoch, "train_loss": train_loss, "train_ppl": math.exp(min(train_loss, 700)),
                         "valid_loss": val_loss, "valid_ppl": math.exp(min(val_loss, 700)), "lr": lr_now,
                         "asgd": averager is not None, "best": improved, "seconds": time.time() - t0})
            write_state(epoch)
            log(f"epoch {epoch:3d} | train ppl {math.exp(min(train_loss, 700)):8.2f} | valid ppl "
                f"{math.exp(min(val_loss, 700)):8.2f}{' *' if improved else ''} | {time.time() - t0:6.1f} s")
            if (tcfg.patience is not None and best_epoch is not None and epoch >= tcfg.min_epochs
                    and epoch - best_epoch >= tcfg.patience):
                stopped_early = True
                log(f"epoch {epoch}: no better validation loss for {tcfg.patience} epochs (best: epoch "
                    f"{best_epoch}); stopping early")
                break

    metrics = pd.DataFrame(rows)
    if not out.is_file():
        raise OptionError(f"no checkpoint was written to {out} (no epoch finished)")
    tables: dict[str, pd.DataFrame] = {}
    card = card_base | {"status": "complete", "epochs": int(rows[-1]["epoch"]) if rows else 0, "best_epoch": best_epoch,
                        "asgd_switch_epoch": switch_epoch, "best_valid_ppl": math.exp(best_val),
                        "wall_time_s": elapsed, "stopped_early": stopped_early}
    if final_eval:
        best = LanguageModel.from_stack(load_checkpoint(out)).to(device)
        t0 = time.time()
        for split, bs in (("valid", tcfg.eval_batch_size), ("test", tcfg.test_batch_size)):
            table, _, _ = evaluate_model(best, corpus, split=split, batch_size=bs, bptt=tcfg.bptt, device=device,
                                         bins_from=bins_from, edges=bin_edges, progress=progress)
            tables[split] = table
            card[f"{split}_ppl"] = float(table["ppl"].iloc[-1])
            card[f"{split}_batch_size"] = bs
            card[f"{split}_ppl_by_bin"] = {r.bin: {"ppl": float(r.ppl), "tokens": int(r.tokens)} for r in table.itertuples()}
        card["bins_from"] = bins_from
        head = min(HEAD_TOKENS, corpus.tokens("test").numel() - 1)  # a quick re-check of this checkpoint
        card["test_ppl_head"] = {"tokens": head, "ppl": head_perplexity(best, corpus, head, bptt=tcfg.bptt, device=device)}
        card["final_eval_seconds"] = time.time() - t0
        stack = best.to_stack(Provenance("tsprobe-checkpoint", path=str(out)))
        save_checkpoint(out, stack, _plain(card))
    atomic_write_text(paths["card"], json.dumps(_plain(card), indent=2) + "\n")
    return TrainedLM(out=out, card=card, metrics=metrics, tables=tables)


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, str):
        return str(obj)  # plain str (e.g. torch's TorchVersion is a str subclass)
    return obj


class _EpochBars:
    """One progress loop per epoch (``start``/``advance``/``done``); a loop left open by an error is
    closed on the way out, so a live bar never outlives the training call."""

    def __init__(self, progress: Progress) -> None:
        self.progress, self._open = progress, 0

    def __enter__(self) -> "_EpochBars":
        return self

    def __exit__(self, *exc: Any) -> None:
        while self._open:
            self.done()

    def start(self, total: int, label: str) -> None:
        self.progress.start(total, label)
        self._open += 1

    def advance(self, n: int = 1) -> None:
        self.progress.advance(n)

    def done(self) -> None:
        self._open -= 1
        self.progress.done()


def command_line() -> str:
    """The command that started this process, for model cards."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(("__main__.py", "tsprobe")):
        argv[0] = "tsprobe"
    return " ".join(shlex.quote(a) for a in argv)
