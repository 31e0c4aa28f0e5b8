"""Timescales from activity against T_data and T_bias for the shipped baseline and MTS checkpoints.

Usage: python analyses/activity_timescales.py --out figures/activity [--max-tokens 0] [--threads 1]

For each checkpoint (``checkpoints/ptb-baseline-small.pt``, ``checkpoints/ptb-mts-small.pt``) on
the built-in PTB test split: ``tsprobe activity-timescales`` (its full output in OUT/<name>/), then
OUT/summary.csv (per model, state, layer and gate timescale: Spearman, share of units more than 2x
apart, median ratio, and the same Spearman for two readings of the activity closer to a unit's
own decay: the fast part of the fit and the lag-1 timescale -1/log r(1)), OUT/activity_vs_gates.pdf
(+ .png; both models side by side), OUT/timing.csv and OUT/README.md (what was run, the numbers,
how long it took). ``--report-only`` rebuilds the last three from the saved tables.
Importing this file has no side effects.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

CHECKPOINTS = {"ptb-baseline": "checkpoints/ptb-baseline-small.pt", "ptb-mts": "checkpoints/ptb-mts-small.pt"}


def readings(merged):
    """Three readings of the activity per unit: the fitted ``tau``; ``tau_short``, the fast part of
    a double fit (tau itself for a single); ``tau_r1 = -1/log r(1)`` (the lag-1 autocorrelation read
    as one step of a linear unit)."""
    import numpy as np

    out = merged.copy()
    fast = np.where(out["model"] == "double", out["tau_fast"], out["tau"])
    out["tau_short"] = fast
    r1 = out["r1"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["tau_r1"] = np.where((r1 > 0) & (r1 < 1), -1.0 / np.log(r1), np.nan)
    return out


def summarize(name: str, merged, factor: float = 2.0):
    import numpy as np
    import pandas as pd
    from scipy import stats

    rows = []
    parts = [(str(k[0]), k[1], g) for k, g in merged.groupby(["layer", "state"])]
    parts += [("all", s, g) for s, g in merged.groupby("state")]
    for layer, state, g in parts:
        for versus in ("T_data", "T_bias"):
            row = {"model": name, "layer": layer, "state": state, "versus": versus}
            for reading in ("tau", "tau_short", "tau_r1"):
                ok = (np.isfinite(g[reading]) & (g[reading] > 0) & np.isfinite(g[versus]) & (g[versus] > 0)
                      & g["resolved"].astype(bool))
                a, b = g.loc[ok, reading].to_numpy(), g.loc[ok, versus].to_numpy()
                rho = stats.spearmanr(a, b).statistic if ok.sum() > 2 else np.nan
                ratio = a / b
                row[f"spearman_{reading}"] = rho
                row[f"share_apart_{reading}"] = float(np.mean((ratio > factor) | (ratio < 1 / factor))) if len(a) else np.nan
                row[f"median_ratio_{reading}"] = float(np.median(ratio)) if len(a) else np.nan
                if reading == "tau":
                    row["n_compared"] = int(ok.sum())
            rows.append(row)
    return pd.DataFrame(rows)


def figure(merged_by_model: dict, title: str = ""):
    import numpy as np

    from timescale_probe.plots.style import new_figure

    names = list(merged_by_model)
    fig, axes = new_figure(ncols=2 * len(names), nrows=1, width=3.3, height=3.2)
    for i, name in enumerate(names):
        m = merged_by_model[name]
        m = m[(m["state"] == "cell") & m["resolved"].astype(bool) & (m["tau"] > 0)]
        for j, versus in enumerate(("T_data", "T_bias")):
            ax = axes[0][2 * i + j]
            ok = np.isfinite(m[versus]) & (m[versus] > 0)
            for layer, g in m[ok].groupby("layer"):
                ax.scatter(g[versus], g["tau"], s=4, alpha=0.6, color=f"C{int(layer) - 1}", label=f"layer {layer}")
            lo, hi = 0.02, 2e4
            grid = np.geomspace(lo, hi, 20)
            ax.plot(grid, grid, color="k", lw=0.8)
            ax.fill_between(grid, grid / 2, grid * 2, color="0.85", lw=0, zorder=0)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
            ax.set_xlabel(f"{versus} (steps)")
            ax.set_ylabel("tau from activity, cell state (steps)")
            ax.set_title(f"{name}: tau vs {versus}", fontsize=9)
            ax.legend(fontsize=6, frameon=False, loc="lower right", markerscale=2)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def _markdown(df) -> str:
    """A pipe table (pandas' to_markdown needs tabulate, which is not a dependency)."""
    def cell(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    head = "| " + " | ".join(df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def run_models(out: Path, max_tokens: int, threads: int, n_boot: int) -> None:
    """Run the command's analysis for each checkpoint into OUT/<name>/, and OUT/timing.csv."""
    import pandas as pd

    from timescale_probe.activity.analysis import ActivityOptions, run_activity
    from timescale_probe.fileio import write_table

    rows = []
    for name, ckpt in CHECKPOINTS.items():
        opts = ActivityOptions(checkpoint=ckpt, corpus="ptb", split="test", max_tokens=max_tokens, threads=threads,
                               n_boot=n_boot, out=out / name)
        t0, c0 = time.perf_counter(), time.process_time()
        res = run_activity(opts, progress=False)
        res.save(opts.out)
        prov = res.provenance
        rows.append({"model": name, "checkpoint": ckpt, "n_tokens": prov["n_tokens"], "steps_used": prov["n_steps_used"],
                     "blocks": prov["n_blocks"], "n_boot": n_boot, "threads": prov["threads"],
                     "cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - t0})
    write_table(pd.DataFrame(rows), out / "timing.csv")


def input_timescale(checkpoint: str, max_tokens: int, burn_in: int = 500, max_lag: int = 100, block: int = 2048,
                    n_boot: int = 100):
    """The network-timescale fit of what layer 1 reads: the mean autocorrelation of the embedding
    dimensions of the test tokens (the text as the model sees it), same lags, blocks and bootstrap."""
    import numpy as np
    import torch

    from timescale_probe.activity import AutocorrelationAccumulator, fit_table
    from timescale_probe.corpora import load_corpus
    from timescale_probe.models import load_language_model

    _, model, corp = load_language_model(checkpoint, load_corpus("ptb"))
    tokens = corp.tokens("test")[:max_tokens or None]
    with torch.no_grad():
        x = model.encoder(torch.as_tensor(tokens[:-1]).long()).double().numpy()
    acc = AutocorrelationAccumulator(max_lag, block=block, burn_in=burn_in)
    acc.update(x)
    blocks = acc.finish()
    r, rb = blocks.acf()[0], blocks.acf(blocks.bootstrap_weights(n_boot, 0))
    live = np.isfinite(r).all(1)
    fit = fit_table(np.nanmean(r[live], 0)[None], r_boot=np.nanmean(rb[:, live], 1)[:, None], n_blocks=blocks.n_blocks)
    fit.insert(0, "acf_lag50", np.nanmean(r[live], 0)[50])
    fit.insert(0, "acf_lag10", np.nanmean(r[live], 0)[10])
    return fit


def report(out: Path, command: str) -> str:
    """summary.csv, the figure and README.md from the saved per-model tables."""
    import pandas as pd

    from timescale_probe.fileio import atomic_write_text, save_figure, write_table

    timing = pd.read_csv(out / "timing.csv")
    merged, summaries = {}, []
    for name in timing["model"]:
        units = pd.read_csv(out / name / "activity_timescales.csv")
        m = readings(pd.read_csv(out / name / "activity_vs_gates.csv").merge(
            units[["layer", "unit", "state", "tau_fast", "r1"]], on=["layer", "unit", "state"]))
        merged[name] = m
        summaries.append(summarize(name, m))
    summary = pd.concat(summaries, ignore_index=True)
    write_table(summary, out / "summary.csv")
    inputs = pd.concat([input_timescale(r.checkpoint, int(r.n_tokens) if r.n_tokens < 82430 else 0).assign(name=r.model)
                        for r in timing.itertuples()], ignore_index=True)
    write_table(inputs, out / "input_population.csv")
    pops = pd.concat([pd.read_csv(out / name / "activity_population.csv").assign(name=name) for name in timing["model"]])
    pops = pops[pops["state"] == "cell"][["name", "layer", "tau", "tau_lo", "tau_hi", "model", "tau_fast", "tau_slow",
                                          "weight"]]
    fig = figure(merged, "tau from activity (cell state) against the gate timescales, PTB test")
    save_figure(fig, out / "activity_vs_gates.pdf")
    save_figure(fig, out / "activity_vs_gates.png")
    lines = [f"- {r.model}: `{r.checkpoint}`, {r.n_tokens:,} test tokens, {r.steps_used:,} steps after the burn-in, "
             f"{r.blocks} blocks, {r.n_boot} replicates, {r.threads} thread(s): {r.cpu_s:.0f} s CPU, {r.wall_s:.0f} s wall "
             "(on a shared, loaded machine)" for r in timing.itertuples()]
    cols = ["model", "layer", "versus", "n_compared", "spearman_tau", "share_apart_tau", "median_ratio_tau",
            "spearman_tau_short", "spearman_tau_r1", "share_apart_tau_r1", "median_ratio_tau_r1"]
    cell = summary[summary["state"] == "cell"][cols]
    hidden = summary[(summary["state"] == "hidden") & (summary["layer"] == "all")][cols]
    text = ["# Timescales from activity of the shipped checkpoints", "",
            f"Made by `{command}` (defaults of `tsprobe activity-timescales` otherwise: lags 1..100, burn-in 500, "
            "blocks of 2048 steps).", "", *lines, "",
            "Cell states, per layer and all layers (hidden states and every column: summary.csv; per unit: "
            "<model>/activity_vs_gates.csv). `tau`: the fitted timescale; `tau_short`: the fast part of a double fit; "
            "`tau_r1 = -1/log r(1)`. Units whose tau the lags do not resolve are left out. `share_apart`: more than 2x "
            "apart either way; `median_ratio`: median of reading / gate timescale.", "",
            _markdown(cell), "", "Hidden states, all layers:", "", _markdown(hidden), "",
            "Network timescale (cell states: the fit of each layer's mean autocorrelation; `weight` is the fast "
            "part's share of the decaying amplitude):", "", _markdown(pops), "",
            "What layer 1 reads, the embedding of the test text (mean autocorrelation of the embedding dimensions, "
            "fitted the same way; input_population.csv):", "",
            _markdown(inputs[["name", "tau", "tau_lo", "tau_hi", "model", "amplitude", "acf_lag10", "acf_lag50"]]), "",
            "What the numbers mean and which measure to trust where they differ: docs/activity.md.", ""]
    atomic_write_text(out / "README.md", "\n".join(text))
    return "\n".join(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="figures/activity")
    p.add_argument("--max-tokens", type=int, default=0, help="first N test tokens (0 = the whole split)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n-boot", type=int, default=100)
    p.add_argument("--report-only", action="store_true", help="rebuild summary, figure and README from OUT's tables")
    args = p.parse_args(argv)
    out = Path(args.out)
    command = (f"python analyses/activity_timescales.py --out {args.out} --max-tokens {args.max_tokens} "
               f"--threads {args.threads} --n-boot {args.n_boot}")
    if not args.report_only:
        run_models(out, args.max_tokens, args.threads, args.n_boot)
    print(report(out, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
