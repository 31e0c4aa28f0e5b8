"""``tsprobe theory-test``: the theory study (:mod:`timescale_probe.theory`); its flags are the
fields of :class:`~timescale_probe.theory.TheoryOptions`."""
from __future__ import annotations

from rich.table import Table

from ..analysis import options_command
from ..theory.analysis import TheoryOptions
from . import app
from ._common import console, example


def _f(x, nd=4) -> str:
    return "-" if x is None or x != x else f"{x:.{nd}f}"


@options_command(app, "theory-test", TheoryOptions, epilog=example(
    "tsprobe theory-test --profile smoke --out out/theory-smoke",
    "tsprobe theory-test --profile small --jobs 2 --threads 1 --cache runs/theory/cache --out figures/theory",
    "tsprobe theory-test --source tree --profile small --ks 0.3,0.8,1.5 --seeds 1,2,3 --out theory-tree/"))
def theory_test_cmd(opts: TheoryOptions) -> None:
    """Do imposed long timescales help where memory matters, does the inverse-gamma shape matched to
    the source's MI exponent (a = k/2) beat a = k, and does a trained LSTM's timescale shape follow
    k? Beyond the paper.

    Factor sources (default) with an exact Bayes bound, or the first study's tree sources; per k and
    seed six arms (baseline, IG a=k/2, IG a=k, single T, short only, log-uniform) trained to early
    stopping with the same optimiser, the oracle basis (frozen timescales, fitted readout) beside
    them. Writes theory_results.csv, theory_curves.csv, theory_summary.csv, theory_verdicts.csv,
    theory_headroom.csv, theory_sources.csv, theory_timescales.csv, theory_oracle.csv,
    theory.pdf/.png, claims.csv and run.json (only when everything succeeded)."""
    from ..fileio import use_threads
    from ..progress import as_progress
    from ..theory import run_theory

    use_threads(opts.threads, jobs=opts.jobs)  # the driver's own work (sources, Bayes, oracle fits)
    result = run_theory(opts, progress=as_progress(True), log=lambda msg: console.print(msg))
    result.save(opts.out)
    head = Table(title="headroom: exact Bayes loss with the whole past and the last n tokens (nats)", show_edge=False)
    room = result.table("headroom")
    slow = "bayes_slow_state_full" in room
    for c in ("k", "full", "last 50", "last 5") + (("slow state full", "slow state last 50"),)[0] * slow:
        head.add_column(c, justify="right")
    for r in room.to_dict(orient="records"):
        cells = [f"{r['k']:g}", _f(r["bayes_full"]), _f(r.get("bayes_n50")), _f(r.get("bayes_n5"))]
        if slow:
            cells += [_f(r["bayes_slow_state_full"]), _f(r.get("bayes_slow_state_n50"))]
        head.add_row(*cells)
    console.print(head)
    summ = Table(title="per k and arm (mean over seeds)", show_edge=False)
    metric = "slow_state_loss" if slow else "loss"
    for c in ("k", "arm", "seeds", "loss", metric.replace("_", " "), "vs baseline", "best epoch"):
        summ.add_column(c, justify="right")
    for r in result.table("summary").to_dict(orient="records"):
        summ.add_row(f"{r['k']:g}", r["arch"], str(r["seeds"]), _f(r["loss"]), _f(r.get(metric)),
                     _f(r.get("d_vs_baseline"), 3), f"{r['best_epoch']:.1f}")
    console.print(summ)
    for r in result.verdicts.itertuples():
        console.print(f"[bold]{r.verdict}[/bold]: {r.claim}")
    console.print(f"outputs in {opts.out} ({result.summary['seconds'] / 60:.1f} min)")
