"""``tsprobe inspect`` and ``tsprobe timescales``: what a checkpoint holds, and its units' timescales
from their forget biases (thin commands over :mod:`timescale_probe.analyses.checkpoint`)."""
from __future__ import annotations

import json

from ..analyses.checkpoint import InspectOptions, TimescalesOptions
from ..analysis import options_command
from . import app
from ._common import console, example


def _fmt(v) -> str:
    if isinstance(v, float):
        return "inf" if v == float("inf") else f"{v:.4g}"
    return "-" if v is None else str(v)


@options_command(app, "inspect", InspectOptions, epilog=example(
    "tsprobe inspect awd_ptb.pt",
    "tsprobe inspect model.pt --json > model.json",
    "tsprobe inspect keras_lstm.npz --format keras-npz",
    "tsprobe inspect model.keras",
))
def inspect_cmd(opts: InspectOptions) -> None:
    """Show what a checkpoint holds: format found, layers and sizes, vocabulary size, parameter count,
    tied embedding, MTS spec, and notes on how it was read."""
    from ..analyses.checkpoint import run_inspect
    from ..fileio import jsonable

    result = run_inspect(opts)
    if opts.out is not None:
        result.save(opts.out)
    info = result.info
    checkpoint = opts.checkpoint
    if opts.json:
        print(json.dumps(jsonable(info), indent=2))
        return
    from rich import box
    from rich.table import Table

    t = Table(title=f"{checkpoint}", box=box.SIMPLE_HEAD, show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value")
    t.add_row("format", info["source_format"])
    plain_rnn = info["cell"].startswith("rnn")  # no gates: no gate activation, no retention bias
    t.add_row("cell", info["cell"] if plain_rnn else f"{info['cell']} (gate activation {info['gate_activation']})")
    t.add_row("layers", f"{info['layers']} (sizes {', '.join(map(str, info['layer_sizes']))}; input {info['input_size']})")
    t.add_row("vocabulary", f"{_fmt(info['vocab_size'])} ({'stored' if info['has_vocab'] else 'not stored'})")
    t.add_row("embedding", "x".join(map(str, info["embedding"])) if info["embedding"] else "-")
    t.add_row("decoder", "x".join(map(str, info["decoder"])) if info["decoder"] else "-")
    t.add_row("tied", str(info["tied"]))
    t.add_row("parameters", f"{info['parameters']:,}")
    t.add_row("MTS spec", _fmt(info["mts_spec"]))
    if info["config"]:
        t.add_row("config", ", ".join(f"{k}={v}" for k, v in info["config"].items()))
    t.add_row("sha256", str(info["sha256"])[:16] + "...")
    console.print(t)
    lt = Table(box=box.SIMPLE_HEAD)
    gate = "update-gate" if info["cell"].startswith("gru") else "forget"
    for col in ("layer", "input", "units", "parameters", "retention gate" if plain_rnn else f"median {gate} bias"):
        lt.add_column(col, justify="right")
    for row in info["layer_table"]:
        b = row["forget_bias_median"]
        lt.add_row(str(row["layer"]), str(row["input_size"]), str(row["hidden_size"]), f"{row['parameters']:,}",
                   "none" if plain_rnn else f"{b:.4g}")
    console.print(lt)
    for note in info["notes"]:
        console.print(f"note: {note}", soft_wrap=True)


@options_command(app, "timescales", TimescalesOptions, epilog=example(
    "tsprobe timescales awd_ptb.pt --out out/",
    "tsprobe timescales model.pt --out out/ --convention chrono",
))
def timescales_cmd(opts: TimescalesOptions) -> None:
    """Timescale of every unit from its effective forget bias b_f = bias_ih[f] + bias_hh[f]; writes
    timescales.csv (layer, unit, forget_bias, T_bias; layers from 1, T in time steps) and prints
    per-layer median, maximum and share of units with T > 10."""
    from rich import box
    from rich.table import Table

    from ..analyses.checkpoint import run_timescales
    from ..checkpoints.report import LONG_T

    result = run_timescales(opts)
    result.save(opts.out)
    summary = result.tables["timescales_summary.csv"]
    share_col = f"share_gt_{LONG_T:g}"
    gate = "update-gate" if result.table.attrs.get("retention_gate") == "z" else "forget"
    t = Table(title=f"timescales from {gate} biases ({opts.convention} convention, steps) - "
                    f"{result.summary['source_format']}", box=box.SIMPLE_HEAD)
    for col in ("layer", "units", "median T", "max T", f"share T>{LONG_T:g}"):
        t.add_column(col, justify="right")
    for row in summary.to_dict(orient="records"):
        t.add_row(row["layer"], str(row["units"]), _fmt(row["T_median"]), _fmt(row["T_max"]), f"{100 * row[share_col]:.1f}%")
    console.print(t)
    for note in result.summary["notes"]:  # e.g. non-finite forget biases, with their counts
        console.print(f"note: {note}", soft_wrap=True)
    console.print(f"wrote {opts.out / 'timescales.csv'} ({len(result.table)} units)")
