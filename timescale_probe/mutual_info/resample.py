"""Order-n Markov resampling of a corpus: the control whose dependencies decay exponentially.

``--order n`` is the **Markov order**: each token is drawn given the previous n tokens (an
(n+1)-gram model; order 1 = bigram, order 2 = trigram). The model is the empirical (maximum
likelihood, unsmoothed) next-token distribution of the train split, with the train stream read as
one sequence (``<eos>`` included, so sentence ends and lengths are modelled). **Backoff**: when the current n-token context never occurred in train (or has no
allowed continuation), the oldest token is dropped, down to the unigram distribution.

Sampling runs ``n_chains`` independent chains in parallel, each started from the n tokens that
end at a randomly chosen ``<eos>`` of train (a real sentence-start context); each chain's complete sentences are kept and the chains concatenated. The
stream of a split is cut to exactly the original split's token count (``<eos>`` included); the last
token is set to ``<eos>`` so that the final line is complete (one shortened sentence per split).
Valid and test are sampled from the same train model restricted to the types that occur in the
sampled train split, so the sampled corpus has no out-of-vocabulary tokens (as in PTB); its
vocabulary is a subset of the original's (rare types can go unsampled; the summary counts them).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..analysis import Result
from ..errors import OptionError
from ..fileio import atomic_write_text
from ..progress import ProgressLike, advance_only, as_progress
from .options import MarkovCorpusOptions, MarkovParams


@dataclass
class NGramLevel:
    """Contexts of one length k: ``keys`` (sorted codes ``parent_context * V + older_token``; the
    context id is the index), ``start``/``count`` into ``nexts`` (continuations grouped by context)."""

    keys: np.ndarray
    start: np.ndarray
    count: np.ndarray
    nexts: np.ndarray


@dataclass
class NGramModel:
    """``starts``: (m, order) sentence-start contexts (the order tokens ending at each train <eos>)."""

    order: int
    n_types: int
    eos_id: int
    levels: list[NGramLevel]
    starts: np.ndarray


def fit_ngram(tokens: np.ndarray, order: int, n_types: int, eos_id: int,
              allowed: np.ndarray | None = None) -> NGramModel:
    """Count every context of length 0..order of the stream (vectorised: one ``np.unique`` per
    level). ``allowed``: boolean mask over types; continuations outside it are dropped."""
    if order < 0:
        raise OptionError(f"order must be >= 0 (got {order})", param="order")
    x = np.asarray(tokens, dtype=np.int64)
    V = int(n_types)
    if x.size <= order:
        raise OptionError(f"the train split ({x.size} tokens) is too short for an order-{order} model")
    padded = x
    target = x[order:]
    keep = np.ones(target.size, bool) if allowed is None else np.asarray(allowed, bool)[target]
    levels = []
    ctx = np.zeros(target.size, dtype=np.int64)
    keys = np.zeros(1, dtype=np.int64)
    for k in range(order + 1):
        if k > 0:
            older = padded[order - k: order - k + target.size]
            keys, ctx = np.unique(ctx * V + older, return_inverse=True)
            ctx = ctx.reshape(-1)
        n_ctx = keys.size
        c, t = ctx[keep], target[keep]
        order_idx = np.argsort(c, kind="stable")
        count = np.bincount(c, minlength=n_ctx)
        start = np.concatenate(([0], np.cumsum(count)[:-1]))
        levels.append(NGramLevel(keys=keys, start=start, count=count, nexts=t[order_idx]))
    ends = np.flatnonzero(x == eos_id)
    ends = ends[ends >= order - 1]
    if ends.size == 0:
        starts = np.full((1, order), eos_id, dtype=np.int64)
    else:
        starts = x[ends[:, None] - np.arange(order - 1, -1, -1)[None, :]] if order else np.zeros((ends.size, 0), np.int64)
    return NGramModel(order=order, n_types=V, eos_id=int(eos_id), levels=levels, starts=starts)


def _sample_chains(model: NGramModel, n_steps: int, n_chains: int, rng: np.random.Generator) -> np.ndarray:
    """(n_chains, n_steps) tokens; the loop runs over steps, each step batched over chains."""
    n, V = model.order, model.n_types
    hist = np.full((n_chains, max(n, 1)), model.eos_id, dtype=np.int64)
    if n > 0:
        hist[:] = model.starts[rng.integers(0, model.starts.shape[0], size=n_chains)]
    out = np.empty((n_chains, n_steps), dtype=np.int64)
    for step in range(n_steps):
        level = np.zeros(n_chains, dtype=np.int64)
        ctx_best = np.zeros(n_chains, dtype=np.int64)
        ctx = np.zeros(n_chains, dtype=np.int64)
        alive = np.ones(n_chains, dtype=bool)
        for k in range(1, n + 1):
            lv = model.levels[k]
            code = ctx * V + hist[:, n - k]
            idx = np.searchsorted(lv.keys, code)
            idx_c = np.minimum(idx, lv.keys.size - 1)
            alive &= (idx < lv.keys.size) & (lv.keys[idx_c] == code)
            ctx = np.where(alive, idx_c, 0)
            usable = alive & (lv.count[ctx] > 0)
            level = np.where(usable, k, level)
            ctx_best = np.where(usable, ctx, ctx_best)
        u = rng.random(n_chains)
        nxt = np.empty(n_chains, dtype=np.int64)
        for k in range(n + 1):
            sel = level == k
            if not sel.any():
                continue
            lv = model.levels[k]
            c = ctx_best[sel]
            pos = lv.start[c] + np.minimum((u[sel] * lv.count[c]).astype(np.int64), lv.count[c] - 1)
            nxt[sel] = lv.nexts[pos]
        out[:, step] = nxt
        if n > 0:
            hist[:, :-1] = hist[:, 1:]
            hist[:, -1] = nxt
    return out


def sample_stream(model: NGramModel, n_tokens: int, *, seed: int = 0, n_chains: int = 1000,
                  progress: ProgressLike = None) -> np.ndarray:
    """Exactly ``n_tokens`` sampled tokens made of whole sentences, the last token ``<eos>``.

    ``progress`` (:mod:`timescale_probe.progress`; or a callable ``f(n)``): started with
    ``n_tokens``, advanced by the tokens kept from each sampled block (the steps add up to ``n_tokens``)."""
    if model.levels[0].count[0] == 0:
        raise OptionError("the n-gram model has no allowed continuation at all (empty train split?)")
    bar = as_progress(progress)
    bar.start(int(n_tokens), f"sampling {int(n_tokens):,} tokens")
    try:
        return _sample_stream(model, n_tokens, seed, n_chains, bar)
    finally:
        bar.done()


def _sample_stream(model: NGramModel, n_tokens: int, seed: int, n_chains: int, bar) -> np.ndarray:
    rng = np.random.default_rng(seed)
    eos = model.eos_id
    pieces: list[np.ndarray] = []
    have = 0
    n_chains = max(1, min(int(n_chains), max(1, n_tokens // 50)))
    while have < n_tokens:
        need = n_tokens - have
        steps = int(np.ceil(1.2 * need / n_chains)) + 100
        block = _sample_chains(model, steps, n_chains, rng)
        is_eos = block == eos
        # keep each chain's complete sentences: everything up to its last <eos>
        last = np.where(is_eos.any(1), steps - 1 - np.argmax(is_eos[:, ::-1], axis=1), -1)
        keep = np.arange(steps)[None, :] <= last[:, None]
        flat = block[keep]
        bar.advance(min(need, int(flat.size)))
        pieces.append(flat)
        have += flat.size
        if flat.size == 0 and steps > 10 * n_tokens + 1000:
            raise OptionError("the n-gram model never produces <eos>; cannot form lines")
    stream = np.concatenate(pieces)[:n_tokens].copy()
    stream[-1] = eos
    return stream


def ids_to_lines_text(ids: np.ndarray, vocab: list[str], eos_id: int) -> str:
    """PTB-form text: one line per sentence (tokens joined by spaces, ``<eos>`` -> newline)."""
    words = np.asarray(vocab, dtype=object)[ids]
    words[ids == eos_id] = "\n"
    text = " ".join(words.tolist())
    return text.replace(" \n", "\n").replace("\n ", "\n")


def markov_resample(splits: dict[str, np.ndarray], vocab: list[str], eos_id: int, *, order: int = 2,
                    seed: int = 0, n_chains: int = 1000,
                    progress: ProgressLike = None) -> tuple[dict[str, np.ndarray], dict]:
    """Resample ``splits`` (``train``, ``valid``, ``test`` id streams incl. ``<eos>``) from an
    order-``order`` model of train. Returns the new streams (same lengths) and a summary dict.
    Split s uses seed ``[seed, i]`` (i = 0, 1, 2 for train, valid, test). ``progress``: started once
    with the tokens of all sampled splits, advanced as tokens are sampled."""
    if "train" not in splits:
        raise OptionError("markov resampling needs a train split")
    bar = as_progress(progress)
    total = sum(len(splits[k]) for k in ("train", "valid", "test") if k in splits)
    bar.start(total, f"sampling an order-{order} Markov corpus")
    try:
        return _markov_resample(splits, vocab, eos_id, order, seed, n_chains, advance_only(bar))
    finally:
        bar.done()


def _markov_resample(splits, vocab, eos_id, order, seed, n_chains, progress):
    V = len(vocab)
    model = fit_ngram(splits["train"], order, V, eos_id)
    out = {"train": sample_stream(model, len(splits["train"]), seed=_split_seed(seed, 0), n_chains=n_chains,
                                  progress=progress)}
    allowed = np.bincount(out["train"], minlength=V) > 0
    restricted = fit_ngram(splits["train"], order, V, eos_id, allowed=allowed)
    for i, name in enumerate(("valid", "test"), start=1):
        if name in splits:
            out[name] = sample_stream(restricted, len(splits[name]), seed=_split_seed(seed, i), n_chains=n_chains,
                                      progress=progress)
    orig_types = int(np.count_nonzero(np.bincount(splits["train"], minlength=V)))
    summary = {
        "order": order, "seed": seed, "n_chains": n_chains,
        "tokens": {k: int(v.size) for k, v in out.items()},
        "lines": {k: int(np.count_nonzero(v == eos_id)) for k, v in out.items()},
        "original_lines": {k: int(np.count_nonzero(v == eos_id)) for k, v in splits.items()},
        "train_types_original": orig_types,
        "train_types_sampled": int(allowed.sum()),
        "contexts_per_level": [int(lv.keys.size) for lv in model.levels],
    }
    return out, summary


def _split_seed(seed: int, i: int) -> int:
    return int(np.random.SeedSequence([int(seed), i]).generate_state(1)[0])


def write_ptb_dir(out_dir, streams: dict[str, np.ndarray], vocab: list[str], eos_id: int) -> list[Path]:
    """Write ``train.txt``/``valid.txt``/``test.txt`` (PTB form) atomically into ``out_dir``."""
    paths = []
    for name, ids in streams.items():
        paths.append(atomic_write_text(Path(out_dir) / f"{name}.txt", ids_to_lines_text(ids, vocab, eos_id)))
    return paths


def markov_corpus(spec: str, *, order: int = 2, seed: int = 0, n_chains: int = 1000, progress: ProgressLike = None):
    """Load ``spec`` with :func:`timescale_probe.corpora.load_corpus` and resample its three splits
    (see :func:`markov_resample`, which reports to ``progress``). Returns ``(streams, vocab, eos_id, summary)``."""
    from ..corpora import EOS, load_corpus

    MarkovParams(order=order, seed=seed, n_chains=n_chains)  # every option checked before the corpus is read
    corpus = load_corpus(spec)
    splits = {s: corpus.tokens(s).numpy().astype(np.int64) for s in ("train", "valid", "test")}
    eos_id = corpus.stoi[EOS]
    streams, summary = markov_resample(splits, corpus.vocab, eos_id, order=order, seed=seed, n_chains=n_chains,
                                       progress=progress)
    summary["source"] = corpus.name
    summary["sources"] = dict(corpus.sources)
    return streams, corpus.vocab, eos_id, summary


@dataclass(kw_only=True)
class MarkovCorpusResult(Result):
    """A Markov version of a corpus: the resampled ``streams`` (train/valid/test id arrays incl.
    ``<eos>``) over ``vocab``; saved as ``train.txt``, ``valid.txt``, ``test.txt`` (PTB form) and run.json."""

    command = "markov-corpus"

    streams: dict
    vocab: list
    eos_id: int

    def save(self, out: str | Path | None = None, *, figures: bool = True) -> Path:
        from ..analysis import save_into
        from ..fileio import OutputStage

        out = Path(self.options.out if out is None else out)
        with OutputStage(out) as stage:
            write_ptb_dir(stage.path, self.streams, self.vocab, self.eos_id)
            save_into(self, stage.path, figures=figures)
        return out

    def written_files(self, figures: bool = True) -> list[str]:
        return [f"{name}.txt" for name in self.streams] + super().written_files(figures)


def run_markov_corpus(opts: MarkovCorpusOptions, *, progress: ProgressLike = None) -> MarkovCorpusResult:
    """``tsprobe markov-corpus``: :func:`markov_corpus` of ``opts.corpus`` as ``opts`` say."""
    streams, vocab, eos_id, summary = markov_corpus(opts.corpus, order=opts.order, seed=opts.seed,
                                                    n_chains=opts.n_chains, progress=progress)
    sources = sorted({p for p in summary.get("sources", {}).values() if Path(p).is_file()})
    return MarkovCorpusResult(options=opts, streams=streams, vocab=list(vocab), eos_id=eos_id, summary=summary,
                              seed=opts.seed, inputs=[Path(p) for p in sources])
