"""``tsprobe demo``: the embedded default (registered on ``app``)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import app
from ._common import console, device_option, example


@app.command("demo", epilog=example("tsprobe demo", "tsprobe demo --out my-demo/ --bootstrap 1000"))
def demo(
    out: Path = typer.Option(Path("tsprobe-demo"), "--out", "-o", help="Output folder (tables, figures, run.json)."),
    bootstrap: int = typer.Option(200, "--bootstrap", help="Bootstrap replicates of the distribution fits."),
    resamples: int = typer.Option(10000, "--resamples", help="Paired-bootstrap resamples of the model comparison."),
    seed: int = typer.Option(0, "--seed", help="Seed of every bootstrap."),
    keep_checkpoint: bool = typer.Option(False, "--keep-checkpoint", help="Keep the untrained paper-architecture "
                                         "checkpoint (97 MB) in --out; by default it lives in a temporary folder."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Score only the first N test tokens of the "
                                             "shipped checkpoints (>= 100): a quick check, not the demo's table."),
    device: str = device_option(),
) -> None:
    """Impose the paper's timescales on its MTS architecture and recover them (inverse-gamma fit of
    layer 2), then evaluate and compare the shipped baseline and MTS PTB checkpoints."""
    from rich.table import Table

    from ..demo import run_demo
    from ..fileio import resolve_device
    from ..progress import RichProgress, log_messages

    dev = resolve_device(device)
    with log_messages(lambda m: console.print(f"[bold]{m}[/bold]"), name="timescale_probe.demo"):
        res = run_demo(out, n_boot=bootstrap, n_resamples=resamples, seed=seed, device=str(dev),
                       keep_checkpoint=keep_checkpoint, max_tokens=max_tokens,
                       options={"out": out, "bootstrap": bootstrap, "resamples": resamples, "device": str(dev),
                                "keep_checkpoint": keep_checkpoint, "max_tokens": max_tokens},
                       progress=RichProgress(console=console))
    imp = res["impose"]
    console.print(
        f"paper-lm layer 2 ({imp['units_used']} units, {imp['units_excluded_zero']} with T=0 excluded): "
        f"inverse gamma a = {imp['a']:.3f} [{imp['a_lo']:.3f}, {imp['a_hi']:.3f}], "
        f"b = {imp['b']:.3f} [{imp['b_lo']:.3f}, {imp['b_hi']:.3f}] "
        f"({100 * imp['ci_level']:g}% parametric bootstrap, B={imp['n_boot']}); assigned a = 0.56, b = 1"
    )
    cmp_ = res["compare"]
    if "skipped" not in cmp_:
        part = "" if max_tokens is None else f", first {max_tokens:,} tokens"
        t = Table(title=f"PTB test perplexity (batch 1{part}), paired chunk bootstrap of baseline - MTS")
        for col in ("bin", "tokens", "baseline", "MTS", "diff", "interval"):
            t.add_column(col, justify="right")
        for r in cmp_["comparison"]:
            t.add_row(str(r["bin"]), str(r["tokens"]), f"{r['ppl_baseline']:.2f}", f"{r['ppl_mts']:.2f}",
                      f"{r['diff']:.2f}", f"[{r['lo']:.2f}, {r['hi']:.2f}] ({100 * r['level']:g}%)")
        console.print(t)
    console.print(f"wrote {out}/ in {res['seconds']} s (tables, PDFs, run.json)")
