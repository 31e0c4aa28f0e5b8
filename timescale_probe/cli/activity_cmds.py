"""``tsprobe activity-timescales``: timescales from the autocorrelation of each unit's activity
(a thin wrapper over :mod:`timescale_probe.activity`)."""
from __future__ import annotations

from ..activity.analysis import ActivityOptions
from ..analysis.cli import options_command
from . import app
from ._common import console, example


@options_command(app, "activity-timescales", ActivityOptions, epilog=example(
    "tsprobe activity-timescales checkpoints/ptb-mts-small.pt --corpus ptb --out out/activity",
    "tsprobe activity-timescales ckpt.pt --corpus data/wt2 --max-tokens 50000 --max-lag 50 --threads 1",
    "tsprobe activity-timescales gru.pt --corpus ptb --states hidden --n-boot 0 --convention chrono",
))
def activity_timescales_cmd(opts: ActivityOptions) -> None:
    """Timescale of every unit from the autocorrelation of its activity (hidden state, and cell state
    where the cell has one): one or two exponentials chosen by AIC, tau with a block-bootstrap
    interval, the network timescale from each layer's mean autocorrelation, and, where the cells
    have a retention gate, tau beside T_data and T_bias (Spearman, share more than 2x apart)."""
    from rich.table import Table

    from ..activity.analysis import run_activity
    from ..progress import RichProgress

    res = run_activity(opts, progress=RichProgress(console=console))
    res.save(opts.out)
    prov = res.provenance
    console.print(prov["vocabulary_statement"], soft_wrap=True)
    tab = Table(title=f"network timescale from the mean autocorrelation ({opts.convention} convention, "
                      f"{prov['n_steps_used']:,} steps kept of {prov['n_tokens']:,} tokens, {prov['n_blocks']} blocks)")
    for col in ("layer", "state", "tau", "interval", "model", "fast / slow", "units"):
        tab.add_column(col, justify="right")
    for r in res.population.itertuples():
        parts = f"{r.tau_fast:.3g} / {r.tau_slow:.3g}" if r.model == "double" else ""
        tab.add_row(str(r.layer), r.state, f"{r.tau:.3g}", f"{r.tau_lo:.3g}-{r.tau_hi:.3g}", r.model, parts,
                    str(r.n_units))
    console.print(tab)
    comp = res.comparison
    if comp is not None:
        ctab = Table(title=f"tau from activity against gate timescales (all layers; >{opts.factor:g}x apart)")
        for col in ("state", "versus", "units compared", "Spearman", "share apart", "median tau/T"):
            ctab.add_column(col, justify="right")
        for r in comp[comp["layer"] == "all"].itertuples():
            ctab.add_row(r.state, r.versus, str(r.n_compared), f"{r.spearman:.2f}", f"{r.share_disagree:.0%}",
                         f"{r.median_ratio:.3g}")
        console.print(ctab)
    console.print(f"wrote {len(res.written_files())} files to {opts.out} in {prov['seconds']:.1f} s")
