"""Evaluating language models: token log-losses, perplexity overall and per word-frequency bin,
and the paired chunk bootstrap that compares two models on the same text (paper Table 1; docs/methods.md §4).

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

from .errors import OptionError
from .progress import ProgressLike
from .runner import Hook, batchify, run_stream  # noqa: F401  (batchify re-exported)
from .validation import check_fraction, check_int

# ----------------------------------------------------------------------------------------------
# token losses
# ----------------------------------------------------------------------------------------------

def token_nll(model, stream: torch.Tensor, *, batch_size: int = 1, bptt: int = 70, device="cpu",
              hooks: Sequence[Hook] = (), progress: ProgressLike = False,
              description: str = "evaluating") -> tuple[np.ndarray, np.ndarray]:
    """NLL (nats, float64) of every scored target token and the targets (int64), in stream order.

    One :func:`~timescale_probe.runner.run_stream` pass: eval mode, the hidden state carried over
    ``bptt``-step windows, ``hooks`` (e.g. :func:`~timescale_probe.runner.mask_output`) applied.
    For ``batch_size > 1`` the results of column ``b`` (stream positions ``b*N+1 .. b*N+N-1``)
    come before those of column ``b+1``, i.e. the kept tokens in stream order.
    """
    bptt = check_int(bptt, "bptt", minimum=1)
    run = run_stream(model, stream, hooks, batch_size=batch_size, window=bptt, nll=True, device=device,
                     progress=progress, description=description)
    targets = run.targets.t().reshape(-1).numpy().astype(np.int64)
    return run.nll_by_copy()[0], targets


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


def paired_bootstrap(nll_a: np.ndarray, nll_b: np.ndarray, targets: np.ndarray, bin_of_vocab: np.ndarray,
                     labels: Sequence[str], *, chunk: int = 100, n_resamples: int = 10000, level: float = 0.999,
                     seed: int = 0) -> pd.DataFrame:
    """Paired chunk bootstrap of the perplexity difference ``a - b`` (paper Table 1; docs/methods.md §4).

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
                   bins_from: str = "train", edges=(100, 1000, 10000), progress: ProgressLike = False):
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


# ----------------------------------------------------------------------------------------------
# intervals of one model, and two models compared over several training seeds (Table 1)
# ----------------------------------------------------------------------------------------------

def _chunk_sums(nll: np.ndarray, targets: np.ndarray, bin_of_vocab: np.ndarray, n_bins: int,
                chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Per consecutive ``chunk``-token chunk and bin (+ overall last): token counts and NLL sums,
    both ``(n_chunks, n_bins + 1)``; the incomplete tail is dropped."""
    nll = np.asarray(nll, dtype=np.float64)
    n_chunks = nll.size // chunk
    if n_chunks < 2:
        raise OptionError(f"{nll.size} tokens make fewer than 2 chunks of {chunk}: nothing to resample")
    keep = n_chunks * chunk
    b = _bin_index(np.asarray(targets)[:keep], bin_of_vocab, n_bins)
    cell = np.repeat(np.arange(n_chunks), chunk) * (n_bins + 1) + b
    size = n_chunks * (n_bins + 1)
    cnt = np.bincount(cell, minlength=size).reshape(n_chunks, n_bins + 1).astype(np.float64)
    tot = np.bincount(cell, weights=nll[:keep], minlength=size).reshape(n_chunks, n_bins + 1)
    cnt[:, n_bins], tot[:, n_bins] = cnt[:, :n_bins].sum(1), tot[:, :n_bins].sum(1)
    return cnt, tot


def ppl_intervals(nll: np.ndarray, targets: np.ndarray, bin_of: np.ndarray, labels: Sequence[str], *,
                  n_resamples: int, seed: int, level: float = 0.95, chunk: int = 100) -> pd.DataFrame:
    """Chunk-bootstrap interval of one model's perplexity per bin and overall (the resamples of
    :func:`resample_counts`, percentile interval): ``bin, ppl_lo, ppl_hi`` (NaN for an empty bin)."""
    import warnings

    if not 0.0 < level < 1.0:
        raise OptionError(f"level must lie strictly between 0 and 1, got {level}")
    cnt, tot = _chunk_sums(nll, targets, bin_of, len(labels), chunk)
    W = resample_counts(cnt.shape[0], n_resamples, seed)[1:].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ppl = np.exp((W @ tot) / (W @ cnt))
    q = [(1 - level) / 2, (1 + level) / 2]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a bin without tokens: NaN interval
        lo, hi = np.nanquantile(ppl, q, axis=0)
    return pd.DataFrame({"bin": list(labels) + ["overall"], "ppl_lo": lo, "ppl_hi": hi})


def _direction(lo: float, hi: float, better: str, worse: str) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "not measured"
    return better if lo > 0 else worse if hi < 0 else "no clear difference"


def seed_paired_comparison(nll_a: Sequence[np.ndarray], nll_b: Sequence[np.ndarray], targets: np.ndarray,
                           bin_of_vocab: np.ndarray, labels: Sequence[str], *, seeds: Sequence[int] | None = None,
                           names: tuple[str, str] = ("baseline", "mts"), chunk: int = 100,
                           n_resamples: int = 10000, level: float = 0.95,
                           seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two models trained with the same seeds, compared on the same text, paired by seed.

    ``nll_a[i]`` and ``nll_b[i]``: token NLLs of the two arms trained with seed ``seeds[i]``, on the
    same scored stream (``targets``). Per bin and overall, with ``a`` = ``names[0]`` and ``b`` =
    ``names[1]``: the perplexities, their difference ``a - b`` and the relative difference in NLL
    per token ``100 * (nll_a - nll_b) / nll_a`` (%; > 0: ``b`` better).

    Combined over seeds by a hierarchical bootstrap: each resample draws the seeds with
    replacement and, shared by all seeds (they are scored on the same text), the ``chunk``-token
    chunks with replacement; the statistic is the mean over the drawn seeds. Percentile interval
    at ``level``. Beside it a t interval across the per-seed estimates (``df = seeds - 1``), which
    only holds the between-seed spread. Returns ``(combined, per_seed)``:

    - ``combined``: ``bin, tokens, seeds, ppl_<a>, ppl_<a>_lo, ppl_<a>_hi, ppl_<b>, ..., diff, lo, hi,
      t_lo, t_hi, rel_nll_pct, rel_lo, rel_hi, rel_t_lo, rel_t_hi, direction, level, n_resamples, chunk``
      (point values: mean over seeds on the original chunks; ``direction`` from ``lo, hi``);
    - ``per_seed``: ``seed, bin, tokens, ppl_<a>, ppl_<b>, diff, lo, hi, rel_nll_pct, rel_lo, rel_hi``
      (chunk bootstrap of that seed alone, same resamples, same level).
    """
    from .stats import t_interval

    if len(nll_a) != len(nll_b) or not len(nll_a):
        raise OptionError(f"need the same number (>= 1) of runs per arm, got {len(nll_a)} and {len(nll_b)}")
    if not 0.0 < level < 1.0:
        raise OptionError(f"level must lie strictly between 0 and 1, got {level}")
    if n_resamples < 1 or chunk < 1:
        raise OptionError("n_resamples and chunk must be >= 1")
    S = len(nll_a)
    seeds = list(range(1, S + 1)) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != S:
        raise OptionError(f"{len(seeds)} seeds given for {S} runs per arm")
    n = np.shape(targets)[0]
    for k, x in enumerate(list(nll_a) + list(nll_b)):
        if np.shape(x) != (n,):
            raise OptionError(f"token NLL array {k} has shape {np.shape(x)}, the targets ({n},)")
    B = len(labels)
    cnt, _ = _chunk_sums(nll_a[0], targets, bin_of_vocab, B, chunk)
    sa = np.stack([_chunk_sums(x, targets, bin_of_vocab, B, chunk)[1] for x in nll_a])  # (S, C, B+1)
    sb = np.stack([_chunk_sums(x, targets, bin_of_vocab, B, chunk)[1] for x in nll_b])
    W = resample_counts(cnt.shape[0], n_resamples, seed).astype(np.float64)  # (R+1, C), row 0 original
    N = W @ cnt  # (R+1, B+1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma = np.einsum("rc,scb->srb", W, sa) / N  # mean NLL (S, R+1, B+1)
        mb = np.einsum("rc,scb->srb", W, sb) / N
        pa, pb = np.exp(ma), np.exp(mb)
        diff = pa - pb
        rel = 100.0 * (ma - mb) / ma
    rng = np.random.default_rng([seed, 1])
    draw = rng.integers(0, S, size=(W.shape[0], S))
    draw[0] = np.arange(S)
    rows_r = np.arange(W.shape[0])[:, None]

    def combine(x):  # (S, R+1, B+1) -> (R+1, B+1): mean over the drawn seeds of each resample
        return x[draw, rows_r, :].mean(axis=1)

    q = [(1 - level) / 2, (1 + level) / 2]

    def pct(x):
        import warnings

        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanquantile(x[1:], q, axis=0)

    def t_iv(per_seed):  # per_seed (S, B+1): the t interval across seeds of every bin
        ci = t_interval(per_seed, level, axis=0)
        return ci.lo, ci.hi

    a, b = names
    comb = {k: combine(v) for k, v in (("pa", pa), ("pb", pb), ("diff", diff), ("rel", rel))}
    ivs = {k: pct(v) for k, v in comb.items()}
    t_d, t_r = t_iv(diff[:, 0, :]), t_iv(rel[:, 0, :])
    all_labels = list(labels) + ["overall"]
    rows = []
    for j, lab in enumerate(all_labels):
        lo, hi = ivs["diff"][0][j], ivs["diff"][1][j]
        rows.append({
            "bin": lab, "tokens": int(cnt[:, j].sum()), "seeds": S,
            f"ppl_{a}": float(pa[:, 0, j].mean()), f"ppl_{a}_lo": ivs["pa"][0][j], f"ppl_{a}_hi": ivs["pa"][1][j],
            f"ppl_{b}": float(pb[:, 0, j].mean()), f"ppl_{b}_lo": ivs["pb"][0][j], f"ppl_{b}_hi": ivs["pb"][1][j],
            "diff": float(diff[:, 0, j].mean()), "lo": lo, "hi": hi, "t_lo": t_d[0][j], "t_hi": t_d[1][j],
            "rel_nll_pct": float(rel[:, 0, j].mean()), "rel_lo": ivs["rel"][0][j], "rel_hi": ivs["rel"][1][j],
            "rel_t_lo": t_r[0][j], "rel_t_hi": t_r[1][j],
            "direction": _direction(lo, hi, f"{b} better", f"{b} worse"),
            "level": level, "n_resamples": n_resamples, "chunk": chunk,
        })
    per = []
    for i, s in enumerate(seeds):
        d_lo, d_hi = pct(diff[i])
        r_lo, r_hi = pct(rel[i])
        for j, lab in enumerate(all_labels):
            per.append({"seed": s, "bin": lab, "tokens": int(cnt[:, j].sum()), f"ppl_{a}": float(pa[i, 0, j]),
                        f"ppl_{b}": float(pb[i, 0, j]), "diff": float(diff[i, 0, j]), "lo": d_lo[j], "hi": d_hi[j],
                        "rel_nll_pct": float(rel[i, 0, j]), "rel_lo": r_lo[j], "rel_hi": r_hi[j]})
    return pd.DataFrame(rows), pd.DataFrame(per)
