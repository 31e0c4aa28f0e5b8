"""``tsprobe demo``: the embedded default (registered on ``app``)."""
from __future__ import annotations

from ..analyses.demo import DemoOptions
from ..analysis import options_command
from . import app
from ._common import console, example


@options_command(app, "demo", DemoOptions, epilog=example("tsprobe demo", "tsprobe demo --out my-demo/ --bootstrap 1000"))
def demo(opts: DemoOptions) -> None:
    """Impose the paper's timescales on its MTS architecture and recover them (inverse-gamma fit of
    layer 2), then evaluate and compare the shipped baseline and MTS PTB checkpoints."""
    from rich.table import Table

    from ..analyses.demo import run_demo_options
    from ..progress import RichProgress, log_messages

    with log_messages(lambda m: console.print(f"[bold]{m}[/bold]"), name="timescale_probe.demo"):
        res = run_demo_options(opts, progress=RichProgress(console=console))
    imp = res["impose"]
    console.print(
        f"paper-lm layer 2 ({imp['units_used']} units, {imp['units_excluded_zero']} with T=0 excluded): "
        f"inverse gamma a = {imp['a']:.3f} [{imp['a_lo']:.3f}, {imp['a_hi']:.3f}], "
        f"b = {imp['b']:.3f} [{imp['b_lo']:.3f}, {imp['b_hi']:.3f}] "
        f"({100 * imp['ci_level']:g}% parametric bootstrap, B={imp['n_boot']}); assigned a = 0.56, b = 1"
    )
    cmp_ = res["compare"]
    if "skipped" not in cmp_:
        part = "" if opts.max_tokens is None else f", first {opts.max_tokens:,} tokens"
        t = Table(title=f"PTB test perplexity (batch 1{part}), paired chunk bootstrap of baseline - MTS")
        for col in ("bin", "tokens", "baseline", "MTS", "diff", "interval"):
            t.add_column(col, justify="right")
        for r in cmp_["comparison"]:
            t.add_row(str(r["bin"]), str(r["tokens"]), f"{r['ppl_baseline']:.2f}", f"{r['ppl_mts']:.2f}",
                      f"{r['diff']:.2f}", f"[{r['lo']:.2f}, {r['hi']:.2f}] ({100 * r['level']:g}%)")
        console.print(t)
    console.print(f"wrote {opts.out}/ in {res['seconds']} s (tables, PDFs, run.json)")
