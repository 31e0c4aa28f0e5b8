"""Evaluating language models: token log-losses, perplexity overall and per word-frequency bin,
and the paired chunk bootstrap that compares two models on the same text (SPEC §4).

Units and conventions:

- NLL is the natural-log negative log-likelihood of each *target* token (nats), float64.
- Perplexity = ``exp(mean NLL)``; per bin = ``exp(mean NLL over tokens whose target is in the
  bin)`` (bins from :func:`timescale_probe.corpora.frequency_bins`, most frequent first).
- Evaluation as in the reference: the stream is cut into ``batch_size`` columns (AWD
  ``batchify``: the tail that does not fill a column is dropped), read in windows of ``bptt``
  steps with the hidden state carried across windows; the first token of each column is never
  a target. With ``batch_size=1`` every token but the first is scored.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .errors import OptionError
from .validation import check_choice, check_fraction, check_int
from .progress import progress_bar


# ----------------------------------------------------------------------------------------------
# token losses
# ----------------------------------------------------------------------------------------------

def batchify(stream: torch.Tensor, batch_size: int) -> torch.Tensor:
    """AWD-LSTM batching: a stream ``(N, ...)`` becomes ``(N // batch_size, batch_size, ...)`` where
    column ``b`` is the ``b``-th consecutive piece of ``stream`` (the remainder is dropped). Token-id
    streams give ``(N // B, B)``; embedded inputs ``(N, I)`` give ``(N // B, B, I)``."""
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    n = stream.shape[0] // batch_size
    if n < 2:
        raise OptionError(f"a stream of {stream.shape[0]} tokens is too short for batch_size {batch_size}",
                          param="batch_size")
    return stream[: n * batch_size].reshape(batch_size, n, *stream.shape[1:]).transpose(0, 1).contiguous()


@torch.no_grad()
def token_nll(model, stream: torch.Tensor, *, batch_size: int = 1, bptt: int = 70, device="cpu",
              output_masks: dict[int, torch.Tensor] | None = None, progress: bool = False,
              description: str = "evaluating") -> tuple[np.ndarray, np.ndarray]:
    """NLL (nats, float64) of every scored target token and the targets (int64), in stream order.

    The model runs in eval mode with the hidden state carried over ``bptt``-step windows;
    ``output_masks`` is passed to the model (``{layer (1-based): mask (H,) or (batch_size, H)}``).
    For ``batch_size > 1`` the results of column ``b`` (stream positions ``b*N+1 .. b*N+N-1``)
    come before those of column ``b+1``, i.e. the kept tokens in stream order.
    """
    bptt = check_int(bptt, "bptt", minimum=1)
    device = torch.device(device)
    was_training = model.training
    model.eval()
    data = batchify(stream.long(), batch_size).to(device)
    masks = None if output_masks is None else {k: v.to(device) for k, v in output_masks.items()}
    n = data.size(0)
    nll = torch.empty((n - 1, batch_size), dtype=torch.float64, device=device)
    hidden = model.init_hidden(batch_size)
    starts = range(0, n - 1, bptt)
    try:
        with progress_bar(len(starts), description, progress) as bar:
            for i in starts:
                seq = min(bptt, n - 1 - i)
                x, y = data[i:i + seq], data[i + 1:i + 1 + seq]
                logits, hidden, _ = model(x, hidden, output_masks=masks)
                loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="none")
                nll[i:i + seq] = loss.view(seq, batch_size).double()
                bar.advance()
    finally:
        model.train(was_training)
    targets = data[1:].t().reshape(-1).cpu().numpy().astype(np.int64)
    return nll.t().reshape(-1).cpu().numpy(), targets


# ----------------------------------------------------------------------------------------------
# perplexity per bin
# ----------------------------------------------------------------------------------------------

def _bin_index(targets: np.ndarray, bin_of_vocab: np.ndarray, n_bins: int) -> np.ndarray:
    targets = np.asarray(targets, dtype=np.int64)
    bin_of_vocab = np.asarray(bin_of_vocab, dtype=np.int64)
    if targets.size and (targets.min() < 0 or targets.max() >= len(bin_of_vocab)):
        raise OptionError(f"target ids exceed the {len(bin_of_vocab)} vocabulary entries the bins cover")
    b = bin_of_vocab[targets]
    if b.size and (b.min() < 0 or b.max() >= n_bins):
        raise OptionError(f"bin ids must lie in 0..{n_bins - 1}")
    return b


def perplexity_by_bin(nll: np.ndarray, targets: np.ndarray, bin_of_vocab: np.ndarray,
                      labels: Sequence[str]) -> pd.DataFrame:
    """Tidy table ``bin, tokens, nll_mean, ppl``: one row per frequency bin (in ``labels`` order,
    most frequent first) and a last row ``overall``. An empty bin has NaN NLL and perplexity."""
    nll = np.asarray(nll, dtype=np.float64)
    b = _bin_index(targets, bin_of_vocab, len(labels))
    counts = np.bincount(b, minlength=len(labels)).astype(np.int64)
    sums = np.bincount(b, weights=nll, minlength=len(labels))
    counts = np.append(counts, nll.size)
    sums = np.append(sums, nll.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return pd.DataFrame({"bin": list(labels) + ["overall"], "tokens": counts, "nll_mean": mean, "ppl": np.exp(mean)})


# ----------------------------------------------------------------------------------------------
# paired bootstrap
# ----------------------------------------------------------------------------------------------

def order_statistic_ranks(n_values: int, level: float) -> tuple[int, int]:
    """0-based indices into the sorted ``n_values`` bootstrap values that bound a ``level``
    interval, as the reference does: ``k = floor(n * (1 - level) / 2)``, indices ``k-1`` and
    ``n-1-k`` (n=10,001, level 0.999 -> 4 and 9995)."""
    level = check_fraction(level, "level")
    k = int(math.floor(n_values * (1.0 - level) / 2.0 + 1e-9))
    return max(k - 1, 0), min(n_values - 1 - k, n_values - 1)


def resample_counts(n_chunks: int, n_resamples: int, seed: int) -> np.ndarray:
    """``(n_resamples + 1, n_chunks)`` int32 matrix: how often each chunk is drawn in each
    resample (row 0 = the original order, every chunk once). Drawn with replacement from
    ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    out = np.empty((n_resamples + 1, n_chunks), dtype=np.int32)
    out[0] = 1
    block = max(1, 2_000_000 // max(n_chunks, 1))
    for start in range(0, n_resamples, block):  # blocks of resamples bound the memory, not a per-resample loop
        r = min(block, n_resamples - start)
        draws = rng.integers(0, n_chunks, size=(r, n_chunks)) + (np.arange(r) * n_chunks)[:, None]
        out[1 + start:1 + start + r] = np.bincount(draws.ravel(), minlength=r * n_chunks).reshape(r, n_chunks)
    return out


def check_bootstrap_options(*, chunk: int = 100, n_resamples: int = 10000, level: float = 0.999) -> None:
    """Options of :func:`paired_bootstrap` (one ``OptionError`` naming the parameter); commands
    call it before any work."""
    check_int(chunk, "chunk", minimum=1)
    check_int(n_resamples, "n_resamples", minimum=1)
    check_fraction(level, "level")


def check_eval_options(*, split: str = "test", batch_size: int = 1, bptt: int = 70) -> None:
    """Options of :func:`token_nll` / :func:`evaluate_model`, checked before any work."""
    check_choice(split, "split", ("train", "valid", "test"))
    check_int(batch_size, "batch_size", minimum=1)
    check_int(bptt, "bptt", minimum=1)


def paired_bootstrap(nll_a: np.ndarray, nll_b: np.ndarray, targets: np.ndarray, bin_of_vocab: np.ndarray,
                     labels: Sequence[str], *, chunk: int = 100, n_resamples: int = 10000, level: float = 0.999,
                     seed: int = 0) -> pd.DataFrame:
    """Paired chunk bootstrap of the perplexity difference ``a - b`` (SPEC §4).

    The scored stream is cut into consecutive ``chunk``-token chunks (the incomplete tail is
    dropped: 824 chunks for PTB test); each resample draws as many chunks with replacement, the
    same chunks for both models; the original order is added as one more sample (so 10,001
    values by default). Per bin and overall, each sample's perplexity is ``exp(mean NLL)`` over
    the targets of the drawn chunks. Columns: ``bin, tokens, ppl_a, ppl_b`` (on the original
    chunks), ``diff`` (mean over all samples of ``ppl_a - ppl_b``), ``lo, hi`` (order statistics,
    :func:`order_statistic_ranks`), ``sd``, ``level, n_chunks, n_resamples, seed``.
    """
    nll_a = np.asarray(nll_a, dtype=np.float64)
    nll_b = np.asarray(nll_b, dtype=np.float64)
    if nll_a.shape != nll_b.shape or nll_a.shape != np.shape(targets):
        raise OptionError(f"paired bootstrap needs equal-length streams, got {nll_a.shape}, {nll_b.shape}, {np.shape(targets)}")
    check_bootstrap_options(chunk=chunk, n_resamples=n_resamples, level=level)
    n_chunks = nll_a.size // chunk
    if n_chunks < 2:
        raise OptionError(f"{nll_a.size} tokens make fewer than 2 chunks of {chunk}: nothing to resample")
    n_bins = len(labels)
    keep = n_chunks * chunk
    b = _bin_index(np.asarray(targets)[:keep], bin_of_vocab, n_bins)
    cell = np.repeat(np.arange(n_chunks), chunk) * (n_bins + 1) + b
    size = n_chunks * (n_bins + 1)

    def per_chunk(weights=None):
        m = np.bincount(cell, weights=weights, minlength=size).reshape(n_chunks, n_bins + 1)
        m[:, n_bins] = m[:, :n_bins].sum(axis=1)  # overall column
        return m

    counts = per_chunk().astype(np.float64)
    sum_a = per_chunk(nll_a[:keep])
    sum_b = per_chunk(nll_b[:keep])
    W = resample_counts(n_chunks, n_resamples, seed).astype(np.float64)
    n_tok = W @ counts
    with np.errstate(invalid="ignore", divide="ignore"):
        ppl_a = np.exp((W @ sum_a) / n_tok)
        ppl_b = np.exp((W @ sum_b) / n_tok)
    diff = ppl_a - ppl_b  # (n_resamples + 1, n_bins + 1)
    lo_i, hi_i = order_statistic_ranks(diff.shape[0], level)
    rows = []
    for j, lab in enumerate(list(labels) + ["overall"]):
        d = diff[:, j]
        finite = d[np.isfinite(d)]
        srt = np.sort(finite)
        ok = finite.size == d.size
        rows.append({
            "bin": lab, "tokens": int(counts[:, j].sum()), "ppl_a": ppl_a[0, j], "ppl_b": ppl_b[0, j],
            "diff": float(finite.mean()) if finite.size else np.nan,
            "lo": float(srt[lo_i]) if ok else np.nan, "hi": float(srt[hi_i]) if ok else np.nan,
            "sd": float(finite.std()) if finite.size else np.nan,
            "level": level, "n_chunks": n_chunks, "n_resamples": n_resamples, "seed": seed,
        })
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# whole-model helpers used by the CLI
# ----------------------------------------------------------------------------------------------

def evaluate_model(model, corpus, *, split: str = "test", batch_size: int = 1, bptt: int = 70, device="cpu",
                   bins_from: str = "train", edges=(100, 1000, 10000), progress: bool = False):
    """Per-bin perplexity of ``model`` on ``corpus[split]``: returns ``(table, nll, targets)``
    with the table of :func:`perplexity_by_bin`."""
    bin_of, labels = corpus.bins(bins_from, edges)
    nll, targets = token_nll(model, corpus.tokens(split), batch_size=batch_size, bptt=bptt, device=device,
                             progress=progress, description=f"{split} (batch {batch_size})")
    return perplexity_by_bin(nll, targets, bin_of, labels), nll, targets


#: How many test tokens the model card's ``test_ppl_head`` covers (a quick check that a shipped
#: checkpoint still gives the numbers it was trained to: see :func:`head_perplexity`).
HEAD_TOKENS = 2000


def head_perplexity(model, corpus, n_tokens: int = HEAD_TOKENS, *, split: str = "test", bptt: int = 70,
                    device="cpu") -> float:
    """Perplexity of ``model`` on the first ``n_tokens`` targets of ``corpus[split]`` (batch 1,
    ``bptt``-step windows, hidden state carried from the first token: the first ``n_tokens + 1``
    tokens of the split, the first is never a target). The training model card records it as
    ``test_ppl_head: {tokens, ppl}``; recomputing it checks a checkpoint against its card quickly."""
    stream = corpus.tokens(split)
    if not 1 <= int(n_tokens) <= stream.numel() - 1:
        raise OptionError(f"n_tokens must lie in 1..{stream.numel() - 1} (the {split} split's targets), got {n_tokens}",
                          param="n_tokens")
    nll, _ = token_nll(model, stream[: int(n_tokens) + 1], batch_size=1, bptt=bptt, device=device)
    return float(math.exp(nll.mean()))


def comparison_table(ppl_a: pd.DataFrame, ppl_b: pd.DataFrame, boot: pd.DataFrame,
                     names: tuple[str, str] = ("baseline", "mts")) -> pd.DataFrame:
    """Table-1-style table: ``bin, tokens, ppl_<a>, ppl_<b>`` (whole scored stream), ``diff, lo,
    hi`` (bootstrap of ``a - b``), ``level, n_resamples, seed``."""
    a, b = names
    t = pd.DataFrame({"bin": ppl_a["bin"], "tokens": ppl_a["tokens"], f"ppl_{a}": ppl_a["ppl"], f"ppl_{b}": ppl_b["ppl"]})
    return t.merge(boot[["bin", "diff", "lo", "hi", "level", "n_resamples", "seed"]], on="bin", how="left")


def markdown_table(df: pd.DataFrame, floatfmt: str = ".2f") -> str:
    """A GitHub-Markdown rendering of ``df`` (numbers right-aligned, floats with ``floatfmt``)."""
    def fmt(v):
        if isinstance(v, (float, np.floating)):
            return format(float(v), floatfmt) if np.isfinite(v) else str(v)
        return str(v)

    cols = list(df.columns)
    rows = [[fmt(v) for v in r] for r in df.itertuples(index=False)]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in cols]
    lines = ["| " + " | ".join(cols) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"
