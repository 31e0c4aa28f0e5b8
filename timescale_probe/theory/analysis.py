"""The theory test as an analysis: options declared once (:class:`TheoryOptions`), one run
(:func:`run_theory`), and a :class:`TheoryResult` that saves its tables, figure, claims and
``run.json`` (:meth:`~timescale_probe.analysis.Result.save`); also the ``reproduce`` step and the
relabelling of the first (tree) study from its saved tables."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..analysis import Options, Result, option
from ..analysis.options import threads_option
from ..errors import OptionError
from .profiles import ARM_LABELS, PROFILES, StudyProfile, resolve_profile
from .verdicts import theory_summary, theory_verdicts, verdict_claims

TABLES = ("theory_results.csv", "theory_curves.csv", "theory_summary.csv", "theory_verdicts.csv",
          "theory_headroom.csv", "theory_sources.csv", "theory_timescales.csv", "theory_oracle.csv")
FIGURES = ("theory.pdf", "theory.png")


def _numbers(kind):
    def check(text):
        if text is None or not str(text).strip():
            return None
        try:
            vals = [kind(v) for v in str(text).split(",") if v.strip()]
        except ValueError:
            raise OptionError(f"must be a comma-separated list of numbers, got '{text}'") from None
        return ",".join(str(v) for v in vals)
    return check


@dataclasses.dataclass(frozen=True)
class TheoryOptions(Options):
    """Options of ``tsprobe theory-test``."""

    source: str = option("factor", "factor: latent factors with an exact Bayes bound (the default study); "
                         "tree: the first study's hierarchical sources.", choices=tuple(PROFILES))
    profile: str = option("small", "smoke (seconds, a check only) or small (the study; see docs/theory.md for its "
                          "time on 2 cores).", choices=("smoke", "small"))
    seeds: str | None = option(None, "Seeds, comma-separated (default: the profile's).", check=_numbers(int))
    ks: str | None = option(None, "Nominal MI exponents k, comma-separated (default: the profile's).",
                            check=_numbers(float))
    jobs: int = option(1, "Training runs in parallel processes.", ge=1)
    threads: int | None = threads_option("torch threads per run; default: the one rule (timescale_probe.fileio.default_threads), "
                                          "shared by --jobs runs.")
    device: str = option("cpu", "cpu, cuda or auto.", choices=("cpu", "cuda", "auto"))
    cache: Path | None = option(None, "Folder keeping every finished run (JSON); a rerun with the same settings "
                                "reuses them (resume).")
    out: Path = option(Path("theory"), "Output folder (tables, figure, claims.csv, run.json).")

    def check(self) -> None:
        self.resolved()
        if self.cache is not None and self.cache.exists() and not self.cache.is_dir():
            raise OptionError(f"cache must be a directory, but {self.cache} is a file", param="cache")
        if self.out.exists() and not self.out.is_dir():
            raise OptionError(f"out must be a directory, but {self.out} is a file", param="out")

    def resolved(self) -> StudyProfile:
        """The profile with the seed and k overrides."""
        seeds = None if self.seeds is None else [int(v) for v in self.seeds.split(",")]
        ks = None if self.ks is None else [float(v) for v in self.ks.split(",")]
        return resolve_profile(self.source, self.profile, seeds, ks)


@dataclasses.dataclass
class TheoryResult(Result):
    """Everything one study measured; ``tables`` keyed by file name (:data:`TABLES`)."""

    command: ClassVar[str] = "tsprobe theory-test"
    profile: StudyProfile | None = None

    def table(self, name: str) -> pd.DataFrame:
        return self.tables[f"theory_{name}.csv"]

    @property
    def results(self) -> pd.DataFrame:
        return self.table("results")

    @property
    def verdicts(self) -> pd.DataFrame:
        return self.table("verdicts")

    def claims(self):
        return verdict_claims(self.verdicts)


def headroom_table(results: pd.DataFrame, windows=(5, 20, 50)) -> pd.DataFrame:
    """Per k: the exact Bayes loss on the test data (mean over the seeds' test sets) with the whole
    past and with only the last n tokens, the gain from context beyond n in nats and in % (the
    factor study: overall and on slow-factor tokens' state loss), and the trained models beside it
    (best arm's mean loss, runs worse than the Bayes predictor that sees the last 5 tokens)."""
    rows = []
    per_seed = results.drop_duplicates(["k", "seed"])
    scales = [("bayes_loss", "loss", "")]
    if "bayes_slow_state_loss" in results:
        scales.append(("bayes_slow_state_loss", "slow_state_loss", "slow_state_"))
    for k, g in per_seed.groupby("k"):
        runs = results[results["k"] == k]
        row: dict[str, Any] = {"source": g["source"].iloc[0] if "source" in g else "", "k": k, "seeds": int(len(g))}
        for bayes, model_col, tag in scales:
            full = float(g[bayes].mean())
            row[f"bayes_{tag}full"] = full
            for w in windows:
                col = f"{bayes}_n{w}"
                if col in g:
                    v = float(g[col].mean())
                    row[f"bayes_{tag}n{w}"] = v
                    row[f"{tag}gain_beyond_{w}"] = v - full
                    row[f"{tag}gain_beyond_{w}_pct"] = 100 * (v - full) / full
            arm_means = runs.groupby("arch")[model_col].mean()
            row[f"best_arm_{tag}loss"] = float(arm_means.min())
            row[f"best_arm_{tag}name"] = str(arm_means.idxmin())
            n5 = f"{bayes}_n5"
            if n5 in runs:
                row[f"runs_{tag}worse_than_bayes_n5"] = int((runs[model_col] > runs[n5]).sum())
        row["runs"] = int(len(runs))
        if "slow_tokens" in g:
            row["slow_share"] = float((g["slow_tokens"] / g["scored_tokens"]).mean())
        rows.append(row)
    return pd.DataFrame(rows)


def build_result(opts: TheoryOptions, prof: StudyProfile, tables: dict[str, pd.DataFrame], seconds: float) -> TheoryResult:
    """The :class:`TheoryResult` of a study's raw tables (results, curves, timescales, oracle, sources)."""
    from ..plots.theory import figure_theory

    res, oracle = tables["results"], tables.get("oracle")
    oracle = oracle if oracle is not None and len(oracle) else None
    verdicts = theory_verdicts(res, source=prof.source_kind, oracle=oracle)
    out = {"theory_results.csv": res, "theory_curves.csv": tables["curves"],
           "theory_summary.csv": theory_summary(res, oracle), "theory_verdicts.csv": verdicts,
           "theory_headroom.csv": headroom_table(res, prof.windows), "theory_sources.csv": tables["sources"],
           "theory_timescales.csv": tables["timescales"]}
    if oracle is not None:
        out["theory_oracle.csv"] = oracle
    title = (f"Theory test on {'factor' if prof.source_kind == 'factor' else 'hierarchical tree'} sources "
             f"({prof.name} profile)")
    build = lambda: figure_theory(res, tables["curves"], tables["sources"], prof.arms, ARM_LABELS,  # noqa: E731
                                  oracle=oracle, title=title)
    summary = {"seconds": seconds, "verdicts": {r.id: r.verdict for r in verdicts.itertuples()},
               "sources": tables["sources"].to_dict(orient="records"), "profile_settings": prof.to_dict()}
    return TheoryResult(options=opts, tables=out, figures={name: build for name in FIGURES}, summary=summary,
                        provenance={"seconds": seconds, "runs": int(len(res))}, profile=prof)


def run_theory(opts: TheoryOptions, *, progress: Any = False, log=None) -> TheoryResult:
    """Run the study ``opts`` describes (:func:`timescale_probe.theory.study.run_study`) and judge it;
    nothing is written (``result.save(opts.out)`` writes)."""
    from .study import run_study

    prof = opts.resolved()
    device = opts.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    t0 = time.time()
    tables = run_study(prof, jobs=opts.jobs, device=device, threads=opts.threads, cache_dir=opts.cache,
                       progress=progress, log=log)
    return build_result(opts, prof, tables, time.time() - t0)


def relabel_tree_study(old_dir: str | Path, *, out: str | Path | None = None) -> TheoryResult:
    """The first (tree) study from its saved tables (``theory_results.csv``, ``theory_curves.csv``,
    ``theory_sources.csv``, ``theory_timescales.csv`` of the small profile), with the exact Bayes
    numbers of every seed's test trees added and the verdicts of :mod:`timescale_probe.theory.verdicts`
    (``no power`` where the headroom is below the detectable effect). No training. Saved into
    ``out`` when given."""
    from .study import bayes_tree_metrics

    old = Path(old_dir)
    res = pd.read_csv(old / "theory_results.csv")
    curves = pd.read_csv(old / "theory_curves.csv")
    opts = TheoryOptions(source="tree", profile="small", seeds=",".join(str(s) for s in sorted(res["seed"].unique())),
                         ks=",".join(f"{k:g}" for k in sorted(res["k"].unique())), out=Path(out or "theory-tree"))
    prof = opts.resolved()
    bayes = pd.DataFrame([{"k": k, "seed": s, **bayes_tree_metrics(prof, k, s)}
                          for k, s in res[["k", "seed"]].drop_duplicates().itertuples(index=False)])
    res = res.drop(columns=[c for c in bayes.columns if c not in ("k", "seed") and c in res]).merge(bayes, on=["k", "seed"])
    if "source" not in res:
        res.insert(0, "source", "tree")
    res["loss"] = res["test_loss"]
    curves = curves if "source" in curves else curves.assign(source="tree")
    ts = pd.read_csv(old / "theory_timescales.csv")
    tables = {"results": res, "curves": curves, "sources": pd.read_csv(old / "theory_sources.csv"),
              "timescales": ts if "source" in ts else ts.assign(source="tree"), "oracle": None}
    result = build_result(opts, prof, tables, float("nan"))
    result.summary["relabelled_from"] = str(old)
    if out is not None:
        result.save(out)
    return result


def _seed_cache(cache: Path) -> None:
    """Copy the small study's committed run records (``figures/theory/cache`` of a checkout) into
    ``cache``, so that ``reproduce --profile small`` reuses the 180 finished runs instead of
    retraining them (52 CPU-minutes). Records already there are kept; each record is checked
    against the profile when it is read (:func:`timescale_probe.theory.study.cache_read`)."""
    import shutil

    from ..locations import checkout_path

    committed = checkout_path("figures", "theory", "cache")
    if committed is None or not Path(committed).is_dir():
        return
    cache.mkdir(parents=True, exist_ok=True)
    for f in sorted(Path(committed).glob("*.json")):
        if not (cache / f.name).exists():
            shutil.copyfile(f, cache / f.name)


def reproduce_step(ctx, opts) -> dict[str, Any]:
    """The ``theory`` step of ``tsprobe reproduce`` (a *beyond the paper* section): the factor study
    at the reproduce profile's size (``smoke`` -> smoke, otherwise small), outputs in
    ``<out>/theory/``, finished runs cached in ``<out>/models/theory-cache/`` so an interrupted
    reproduce resumes."""
    profile = "smoke" if opts.profile == "smoke" else "small"
    threads = getattr(opts, "threads", None)  # None: the one default rule, in run_study
    cache = Path(ctx.path("models", "theory-cache"))
    if profile == "small":
        _seed_cache(cache)
    topts = TheoryOptions(source="factor", profile=profile, threads=threads, out=Path(ctx.path("theory")),
                          cache=cache)
    result = run_theory(topts)
    result.save(topts.out)
    rows = []
    for r in result.verdicts.itertuples():
        lo, hi = r.low, r.high
        interval = f"[{lo:.3g}, {hi:.3g}]" if np.isfinite(lo) and np.isfinite(hi) else "-"
        rows.append({"claim": r.claim, "verdict": r.verdict, "evidence": r.evidence, "interval": interval})
    return {"rows": rows, "_files": [f"theory/{name}" for name in result.written_files()]}
