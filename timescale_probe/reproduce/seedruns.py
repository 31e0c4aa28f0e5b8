"""Models trained with several seeds, gathered for the report: per-seed folders (the shared format of
:mod:`timescale_probe.seeds`, e.g. ``figures/seeds/ptb-mts-seed2/``) and this run's own models.

A :class:`SeedRun` holds what one trained model contributes (any part may be missing: the reader
records what is). :func:`collect_seed_runs` gathers them from folders, keeps one run per
``(corpus, arch, seed)`` (this run's models first, then the folders in the order given), and leaves
out, with the reason, runs trained at another profile or scored on another test stream.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from ..seeds import SeedRun, read_seed_folder, seed_folders


@dataclass
class SeedCollection:
    runs: list[SeedRun]
    left_out: list[str]  # "name (source): why"

    def arm(self, corpus: str, arch: str) -> list[SeedRun]:
        return sorted((r for r in self.runs if r.corpus == corpus and r.arch == arch), key=lambda r: r.seed)

    def seeds(self, corpus: str, arch: str) -> list[int]:
        return [r.seed for r in self.arm(corpus, arch)]

    def pairs(self, corpus: str, arch_a: str, arch_b: str) -> list[tuple[SeedRun, SeedRun]]:
        """Runs of two arms with the same seed (paired by seed), in seed order."""
        b = {r.seed: r for r in self.arm(corpus, arch_b)}
        return [(r, b[r.seed]) for r in self.arm(corpus, arch_a) if r.seed in b]

    def describe(self) -> list[str]:
        arms: dict[tuple[str, str], list[str]] = {}
        for r in self.runs:
            arms.setdefault((r.corpus, r.arch), []).append(f"{r.seed}")
        return [f"{c} {a}: seeds {', '.join(sorted(s, key=int))}" for (c, a), s in sorted(arms.items())]


def collect_seed_runs(own: Iterable[SeedRun], directories: Sequence[str | Path | None], *,
                      profile: str | None = None, test_lengths: dict[str, int] | None = None) -> SeedCollection:
    """This run's models (``own``) and the per-seed folders under ``directories``, one run per
    ``(corpus, arch, seed)``, the first seen kept. ``profile``: leave out runs whose card names
    another training profile; ``test_lengths``: ``{corpus: number of scored test targets}``, leave
    out runs whose ``token_nll`` has another length (scored on another stream)."""
    kept: dict[tuple[str, str, int], SeedRun] = {}
    left: list[str] = []

    def consider(r: SeedRun) -> None:
        if r.key in kept:
            merge(kept[r.key], r)
            return
        if profile is not None and r.profile is not None and r.profile != profile:
            left.append(f"{r.name} ({r.source}): trained with the {r.profile} profile, this report is for {profile}")
            return
        if test_lengths and r.token_nll is not None and r.corpus in test_lengths and len(r.token_nll) != test_lengths[r.corpus]:
            left.append(f"{r.name} ({r.source}): token_nll has {len(r.token_nll):,} values, this run's {r.corpus} "
                        f"test stream {test_lengths[r.corpus]:,} targets")
            return
        kept[r.key] = r

    def merge(have: SeedRun, new: SeedRun) -> None:
        """The same model from a folder: fill what this run lacks, and take the folder's ablation when it
        has more controls (e.g. the shipped seed-141 model's >= 200-control ablation in figures/seeds)."""
        if (have.card or {}).get("seed") != (new.card or {}).get("seed") or (new.card or {}).get("profile") != have.profile:
            return
        for attr in ("metrics", "token_nll", "perplexity", "timescales"):
            if getattr(have, attr) is None and getattr(new, attr) is not None:
                setattr(have, attr, getattr(new, attr))
        n_have = int((have.ablation_meta or {}).get("controls") or 0)
        n_new = int((new.ablation_meta or {}).get("controls") or 0)
        if new.ablation is not None and (have.ablation is None or n_new > n_have):
            have.ablation, have.ablation_meta = new.ablation, dict(new.ablation_meta)
            have.source = f"{have.source} + ablation of {new.source}"

    for r in own:
        consider(r)
    for d in directories:
        for q in seed_folders(d):
            consider(read_seed_folder(q))
    return SeedCollection(sorted(kept.values(), key=lambda r: (r.corpus, r.arch, r.seed)), left)


# ----------------------------------------------------------------------------------------------
# validation gap per epoch (from the trainers' metrics files)
# ----------------------------------------------------------------------------------------------

def validation_gaps(pairs: Sequence[tuple[SeedRun, SeedRun]]) -> pd.DataFrame:
    """Per seed and epoch: ``seed, epoch, valid_ppl_a, valid_ppl_b, gap_pct`` with
    ``gap_pct = 100 * (valid_ppl_b / valid_ppl_a - 1)`` (b = MTS, a = baseline: > 0 means MTS worse).
    Pairs without both metrics files are left out."""
    rows = []
    for a, b in pairs:
        if a.metrics is None or b.metrics is None or not {"epoch", "valid_ppl"} <= set(a.metrics) & set(b.metrics):
            continue
        m = a.metrics[["epoch", "valid_ppl"]].merge(b.metrics[["epoch", "valid_ppl"]], on="epoch", suffixes=("_a", "_b"))
        for e, pa, pb in m.itertuples(index=False):
            rows.append({"seed": a.seed, "epoch": int(e), "valid_ppl_a": float(pa), "valid_ppl_b": float(pb),
                         "gap_pct": 100.0 * (float(pb) / float(pa) - 1.0)})
    return pd.DataFrame(rows, columns=["seed", "epoch", "valid_ppl_a", "valid_ppl_b", "gap_pct"])


def mean_gap_by_epoch(gaps: pd.DataFrame) -> list[float]:
    """Mean over seeds of ``gap_pct`` per epoch, epochs that every seed reached (ascending)."""
    if gaps.empty:
        return []
    n = gaps["seed"].nunique()
    g = gaps.groupby("epoch")["gap_pct"].agg(["mean", "size"])
    return [float(v) for v in g.loc[g["size"] == n, "mean"].sort_index()]
