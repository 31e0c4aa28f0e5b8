"""``tsprobe estimate-timescales`` and ``tsprobe ablate``: timescales from data and routing by
timescale (thin commands over :mod:`timescale_probe.analyses.gates` and ``.analyses.ablate``)."""
from __future__ import annotations

import numpy as np

from ..analyses.ablate import AblateOptions
from ..analyses.gates import EstimateOptions
from ..analysis import options_command
from . import app
from ._common import console, example


@options_command(app, "estimate-timescales", EstimateOptions, epilog=example(
    "tsprobe estimate-timescales ckpt.pt --corpus ptb --out out/",
    "tsprobe estimate-timescales ckpt.pt --corpus data/wt2 --batch-size 16 --window 70 --device cuda",
))
def estimate_timescales_cmd(opts: EstimateOptions) -> None:
    """Timescale of every unit from its mean forget gate on real text (T_data), next to T_bias."""
    from rich.table import Table

    from ..analyses.gates import run_estimate

    result = run_estimate(opts, progress=True)
    result.save(opts.out)
    for line in result.notes:
        console.print(line, soft_wrap=True)
    n_tokens = result.summary["n_tokens"]
    tab = Table(title=f"T_data ({opts.convention} convention, {opts.split} split, {n_tokens:,} tokens, batch "
                      f"{opts.batch_size}, window {opts.window})")
    for col in ("layer", "units", "median T_data", "max T_data", "share > 10", "median T_bias"):
        tab.add_column(col, justify="right")
    for s in result.summary["summary"]:
        tab.add_row(str(s["layer"]), str(s["units"]), f"{s['median']:.3g}", f"{s['max']:.4g}",
                    f"{s['share_gt_10']:.1%}", f"{s['median_T_bias']:.3g}")
    console.print(tab)
    console.print(f"wrote {opts.out / 'timescales.csv'} and {len(result.figures)} figures in "
                  f"{result.provenance['seconds']:.1f} s")


@options_command(app, "ablate", AblateOptions, epilog=example(
    "tsprobe ablate ckpt.pt --corpus ptb --layer 2 --groups chunks:50 --out out/",
    "tsprobe ablate ckpt.pt --corpus ptb --groups quantiles:8 --mode silence --controls 20 --device cuda",
    "tsprobe ablate ckpt.pt --groups units:units.txt --by data --timescales out/timescales.csv",
))
def ablate_cmd(opts: AblateOptions) -> None:
    """Ablate groups of units ordered by timescale; perplexity ratio per word-frequency bin (paper Fig. 3)."""
    from ..analyses.ablate import run_ablate

    result = run_ablate(opts, progress=True)
    result.save(opts.out)
    for line in result.notes:
        console.print(line, soft_wrap=True)
    _print_routing(result.study, result.title, result.provenance["seconds"])


def _fmt_T(v: float) -> str:
    return "inf" if not np.isfinite(v) else (f"{v:.3g}" if v >= 0.01 else f"{v:.0e}")


def routing_tables(study, title: str) -> list:
    """One rich table per binning: the ``top`` groups that hurt most in every bin, with the ratio
    and its interval in separate columns (4 decimals, never cut: every column has ``no_wrap`` and
    the numbers fit 80 columns)."""
    from rich import box
    from rich.table import Table

    r = study.routing_
    level = study.options.get("level", 0.999)
    tables = []
    for binning, sub in r.groupby("binning", sort=False):
        sub = sub[sub.groupby("bin", sort=False)["ratio"].transform(lambda v: v.notna().any())]  # empty bins: a note
        tab = Table(title=f"{binning}: the groups that hurt most per bin", caption=title, box=box.SIMPLE_HEAD,
                    pad_edge=False, title_justify="left", caption_justify="left")
        for col in ("bin", "#", "group", "T mean", "T range", "ratio", f"{100 * level:.10g}% lo", "hi", "> ctl"):
            tab.add_column(col, justify="left" if col in ("bin", "group") else "right", no_wrap=True)
        for row in sub.itertuples():
            ac = "" if isinstance(row.above_controls, float) else ("yes" if row.above_controls else "no")
            tab.add_row(str(row.bin) if row.rank == 1 else "", str(row.rank), str(row.group), _fmt_T(row.T_mean),
                        f"{_fmt_T(row.T_min)}-{_fmt_T(row.T_max)}", f"{row.ratio:.4f}", f"{row.ratio_lo:.4f}",
                        f"{row.ratio_hi:.4f}", ac, end_section=False)
        tables.append(tab)
    return tables


def _print_routing(study, title: str, seconds: float) -> None:
    for tab in routing_tables(study, title):
        console.print(tab)
    ratios = study.ratios_
    empty = ratios[(ratios["kind"] == "group") & (ratios["n_tokens"] == 0)][["binning", "bin"]].drop_duplicates()
    for row in empty.itertuples():
        console.print(f"note: {row.binning} bin {row.bin} has no target tokens in this stream: its ratios are nan "
                      "(no data, not an error)", soft_wrap=True)
    console.print(f"intact perplexity {study.options['ppl_intact']:.2f}; {len(study.groups_)} groups "
                  f"({(study.groups_['kind'] == 'control').sum()} controls) in {seconds:.1f} s")
