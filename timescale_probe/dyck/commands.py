"""The Dyck commands as analyses: ``run_*(options) -> Result``, and each result's ``save`` as the
one writer of its files (the CLI, ``reproduce`` and scripts call the same objects)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..analysis import Result
from .options import DyckGenerateOptions, DyckPlotOptions, DyckSweepOptions, DyckTrainOptions

__all__ = ["DyckGenerateResult", "DyckTrainResult", "DyckSweepResult", "DyckPlotResult", "run_dyck_generate",
           "run_dyck_train", "run_dyck_sweep", "run_dyck_plot"]


@dataclasses.dataclass(kw_only=True)
class DyckGenerateResult(Result):
    """A sampled dataset: ``dataset`` (the folder format of :mod:`.data`), the training split's
    span distribution ``spans`` and its log-log slope ``fit``."""

    command = "dyck generate"

    dataset: Any
    spans: pd.DataFrame
    fit: dict

    def __post_init__(self) -> None:
        from ..plots.dyck import figure_spans

        self.figures = {"spans.pdf": lambda: figure_spans(self.spans, self.fit)}
        g = self.dataset.grammar
        self.summary = {"span_slope": self.fit, "p_empty": g.p_empty,
                        "mean_length": {s: float(self.dataset[s].lengths.mean()) for s in self.dataset.splits}}

    def save(self, out: str | Path | None = None, *, figures: bool = True) -> Path:
        """The data folder (train/valid/test.txt, meta.json, stats.csv, spans.csv), spans.pdf and
        run.json, all or nothing."""
        from ..analysis import save_into
        from ..fileio import OutputStage
        from .data import save_dataset

        out = Path(self.options.out if out is None else out)
        with OutputStage(out) as stage:
            save_dataset(self.dataset, stage.path)
            save_into(self, stage.path, figures=figures)
        return out

    def written_files(self, figures: bool = True) -> list[str]:
        data = [f"{s}.txt" for s in ("train", "valid", "test")] + ["meta.json", "stats.csv", "spans.csv"]
        return data + super().written_files(figures)


def run_dyck_generate(opts: DyckGenerateOptions) -> DyckGenerateResult:
    """Sample unique Dyck-n strings from the PCFG (one pool, seeded split) and their span statistics."""
    from .data import generate_dataset, span_slope, span_table

    grammar = opts.grammar()
    ds = generate_dataset(grammar, opts.sizes, seed=opts.seed)
    spans = span_table(ds["train"], grammar.max_len)
    fit = span_slope(spans, *opts.fit_range)
    return DyckGenerateResult(options=opts, dataset=ds, spans=spans, fit=fit, seed=opts.seed)


@dataclasses.dataclass(kw_only=True)
class DyckTrainResult(Result):
    """One trained and tested run (``trained``: :class:`~.train.TrainedDyck`) and the profile it ran."""

    command = "dyck train"

    trained: Any
    profile: str
    device: str

    def __post_init__(self) -> None:
        t = self.trained.test
        tail = t[t["max_span"] > 75]["correct"]
        self.summary = {"test_accuracy": self.trained.test_accuracy, "epochs_run": int(len(self.trained.history)),
                        "stopped": self.trained.stopped, "seconds": self.trained.seconds,
                        "test_accuracy_max_span_gt75": float(tail.mean()) if len(tail) else None,
                        "tail_sequences": int(len(tail))}

    def save(self, out: str | Path | None = None, *, figures: bool = True) -> Path:
        """The checkpoint at ``out`` (default ``options.out``) with ``<stem>.history.csv``,
        ``<stem>.run.json`` and, last, ``<stem>.test.csv`` beside it (:func:`.runs.save_run`)."""
        from .runs import save_run

        path = Path(self.options.out if out is None else out)
        save_run(self.trained, path, profile=self.profile, data_dir=self.options.data, device=self.device)
        return path

    def written_files(self, figures: bool = True) -> list[str]:
        from .runs import run_paths

        return [p.name for p in run_paths(self.options.out).values()]


def run_dyck_train(opts: DyckTrainOptions, *, progress: Any = None) -> DyckTrainResult:
    """Train one Dyck model and test it (threads, device, the profile resolved for the device)."""
    from ..fileio import resolve_device, use_threads
    from .config import resolve_profile
    from .data import load_dataset
    from .train import train_dyck

    use_threads(opts.threads)
    dev = resolve_device(opts.device)
    profile = resolve_profile(opts.profile, dev.type)
    cfg = opts.config(dev.type, arch=opts.arch, seed=opts.seed)
    ds = load_dataset(opts.data)
    trained = train_dyck(ds, cfg, dev, progress=progress)
    return DyckTrainResult(options=opts, trained=trained, profile=profile, device=str(dev), seed=opts.seed,
                           inputs=[opts.data / f"{s}.txt" for s in ("train", "valid", "test")])


@dataclasses.dataclass(kw_only=True)
class DyckSweepResult(Result):
    """A sweep: ``outcome`` (:class:`~.runs.SweepOutcome`: the tidy results of every finished run in
    the folder, the runs trained now, skipped and failed), the resolved profile and config."""

    command = "dyck sweep"

    outcome: Any
    profile: str
    config: Any
    seeds: list
    device: str
    threads: int

    def __post_init__(self) -> None:
        o = self.outcome
        self.tables = {"results.csv": o.results}
        self.summary = {"trained": len(o.trained), "skipped": len(o.skipped), "failed": o.failed,
                        "retried": o.retried, "profile": self.profile, "seeds": list(self.seeds),
                        "device": self.device, "threads": self.threads, "config": self.config.to_dict()}

    def save(self, out: str | Path | None = None, *, figures: bool = True) -> Path:
        """``results.csv`` and ``run.json`` into the sweep's folder (the runs' own files are
        written as they finish, so a sweep resumes)."""
        from ..analysis import save_into

        out = Path(self.options.out if out is None else out)
        save_into(self, out, figures=figures)
        return out


def run_dyck_sweep(opts: DyckSweepOptions, *, progress: Any = False,
                   on_done: Callable[[dict[str, Any]], None] | None = None,
                   on_start: Callable[[Any], None] | None = None) -> DyckSweepResult:
    """Train every (arch, seed) not yet finished in ``opts.out`` on the executor ``opts`` name
    (``on_start(executor)`` once it is up; a GPU with the local executor runs one at a time)."""
    from ..fileio import default_threads
    from .config import resolve_profile
    from .runs import sweep, validate_sweep

    dev = opts.task_device(opts.device)
    profile = resolve_profile(opts.profile, dev.type)
    cfg = opts.config(dev.type, arch=opts.archs[0], seed=1)
    seeds = opts.seed_list(profile)
    validate_sweep(opts.data, opts.out, opts.archs, seeds, cfg, profile)  # the data and the folder, before any work
    jobs = 1 if dev.type == "cuda" and opts.executor == "local" else opts.jobs
    threads = opts.threads if opts.threads is not None else default_threads(jobs)
    with opts.make(jobs=jobs) as ex:
        if on_start is not None:
            on_start(ex)
        outcome = sweep(opts.data, opts.out, opts.archs, seeds, cfg, profile=profile, device=str(dev), threads=threads,
                        executor=ex, on_done=on_done, progress=progress)
    return DyckSweepResult(options=opts, outcome=outcome, profile=profile, config=cfg, seeds=seeds, device=str(dev),
                           threads=threads, inputs=[opts.data / f"{s}.txt" for s in ("train", "valid", "test")])


@dataclasses.dataclass(kw_only=True)
class DyckPlotResult(Result):
    """Fig. 2 from finished runs: per-run results, their summary over seeds, the seed-paired
    MTS - baseline comparison (when both arms ran) and the span distribution (when found)."""

    command = "dyck plot"

    results: pd.DataFrame
    summary_table: pd.DataFrame
    paired: pd.DataFrame | None = None
    spans: pd.DataFrame | None = None
    fit: dict | None = None

    def __post_init__(self) -> None:
        from ..plots.dyck import figure_dyck

        self.tables = {"results.csv": self.results, "summary.csv": self.summary_table}
        if self.paired is not None:
            self.tables["paired.csv"] = self.paired
        if self.spans is not None:
            self.tables["spans.csv"] = self.spans
        self.figures = {"fig2_dyck.pdf": lambda: figure_dyck(self.summary_table, self.spans, self.fit)}
        s = self.summary_table
        self.summary = {"span_slope": self.fit, "summary": s[s["kind"] != "bin"].to_dict(orient="records")}


def run_dyck_plot(opts: DyckPlotOptions) -> DyckPlotResult:
    """Accuracy per max-timescale bin over seeds, the paired comparison and the span panel."""
    from ..errors import InputError
    from .analysis import paired_comparison, results_table, summarize
    from .data import span_slope
    from .runs import collect_tests, sweep_max_len

    tests = collect_tests(opts.runs)
    max_len = opts.max_len or sweep_max_len(opts.data if opts.data else opts.runs)
    results = results_table(tests, max_len=max_len, tail=opts.tail)
    paired = (paired_comparison(results, n_resamples=opts.n_resamples, seed=opts.seed)
              if {"baseline", "mts"} <= set(results["arch"]) else None)
    spans_path = (opts.data / "spans.csv") if opts.data else (opts.runs / "spans.csv")
    spans = fit = None
    if spans_path.is_file():
        try:
            spans = pd.read_csv(spans_path)
            fit = span_slope(spans)
        except (pd.errors.ParserError, KeyError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read span distribution {spans_path}: {exc}") from None
    elif opts.data:
        raise InputError(f"{spans_path} not found: is {opts.data} a folder from 'tsprobe dyck generate'?")
    return DyckPlotResult(options=opts, results=results, summary_table=summarize(results), paired=paired, spans=spans,
                          fit=fit, seed=opts.seed, inputs=sorted(Path(opts.runs).glob("*.test.csv")))
