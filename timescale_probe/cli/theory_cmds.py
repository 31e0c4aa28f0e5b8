"""``tsprobe theory-test``: the theory study on hierarchical sources of known MI exponent k
(:mod:`timescale_probe.theory`)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..errors import OptionError
from . import app
from ._common import console, example, out_option


def _numbers(text: Optional[str], kind, param: str):
    if text is None or not text.strip():
        return None
    try:
        return [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise OptionError(f"{param} must be a comma-separated list of numbers, got '{text}'", param=param) from None


@app.command("theory-test", epilog=example(
    "tsprobe theory-test --profile smoke --out out/theory-smoke",
    "tsprobe theory-test --profile small --jobs 1 --threads 1 --cache theory-cache/ --out figures/theory",
    "tsprobe theory-test --profile small --ks 0.3,0.8,1.5 --seeds 1,2,3,4 --jobs 2 --out theory/"))
def theory_test_cmd(
    profile: str = typer.Option("small", "--profile", help="smoke (seconds, a check only) or small (~35-45 min, one core)."),
    out: Path = out_option("theory"),
    jobs: int = typer.Option(1, "--jobs", help="Training runs in parallel processes."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch threads per run (1 on a busy machine)."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Seeds, comma-separated (default: the profile's)."),
    ks: Optional[str] = typer.Option(None, "--ks", help="Nominal MI exponents k, comma-separated (default: the profile's)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Folder keeping every finished run (JSON); a rerun "
                                                               "with the same settings reuses them (resume)."),
) -> None:
    """Does a baseline LSTM's learned timescale shape track the MI exponent k of its source, and
    does imposing inverse-gamma timescales of shape a = k/2 or a = k (or one single timescale)
    help, at convergence and in optimisation speed? Beyond the paper.

    Hierarchical sources with k set by their kernel (measured back with mi-decay); per k and seed
    four arms trained to early stopping with the same optimiser. Writes theory_results.csv,
    theory_curves.csv, theory_summary.csv, theory_verdicts.csv, theory_sources.csv,
    theory_timescales.csv, theory.pdf/.png and run.json (only when everything succeeded)."""
    import torch

    from ..progress import as_progress
    from ..theory import check_options, run_theory_study

    seed_list = _numbers(seeds, int, "seeds")
    k_list = _numbers(ks, float, "ks")
    check_options(profile, jobs=jobs, seeds=seed_list, ks=k_list, device=device, threads=threads)
    if out.exists() and not out.is_dir():
        raise OptionError(f"out_dir must be a directory, but {out} is a file", param="out_dir")
    if threads is not None:
        torch.set_num_threads(threads)
    result = run_theory_study(profile, out, jobs=jobs, seeds=seed_list, ks=k_list, device=device, threads=threads,
                              progress=as_progress(True), cache_dir=cache, log=lambda msg: console.print(msg))
    s = result.sources
    table = Table(title="sources: nominal vs measured k (mi-decay, 95%)", show_edge=False)
    for c in ("k", "measured k", "k_tail"):
        table.add_column(c, justify="right")
    for r in s.itertuples():
        table.add_row(f"{r.k:g}", f"{r.k_measured:.3f} [{r.k_measured_low:.3f}, {r.k_measured_high:.3f}]",
                      f"{r.k_tail:.3f} [{r.k_tail_low:.3f}, {r.k_tail_high:.3f}]")
    console.print(table)
    summ = Table(title="per k and arm (mean over seeds)", show_edge=False)
    for c in ("k", "arm", "seeds", "test loss", "vs baseline %", "AUC vs baseline %", "best epoch", "learned a"):
        summ.add_column(c, justify="right")
    for r in result.summary.itertuples():
        a = getattr(r, "a_tail", float("nan"))
        summ.add_row(f"{r.k:g}", r.arch, str(r.seeds), f"{r.test_loss:.4f}", f"{r.d_test_pct:+.2f}",
                     f"{r.d_auc_pct:+.2f}", f"{r.best_epoch:.1f}", "-" if a != a else f"{a:.2f}")
    console.print(summ)
    for r in result.verdicts.itertuples():
        console.print(f"[bold]{r.verdict}[/bold]: {r.claim}")
    console.print(f"outputs in {out} ({result.seconds / 60:.1f} min)")
